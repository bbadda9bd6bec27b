// SPDX-License-Identifier: GPL-2.0-only
//! The experiment kinds a study can run, one module each. An experiment
//! turns the study's parameters and one scheduler into a run: its directory,
//! loadgen's command and its length on the machine's clock. A new kind (the
//! design-choice ablation) adds a module and a variant.

use crate::plan::{Params, Run, Scheduler};
use rundata::policy::{Comp, Part};

pub mod apps;
pub mod fig6;
pub mod overhead;
pub mod starvation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    /// Figure 6: threads pinned on CPU 0, then released (fig6.rs).
    Fig6,
    /// A batch thread beside interactive servers on one CPU (starvation.rs).
    StarvationBatch,
    /// Identical servers asking for twice the CPU (starvation.rs).
    StarvationIdentical,
    /// The batch experiment with ULE's starvation guard off (starvation.rs).
    StarvationUnguarded,
    /// The overhead benchmarks, one after the other (overhead.rs).
    Overhead,
    /// The application suite, one after the other (apps.rs).
    Apps,
}

/// The study's experiments when none is named: figure 6 and the starvation
/// claim (the guard-off runs only under schedulers with ULE's run queue).
pub const DEFAULT: [Experiment; 4] =
    [Experiment::Fig6, Experiment::StarvationBatch, Experiment::StarvationIdentical, Experiment::StarvationUnguarded];

/// Every experiment, in the order a study runs them.
pub fn all() -> Vec<Experiment> {
    DEFAULT.into_iter().chain([Experiment::Overhead, Experiment::Apps]).collect()
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|e| e.name()).collect()
}

impl Experiment {
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Fig6 => "fig6",
            Experiment::StarvationBatch => "starvation-batch",
            Experiment::StarvationIdentical => "starvation-identical",
            Experiment::StarvationUnguarded => rundata::UNGUARDED_STARVATION_DIR,
            Experiment::Overhead => "overhead",
            Experiment::Apps => "apps",
        }
    }

    pub fn by_name(name: &str) -> Option<Experiment> {
        all().into_iter().find(|e| e.name() == name)
    }


    /// What it is, in a line (--list-experiments).
    pub fn about(self) -> &'static str {
        match self {
            Experiment::Fig6 => fig6::ABOUT,
            Experiment::StarvationBatch => starvation::BATCH_ABOUT,
            Experiment::StarvationIdentical => starvation::IDENTICAL_ABOUT,
            Experiment::StarvationUnguarded => starvation::UNGUARDED_ABOUT,
            Experiment::Overhead => overhead::ABOUT,
            Experiment::Apps => apps::ABOUT,
        }
    }

    /// The run of this experiment under SCHED in ROUND (1-based); BENCH
    /// sizes the overhead benchmarks and the applications, APPS names the
    /// applications (none: all).
    pub fn run(self, p: &Params, bench: overhead::Size, apps: &[String], sched: &Scheduler, round: u32) -> Run {
        let name = if round > 1 { format!("{}.{round}", sched.name) } else { sched.name.clone() };
        let (dir, loadgen, guest_s) = match self {
            Experiment::Fig6 => fig6::run(p, sched, name),
            Experiment::StarvationBatch => starvation::run(starvation::Kind::Batch, p, name),
            Experiment::StarvationIdentical => starvation::run(starvation::Kind::Identical, p, name),
            Experiment::StarvationUnguarded => starvation::run(starvation::Kind::Unguarded, p, name),
            Experiment::Overhead => overhead::run(p, bench, name),
            Experiment::Apps => apps::run(bench, apps, name),
        };
        let sched_args = match self {
            Experiment::StarvationUnguarded => starvation::GUARD_OFF.iter().map(|s| s.to_string()).collect(),
            _ => vec![],
        };
        Run { dir, experiment: self.name().into(), scheduler: sched.name.clone(), round, loadgen, sched_args, guest_s, estimate_s: 0.0 }
    }

    /// Whether the study runs it under SCHED: the guard-off runs only under
    /// scx_battle policies with ULE's run queue (the guard is that queue's).
    pub fn applies_to(self, sched: &Scheduler) -> bool {
        match self {
            Experiment::StarvationUnguarded => sched.policy().and_then(|p| p.comp(Part::Queue)) == Some(Comp::Ule),
            _ => true,
        }
    }

    /// Whether the machine's CPU count shapes the run's cost (figure 6
    /// keeps every CPU busy; the starvation runs use one).
    pub fn uses_every_cpu(self) -> bool {
        matches!(self, Experiment::Fig6 | Experiment::Overhead | Experiment::Apps)
    }
}
