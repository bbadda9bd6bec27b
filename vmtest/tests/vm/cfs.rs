// SPDX-License-Identifier: GPL-2.0-only
//! The CFS policy in the recorder's boot (crate::recorder): spreading within
//! CFS's thresholds, wakeup preemption, nice weights.

use super::*;
use crate::recorder::spin_run;

/// promises; and how fast every CPU got work, next to the kernel's scheduler.
#[test]
fn spreading_ends_within_thresholds() {
    let (cfs, kernel) = (spin_run(4), spin_run(0));
    let last = &cfs.samples.last().unwrap().1;
    let nodes = [last[..4].iter().sum::<u32>(), last[4..8].iter().sum::<u32>()];
    let (nmin, nmax) = (*nodes.iter().min().unwrap(), *nodes.iter().max().unwrap());
    assert!(nmax * 100 <= nmin * 125, "node totals {nodes:?} beyond 125%");
    for node in [&last[..4], &last[4..8]] {
        let (cmin, cmax) = (*node.iter().min().unwrap(), *node.iter().max().unwrap());
        assert!(cmin > 0 && cmax * 100 <= cmin * 117 + 100, "per-CPU counts {node:?} beyond 117% (+1 thread)");
    }
    let busy = |r: &SpinRun| {
        let rel = r.meta.release_ms.unwrap();
        r.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|(t, _)| t - rel)
    };
    let log = std::fs::read_to_string(cfs.dir.parent().unwrap().join("cfs.log")).expect("cfs.log of the recorder run");
    let nohz_kicks = total_counter(&log, "nohz_kick");
    eprintln!(
        "every CPU busy after the release: cfs {:?} ms, kernel {:?} ms; cfs final {last:?}; {nohz_kicks} NOHZ kicks",
        busy(cfs),
        busy(kernel)
    );
    let (cfs_busy, kernel_busy) = (
        busy(cfs).expect("some CPU never got a thread under cfs"),
        busy(kernel).expect("some CPU never got a thread under the kernel"),
    );
    // Idle CPUs have no tick: only the NOHZ idle balancer wakes them to pull.
    // Without it they wait for a stray wakeup (hundreds of ms). One sample
    // interval (10 ms) of slack.
    assert!(nohz_kicks > 0, "the NOHZ idle balancer never woke an idle CPU");
    assert!(
        cfs_busy <= kernel_busy + 10.0,
        "cfs took {cfs_busy:.0} ms to give every CPU a thread, the kernel {kernel_busy:.0} ms"
    );
}

/// The interactive thread pinned beside 3 spinners wakes with a vruntime far
/// behind theirs (it sleeps 95% of the time), so CFS's wakeup preemption runs
/// it at once (measured: p99 10-40 us; only its first few wakeups, before its
/// lag reaches the sleeper floor, may wait for a tick). A wakeup test against
/// a stale vruntime snapshot let it wait for a spinner's slice (p99 1.6-17 ms).
#[test]
fn pinned_wakeup_preempts() {
    let l = spin_run(5).meta.wake_latency_us.as_ref().expect("wake_latency_us");
    let (p99, n) = (l.p99, l.count);
    eprintln!("cfs pinned mixed run: {l:?}");
    assert!(n > 100, "{n} wakeups");
    assert!(p99 <= 1000.0, "wake-to-run p99 {p99:.0} us beside 3 spinners");
}

/// Nice -5, 0, +5 spinners pinned to one CPU get CPU time in the ratio of
/// their Linux weights (3121 : 1024 : 335), within 10%.
#[test]
fn nice_fairness() {
    let r = spin_run(6);
    assert_eq!(r.threads.len(), 3);
    let nice_of = |i: usize| [-5, 0, 5][i];
    let weight = |n: i32| match n {
        -5 => 3121.0,
        0 => 1024.0,
        _ => 335.0,
    };
    let total_cpu: f64 = r.threads.iter().map(|t| t.1).sum();
    let total_w: f64 = (0..3).map(|i| weight(nice_of(i))).sum();
    // threads.csv lists threads in creation order, which is the nice order.
    for (i, t) in r.threads.iter().enumerate() {
        let share = t.1 / total_cpu;
        let want = weight(nice_of(i)) / total_w;
        eprintln!("nice {:>2}: {:.1} ms, share {share:.3}, weight share {want:.3}", nice_of(i), t.1);
        assert!((share - want).abs() <= 0.10 * want, "nice {} got {share:.3}, expected {want:.3} +-10%", nice_of(i));
    }
}


/// How long scripts/check-cadence runs figure 6's load after the release, in
/// guest seconds (the paper boot, crate::scheduler::PAPER).
pub const CADENCE_SECS: u32 = 10;

/// CFS's balancing cadence on `paper` (scripts/check-cadence): with every CPU
/// busy, Linux 4.9 balances the machine level from one CPU per group
/// (should_we_balance; the groups are the nodes), every sd->balance_interval
/// (the level's CPU count w in ms, doubled up to 2w while passes find it
/// balanced) times busy_factor, at most max_load_balance_interval (0.1 s per
/// CPU): G groups make between G / (2 w ms x busy_factor) and
/// G / (w ms x busy_factor) passes a second. The rate counted over the run's
/// last seconds (the release and the spreading that follows left out) must
/// be within 2x of that range. Before should_we_balance and the adaptive
/// interval (2026-12-07) every CPU balanced it every w x busy_factor ms.
#[test]
fn machine_level_is_balanced_at_linux_4_9s_cadence() {
    let vm = &crate::scheduler::PAPER.get().vm;
    let dir = vm.out.join("cadence-cfs");
    let why = || format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr);
    let log = std::fs::read_to_string(dir.join("scheduler.log")).unwrap_or_else(|e| panic!("cadence-cfs/scheduler.log: {e}\n{}", why()));
    let meta = rundata::Meta::parse(&std::fs::read_to_string(dir.join("meta.json")).unwrap_or_else(|e| panic!("meta.json: {e}\n{}", why())))
        .unwrap_or_else(|e| panic!("cadence-cfs/meta.json: {e}"));
    assert!(meta.complete, "the cadence run did not complete\n{}", why());
    let cpus = meta.topology.cpus.len() as f64;
    let groups = meta.topology.nodes.iter().filter(|n| !n.is_empty()).count() as f64;
    assert!(groups >= 2.0, "the cadence machine has one node: no machine level across nodes");
    let busy_factor: f64 = log
        .lines()
        .find_map(|l| l.split("busy_factor ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("scheduler.log does not state busy_factor");
    let field = |line: &str, name: &str| -> u64 {
        line.split(' ').find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("no {name} in {line}")).parse().unwrap()
    };
    let seconds: Vec<&str> = log.lines().filter(|l| l.starts_with("stats t=")).collect();
    // Per-second lines; the last is cut short by the unload, the first few hold the pinned second and the spreading.
    let window = 5usize;
    assert!(seconds.len() >= window + 3, "only {} per-second stats lines in cadence-cfs/scheduler.log", seconds.len());
    let used = &seconds[seconds.len() - 1 - window..seconds.len() - 1];
    let passes: u64 = used.iter().map(|l| field(l, "lb_periodic_all")).sum();
    let not_ours: u64 = used.iter().map(|l| field(l, "lb_not_ours")).sum();
    let rate = passes as f64 / window as f64;
    let (lo, hi) = (groups / (2.0 * cpus * 1e-3 * busy_factor), groups / (cpus * 1e-3 * busy_factor));
    eprintln!(
        "[paper] cfs: {rate:.2} machine-level passes/s over the run's last {window} s ({not_ours} passes left to another CPU of the \
         group); Linux 4.9 with {groups} groups of {cpus} CPUs' domain, busy_factor {busy_factor}: {lo:.2}-{hi:.2}/s"
    );
    assert!(
        rate >= lo / 2.0 && rate <= hi * 2.0,
        "{rate:.2} machine-level passes a second, beyond 2x of Linux 4.9's {lo:.2}-{hi:.2}"
    );
}
