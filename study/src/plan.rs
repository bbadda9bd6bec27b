// SPDX-License-Identifier: GPL-2.0-only
//! The plan: experiments x schedulers x repeats on one machine (a VM preset
//! or this machine), as typed data. Built on the host from the options,
//! written to `plan.json` in the study's directory, and read by the runner
//! that executes it (`study inside`, in the guest or natively).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use rundata::policy::{Comp, Part, Policy};

use crate::estimate;
use crate::experiments::{self, Experiment};

/// plan.json's layout version.
pub const PLAN_FORMAT: u32 = 1;

/// Where the study runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// In a guest of scripts/vm: the preset, and whether guest time is real
    /// (KVM or MTTCG) rather than icount.
    Vm { preset: String, realtime: bool },
    /// On this machine, as root, on its own kernel.
    Native,
}

/// The machine the runs see.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub nodes: usize,
    pub smt: bool,
    /// "paper", "small", ... or "native-<host>".
    pub place: String,
}

/// A scheduler of the study: the kernel's own (no command), a scx_battle
/// policy, or any sched_ext scheduler given as a command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scheduler {
    pub name: String,
    /// The command that loads it (argv); empty for the kernel's own.
    /// `scx_battle` as the first word is the study's own copy.
    pub command: Vec<String>,
}

impl Scheduler {
    pub fn is_kernel(&self) -> bool {
        self.command.is_empty()
    }
    /// The study's own columns, cfs and ule and the ablation's mixes:
    /// scx_battle with that policy, under that name (their counters and task
    /// classes are recorded, and the runs are named by the scheduler; any
    /// other is labelled by its name).
    pub fn policy(&self) -> Option<Policy> {
        match self.command.as_slice() {
            [bin, flag, p] if bin == "scx_battle" && flag == "--policy" && *p == self.name => {
                p.parse().ok().filter(|p| *p != Policy::Vtime)
            }
            _ => None,
        }
    }

    /// scx_battle with `policy`, named after it.
    pub fn battle(policy: Policy) -> Scheduler {
        let name = policy.to_string();
        Scheduler { name: name.clone(), command: vec!["scx_battle".into(), "--policy".into(), name] }
    }

    /// Does it balance as ULE does (figure 6 then runs by ULE's rule)?
    pub fn balances_like_ule(&self) -> bool {
        self.policy().and_then(|p| p.comp(Part::Balance)) == Some(Comp::Ule)
    }
}

/// One run: a scheduler loaded, a loadgen command, a run directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    /// Run directory, relative to the study's ("cfs", "starvation-batch/ule.2").
    pub dir: String,
    pub experiment: String,
    pub scheduler: String,
    pub round: u32,
    /// loadgen's arguments (without --out and --label).
    pub loadgen: Vec<String>,
    /// Options added to the scheduler's command for this run only (the
    /// guard-off starvation runs' --starve-ms 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_args: Vec<String>,
    /// Seconds of the workload on the machine's clock.
    pub guest_s: f64,
    /// Estimated wall-clock seconds of the run on this host.
    pub estimate_s: f64,
}

/// The study's parameters (rundata's: study.json records them as they are).
pub use rundata::StudyParams as Params;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub format_version: u32,
    pub mode: Mode,
    pub machine: Machine,
    pub params: Params,
    pub schedulers: Vec<Scheduler>,
    pub experiments: Vec<String>,
    pub runs: Vec<Run>,
    /// Estimated wall-clock seconds of the whole study (boot and report included).
    pub estimate_s: f64,
    /// The hard wall-clock limit scripts/vm enforces.
    pub budget_s: u64,
    /// Which slice of a sharded plan this is: (k, n), 1-based; (1, 1) unsharded.
    pub shard: (u32, u32),
}

/// The options that shape a plan (the CLI fills it; see main.rs).
#[derive(Debug, Clone)]
pub struct Request {
    pub quick: bool,
    /// The overhead benchmarks' sizes (--bench-size; --quick's by default with --quick).
    pub bench_size: experiments::overhead::Size,
    /// The applications of the apps set (--app; empty: all).
    pub apps: Vec<String>,
    pub mode: Mode,
    pub machine: Machine,
    pub threads: Option<u64>,
    pub run_s: Option<f64>,
    pub ule_run_s: Option<f64>,
    pub starve_s: Option<f64>,
    pub repeat: u32,
    pub schedulers: Vec<Scheduler>,
    pub experiments: Vec<Experiment>,
    pub shard: (u32, u32),
}

/// The most threads loadgen's recorder tracks (rundata::MAX_THREADS).
pub const MAX_THREADS: u64 = rundata::MAX_THREADS as u64;

/// ULE's rule for figure 6: idle CPUs steal one thread each at once, then
/// CPU 0's balancer moves one thread per pass (about one a second) until
/// CPU 0 holds its fair share: threads - (CPUs - 1) - threads / CPUs passes.
pub fn ule_rule_passes(threads: u64, cpus: usize) -> u64 {
    let cpus = cpus as u64;
    threads.saturating_sub(cpus - 1).saturating_sub(threads / cpus)
}

/// ULE's run: the rule's passes with a 10 % margin, plus 30 s.
pub fn ule_run_s(threads: u64, cpus: usize) -> f64 {
    ((ule_rule_passes(threads, cpus) * 11).div_ceil(10) + 30) as f64
}

impl Plan {
    pub fn build(req: &Request) -> Result<Plan> {
        let cpus = req.machine.cpus;
        if cpus == 0 {
            bail!("the machine has no CPUs");
        }
        if cpus > rundata::RECORDER_MAX_CPUS {
            bail!(
                "{} has {cpus} CPUs; the recorder follows at most {} (rundata::RECORDER_MAX_CPUS)",
                req.machine.place,
                rundata::RECORDER_MAX_CPUS
            );
        }
        let threads = req.threads.unwrap_or(16 * cpus as u64);
        if threads == 0 || threads > MAX_THREADS {
            bail!("--threads {threads}: loadgen runs 1 to {MAX_THREADS} threads");
        }
        if req.repeat == 0 || req.repeat > 10 {
            bail!("--repeat needs 1 to 10 runs, got {}", req.repeat);
        }
        let (k, n) = req.shard;
        if n == 0 || k == 0 || k > n {
            bail!("--shard {k}/{n}: K must be 1 to N");
        }
        if req.experiments.is_empty() {
            bail!("no experiment selected");
        }
        if req.schedulers.is_empty() {
            bail!("no scheduler selected");
        }
        let pin_s = if req.quick { 3.0 } else { 14.5 };
        let params = Params {
            threads,
            pin_s,
            run_s: req.run_s.unwrap_or(if req.quick { 10.0 } else { 30.0 }),
            ule_run_s: req.ule_run_s.unwrap_or_else(|| ule_run_s(threads, cpus)),
            ule_rule_passes: ule_rule_passes(threads, cpus),
            starve_s: req.starve_s.unwrap_or(if req.quick { 40.0 } else { 60.0 }),
            repeat: req.repeat,
        };
        // Rounds, not one scheduler N times in a row: a drift over time
        // spreads over every scheduler. Experiments in their order.
        let mut runs = Vec::new();
        for exp in &req.experiments {
            for round in 1..=req.repeat {
                for s in req.schedulers.iter().filter(|s| exp.applies_to(s)) {
                    let mut run = exp.run(&params, req.bench_size, &req.apps, s, round);
                    run.estimate_s = estimate::run_s(&req.mode, cpus, exp, run.guest_s, s.is_kernel());
                    runs.push(run);
                }
            }
        }
        let runs: Vec<Run> = runs.into_iter().enumerate().filter(|(i, _)| (*i as u32) % n == k - 1).map(|(_, r)| r).collect();
        let estimate_s = estimate::study_s(&req.mode, cpus, &runs);
        Ok(Plan {
            format_version: PLAN_FORMAT,
            mode: req.mode.clone(),
            machine: req.machine.clone(),
            params,
            schedulers: req.schedulers.clone(),
            experiments: req.experiments.iter().map(|e| e.name().to_string()).collect(),
            budget_s: estimate::budget_s(estimate_s),
            estimate_s,
            runs,
            shard: req.shard,
        })
    }

    pub fn load(path: &std::path::Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let plan: Plan = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if plan.format_version != PLAN_FORMAT {
            bail!("{}: plan format {} (this study reads {PLAN_FORMAT})", path.display(), plan.format_version);
        }
        Ok(plan)
    }

    pub fn scheduler(&self, name: &str) -> &Scheduler {
        self.schedulers.iter().find(|s| s.name == name).expect("a run's scheduler is in the plan")
    }

    /// What the dry run prints: every run, and the estimate.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let where_ = match &self.mode {
            Mode::Vm { preset, realtime } => {
                format!("in a VM ({preset}, {} CPUs, {})", self.machine.cpus, if *realtime { "real time" } else { "icount" })
            }
            Mode::Native => format!("natively ({}, {} CPUs)", self.machine.place, self.machine.cpus),
        };
        let p = &self.params;
        s += &format!(
            "The study {where_}: experiments {}; schedulers {}; {} round(s){}\n",
            self.experiments.join(", "),
            self.schedulers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            p.repeat,
            if self.shard.1 > 1 { format!("; shard {} of {}", self.shard.0, self.shard.1) } else { String::new() }
        );
        if self.experiments.iter().any(|e| e == "fig6") {
            s += &format!(
                "figure 6: {} threads pinned {} s, then {} s ({} s under ULE: its rule needs {} passes)\n",
                p.threads, p.pin_s, p.run_s, p.ule_run_s, p.ule_rule_passes
            );
        }
        s += &format!("{:<32} {:>9} {:>11}  loadgen\n", "run", "guest s", "estimate s");
        for r in &self.runs {
            let extra = if r.sched_args.is_empty() { String::new() } else { format!("  (scheduler {})", r.sched_args.join(" ")) };
            s += &format!("{:<32} {:>9.1} {:>11.0}  {}{extra}\n", r.dir, r.guest_s, r.estimate_s, r.loadgen.join(" "));
        }
        s += &format!(
            "{} runs; estimated wall time {} (boot and report included); the run is stopped after {} s\n",
            self.runs.len(),
            crate::hms(self.estimate_s),
            self.budget_s
        );
        s
    }
}

/// Parse a --scheduler NAME=COMMAND (COMMAND split at white space).
pub fn parse_scheduler(spec: &str) -> Result<Scheduler> {
    let (name, cmd) = spec.split_once('=').context("--scheduler needs NAME=COMMAND")?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("--scheduler {spec}: NAME must be lower-case letters, digits, - and _ (at most 32)");
    }
    let command: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    if command.is_empty() {
        bail!("--scheduler {name}: empty command");
    }
    Ok(Scheduler { name: name.to_string(), command })
}

fn kernel() -> Scheduler {
    Scheduler { name: "kernel".into(), command: vec![] }
}

/// The study's own schedulers: the kernel's, then scx_battle's CFS and ULE.
pub fn default_schedulers() -> Vec<Scheduler> {
    vec![kernel(), Scheduler::battle(rundata::policy::CFS), Scheduler::battle(rundata::policy::ULE)]
}

/// The ablation's: the kernel's, then scx_battle's eight combinations of
/// CFS's and ULE's run queue, placement and balancer (cfs, ule, the mixes).
pub fn ablation_schedulers() -> Vec<Scheduler> {
    std::iter::once(kernel())
        .chain(Policy::all().into_iter().filter(|p| *p != Policy::Vtime).map(Scheduler::battle))
        .collect()
}

/// Keep the schedulers NAMES names, in the study's order; a name that is a
/// scx_battle policy (cfs-cfs-ule, vtime) joins the study; any other unknown
/// one is an error.
pub fn select_schedulers(mut all: Vec<Scheduler>, names: &[String]) -> Result<Vec<Scheduler>> {
    for n in names {
        if all.iter().any(|s| &s.name == n) {
            continue;
        }
        match n.parse::<Policy>() {
            Ok(p) => all.push(Scheduler::battle(p)),
            Err(_) => bail!(
                "--schedulers: no scheduler {n} in this study (it has {}; any scx_battle policy, as \
                 scx_battle --list-policies prints them; add others with --scheduler NAME=COMMAND)",
                all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(all.into_iter().filter(|s| names.is_empty() || names.contains(&s.name)).collect())
}

/// The experiments NAMES names, in the registry's order; when none is
/// named, SET (--overhead's benchmarks, --apps' applications) or the
/// study's default set.
pub fn select_experiments(names: &[String], set: Option<Experiment>) -> Result<Vec<Experiment>> {
    for n in names {
        if Experiment::by_name(n).is_none() {
            bail!("--experiments: no experiment {n} (there are {})", experiments::names().join(", "));
        }
    }
    if names.is_empty() {
        return Ok(set.map(|e| vec![e]).unwrap_or_else(|| experiments::DEFAULT.to_vec()));
    }
    Ok(experiments::all().into_iter().filter(|e| names.iter().any(|n| n == e.name())).collect())
}

/// The overhead study's: the kernel's, the floor (scx_battle's vtime, one
/// shared queue), then scx_battle's CFS and ULE.
pub fn overhead_schedulers() -> Vec<Scheduler> {
    vec![
        kernel(),
        Scheduler::battle(Policy::Vtime),
        Scheduler::battle(rundata::policy::CFS),
        Scheduler::battle(rundata::policy::ULE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[Scheduler]) -> Vec<&str> {
        s.iter().map(|x| x.name.as_str()).collect()
    }

    #[test]
    fn the_ablation_runs_the_kernel_and_the_eight_combinations() {
        let all = ablation_schedulers();
        assert_eq!(
            names(&all),
            ["kernel", "cfs", "ule", "cfs-cfs-ule", "cfs-ule-cfs", "cfs-ule-ule", "ule-cfs-cfs", "ule-cfs-ule", "ule-ule-cfs"]
        );
        // Every one but the kernel is scx_battle under its own name, and runs
        // figure 6 by ULE's rule exactly when ULE's balancer is in it.
        for s in &all[1..] {
            assert_eq!(s.command, ["scx_battle", "--policy", s.name.as_str()]);
            assert!(s.policy().is_some(), "{}", s.name);
            assert_eq!(s.balances_like_ule(), s.name == "ule" || s.name.ends_with("-ule"), "{}", s.name);
        }
        assert!(!all[0].balances_like_ule() && all[0].policy().is_none());
    }

    #[test]
    fn the_overhead_set_runs_every_benchmark_under_the_kernel_the_floor_cfs_and_ule() {
        assert_eq!(names(&overhead_schedulers()), ["kernel", "vtime", "cfs", "ule"]);
        assert_eq!(select_experiments(&[], Some(Experiment::Overhead)).unwrap(), [Experiment::Overhead]);
        // Without --overhead, the study's own; the benchmarks can be named beside them.
        assert_eq!(select_experiments(&[], None).unwrap(), experiments::DEFAULT.to_vec());
        let both = select_experiments(&["overhead".into(), "fig6".into()], None).unwrap();
        assert_eq!(both, [Experiment::Fig6, Experiment::Overhead]);
        let req = |quick| Request {
            quick,
            bench_size: if quick { experiments::overhead::Size::Quick } else { experiments::overhead::Size::Full },
            apps: vec![],
            mode: Mode::Native,
            machine: Machine { cpus: 8, nodes: 1, smt: false, place: "t".into() },
            threads: None,
            run_s: None,
            ule_run_s: None,
            starve_s: None,
            repeat: 2,
            schedulers: overhead_schedulers(),
            experiments: vec![Experiment::Overhead],
            shard: (1, 1),
        };
        // One run per scheduler and round: every benchmark, figure 6's thread count for the release.
        let plan = Plan::build(&req(false)).unwrap();
        assert_eq!(plan.runs.len(), 8);
        assert_eq!(plan.runs[1].dir, "overhead/vtime");
        assert_eq!(plan.runs[5].dir, "overhead/vtime.2");
        assert_eq!(plan.runs[1].loadgen, ["bench", "all", "--threads", "128"]);
        // --quick: smaller sizes, which loadgen must accept.
        let quick = Plan::build(&req(true)).unwrap();
        assert!(quick.runs[0].loadgen.len() > 4 && quick.runs[0].guest_s < plan.runs[0].guest_s);
        let tiny = Plan::build(&Request { bench_size: experiments::overhead::Size::Tiny, ..req(true) }).unwrap();
        assert!(tiny.runs[0].guest_s < quick.runs[0].guest_s);
        // The applications: one run per scheduler and round, every application or those named.
        let apps = Request { experiments: vec![Experiment::Apps], schedulers: default_schedulers(), ..req(false) };
        let plan = Plan::build(&apps).unwrap();
        assert_eq!(plan.runs.len(), 6);
        assert_eq!(plan.runs[2].dir, "apps/ule");
        assert_eq!(plan.runs[2].loadgen, ["app", "all", "--size", "full"]);
        let two = Plan::build(&Request { apps: vec!["pigz".into(), "nginx".into()], ..apps }).unwrap();
        assert_eq!(two.runs[0].loadgen[1], "pigz,nginx");
        assert!(two.runs[0].guest_s < plan.runs[0].guest_s);
    }

    #[test]
    fn a_policy_name_joins_a_study_and_a_typo_is_refused() {
        let s = select_schedulers(default_schedulers(), &["kernel".into(), "cfs-cfs-ule".into()]).unwrap();
        assert_eq!(names(&s), ["kernel", "cfs-cfs-ule"]);
        let e = select_schedulers(default_schedulers(), &["cfs-cfs-uel".into()]).unwrap_err().to_string();
        assert!(e.contains("no scheduler cfs-cfs-uel") && e.contains("--list-policies"), "{e}");
        // A --scheduler named like a policy but running something else is not one.
        let other = Scheduler { name: "cfs".into(), command: vec!["scx_rusty".into()] };
        assert!(other.policy().is_none());
    }
}
