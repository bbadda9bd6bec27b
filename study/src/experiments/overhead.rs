// SPDX-License-Identifier: GPL-2.0-only
//! The overhead benchmarks (`study run --overhead`): every kind of
//! `loadgen bench` (rundata::bench::KINDS says what each measures) one after
//! the other under one scheduler, each with the scheduler's CPU share. One
//! run per scheduler: it is loaded once for all of them.

use crate::plan::Params;

pub const ABOUT: &str = "the overhead benchmarks, one after the other: a setaffinity storm, perf bench sched pipe \
                         (one CPU, free), hackbench (pipes, sockets), cyclictest beside spinners, the mixed load";

/// --quick's sizes (loadgen's defaults are the full study's): seconds of a
/// measured phase (the spinning after the release, cyclictest, the mixed
/// load), perf bench sched pipe's round trips, hackbench's messages per sender.
const QUICK_SECS: f64 = 3.0;
const QUICK_PIPE_LOOPS: u64 = 30_000;
const QUICK_HACKBENCH_LOOPS: u64 = 200;

/// Guest seconds of the full set (estimated: perf and hackbench run 4-6x
/// longer at loadgen's default sizes than at --quick's), and of --quick's
/// (measured on `small`, 2026-12-06: 14.4-18.6 s).
const FULL_GUEST_S: f64 = 60.0;
const QUICK_GUEST_S: f64 = 16.0;

/// (run directory, loadgen arguments, seconds on the machine's clock)
pub fn run(p: &Params, quick: bool, name: String) -> (String, Vec<String>, f64) {
    let mut args: Vec<String> = ["bench", "all", "--threads"].iter().map(|s| s.to_string()).collect();
    args.push(p.threads.to_string());
    if quick {
        args.extend([
            "--secs".into(),
            QUICK_SECS.to_string(),
            "--pipe-loops".into(),
            QUICK_PIPE_LOOPS.to_string(),
            "--hackbench-loops".into(),
            QUICK_HACKBENCH_LOOPS.to_string(),
        ]);
    }
    (format!("overhead/{name}"), args, if quick { QUICK_GUEST_S } else { FULL_GUEST_S })
}
