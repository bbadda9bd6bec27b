// SPDX-License-Identifier: GPL-2.0-only
// Compile ../bpf/scheduler/main.bpf.c and the CFS and ULE policies' units
// (policy/) with scx_cargo's vendored headers and vmlinux.h, link them into
// one BPF object, generate the libbpf-rs skeleton, and bindgen intf.h for Rust.
use std::collections::BTreeSet;

const DIR: &str = "../bpf/scheduler";
const HOME: &str = "main.bpf.c";
const UNITS: &[&str] = &[
    "policy/cfs_place.bpf.c",
    "policy/cfs_runq.bpf.c",
    "policy/cfs_balance.bpf.c",
    "policy/ule.bpf.c",
    "policy/ule_prio.bpf.c",
    "policy/ule_runq.bpf.c",
    "policy/ule_place.bpf.c",
    "policy/ule_balance.bpf.c",
];

fn main() {
    let path = |unit: &str| format!("{DIR}/{unit}");
    // main.bpf.c is the home of the shared maps and must be linked first
    // (shared.bpf.h says why). scx_cargo links its sources in the sorted
    // order of their paths, so the policies live in policy/, which sorts
    // after main.bpf.c; a unit that would sort before it stops the build here.
    let order: BTreeSet<String> = UNITS.iter().map(|u| path(u)).chain([path(HOME)]).collect();
    assert_eq!(
        order.first(),
        Some(&path(HOME)),
        "{HOME} must sort before every other BPF unit's path (scx_cargo links them in that order)"
    );

    let mut b = scx_cargo::BpfBuilder::new().expect("BPF build setup failed (is clang >= 17 installed? set BPF_CLANG)");
    b.enable_intf(&path("intf.h"), "bpf_intf.rs").enable_skel(&path(HOME), "bpf");
    for unit in UNITS {
        b.add_source(&path(unit));
    }
    b.compile_link_gen().expect("BPF build failed");
    // The BPF sources live outside this crate; rebuild when any of them changes.
    println!("cargo:rerun-if-changed={DIR}");
}
