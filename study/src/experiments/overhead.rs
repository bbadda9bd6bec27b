// SPDX-License-Identifier: GPL-2.0-only
//! The overhead benchmarks (`study run --overhead`): every kind of
//! `loadgen bench` (rundata::bench::KINDS says what each measures) one after
//! the other under one scheduler, each with the scheduler's CPU share. One
//! run per scheduler: it is loaded once for all of them.

use crate::plan::Params;

pub const ABOUT: &str = "the overhead benchmarks, one after the other: a setaffinity storm, perf bench sched pipe \
                         (one CPU, free), hackbench (pipes, sockets), cyclictest beside spinners, the mixed load";

/// How big the benchmarks are (`--bench-size`): loadgen's defaults (full),
/// --quick's, or a smoke run that only shows every benchmark runs (tiny:
/// its numbers are too short to compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    Tiny,
    Quick,
    Full,
}

/// (seconds of a measured phase: the spinning after the release, cyclictest,
/// the mixed load; perf bench sched pipe's round trips; hackbench's messages
/// per sender; guest seconds of the whole set). Full: loadgen's defaults,
/// whose guest time is estimated (perf and hackbench run 4-6x longer than
/// at --quick's sizes); quick's measured on `small` (2026-12-06: 14.4-18.6 s).
fn sizes(size: Size) -> Option<(f64, u64, u64, f64)> {
    match size {
        Size::Full => None,
        Size::Quick => Some((3.0, 30_000, 200, 16.0)),
        Size::Tiny => Some((1.0, 5_000, 40, 6.0)),
    }
}

const FULL_GUEST_S: f64 = 60.0;

/// (run directory, loadgen arguments, seconds on the machine's clock)
pub fn run(p: &Params, size: Size, name: String) -> (String, Vec<String>, f64) {
    let mut args: Vec<String> = ["bench", "all", "--threads"].iter().map(|s| s.to_string()).collect();
    args.push(p.threads.to_string());
    let guest_s = match sizes(size) {
        None => FULL_GUEST_S,
        Some((secs, pipe_loops, hackbench_loops, guest_s)) => {
            args.extend([
                "--secs".into(),
                secs.to_string(),
                "--pipe-loops".into(),
                pipe_loops.to_string(),
                "--hackbench-loops".into(),
                hackbench_loops.to_string(),
            ]);
            guest_s
        }
    };
    (format!("overhead/{name}"), args, guest_s)
}
