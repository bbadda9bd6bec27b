// SPDX-License-Identifier: GPL-2.0-only
//! `loadgen bench KIND`: what scheduling costs under whatever scheduler is
//! loaded, one benchmark per run (rundata::bench::KINDS says what each
//! measures). Three are programs we did not write (perf bench sched pipe,
//! hackbench and cyclictest, from Debian's linux-perf and rt-tests); the
//! release and the mixed load are loadgen's own.
//!
//! Every kind also measures the scheduler's CPU share over its measured
//! phase: the run time of the loaded sched_ext scheduler's struct_ops
//! programs (BPF run-time stats are on while loadgen runs) over CPUs x
//! elapsed time. Writes `bench.json` (rundata::bench::Bench) and the
//! external program's output (`tool.txt`) into `--out`. A program that is
//! missing or prints nothing we can parse fails the run: nothing is
//! recorded as zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rundata::bench::{Bench, BenchMetric, ProgramCost, BENCH_FORMAT_VERSION};

use crate::sys;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// The benchmarks, comma-separated, or all (release, pipe, pipe-free,
    /// hackbench-pipe, hackbench-socket, wake, mixed; rundata::bench::KINDS),
    /// one after the other.
    #[arg(value_parser = kind, value_delimiter = ',', required_unless_present = "list")]
    kinds: Vec<String>,
    /// Print the benchmarks, one per line (name, then what it measures), and exit.
    #[arg(long)]
    list: bool,
    /// Seconds of a benchmark's measured phase where it has one: spinning
    /// after the release, cyclictest's run, the mixed load.
    #[arg(long, default_value_t = 10.0, value_parser = crate::positive_secs)]
    secs: f64,
    /// release: the threads released [default: 16 per CPU, the paper's 512 on 32].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=rundata::MAX_THREADS as u64))]
    threads: Option<u64>,
    /// pipe, pipe-free: perf bench sched pipe's round trips.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pipe_loops: u64,
    /// hackbench-*: messages per sender (groups: one per 4 CPUs, 20 senders and receivers each).
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    hackbench_loops: u64,
    /// Where each benchmark writes: DIR/<kind>/bench.json, and the program's output there.
    #[arg(long, value_name = "DIR", required_unless_present = "list")]
    out: Option<PathBuf>,
}

fn kind(s: &str) -> Result<String, String> {
    if s == "all" || rundata::bench::is_kind(s) {
        Ok(s.to_string())
    } else {
        Err(format!("no benchmark '{s}' (there are {}, or all)", rundata::bench::KINDS.map(|k| k.0).join(", ")))
    }
}

/// Run time and calls of every loaded struct_ops program by name: the
/// sched_ext scheduler's callbacks (none under the kernel's own scheduler).
fn sched_bpf() -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for p in libbpf_rs::query::ProgInfoIter::default().filter(|p| p.ty == libbpf_rs::ProgramType::StructOps) {
        let e = out.entry(p.name.to_string_lossy().to_string()).or_insert((0, 0));
        e.0 += p.run_time_ns;
        e.1 += p.run_cnt;
    }
    out
}

/// Context switches since boot, every CPU (/proc/stat's ctxt).
fn context_switches() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("ctxt ")).and_then(|v| v.trim().parse().ok())
}

/// The scheduler's cost over a phase, from two `sched_bpf` readings.
pub(crate) struct Phase {
    t0: Instant,
    bpf0: BTreeMap<String, (u64, u64)>,
    ctxt0: Option<u64>,
}

/// What a phase cost the scheduler.
pub(crate) struct Cost {
    pub elapsed_s: f64,
    pub share_pct: Option<f64>,
    pub calls: Option<u64>,
    pub ns_per_call: Option<f64>,
    pub programs: Vec<ProgramCost>,
    pub context_switches: Option<u64>,
}

impl Phase {
    pub(crate) fn start() -> Phase {
        Phase { bpf0: sched_bpf(), ctxt0: context_switches(), t0: Instant::now() }
    }
    /// No share under the kernel's scheduler, or without BPF run-time stats.
    pub(crate) fn end(self, cpus: usize, stats_on: bool) -> Cost {
        let bpf1 = sched_bpf();
        let elapsed_s = self.t0.elapsed().as_secs_f64();
        let switches = context_switches().zip(self.ctxt0).map(|(b, a)| b.saturating_sub(a));
        if !stats_on || !sys::scheduler().is_sched_ext() {
            return Cost { elapsed_s, share_pct: None, calls: None, ns_per_call: None, programs: vec![], context_switches: switches };
        }
        let mut programs: Vec<ProgramCost> = bpf1
            .iter()
            .map(|(name, (ns, n))| {
                let (ns0, n0) = self.bpf0.get(name).copied().unwrap_or((0, 0));
                ProgramCost { name: name.clone(), run_ns: ns.saturating_sub(ns0), calls: n.saturating_sub(n0) }
            })
            .filter(|p| p.calls > 0)
            .collect();
        programs.sort_by(|a, b| b.run_ns.cmp(&a.run_ns));
        let ns: u64 = programs.iter().map(|p| p.run_ns).sum();
        let calls: u64 = programs.iter().map(|p| p.calls).sum();
        Cost {
            elapsed_s,
            share_pct: Some(100.0 * ns as f64 / (cpus as f64 * elapsed_s * 1e9)),
            calls: Some(calls),
            ns_per_call: (calls > 0).then(|| ns as f64 / calls as f64),
            programs,
            context_switches: switches,
        }
    }
}

pub(crate) fn metric(name: &str, unit: &str, value: f64, higher_is_better: bool) -> BenchMetric {
    BenchMetric { name: name.into(), unit: unit.into(), value, higher_is_better }
}

pub fn run(o: &Opts) -> Result<()> {
    if o.list {
        for (k, about) in rundata::bench::KINDS {
            println!("{k:<17} {about}");
        }
        return Ok(());
    }
    let out = o.out.as_ref().context("--out DIR is needed")?;
    let m = crate::experiment::Machine::detect()?;
    let stats = sys::BpfStats::enable();
    if !stats.active() {
        eprintln!("loadgen bench: warning: BPF run-time stats could not be enabled (not root?): no scheduler share");
    }
    let (stop, interrupted) = sys::stop_on_signal()?;
    let kinds: Vec<&str> = if o.kinds.iter().any(|k| k == "all") {
        rundata::bench::KINDS.iter().map(|k| k.0).collect()
    } else {
        o.kinds.iter().map(String::as_str).collect()
    };
    for kind in kinds {
        let dir = out.join(kind);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let b = one(o, kind, &m, stats.active(), &stop, &dir);
        if interrupted.load(Ordering::Relaxed) {
            bail!("interrupted during {kind}: it is not recorded");
        }
        let b = b.with_context(|| format!("benchmark {kind}"))?;
        let json = serde_json::to_string_pretty(&b)?;
        std::fs::write(dir.join("bench.json"), format!("{json}\n")).context("writing bench.json")?;
        let ms: Vec<String> = b.metrics.iter().map(|m| format!("{} {:.1} {}", m.name, m.value, m.unit)).collect();
        let share = b.sched_share_pct.map(|s| format!("; scheduler share {s:.2} %")).unwrap_or_default();
        eprintln!("loadgen bench {kind}: {}{share}", ms.join(", "));
        let top: Vec<String> = b
            .sched_programs
            .iter()
            .take(4)
            .map(|p| format!("{} {:.0} ns x {}", p.name, p.run_ns as f64 / p.calls.max(1) as f64, p.calls))
            .collect();
        if !top.is_empty() {
            eprintln!("loadgen bench {kind}: costliest callbacks: {}", top.join(", "));
        }
    }
    Ok(())
}

/// One benchmark, its output into DIR.
fn one(o: &Opts, kind: &str, m: &crate::experiment::Machine, stats_on: bool, stop: &Arc<AtomicBool>, dir: &Path) -> Result<Bench> {
    let cpus = m.cpus.len();
    let scheduler = sys::scheduler();
    // The measured phase: the program's run, or (release, wake) from the
    // moment the set-up threads are in place until the measurement ends.
    let phase = Phase::start();
    let mut own_cost = None;
    let (command, metrics) = match kind {
        "release" => {
            let (metrics, cost) = release(o.threads.unwrap_or(16 * cpus as u64), o.secs, m, stats_on, stop)?;
            own_cost = Some(cost);
            (None, metrics)
        }
        "pipe" | "pipe-free" => {
            let loops = o.pipe_loops;
            let mut cmd = tool("perf", "linux-perf")?;
            cmd.args(["bench", "sched", "pipe", "-T", "-l", &loops.to_string()]);
            let text = run_tool(cmd, kind == "pipe", dir, stop)?;
            (Some(format!("perf bench sched pipe -T -l {loops}")), parse_perf_pipe(&text)?)
        }
        "hackbench-pipe" | "hackbench-socket" => {
            let groups = (cpus / 4).max(1);
            let mode: &[&str] = if kind == "hackbench-pipe" { &["-P", "-p"] } else { &["-T"] };
            let (g, l) = (groups.to_string(), o.hackbench_loops.to_string());
            let args: Vec<&str> = mode.iter().copied().chain(["-g", &g, "-l", &l]).collect();
            let mut cmd = tool("hackbench", "rt-tests")?;
            cmd.args(&args);
            let text = run_tool(cmd, false, dir, stop)?;
            (Some(format!("hackbench {}", args.join(" "))), parse_hackbench(&text)?)
        }
        "wake" => {
            let mut cmd = tool("cyclictest", "rt-tests")?;
            let secs = (o.secs.round() as u64).max(1);
            // SCHED_OTHER, so that the scheduler under test schedules it (any
            // -p, even -p 0, makes cyclictest a SCHED_FIFO thread).
            let args = ["-t", "1", "--policy=other", "-i", "1000", "-q", "-m", "-h", &HIST_US.to_string(), "-D", &secs.to_string()];
            cmd.args(args);
            let done = Arc::new(AtomicBool::new(false));
            let spinners = spinners(cpus, &done)?;
            let wake_phase = Phase::start();
            let text = run_tool(cmd, false, dir, stop);
            own_cost = Some(wake_phase.end(cpus, stats_on));
            done.store(true, Ordering::Relaxed);
            for s in spinners {
                let _ = s.join();
            }
            let text = text?;
            let log = std::fs::read_to_string(dir.join("tool.txt")).unwrap_or_default();
            if log.contains("realtime priority") {
                bail!("cyclictest ran as a real-time thread ({}): not under the scheduler being measured", log.trim());
            }
            // Its histogram has a line per microsecond up to HIST_US, mostly zeros: keep the others.
            let kept: String = text.lines().filter(|l| !is_empty_bucket(l)).map(|l| format!("{l}\n")).collect();
            std::fs::write(dir.join("tool.out.txt"), kept)?;
            (Some(format!("cyclictest {} (beside {cpus} spinners)", args.join(" "))), parse_cyclictest(&text)?)
        }
        "mixed" => {
            let exe = std::env::current_exe().context("loadgen's own path")?;
            let json = dir.join("stress.json");
            let mut cmd = Command::new(exe);
            cmd.args(["stress", "--secs", &o.secs.to_string(), "--json"]).arg(&json);
            run_tool(cmd, false, dir, stop)?;
            let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?).context("stress.json")?;
            let field = |k: &str| r[k].as_f64().with_context(|| format!("{}: no number {k}", json.display()));
            let secs = field("secs")?.max(1e-9);
            (
                Some(format!("loadgen stress --secs {}", o.secs)),
                vec![
                    metric("pipe_round_trips_per_s", "round trips/s", field("pipe_round_trips")? / secs, true),
                    metric("execs_per_s", "execs/s", field("execs")? / secs, true),
                    metric("wake_late_us_mean", "us", field("wake_late_us_mean")?, false),
                ],
            )
        }
        k => bail!("no benchmark '{k}'"),
    };
    let cost = own_cost.unwrap_or_else(|| phase.end(cpus, stats_on));
    Ok(Bench {
        format_version: BENCH_FORMAT_VERSION,
        kind: kind.to_string(),
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        command,
        topology: rundata::Topology { cpus: m.cpus.clone(), nodes: m.nodes.clone(), llcs: m.llcs.clone() },
        kernel_release: sys::kernel_release(),
        scheduler,
        elapsed_s: cost.elapsed_s,
        metrics,
        sched_share_pct: cost.share_pct,
        sched_calls: cost.calls,
        sched_ns_per_call: cost.ns_per_call,
        context_switches: cost.context_switches,
        sched_programs: cost.programs,
        migrations: None,
        sched_counters: Default::default(),
    })
}

/// cyclictest's histogram: 1 us buckets up to this (an overflow counts above it).
const HIST_US: u64 = 20_000;

/// A program from a Debian package, or an error naming the package.
pub(crate) fn tool(name: &str, package: &str) -> Result<Command> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{name} is not installed (Debian package {package}; scripts/setup installs it)");
    }
    Ok(Command::new(name))
}

/// Run a benchmark program to its end, its output into DIR/tool.txt, on CPU
/// 0 alone if `cpu0`; killed if we are stopped. Its standard output.
pub(crate) fn run_tool(mut cmd: Command, cpu0: bool, dir: &Path, stop: &AtomicBool) -> Result<String> {
    let log = dir.join("tool.txt");
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
    if cpu0 {
        use std::os::unix::process::CommandExt;
        // SAFETY: sched_setaffinity is async-signal-safe; the child pins itself before exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
    }
    // Its own process group: a stop kills the program and whatever it forked.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // And it dies with loadgen, should loadgen be killed outright.
    crate::apps::die_with_parent(&mut cmd);
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let mut stdout = child.stdout.take().context("the program's output")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if stop.load(Ordering::Relaxed) {
            // SAFETY: kill(2) on the process group we made for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            bail!("interrupted while {what} ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap_or_default();
    std::fs::write(dir.join("tool.out.txt"), &text)?;
    if !status.success() {
        bail!("{what} failed ({status}); its messages are in {}: {}", log.display(), last_lines(&text, 3));
    }
    Ok(text)
}

pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// One unpinned spinner per CPU, until `done`.
pub(crate) fn spinners(cpus: usize, done: &Arc<AtomicBool>) -> Result<Vec<std::thread::JoinHandle<u64>>> {
    (0..cpus)
        .map(|i| {
            let s = done.clone();
            std::thread::Builder::new()
                .name(format!("lg-spin-{i}"))
                .stack_size(64 << 10)
                .spawn(move || sys::spin(&s))
                .context("starting a spinner")
        })
        .collect()
}

/// Puts the calling thread back as it was (its CPUs, SCHED_OTHER) when the
/// release ends, however it ends: the benchmarks after it run as any thread.
struct Restore(Vec<usize>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = sys::set_normal(sys::gettid());
        let _ = sys::pin_to(sys::gettid(), &self.0);
    }
}

/// THREADS spinners pinned on the first CPU for a second, then released to
/// every CPU by one real-time thread, one sched_setaffinity each (each call
/// timed), then spinning for SECS: the release's wall time and the calls'
/// mean, p99 and max; the scheduler's cost from the release to the end.
fn release(threads: u64, secs: f64, m: &crate::experiment::Machine, stats_on: bool, stop: &Arc<AtomicBool>) -> Result<(Vec<BenchMetric>, Cost)> {
    let all = m.cpus.clone();
    let first = *all.first().context("no CPU online")?;
    let others: Vec<usize> = if all.len() > 1 { all[1..].to_vec() } else { all.clone() };
    let _restore = Restore(sys::affinity_of_self()?);
    // The releasing thread runs off the pinned CPU.
    sys::pin_to(sys::gettid(), &others)?;
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..threads {
        let (s, tx) = (done.clone(), tx.clone());
        let h = std::thread::Builder::new().name(format!("lg-rel-{i}")).stack_size(64 << 10).spawn(move || {
            let ok = sys::pin_self(first).is_ok();
            let _ = tx.send((sys::gettid(), ok));
            drop(tx);
            sys::spin(&s)
        });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                done.store(true, Ordering::Relaxed);
                return Err(e).context("starting a spinner (threads-max? ulimit -u?)");
            }
        }
    }
    drop(tx);
    let tids: Result<Vec<u32>> =
        rx.iter().map(|(t, ok)| if ok { Ok(t) } else { Err(anyhow::anyhow!("pinning a spinner to CPU {first} failed")) }).collect();
    // Ahead of the spinners from now on (a real-time thread, above every
    // sched_ext scheduler), as loadgen spin's releasing thread: the calls are
    // timed, not the waits for a turn between them. Only now: the spinners
    // would have inherited the class, and 128 real-time spinners on one CPU
    // never let the last ones start.
    let ready = tids.and_then(|t| sys::set_fifo(sys::gettid(), 10).map(|_| t).context("the releasing thread needs SCHED_FIFO (root)"));
    let tids = match ready {
        Ok(t) => t,
        Err(e) => {
            done.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    std::thread::sleep(Duration::from_secs(1));
    let phase = Phase::start();
    let t0 = Instant::now();
    let mut calls_ns = Vec::with_capacity(tids.len());
    let mut failed = None;
    for &tid in &tids {
        let t = Instant::now();
        if let Err(e) = sys::pin_to(tid, &all) {
            failed = Some(e);
            break;
        }
        calls_ns.push(t.elapsed().as_nanos() as f64);
    }
    let release_ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(_restore);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while failed.is_none() && Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cost = phase.end(all.len(), stats_on);
    done.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    if let Some(e) = failed {
        return Err(e);
    }
    calls_ns.sort_by(|a, b| a.total_cmp(b));
    let us = |ns: f64| ns / 1e3;
    Ok((
        vec![
            metric("release_ms", "ms", release_ms, false),
            metric("call_us_mean", "us", us(calls_ns.iter().sum::<f64>() / calls_ns.len() as f64), false),
            metric("call_us_p99", "us", us(percentile(&calls_ns, 0.99)), false),
            metric("call_us_max", "us", us(*calls_ns.last().unwrap_or(&0.0)), false),
        ],
        cost,
    ))
}

/// The q-quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `perf bench sched pipe`: its "NNN ops/sec" and "N.NNN usecs/op" lines.
fn parse_perf_pipe(text: &str) -> Result<Vec<BenchMetric>> {
    let num_before = |suffix: &str| {
        text.lines().find_map(|l| l.trim().strip_suffix(suffix).and_then(|v| v.trim().parse::<f64>().ok()))
    };
    let (Some(ops), Some(us)) = (num_before("ops/sec"), num_before("usecs/op")) else {
        bail!("perf bench sched pipe printed no ops/sec and usecs/op: {}", last_lines(text, 3));
    };
    Ok(vec![metric("ops_per_s", "ops/s", ops, true), metric("us_per_op", "us", us, false)])
}

/// hackbench: "Running in <mode> mode with G groups using F file descriptors
/// each (== T tasks)", "Each sender will pass L messages of B bytes", "Time: S".
/// Each of a group's F/2 senders sends L messages to each of its F/2 receivers.
pub(crate) fn parse_hackbench(text: &str) -> Result<Vec<BenchMetric>> {
    let word_after = |line: &str, w: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).and_then(|v| v.parse::<f64>().ok())
    };
    let running = text.lines().find(|l| l.starts_with("Running in"));
    let groups = running.and_then(|l| word_after(l, "with"));
    let fds = running.and_then(|l| word_after(l, "using"));
    let loops = text.lines().find(|l| l.starts_with("Each sender")).and_then(|l| word_after(l, "pass"));
    let time = text.lines().find_map(|l| l.strip_prefix("Time:").and_then(|v| v.trim().parse::<f64>().ok()));
    let (Some(g), Some(f), Some(l), Some(t)) = (groups, fds, loops, time) else {
        bail!("hackbench printed no groups, descriptors, messages and time: {}", last_lines(text, 3));
    };
    if t <= 0.0 {
        bail!("hackbench took {t} s: too short to measure (raise --hackbench-loops)");
    }
    let messages = g * (f / 2.0) * (f / 2.0) * l;
    Ok(vec![metric("messages_per_s", "messages/s", messages / t, true), metric("time_s", "s", t, false)])
}

/// A histogram line of cyclictest with no wakeup in it ("000123 000000").
fn is_empty_bucket(line: &str) -> bool {
    let mut w = line.split_whitespace();
    matches!((w.next(), w.next(), w.next()), (Some(a), Some(b), None)
        if a.chars().all(|c| c.is_ascii_digit()) && !b.is_empty() && b.chars().all(|c| c == '0'))
}

/// cyclictest -q -h N: its histogram ("us count" lines), "# Total:",
/// "# Max Latencies:" and "# Histogram Overflows:". p50 and p99 from the
/// histogram; a quantile among the overflows is given as the maximum.
fn parse_cyclictest(text: &str) -> Result<Vec<BenchMetric>> {
    let mut hist: Vec<(u64, u64)> = Vec::new();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    // "# Total" counts the wakeups inside the histogram; the overflows are beyond it.
    let (total, max, over, avg) =
        (field("# Total:"), field("# Max Latencies:"), field("# Histogram Overflows:"), field("# Avg Latencies:"));
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let mut w = l.split_whitespace();
        if let (Some(a), Some(b), None) = (w.next(), w.next(), w.next()) {
            if let (Ok(us), Ok(n)) = (a.parse::<u64>(), b.parse::<u64>()) {
                hist.push((us, n));
            }
        }
    }
    let (Some(inside), Some(max), Some(over), Some(avg)) = (total, max, over, avg) else {
        bail!(
            "cyclictest printed no histogram summary (# Total, # Max Latencies, # Histogram Overflows, # Avg Latencies): {}",
            last_lines(text, 3)
        );
    };
    let total = inside + over;
    if total == 0 {
        bail!("cyclictest measured no wakeups");
    }
    let quantile = |q: f64| {
        let rank = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for &(us, n) in &hist {
            seen += n;
            if seen >= rank {
                return us as f64;
            }
        }
        max as f64
    };
    Ok(vec![
        metric("wake_us_p50", "us", quantile(0.50), false),
        metric("wake_us_p99", "us", quantile(0.99), false),
        metric("wake_us_max", "us", max as f64, false),
        metric("wake_us_mean", "us", avg as f64, false),
        metric("wakeups", "wakeups", total as f64, true),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(ms: &[BenchMetric], name: &str) -> f64 {
        ms.iter().find(|m| m.name == name).unwrap().value
    }

    #[test]
    fn perf_pipe_output_is_read_and_an_empty_one_refused() {
        let text = "# Running 'sched/pipe' benchmark:\n# Executed 20000 pipe operations between two threads\n\n     Total time: 0.334 [sec]\n\n      16.701650 usecs/op\n          59874 ops/sec\n";
        let m = parse_perf_pipe(text).unwrap();
        assert_eq!(value(&m, "ops_per_s"), 59874.0);
        assert_eq!(value(&m, "us_per_op"), 16.70165);
        assert!(parse_perf_pipe("# Running 'sched/pipe' benchmark:\n").is_err());
    }

    #[test]
    fn hackbench_messages_per_second() {
        let text = "Running in process mode with 2 groups using 40 file descriptors each (== 80 tasks)\nEach sender will pass 50 messages of 100 bytes\nTime: 0.024\n";
        let m = parse_hackbench(text).unwrap();
        // 2 groups x 20 senders x 20 receivers x 50 messages in 0.024 s.
        assert!((value(&m, "messages_per_s") - 40_000.0 / 0.024).abs() < 1e-6);
        assert!(parse_hackbench("Running in process mode with 2 groups using 40 file descriptors each\n").is_err());
        assert!(parse_hackbench(&text.replace("0.024", "0.000")).unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn cyclictest_quantiles_come_from_the_histogram_and_overflows_give_the_max() {
        let mut text = String::new();
        for (us, n) in [(8, 50u64), (9, 40), (12, 8), (300, 1)] {
            text += &format!("{us:06} {n:06}\n");
        }
        // 99 wakeups inside the histogram, one beyond it.
        text += "# Total: 000000099\n# Min Latencies: 00008\n# Avg Latencies: 00012\n# Max Latencies: 25000\n# Histogram Overflows: 00001\n# Thread 0:\n";
        let m = parse_cyclictest(&text).unwrap();
        assert_eq!(value(&m, "wake_us_p50"), 8.0);
        assert_eq!(value(&m, "wake_us_p99"), 300.0);
        assert_eq!(value(&m, "wake_us_max"), 25000.0);
        assert_eq!((value(&m, "wakeups"), value(&m, "wake_us_mean")), (100.0, 12.0));
        // The 99th of a hundred above the histogram: the maximum stands for it.
        let m = parse_cyclictest(
            &text.replace("000300 000001\n", "").replace("Overflows: 00001", "Overflows: 00002").replace("Total: 000000099", "Total: 000000098"),
        )
        .unwrap();
        assert_eq!(value(&m, "wake_us_p99"), 25000.0);
        assert_eq!(value(&m, "wake_us_p50"), 8.0);
        assert!(parse_cyclictest("000008 000001\n").is_err());
    }

    #[test]
    fn empty_histogram_buckets_are_dropped_and_nothing_else() {
        assert!(is_empty_bucket("000123 000000"));
        assert!(!is_empty_bucket("000123 000004"));
        assert!(!is_empty_bucket("# Histogram Overflows: 00000"));
        assert!(!is_empty_bucket("T: 0 ( 123) P: 0"));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
