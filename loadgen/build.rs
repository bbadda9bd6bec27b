// SPDX-License-Identifier: GPL-2.0-only
// Compile the recorder (../bpf/recorder/recorder.bpf.c), generate its libbpf-rs
// skeleton, and bindgen ../bpf/recorder/recorder_intf.h.
fn main() {
    scx_cargo::BpfBuilder::new()
        .expect("BPF build setup failed (is clang >= 17 installed? set BPF_CLANG)")
        .enable_intf("../bpf/recorder/recorder_intf.h", "recorder_intf.rs")
        .enable_skel("../bpf/recorder/recorder.bpf.c", "recorder")
        .build()
        .expect("BPF build failed");
    println!("cargo:rerun-if-changed=../bpf/recorder");
}
