// SPDX-License-Identifier: GPL-2.0-only
// Compile ../bpf/main.bpf.c and the ULE policy's units with scx_cargo's
// vendored headers and vmlinux.h, link them into one BPF object, generate
// the libbpf-rs skeleton, and bindgen ../bpf/intf.h for Rust.
fn main() {
    scx_cargo::BpfBuilder::new()
        .expect("BPF build setup failed (is clang >= 17 installed? set BPF_CLANG)")
        .enable_intf("../bpf/intf.h", "bpf_intf.rs")
        .enable_skel("../bpf/main.bpf.c", "bpf")
        .add_source("../bpf/ule.bpf.c")
        .add_source("../bpf/ule_prio.bpf.c")
        .add_source("../bpf/ule_runq.bpf.c")
        .add_source("../bpf/ule_balance.bpf.c")
        .compile_link_gen()
        .expect("BPF build failed");
    // The BPF sources live outside this crate; rebuild when any of them changes.
    println!("cargo:rerun-if-changed=../bpf");
}
