// SPDX-License-Identifier: GPL-2.0-only
//! Both policies on a machine shape other than `small` (scripts/check-shape):
//! `smt-ccx`, SMT siblings and several LLCs per node at once (two shapes,
//! `smt` and `ccx`, cost a boot and 10 minutes more; scripts/check-shape
//! runs on either by hand).

use super::*;

/// scripts/check-shape on `smt-ccx` (2 nodes x 2 LLCs x 2 cores x 2 threads).
pub static SMT_CCX: Job<VmRun> = Job::new("smt-ccx", || run_vm("smt-ccx", "smt-ccx", "newest", &["scripts/check-shape"]));

/// What a shape run left: per policy, the log, the stress report, the spin run.
struct ShapeRun {
    log: String,
    stress: serde_json::Value,
    spin: SpinRun,
    state: String,
}

fn shape(which: &str, policy: &str) -> ShapeRun {
    assert_eq!(which, "smt-ccx", "no shape job {which}");
    let vm = SMT_CCX.get();
    let why = || format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr);
    let read = |f: &str| std::fs::read_to_string(vm.out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}\n{}", why()));
    ShapeRun {
        log: read(&format!("{policy}.log")),
        stress: serde_json::from_str(&read(&format!("{policy}-stress.json"))).expect("stress.json"),
        spin: read_spin_run(&vm.out.join(format!("{policy}-spin"))).unwrap_or_else(|e| panic!("{e}\n{}", why())),
        state: read(&format!("{policy}.state")).trim().to_string(),
    }
}

/// The guest's topology as loadgen recorded it: (CPUs, nodes with CPUs, LLCs).
fn recorded_topology(r: &SpinRun) -> (usize, Vec<Vec<usize>>, usize) {
    let t = &r.meta.topology;
    let nodes: Vec<Vec<usize>> = t.nodes.iter().filter(|n| !n.is_empty()).cloned().collect();
    (t.cpus.len(), nodes, t.llcs.len())
}

/// The guest sees the shape the preset asks QEMU for.
fn check_shape_topology(which: &str, cpus: usize, nodes: usize, llcs: usize, smt: bool) {
    let r = shape(which, "cfs");
    let (c, n, l) = recorded_topology(&r.spin);
    let start = r.log.lines().find(|l| l.starts_with("scx_battle: policy")).unwrap_or("").to_string();
    eprintln!("[{which}] guest: {c} CPUs, {} nodes, {l} LLCs; scx_battle: {start}", n.len());
    assert_eq!((c, n.len(), l), (cpus, nodes, llcs), "[{which}] guest topology");
    assert!(start.contains(if smt { "SMT on" } else { "SMT off" }), "[{which}] {start}");
}

/// The domains each policy logs follow from the detected topology: CFS
/// balances at the SMT level iff there is SMT, at the node level iff a node
/// holds more than one LLC; ULE's sched_pickcpu walks down to SMT threads iff
/// there is SMT, through nodes iff there are several LLCs per node.
fn check_shape_domains(which: &str) {
    let (cfs, ule) = (shape(which, "cfs"), shape(which, "ule"));
    let (_, nodes, llcs) = recorded_topology(&cfs.spin);
    let smt = cfs.log.contains("SMT on");
    let node_level = llcs > nodes.len();
    let cfs_line = cfs.log.lines().find(|l| l.contains("cfs: balances over")).expect("no cfs domain line").to_string();
    let ule_line = ule.log.lines().find(|l| l.contains("ule: sched_pickcpu walks")).expect("no ule placement line").to_string();
    eprintln!("[{which}] {cfs_line}\n[{which}] {ule_line}");
    for line in cfs.log.lines().filter(|l| l.starts_with("scx_battle: domain")) {
        eprintln!("[{which}] {line}");
    }
    assert_eq!(cfs_line.contains("smt (imbalance_pct 110)"), smt, "{cfs_line}");
    assert_eq!(cfs_line.contains("node (imbalance_pct 125)"), node_level, "{cfs_line}");
    assert!(cfs_line.contains("llc (imbalance_pct 117)") && cfs_line.contains("machine"), "{cfs_line}");
    assert_eq!(ule_line.contains("SMT threads"), smt, "{ule_line}");
    assert_eq!(ule_line.contains(&format!("{} nodes", nodes.len())), node_level, "{ule_line}");
    assert!(ule_line.contains(&format!("{llcs} LLCs")), "{ule_line}");
}

/// Both policies stay loaded through the mixed workload and the spreading run.
fn check_shape_survives(which: &str) {
    for policy in ["cfs", "ule"] {
        let r = shape(which, policy);
        eprintln!("[{which}/{policy}] stress: {}; state after the runs: {}", r.stress, r.state);
        assert_eq!(r.state, "enabled", "[{which}/{policy}] ejected: {}", r.log.lines().find(|l| l.contains("EXIT")).unwrap_or(""));
        assert_eq!(r.stress["spinners_starved"], 0);
        assert!(r.stress["execs"].as_u64().unwrap() > 0 && r.stress["exec_failures"] == 0, "{}", r.stress);
        assert!(r.spin.meta.complete);
    }
}

/// CFS: every CPU busy, and the end within CFS's thresholds for the recorded
/// topology, level by level as Linux's domains have them: node totals within
/// 125%; the LLCs of one node (Linux's package level, imbalance_pct 125) by
/// their average per CPU within 125% (+1 thread); the CPUs of one LLC within
/// 117% (+1 thread).
fn check_shape_cfs_spread(which: &str) {
    let r = shape(which, "cfs");
    let (_, nodes, _) = recorded_topology(&r.spin);
    let llcs: Vec<Vec<usize>> = r.spin.meta.topology.llcs.clone();
    let rel = r.spin.meta.release_ms.unwrap();
    let (t, last) = r.spin.samples.last().unwrap();
    let busy = r.spin.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|s| s.0 - rel);
    let totals: Vec<u32> = nodes.iter().map(|n| n.iter().map(|&c| last[c]).sum()).collect();
    eprintln!("[{which}/cfs] every CPU busy {busy:?} ms after the release; at {:.1} s: per node {totals:?}, per CPU {last:?}", (t - rel) / 1e3);
    assert!(busy.is_some(), "a CPU never got a thread");
    let (nmin, nmax) = (*totals.iter().min().unwrap(), *totals.iter().max().unwrap());
    assert!(nmax * 100 <= nmin * 125, "node totals {totals:?} beyond 125%");
    for n in &nodes {
        // Average per CPU of each LLC of this node, in hundredths of a thread.
        let avgs: Vec<u32> = llcs
            .iter()
            .filter(|l| l.iter().all(|c| n.contains(c)) && !l.is_empty())
            .map(|l| l.iter().map(|&c| last[c]).sum::<u32>() * 100 / l.len() as u32)
            .collect();
        let (amin, amax) = (*avgs.iter().min().unwrap(), *avgs.iter().max().unwrap());
        assert!(amax * 100 <= amin * 125 + 100 * 100, "LLC averages (x100) {avgs:?} of node {n:?} beyond 125% (+1)");
    }
    for l in &llcs {
        let c: Vec<u32> = l.iter().map(|&c| last[c]).collect();
        let (cmin, cmax) = (*c.iter().min().unwrap(), *c.iter().max().unwrap());
        assert!(cmin > 0 && cmax * 100 <= cmin * 117 + 100, "per-CPU counts {c:?} of one LLC beyond 117% (+1)");
    }
}

/// ULE: every CPU busy at once (idle stealing), then CPU 0's balancer gives
/// one thread per pass, never two CPUs the same pass twice.
fn check_shape_ule_spread(which: &str) {
    let r = shape(which, "ule");
    let rel = r.spin.meta.release_ms.unwrap();
    let busy = r.spin.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|s| s.0 - rel);
    let after_steals = r.spin.samples.iter().find(|(t, _)| *t >= rel + 200.0).map(|s| s.1[0]).unwrap();
    let (t, last) = r.spin.samples.last().unwrap();
    let (passes, moves, repeat, steals) = (
        total_counter(&r.log, "ule_bal_pass"),
        total_counter(&r.log, "ule_bal_move"),
        total_counter(&r.log, "ule_bal_repeat"),
        total_counter(&r.log, "ule_steal"),
    );
    eprintln!(
        "[{which}/ule] every CPU busy {busy:?} ms after the release; CPU 0: {after_steals} threads 0.2 s after it, {} at {:.1} s; \
         {passes} passes, {moves} moves, {repeat} repeats, {steals} steals; final {last:?}",
        last[0],
        (t - rel) / 1e3
    );
    let busy = busy.expect("a CPU never got a thread");
    assert!(busy <= 50.0, "idle stealing took {busy:.1} ms");
    assert_eq!(repeat, 0, "a CPU gave or got two threads in one pass");
    assert!(passes >= 10, "{passes} balancer passes");
    let gave = after_steals.saturating_sub(last[0]) as u64;
    assert!(gave * 10 >= passes * 8, "CPU 0 gave {gave} threads in {passes} passes: not one per pass");
}

macro_rules! shape_tests {
    ($($test:ident => $check:ident($($arg:expr),*)),* $(,)?) => {
        $(#[test] fn $test() { $check($($arg),*); })*
    };
}

shape_tests! {
    guest_topology => check_shape_topology("smt-ccx", 16, 2, 4, true),
    domains => check_shape_domains("smt-ccx"),
    policies_survive => check_shape_survives("smt-ccx"),
    cfs_spread => check_shape_cfs_spread("smt-ccx"),
    ule_spread => check_shape_ule_spread("smt-ccx"),
}
