// SPDX-License-Identifier: GPL-2.0-only
//! `loadgen slices`: how long a thread keeps its CPU once it gets it, seen
//! by the thread itself, under whatever scheduler is loaded.
//!
//! Every probe thread spins on one CPU, reading CLOCK_MONOTONIC and its own
//! context-switch count (getrusage(RUSAGE_THREAD)) in a loop. When the count
//! moves between two reads, the thread was switched out in between: one
//! on-CPU stretch ended at the earlier read and the next began at the later
//! one. No tracing, so it works under any scheduler and needs no BPF.
//!
//! - `fork`: a spinner alone on the CPU creates a child there, which spins
//!   at once, five times, one child after the other. A child's first turn
//!   begins with its first slice; ULE gives
//!   a new thread sched_slice_min (sched_fork_thread). A turn may hold more
//!   slices after it: ULE lets a batch thread whose calendar bucket comes
//!   first go on with a new slice without leaving its CPU.
//! - `preempt`: two spinners share the CPU with an interactive thread that a
//!   waker on another CPU of the same LLC wakes every `--period-ms` (a remote
//!   wakeup: ULE's tdq_notify preempts a batch thread for an interactive
//!   one). A spinner's turn is its stretches with only short interruptions
//!   (under `--merge-ms`) between them; under ULE a preempted thread goes back
//!   to the head of its queue with the rest of its slice (SRQ_PREEMPTED), so
//!   a turn holds one slice of CPU time however often it is interrupted.
//!
//! Writes one JSON object (`--json FILE`, else standard output).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A spinner creates a child on its CPU: the child's first slice.
    Fork,
    /// Two spinners and a remotely woken interactive thread: turns across preemptions.
    Preempt,
}

#[derive(Debug, clap::Args)]
pub struct Opts {
    #[arg(value_enum)]
    mode: Mode,
    /// The CPU every probe thread runs on.
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// How long to run, in seconds (fork: a child every sixth of it).
    #[arg(long, default_value_t = 6.0, value_parser = crate::positive_secs)]
    secs: f64,
    /// preempt: seconds at the start left out of the turns (the threads'
    /// history settles: ULE's spinners become batch, the woken one
    /// interactive). The waker's first wakeup comes after SETTLE_SHARE of it.
    #[arg(long, default_value_t = 2.5, value_parser = crate::positive_secs)]
    warmup_secs: f64,
    /// preempt: the waker wakes the interactive thread every this many ms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    period_ms: u64,
    /// preempt: CPU time the interactive thread uses per wakeup, in microseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    run_us: u64,
    /// A thread's stretches closer than this (ms) belong to one turn.
    #[arg(long, default_value_t = 3.0, value_parser = positive_ms)]
    merge_ms: f64,
    /// Where to write the JSON result [default: standard output].
    #[arg(long)]
    json: Option<PathBuf>,
}

fn positive_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of ms in (0, 10000]")),
    }
}

/// One on-CPU stretch, CLOCK_MONOTONIC ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stretch {
    pub start: u64,
    pub end: u64,
    /// The thread slept (a voluntary switch) since its previous stretch, or
    /// since its creation for the first: a wakeup gives a fresh slice.
    pub slept: bool,
}

/// A spinner's turn: its stretches with only short interruptions between them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Turn {
    /// When it began, ms after the probe started.
    pub start_ms: f64,
    /// CPU time of its stretches, ms.
    pub on_ms: f64,
    /// Wall time from its first stretch's start to its last one's end, ms.
    pub span_ms: f64,
    /// How many times another thread ran in between.
    pub interruptions: u32,
    /// How many of its stretches began after a sleep (its first included):
    /// a turn with a sleep in it is not one slice.
    pub sleeps: u32,
}

/// One child of the fork probe.
#[derive(Debug, Serialize)]
struct Child {
    /// The child's first turn (stretches closer than --merge-ms, so a kernel
    /// thread passing by does not cut it), from its first run on; its
    /// start_ms is counted from the child's creation.
    first: Turn,
    /// Its complete later turns.
    later: Vec<Turn>,
}

#[derive(Debug, Serialize)]
struct ForkReport {
    mode: &'static str,
    cpu: usize,
    kernel: String,
    scheduler: String,
    merge_ms: f64,
    /// One child after the other, each created by the parent on its CPU.
    children: Vec<Child>,
}

#[derive(Debug, Serialize)]
struct PreemptReport {
    mode: &'static str,
    cpu: usize,
    waker_cpu: usize,
    kernel: String,
    scheduler: String,
    period_ms: u64,
    run_us: u64,
    merge_ms: f64,
    /// Wakeups the interactive thread served.
    interactive_runs: u64,
    /// Complete turns of both spinners after the warm-up, in time order.
    turns: Vec<Turn>,
}

/// The calling thread's (voluntary, involuntary) context switches so far.
fn switches() -> (u64, u64) {
    // SAFETY: getrusage fills the struct; RUSAGE_THREAD is the calling thread.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_nvcsw as u64, ru.ru_nivcsw as u64)
}

/// Spin until `until_ns` (or `stop`), noting every on-CPU stretch.
///
/// A clock read counts only when the switch counters are the same just
/// before and just after it: the thread was on its CPU at that instant,
/// in the stretch the counters name. A switch between the clock read and a
/// single counter read would otherwise put the read on the wrong side of the
/// switch and count the time off the CPU as a short interruption. A stretch
/// ends at the last clean read before the counters moved and the next one
/// begins at the first clean read after.
fn spin_recording(until_ns: u64, stop: &AtomicBool) -> Vec<Stretch> {
    let mut out = Vec::with_capacity(4096);
    // Counts since the thread's creation: a switch before the first read
    // (a sleep at thread start, say) marks the first stretch.
    let mut seen = (0, 0);
    let (mut start, mut last) = (None::<u64>, 0);
    let mut slept = false;
    loop {
        let before = switches();
        let now = sys::monotonic_ns();
        if switches() != before {
            continue;
        }
        if before != seen {
            if let Some(s) = start {
                out.push(Stretch { start: s, end: last, slept });
                slept = false;
            }
            slept |= before.0 != seen.0;
            start = None;
            seen = before;
        }
        start.get_or_insert(now);
        last = now;
        if now >= until_ns || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    out.push(Stretch { start: start.unwrap_or(last), end: last, slept });
    out
}

/// Stretches closer than `merge_ns` joined into turns, every one of them.
pub fn all_turns(stretches: &[Stretch], merge_ns: u64, t0: u64) -> Vec<Turn> {
    let mut groups: Vec<Vec<Stretch>> = Vec::new();
    for s in stretches {
        match groups.last_mut() {
            Some(g) if s.start.saturating_sub(g.last().unwrap().end) < merge_ns => g.push(*s),
            _ => groups.push(vec![*s]),
        }
    }
    groups
        .into_iter()
        .map(|g| Turn {
            start_ms: g[0].start.saturating_sub(t0) as f64 / 1e6,
            on_ms: g.iter().map(|s| s.end - s.start).sum::<u64>() as f64 / 1e6,
            span_ms: (g.last().unwrap().end - g[0].start) as f64 / 1e6,
            interruptions: g.len() as u32 - 1,
            sleeps: g.iter().filter(|s| s.slept).count() as u32,
        })
        .collect()
}

/// The complete turns: all but the first and the last (cut by the probe's
/// start and end), and none that starts before `from_ns`.
pub fn turns(stretches: &[Stretch], merge_ns: u64, from_ns: u64, t0: u64) -> Vec<Turn> {
    let all = all_turns(stretches, merge_ns, t0);
    let n = all.len();
    let from_ms = from_ns.saturating_sub(t0) as f64 / 1e6;
    all.into_iter().enumerate().filter(|(i, t)| *i > 0 && *i + 1 < n && t.start_ms >= from_ms).map(|(_, t)| t).collect()
}

/// A CPU sharing `cpu`'s last-level cache, for a wakeup the kernel makes
/// directly on the target run queue (across LLCs it would hand it to the
/// target CPU, which then wakes the thread itself: a local wakeup).
fn llc_sibling(cpu: usize) -> Result<usize> {
    let m = crate::experiment::Machine::detect()?;
    let llc = m.llcs.iter().find(|l| l.contains(&cpu)).with_context(|| format!("CPU {cpu} is in no LLC"))?;
    llc.iter().copied().find(|&c| c != cpu).with_context(|| format!("CPU {cpu} shares its LLC with no other CPU"))
}

fn spawn_on<T: Send + 'static>(name: &str, cpu: usize, f: impl FnOnce() -> T + Send + 'static) -> Result<thread::JoinHandle<Result<T>>> {
    Ok(thread::Builder::new().name(name.into()).spawn(move || {
        sys::pin_self(cpu)?;
        Ok(f())
    })?)
}

fn join<T>(h: thread::JoinHandle<Result<T>>) -> Result<T> {
    h.join().map_err(|_| anyhow::anyhow!("a probe thread panicked"))?
}

/// Children of the fork probe, one after the other: each lives this share
/// of its second, the parent alone on the CPU for the rest.
const FORKS: usize = 5;
const CHILD_SHARE: f64 = 0.8;

fn fork_probe(o: &Opts) -> Result<ForkReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = sys::monotonic_ns();
    let every = (o.secs * 1e9 / (FORKS + 1) as f64) as u64;
    let (cpu, st) = (o.cpu, stop.clone());
    let parent = spawn_on("lg-parent", cpu, move || -> Result<_> {
        let mut children = Vec::new();
        for i in 1..=FORKS as u64 {
            spin_recording(t0 + i * every, &st);
            // Created here, on this CPU, by this thread: the kernel's fork path
            // (ops.init_task with args->fork, then the first enqueue). The child
            // inherits the parent's affinity, one CPU.
            let created = sys::monotonic_ns();
            let end = created + (every as f64 * CHILD_SHARE) as u64;
            let st2 = st.clone();
            let child = thread::Builder::new().name("lg-child".into()).spawn(move || spin_recording(end, &st2))?;
            spin_recording(end, &st);
            let child = child.join().map_err(|_| anyhow::anyhow!("a child panicked"))?;
            children.push((created, child));
        }
        Ok(children)
    })?;
    let merge = (o.merge_ms * 1e6) as u64;
    let mut children = Vec::new();
    for (created, stretches) in join(parent)?? {
        let turns = all_turns(&stretches, merge, created);
        let Some(first) = turns.first().cloned() else { bail!("a child recorded no stretch") };
        // The first is the one under test, the last is cut by the child's end.
        let later = turns[1..turns.len().saturating_sub(1).max(1)].to_vec();
        children.push(Child { first, later });
    }
    Ok(ForkReport {
        mode: "fork",
        cpu,
        kernel: sys::kernel_release(),
        scheduler: sys::scheduler().name,
        merge_ms: o.merge_ms,
        children,
    })
}

/// The share of the warm-up the interactive thread sleeps before its first
/// wakeup, as an interactive program would. A thread inherits its parent's
/// history (ULE's sched_fork_thread, up to SCHED_SLP_RUN_FORK = 0.5 s of it),
/// and loadgen's main thread has just run: from a batch start the woken thread
/// queued behind the spinners' slices, ran its wakeups in bursts between
/// them and stayed batch for the whole 6 s probe (seen once in a test run:
/// turns of half a quantum, none interrupted). 1.5 s of sleep against 0.5 s
/// of inherited run time is a score of 17, interactive.
const SETTLE_SHARE: f64 = 0.6;

fn preempt_probe(o: &Opts) -> Result<PreemptReport> {
    let waker_cpu = llc_sibling(o.cpu)?;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = sys::monotonic_ns();
    let end = t0 + (o.secs * 1e9) as u64;
    let (tx, rx) = mpsc::channel::<()>();
    let run_ns = o.run_us * 1000;
    let st = stop.clone();
    let interactive = spawn_on("lg-interactive", o.cpu, move || {
        let mut runs = 0u64;
        // Sleeps in recv until the waker, on another CPU, sends.
        while rx.recv().is_ok() {
            sys::burn_cpu_ns(run_ns);
            runs += 1;
            if st.load(Ordering::Relaxed) {
                break;
            }
        }
        runs
    })?;
    let mut spinners = Vec::new();
    for name in ["lg-spin-a", "lg-spin-b"] {
        let st = stop.clone();
        spinners.push(spawn_on(name, o.cpu, move || spin_recording(end, &st))?);
    }
    let period = Duration::from_millis(o.period_ms);
    let settle = Duration::from_secs_f64(o.warmup_secs * SETTLE_SHARE);
    let waker = spawn_on("lg-waker", waker_cpu, move || {
        thread::sleep(settle);
        while sys::monotonic_ns() < end {
            thread::sleep(period);
            if tx.send(()).is_err() {
                break;
            }
        }
        // tx drops here: the interactive thread's recv ends.
    })?;
    let mut all = Vec::new();
    for h in spinners {
        let s = join(h)?;
        all.extend(turns(&s, (o.merge_ms * 1e6) as u64, t0 + (o.warmup_secs * 1e9) as u64, t0));
    }
    stop.store(true, Ordering::Relaxed);
    join(waker)?;
    let interactive_runs = join(interactive)?;
    all.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    Ok(PreemptReport {
        mode: "preempt",
        cpu: o.cpu,
        waker_cpu,
        kernel: sys::kernel_release(),
        scheduler: sys::scheduler().name,
        period_ms: o.period_ms,
        run_us: o.run_us,
        merge_ms: o.merge_ms,
        interactive_runs,
        turns: all,
    })
}

pub fn run(o: &Opts) -> Result<()> {
    let m = crate::experiment::Machine::detect()?;
    if !m.cpus.contains(&o.cpu) {
        bail!("CPU {} does not exist or is offline (online: {:?})", o.cpu, m.cpus);
    }
    if o.mode == Mode::Preempt && o.warmup_secs >= o.secs {
        bail!("--warmup-secs ({}) must be shorter than --secs ({})", o.warmup_secs, o.secs);
    }
    let json = match o.mode {
        Mode::Fork => serde_json::to_string_pretty(&fork_probe(o)?)?,
        Mode::Preempt => serde_json::to_string_pretty(&preempt_probe(o)?)?,
    };
    match &o.json {
        Some(p) => std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(start: u64, end: u64) -> Stretch {
        Stretch { start, end, slept: false }
    }

    #[test]
    fn short_interruptions_join_stretches_into_turns() {
        const MS: u64 = 1_000_000;
        // Turn 0 (cut by the start), then a turn of 3 stretches interrupted
        // twice for 1 ms, a turn of one stretch, and the last (cut by the end).
        let s = [
            st(0, 10 * MS),
            st(100 * MS, 109 * MS),
            st(110 * MS, 119 * MS),
            st(120 * MS, 130 * MS),
            st(230 * MS, 260 * MS),
            st(400 * MS, 401 * MS),
        ];
        let t = turns(&s, 3 * MS, 0, 0);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!((t[0].on_ms, t[0].span_ms, t[0].interruptions), (28.0, 30.0, 2));
        assert_eq!((t[1].on_ms, t[1].interruptions, t[1].start_ms), (30.0, 0, 230.0));
        // The warm-up leaves out turns that start before it.
        assert_eq!(turns(&s, 3 * MS, 200 * MS, 0).len(), 1);
        // Nothing complete: no turn.
        assert!(turns(&s[..1], 3 * MS, 0, 0).is_empty());
        // A stretch that began after a sleep marks its turn.
        let mut s = s;
        s[2].slept = true;
        let t = turns(&s, 3 * MS, 0, 0);
        assert_eq!((t[0].sleeps, t[1].sleeps), (1, 0));
    }

    #[test]
    fn one_spinner_alone_has_one_long_stretch() {
        let stop = AtomicBool::new(false);
        let end = sys::monotonic_ns() + 20_000_000;
        let s = spin_recording(end, &stop);
        assert!(!s.is_empty());
        assert!(s.windows(2).all(|w| w[0].end <= w[1].start), "{s:?}");
        let on: u64 = s.iter().map(|x| x.end - x.start).sum();
        assert!(on > 0 && s.last().unwrap().end >= end, "{s:?}");
        assert!(!s[1..].iter().any(|x| x.slept), "a spinner never sleeps: {s:?}");
    }

    #[test]
    fn a_sleep_marks_the_stretch_after_it() {
        let stop = AtomicBool::new(false);
        // The test harness's thread may have switched before: judge a fresh one.
        let s = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            spin_recording(sys::monotonic_ns() + 5_000_000, &stop)
        })
        .join()
        .unwrap();
        assert!(s[0].slept, "the first stretch follows a sleep: {s:?}");
    }
}
