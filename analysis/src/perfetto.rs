// SPDX-License-Identifier: GPL-2.0-only
//! A run as a trace for ui.perfetto.dev (or chrome://tracing): the Chrome
//! JSON trace-event format, which Perfetto imports as it is.
//!
//! Tracks, on the run's clock (time 0 = all threads created):
//! - process "CPUs": a counter per CPU with the run's threads on it, and
//!   one per NUMA node; an instant "release" where the threads were let go;
//! - process "threads": one track per thread with an instant at each of its
//!   migrations (from, to), and, for runs of at most [`MAX_THREAD_TIME`]
//!   threads (the starvation runs), a counter of each thread's CPU time;
//! - process "scheduler": the scheduler's counters that moved (from
//!   `scx_battle --stats-csv`), cumulative, when the run has them.
//!
//! Counters are written only where their value changes, so a 10 ms sampled
//! run of minutes stays a few MB.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::counters::SchedCounters;
use crate::run::{load_thread_time, Run};

/// Above this many threads, per-thread CPU time counters are left out (a
/// figure-6 run's 512 would be most of the file and unreadable in the UI).
pub const MAX_THREAD_TIME: usize = 64;

const PID_CPUS: u32 = 1;
const PID_THREADS: u32 = 2;
const PID_SCHED: u32 = 3;

/// What went into a trace, for the caller to report.
#[derive(Debug, Default, PartialEq)]
pub struct TraceCounts {
    pub events: usize,
    pub cpu_tracks: usize,
    pub migrations: usize,
    pub thread_time_tracks: usize,
    pub scheduler_counters: usize,
}

fn us(t_s: f64) -> f64 {
    (t_s * 1e6 * 1000.0).round() / 1000.0
}

fn meta_event(name: &str, pid: u32, tid: Option<u32>, value: &str) -> Value {
    let mut e = json!({ "ph": "M", "name": name, "pid": pid, "args": { "name": value } });
    if let Some(t) = tid {
        e["tid"] = json!(t);
    }
    e
}

/// Counter events of one track, only where the value changes (and at the end).
fn counter_track(events: &mut Vec<Value>, pid: u32, name: &str, series: impl Iterator<Item = (f64, f64)>) {
    let mut last: Option<(f64, f64)> = None;
    let mut last_written = None;
    for (t, v) in series {
        if last_written != Some(v) {
            events.push(json!({ "ph": "C", "pid": pid, "name": name, "ts": us(t), "args": { "value": v } }));
            last_written = Some(v);
        }
        last = Some((t, v));
    }
    if let Some((t, v)) = last {
        events.push(json!({ "ph": "C", "pid": pid, "name": name, "ts": us(t), "args": { "value": v } }));
    }
}

/// The trace of one run directory.
pub fn trace(run: &Run) -> Result<(Value, TraceCounts)> {
    let mut ev = Vec::new();
    let mut n = TraceCounts::default();
    let title = format!("{} ({}, {} threads, {} CPUs)", run.scheduler, run.experiment, run.threads, run.cpus.len());
    ev.push(meta_event("process_name", PID_CPUS, None, &format!("CPUs: threads per CPU, {title}")));
    // The CPUs' process first: sort_index is a number (Chrome's trace format).
    ev.push(json!({ "ph": "M", "name": "process_sort_index", "pid": PID_CPUS, "args": { "sort_index": 0 } }));
    ev.push(meta_event("process_name", PID_THREADS, None, "threads: migrations, CPU time"));

    for (i, cpu) in run.cpus.iter().enumerate() {
        let name = format!("cpu {cpu:>3} (node {})", run.node_ids[run.node_of[i]]);
        counter_track(&mut ev, PID_CPUS, &name, run.samples.iter().map(|s| (s.t, s.counts[i] as f64)));
        n.cpu_tracks += 1;
    }
    for (k, node) in run.node_ids.iter().enumerate() {
        let name = format!("node {node} total");
        let series = run.samples.iter().map(|s| {
            let sum: u32 = s.counts.iter().enumerate().filter(|(i, _)| run.node_of[*i] == k).map(|(_, c)| c).sum();
            (s.t, sum as f64)
        });
        counter_track(&mut ev, PID_CPUS, &name, series);
    }
    if let Some(t) = run.release {
        ev.push(json!({ "ph": "i", "s": "g", "name": "release", "pid": PID_CPUS, "tid": 0, "ts": us(t) }));
    }

    let mut named = std::collections::BTreeSet::new();
    for m in run.migrations.iter().flatten() {
        if named.insert(m.thread) {
            ev.push(meta_event("thread_name", PID_THREADS, Some(m.thread), &format!("thread {}", m.thread)));
        }
        ev.push(json!({
            "ph": "i", "s": "t", "name": format!("{} -> {}", m.from, m.to), "pid": PID_THREADS, "tid": m.thread,
            "ts": us(m.t), "args": { "from": m.from, "to": m.to },
        }));
        n.migrations += 1;
    }
    if let Some(tt) = load_thread_time(&run.dir)? {
        if tt.len() <= MAX_THREAD_TIME {
            for (tid, series) in &tt {
                counter_track(&mut ev, PID_THREADS, &format!("cpu time ms, thread {tid}"), series.iter().copied());
                n.thread_time_tracks += 1;
            }
        }
    }

    if let Some(c) = SchedCounters::load(&run.dir, run.meta.t0_monotonic_ns)? {
        ev.push(meta_event("process_name", PID_SCHED, None, &format!("scheduler counters: {}", run.scheduler)));
        for i in c.active() {
            counter_track(&mut ev, PID_SCHED, &c.names[i], c.samples.iter().map(|(t, v)| (*t, v[i] as f64)));
            n.scheduler_counters += 1;
        }
    }
    n.events = ev.len();
    let doc = json!({
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "metadata": {
            "source": "analysis perfetto",
            "run": run.dir.display().to_string(),
            "scheduler": run.scheduler,
            "kernel": run.kernel,
        },
    });
    Ok((doc, n))
}

/// Writes the trace of `run` to `out` (.json).
pub fn write(run: &Run, out: &Path) -> Result<TraceCounts> {
    if out.extension().is_none_or(|e| e != "json") {
        bail!("{}: the trace is Chrome JSON: name it .json", out.display());
    }
    let (doc, n) = trace(run)?;
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(f);
    serde_json::to_writer(&mut w, &doc).with_context(|| format!("writing {}", out.display()))?;
    w.flush().with_context(|| format!("writing {}", out.display()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_becomes_a_trace_with_every_track() {
        let d = std::env::temp_dir().join(format!("analysis-perfetto-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut meta = rundata::Meta::example_spin(
            rundata::Topology { cpus: vec![0, 1], nodes: vec![vec![0], vec![1]], llcs: vec![vec![0, 1]] },
            4,
            "scx_battle_cfs_0.1.0",
        );
        meta.t0_monotonic_ns = Some(1_000_000_000);
        std::fs::write(d.join("meta.json"), meta.to_json()).unwrap();
        let mut tl = String::from("time_ms,cpu,node,threads\n");
        for i in 0..300 {
            let t = i as f64 * 10.0;
            let on1 = if t < 1000.0 { 0 } else { 2 };
            tl += &format!("{t},0,0,{}\n{t},1,1,{on1}\n", 4 - on1);
        }
        std::fs::write(d.join("timeline.csv"), tl).unwrap();
        std::fs::write(d.join("migrations.csv"), "time_ms,thread,from,to\n1001.0,11,0,1\n1002.5,12,0,1\n").unwrap();
        std::fs::write(d.join("thread_time.csv"), "time_ms,thread,cpu_time_ms\n1000,11,500\n2000,11,1500\n").unwrap();
        std::fs::write(d.join("sched_stats.csv"), "mono_ns,enqueue,lb_success\n1100000000,5,0\n2100000000,9,0\n").unwrap();
        let run = Run::load(&d).unwrap();
        let out = d.join("trace.json");
        let n = write(&run, &out).unwrap();
        assert_eq!((n.cpu_tracks, n.migrations, n.thread_time_tracks, n.scheduler_counters), (2, 2, 1, 1));

        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let ev = doc["traceEvents"].as_array().unwrap();
        assert_eq!(ev.len(), n.events);
        for e in ev {
            assert!(["M", "C", "i"].contains(&e["ph"].as_str().unwrap()), "{e}");
            assert!(e["pid"].is_u64(), "{e}");
            if e["ph"] != "M" {
                assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
            }
        }
        let track = |name: &str| ev.iter().filter(|e| e["name"] == name).collect::<Vec<_>>();
        // CPU 1: 0 until the release, 2 after, and its last value: 3 events, not 300.
        let cpu1 = track("cpu   1 (node 1)");
        assert_eq!(cpu1.len(), 3, "{cpu1:?}");
        assert_eq!((cpu1[1]["ts"].as_f64(), cpu1[1]["args"]["value"].as_f64()), (Some(1_000_000.0), Some(2.0)));
        let sort = track("process_sort_index");
        assert_eq!(sort.len(), 1);
        assert_eq!(sort[0]["args"], serde_json::json!({ "sort_index": 0 }), "{:?}", sort[0]);
        let rel = track("release");
        assert_eq!(rel[0]["ts"].as_f64(), Some(1_000_000.0));
        assert_eq!(track("0 -> 1")[1]["tid"], 12);
        // Counters that never move are left out; enqueue goes on the run's clock.
        assert!(track("lb_success").is_empty());
        assert_eq!(track("enqueue")[0]["ts"].as_f64(), Some(100_000.0));
        assert!(std::fs::metadata(&out).unwrap().len() < 20_000);

        let e = write(&run, &d.join("trace.pftrace")).unwrap_err().to_string();
        assert!(e.contains("name it .json"), "{e}");
    }
}
