// SPDX-License-Identifier: GPL-2.0-only
//! The mixed stress workload (see main.rs).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::sys;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20.0, value_parser = parse_secs)]
    secs: f64,

    /// CPU-bound threads per online CPU.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=64))]
    spinners_per_cpu: u32,

    /// Threads that sleep and wake on a timer [default: one per CPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=4096))]
    sleepers: Option<u32>,

    /// How long each sleeper sleeps per round, in microseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    sleep_us: u64,

    /// Pairs of threads passing a byte back and forth over pipes [default: one per two CPUs].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=2048))]
    pipe_pairs: Option<u32>,

    /// Threads that fork and exec /bin/true in a loop.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=256))]
    forkers: u32,

    /// Write the JSON report to this file as well as to stdout.
    #[arg(long, alias = "out", value_name = "FILE")]
    json: Option<PathBuf>,
}

fn parse_secs(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!("{s} is outside (0, 86400] seconds"));
    }
    Ok(v)
}

/// How far each part of the workload got.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub secs: f64,
    pub cpus: usize,
    pub spinners: usize,
    /// Spin rounds of the slowest and fastest spinner.
    pub spin_rounds_min: u64,
    pub spin_rounds_max: u64,
    /// Spinners that never completed a round: starved.
    pub spinners_starved: usize,
    pub sleepers: usize,
    pub wakeups: u64,
    /// How much later than asked sleepers woke up, in microseconds.
    pub wake_late_us_mean: f64,
    pub wake_late_us_max: u64,
    pub pipe_pairs: usize,
    pub pipe_round_trips: u64,
    pub forkers: usize,
    pub execs: u64,
    pub exec_failures: u64,
    /// True when the run was cut short by SIGINT/SIGTERM.
    pub interrupted: bool,
}

/// Returns (wakeups, total lateness in us, max lateness in us).
fn sleep_wake(stop: &AtomicBool, sleep: Duration) -> (u64, u64, u64) {
    let (mut n, mut sum, mut max) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        thread::sleep(sleep);
        let late = t.elapsed().saturating_sub(sleep).as_micros() as u64;
        n += 1;
        sum += late;
        max = max.max(late);
    }
    (n, sum, max)
}

/// Ping-pong one byte over two pipes until stopped; returns round trips.
fn pipe_pair(stop: Arc<AtomicBool>) -> Result<u64> {
    let (mut to_echo_r, mut to_echo_w) = std::io::pipe().context("pipe")?;
    let (mut back_r, mut back_w) = std::io::pipe().context("pipe")?;
    let echo = thread::spawn(move || {
        let mut b = [0u8; 1];
        // Ends when the other side closes its writer (read returns 0).
        while matches!(to_echo_r.read(&mut b), Ok(1)) {
            if back_w.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut trips = 0u64;
    let mut b = [7u8; 1];
    while !stop.load(Ordering::Relaxed) {
        to_echo_w.write_all(&b).context("pipe write")?;
        back_r.read_exact(&mut b).context("pipe read")?;
        trips += 1;
    }
    drop(to_echo_w);
    echo.join().map_err(|_| anyhow::anyhow!("pipe echo thread panicked"))?;
    Ok(trips)
}

/// fork+exec /bin/true until stopped; returns (successes, failures).
fn fork_exec(stop: &AtomicBool) -> (u64, u64) {
    let (mut ok, mut bad) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => ok += 1,
            _ => bad += 1,
        }
    }
    (ok, bad)
}

pub fn run(o: &Opts) -> Result<()> {
    let cpus = sys::online_cpus();
    let n_spin = o.spinners_per_cpu as usize * cpus;
    let n_sleep = o.sleepers.map(|n| n as usize).unwrap_or(cpus);
    let n_pipe = o.pipe_pairs.map(|n| n as usize).unwrap_or((cpus / 2).max(1));
    let n_fork = o.forkers as usize;
    if n_spin + n_sleep + n_pipe + n_fork == 0 {
        bail!("nothing to run: every part of the workload is set to zero");
    }

    let (stop, interrupted) = sys::stop_on_signal()?;

    eprintln!(
        "loadgen stress: {:.1}s on {cpus} CPUs: {n_spin} spinners, {n_sleep} sleepers ({} us), \
         {n_pipe} pipe pairs, {n_fork} fork/exec loops",
        o.secs, o.sleep_us
    );
    let start = Instant::now();
    let spawn_err = |what: &str| format!("starting {what} thread");

    let mut spinners = Vec::with_capacity(n_spin);
    for _ in 0..n_spin {
        let s = stop.clone();
        spinners.push(thread::Builder::new().spawn(move || sys::spin(&s)).with_context(|| spawn_err("spinner"))?);
    }
    let sleep = Duration::from_micros(o.sleep_us);
    let mut sleepers = Vec::with_capacity(n_sleep);
    for _ in 0..n_sleep {
        let s = stop.clone();
        sleepers.push(thread::Builder::new().spawn(move || sleep_wake(&s, sleep)).with_context(|| spawn_err("sleeper"))?);
    }
    let mut pipes = Vec::with_capacity(n_pipe);
    for _ in 0..n_pipe {
        let s = stop.clone();
        pipes.push(thread::Builder::new().spawn(move || pipe_pair(s)).with_context(|| spawn_err("pipe"))?);
    }
    let mut forkers = Vec::with_capacity(n_fork);
    for _ in 0..n_fork {
        let s = stop.clone();
        forkers.push(thread::Builder::new().spawn(move || fork_exec(&s)).with_context(|| spawn_err("fork"))?);
    }

    let deadline = start + Duration::from_secs_f64(o.secs);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())));
    }
    stop.store(true, Ordering::Relaxed);

    let joined = |what: &str| anyhow::anyhow!("a {what} thread panicked");
    let mut r = Report {
        cpus,
        spinners: n_spin,
        sleepers: n_sleep,
        pipe_pairs: n_pipe,
        forkers: n_fork,
        spin_rounds_min: if n_spin > 0 { u64::MAX } else { 0 },
        ..Default::default()
    };
    for h in spinners {
        let rounds = h.join().map_err(|_| joined("spinner"))?;
        r.spin_rounds_min = r.spin_rounds_min.min(rounds);
        r.spin_rounds_max = r.spin_rounds_max.max(rounds);
        r.spinners_starved += (rounds == 0) as usize;
    }
    let mut late_sum = 0u64;
    for h in sleepers {
        let (n, sum, max) = h.join().map_err(|_| joined("sleeper"))?;
        r.wakeups += n;
        late_sum += sum;
        r.wake_late_us_max = r.wake_late_us_max.max(max);
    }
    r.wake_late_us_mean = if r.wakeups > 0 { late_sum as f64 / r.wakeups as f64 } else { 0.0 };
    for h in pipes {
        r.pipe_round_trips += h.join().map_err(|_| joined("pipe"))??;
    }
    for h in forkers {
        let (ok, bad) = h.join().map_err(|_| joined("fork"))?;
        r.execs += ok;
        r.exec_failures += bad;
    }
    r.secs = start.elapsed().as_secs_f64();
    r.interrupted = interrupted.load(Ordering::Relaxed);

    let json = serde_json::to_string(&r)?;
    println!("{json}");
    if let Some(path) = &o.json {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_must_be_positive() {
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-2").is_err());
        assert!(parse_secs("x").is_err());
        assert!(parse_secs("inf").is_err());
        assert_eq!(parse_secs("0.5").unwrap(), 0.5);
    }

    #[test]
    fn every_part_makes_progress() {
        // A short real run on the test machine's own scheduler.
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            s.store(true, Ordering::Relaxed);
        });
        let spin_s = stop.clone();
        let spinner = thread::spawn(move || sys::spin(&spin_s));
        let fork_s = stop.clone();
        let forker = thread::spawn(move || fork_exec(&fork_s));
        let pipe = thread::spawn({
            let s = stop.clone();
            move || pipe_pair(s)
        });
        let (wakeups, _, _) = sleep_wake(&stop, Duration::from_millis(1));
        t.join().unwrap();
        assert!(spinner.join().unwrap() > 0);
        assert!(wakeups > 0);
        assert!(pipe.join().unwrap().unwrap() > 0);
        let (ok, bad) = forker.join().unwrap();
        assert!(ok > 0 && bad == 0, "execs ok={ok} failed={bad}");
    }
}
