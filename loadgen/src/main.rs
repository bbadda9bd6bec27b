// SPDX-License-Identifier: GPL-2.0-only
//! loadgen: workloads and a scheduler-independent recorder for the study.
//!
//! - `loadgen spin`: the thread-spreading experiment (Bouron et al., figure
//!   6): N spinning threads pinned on one CPU, then released to every CPU,
//!   recorded per CPU over time.
//! - `loadgen mixed`: batch spinners plus interactive threads, with the
//!   interactive threads' wake-to-run latency.
//! - `loadgen serve`: server threads answering requests beside batch
//!   spinners on one CPU (ULE's starvation of batch and of identical
//!   threads), with requests/s, latency and every thread's CPU time and waits.
//! - `loadgen stress`: the mixed stress workload the test bed runs under
//!   every scheduler (no recorder).
//! - `loadgen slices fork|preempt`: a new thread's first slice and a
//!   spinner's turn across preemptions, seen by the threads themselves (JSON).
//!
//! - `loadgen bench KIND`: what scheduling costs (a setaffinity storm, perf
//!   bench sched pipe, hackbench, cyclictest beside spinners, the mixed
//!   load), with the scheduler's CPU share; bench.rs.
//!
//! `spin`, `mixed` and `serve` write a run directory; see experiment.rs.

mod apps;
mod bench;
mod experiment;
mod recorder;
mod slices;
mod stress;
mod sys;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use experiment::{Kind, Plan, ThreadSpec};

#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about = "Workloads and recorder for the scheduler study")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// N spinning threads pinned on one CPU, then released to every CPU.
    Spin(SpinOpts),
    /// Batch spinners plus interactive threads; records wake-to-run latency.
    Mixed(MixedOpts),
    /// Server threads (and batch spinners) on one CPU: requests/s, latency,
    /// every thread's CPU time and waits. With --batch 1 the paper's batch
    /// program beside an interactive server; with --batch 0 and more demand
    /// than the CPU has, identical threads of one application.
    Serve(ServeOpts),
    /// Mixed stress workload: spinners, sleepers, pipe pairs and fork/exec churn.
    Stress(stress::Opts),
    /// Probes of how long a thread keeps its CPU: a new thread's first slice
    /// (fork), a spinner's turn across remote-wakeup preemptions (preempt).
    Slices(slices::Opts),
    /// One overhead benchmark under whatever scheduler is loaded, with the
    /// scheduler's CPU share: bench.json in --out.
    Bench(bench::Opts),
    /// Real applications (compressors, an encoder, a renderer, a build, a
    /// database, servers, stressors) under whatever scheduler is loaded, one
    /// after the other: bench.json per application in --out.
    App(apps::Opts),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Arrivals {
    /// A request comes every period, served or not (a backlog builds up).
    Open,
    /// The next request comes a think time after the reply.
    Closed,
}

/// Threads one run may have (rundata::MAX_THREADS, the recorder's table).
const MAX_THREADS: i64 = rundata::MAX_THREADS as i64;

#[derive(Debug, Args)]
struct ServeOpts {
    /// Server threads (the application's identical workers).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=MAX_THREADS))]
    servers: u32,
    /// CPU-bound batch threads beside them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=MAX_THREADS))]
    batch: u32,
    /// CPU time one request takes, in microseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    request_us: u64,
    /// Offered load of each server, in percent of a CPU: the share of the
    /// CPU its requests take if served at once, in (0, 100]. The servers
    /// together may ask for more than the CPU has.
    #[arg(long, default_value_t = 25.0, value_parser = load_percent)]
    load: f64,
    /// How requests arrive.
    #[arg(long, value_enum, default_value_t = Arrivals::Closed)]
    arrivals: Arrivals,
    /// The CPU every thread runs on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = positive_secs)]
    secs: f64,
    #[command(flatten)]
    rec: Recording,
}

fn load_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a percentage"))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(format!("an offered load of {s} % is outside (0, 100]"));
    }
    Ok(v)
}

#[derive(Debug, Args)]
struct Recording {
    /// Run directory for timeline.csv, migrations.csv, threads.csv, cpus.csv, meta.json.
    #[arg(long)]
    out: PathBuf,
    /// Sampling interval of the per-CPU thread counts, in ms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    interval_ms: u64,
    /// Sampling interval of every worker's CPU time (thread_time.csv), in ms
    /// [default: 1000 for spin, 100 for the others].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    thread_interval_ms: Option<u64>,
    /// Skip comparing the recorder with /proc/<pid>/task/*/stat during the run.
    #[arg(long)]
    no_proc_checks: bool,
    /// The scheduler's name in figures and tables (meta.json `label`), instead of the
    /// name sched_ext reports (e.g. to tell two configurations of one scheduler apart).
    #[arg(long, value_parser = parse_label)]
    label: Option<String>,
}

fn parse_label(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.len() > 64 || s.chars().any(|c| c.is_control() || c == '|') {
        return Err(format!("'{s}': a label is 1 to 64 printable characters, without '|'"));
    }
    Ok(s.to_string())
}

#[derive(Debug, Args)]
struct SpinOpts {
    /// Spinning threads.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=MAX_THREADS))]
    threads: u32,
    /// The CPU all threads are pinned on until the release.
    #[arg(long = "cpu", alias = "pin-cpu", default_value_t = 0, value_name = "CPU")]
    pin_cpu: usize,
    /// Seconds pinned before the release.
    #[arg(long, default_value_t = 14.5, value_parser = positive_secs)]
    pin_secs: f64,
    /// Seconds spinning after the release.
    #[arg(long, default_value_t = 20.0, value_parser = positive_secs)]
    run_secs: f64,
    /// Nice levels, given to the threads in turn (e.g. -5,0,5).
    #[arg(long, value_delimiter = ',', default_value = "0", allow_hyphen_values = true)]
    nice: Vec<i32>,
    /// Stop at the end of the pinned phase: a pinned fairness run, no release.
    #[arg(long)]
    no_release: bool,
    /// How the threads start on the pinned CPU.
    #[arg(long, value_enum, default_value_t = Start::Gate)]
    start: Start,
    /// With --start spinning: the creator pauses this long after each thread,
    /// as a pool that sets each worker up before the next does, in ms.
    #[arg(long, default_value_t = 0.0, value_parser = pause_ms)]
    create_every_ms: f64,
    #[command(flatten)]
    rec: Recording,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Start {
    /// Each thread pins itself and sleeps until all exist; then all start
    /// spinning at once (the paper's setup as loadgen has always run it).
    Gate,
    /// Each thread is created pinned (pthread attributes) by a SCHED_FIFO
    /// thread on the last CPU and spins from its first instruction, so every
    /// new thread joins a queue of running spinners, as a thread pool started
    /// under taskset does; the time until every thread has run once is the
    /// run's spawn_ms.
    Spinning,
}

impl From<Start> for rundata::SpinStart {
    fn from(s: Start) -> Self {
        match s {
            Start::Gate => rundata::SpinStart::Gate,
            Start::Spinning => rundata::SpinStart::Spinning,
        }
    }
}

#[derive(Debug, Args)]
struct MixedOpts {
    /// CPU-bound (batch) threads.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=MAX_THREADS))]
    spinners: u32,
    /// Interactive threads: sleep, run briefly, sleep again.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=MAX_THREADS))]
    interactive: u32,
    /// How long an interactive thread sleeps each round, in ms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    sleep_ms: u64,
    /// How long an interactive thread runs each round, in microseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    run_us: u64,
    /// Nice levels of the spinners, given in turn.
    #[arg(long, value_delimiter = ',', default_value = "0", allow_hyphen_values = true)]
    nice: Vec<i32>,
    /// Put every thread on this one CPU for the whole run.
    #[arg(long = "cpu", alias = "pin-cpu", value_name = "CPU")]
    pin_cpu: Option<usize>,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20.0, value_parser = positive_secs)]
    secs: f64,
    #[command(flatten)]
    rec: Recording,
}

fn pause_ms(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of ms"))?;
    if !(0.0..=10_000.0).contains(&v) {
        return Err(format!("{s} ms is outside [0, 10000]"));
    }
    Ok(v)
}

fn positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!("{s} is outside (0, 86400] seconds"));
    }
    Ok(v)
}

fn spin_plan(o: &SpinOpts) -> Plan {
    let threads = (0..o.threads as usize)
        .map(|i| ThreadSpec { kind: Kind::Spinner, nice: o.nice[i % o.nice.len()] })
        .collect();
    Plan {
        threads,
        pin_cpu: Some(o.pin_cpu),
        pin_secs: o.pin_secs,
        run_secs: o.run_secs,
        no_release: o.no_release,
        start: o.start.into(),
        create_every: std::time::Duration::from_secs_f64(o.create_every_ms / 1e3),
        interval_ms: o.rec.interval_ms,
        thread_interval_ms: o.rec.thread_interval_ms.unwrap_or(1000),
        out: o.rec.out.clone(),
        proc_checks: !o.rec.no_proc_checks,
        label: o.rec.label.clone(),
        workload: rundata::Workload::Spin(rundata::SpinOptions {
            threads: o.threads as u64,
            pin_cpu: o.pin_cpu,
            pin_secs: o.pin_secs,
            run_secs: o.run_secs,
            nice: o.nice.clone(),
            no_release: o.no_release,
            interval_ms: o.rec.interval_ms,
            start: o.start.into(),
            create_every_ms: o.create_every_ms,
        }),
    }
}

fn mixed_plan(o: &MixedOpts) -> Plan {
    let mut threads: Vec<ThreadSpec> = (0..o.spinners as usize)
        .map(|i| ThreadSpec { kind: Kind::Spinner, nice: o.nice[i % o.nice.len()] })
        .collect();
    let inter = Kind::Interactive { sleep_us: o.sleep_ms * 1000, run_us: o.run_us };
    threads.extend((0..o.interactive).map(|_| ThreadSpec { kind: inter, nice: 0 }));
    let pinned = o.pin_cpu.is_some();
    Plan {
        threads,
        pin_cpu: o.pin_cpu,
        pin_secs: if pinned { o.secs } else { 0.0 },
        run_secs: if pinned { 0.0 } else { o.secs },
        no_release: pinned,
        start: rundata::SpinStart::Gate,
        create_every: std::time::Duration::ZERO,
        interval_ms: o.rec.interval_ms,
        thread_interval_ms: o.rec.thread_interval_ms.unwrap_or(100),
        out: o.rec.out.clone(),
        proc_checks: !o.rec.no_proc_checks,
        label: o.rec.label.clone(),
        workload: rundata::Workload::Mixed(rundata::MixedOptions {
            spinners: o.spinners as u64,
            interactive: o.interactive as u64,
            sleep_ms: o.sleep_ms,
            run_us: o.run_us,
            nice: o.nice.clone(),
            pin_cpu: o.pin_cpu,
            secs: o.secs,
            interval_ms: o.rec.interval_ms,
        }),
    }
}

fn serve_plan(o: &ServeOpts) -> Plan {
    let request_ns = o.request_us * 1000;
    let period_ns = (request_ns as f64 * 100.0 / o.load).round() as u64;
    let mut threads: Vec<ThreadSpec> = (0..o.batch).map(|_| ThreadSpec { kind: Kind::Spinner, nice: 0 }).collect();
    // Staggered first requests: servers take turns instead of arriving together.
    threads.extend((0..o.servers as u64).map(|j| ThreadSpec {
        kind: Kind::Server {
            request_ns,
            period_ns,
            phase_ns: period_ns * j / o.servers as u64,
            closed: o.arrivals == Arrivals::Closed,
        },
        nice: 0,
    }));
    Plan {
        threads,
        pin_cpu: Some(o.cpu),
        pin_secs: o.secs,
        run_secs: 0.0,
        no_release: true,
        start: rundata::SpinStart::Gate,
        create_every: std::time::Duration::ZERO,
        interval_ms: o.rec.interval_ms,
        thread_interval_ms: o.rec.thread_interval_ms.unwrap_or(100),
        out: o.rec.out.clone(),
        proc_checks: !o.rec.no_proc_checks,
        label: o.rec.label.clone(),
        workload: rundata::Workload::Serve(rundata::ServeOptions {
            servers: o.servers as u64,
            batch: o.batch as u64,
            request_us: o.request_us,
            load_percent: o.load,
            offered_percent: o.load * o.servers as f64,
            arrivals: format!("{:?}", o.arrivals).to_lowercase(),
            cpu: o.cpu,
            secs: o.secs,
            interval_ms: o.rec.interval_ms,
            thread_interval_ms: o.rec.thread_interval_ms.unwrap_or(100),
        }),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Spin(o) => experiment::run(&spin_plan(&o)),
        Cmd::Mixed(o) => experiment::run(&mixed_plan(&o)),
        Cmd::Serve(o) => experiment::run(&serve_plan(&o)),
        Cmd::Stress(o) => stress::run(&o),
        Cmd::Slices(o) => slices::run(&o),
        Cmd::Bench(o) => bench::run(&o),
        Cmd::App(o) => apps::run(&o),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn spin_defaults_are_the_paper_experiment() {
        let Cmd::Spin(o) = parse(&["spin", "--out", "x"]).unwrap().cmd else { panic!() };
        let p = spin_plan(&o);
        assert_eq!(p.threads.len(), 512);
        assert_eq!(p.pin_cpu, Some(0));
        assert_eq!(p.pin_secs, 14.5);
        assert!(!p.no_release);
        assert_eq!(p.interval_ms, 10);
    }

    #[test]
    fn every_workload_names_its_cpu_cpu_and_the_old_name_still_works() {
        for args in [&["spin", "--out", "x", "--cpu", "2"][..], &["spin", "--out", "x", "--pin-cpu", "2"][..]] {
            let Cmd::Spin(o) = parse(args).unwrap().cmd else { panic!() };
            assert_eq!(spin_plan(&o).pin_cpu, Some(2), "{args:?}");
        }
        let Cmd::Serve(o) = parse(&["serve", "--out", "x", "--cpu", "3"]).unwrap().cmd else { panic!() };
        assert_eq!(serve_plan(&o).pin_cpu, Some(3));
        // One thread limit, the recorder's.
        let max = rundata::MAX_THREADS.to_string();
        let over = (rundata::MAX_THREADS + 1).to_string();
        assert!(parse(&["spin", "--out", "x", "--threads", &max]).is_ok());
        assert!(parse(&["spin", "--out", "x", "--threads", &over]).is_err());
    }

    #[test]
    fn nice_levels_go_round_robin() {
        let Cmd::Spin(o) = parse(&["spin", "--out", "x", "--threads", "4", "--nice", "-5,0,5"]).unwrap().cmd else {
            panic!()
        };
        let nices: Vec<i32> = spin_plan(&o).threads.iter().map(|t| t.nice).collect();
        assert_eq!(nices, vec![-5, 0, 5, -5]);
    }

    #[test]
    fn mixed_pinned_runs_without_release() {
        let Cmd::Mixed(o) = parse(&["mixed", "--out", "x", "--cpu", "1", "--secs", "5"]).unwrap().cmd else {
            panic!()
        };
        let p = mixed_plan(&o);
        assert_eq!(p.threads.len(), 4);
        assert!(p.no_release && p.pin_secs == 5.0);
        assert!(matches!(p.threads[3].kind, Kind::Interactive { sleep_us: 10_000, run_us: 500 }));
    }

    #[test]
    fn serve_plans_servers_with_staggered_requests() {
        let Cmd::Serve(o) = parse(&["serve", "--out", "x", "--servers", "4", "--load", "20", "--request-us", "500"])
            .unwrap()
            .cmd
        else {
            panic!()
        };
        let p = serve_plan(&o);
        assert_eq!((p.pin_cpu, p.no_release, p.threads.len()), (Some(0), true, 5));
        assert!(matches!(p.threads[0].kind, Kind::Spinner));
        // 20 % of a CPU in 0.5 ms requests: one every 2.5 ms, the 4 servers a quarter apart.
        let phases: Vec<u64> = p.threads[1..]
            .iter()
            .map(|t| match t.kind {
                Kind::Server { request_ns: 500_000, period_ns: 2_500_000, phase_ns, closed: true } => phase_ns,
                k => panic!("{k:?}"),
            })
            .collect();
        assert_eq!(phases, vec![0, 625_000, 1_250_000, 1_875_000]);
        let rundata::Workload::Serve(opts) = &p.workload else { panic!("{:?}", p.workload) };
        assert_eq!(opts.offered_percent, 80.0);
        let Cmd::Serve(o) = parse(&["serve", "--out", "x", "--batch", "0", "--load", "100", "--arrivals", "open"]).unwrap().cmd
        else {
            panic!()
        };
        let p = serve_plan(&o);
        assert!(p.threads.iter().all(|t| matches!(t.kind, Kind::Server { closed: false, period_ns: 1_000_000, .. })));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["spin"][..],
            &["spin", "--out", "x", "--threads", "0"],
            &["spin", "--out", "x", "--pin-secs", "0"],
            &["spin", "--out", "x", "--run-secs", "-1"],
            &["spin", "--out", "x", "--interval-ms", "0"],
            &["spin", "--out", "x", "--nice", "a"],
            &["mixed", "--out", "x", "--sleep-ms", "0"],
            &["serve", "--out", "x", "--load", "0"],
            &["serve", "--out", "x", "--load", "100.5"],
            &["serve", "--out", "x", "--load", "-3"],
            &["serve", "--out", "x", "--servers", "0"],
            &["serve", "--out", "x", "--servers", "70000"],
            &["serve", "--out", "x", "--request-us", "0"],
            &["serve", "--out", "x", "--arrivals", "sometimes"],
            &["spin", "--out", "x", "--label", ""],
            &["spin", "--out", "x", "--label", "a|b"],
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        let Cmd::Spin(o) = parse(&["spin", "--out", "x", "--label", "rusty"]).unwrap().cmd else { panic!() };
        assert_eq!(spin_plan(&o).label.as_deref(), Some("rusty"));
    }
}
