// SPDX-License-Identifier: GPL-2.0-only
//! The paper's starvation claim, on CPU 0 (loadgen serve): 8 server threads
//! answer 1 ms requests in a closed loop (a think time after each reply).
//! batch: each server asks for an eighth of the CPU (together all of it)
//! beside one CPU-bound batch thread; identical: each asks for a quarter
//! (together twice the CPU) and nothing else runs.

use crate::plan::Params;

pub const BATCH_ABOUT: &str = "a batch thread beside 8 interactive servers that together ask for the whole CPU";
pub const IDENTICAL_ABOUT: &str = "8 identical servers that together ask for twice the CPU";

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Batch,
    Identical,
}

/// (run directory, loadgen arguments, seconds on the machine's clock)
pub fn run(kind: Kind, p: &Params, name: String) -> (String, Vec<String>, f64) {
    let (exp, load, batch) = match kind {
        Kind::Batch => ("batch", "12.5", "1"),
        Kind::Identical => ("identical", "25", "0"),
    };
    let args = ["serve", "--servers", "8", "--load", load, "--request-us", "1000", "--batch", batch, "--cpu", "0", "--secs"]
        .iter()
        .map(|s| s.to_string())
        .chain([p.starve_s.to_string()])
        .collect();
    (format!("starvation-{exp}/{name}"), args, p.starve_s)
}
