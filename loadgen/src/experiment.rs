// SPDX-License-Identifier: GPL-2.0-only
//! One recorded run: start the BPF recorder, spawn the workload's threads
//! (optionally pinned to one CPU), release them to every CPU at a given time,
//! stop them, and write the run directory:
//!
//!   timeline.csv    time_ms,cpu,node,threads   per CPU, every sample
//!   migrations.csv  time_ms,thread,from,to,cause  every migration of a workload thread, and why
//!   threads.csv     thread,kind,nice,cpu_time_ms,migrations,wait_total_ms,wait_max_ms,waits,served,backlog
//!   thread_time.csv time_ms,thread,cpu_time_ms   every worker's CPU time, every thread_interval_ms
//!   cpus.csv        cpu,node,context_switches,migrations   (perf counters, whole CPU)
//!   meta.json       kernel, scheduler, topology, options, times, recorder cost
//!
//! Files are written as the run goes and meta.json is rewritten at the end,
//! so a run cut short (Ctrl-C, a VM timeout) leaves valid files with what was
//! recorded; meta.json says whether the run completed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::recorder::{Counts, Event, Recorder, MAX_CPUS};
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Burns CPU without ever sleeping.
    Spinner,
    /// Sleeps `sleep_us`, runs `run_us`, again and again; its wake-to-run
    /// latency is recorded.
    Interactive { sleep_us: u64, run_us: u64 },
    /// Serves requests as a server's worker thread does: a request arrives,
    /// it computes `request_ns` of its own CPU time, replies, and sleeps
    /// until the next one. Open arrivals come every `period_ns` from
    /// `phase_ns` on, whether or not the previous ones were served (a worker
    /// served late has a backlog and runs through it without sleeping);
    /// closed ones come `period_ns - request_ns` after each reply (a client
    /// that waits for the answer, then thinks).
    Server { request_ns: u64, period_ns: u64, phase_ns: u64, closed: bool },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Spinner => "spinner",
            Kind::Interactive { .. } => "interactive",
            Kind::Server { .. } => "server",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ThreadSpec {
    pub kind: Kind,
    pub nice: i32,
}

#[derive(Debug)]
pub struct Plan {
    pub threads: Vec<ThreadSpec>,
    /// Pin every thread to this CPU at start.
    pub pin_cpu: Option<usize>,
    /// Seconds pinned before the release (0: no pinned phase).
    pub pin_secs: f64,
    /// Seconds after the release (or after start, without a pinned phase).
    pub run_secs: f64,
    /// Stop at the end of the pinned phase instead of releasing.
    pub no_release: bool,
    /// How threads start on pin_cpu (gate, or created pinned and spinning).
    pub start: rundata::SpinStart,
    /// Started spinning: the creator's pause after each thread.
    pub create_every: Duration,
    pub interval_ms: u64,
    /// Sampling interval of the workers' CPU times (thread_time.csv), in ms;
    /// a multiple of interval_ms in effect.
    pub thread_interval_ms: u64,
    pub out: PathBuf,
    /// Compare the recorder with /proc/<pid>/task/*/stat at a few moments.
    pub proc_checks: bool,
    /// The experiment and every option as given, for meta.json.
    pub workload: rundata::Workload,
    /// meta.json's `label`.
    pub label: Option<String>,
}

/// Stack of a workload thread: they only spin, sleep or serve.
const WORKER_STACK: usize = 64 << 10;

/// A workload thread: std's, or one created pinned (SpinStart::Spinning).
enum Worker {
    Std(thread::JoinHandle<WorkerEnd>),
    Pinned(sys::PinnedThread<WorkerEnd>),
}

impl Worker {
    fn join(self) -> Result<WorkerEnd> {
        match self {
            Worker::Std(h) => h.join().map_err(|_| anyhow::anyhow!("a workload thread panicked")),
            Worker::Pinned(t) => t.join(),
        }
    }
}

/// What a worker thread reports when it stops.
struct WorkerEnd {
    tid: u32,
    spec: ThreadSpec,
    cpu_ns: u64,
    /// Server: requests served, their latencies (arrival to reply, ns), and
    /// the requests that had arrived but were not served at the end.
    served: Option<(u64, hdrhistogram::Histogram<u64>, u64)>,
}

/// Online CPUs and their NUMA nodes.
pub struct Machine {
    pub cpus: Vec<usize>,
    pub node_of: BTreeMap<usize, usize>,
    pub nodes: Vec<Vec<usize>>,
    pub llcs: Vec<Vec<usize>>,
}

impl Machine {
    pub fn detect() -> Result<Self> {
        let topo = scx_utils::Topology::new().context("reading the CPU topology")?;
        let cpus: Vec<usize> = topo.all_cpus.keys().copied().collect();
        let node_of = topo.all_cpus.iter().map(|(c, cpu)| (*c, cpu.node_id)).collect();
        let nodes = topo.nodes.values().map(|n| n.all_cpus.keys().copied().collect()).collect();
        let llcs = topo.all_llcs.values().map(|l| l.all_cpus.keys().copied().collect()).collect();
        Ok(Machine { cpus, node_of, nodes, llcs })
    }
}

/// Check a plan against this machine before anything starts.
pub fn validate(plan: &Plan, m: &Machine) -> Result<()> {
    if plan.threads.is_empty() {
        bail!("no threads to run");
    }
    // A run's files mixed with an earlier run's would be read as one run.
    if plan.out.join("meta.json").exists() {
        bail!(
            "{} already holds a run (meta.json): give --out a new directory, or remove that one first",
            plan.out.display()
        );
    }
    if plan.start == rundata::SpinStart::Spinning && plan.pin_cpu.is_none() {
        bail!("--start spinning needs a CPU to pin the threads on");
    }
    if plan.start == rundata::SpinStart::Gate && !plan.create_every.is_zero() {
        bail!("--create-every-ms paces threads started spinning: use it with --start spinning");
    }
    let max = sys::threads_max().min(rundata::MAX_THREADS as u64);
    if plan.threads.len() as u64 > max {
        bail!("{} threads is more than this machine allows ({max})", plan.threads.len());
    }
    if let Some(cpu) = plan.pin_cpu {
        if !m.cpus.contains(&cpu) {
            bail!("CPU {cpu} does not exist or is offline (online: {:?})", m.cpus);
        }
    }
    if m.cpus.iter().any(|&c| c >= MAX_CPUS) {
        bail!("CPU ids above {} are not supported by the recorder", MAX_CPUS - 1);
    }
    if plan.no_release && plan.pin_secs <= 0.0 {
        bail!("--no-release needs a pinned phase (--pin-secs > 0)");
    }
    if !(1..=1000).contains(&plan.interval_ms) {
        bail!("the sampling interval must be 1..=1000 ms");
    }
    for t in &plan.threads {
        if !(-20..=19).contains(&t.nice) {
            bail!("nice {} is outside -20..=19", t.nice);
        }
    }
    Ok(())
}

/// threads.csv: one row per worker. The wait columns are the recorder's
/// (time runnable but not running, including a wait under way at the end);
/// served and backlog are a server's requests (empty for other kinds).
/// A CSV file written line by line: a cut-short run leaves whole lines.
struct Csv(BufWriter<File>);

impl Csv {
    fn create(path: &Path, header: &str) -> Result<Self> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        writeln!(w, "{header}")?;
        w.flush()?;
        Ok(Csv(w))
    }
    /// One line formatted straight into the buffer (no String per event).
    fn fmt_line(&mut self, args: std::fmt::Arguments) -> Result<()> {
        self.0.write_fmt(args)?;
        self.0.write_all(b"\n")?;
        Ok(())
    }
    fn line(&mut self, s: &str) -> Result<()> {
        self.0.write_all(s.as_bytes())?;
        self.0.write_all(b"\n")?;
        Ok(())
    }
    /// Whole lines, each ending in a newline.
    fn raw(&mut self, lines: &str) -> Result<()> {
        self.0.write_all(lines.as_bytes())?;
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()?;
        Ok(())
    }
}

/// Recorder events handled per turn of the main loop (which turns at least
/// every 50 ms): a bound, so that a scheduler migrating threads faster than
/// a slow guest can write them down still gets its run ended on time.
const DRAIN_BATCH: usize = 8192;

fn write_meta(path: &Path, meta: &rundata::Meta) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, meta.to_json())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Wake-to-run latencies in ns, 1 ns to 1 hour, 3 significant digits. Fixed
/// bounds: an auto-resizing histogram would clamp every value under
/// saturating_record to its starting maximum of 2 ns.
fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

fn ms_since(t0_ns: u64, ts_ns: u64) -> f64 {
    (ts_ns as f64 - t0_ns as f64) / 1e6
}

fn worker(
    index: usize,
    spec: ThreadSpec,
    pin: Option<usize>,
    stop: Arc<AtomicBool>,
    tids: mpsc::Sender<(usize, u32)>,
    start: Arc<sys::Gate>,
) -> WorkerEnd {
    let tid = sys::gettid();
    // A failure here shows in meta.json (nice) or the timeline (pinning);
    // the worker carries on either way.
    if spec.nice != 0 {
        let _ = sys::set_nice(tid, spec.nice);
    }
    if let Some(cpu) = pin {
        let _ = sys::pin_self(cpu);
    }
    let _ = tids.send((index, tid));
    // Sleep until every worker exists, so creating them is not slowed by
    // spinners (sys::Gate: no lock to queue for on the way out).
    start.wait();
    match spec.kind {
        Kind::Spinner => {
            sys::spin(&stop);
        }
        Kind::Interactive { sleep_us, run_us } => {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_micros(sleep_us));
                let t = Instant::now();
                let mut x = 1u64;
                while t.elapsed() < Duration::from_micros(run_us) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
        }
        Kind::Server { request_ns, period_ns, phase_ns, closed } => {
            let served = serve(request_ns, period_ns, phase_ns, closed, &stop);
            return WorkerEnd { tid, spec, cpu_ns: sys::thread_cpu_ns(), served: Some(served) };
        }
    }
    WorkerEnd { tid, spec, cpu_ns: sys::thread_cpu_ns(), served: None }
}

/// A server worker's loop (Kind::Server); returns (served, latencies, backlog).
fn serve(request_ns: u64, period_ns: u64, phase_ns: u64, closed: bool, stop: &AtomicBool) -> (u64, hdrhistogram::Histogram<u64>, u64) {
    let mut latency = latency_histogram();
    let mut served = 0u64;
    let mut arrival = sys::monotonic_ns() + phase_ns;
    while !stop.load(Ordering::Relaxed) {
        let now = sys::monotonic_ns();
        if arrival > now {
            // Nothing to do: sleep until the request arrives, at most 50 ms
            // at a time so that the end of the run is seen.
            sys::sleep_until(arrival.min(now + 50_000_000));
            continue;
        }
        sys::burn_cpu_ns(request_ns);
        let done = sys::monotonic_ns();
        latency.saturating_record((done - arrival).max(1));
        served += 1;
        arrival = if closed { done + (period_ns - request_ns) } else { arrival + period_ns };
    }
    let now = sys::monotonic_ns();
    let backlog = if arrival <= now { (now - arrival) / period_ns + 1 } else { 0 };
    (served, latency, backlog)
}

/// Every worker's CPU time, sampled into thread_time.csv every `every`
/// timeline samples.
struct ThreadClocks {
    tids: Vec<u32>,
    every: u64,
    csv: Csv,
}

impl ThreadClocks {
    fn sample(&mut self, ms: f64, rows: &mut String) -> Result<()> {
        use std::fmt::Write as _;
        rows.clear();
        for &tid in &self.tids {
            if let Some(ns) = sys::other_thread_cpu_ns(tid) {
                let _ = writeln!(rows, "{ms:.3},{tid},{:.3}", ns as f64 / 1e6);
            }
        }
        self.csv.raw(rows)
    }
}

/// The sampler: every interval, an exact copy of the per-CPU counts into
/// timeline.csv, and every few intervals the workers' CPU times into
/// thread_time.csv. Returns (samples, samples whose counts did not add up,
/// cpu ns used).
fn sampler(
    counts: Counts,
    cpus: Vec<usize>,
    node_of: BTreeMap<usize, usize>,
    t0: Instant,
    interval: Duration,
    stop: Arc<AtomicBool>,
    mut csv: Csv,
    mut clocks: ThreadClocks,
) -> Result<(u64, u64, u64)> {
    use std::fmt::Write as _;
    // Sample on time even while the machine is saturated with spinners.
    let _ = sys::set_fifo(sys::gettid(), 20);
    let width = cpus.iter().max().map(|c| c + 1).unwrap_or(1);
    let mut buf = vec![0u32; width];
    let mut rows = String::with_capacity(64 * cpus.len());
    let (mut samples, mut bad) = (0u64, 0u64);
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        match counts.snapshot(&mut buf) {
            Some(live) => {
                let sum: u64 = cpus.iter().map(|&c| buf[c] as u64).sum();
                if sum != live as u64 {
                    bad += 1;
                }
                rows.clear();
                for &c in &cpus {
                    let _ = writeln!(rows, "{ms:.3},{c},{},{}", node_of[&c], buf[c]);
                }
                csv.raw(&rows)?;
            }
            None => bad += 1,
        }
        if samples % clocks.every == 0 {
            clocks.sample(ms, &mut rows)?;
        }
        samples += 1;
        if samples % 100 == 0 {
            csv.flush()?;
            clocks.csv.flush()?;
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now; // fell behind: do not burst
        }
    }
    // A last sample at the end, while every worker still exists.
    clocks.sample(t0.elapsed().as_secs_f64() * 1e3, &mut rows)?;
    csv.flush()?;
    clocks.csv.flush()?;
    Ok((samples, bad, sys::thread_cpu_ns()))
}

/// Does /proc/<pid>/task/<tid>/stat put each thread where the recorder does?
/// The recorder is read just before and just after each /proc read, so a
/// thread that moves in between still matches one of the two.
fn proc_check(pid: u32, tids: &[u32], rec: &Recorder, t0: Instant) -> rundata::ProcCheck {
    let (mut differ, mut unreadable, mut sleeping) = (0, 0, 0);
    for &tid in tids {
        let before = rec.thread_cpu(tid);
        let from_proc = sys::proc_task_cpu(pid, tid);
        let after = rec.thread_cpu(tid);
        match from_proc {
            None => unreadable += 1,
            Some((p, state)) => {
                if Some(p as i32) != before && Some(p as i32) != after {
                    differ += 1;
                }
                if state != 'R' {
                    sleeping += 1;
                }
            }
        }
    }
    rundata::ProcCheck {
        time_ms: t0.elapsed().as_secs_f64() * 1e3,
        threads: tids.len() as u64,
        unreadable,
        placed_differently: differ,
        not_runnable: Some(sleeping),
    }
}

/// The phases of a run, in order: start the recorder and write a first
/// meta.json; start the workload's threads and wait until each has run once
/// (`start_workers`); time 0, the sampler (`start_sampler`) and the opened
/// gate; observe until the end, releasing and checking on the way
/// (`observe`); stop everything (`stop`); write threads.csv and cpus.csv and
/// the final meta.json (`write_threads`, `finish_meta`).
pub fn run(plan: &Plan) -> Result<()> {
    if !sys::is_root() {
        bail!("must run as root: the recorder loads BPF programs");
    }
    let m = Machine::detect()?;
    validate(plan, &m)?;
    std::fs::create_dir_all(&plan.out).with_context(|| format!("creating {}", plan.out.display()))?;
    let pid = std::process::id();

    let (stop_all, interrupted) = sys::stop_on_signal()?;

    let bpf_stats = sys::BpfStats::enable();
    let mut open_object = MaybeUninit::uninit();
    let mut rec = Recorder::start(pid, &mut open_object)?;
    let counts = rec.counts();
    let mut perf = sys::PerCpuCounters::open(&m.cpus)?;

    let start_unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let mut meta = rundata::Meta::start(
        format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        plan.workload.clone(),
        sys::kernel_release(),
        sys::scheduler(),
        rundata::Topology { cpus: m.cpus.clone(), nodes: m.nodes.clone(), llcs: m.llcs.clone() },
        start_unix,
    );
    meta.label = plan.label.clone();
    write_meta(&plan.out.join("meta.json"), &meta)?;

    // Helper threads exist before tracking starts: only workers are counted.
    let others: Vec<usize> = m.cpus.iter().copied().filter(|c| Some(*c) != plan.pin_cpu).collect();
    let others = if others.is_empty() { m.cpus.clone() } else { others };
    counts.set_tracking(true);
    let mut started = start_workers(plan, &others, &stop_all)?;
    let tids = std::mem::take(&mut started.tids);
    counts.set_tracking(false);
    for (tid, spec) in tids.iter().zip(&plan.threads) {
        if let Kind::Interactive { .. } | Kind::Server { .. } = spec.kind {
            rec.track_latency(*tid)?;
        }
    }
    // The main thread consumes events and releases the workers: keep it off
    // the pinned CPU and ahead of the spinners, so the release is one burst.
    sys::pin_to(sys::gettid(), &others)?;
    let _ = sys::set_fifo(sys::gettid(), 10);

    // Time 0: every worker exists; sample from now on, then let them go.
    let t0 = Instant::now();
    let t0_mono = sys::monotonic_ns();
    counts.set_t0(t0_mono);
    // The start's longest wait: started spinning, each thread's wait for its first turn.
    let before_t0_ns = rec.thread_waits(t0_mono, 0)?.values().map(|w| w.max_ns).max().unwrap_or(0);
    // Written now too: a run killed before its end keeps the clock that
    // places other tools' records (sched_stats.csv, ule_tasks.csv) on it.
    meta.t0_monotonic_ns = Some(t0_mono);
    meta.threads = Some(tids.len() as u64);
    write_meta(&plan.out.join("meta.json"), &meta)?;
    let sampler = start_sampler(plan, &m, counts, &tids, t0)?;
    // Every worker has sent its tid, so each is at the gate or about to reach it.
    started.gate.open();
    eprintln!(
        "loadgen {}: {} threads {} in {:.1} ms{}",
        plan.workload.name(),
        tids.len(),
        if plan.start == rundata::SpinStart::Spinning { "created spinning, each has run," } else { "created" },
        started.spawn_ms,
        plan.pin_cpu.map(|c| format!(", pinned to CPU {c}")).unwrap_or_default()
    );

    let clock = RunClock { t0, t0_mono };
    meta.spawn_ms = Some(started.spawn_ms);
    let (seen, ended) = observe(plan, &m, &rec, &tids, clock, &stop_all, || stop(&rec, clock, sampler, started))?;
    let requests = write_threads(&plan.out, &rec, &ended)?;

    let mut cpus_csv = Csv::create(&plan.out.join("cpus.csv"), rundata::CPUS_HEADER)?;
    for (cpu, cs, mg) in perf.read()? {
        cpus_csv.line(&format!("{cpu},{},{cs},{mg}", m.node_of[&cpu]))?;
    }
    cpus_csv.flush()?;

    // What recording cost: the sampler, the event consumer and the BPF programs
    // (not creating, releasing or checking the workload).
    let bpf_ns = if bpf_stats.active() { Some(rec.bpf_run_ns()) } else { None };
    let cost = rundata::RecorderCpu {
        sampler_ms: ended.sampler_ns as f64 / 1e6,
        events_ms: seen.events_ns as f64 / 1e6,
        bpf_ms: bpf_ns.map(|n| n as f64 / 1e6),
        percent_of_machine: 100.0 * (ended.sampler_ns + seen.events_ns + bpf_ns.unwrap_or(0)) as f64
            / (ended.end_ms * 1e6 * m.cpus.len() as f64),
    };
    let percent = cost.percent_of_machine;
    finish_meta(&mut meta, clock, before_t0_ns, &seen, &ended, requests, cost, &counts);
    meta.interrupted = interrupted.load(Ordering::Relaxed);
    meta.complete = !meta.interrupted;
    write_meta(&plan.out.join("meta.json"), &meta)?;
    eprintln!(
        "loadgen {}: {} samples ({} inconsistent), {} migrations, recorder used {percent:.3}% of the machine; results in {}",
        plan.workload.name(),
        ended.samples,
        ended.inconsistent,
        seen.migrations,
        plan.out.display()
    );
    Ok(())
}

/// Time 0 of the run, as an Instant and on CLOCK_MONOTONIC (the recorder's clock).
#[derive(Clone, Copy)]
struct RunClock {
    t0: Instant,
    t0_mono: u64,
}

/// The workload's threads, each of which has run and reported its tid.
struct Started {
    workers: Vec<Worker>,
    /// In the plan's order (run() takes them).
    tids: Vec<u32>,
    stop: Arc<AtomicBool>,
    /// Where the threads wait for time 0 (open already when started spinning).
    gate: Arc<sys::Gate>,
    spawn_ms: f64,
}

/// Create the workload's threads (pinned to the plan's CPU, behind a gate or
/// started spinning) and wait until each has run once and sent its tid.
fn start_workers(plan: &Plan, others: &[usize], stop_all: &AtomicBool) -> Result<Started> {
    let spinning = plan.start == rundata::SpinStart::Spinning;
    if spinning {
        // The creator runs apart from the pinned CPU and ahead of every
        // spinner (SCHED_FIFO), as a program's main thread on another core
        // would: creating the threads is never slowed by the scheduler under test.
        sys::pin_to(sys::gettid(), &others[others.len() - 1..])?;
        sys::set_fifo(sys::gettid(), 10)?;
    } else if let Some(cpu) = plan.pin_cpu {
        // New threads inherit this, so they are born on the pinned CPU.
        sys::pin_self(cpu)?;
    }
    let spawn_start = Instant::now();
    let stop_workers = Arc::new(AtomicBool::new(false));
    let start_gate = Arc::new(sys::Gate::new());
    if spinning {
        // No gate: every thread spins from its start.
        start_gate.open();
    }
    let (tid_tx, tid_rx) = mpsc::channel();
    let mut workers = Vec::with_capacity(plan.threads.len());
    for (index, spec) in plan.threads.iter().enumerate() {
        // The thread's comm, e.g. "lg-spinner": schedulers' per-thread stats name it.
        let name = format!("lg-{}", spec.kind.name());
        let (spec, stop, tx, gate) = (spec.clone(), stop_workers.clone(), tid_tx.clone(), start_gate.clone());
        let worker = match (spinning, plan.pin_cpu) {
            (true, Some(cpu)) => Worker::Pinned(
                sys::PinnedThread::spawn(cpu, &name, WORKER_STACK, move || worker(index, spec, None, stop, tx, gate))
                    .context("starting a workload thread")?,
            ),
            _ => {
                let pin = plan.pin_cpu;
                Worker::Std(
                    thread::Builder::new()
                        .name(name)
                        .stack_size(WORKER_STACK)
                        .spawn(move || worker(index, spec, pin, stop, tx, gate))
                        .context("starting a workload thread")?,
                )
            }
        };
        workers.push(worker);
        if spinning && !plan.create_every.is_zero() {
            thread::sleep(plan.create_every);
        }
    }
    drop(tid_tx);
    // Workers report in the order they first run, which the scheduler
    // decides: put each tid back at its place in the plan. Started spinning,
    // this is the wait until every thread has run once.
    let mut tids = vec![0u32; plan.threads.len()];
    let mut reported = 0;
    while reported < plan.threads.len() {
        match tid_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((index, tid)) => {
                tids[index] = tid;
                reported += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !stop_all.load(Ordering::Relaxed) => {}
            Err(e) => {
                stop_workers.store(true, Ordering::Relaxed);
                bail!(
                    "{reported} of {} threads had run when starting them stopped ({})",
                    plan.threads.len(),
                    if stop_all.load(Ordering::Relaxed) { "interrupted".to_string() } else { e.to_string() }
                );
            }
        }
    }
    let spawn_ms = spawn_start.elapsed().as_secs_f64() * 1e3;
    Ok(Started { workers, tids, stop: stop_workers, gate: start_gate, spawn_ms })
}

/// The sampler thread and the flag that stops it.
struct Sampling {
    handle: thread::JoinHandle<Result<(u64, u64, u64)>>,
    stop: Arc<AtomicBool>,
}

/// Start sampling timeline.csv and thread_time.csv from time 0 on.
fn start_sampler(plan: &Plan, m: &Machine, counts: Counts, tids: &[u32], t0: Instant) -> Result<Sampling> {
    let stop = Arc::new(AtomicBool::new(false));
    let timeline = Csv::create(&plan.out.join("timeline.csv"), rundata::TIMELINE_HEADER)?;
    let clocks = ThreadClocks {
        tids: tids.to_vec(),
        every: plan.thread_interval_ms.div_ceil(plan.interval_ms).max(1),
        csv: Csv::create(&plan.out.join("thread_time.csv"), rundata::THREAD_TIME_HEADER)?,
    };
    let (cpus, node_of, flag) = (m.cpus.clone(), m.node_of.clone(), stop.clone());
    let interval = Duration::from_millis(plan.interval_ms);
    let handle = thread::Builder::new()
        .name("sampler".into())
        .spawn(move || sampler(counts, cpus, node_of, t0, interval, flag, timeline, clocks))?;
    Ok(Sampling { handle, stop })
}

/// What the observation saw: migrations (written to migrations.csv as they
/// came), wake latencies, the release, the /proc checks, and the event
/// consumer's CPU time.
struct Observed {
    migrations: u64,
    latency: hdrhistogram::Histogram<u64>,
    /// ms from time 0: the first and the last thread released.
    release: Option<(f64, f64)>,
    proc_checks: Vec<rundata::ProcCheck>,
    events_ns: u64,
}

/// When the /proc checks happen: halfway through the pinned phase, early
/// after the release, and just before the end.
fn proc_check_times(plan: &Plan, t0: Instant, release_at: Instant, end_at: Instant) -> Vec<Instant> {
    let mut at = Vec::new();
    if plan.proc_checks {
        if plan.pin_secs > 0.0 {
            at.push(t0 + Duration::from_secs_f64(plan.pin_secs / 2.0));
        }
        if !plan.no_release {
            at.push(release_at + Duration::from_secs_f64(plan.run_secs.min(1.0) / 2.0));
            at.push(end_at - Duration::from_secs_f64(plan.run_secs.min(1.0) / 4.0));
        }
    }
    at
}

/// Let every thread run on every CPU; the first and last call's ms from time 0.
fn release(tids: &[u32], cpus: &[usize], t0_mono: u64) -> Result<(f64, f64)> {
    let first = ms_since(t0_mono, sys::monotonic_ns());
    for &tid in tids {
        sys::pin_to(tid, cpus).with_context(|| format!("releasing thread {tid}"))?;
    }
    let last = ms_since(t0_mono, sys::monotonic_ns());
    eprintln!("loadgen: released {} threads at {first:.1} ms in {:.3} ms", tids.len(), last - first);
    Ok((first, last))
}

/// Consume the recorder's events until the run's end (or a signal),
/// releasing the threads and checking /proc on the way; then `stop_all`
/// stops the sampler and the workers, and the events they left are taken.
fn observe<T>(
    plan: &Plan,
    m: &Machine,
    rec: &Recorder,
    tids: &[u32],
    clock: RunClock,
    stop_signal: &AtomicBool,
    stop_all: impl FnOnce() -> Result<T>,
) -> Result<(Observed, T)> {
    let RunClock { t0, t0_mono } = clock;
    let releasing = plan.pin_cpu.is_some() && !plan.no_release;
    // Shared by the event handler and the loop's periodic flush.
    let migrations = std::cell::RefCell::new(Csv::create(&plan.out.join("migrations.csv"), rundata::MIGRATIONS_HEADER)?);
    let mut latency = latency_histogram();
    let mut migration_total = 0u64;
    let mut write_err: Option<anyhow::Error> = None;

    let release_at = t0 + Duration::from_secs_f64(plan.pin_secs);
    let end_at = if plan.no_release { release_at } else { release_at + Duration::from_secs_f64(plan.run_secs) };
    let mut checks_at = proc_check_times(plan, t0, release_at, end_at);
    let mut proc_checks = Vec::new();
    let mut released: Option<(f64, f64)> = None;
    let loop_cpu_start = sys::thread_cpu_ns();
    let mut verify_cpu = 0u64;

    let attributed = rec.causes_attributed();
    let poller = rec.events(|e| {
        let res = match e {
            Event::Migrate { ts, tid, from, to, cause } => {
                migration_total += 1;
                let cause = if attributed { cause } else { rundata::MoveCause::NotAttributed };
                migrations.borrow_mut().fmt_line(format_args!(
                    "{:.3},{tid},{from},{to},{}",
                    ms_since(t0_mono, ts),
                    cause.name()
                ))
            }
            Event::WakeLatency { ns, .. } => {
                latency.saturating_record(ns.max(1));
                Ok(())
            }
        };
        if let (Err(e), None) = (res, &write_err) {
            write_err = Some(e);
        }
    })?;
    let mut last_flush = Instant::now();
    while !stop_signal.load(Ordering::Relaxed) && Instant::now() < end_at {
        let now = Instant::now();
        let mut wake = end_at.min(now + Duration::from_millis(50));
        if releasing && released.is_none() {
            wake = wake.min(release_at);
        }
        if let Some(&c) = checks_at.first() {
            wake = wake.min(c);
        }
        // Events are not signalled (BPF_RB_NO_WAKEUP): sleep, then take what came,
        // a bounded batch, so that a flood of migrations cannot keep the run
        // from ending on time (what does not fit is counted as lost).
        thread::sleep(wake.saturating_duration_since(now));
        poller.drain_at_most(DRAIN_BATCH)?;
        if releasing && released.is_none() && Instant::now() >= release_at {
            released = Some(release(tids, &m.cpus, t0_mono)?);
        }
        if checks_at.first().is_some_and(|c| Instant::now() >= *c) {
            checks_at.remove(0);
            let c0 = sys::thread_cpu_ns();
            proc_checks.push(proc_check(std::process::id(), tids, rec, t0));
            verify_cpu += sys::thread_cpu_ns() - c0;
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            migrations.borrow_mut().flush()?;
            last_flush = Instant::now();
        }
    }
    let stopped = stop_all()?;
    poller.drain()?;
    let events_ns = sys::thread_cpu_ns() - loop_cpu_start - verify_cpu;
    drop(poller);
    migrations.borrow_mut().flush()?;
    if let Some(e) = write_err.take() {
        return Err(e.context("writing migrations.csv"));
    }
    let seen = Observed { migrations: migration_total, latency, release: released, proc_checks, events_ns };
    Ok((seen, stopped))
}

/// The run's end: the sampler's totals, every thread's waits and report.
struct Ended {
    end_ms: f64,
    samples: u64,
    inconsistent: u64,
    sampler_ns: u64,
    waits: BTreeMap<u32, crate::recorder::Waits>,
    ends: Vec<WorkerEnd>,
}

/// Stop sampling while every worker still exists, then stop the workers.
fn stop(rec: &Recorder, clock: RunClock, sampler: Sampling, started: Started) -> Result<Ended> {
    sampler.stop.store(true, Ordering::Relaxed);
    let end_ms = clock.t0.elapsed().as_secs_f64() * 1e3;
    let (samples, inconsistent, sampler_ns) =
        sampler.handle.join().map_err(|_| anyhow::anyhow!("the sampler thread panicked"))??;
    // Waits under way count up to now, before the workers stop waiting.
    let waits = rec.thread_waits(sys::monotonic_ns(), clock.t0_mono)?;
    started.stop.store(true, Ordering::Relaxed);
    let mut ends = Vec::with_capacity(started.workers.len());
    for w in started.workers {
        ends.push(w.join()?);
    }
    Ok(Ended { end_ms, samples, inconsistent, sampler_ns, waits, ends })
}

/// The servers' requests, over every server thread.
struct Served {
    latency: hdrhistogram::Histogram<u64>,
    total: u64,
    backlog: u64,
    per_server: Vec<rundata::ServerRequests>,
}

/// threads.csv, one line per workload thread; returns the servers' totals.
fn write_threads(out: &Path, rec: &Recorder, ended: &Ended) -> Result<Served> {
    let migr: BTreeMap<u32, u32> = rec.thread_migrations()?.into_iter().collect();
    let mut threads = Csv::create(&out.join("threads.csv"), rundata::THREADS_HEADER)?;
    let mut s = Served { latency: latency_histogram(), total: 0, backlog: 0, per_server: Vec::new() };
    for e in &ended.ends {
        let kind = e.spec.kind.name();
        let w = ended.waits.get(&e.tid).copied().unwrap_or_default();
        let (served, backlog) = match &e.served {
            Some((n, lat, backlog)) => {
                s.latency.add(lat).context("merging request latencies")?;
                s.total += n;
                s.backlog += backlog;
                s.per_server.push(rundata::ServerRequests {
                    thread: e.tid,
                    served: *n,
                    backlog: *backlog,
                    p50_us: lat.value_at_quantile(0.5) as f64 / 1e3,
                    max_us: lat.max() as f64 / 1e3,
                });
                (n.to_string(), backlog.to_string())
            }
            None => (String::new(), String::new()),
        };
        threads.line(&format!(
            "{},{kind},{},{:.3},{},{:.3},{:.3},{},{served},{backlog}",
            e.tid,
            e.spec.nice,
            e.cpu_ns as f64 / 1e6,
            migr.get(&e.tid).copied().unwrap_or(0),
            w.total_ns as f64 / 1e6,
            w.max_ns as f64 / 1e6,
            w.count,
        ))?;
    }
    threads.flush()?;
    Ok(s)
}

/// meta.json's results, from what the run saw and how it ended.
#[allow(clippy::too_many_arguments)]
fn finish_meta(
    meta: &mut rundata::Meta,
    clock: RunClock,
    before_t0_ns: u64,
    seen: &Observed,
    ended: &Ended,
    served: Served,
    cost: rundata::RecorderCpu,
    counts: &Counts,
) {
    let lat = |q: f64| seen.latency.value_at_quantile(q) as f64 / 1e3;
    meta.threads = Some(ended.ends.len() as u64);
    // Time 0 of every *_ms column on CLOCK_MONOTONIC: other tools' records
    // (scx_battle --tasks-csv) line up with this run's through it.
    meta.t0_monotonic_ns = Some(clock.t0_mono);
    let worker_waits = || ended.ends.iter().filter_map(|e| ended.waits.get(&e.tid));
    meta.wait_max_ms = Some(rundata::WaitMax {
        before_t0: before_t0_ns as f64 / 1e6,
        after_t0: worker_waits().map(|w| w.max_after_t0_ns).max().unwrap_or(0) as f64 / 1e6,
    });
    meta.release_ms = seen.release.map(|r| r.0);
    meta.release_spread_ms = seen.release.map(|r| r.1 - r.0);
    meta.end_ms = Some(ended.end_ms);
    meta.samples = Some(ended.samples);
    meta.inconsistent_samples = Some(ended.inconsistent);
    meta.migrations = Some(seen.migrations);
    meta.lost_events = Some(counts.lost_events());
    meta.untracked_cpu_events = Some(counts.untracked_cpu());
    meta.proc_checks = seen.proc_checks.clone();
    meta.recorder_cpu = Some(cost);
    if seen.latency.len() > 0 {
        meta.wake_latency_us = Some(rundata::WakeLatency {
            count: seen.latency.len(),
            p50: lat(0.5),
            p99: lat(0.99),
            p999: lat(0.999),
            max: seen.latency.max() as f64 / 1e3,
        });
    }
    if !served.per_server.is_empty() {
        let secs = ended.end_ms / 1e3;
        let q = |q: f64| served.latency.value_at_quantile(q) as f64 / 1e3;
        meta.requests = Some(rundata::Requests {
            served: served.total,
            per_second: served.total as f64 / secs,
            backlog_at_end: served.backlog,
            latency_us: rundata::RequestLatency {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: served.latency.max() as f64 / 1e3,
            },
            servers: served.per_server,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_histogram_keeps_real_values() {
        let mut h = latency_histogram();
        for ns in [20_000u64, 40_000, 5_000_000] {
            h.saturating_record(ns);
        }
        assert_eq!(h.len(), 3);
        assert!((h.max() as f64 - 5e6).abs() / 5e6 < 0.001, "max {}", h.max());
        let p50 = h.value_at_quantile(0.5) as f64;
        assert!((p50 - 4e4).abs() / 4e4 < 0.001, "p50 {p50}");
    }

    #[test]
    fn plans_are_checked_against_the_machine() {
        let m = Machine {
            cpus: vec![0, 1, 2, 3],
            node_of: (0..4).map(|c| (c, 0)).collect(),
            nodes: vec![vec![0, 1, 2, 3]],
            llcs: vec![vec![0, 1, 2, 3]],
        };
        let plan = |pin: Option<usize>, nice: i32, no_release: bool, pin_secs: f64| Plan {
            threads: vec![ThreadSpec { kind: Kind::Spinner, nice }; 4],
            pin_cpu: pin,
            pin_secs,
            run_secs: 1.0,
            no_release,
            start: rundata::SpinStart::Gate,
            create_every: Duration::ZERO,
            interval_ms: 10,
            thread_interval_ms: 100,
            out: PathBuf::from("x"),
            proc_checks: true,
            label: None,
            workload: rundata::Workload::Spin(rundata::SpinOptions {
                threads: 4,
                pin_cpu: pin.unwrap_or(0),
                pin_secs,
                run_secs: 1.0,
                nice: vec![nice],
                no_release,
                interval_ms: 10,
                start: rundata::SpinStart::Gate,
                create_every_ms: 0.0,
            }),
        };
        validate(&plan(Some(0), 0, false, 1.0), &m).unwrap();
        let e = validate(&plan(Some(9), 0, false, 1.0), &m).unwrap_err().to_string();
        assert!(e.contains("CPU 9 does not exist or is offline"), "{e}");
        let e = validate(&plan(Some(0), 25, false, 1.0), &m).unwrap_err().to_string();
        assert!(e.contains("nice 25"), "{e}");
        let e = validate(&plan(None, 0, true, 0.0), &m).unwrap_err().to_string();
        assert!(e.contains("--no-release"), "{e}");
        // An earlier run's directory is refused, an empty or new one is not.
        let dir = std::env::temp_dir().join(format!("loadgen-validate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = plan(Some(0), 0, false, 1.0);
        p.out = dir.clone();
        validate(&p, &m).unwrap();
        std::fs::write(dir.join("meta.json"), "{}").unwrap();
        let e = validate(&p, &m).unwrap_err().to_string();
        assert!(e.contains("already holds a run"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
