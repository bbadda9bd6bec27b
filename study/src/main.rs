// SPDX-License-Identifier: GPL-2.0-only
//! `study`: the study engine. `study run` plans the study (experiments x
//! schedulers x repeats on a VM preset or this machine), prints the plan and
//! its wall-time estimate with `--dry-run`, or runs it: in a guest booted by
//! scripts/vm, or natively, then writes study.json and the report.
//! scripts/reproduce is `study run` after setup and the build.
//!
//! Exit status: 0 complete; 3 complete but for schedulers that failed; 1
//! incomplete or an error; 2 bad usage (an unknown option or a bad value,
//! an invalid plan); 130/143 interrupted by SIGINT/SIGTERM.

mod estimate;
mod experiments;
mod host;
mod inside;
mod merge;
mod plan;
mod record;
mod sched;
mod topology;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use plan::{Mode, Plan, Request};

#[derive(Parser)]
#[command(name = "study", version, about = "The study engine: plan, run and record the experiments (scripts/reproduce runs it)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ModeArg {
    /// Natively if this machine's kernel has sched_ext and we are root, else the VM.
    Auto,
    Vm,
    Native,
}

#[derive(Subcommand)]
enum Cmd {
    /// Plan the study and run it (or, with --dry-run, print the plan and its estimate).
    Run(RunArgs),
    /// Execute a plan's runs on this machine (what `run` starts in the guest).
    Inside {
        /// plan.json in the study's directory.
        plan: PathBuf,
        /// Where scx_battle and loadgen are.
        #[arg(long)]
        bin: PathBuf,
    },
    /// The tools' limits, one `name value` per line (or one value): what
    /// scripts and tests ask instead of repeating them.
    Limits {
        /// One limit's name (sched_max_cpus, recorder_max_cpus, max_threads).
        name: Option<String>,
    },
    /// The experiments a study can run, one per line with what it is.
    Experiments,
    /// One study from the slices of a sharded one (`run --shard K/N`): every
    /// slice's runs in DIR, study.json and the report, as if run in one piece.
    Report {
        /// Every slice's study directory (each holds plan.json and study.json).
        #[arg(required = true, value_name = "SLICE_DIR")]
        slices: Vec<PathBuf>,
        /// The merged study's directory; it must not exist.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Print the plan (every run) and the estimated wall time, and exit: nothing is built or booted.
    #[arg(long)]
    dry_run: bool,
    /// The quick study: `small` in the VM, 3 s pinned, 10 s after the release, 40 s starvation runs.
    #[arg(long)]
    quick: bool,
    #[arg(long, value_enum, default_value = "auto")]
    mode: ModeArg,
    /// The ablation: every experiment under the kernel and scx_battle's eight combinations of
    /// CFS's and ULE's run queue, placement and balancer (cfs, ule and the six mixes such as
    /// cfs-cfs-ule), on `small` unless --preset says otherwise; the report attributes each
    /// metric to the components.
    #[arg(long)]
    ablation: bool,
    /// The overhead benchmarks (study experiments lists them: a setaffinity storm, perf bench
    /// sched pipe, hackbench, cyclictest beside spinners, the mixed load) under the kernel,
    /// scx_battle's vtime (the floor: one shared queue), cfs and ule, with each scheduler's CPU
    /// share; the report gives the ratios to the kernel and to the floor. On `small` unless
    /// --preset says otherwise.
    #[arg(long, conflicts_with = "ablation")]
    overhead: bool,
    /// The application suite (loadgen app --list names them: compressors, an encoder, a
    /// renderer, a build, PostgreSQL, nginx, redis, stressors) under the kernel, cfs and ule,
    /// 3 rounds unless --repeat says otherwise; the report sets ULE against CFS per
    /// application. On `paper` unless --preset says otherwise. --bench-size sizes them.
    #[arg(long, conflicts_with_all = ["ablation", "overhead"])]
    apps: bool,
    /// Only these applications of the suite, comma-separated (with --apps, or the apps experiment).
    #[arg(long = "app", value_delimiter = ',', value_name = "NAMES")]
    app_names: Vec<String>,
    /// The overhead benchmarks' sizes: full (loadgen's defaults), quick (--quick's), or tiny (a
    /// smoke run: every benchmark runs, its numbers too short to compare). Default: quick with
    /// --quick, else full.
    #[arg(long, value_enum, value_name = "SIZE")]
    bench_size: Option<experiments::overhead::Size>,
    /// The VM's topology, any scripts/vm preset (default: paper; --quick, --ablation and --overhead: small).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// VM only: guest time is host time (KVM where it works, else MTTCG) instead of icount.
    #[arg(long)]
    realtime: bool,
    /// Figure 6's threads (default: 16 per CPU, the paper's 512 on 32 cores).
    #[arg(long, value_name = "N")]
    threads: Option<u64>,
    /// Seconds recorded after the release under every scheduler but ULE (default 30; --quick 10).
    #[arg(long, value_name = "S", value_parser = positive_secs)]
    run_secs: Option<f64>,
    /// Seconds recorded after the release under ULE (default: ULE's rule with a 10 % margin, plus 30 s).
    #[arg(long, value_name = "S", value_parser = positive_secs)]
    ule_run_secs: Option<f64>,
    /// Seconds of each starvation run (default 60; --quick 40).
    #[arg(long, value_name = "S", value_parser = positive_secs)]
    starve_secs: Option<f64>,
    /// Runs of every experiment under every scheduler, in rounds (1-10; default 1, with --apps 3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    repeat: Option<u32>,
    /// Add a sched_ext scheduler as NAME=COMMAND (e.g. rusty=scx_rusty); `scx_battle` is the study's own binary.
    #[arg(long = "scheduler", value_name = "NAME=COMMAND")]
    extra: Vec<String>,
    /// Only these schedulers, by name (kernel, cfs, ule, any --scheduler, and any scx_battle
    /// policy such as cfs-cfs-ule), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    schedulers: Vec<String>,
    /// Only these experiments (study experiments lists them), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    experiments: Vec<String>,
    /// Only the K-th of N disjoint slices of the runs (a lab's batch array), e.g. 2/4.
    #[arg(long, value_name = "K/N", value_parser = shard)]
    shard: Option<(u32, u32)>,
    /// The study's directory (default results/<date>-<place>/, results/<date>-ablation-<place>/
    /// for --ablation, results/<date>-overhead-<place>/ for --overhead, results/<date>-apps-<place>/
    /// for --apps); it must not exist.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("needs a positive number of seconds, got '{s}'")),
    }
}

fn shard(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("needs K/N with 1 <= K <= N, got '{s}'");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Seconds as "1 h 02 min", "12 min 30 s" or "45 s".
pub fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// The repository: SCX_BATTLE_REPO (scripts/reproduce sets it), else the
/// checkout this binary was built in (target/<profile>/study).
fn repo() -> Result<PathBuf> {
    if let Ok(r) = std::env::var("SCX_BATTLE_REPO") {
        return Ok(PathBuf::from(r));
    }
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .find(|d| d.join("scripts/vm").is_file())
        .map(Path::to_path_buf)
        .context("cannot find the repository (scripts/vm): set SCX_BATTLE_REPO")
}

fn native_sched_ext() -> bool {
    // SAFETY: geteuid has no preconditions.
    Path::new("/sys/kernel/sched_ext").is_dir() && unsafe { libc::geteuid() } == 0
}

/// A plan error is bad usage: exit status 2.
struct Usage(anyhow::Error);

fn request(a: &RunArgs, repo: &Path) -> Result<Request, Usage> {
    let u = Usage;
    let native = match a.mode {
        ModeArg::Native => {
            if !native_sched_ext() {
                return Err(u(anyhow::anyhow!(
                    "--mode native needs root and a kernel with sched_ext (/sys/kernel/sched_ext); run scripts/doctor"
                )));
            }
            true
        }
        ModeArg::Vm => false,
        ModeArg::Auto => native_sched_ext(),
    };
    if native && (a.preset.is_some() || a.realtime) {
        return Err(u(anyhow::anyhow!("--preset and --realtime are VM options; natively the machine is what it is")));
    }
    let (mode, machine) = if native {
        (Mode::Native, topology::native().map_err(u)?)
    } else {
        let preset =
            a.preset.clone().unwrap_or_else(|| if a.quick || a.ablation || a.overhead { "small" } else { "paper" }.into());
        let m = topology::preset(repo, &preset).map_err(u)?;
        (Mode::Vm { preset, realtime: a.realtime }, m)
    };
    if !a.app_names.is_empty() && !a.apps && !a.experiments.iter().any(|e| e == "apps") {
        return Err(u(anyhow::anyhow!("--app names applications of the apps set: add --apps (or --experiments apps)")));
    }
    for name in &a.app_names {
        if rundata::apps::by_name(name).is_none() {
            return Err(u(anyhow::anyhow!(
                "--app: no application '{name}' (there are {}; loadgen app --list says what each runs)",
                rundata::apps::names().join(", ")
            )));
        }
    }
    let mut all = if a.ablation {
        plan::ablation_schedulers()
    } else if a.overhead {
        plan::overhead_schedulers()
    } else {
        plan::default_schedulers()
    };
    for spec in &a.extra {
        let mut s = plan::parse_scheduler(spec).map_err(u)?;
        if all.iter().any(|x| x.name == s.name) {
            return Err(u(anyhow::anyhow!("--scheduler {}: the study already has a scheduler of that name", s.name)));
        }
        // The guest sees this machine's files: name the binary by its full path.
        if s.command[0] != "scx_battle" {
            s.command[0] = which(&s.command[0]).ok_or_else(|| {
                u(anyhow::anyhow!(
                    "--scheduler {}: '{}' is not a command here (scripts/setup --peers installs scx_rusty and scx_lavd)",
                    s.name,
                    s.command[0]
                ))
            })?;
        }
        all.push(s);
    }
    Ok(Request {
        quick: a.quick,
        apps: a.app_names.clone(),
        bench_size: a.bench_size.unwrap_or(if a.quick {
            experiments::overhead::Size::Quick
        } else {
            experiments::overhead::Size::Full
        }),
        mode,
        machine,
        threads: a.threads,
        run_s: a.run_secs,
        ule_run_s: a.ule_run_secs,
        starve_s: a.starve_secs,
        repeat: a.repeat.unwrap_or(if a.apps { 3 } else { 1 }),
        schedulers: plan::select_schedulers(all, &a.schedulers).map_err(u)?,
        experiments: plan::select_experiments(
            &a.experiments,
            if a.overhead {
                Some(experiments::Experiment::Overhead)
            } else if a.apps {
                Some(experiments::Experiment::Apps)
            } else {
                None
            },
        )
        .map_err(u)?,
        shard: a.shard.unwrap_or((1, 1)),
    })
}

/// The full path of a command on PATH (or as given, if it has a slash).
fn which(cmd: &str) -> Option<String> {
    let found = |p: &Path| p.is_file().then(|| std::fs::canonicalize(p).unwrap_or(p.to_path_buf()).display().to_string());
    if cmd.contains('/') {
        return found(Path::new(cmd));
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find_map(|d| found(&d.join(cmd))))
}

fn run_study(a: RunArgs) -> Result<ExitCode> {
    let repo = repo()?;
    let req = match request(&a, &repo) {
        Ok(r) => r,
        Err(Usage(e)) => {
            eprintln!("[study] error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let plan = match Plan::build(&req) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("[study] error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if matches!(plan.mode, Mode::Native) && a.threads.is_none() {
        eprintln!(
            "[study] native run: {} threads, 16 per online CPU (the paper's 512 on 32 cores); --threads N changes it",
            plan.params.threads
        );
    }
    if a.dry_run {
        print!("{}", plan.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let out = match &a.out {
        Some(o) => std::path::absolute(o)?,
        None => {
            let kind = if a.ablation {
                "-ablation"
            } else if a.overhead {
                "-overhead"
            } else if a.apps {
                "-apps"
            } else {
                ""
            };
            repo.join("results").join(format!("{}{kind}-{}", record::utc_date(), plan.machine.place))
        }
    };
    host::check_out_dir(&out)?;
    host::run(&plan, &host::Setup { repo, bin: bin_dir()?, out, command: command_line() })
}

/// Where scx_battle, loadgen and analysis are: SCX_BATTLE_BIN, else beside this binary.
fn bin_dir() -> Result<PathBuf> {
    std::env::var_os("SCX_BATTLE_BIN")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)))
        .context("where are the binaries? set SCX_BATTLE_BIN")
}

/// The command line as the user typed it (scripts/reproduce passes its own).
fn command_line() -> String {
    std::env::var("SCX_BATTLE_COMMAND").unwrap_or_else(|_| {
        std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect::<Vec<_>>().join(" ")
    })
}

fn limits() -> Vec<(&'static str, usize)> {
    vec![
        ("sched_max_cpus", rundata::SCHED_MAX_CPUS),
        ("recorder_max_cpus", rundata::RECORDER_MAX_CPUS),
        ("max_threads", rundata::MAX_THREADS),
        ("unguarded_starvation_max_s", experiments::starvation::UNGUARDED_MAX_S as usize),
    ]
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Run(a) => run_study(a),
        Cmd::Inside { plan, bin } => inside::main(&plan, &bin),
        Cmd::Limits { name } => (|| {
            match name {
                None => limits().iter().for_each(|(k, v)| println!("{k} {v}")),
                Some(n) => match limits().iter().find(|(k, _)| *k == n) {
                    Some((_, v)) => println!("{v}"),
                    None => {
                        eprintln!("[study] error: no limit {n} (there are {})", limits().iter().map(|l| l.0).collect::<Vec<_>>().join(", "));
                        return Ok(ExitCode::from(2));
                    }
                },
            }
            Ok(ExitCode::SUCCESS)
        })(),
        Cmd::Report { slices, out } => {
            bin_dir().and_then(|bin| merge::main(&slices, &std::path::absolute(&out)?, &bin, command_line()))
        }
        Cmd::Experiments => {
            for e in experiments::all() {
                println!("{:<22} {}", e.name(), e.about());
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match res {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[study] error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_seconds_are_checked() {
        assert_eq!(shard("2/4"), Ok((2, 4)));
        assert!(shard("0/4").is_err() && shard("5/4").is_err() && shard("x").is_err());
        assert!(positive_secs("0").is_err() && positive_secs("-1").is_err() && positive_secs("nan").is_err());
        assert_eq!(positive_secs("14.5"), Ok(14.5));
    }

    #[test]
    fn hms_reads() {
        assert_eq!(hms(45.0), "45 s");
        assert_eq!(hms(750.0), "12 min 30 s");
        assert_eq!(hms(3720.0), "1 h 02 min");
    }
}
