// SPDX-License-Identifier: GPL-2.0-only
//! The runner: executes a plan's runs one after the other on the machine it
//! runs on (a guest of scripts/vm, or natively). Each run loads its
//! scheduler, runs loadgen into the run's directory and unloads it; how the
//! run ended goes to `status` ("<dir> complete" or "<dir> failed: why").
//! A scheduler that fails (does not load, is ejected, exits with an error)
//! fails its run and the study goes on; loadgen failing ends the study.
//! `current` names the run under way ("<index> <dir>"), and an empty
//! `.mark-run-<index>` is made when each run starts and ends, so that the
//! host can time the runs on its own clock (the guest's is icount's).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use rundata::policy::{Comp, Part};

use crate::plan::{Plan, Run};
use crate::sched;

/// How a run ended, for `status`.
enum Outcome {
    Complete,
    /// The scheduler failed: the study goes on.
    SchedulerFailed(String),
    /// loadgen failed or we were interrupted: the study stops.
    Stop(String),
}

pub fn main(plan_path: &Path, bin: &Path) -> Result<ExitCode> {
    let plan = Plan::load(plan_path)?;
    let out = plan_path.parent().context("the plan's directory")?.to_path_buf();
    sched::catch_signals();
    let state = sched::state();
    if state == "missing" {
        bail!("this kernel has no sched_ext (/sys/kernel/sched_ext)");
    }
    if state != "disabled" {
        bail!("a sched_ext scheduler is already loaded ({})", sched::ops());
    }
    let cpus = online_cpus();
    if cpus != plan.machine.cpus {
        eprintln!("[study] warning: the plan expected {} CPUs, this machine has {cpus} online", plan.machine.cpus);
    }
    let total = plan.runs.len();
    for (i, run) in plan.runs.iter().enumerate() {
        if let Some(sig) = sched::signalled() {
            eprintln!("[study] interrupted (SIG{}): {} of {total} runs made", sched::signal_name(sig), i);
            return Ok(ExitCode::from(sched::signal_status(sig)));
        }
        println!(
            "== [{}/{total}] {}: {} under {} ({:.0} s on the machine's clock)",
            i + 1,
            run.dir,
            run.experiment,
            run.scheduler,
            run.guest_s
        );
        std::fs::write(out.join("current"), format!("{i} {}\n", run.dir))?;
        mark(&out, i);
        let outcome = one_run(&plan, run, &out, bin)?;
        mark(&out, i);
        match outcome {
            Outcome::Complete => note(&out, &format!("{} complete", run.dir))?,
            Outcome::SchedulerFailed(why) => {
                eprintln!("[study] warning: {}: {why}; the study goes on without it", run.dir);
                note(&out, &format!("{} failed: {why}", run.dir))?;
            }
            Outcome::Stop(why) => {
                note(&out, &format!("{} failed: {why}", run.dir))?;
                if let Some(sig) = sched::signalled() {
                    eprintln!("[study] interrupted (SIG{}) during {}", sched::signal_name(sig), run.dir);
                    return Ok(ExitCode::from(sched::signal_status(sig)));
                }
                bail!("{}: {why}", run.dir);
            }
        }
    }
    let _ = std::fs::remove_file(out.join("current"));
    Ok(ExitCode::SUCCESS)
}

fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(0) as usize
}

/// Append a line to `status`.
fn note(out: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(out.join("status"))?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// An empty file whose creation time (the host's clock, through the shared
/// file system) marks a run's start or end.
fn mark(out: &Path, i: usize) {
    let p = out.join(format!(".mark-run-{i}"));
    let p = if p.exists() { out.join(format!(".mark-run-{i}-end")) } else { p };
    let _ = std::fs::File::create(p);
}

/// The scheduler's command with the study's own binary for `scx_battle`,
/// the run's own options (the guard-off runs'), its counters every 10 s
/// into the run directory, and under ULE in the starvation runs every
/// thread's classification.
fn scheduler_command(plan: &Plan, run: &Run, dir: &Path, bin: &Path) -> Vec<String> {
    let s = plan.scheduler(&run.scheduler);
    let mut cmd = s.command.clone();
    if cmd.first().map(String::as_str) == Some("scx_battle") {
        cmd[0] = bin.join("scx_battle").display().to_string();
    }
    cmd.extend(run.sched_args.iter().cloned());
    if let Some(policy) = s.policy() {
        cmd.extend(["--stats".into(), "10".into(), "--stats-csv".into(), dir.join("sched_stats.csv").display().to_string()]);
        if policy.comp(Part::Queue) == Some(Comp::Ule) && run.experiment.starts_with("starvation") {
            cmd.extend(["--stats-tasks".into(), "lg-".into(), "--tasks-csv".into(), dir.join("ule_tasks.csv").display().to_string()]);
        }
    }
    cmd
}

fn one_run(plan: &Plan, run: &Run, out: &Path, bin: &Path) -> Result<Outcome> {
    let dir: PathBuf = out.join(&run.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let s = plan.scheduler(&run.scheduler);
    let mut loaded = None;
    if !s.is_kernel() {
        match sched::load(&scheduler_command(plan, run, &dir, bin), &dir.join("scheduler.log")) {
            Ok(l) => loaded = Some(l),
            Err(why) if sched::signalled().is_some() => return Ok(Outcome::Stop(format!("interrupted while loading: {why}"))),
            Err(why) => return Ok(Outcome::SchedulerFailed(format!("scheduler did not load: {why}"))),
        }
    }
    let mut cmd = Command::new(bin.join("loadgen"));
    cmd.args(&run.loadgen).arg("--out").arg(&dir);
    // A benchmark's bench.json names the scheduler from sysfs; a run directory names it too.
    if !s.is_kernel() && s.policy().is_none() && !matches!(run.loadgen.first().map(String::as_str), Some("bench" | "app")) {
        cmd.args(["--label", &s.name]);
    }
    let status = sched::run_step(&mut cmd)?;
    let Some(mut l) = loaded else {
        return Ok(match status {
            Some(0) => Outcome::Complete,
            st => Outcome::Stop(format!("loadgen exited with status {st:?}")),
        });
    };
    let attached = l.attached();
    let ejected = if attached { None } else { Some(ejection(&l.log)) };
    let code = l.stop();
    if s.policy().is_some() {
        print_counters(&l.log);
    }
    if status != Some(0) {
        return Ok(Outcome::Stop(format!("loadgen exited with status {status:?}")));
    }
    if let Some(why) = ejected {
        return Ok(Outcome::SchedulerFailed(format!("scheduler was ejected: {why}")));
    }
    match code {
        Some(0) => Ok(Outcome::Complete),
        c => Ok(Outcome::SchedulerFailed(format!("scheduler exited with status {c:?}: {}", last_line(&l.log)))),
    }
}

/// The kernel's exit line in the scheduler's log, or the state.
fn ejection(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().find(|l| l.contains("EXIT")).map(str::to_string).unwrap_or_else(|| format!("state {}", sched::state()))
}

fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default().lines().last().unwrap_or("").to_string()
}

/// Our policies' balancing counters for the whole run (its "stats total" line).
fn print_counters(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(line) = text.lines().rev().find(|l| l.starts_with("stats total")) {
        let keep = ["ule_bal_", "ule_steal", "ule_starve", "lb_success", "migrate_"];
        let kv: Vec<&str> = line.split(' ').filter(|kv| keep.iter().any(|k| kv.starts_with(k))).collect();
        println!("{}", kv.join(" "));
    }
}
