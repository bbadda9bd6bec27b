// SPDX-License-Identifier: GPL-2.0-only
//! The overhead benchmarks' report (`study run --overhead`): every
//! benchmark's metrics under every scheduler (medians, and the range over
//! repeats), their ratios to the kernel's own scheduler and to the floor
//! (scx_battle's vtime: one shared queue, the least a sched_ext scheduler
//! does), and the project's cost targets checked against them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rundata::bench::Bench;
use serde::{Deserialize, Serialize};

use crate::report::Spread;

/// The reference columns: the kernel's scheduler, and the floor.
pub const KERNEL: &str = "kernel";
pub const FLOOR: &str = "vtime";

/// Metrics every benchmark has: the scheduler's CPU share, the context
/// switches per second (how often the policy switches), and the scheduler's
/// BPF time per switch (what each switch costs it).
pub const SHARE: &str = "sched_share_pct";
pub const SWITCHES: &str = "context_switches_per_s";
pub const NS_PER_SWITCH: &str = "sched_ns_per_switch";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub bench: String,
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Scheduler -> the metric over its runs.
    pub values: BTreeMap<String, Spread>,
}

impl Row {
    fn median(&self, sched: &str) -> Option<f64> {
        self.values.get(sched).and_then(|s| s.median)
    }
    /// SCHED's median over REFERENCE's.
    pub fn ratio(&self, sched: &str, reference: &str) -> Option<f64> {
        let (a, b) = (self.median(sched)?, self.median(reference)?);
        (b != 0.0).then(|| a / b)
    }
}

/// One target of docs/cost.md, checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub scheduler: String,
    pub what: String,
    /// The measured value it is judged on ("1.8x the kernel", "0.93 of vtime").
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overhead {
    /// In the study's order.
    pub schedulers: Vec<String>,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

/// A benchmark run's scheduler: its directory's name without the round
/// (overhead/cfs.2 is cfs's second run).
fn scheduler_of(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    match name.rsplit_once('.') {
        Some((s, round)) if round.chars().all(|c| c.is_ascii_digit()) && !round.is_empty() => s.to_string(),
        _ => name,
    }
}

pub fn is_bench_dir(dir: &Path) -> bool {
    !rundata::bench::files(dir).is_empty()
}

/// Reads every benchmark run; `order` is the study's scheduler order (others after it).
pub fn build(dirs: &[PathBuf], order: &[String], problems: &mut Vec<String>) -> Result<Option<Overhead>> {
    let mut runs: Vec<(String, Bench)> = Vec::new();
    for d in dirs {
        for path in rundata::bench::files(d) {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            match Bench::parse(&text) {
                Ok(b) => runs.push((scheduler_of(d), b)),
                Err(e) => problems.push(format!("{}: unreadable: {e}", path.display())),
            }
        }
    }
    if runs.is_empty() {
        return Ok(None);
    }
    let mut schedulers: Vec<String> = order.iter().filter(|s| runs.iter().any(|(r, _)| r == *s)).cloned().collect();
    for (s, _) in &runs {
        if !schedulers.contains(s) {
            schedulers.push(s.clone());
        }
    }
    // Benchmarks in the registry's order, metrics in the order the benchmark wrote them, then the share.
    let mut rows = Vec::new();
    for (kind, _) in rundata::bench::KINDS {
        let of_kind: Vec<&(String, Bench)> = runs.iter().filter(|(_, b)| b.kind == kind).collect();
        let Some((_, first)) = of_kind.first() else { continue };
        let mut metrics: Vec<(String, String, bool)> =
            first.metrics.iter().map(|m| (m.name.clone(), m.unit.clone(), m.higher_is_better)).collect();
        metrics.push((SWITCHES.into(), "/s".into(), false));
        metrics.push((SHARE.into(), "%".into(), false));
        metrics.push((NS_PER_SWITCH.into(), "ns".into(), false));
        let value = |b: &Bench, name: &str| -> Option<f64> {
            let switches = b.context_switches.filter(|n| *n > 0).map(|n| n as f64);
            match name {
                SHARE => b.sched_share_pct,
                SWITCHES => switches.map(|n| n / b.elapsed_s.max(1e-9)),
                NS_PER_SWITCH => {
                    let ns = b.sched_share_pct? / 100.0 * b.topology.cpus.len() as f64 * b.elapsed_s * 1e9;
                    switches.map(|n| ns / n)
                }
                _ => b.metric(name).map(|m| m.value),
            }
        };
        for (name, unit, higher) in metrics {
            let values = schedulers
                .iter()
                .filter_map(|s| {
                    let vals: Vec<Option<f64>> = of_kind.iter().filter(|(r, _)| r == s).map(|(_, b)| value(b, &name)).collect();
                    (!vals.is_empty()).then(|| (s.clone(), Spread::of(&vals)))
                })
                .collect();
            rows.push(Row { bench: kind.into(), metric: name, unit, higher_is_better: higher, values });
        }
    }
    let targets = targets(&rows, &schedulers);
    Ok(Some(Overhead { schedulers, rows, targets }))
}

fn row<'a>(rows: &'a [Row], bench: &str, metric: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.bench == bench && r.metric == metric)
}

/// The project's targets (docs/cost.md) for every scheduler but the references.
fn targets(rows: &[Row], schedulers: &[String]) -> Vec<Target> {
    let mut out = Vec::new();
    for s in schedulers.iter().filter(|s| *s != KERNEL && *s != FLOOR) {
        let mut push = |what: &str, measured: String, met: bool| {
            out.push(Target { scheduler: s.clone(), what: what.into(), measured, met })
        };
        if let Some(r) = row(rows, "release", "release_ms").and_then(|r| r.ratio(s, KERNEL)) {
            push("release within 2x of the kernel's", format!("{r:.2}x"), r <= 2.0);
        }
        for (bench, metric) in [("pipe", "ops_per_s"), ("pipe-free", "ops_per_s"), ("hackbench-pipe", "messages_per_s"), ("hackbench-socket", "messages_per_s")] {
            let Some(r) = row(rows, bench, metric) else { continue };
            if let Some(k) = r.ratio(s, KERNEL) {
                push(&format!("{bench} throughput at least 90 % of the kernel's"), format!("{:.0} %", 100.0 * k), k >= 0.9);
            }
            if let Some(f) = r.ratio(s, FLOOR) {
                push(&format!("{bench} throughput at least 95 % of vtime's"), format!("{:.0} %", 100.0 * f), f >= 0.95);
            }
        }
        if let Some(r) = row(rows, "wake", "wake_us_p99").and_then(|r| r.ratio(s, KERNEL)) {
            push("wake p99 beside spinners no worse than the kernel's", format!("{r:.2}x"), r <= 1.0);
        }
        if let Some(v) = row(rows, "mixed", SHARE).and_then(|r| r.median(s)) {
            push("scheduler share under the mixed load below 5 %", format!("{v:.2} %"), v < 5.0);
        }
    }
    out
}

/// A value with as many decimals as it needs.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(s: Option<&Spread>) -> String {
    match s {
        Some(Spread { median: Some(m), min: Some(lo), max: Some(hi), n, .. }) if *n > 1 => {
            format!("{} ({}-{})", num(*m), num(*lo), num(*hi))
        }
        Some(Spread { median: Some(m), .. }) => num(*m),
        _ => "-".into(),
    }
}

/// summary.md's section.
pub fn markdown(o: &Overhead) -> String {
    let mut s = String::new();
    s += "\n## Overhead: what scheduling costs\n\n";
    s += "Every benchmark under every scheduler (`loadgen bench KIND`; `study experiments` says what each measures).\n";
    s += "Medians, with the range over repeated runs in brackets. *Scheduler share*: the run time of the sched_ext\n";
    s += "scheduler's BPF callbacks over CPUs x the benchmark's time (none for the kernel's own scheduler; sched_ext's own\n";
    s += "code in the kernel is in no share). Ratios: a scheduler's median over the kernel's, and over the floor's (vtime,\n";
    s += "scx_battle's one shared queue: the least a sched_ext scheduler does); ↑ higher is better, ↓ lower is better.\n";
    s += "*Context switches* (every CPU, /proc/stat) say how often a policy switches, *scheduler ns per switch* what each\n";
    s += "switch costs its callbacks: a policy that switches more is slower for its choices, not for its code.\n";
    s += "Under TCG a migration costs no cache misses: placement's effect on caches does not show here.\n\n";
    let others: Vec<&String> = o.schedulers.iter().filter(|s| *s != KERNEL && *s != FLOOR).collect();
    let has = |x: &str| o.schedulers.iter().any(|s| s == x);
    s += "| benchmark | metric | ";
    s += &o.schedulers.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" | ");
    for x in &others {
        if has(KERNEL) {
            s += &format!(" | {x} / {KERNEL}");
        }
        if has(FLOOR) {
            s += &format!(" | {x} / {FLOOR}");
        }
    }
    s += " |\n|---|---|";
    let ratio_cols = others.len() * (has(KERNEL) as usize + has(FLOOR) as usize);
    s += &"---|".repeat(o.schedulers.len() + ratio_cols);
    s += "\n";
    for r in &o.rows {
        let arrow = match (r.metric.as_str(), r.higher_is_better) {
            (SWITCHES, _) => "",
            (_, true) => " ↑",
            (_, false) => " ↓",
        };
        s += &format!("| {} | {} ({}){arrow} |", r.bench, r.metric, r.unit);
        for x in &o.schedulers {
            s += &format!(" {} |", cell(r.values.get(x)));
        }
        for x in &others {
            for reference in [KERNEL, FLOOR].iter().filter(|x| has(x)) {
                s += &format!(" {} |", r.ratio(x, reference).map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()));
            }
        }
        s += "\n";
    }
    if !o.targets.is_empty() {
        s += "\n### Targets\n\n| scheduler | target | measured | met |\n|---|---|---|---|\n";
        for t in &o.targets {
            s += &format!("| {} | {} | {} | {} |\n", t.scheduler, t.what, t.measured, if t.met { "yes" } else { "**no**" });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rundata::bench::{BenchMetric, BENCH_FORMAT_VERSION};

    fn bench(dir: &Path, kind: &str, metric: &str, higher: bool, value: f64, share: Option<f64>) {
        std::fs::create_dir_all(dir).unwrap();
        let b = Bench {
            format_version: BENCH_FORMAT_VERSION,
            kind: kind.into(),
            tool: "loadgen test".into(),
            command: None,
            topology: rundata::Topology { cpus: vec![0, 1], nodes: vec![vec![0, 1]], llcs: vec![vec![0, 1]] },
            kernel_release: "7.3.4".into(),
            scheduler: rundata::SchedulerInfo { name: "x".into(), sched_ext_state: "enabled".into(), switch_all: None },
            elapsed_s: 1.0,
            metrics: vec![BenchMetric { name: metric.into(), unit: "u".into(), value, higher_is_better: higher }],
            sched_share_pct: share,
            sched_calls: None,
            sched_ns_per_call: None,
            context_switches: Some(100),
            sched_programs: vec![],
            migrations: None,
            sched_counters: Default::default(),
        };
        std::fs::write(dir.join("bench.json"), serde_json::to_string(&b).unwrap()).unwrap();
    }

    #[test]
    fn medians_over_repeats_ratios_and_targets() {
        let base = std::env::temp_dir().join(format!("overhead-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let mut dirs = Vec::new();
        let mut add = |d: &str, kind: &str, metric: &str, higher: bool, v: f64, share: Option<f64>| {
            bench(&base.join(d).join(kind), kind, metric, higher, v, share);
            dirs.push(base.join(d));
        };
        add("overhead/kernel", "pipe", "ops_per_s", true, 1000.0, None);
        add("overhead/vtime", "pipe", "ops_per_s", true, 900.0, Some(1.0));
        add("overhead/cfs", "pipe", "ops_per_s", true, 800.0, Some(2.0));
        add("overhead/cfs.2", "pipe", "ops_per_s", true, 880.0, Some(4.0));
        add("overhead/cfs.3", "pipe", "ops_per_s", true, 860.0, Some(3.0));
        add("overhead/kernel", "release", "release_ms", false, 6.0, None);
        add("overhead/cfs", "release", "release_ms", false, 30.0, Some(1.5));
        // A run directory with one benchmark per subdirectory, as loadgen bench writes them.
        dirs.sort();
        dirs.dedup();
        let order = vec!["kernel".to_string(), "vtime".into(), "cfs".into(), "ule".into()];
        let mut problems = Vec::new();
        let o = build(&dirs, &order, &mut problems).unwrap().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        // ule ran nothing: not a column.
        assert_eq!(o.schedulers, ["kernel", "vtime", "cfs"]);
        let pipe = o.rows.iter().find(|r| r.bench == "pipe" && r.metric == "ops_per_s").unwrap();
        assert_eq!(pipe.values["cfs"].median, Some(860.0));
        assert_eq!(pipe.values["cfs"].n, 3);
        assert!((pipe.ratio("cfs", "kernel").unwrap() - 0.86).abs() < 1e-9);
        let share = o.rows.iter().find(|r| r.bench == "pipe" && r.metric == SHARE).unwrap();
        assert_eq!(share.values["kernel"].median, None);
        assert_eq!(share.values["cfs"].median, Some(3.0));
        // Release: 5x the kernel's, not within 2x; pipe: 86 % of the kernel's (no), 96 % of vtime's (yes).
        let t = |what: &str| o.targets.iter().find(|t| t.scheduler == "cfs" && t.what.starts_with(what)).unwrap();
        assert!(!t("release").met && t("release").measured == "5.00x");
        assert!(!t("pipe throughput at least 90").met);
        assert!(t("pipe throughput at least 95").met);
        let md = markdown(&o);
        assert!(md.contains("| pipe | ops_per_s (u) ↑ | 1000 | 900.0 | 860.0 (800.0-880.0) | 0.86 | 0.96 |"), "{md}");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_round_is_not_part_of_the_scheduler() {
        assert_eq!(scheduler_of(Path::new("overhead/cfs.2")), "cfs");
        assert_eq!(scheduler_of(Path::new("overhead/cfs-cfs-ule")), "cfs-cfs-ule");
        assert_eq!(scheduler_of(Path::new("overhead/kernel")), "kernel");
    }
}
