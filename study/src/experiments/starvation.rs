// SPDX-License-Identifier: GPL-2.0-only
//! The paper's starvation claim, on CPU 0 (loadgen serve): 8 server threads
//! answer 1 ms requests in a closed loop (a think time after each reply).
//! batch: each server asks for an eighth of the CPU (together all of it)
//! beside one CPU-bound batch thread; identical: each asks for a quarter
//! (together twice the CPU) and nothing else runs. unguarded: the batch
//! experiment under schedulers with ULE's run queue, their starvation guard
//! off, for at most UNGUARDED_MAX_S: what ULE does with nothing but the
//! kernel's watchdog to stop it.

use crate::plan::Params;

pub const BATCH_ABOUT: &str = "a batch thread beside 8 interactive servers that together ask for the whole CPU";
pub const IDENTICAL_ABOUT: &str = "8 identical servers that together ask for twice the CPU";
pub const UNGUARDED_ABOUT: &str =
    "the batch experiment under ULE's run queue with its starvation guard off (--starve-ms 0), 25 s at most: below the watchdog";

/// The guard-off runs' longest length, in s: the watchdog ends a scheduler
/// that leaves a runnable thread waiting 30 s (scx_battle's --watchdog-ms
/// default, the kernel's maximum), and a batch thread that starves from its
/// start must not reach it; 5 s of margin for the run's start and end.
pub const UNGUARDED_MAX_S: f64 = 25.0;

/// scx_battle's option that turns ULE's starvation guard off.
pub const GUARD_OFF: [&str; 2] = ["--starve-ms", "0"];

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Batch,
    Identical,
    Unguarded,
}

/// (run directory, loadgen arguments, seconds on the machine's clock)
pub fn run(kind: Kind, p: &Params, name: String) -> (String, Vec<String>, f64) {
    let (dir, load, batch, secs) = match kind {
        Kind::Batch => ("starvation-batch", "12.5", "1", p.starve_s),
        Kind::Identical => ("starvation-identical", "25", "0", p.starve_s),
        Kind::Unguarded => (rundata::UNGUARDED_STARVATION_DIR, "12.5", "1", p.starve_s.min(UNGUARDED_MAX_S)),
    };
    let args = ["serve", "--servers", "8", "--load", load, "--request-us", "1000", "--batch", batch, "--cpu", "0", "--secs"]
        .iter()
        .map(|s| s.to_string())
        .chain([secs.to_string()])
        .collect();
    (format!("{dir}/{name}"), args, secs)
}
