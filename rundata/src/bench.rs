// SPDX-License-Identifier: GPL-2.0-only
//! `bench.json`: one overhead benchmark's result (`loadgen bench KIND`), as
//! the study engine's overhead set records it and `analysis report` reads it.
//!
//! A benchmark is one of the kinds below, run under whatever scheduler is
//! loaded. It reports its own metrics (operations per second, latencies)
//! and, for every kind, the scheduler's CPU share over the measured phase:
//! the run time of the loaded sched_ext scheduler's BPF programs (its
//! struct_ops callbacks, `kernel.bpf_stats_enabled`) over CPUs x elapsed
//! time. The kernel's own scheduler has no programs: its share is not
//! measured this way (none), and sched_ext's own code in the kernel (the
//! core that calls the callbacks) is in no scheduler's share.

use serde::{Deserialize, Serialize};

use crate::{SchedulerInfo, Topology};

/// bench.json's layout version.
pub const BENCH_FORMAT_VERSION: u32 = 1;

/// The benchmarks, with what each measures: the one home of their names.
pub const KINDS: [(&str, &str); 7] = [
    ("release", "threads pinned on CPU 0 released by one thread's sched_setaffinity calls, then spinning: the calls' cost"),
    ("pipe", "perf bench sched pipe, two threads ping-ponging on CPU 0: the cost of a wakeup and a switch"),
    ("pipe-free", "perf bench sched pipe, two threads wherever the scheduler puts them: wakeup placement"),
    ("hackbench-pipe", "hackbench, processes over pipes: many short wakeups across CPUs"),
    ("hackbench-socket", "hackbench, threads over UNIX sockets: many short wakeups across CPUs"),
    ("wake", "cyclictest, a 1 ms periodic SCHED_OTHER thread beside one spinner per CPU: wake-to-run latency"),
    ("mixed", "loadgen stress (spinners, sleepers, pipe pairs, fork/exec): the scheduler's CPU share"),
];

/// A benchmark run's bench.json files: its own, or one per benchmark in
/// its subdirectories (`loadgen bench` writes DIR/<kind>/bench.json), in
/// KINDS' order.
pub fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let own = dir.join("bench.json");
    if own.is_file() {
        return vec![own];
    }
    KINDS.iter().map(|(k, _)| dir.join(k).join("bench.json")).filter(|p| p.is_file()).collect()
}

/// Is NAME a benchmark kind?
pub fn is_kind(name: &str) -> bool {
    KINDS.iter().any(|(k, _)| *k == name)
}

/// An application run's bench.json files (`loadgen app` writes
/// DIR/<app>/bench.json), in the suite's order (crate::apps::APPS).
pub fn app_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    crate::apps::APPS.iter().map(|a| dir.join(a.name).join("bench.json")).filter(|p| p.is_file()).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bench {
    pub format_version: u32,
    /// One of KINDS.
    pub kind: String,
    /// "loadgen 0.1.0".
    pub tool: String,
    /// The external program's command line, if the benchmark runs one.
    #[serde(default)]
    pub command: Option<String>,
    /// The machine as the benchmark saw it.
    pub topology: Topology,
    pub kernel_release: String,
    pub scheduler: SchedulerInfo,
    /// Seconds of the measured phase (the share's denominator, per CPU).
    pub elapsed_s: f64,
    pub metrics: Vec<BenchMetric>,
    /// The scheduler's share of the machine over the measured phase, % (none
    /// under the kernel's own scheduler or without BPF run-time stats).
    #[serde(default)]
    pub sched_share_pct: Option<f64>,
    /// Its programs' calls and mean ns per call over the phase.
    #[serde(default)]
    pub sched_calls: Option<u64>,
    #[serde(default)]
    pub sched_ns_per_call: Option<f64>,
    /// Context switches on every CPU over the phase (/proc/stat's ctxt): how
    /// often the policy switches, whatever each switch costs it.
    #[serde(default)]
    pub context_switches: Option<u64>,
    /// The same per callback program (battle_enqueue, ...), the costliest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_programs: Vec<ProgramCost>,
    /// Migrations on every CPU over the phase (perf's cpu-migrations,
    /// machine-wide; the application runs record it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<u64>,
    /// The loaded scheduler's own counters over the phase (read from its
    /// scx_stats socket before and after; the ones that moved), so that a
    /// difference between policies can be explained.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sched_counters: std::collections::BTreeMap<String, u64>,
}

/// One BPF program's run time and calls over a benchmark's measured phase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramCost {
    pub name: String,
    pub run_ns: u64,
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchMetric {
    /// "ops_per_s", "call_us_p99", ...
    pub name: String,
    /// "ops/s", "us", "ms", "messages/s".
    pub unit: String,
    pub value: f64,
    /// Which way is better: true for throughput, false for times.
    pub higher_is_better: bool,
}

impl Bench {
    pub fn parse(text: &str) -> Result<Bench, String> {
        let b: Bench = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if b.format_version != BENCH_FORMAT_VERSION {
            return Err(format!("bench.json format {} (this build reads {BENCH_FORMAT_VERSION})", b.format_version));
        }
        if !is_kind(&b.kind) && crate::apps::by_name(&b.kind).is_none() {
            return Err(format!("unknown benchmark kind or application '{}'", b.kind));
        }
        Ok(b)
    }

    pub fn metric(&self, name: &str) -> Option<&BenchMetric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_round_trips_and_a_bad_kind_is_refused() {
        let b = Bench {
            format_version: BENCH_FORMAT_VERSION,
            kind: "pipe".into(),
            tool: "loadgen 0.1.0".into(),
            command: Some("perf bench sched pipe -T -l 1000".into()),
            topology: Topology { cpus: (0..8).collect(), nodes: vec![(0..8).collect()], llcs: vec![(0..8).collect()] },
            kernel_release: "7.3.4".into(),
            scheduler: SchedulerInfo { name: "kernel (fair class)".into(), sched_ext_state: "disabled".into(), switch_all: None },
            elapsed_s: 1.5,
            metrics: vec![BenchMetric { name: "ops_per_s".into(), unit: "ops/s".into(), value: 1234.0, higher_is_better: true }],
            sched_share_pct: None,
            sched_calls: None,
            sched_ns_per_call: None,
            context_switches: Some(10),
            sched_programs: vec![],
            migrations: None,
            sched_counters: Default::default(),
        };
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(Bench::parse(&text).unwrap(), b);
        assert_eq!(b.metric("ops_per_s").unwrap().value, 1234.0);
        let bad = text.replace("\"pipe\"", "\"pipes\"");
        assert!(Bench::parse(&bad).unwrap_err().contains("pipes"));
    }
}
