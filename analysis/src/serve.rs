// SPDX-License-Identifier: GPL-2.0-only
//! Runs of `loadgen serve`: server threads (and batch spinners) on one CPU,
//! the paper's starvation experiments. A run directory holds meta.json (with
//! `requests`), threads.csv (CPU time, waits and requests per thread),
//! thread_time.csv (every thread's CPU time over time) and, under scx_battle
//! --policy ule, ule_tasks.csv (scx_battle --tasks-csv: every thread's
//! interactivity score, priority and queue over time, on CLOCK_MONOTONIC).
//!
//! The metrics say who got the CPU: each class's share, how long the batch
//! side went without (under 5 % of the CPU), the longest wait of any thread,
//! Jain's index over the servers, and what the servers delivered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::metrics::jain;
use crate::run::{csv_rows, csv_rows_any, data_file, field, load_meta, load_thread_time, THREADS_HEADER};

/// The batch side counts as starved while it gets less than this share of the CPU.
pub const STARVED_BELOW: f64 = 0.05;
/// The window over which that share is measured, in seconds.
pub const SHARE_WINDOW_S: f64 = 1.0;
/// ULE's kern.sched.interact default: a score below it is interactive.
pub const ULE_INTERACT: u32 = 30;

#[derive(Clone, Debug, PartialEq)]
pub struct Thread {
    pub tid: u32,
    /// "server" or "spinner" (a batch thread).
    pub kind: String,
    pub cpu_ms: f64,
    pub wait_total_ms: f64,
    pub wait_max_ms: f64,
    pub served: Option<u64>,
}

impl Thread {
    pub fn is_batch(&self) -> bool {
        self.kind == "spinner"
    }
}

/// One record of scx_battle --tasks-csv.
#[derive(Clone, Debug, PartialEq)]
pub struct UleSample {
    /// Seconds since the run's time 0.
    pub t: f64,
    pub tid: u32,
    pub score: u32,
    pub pri: u32,
    pub queue: String,
    /// Rescues by the starvation guard so far.
    pub starved: u32,
}

#[derive(Clone, Debug)]
pub struct ServeRun {
    pub dir: PathBuf,
    pub scheduler: String,
    pub complete: bool,
    pub secs: f64,
    pub servers: u32,
    pub batch: u32,
    /// Each server's offered load, percent of the CPU.
    pub load_percent: f64,
    /// CPU time of one request, microseconds.
    pub request_us: u64,
    pub arrivals: String,
    pub threads: Vec<Thread>,
    /// (seconds, CPU ms used so far) per thread, by tid.
    pub cpu_time: BTreeMap<u32, Vec<(f64, f64)>>,
    /// meta.json's `requests`.
    pub requests: Option<rundata::Requests>,
    pub ule: Option<Vec<UleSample>>,
    /// ULE's starvation guard: how long a queued thread may wait, in ms (0:
    /// off), from scx_battle's scheduler.log; None when not under ULE's queue.
    pub guard_limit_ms: Option<u64>,
}

/// The starvation guard's limit that scx_battle's log states at load
/// ("... starve limit 15000 ms ..."), if it does.
pub fn guard_limit_ms(scheduler_log: &str) -> Option<u64> {
    let rest = &scheduler_log[scheduler_log.find("starve limit ")? + "starve limit ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if rest[digits.len()..].starts_with(" ms") {
        digits.parse().ok()
    } else {
        None
    }
}

impl ServeRun {
    pub fn load(dir: &Path) -> Result<ServeRun> {
        let meta = load_meta(dir)?;
        let meta_path = dir.join("meta.json");
        let bad = |what: &str| anyhow::anyhow!("{}: {what}", meta_path.display());
        let rundata::Workload::Serve(opts) = &meta.workload else {
            bail!(bad("not a `loadgen serve` run (experiment is not \"serve\")"));
        };
        let opts = opts.clone();
        let secs = meta.end_ms.map(|ms| ms / 1e3).unwrap_or(opts.secs);
        let t0_ns = meta.t0_monotonic_ns;

        let thr_path = data_file(dir, "threads.csv");
        let threads = csv_rows(&thr_path, THREADS_HEADER)?
            .iter()
            .map(|(line, c)| {
                let f = |i: usize, name: &str| field::<f64>(&thr_path, *line, name, &c[i]);
                Ok(Thread {
                    tid: field(&thr_path, *line, "thread", &c[0])?,
                    kind: c[1].clone(),
                    cpu_ms: f(3, "cpu_time_ms")?,
                    wait_total_ms: f(5, "wait_total_ms")?,
                    wait_max_ms: f(6, "wait_max_ms")?,
                    served: if c[8].is_empty() { None } else { Some(field(&thr_path, *line, "served", &c[8])?) },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if threads.is_empty() {
            bail!("{}: no threads", thr_path.display());
        }

        let tt_path = data_file(dir, "thread_time.csv");
        let cpu_time = load_thread_time(dir)?.ok_or_else(|| anyhow::anyhow!("{}: missing", tt_path.display()))?;
        if let Some(tid) = cpu_time.keys().find(|tid| !threads.iter().any(|th| th.tid == **tid)) {
            bail!("{}: thread {tid} is not in threads.csv", tt_path.display());
        }
        if cpu_time.is_empty() {
            bail!("{}: no samples", tt_path.display());
        }

        let ule_path = data_file(dir, "ule_tasks.csv");
        let ule = if ule_path.exists() {
            let t0 = t0_ns.ok_or_else(|| bad("no t0_monotonic_ns to place ule_tasks.csv on the run's clock"))?;
            let header = rundata::ULE_TASKS_HEADER;
            let rows = csv_rows_any(&ule_path, &[header])?;
            let mut out = Vec::with_capacity(rows.len());
            for (line, c) in rows {
                let mono: u64 = field(&ule_path, line, "mono_ns", &c[0])?;
                out.push(UleSample {
                    t: (mono as f64 - t0 as f64) / 1e9,
                    tid: field(&ule_path, line, "tid", &c[1])?,
                    score: field(&ule_path, line, "score", &c[3])?,
                    pri: field(&ule_path, line, "pri", &c[4])?,
                    queue: c[6].clone(),
                    starved: field(&ule_path, line, "starved", &c[9])?,
                });
            }
            Some(out)
        } else {
            None
        };

        Ok(ServeRun {
            dir: dir.to_path_buf(),
            scheduler: meta.scheduler_label(),
            complete: meta.complete,
            secs,
            servers: opts.servers as u32,
            batch: opts.batch as u32,
            load_percent: opts.load_percent,
            request_us: opts.request_us,
            arrivals: opts.arrivals.clone(),
            threads,
            cpu_time,
            requests: meta.requests.clone(),
            ule,
            guard_limit_ms: std::fs::read_to_string(dir.join("scheduler.log")).ok().and_then(|l| guard_limit_ms(&l)),
        })
    }

    /// The CPU share a batch thread is due under max-min fairness: every
    /// thread gets an equal share, except servers that ask for less, whose
    /// leftover the others split (water-filling over the offered loads).
    pub fn batch_fair_share(&self) -> f64 {
        let n = (self.servers + self.batch) as f64;
        if self.batch == 0 {
            return 0.0;
        }
        let d = self.load_percent / 100.0;
        // Servers asking for less than the equal share keep what they ask.
        if d * n < 1.0 {
            (1.0 - d * self.servers as f64) / self.batch as f64
        } else {
            1.0 / n
        }
    }

    /// The longest stretch, in seconds, during which thread `tid` got less
    /// than STARVED_BELOW of the CPU, measured over SHARE_WINDOW_S windows.
    pub fn longest_starved(&self, tid: u32) -> f64 {
        let Some(series) = self.cpu_time.get(&tid) else { return 0.0 };
        let (mut best, mut start): (f64, Option<f64>) = (0.0, None);
        let mut j = 0;
        for &(t, ms) in series {
            if t < SHARE_WINDOW_S {
                continue;
            }
            while series[j + 1].0 <= t - SHARE_WINDOW_S {
                j += 1;
            }
            let (t0, ms0) = series[j];
            let share = (ms - ms0) / 1e3 / (t - t0).max(1e-9);
            if share < STARVED_BELOW {
                let s = *start.get_or_insert(t0);
                best = best.max(t - s);
            } else {
                start = None;
            }
        }
        best
    }
}

/// What `analysis starvation` reports per run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServeSummary {
    pub scheduler: String,
    pub run: PathBuf,
    pub complete: bool,
    pub secs: f64,
    pub servers: u32,
    pub batch: u32,
    pub offered_percent: f64,
    pub arrivals: String,
    /// Shares of the CPU over the run, percent.
    pub batch_share_percent: f64,
    pub servers_share_percent: f64,
    /// Max-min fair share of one batch thread, percent.
    pub batch_fair_percent: f64,
    /// The longest time a batch thread got under 5 % of the CPU, seconds.
    pub batch_starved_s: f64,
    /// The longest single wait for the CPU of any batch / server thread, ms.
    pub batch_longest_wait_ms: f64,
    pub servers_longest_wait_ms: f64,
    /// Servers that got under 5 % of the CPU for 5 s or more.
    pub servers_starved: usize,
    /// Jain's index of the servers' CPU times (1: all equal).
    pub servers_jain: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    /// ULE's starvation guard: rescues recorded by --tasks-csv (None: no record).
    pub guard_rescues: Option<u64>,
}

pub fn summarize(r: &ServeRun) -> ServeSummary {
    // Percent of the CPU's time over the run. The threads' CPU times are read
    // when they stop, a few ms after the run's end: when their total exceeds
    // the run's length, shares are of that total, so none passes 100 %.
    let total_s = r.threads.iter().map(|t| t.cpu_ms).sum::<f64>() / 1e3;
    let share = |batch: bool| {
        100.0 * r.threads.iter().filter(|t| t.is_batch() == batch).map(|t| t.cpu_ms).sum::<f64>() / 1e3 / r.secs.max(total_s)
    };
    let longest_wait = |batch: bool| r.threads.iter().filter(|t| t.is_batch() == batch).map(|t| t.wait_max_ms).fold(0.0, f64::max);
    let servers: Vec<&Thread> = r.threads.iter().filter(|t| !t.is_batch()).collect();
    let lat = r.requests.as_ref().map(|x| &x.latency_us);
    let guard_rescues = r.ule.as_ref().map(|samples| {
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
        for s in samples {
            last.insert(s.tid, s.starved);
        }
        last.values().map(|&n| n as u64).sum()
    });
    ServeSummary {
        scheduler: r.scheduler.clone(),
        run: r.dir.clone(),
        complete: r.complete,
        secs: r.secs,
        servers: r.servers,
        batch: r.batch,
        offered_percent: r.load_percent * r.servers as f64,
        arrivals: r.arrivals.clone(),
        batch_share_percent: share(true),
        servers_share_percent: share(false),
        batch_fair_percent: 100.0 * r.batch_fair_share(),
        batch_starved_s: r.threads.iter().filter(|t| t.is_batch()).map(|t| r.longest_starved(t.tid)).fold(0.0, f64::max),
        batch_longest_wait_ms: longest_wait(true),
        servers_longest_wait_ms: longest_wait(false),
        servers_starved: servers.iter().filter(|t| r.longest_starved(t.tid) >= 5.0).count(),
        servers_jain: jain(&servers.iter().map(|t| t.cpu_ms).collect::<Vec<_>>()),
        requests_per_s: r.requests.as_ref().map(|x| x.per_second),
        latency_p50_us: lat.map(|l| l.p50),
        latency_p99_us: lat.map(|l| l.p99),
        guard_rescues,
    }
}

/// x with one decimal, never "-0.0".
fn one(x: f64) -> String {
    format!("{:.1}", (x * 10.0).round() / 10.0 + 0.0)
}

pub fn markdown(rows: &[ServeSummary]) -> String {
    let opt = |v: Option<f64>, prec: usize| v.map(|x| format!("{:.prec$}", x + 0.0)).unwrap_or_else(|| "-".into());
    let mut s = String::from(
        "| scheduler | batch CPU % (fair) | batch starved (s) | servers CPU % (asked) | servers starved | longest wait batch / servers (ms) | \
         Jain (servers) | requests/s | latency p50 / p99 (ms) | guard rescues |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let batch = if r.batch > 0 {
            format!("{} ({})", one(r.batch_share_percent), one(r.batch_fair_percent))
        } else {
            "-".into()
        };
        s.push_str(&format!(
            "| {}{} | {batch} | {} | {} | {} of {} | {} / {:.0} | {} | {} | {} / {} | {} |\n",
            r.scheduler,
            if r.complete { "" } else { " (incomplete)" },
            if r.batch > 0 { one(r.batch_starved_s) } else { "-".into() },
            format!("{} ({})", one(r.servers_share_percent), one(r.offered_percent)),
            r.servers_starved,
            r.servers,
            if r.batch > 0 { format!("{:.0}", r.batch_longest_wait_ms) } else { "-".into() },
            r.servers_longest_wait_ms,
            opt(r.servers_jain, 3),
            opt(r.requests_per_s, 0),
            opt(r.latency_p50_us.map(|u| u / 1e3), 1),
            opt(r.latency_p99_us.map(|u| u / 1e3), 1),
            r.guard_rescues.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(servers: u32, batch: u32, load: f64) -> ServeRun {
        ServeRun {
            dir: PathBuf::from("x"),
            scheduler: "s".into(),
            complete: true,
            secs: 10.0,
            servers,
            batch,
            load_percent: load,
            request_us: 1000,
            arrivals: "closed".into(),
            threads: Vec::new(),
            cpu_time: BTreeMap::new(),
            requests: None,
            ule: None,
            guard_limit_ms: None,
        }
    }

    #[test]
    fn guard_limit_is_read_from_the_log() {
        let log = "scx_battle: ule: quantum 94488 us (min 15748 us), interact 30, preempt_thresh 80, balance 1 every ~1000 ms, \
                   steal_idle 1 steal_thresh 2, static_boost 152, starve limit 15000 ms (a look every 100 ms, at up to 32 realtime threads)\n";
        assert_eq!(guard_limit_ms(log), Some(15000));
        assert_eq!(guard_limit_ms(&log.replace("15000", "0")), Some(0));
        assert_eq!(guard_limit_ms("scx_battle: cfs: balances over ..."), None);
        assert_eq!(guard_limit_ms("starve limit soon"), None);
    }

    #[test]
    fn shares_stay_within_100_percent_and_zero_has_no_sign() {
        // Two servers whose CPU times, read at their stop, add up to 10.02 s of a 10 s run.
        let mut r = run(2, 0, 60.0);
        let t = |tid, ms| Thread { tid, kind: "server".into(), cpu_ms: ms, wait_total_ms: 0.0, wait_max_ms: 0.0, served: None };
        r.threads = vec![t(11, 5010.0), t(12, 5010.0)];
        let s = summarize(&r);
        assert!((s.servers_share_percent - 100.0).abs() < 1e-9, "{}", s.servers_share_percent);
        assert_eq!(one(-0.0001), "0.0");
        assert_eq!(one(11.149), "11.1");
        assert!(markdown(&[s]).contains("| 100.0 (120.0) |"), "{}", markdown(&[summarize(&r)]));
    }

    #[test]
    fn fair_share_fills_what_servers_leave() {
        // 8 servers at 25 % want 200 %: everyone gets a ninth.
        assert!((run(8, 1, 25.0).batch_fair_share() - 1.0 / 9.0).abs() < 1e-12);
        // 4 servers at 10 % leave 60 % to the batch thread.
        assert!((run(4, 1, 10.0).batch_fair_share() - 0.6).abs() < 1e-12);
        assert_eq!(run(4, 0, 10.0).batch_fair_share(), 0.0);
    }

    /// A run directory as loadgen serve writes it: 1 batch thread (tid 10)
    /// that gets nothing after 1 s, 2 servers (11, 12) that share the rest.
    fn serve_dir(name: &str, experiment: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("analysis-serve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut m = rundata::Meta::example_serve(1, "scx_battle_ule_0.1.0");
        if experiment != "serve" {
            m.workload = rundata::Meta::example_spin(m.topology.clone(), 3, "x").workload;
        }
        m.end_ms = Some(10_000.0);
        m.t0_monotonic_ns = Some(1_000_000_000);
        m.requests = Some(rundata::Requests {
            served: 9000,
            per_second: 900.0,
            backlog_at_end: 0,
            latency_us: rundata::RequestLatency { p50: 1100.0, p90: 2000.0, p99: 4000.0, max: 5000.0 },
            servers: vec![],
        });
        let meta = m.to_json();
        std::fs::write(d.join("meta.json"), meta).unwrap();
        std::fs::write(
            d.join("threads.csv"),
            format!("{THREADS_HEADER}\n10,spinner,0,500.0,0,9400.0,9000.0,3,,\n11,server,0,4750.0,0,100.0,2.0,4000,4500,0\n12,server,0,4750.0,0,100.0,2.0,4000,4500,0\n"),
        )
        .unwrap();
        let mut tt = String::from("time_ms,thread,cpu_time_ms\n");
        for i in 0..=100 {
            let t = i as f64 * 100.0;
            let batch = t.min(1000.0) / 2.0;
            let server = (t - batch) / 2.0;
            tt += &format!("{t},10,{batch}\n{t},11,{server}\n{t},12,{server}\n");
        }
        std::fs::write(d.join("thread_time.csv"), tt).unwrap();
        d
    }

    #[test]
    fn a_serve_run_reads_and_measures() {
        let d = serve_dir("good", "serve");
        std::fs::write(
            d.join("ule_tasks.csv"),
            "mono_ns,tid,comm,score,pri,nice,queue,run_ms,sleep_ms,starved\n\
             2000000000,10,lg-spinner,50,177,0,batch,900.0,1.0,0\n\
             6000000000,10,lg-spinner,50,177,0,batch,900.0,1.0,1\n",
        )
        .unwrap();
        let r = ServeRun::load(&d).unwrap();
        let s = summarize(&r);
        assert_eq!((s.batch, s.servers, s.offered_percent), (1, 2, 100.0));
        assert!((s.batch_share_percent - 5.0).abs() < 1e-9, "{s:?}");
        // Nothing from 1 s to the end: 9 s, give or take a window step.
        assert!((s.batch_starved_s - 9.0).abs() < 0.15, "{s:?}");
        assert_eq!(s.servers_starved, 0);
        assert_eq!(s.guard_rescues, Some(1));
        assert_eq!(r.ule.as_ref().unwrap()[0].t, 1.0, "mono_ns on the run's clock");
        let md = markdown(&[s]);
        assert!(md.contains("| scx_battle ule | 5.0 (33.3) | 9.0 |"), "{md}");
        // The figure: a CPU-time panel and a score panel.
        for ext in ["png", "svg"] {
            let out = d.join(format!("starvation.{ext}"));
            crate::starve_plot::plot(std::slice::from_ref(&r), &out).unwrap();
            let size = std::fs::metadata(&out).unwrap().len();
            assert!(size > 10_000, "{ext}: {size} bytes");
        }
        let e = crate::starve_plot::plot(&[r], &d.join("x.jpg")).unwrap_err().to_string();
        assert!(e.contains(".png or .svg"), "{e}");
    }

    #[test]
    fn a_serve_run_reads_its_gzipped_files() {
        // scripts/reproduce keeps thread_time.csv and ule_tasks.csv gzipped.
        use std::io::Write;
        let d = serve_dir("gz", "serve");
        let tasks = "mono_ns,tid,comm,score,pri,nice,queue,run_ms,sleep_ms,starved\n\
                     2000000000,10,lg-spinner,50,177,0,batch,900.0,1.0,2\n";
        std::fs::write(d.join("ule_tasks.csv"), tasks).unwrap();
        for name in ["thread_time.csv", "ule_tasks.csv"] {
            let plain = std::fs::read(d.join(name)).unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&plain).unwrap();
            std::fs::write(d.join(format!("{name}.gz")), gz.finish().unwrap()).unwrap();
            std::fs::remove_file(d.join(name)).unwrap();
        }
        let r = ServeRun::load(&d).unwrap();
        assert_eq!(summarize(&r).guard_rescues, Some(2));
        assert_eq!(r.cpu_time.len(), 3);
    }

    #[test]
    fn bad_serve_runs_are_errors_naming_the_file() {
        let e = format!("{:#}", ServeRun::load(&serve_dir("spin", "spin")).unwrap_err());
        assert!(e.contains("meta.json") && e.contains("not a `loadgen serve` run"), "{e}");
        let d = serve_dir("nott", "serve");
        std::fs::remove_file(d.join("thread_time.csv")).unwrap();
        let e = format!("{:#}", ServeRun::load(&d).unwrap_err());
        assert!(e.contains("thread_time.csv"), "{e}");
        let d = serve_dir("stranger", "serve");
        std::fs::write(d.join("thread_time.csv"), "time_ms,thread,cpu_time_ms\n0.0,99,1.0\n").unwrap();
        let e = format!("{:#}", ServeRun::load(&d).unwrap_err());
        assert!(e.contains("thread 99 is not in threads.csv"), "{e}");
        let d = serve_dir("notime", "serve");
        std::fs::write(d.join("ule_tasks.csv"), "wrong,header\n").unwrap();
        let e = format!("{:#}", ServeRun::load(&d).unwrap_err());
        assert!(e.contains("ule_tasks.csv") && e.contains("columns"), "{e}");
    }

    #[test]
    fn starved_stretches_use_a_sliding_window() {
        let mut r = run(1, 1, 25.0);
        // 0..3 s: half the CPU; 3..9 s: nothing; 9..10 s: all of it.
        let mut series = Vec::new();
        for i in 0..=100 {
            let t = i as f64 / 10.0;
            let ms = if t <= 3.0 { t * 500.0 } else if t <= 9.0 { 1500.0 } else { 1500.0 + (t - 9.0) * 1000.0 };
            series.push((t, ms));
        }
        r.cpu_time.insert(7, series);
        let s = r.longest_starved(7);
        assert!((s - 6.0).abs() < 0.25, "{s}");
        assert_eq!(r.longest_starved(8), 0.0);
    }
}
