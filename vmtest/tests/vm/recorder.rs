// SPDX-License-Identifier: GPL-2.0-only
//! The recorder (loadgen spin and mixed, scripts/check-recorder on `small`)
//! under the kernel's scheduler and scx_battle: every thread in every sample,
//! /proc agreeing, wake latencies. The same boot's CFS runs feed crate::cfs.

use super::*;

/// Threads in the recorder runs: 16 per CPU of `small`.
pub const SPIN_THREADS: usize = 128;

/// The run directories scripts/check-recorder leaves: spin and mixed, under
/// the kernel's scheduler and under scx_battle.
pub type RecorderRuns = [Result<SpinRun, String>; 7];
const REC_DIRS: [&str; 7] =
    ["kernel", "scx_battle", "mixed-kernel", "mixed-scx_battle", "cfs", "mixed-cfs", "cfs-nice"];

/// scripts/check-recorder on `small`: 3 s pinned, 5 s after the release.
pub static RECORDER: Job<RecorderRuns> = Job::new("recorder", || {
    let threads = SPIN_THREADS.to_string();
    let vm = run_vm("recorder", "small", "newest", &["scripts/check-recorder", "--threads", &threads, "--pin-secs", "3", "--run-secs", "5"]);
    let why = format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr);
    REC_DIRS.map(|name| read_spin_run(&vm.out.join(name)).map_err(|e| format!("{e}\n{why}")))
});

/// One run directory of the recorder job: REC_DIRS' index.
pub fn spin_run(which: usize) -> &'static SpinRun {
    let r = &RECORDER.get()[which];
    r.as_ref().unwrap_or_else(|e| panic!("recorder run missing: {e}"))
}
/// The run finished, under the scheduler it claims, and lost nothing.
fn check_spin_meta(r: &SpinRun, scheduler_prefix: &str) {
    let m = &r.meta;
    eprintln!("[{}] meta: {}", r.dir.display(), m.to_json());
    assert!(m.complete, "run not complete");
    let name = &m.scheduler.name;
    assert!(name.starts_with(scheduler_prefix), "scheduler {name}, expected {scheduler_prefix}");
    assert_eq!(m.threads, Some(SPIN_THREADS as u64));
    assert!(m.spawn_ms.is_some_and(|ms| ms > 0.0), "spawn_ms {:?}", m.spawn_ms);
    assert!(m.t0_monotonic_ns.is_some() && m.end_ms.is_some() && m.wait_max_ms.is_some());
    assert_eq!(m.lost_events, Some(0));
    assert_eq!(m.untracked_cpu_events, Some(0));
    assert_eq!(m.inconsistent_samples, Some(0));
    assert!(m.samples.unwrap() > 500, "too few samples for 8 s at 10 ms");
    let pct = m.recorder_cpu.as_ref().unwrap().percent_of_machine;
    assert!(pct.is_finite() && pct > 0.0, "recorder cost {pct}");
    assert_eq!(Some(r.migration_rows as u64), m.migrations);
}

/// Every sample adds up to all threads; all on CPU 0 until the release; on
/// every CPU by the end.
fn check_spin_timeline(r: &SpinRun) {
    let release = r.meta.release_ms.expect("release_ms");
    let (mut before, mut after) = (0, 0);
    for (t, per_cpu) in &r.samples {
        let sum: u32 = per_cpu.iter().sum();
        assert_eq!(sum as usize, SPIN_THREADS, "sample at {t} ms adds up to {sum}");
        if *t < release {
            before += 1;
            assert_eq!(per_cpu[0] as usize, SPIN_THREADS, "at {t} ms, before the release, CPU 0 holds {}", per_cpu[0]);
        } else {
            after += 1;
        }
    }
    assert!(before > 100 && after > 100, "{before} samples before the release, {after} after");
    let (t, last) = r.samples.last().unwrap();
    assert!(last.iter().all(|&n| n > 0), "at the end ({t} ms) some CPU had no thread: {last:?}");
    let first_spread = r.samples.iter().find(|(t, c)| *t >= release && c.iter().all(|&n| n > 0)).map(|s| s.0);
    eprintln!(
        "[{}] release at {release:.1} ms (spread over {:.3} ms); every CPU busy {:.1} ms after it; final {last:?}",
        r.dir.display(),
        r.meta.release_spread_ms.unwrap(),
        first_spread.unwrap() - release,
    );
}

/// /proc/<pid>/task/*/stat agrees with the recorder.
fn check_spin_proc(r: &SpinRun) {
    let checks = &r.meta.proc_checks;
    assert_eq!(checks.len(), 3, "{checks:?}");
    for c in checks {
        assert_eq!(c.unreadable, 0, "{c:?}");
        assert_eq!(c.not_runnable, Some(0), "a spinner was asleep: {c:?}");
    }
    // Pinned: nothing can move, so the two must agree exactly.
    assert_eq!(checks[0].placed_differently, 0, "pinned phase: {:?}", checks[0]);
    // Spreading: each /proc read is bracketed by two recorder reads, so only a
    // thread that moved twice within microseconds can differ; allow two.
    for c in &checks[1..] {
        let d = c.placed_differently;
        assert!(d <= 2, "after release {d} threads placed differently: {c:?}");
    }
}

/// Every thread ran and is in threads.csv.
fn check_spin_threads(r: &SpinRun) {
    assert_eq!(r.threads.len(), SPIN_THREADS);
    for (tid, cpu_ms, _) in &r.threads {
        assert!(*cpu_ms > 0.0, "thread {tid} never ran");
    }
}


/// loadgen mixed pinned on one CPU: the interactive thread's wake-to-run
/// latency is recorded, and every thread ran.
fn check_mixed(r: &SpinRun, scheduler_prefix: &str) {
    let m = &r.meta;
    eprintln!("[{}] wake latency us: {:?}", r.dir.display(), m.wake_latency_us);
    assert!(m.complete);
    assert!(m.scheduler.name.starts_with(scheduler_prefix));
    assert_eq!(m.lost_events, Some(0));
    assert_eq!(m.inconsistent_samples, Some(0));
    let lat = m.wake_latency_us.as_ref().expect("wake_latency_us");
    // 3 s of 10 ms sleeps plus 0.5 ms runs: about 280 wakeups.
    assert!(lat.count > 100, "{lat:?}");
    let (p50, p99, max) = (lat.p50, lat.p99, lat.max);
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat:?}");
    // A wakeup, a context switch and the tracepoints take microseconds, and
    // the spinners sharing the CPU make some waits far longer: a histogram
    // stuck below 1 us, or with nothing longer than its median, is broken.
    assert!(p50 >= 0.5 && max > p50, "implausible wake-to-run latencies: {lat:?}");
    assert_eq!(r.threads.len(), 4);
    assert!(r.threads.iter().all(|t| t.1 > 0.0), "a thread never ran: {:?}", r.threads);
    // Pinned to CPU 1 for the whole run: all four threads there in every sample.
    assert!(r.samples.iter().all(|(_, c)| c[1] == 4), "threads left CPU 1");
}


/// Every migration has a cause: under the kernel "unattributed" only; under
/// scx_battle none "unattributed", and under CFS none "unknown" either (the
/// vtime policy's shared queue notes nothing: any CPU takes any task), with
/// the release's spreading explained by CFS's balancer.
fn check_causes(r: &SpinRun, policy: &str) {
    use rundata::MoveCause::*;
    eprintln!("[{}] migrations by cause: {:?}", r.dir.display(), r.causes);
    let n = |c: rundata::MoveCause| r.causes.get(c.name()).copied().unwrap_or(0);
    assert!(r.migration_rows > 0, "no migrations");
    match policy {
        "kernel" => assert_eq!(n(NotAttributed), r.migration_rows, "the kernel's moves carry causes?"),
        _ => {
            assert_eq!(n(NotAttributed), 0, "the recorder did not share scx_battle's notes");
            if policy == "cfs" {
                assert_eq!(n(Unknown), 0, "CFS moves without a cause");
                assert!(n(Balance) + n(NewIdle) + n(Nohz) > 0, "no balancer move under CFS");
            } else {
                assert!(n(Unknown) > 0, "vtime notes its shared queue's moves now: update this check");
            }
        }
    }
}

/// Final placement of the spreading run: per-node totals within the NUMA
/// imbalance_pct (125%) and per-CPU counts within the LLC one (117%), as CFS

/// One #[test] per check of a recorder run: `name => check(run index[, scheduler])`.
macro_rules! recorder_tests {
    ($($test:ident => $check:ident($which:literal $(, $arg:literal)?)),* $(,)?) => {
        $(#[test] fn $test() { $check(spin_run($which) $(, $arg)?); })*
    };
}

recorder_tests! {
    kernel_meta => check_spin_meta(0, "kernel"),
    kernel_timeline => check_spin_timeline(0),
    kernel_matches_proc => check_spin_proc(0),
    kernel_threads => check_spin_threads(0),
    scx_battle_meta => check_spin_meta(1, "scx_battle"),
    scx_battle_timeline => check_spin_timeline(1),
    scx_battle_matches_proc => check_spin_proc(1),
    scx_battle_threads => check_spin_threads(1),
    mixed_kernel => check_mixed(2, "kernel"),
    mixed_scx_battle => check_mixed(3, "scx_battle"),
    cfs_meta => check_spin_meta(4, "scx_battle"),
    cfs_timeline => check_spin_timeline(4),
    cfs_matches_proc => check_spin_proc(4),
    kernel_migrations_unattributed => check_causes(0, "kernel"),
    vtime_migrations_by_cause => check_causes(1, "vtime"),
    cfs_migrations_by_cause => check_causes(4, "cfs"),
}
