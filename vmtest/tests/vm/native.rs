// SPDX-License-Identifier: GPL-2.0-only
//! The native path in a guest with a memory-only node, used as a researcher's
//! own machine (scripts/check-native on `cxl`): doctor, the scheduler checks
//! and the quick study through `--mode native`, the overhead benchmarks, a
//! short application suite, a killed loadgen, Ctrl-C.

use super::*;

/// scripts/check-native on `cxl`.
pub static CXL_NATIVE: Job<VmRun> = Job::new("cxl-native", || run_vm("cxl-native", "cxl", "newest", &["scripts/check-native"]));

macro_rules! native_tests {
    ($($test:ident => $check:ident($($arg:expr),*)),* $(,)?) => {
        $(#[test] fn $test() { $check($($arg),*); })*
    };
}

fn native_check(name: &str) {
    let vm = CXL_NATIVE.get();
    let checks = read_checks(&vm.out.join("native-checks.txt"));
    match checks.get(name) {
        Some((true, detail)) => eprintln!("[cxl native] {name}: {detail}"),
        Some((false, detail)) => panic!("[cxl native] {name} failed: {detail}\n(results in {})", vm.out.display()),
        None => panic!("[cxl native] {name} never ran: scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr),
    }
}

native_tests! {
    doctor => native_check("doctor"),
    scheduler_checks => native_check("checks"),
    quick_study => native_check("study"),
    sharded_study_merged_by_study_report => native_check("shards"),
    overhead_benchmarks_produce_every_number => native_check("overhead"),
    applications_one_of_each_kind_under_each_policy => native_check("apps"),
    study_run_as_a_perfetto_trace => native_check("trace"),
    killed_loadgen_leaves_nothing => native_check("killed_loadgen"),
    sigint_leaves_nothing => native_check("interrupted"),
}

/// The cxl guest has a memory-only node: meta.json lists it without CPUs,
/// the summary says so and is not thrown off by it.
#[test]
fn memory_only_node_in_the_study() {
    let dir = CXL_NATIVE.get().out.join("study");
    let r = read_spin_run(&dir.join("cfs")).map_err(|e| e.to_string());
    let meta = match r {
        Ok(r) => r.meta,
        Err(_) => analysis::run::load_meta(&dir.join("cfs")).expect("study cfs/meta.json"),
    };
    let nodes = meta.topology.nodes.clone();
    let empty = nodes.iter().filter(|n| n.is_empty()).count();
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    eprintln!("[cxl] nodes {nodes:?}\n{}", summary.lines().filter(|l| l.starts_with("| scx_battle cfs") || l.contains("memory-only")).collect::<Vec<_>>().join("\n"));
    assert_eq!(empty, 1, "expected one memory-only node in {nodes:?}");
    assert!(summary.contains("memory-only"), "summary.md does not mention the memory-only node");
    let cfs_row = summary.lines().find(|l| l.starts_with("| scx_battle cfs")).expect("cfs row");
    assert!(!cfs_row.contains("| never | never | never |"), "cfs never balanced: {cfs_row}");
}

