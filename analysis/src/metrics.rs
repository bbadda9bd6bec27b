// SPDX-License-Identifier: GPL-2.0-only
//! Balance metrics of a spreading run, from its per-CPU thread counts.
//!
//! Times are seconds after the release. "Within the CFS thresholds" uses the
//! imbalance percentages CFS balances to: node totals within 125% of each
//! other, and inside each node the busiest CPU within 117% of the idlest
//! plus one thread (a count cannot split). "Perfect balance" is every CPU
//! holding floor or ceil of threads/CPUs, given twice: when first reached,
//! and from when it holds to the end of the run. They differ when balance is
//! reached and lost again: ULE's balancer keeps trading a thread between CPUs
//! holding k+1 and k threads, and the stray threads it counts (the recorder,
//! kernel workers) make a spinner move now and then.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::run::{Run, Sample};

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Summary {
    pub scheduler: String,
    pub run: String,
    pub kernel: String,
    pub topology: String,
    pub threads: usize,
    pub release_s: Option<f64>,
    pub duration_after_release_s: Option<f64>,
    /// How long the release itself took (loadgen's burst of sched_setaffinity
    /// calls from one thread), ms.
    pub release_took_ms: Option<f64>,
    /// Every CPU holds at least one thread (after the release's start).
    pub all_busy_s: Option<f64>,
    /// The same, counted from the release's end: the CPU the releasing
    /// thread runs on can take a spinner only once the release is over.
    pub all_busy_after_release_end_s: Option<f64>,
    /// First sample within the CFS thresholds.
    pub cfs_thresholds_s: Option<f64>,
    /// Perfect balance reached, and held to the end.
    pub perfect_balance_s: Option<f64>,
    /// Perfect balance first reached (it may be lost again).
    pub perfect_balance_first_s: Option<f64>,
    /// Of the samples from the first perfect balance to the end, the share
    /// that is perfectly balanced, percent (how well the balance holds).
    #[serde(default)]
    pub perfect_balance_after_first_pct: Option<f64>,
    pub final_cpu_min: u32,
    pub final_cpu_max: u32,
    pub final_node_totals: Vec<u32>,
    pub migrations: Option<usize>,
    pub migrations_across_nodes: Option<usize>,
    /// Migrations by cause (rundata::MoveCause names), and of each how many
    /// left the pinned core; None for runs recorded before causes were.
    #[serde(default)]
    pub migrations_by_cause: Option<BTreeMap<String, CauseCount>>,
    /// Recorder events the ring buffer could not hold: migrations missing from the counts.
    pub lost_events: u64,
    /// Threads /proc showed asleep at the pinned phase's check: spinners
    /// that were not runnable there (None: not counted by that loadgen).
    pub asleep_while_pinned: Option<u64>,
    /// Jain's index of per-thread CPU time: 1 is perfectly fair, 1/n worst.
    pub jain_cpu_time: Option<f64>,
    pub wake_latency_p50_us: Option<f64>,
    pub wake_latency_p99_us: Option<f64>,
    pub complete: bool,
}

/// Migrations of one cause in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseCount {
    pub total: usize,
    /// Of them, moves off the core the threads were pinned on.
    pub from_pinned_core: usize,
}

/// Migrations by cause: None when the run's migrations.csv has no causes.
pub fn migrations_by_cause(run: &Run) -> Option<BTreeMap<String, CauseCount>> {
    let migrations = run.migrations.as_ref()?;
    let pinned = match &run.meta.workload {
        rundata::Workload::Spin(o) => Some(o.pin_cpu),
        _ => None,
    };
    let mut out: BTreeMap<String, CauseCount> = BTreeMap::new();
    for m in migrations {
        let c = out.entry(m.cause?.name().to_string()).or_default();
        c.total += 1;
        c.from_pinned_core += (Some(m.from) == pinned) as usize;
    }
    Some(out)
}

/// Migrations by cause, a row per cause and a column per run: "total (from
/// the pinned core)". A run under another scheduler has one row, "not
/// attributed"; under scx_battle "unknown" is always shown (its 0 is the
/// claim). Empty when no run has causes.
pub fn causes_markdown(rows: &[Summary]) -> String {
    use rundata::MoveCause;
    let with: Vec<(&Summary, &BTreeMap<String, CauseCount>)> =
        rows.iter().filter_map(|r| r.migrations_by_cause.as_ref().map(|m| (r, m))).collect();
    if with.is_empty() {
        return String::new();
    }
    // scx_battle's runs: some migration with a cause (an empty run says nothing).
    let ours = |m: &BTreeMap<String, CauseCount>| m.keys().any(|k| k != MoveCause::NotAttributed.name());
    let mut s = String::from("| cause |");
    for (r, _) in &with {
        s += &format!(" {} |", r.scheduler);
    }
    s += "\n|---";
    s += &"|---".repeat(with.len());
    s += "|\n";
    for cause in MoveCause::ALL {
        let shown = with.iter().any(|(_, m)| m.contains_key(cause.name()) || (cause == MoveCause::Unknown && ours(m)));
        if !shown {
            continue;
        }
        s += &format!("| {} |", cause.describe());
        for (_, m) in &with {
            s += &match m.get(cause.name()) {
                Some(c) => format!(" {} ({}) |", c.total, c.from_pinned_core),
                None if ours(m) && cause != MoveCause::NotAttributed => " 0 |".to_string(),
                None => " - |".to_string(),
            };
        }
        s += "\n";
    }
    s
}

/// Jain's fairness index: (sum x)^2 / (n * sum x^2).
pub fn jain(xs: &[f64]) -> Option<f64> {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    (!xs.is_empty() && sq > 0.0).then(|| sum * sum / (xs.len() as f64 * sq))
}

pub fn within_cfs_thresholds(run: &Run, s: &Sample) -> bool {
    // Only nodes with CPUs count (Run drops memory-only nodes), so no list
    // below is empty; an empty one would make the check false, never panic.
    let nodes = run.node_totals(s);
    let (Some(&nmin), Some(&nmax)) = (nodes.iter().min(), nodes.iter().max()) else { return false };
    if nmax * 100 > nmin * 125 {
        return false;
    }
    (0..run.nr_nodes).all(|n| {
        let c: Vec<u32> = s.counts.iter().enumerate().filter(|(i, _)| run.node_of[*i] == n).map(|(_, &c)| c).collect();
        let (Some(&cmin), Some(&cmax)) = (c.iter().min(), c.iter().max()) else { return false };
        cmin > 0 && cmax * 100 <= cmin * 117 + 100
    })
}

pub fn perfectly_balanced(s: &Sample) -> bool {
    let total: u32 = s.counts.iter().sum();
    let n = s.counts.len() as u32;
    let (lo, hi) = (total / n, total.div_ceil(n));
    s.counts.iter().all(|&c| c == lo || c == hi)
}

pub fn summarize(run: &Run) -> Summary {
    let release = run.release.unwrap_or(0.0);
    let after: Vec<&Sample> = run.samples.iter().filter(|s| s.t >= release).collect();
    let first = |pred: &dyn Fn(&Sample) -> bool| after.iter().find(|s| pred(s)).map(|s| s.t - release);
    // The start of the final stretch of perfect balance, if the run ends balanced.
    let held_from = after
        .iter()
        .rposition(|s| !perfectly_balanced(s))
        .map(|i| i + 1)
        .unwrap_or(0);
    let perfect = after.get(held_from).map(|s| s.t - release);
    let since_first: Vec<&&Sample> = after.iter().skip_while(|s| !perfectly_balanced(s)).collect();
    let share = (!since_first.is_empty())
        .then(|| 100.0 * since_first.iter().filter(|s| perfectly_balanced(s)).count() as f64 / since_first.len() as f64);
    let last = run.samples.last().unwrap();
    let node_idx = |cpu: usize| run.cpus.iter().position(|&c| c == cpu).map(|i| run.node_of[i]);
    Summary {
        scheduler: run.scheduler.clone(),
        run: run.dir.display().to_string(),
        kernel: run.kernel.clone(),
        topology: run.topology(),
        threads: run.threads,
        release_s: run.release,
        duration_after_release_s: after.last().map(|s| s.t - release),
        release_took_ms: run.meta.release_spread_ms,
        all_busy_s: first(&|s| s.counts.iter().all(|&c| c > 0)),
        all_busy_after_release_end_s: first(&|s| s.counts.iter().all(|&c| c > 0))
            .and_then(|t| run.meta.release_spread_ms.map(|ms| (t - ms / 1e3).max(0.0))),
        cfs_thresholds_s: first(&|s| within_cfs_thresholds(run, s)),
        perfect_balance_s: perfect,
        perfect_balance_first_s: first(&|s| perfectly_balanced(s)),
        perfect_balance_after_first_pct: share,
        final_cpu_min: *last.counts.iter().min().unwrap(),
        final_cpu_max: *last.counts.iter().max().unwrap(),
        final_node_totals: run.node_totals(last),
        migrations: run.migrations.as_ref().map(|m| m.len()),
        migrations_by_cause: migrations_by_cause(run),
        lost_events: run.meta.lost_events.unwrap_or(0),
        asleep_while_pinned: run
            .meta
            .proc_checks
            .iter()
            .find(|c| run.release.is_some_and(|r| c.time_ms < r * 1e3))
            .and_then(|c| c.not_runnable),
        migrations_across_nodes: run
            .migrations
            .as_ref()
            .map(|m| m.iter().filter(|x| node_idx(x.from) != node_idx(x.to)).count()),
        jain_cpu_time: run.thread_cpu_ms.as_deref().and_then(jain),
        wake_latency_p50_us: run.wake_latency_us.as_ref().and_then(|l| l.get("p50").copied()),
        wake_latency_p99_us: run.wake_latency_us.as_ref().and_then(|l| l.get("p99").copied()),
        complete: run.complete,
    }
}

/// A time after the release, or how long the run was watched without it.
fn secs(v: Option<f64>, watched: Option<f64>) -> String {
    match (v, watched) {
        (Some(s), _) => format!("{s:.2} s"),
        (None, Some(w)) => format!("not in {w:.0} s"),
        (None, None) => "never".into(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// One markdown table, a row per run.
pub fn markdown(rows: &[Summary]) -> String {
    // Spin runs have no waking threads: the column only when a run has it.
    let wake = rows.iter().any(|r| r.wake_latency_p50_us.is_some());
    let mut s = String::from(
        "| scheduler | release took | all CPUs busy (after its end) | within CFS thresholds | perfect balance (first) | \
         perfectly balanced after first (% of samples) | final per CPU (min-max) | final per node | migrations (across nodes) | \
         Jain (CPU time) |",
    );
    s += if wake { " wake p50 / p99 (us) |\n" } else { "\n" };
    s += &"|---".repeat(if wake { 11 } else { 10 });
    s += "|\n";
    for r in rows {
        let w = r.duration_after_release_s;
        s.push_str(&format!(
            "| {}{}{} | {} | {}{} | {} | {} | {} | {}-{} | {} | {} ({}){} | {} |{}\n",
            r.scheduler,
            if r.complete { "" } else { " (incomplete)" },
            match r.asleep_while_pinned {
                Some(n) if n > 0 => format!(" ({n} threads asleep while pinned)"),
                _ => String::new(),
            },
            r.release_took_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "-".into()),
            secs(r.all_busy_s, w),
            match (r.all_busy_s, r.all_busy_after_release_end_s, r.release_took_ms) {
                (Some(_), Some(e), Some(_)) => format!(" ({e:.2} s)"),
                _ => String::new(),
            },
            secs(r.cfs_thresholds_s, w),
            secs(r.perfect_balance_first_s, w),
            r.perfect_balance_after_first_pct.map(|p| format!("{p:.0} %")).unwrap_or_else(|| "-".into()),
            r.final_cpu_min,
            r.final_cpu_max,
            r.final_node_totals.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" / "),
            opt(r.migrations),
            opt(r.migrations_across_nodes),
            if r.lost_events > 0 { format!(", {} events lost", r.lost_events) } else { String::new() },
            r.jain_cpu_time.map(|j| format!("{j:.3}")).unwrap_or_else(|| "-".into()),
            match (wake, r.wake_latency_p50_us, r.wake_latency_p99_us) {
                (false, ..) => String::new(),
                (true, Some(a), Some(b)) => format!(" {a:.1} / {b:.1} |"),
                (true, ..) => " - |".into(),
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: Vec<(f64, Vec<u32>)>) -> Run {
        let n = samples[0].1.len();
        Run {
            dir: "x".into(),
            scheduler: "s".into(),
            kernel: "k".into(),
            experiment: "spin".into(),
            threads: samples[0].1.iter().sum::<u32>() as usize,
            pin_secs: Some(1.0),
            cpus: (0..n).collect(),
            node_of: (0..n).map(|i| i * 2 / n).collect(),
            nr_nodes: 2,
            node_ids: vec![0, 1],
            mem_only_nodes: 0,
            llc_of: None,
            nr_llcs: 2,
            release: Some(1.0),
            complete: true,
            samples: samples.into_iter().map(|(t, counts)| Sample { t, counts }).collect(),
            migrations: None,
            thread_cpu_ms: Some(vec![1.0, 1.0, 1.0, 1.0]),
            wake_latency_us: None,
            meta: rundata::Meta::example_spin(
                rundata::Topology { cpus: (0..n).collect(), nodes: vec![(0..n / 2).collect(), (n / 2..n).collect()], llcs: vec![] },
                4,
                "scx_battle_cfs_0.1.0",
            ),
        }
    }

    #[test]
    fn times_after_release() {
        let r = run(vec![
            (0.5, vec![8, 0, 0, 0]),
            (1.0, vec![8, 0, 0, 0]),
            (1.5, vec![5, 1, 1, 1]),
            (2.0, vec![3, 2, 2, 1]),
            (2.5, vec![2, 2, 2, 2]),
            (3.0, vec![3, 1, 2, 2]),
            (3.5, vec![2, 2, 2, 2]),
        ]);
        let s = summarize(&r);
        assert_eq!(s.all_busy_s, Some(0.5));
        // [3,2,2,1]: nodes 5/3 > 125%; [2,2,2,2] first passes.
        assert_eq!(s.cfs_thresholds_s, Some(1.5));
        // Balanced at 2.5 s, lost at 3.0 s, held from 3.5 s.
        assert_eq!(s.perfect_balance_first_s, Some(1.5));
        assert_eq!(s.perfect_balance_s, Some(2.5));
        // From the first balance (1.5 s after the release) on: 2 of 3 samples.
        assert!((s.perfect_balance_after_first_pct.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!((s.final_cpu_min, s.final_cpu_max), (2, 2));
        assert_eq!(s.final_node_totals, vec![4, 4]);
        assert_eq!(s.jain_cpu_time, Some(1.0));
    }

    /// The release's own length: all-busy from its start and from its end.
    #[test]
    fn all_busy_is_also_counted_from_the_release_end() {
        let mut r = run(vec![(1.0, vec![8, 0, 0, 0]), (1.08, vec![5, 1, 1, 1]), (2.0, vec![2, 2, 2, 2])]);
        r.meta.release_spread_ms = Some(75.0);
        let s = summarize(&r);
        assert!((s.all_busy_s.unwrap() - 0.08).abs() < 1e-9);
        assert!((s.all_busy_after_release_end_s.unwrap() - 0.005).abs() < 1e-9);
        assert_eq!(s.release_took_ms, Some(75.0));
        let md = markdown(&[s]);
        assert!(md.contains("| 75.0 ms | 0.08 s (0.01 s) |"), "{md}");
        // Every CPU busy before the release ended: 0 after its end, not negative.
        r.meta.release_spread_ms = Some(500.0);
        assert_eq!(summarize(&r).all_busy_after_release_end_s, Some(0.0));
        // A run without the release's length (format 1) shows neither.
        r.meta.release_spread_ms = None;
        assert_eq!(summarize(&r).all_busy_after_release_end_s, None);
        let md = markdown(&[summarize(&r)]);
        assert!(md.contains("| - | 0.08 s |"), "{md}");
    }

    #[test]
    fn lost_recorder_events_are_shown_with_the_migrations() {
        let mut r = run(vec![(1.0, vec![8, 0, 0, 0]), (2.0, vec![2, 2, 2, 2])]);
        r.migrations = Some(vec![]);
        assert!(!markdown(&[summarize(&r)]).contains("lost"));
        r.meta.lost_events = Some(5);
        let md = markdown(&[summarize(&r)]);
        assert!(md.contains("| 0 (0), 5 events lost |"), "{md}");
    }

    /// Migrations by cause: counted per cause with those off the pinned core,
    /// "unknown" shown (0) for scx_battle's runs, one row for another
    /// scheduler's, and nothing for runs recorded before causes.
    #[test]
    fn migrations_are_counted_by_cause() {
        use crate::run::Migration;
        use rundata::MoveCause::*;
        let mig = |from, to, cause| Migration { t: 1.5, thread: 1, from, to, cause: Some(cause) };
        let mut ours = run(vec![(1.0, vec![8, 0, 0, 0]), (2.0, vec![2, 2, 2, 2])]);
        ours.scheduler = "scx_battle ule".into();
        ours.migrations = Some(vec![mig(0, 1, Steal), mig(0, 2, Balance), mig(1, 3, Balance)]);
        let mut kernel = ours.clone();
        kernel.scheduler = "kernel".into();
        kernel.migrations = Some(vec![mig(0, 1, NotAttributed), mig(0, 3, NotAttributed)]);
        let mut old = ours.clone();
        old.migrations = Some(vec![Migration { cause: None, ..mig(0, 1, Steal) }]);
        let s = summarize(&ours);
        let m = s.migrations_by_cause.as_ref().unwrap();
        assert_eq!(m["balance"], CauseCount { total: 2, from_pinned_core: 1 });
        assert_eq!(m["steal"], CauseCount { total: 1, from_pinned_core: 1 });
        assert_eq!(summarize(&old).migrations_by_cause, None);
        let md = causes_markdown(&[s, summarize(&kernel), summarize(&old)]);
        assert!(md.starts_with("| cause | scx_battle ule | kernel |\n"), "{md}");
        assert!(md.contains("| periodic balancer | 2 (1) | - |"), "{md}");
        assert!(md.contains("| idle steal | 1 (1) | - |"), "{md}");
        assert!(md.contains("| unknown | 0 | - |"), "{md}");
        assert!(md.contains("| not attributed (the scheduler notes no causes) | - | 2 (2) |"), "{md}");
        assert!(!md.contains("wakeup"), "{md}");
        assert_eq!(causes_markdown(&[summarize(&old)]), "");
    }

    #[test]
    fn threads_asleep_while_pinned_are_named() {
        let mut r = run(vec![(0.5, vec![8, 0, 0, 0]), (2.0, vec![2, 2, 2, 2])]);
        let check = |t: f64, n: u64| rundata::ProcCheck { time_ms: t, threads: 8, unreadable: 0, placed_differently: 0, not_runnable: Some(n) };
        r.meta.proc_checks = vec![check(500.0, 0), check(1500.0, 3)];
        assert_eq!(summarize(&r).asleep_while_pinned, Some(0));
        assert!(!markdown(&[summarize(&r)]).contains("asleep"));
        r.meta.proc_checks[0] = check(500.0, 3);
        let md = markdown(&[summarize(&r)]);
        assert!(md.contains("| s (3 threads asleep while pinned) |"), "{md}");
    }

    #[test]
    fn never_balanced() {
        let r = run(vec![(1.0, vec![8, 0, 0, 0]), (2.0, vec![4, 4, 0, 0])]);
        let s = summarize(&r);
        assert_eq!(s.all_busy_s, None);
        assert_eq!(s.perfect_balance_s, None);
        assert_eq!(s.perfect_balance_first_s, None);
        // Watched for 1 s after the release: "not in 1 s", not "never".
        let md = markdown(&[s]);
        assert!(md.contains("| not in 1 s | not in 1 s | not in 1 s | - |"), "{md}");
        assert!(!md.contains("wake"), "spin runs have no wake latency column: {md}");
    }

    #[test]
    fn uneven_totals_balance_to_floor_or_ceil() {
        assert!(perfectly_balanced(&Sample { t: 0.0, counts: vec![3, 2, 3, 2] }));
        assert!(!perfectly_balanced(&Sample { t: 0.0, counts: vec![4, 2, 2, 2] }));
    }

    #[test]
    fn jain_index() {
        assert_eq!(jain(&[1.0, 1.0]), Some(1.0));
        assert!((jain(&[1.0, 0.0]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(jain(&[]), None);
    }
}
