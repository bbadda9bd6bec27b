// SPDX-License-Identifier: GPL-2.0-only
//! scx_battle: loader for the sched_ext scheduler in bpf/.
//!
//! Checks that the machine can take a sched_ext scheduler, loads the BPF
//! program with the chosen policy, attaches it (every task is then scheduled
//! by it), and runs until SIGINT/SIGTERM or until the kernel ends it. When the
//! kernel asks for a restart (CPU hotplug) it loads the scheduler again.

mod bpf_intf;
mod bpf_skel;
mod stats;
mod topo;

use std::mem::MaybeUninit;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use libbpf_rs::OpenObject;
use scx_utils::{scx_ops_attach, scx_ops_load, scx_ops_open, uei_exited, uei_report, UserExitInfo};

use bpf_skel::*;
use stats::Counters;

const SCHED_EXT_DIR: &str = "/sys/kernel/sched_ext";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Policy {
    /// One machine-wide queue ordered by weighted virtual time.
    Vtime,
}

impl Policy {
    fn bpf_value(self) -> u32 {
        match self {
            Policy::Vtime => bpf_intf::policy_POLICY_VTIME,
        }
    }
}

/// sched_ext scheduler for the ULE vs CFS study.
#[derive(Debug, Parser)]
#[command(name = "scx_battle", version)]
struct Opts {
    /// Scheduling policy.
    #[arg(long, value_enum, default_value_t = Policy::Vtime)]
    policy: Policy,

    /// Longest time slice, in microseconds.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    slice_us: u64,

    /// Shortest time slice when many tasks wait, in microseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=1_000_000))]
    slice_min_us: u64,

    /// Print the scheduler's event counters every SECS seconds (0.1 to 3600).
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    stats: Option<f64>,

    /// Stall limit: the kernel ends the scheduler if a runnable task waits this long, in ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1000..=30_000))]
    watchdog_ms: u32,

    /// Bytes of kernel debug dump to keep when the scheduler exits with an error (0: kernel default).
    #[arg(long, default_value_t = 0)]
    exit_dump_len: u32,

    /// Print libbpf's messages while loading.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{v} s is outside 0.1..=3600"));
    }
    Ok(v)
}

impl Opts {
    fn check(&self) -> Result<()> {
        if self.slice_min_us > self.slice_us {
            bail!(
                "--slice-min-us ({}) must not exceed --slice-us ({})",
                self.slice_min_us,
                self.slice_us
            );
        }
        Ok(())
    }
}

/// Refuse early, with a clear reason, where loading cannot work.
fn preflight(sched_ext_dir: &Path) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("must run as root: loading a sched_ext scheduler needs CAP_SYS_ADMIN and CAP_BPF");
    }
    if !sched_ext_dir.is_dir() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        bail!(
            "the running kernel ({}) has no sched_ext: {} is missing (CONFIG_SCHED_CLASS_EXT is off). \
             Boot a kernel with sched_ext, or use scripts/vm to run in a VM that has one",
            release.trim(),
            sched_ext_dir.display()
        );
    }
    let state = std::fs::read_to_string(sched_ext_dir.join("state"))
        .with_context(|| format!("reading {}/state", sched_ext_dir.display()))?;
    if state.trim() != "disabled" {
        let ops = std::fs::read_to_string(sched_ext_dir.join("root/ops")).unwrap_or_default();
        bail!(
            "another sched_ext scheduler is already running (state '{}', ops '{}'); stop it first",
            state.trim(),
            ops.trim()
        );
    }
    Ok(())
}

struct Scheduler<'a> {
    skel: BpfSkel<'a>,
    link: Option<libbpf_rs::Link>,
    stats_every: Option<Duration>,
}

impl<'a> Scheduler<'a> {
    fn init(opts: &Opts, open_object: &'a mut MaybeUninit<OpenObject>) -> Result<Self> {
        let machine = topo::Machine::detect()?;
        eprintln!("scx_battle: policy {:?} on {}", opts.policy, machine.summary());

        let mut builder = BpfSkelBuilder::default();
        builder.obj_builder.debug(opts.verbose);
        let mut skel = scx_ops_open!(
            builder,
            open_object,
            battle_ops,
            None::<libbpf_rs::libbpf_sys::bpf_object_open_opts>
        )?;

        let rodata = skel.maps.rodata_data.as_mut().unwrap();
        rodata.policy = opts.policy.bpf_value();
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.slice_min_ns = opts.slice_min_us * 1000;
        rodata.nr_cpus = machine.nr_cpus as u32;

        let ops = skel.struct_ops.battle_ops_mut();
        ops.timeout_ms = opts.watchdog_ms;
        ops.exit_dump_len = opts.exit_dump_len;

        let mut skel = scx_ops_load!(skel, battle_ops, uei)?;
        let link = scx_ops_attach!(skel, battle_ops)?;
        eprintln!("scx_battle: attached");

        Ok(Scheduler {
            skel,
            link: Some(link),
            stats_every: opts.stats.map(Duration::from_secs_f64),
        })
    }

    fn counters(&self) -> Result<Counters> {
        Counters::read(&self.skel.maps.stats)
    }

    /// Run until asked to stop or ended by the kernel; detach; report the exit.
    fn run(&mut self, shutdown: &AtomicBool, totals: &mut Counters) -> Result<UserExitInfo> {
        let start = Instant::now();
        let mut last = Counters::default();
        let mut next_stats = self.stats_every.map(|d| start + d);

        while !shutdown.load(Ordering::Relaxed) && !uei_exited!(&self.skel, uei) {
            std::thread::sleep(Duration::from_millis(50));
            if let (Some(due), Some(every)) = (next_stats, self.stats_every) {
                if Instant::now() >= due {
                    let now = self.counters()?;
                    let label = format!("t={:.1}s", start.elapsed().as_secs_f64());
                    println!("{}", now.since(&last).line(&label));
                    last = now;
                    next_stats = Some(due + every);
                }
            }
        }

        // Final counters before detaching: the maps go away with the skeleton.
        totals.add(&self.counters()?);
        self.link.take();
        uei_report!(&self.skel, uei)
    }
}

/// Route scx_utils' log::warn!/info! to stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("scx_battle: {}: {}", r.level().as_str().to_lowercase(), r.args());
        }
    }
    fn flush(&self) {}
}

fn run(opts: &Opts) -> Result<()> {
    opts.check()?;
    preflight(Path::new(SCHED_EXT_DIR))?;

    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the SIGINT/SIGTERM handler")?;

    let mut totals = Counters::default();
    let mut open_object = MaybeUninit::uninit();
    let exit = loop {
        let mut sched = Scheduler::init(opts, &mut open_object)?;
        let exit = sched.run(&shutdown, &mut totals);
        drop(sched);
        match exit {
            Ok(uei) if uei.should_restart() && !shutdown.load(Ordering::Relaxed) => {
                eprintln!("scx_battle: the kernel asked for a restart; loading again");
            }
            other => break other,
        }
    };
    if opts.stats.is_some() {
        println!("{}", totals.line("total"));
    }
    exit.context("the kernel ended the scheduler")?;
    eprintln!("scx_battle: detached cleanly");
    Ok(())
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    log::set_max_level(if opts.verbose { log::LevelFilter::Info } else { log::LevelFilter::Warn });
    let _ = log::set_logger(&StderrLog);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scx_battle: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Opts, clap::Error> {
        Opts::try_parse_from(std::iter::once("scx_battle").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.policy, Policy::Vtime);
        assert_eq!(o.slice_us, 20_000);
        assert!(o.stats.is_none());
        o.check().unwrap();
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--policy", "fifo"][..],
            &["--slice-us", "0"],
            &["--slice-us", "abc"],
            &["--stats", "0"],
            &["--stats", "-1"],
            &["--stats", "nan"],
            &["--watchdog-ms", "50000"],
            &["--no-such-flag"],
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn slice_min_above_slice_is_an_error() {
        let o = parse(&["--slice-us", "1000", "--slice-min-us", "2000"]).unwrap();
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("--slice-min-us"), "{e}");
    }

    #[test]
    fn preflight_without_sched_ext_names_the_problem() {
        // Only meaningful as root on a kernel without sched_ext (the CI host);
        // elsewhere the first check (root) must fire instead.
        let e = preflight(Path::new("/nonexistent/sched_ext")).unwrap_err().to_string();
        if unsafe { libc::geteuid() } == 0 {
            assert!(e.contains("has no sched_ext"), "{e}");
        } else {
            assert!(e.contains("must run as root"), "{e}");
        }
    }

    #[test]
    fn preflight_sees_a_running_scheduler() {
        if unsafe { libc::geteuid() } != 0 {
            return assert!(preflight(Path::new("/")).is_err());
        }
        let dir = std::env::temp_dir().join(format!("scx_battle_test_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::write(dir.join("state"), "enabled\n").unwrap();
        std::fs::write(dir.join("root/ops"), "scx_other\n").unwrap();
        let e = preflight(&dir).unwrap_err().to_string();
        assert!(e.contains("already running") && e.contains("scx_other"), "{e}");
        std::fs::write(dir.join("state"), "disabled\n").unwrap();
        preflight(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
