// SPDX-License-Identifier: GPL-2.0-only
// Compile ../bpf/main.bpf.c with scx_cargo's vendored headers and vmlinux.h,
// generate the libbpf-rs skeleton, and bindgen ../bpf/intf.h for Rust.
fn main() {
    scx_cargo::BpfBuilder::new()
        .expect("BPF build setup failed (is clang >= 17 installed? set BPF_CLANG)")
        .enable_intf("../bpf/intf.h", "bpf_intf.rs")
        .enable_skel("../bpf/main.bpf.c", "bpf")
        .build()
        .expect("BPF build failed");
    // The BPF sources live outside this crate; rebuild when any of them changes.
    println!("cargo:rerun-if-changed=../bpf");
}
