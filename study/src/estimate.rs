// SPDX-License-Identifier: GPL-2.0-only
//! Wall-clock estimates: of each run, of a study, and the hard limit that
//! scripts/vm enforces. The one home of these numbers: the dry run prints
//! them, the runner's progress counts against them, the limit derives from them.
//!
//! In the VM, guest time runs on icount (shift 0: one guest instruction is
//! one nanosecond of guest time, shared by every vCPU), so a guest second
//! costs a fairly constant amount of host time when every vCPU spins, and
//! more when the guest mostly wakes, sleeps and takes ticks (the starvation
//! runs: one busy CPU, every other vCPU idle but emulated). The constants
//! are fitted to measured studies on a 2-core host (docs/study.md has the
//! measurements); a study records each run's real wall time in study.json,
//! so they can be refitted.

use crate::experiments::Experiment;
use crate::plan::{Mode, Run};

/// Booting a guest (kernel, virtme-ng init), wall seconds: measured 53 s
/// for 8 vCPUs and 169 s for 32 (2026-12-06).
fn boot_s(cpus: usize) -> f64 {
    22.0 + 4.6 * cpus as f64
}

/// Wall seconds per guest second of a run that keeps every CPU busy
/// (figure 6's spinners), under icount, beyond run_overhead_s. Measured
/// with two studies at once on a 2-core host (one VM per core), from the
/// runs' wall_s in study.json: ULE's 557 guest seconds took 1053-1220 s on
/// `paper` (2026-12-07, 1.8-2.1 per guest second), 149 took 324 s on
/// `small` (2026-12-06, 2.0); the 44.5 s kernel and CFS runs 2.2-3.1 on
/// `paper`. (1.0, the value before, halved every figure-6 estimate.)
const SPIN_WALL_PER_GUEST_S: f64 = 2.0;

/// Wall seconds per guest second of the overhead benchmarks under icount:
/// their wakeups, IPIs and idle vCPUs cost the emulator more than spinning.
/// Measured on `small` (2026-12-06), beyond run_overhead_s: 3.5 under the
/// kernel, vtime and ule (72-83 s of wall time for 15 guest seconds), 7.9
/// under cfs (170 s for 18: its wakeup preemption sends far more IPIs).
/// It grows with the vCPUs: on `paper` (2026-12-07) four runs of 16 guest
/// seconds took 27 min, about 19 per guest second, 4.6 x 32 / 8.
const BENCH_WALL_PER_GUEST_S_PER_8_CPUS: f64 = 4.6;

/// Wall seconds per guest second of the application suite under icount
/// (guest seconds as apps.rs counts them): servers, databases and builds
/// wake more than the benchmarks. Measured on `small` (2026-12-07): 7 min
/// for 48 guest seconds (tiny), 17 min for 140 (quick), under the kernel.
/// It does not grow with the vCPUs: the suite's programs keep every vCPU
/// busy, and under icount all of them share one guest clock's worth of
/// instructions (docs/apps.md). On `paper` (2026-12-07, d7fce36) the 15
/// applications at quick size took 1783 s under the kernel and 1813 s under
/// cfs, two thirds of it with three VMs on the two host cores: about 1400 s
/// alone, as on `small`, where the old 4 x scaling said 5400 s.
const APPS_WALL_PER_GUEST_S: f64 = 7.5;

/// Wall seconds per (icount) guest second of the application suite under
/// --realtime: guest time is host time there, and the vCPUs' threads share
/// the host's cores, so the suite's fixed work (a build, a corpus) takes
/// longer than under icount's guest clock. Measured on `small` on a 2-core
/// host (2026-12-07): 456 s for the 180 guest seconds of the kernel's run.
const APPS_REALTIME_WALL_PER_GUEST_S: f64 = 2.5;

/// Wall seconds per guest second of a one-CPU run (the starvation servers)
/// under icount: grows with the vCPUs there are to emulate (measured: 4.5-7
/// min of wall time per 60 s run on 32 vCPUs).
fn serve_wall_per_guest_s(cpus: usize) -> f64 {
    0.75 + 0.15 * cpus as f64
}

/// Wall seconds around each run: starting the threads and writing the
/// run's files, and under a sched_ext scheduler loading (verifying) and
/// unloading it; more vCPUs, more to emulate. Measured on `small`
/// (2026-12-06): 8 s around a kernel run, 27 s around a scx_battle one.
fn run_overhead_s(cpus: usize, kernel: bool) -> f64 {
    if kernel {
        4.0 + 0.5 * cpus as f64
    } else {
        20.0 + 1.0 * cpus as f64
    }
}

/// The report (figures and summary) after the runs, wall seconds.
fn report_s(runs: &[Run]) -> f64 {
    10.0 + 0.03 * runs.iter().map(|r| r.guest_s).sum::<f64>()
}

/// One run's estimated wall seconds (KERNEL: under the kernel's own scheduler).
pub fn run_s(mode: &Mode, cpus: usize, exp: &Experiment, guest_s: f64, kernel: bool) -> f64 {
    match mode {
        Mode::Native => guest_s + 2.0,
        Mode::Vm { realtime: true, .. } => match exp {
            Experiment::Apps => guest_s * APPS_REALTIME_WALL_PER_GUEST_S + run_overhead_s(cpus, kernel),
            _ => guest_s + run_overhead_s(cpus, kernel),
        },
        Mode::Vm { realtime: false, .. } => {
            let per_s = match exp {
                Experiment::Overhead => BENCH_WALL_PER_GUEST_S_PER_8_CPUS * (cpus as f64 / 8.0).max(1.0),
                Experiment::Apps => APPS_WALL_PER_GUEST_S,
                e if e.uses_every_cpu() => SPIN_WALL_PER_GUEST_S,
                _ => serve_wall_per_guest_s(cpus),
            };
            guest_s * per_s + run_overhead_s(cpus, kernel)
        }
    }
}

/// The whole study's estimated wall seconds: boot, runs, report.
pub fn study_s(mode: &Mode, cpus: usize, runs: &[Run]) -> f64 {
    let boot = match mode {
        Mode::Native => 0.0,
        Mode::Vm { .. } => boot_s(cpus),
    };
    boot + runs.iter().map(|r| r.estimate_s).sum::<f64>() + report_s(runs)
}

/// The hard wall-clock limit for the runs: a hang's limit, twice the
/// estimate and 15 minutes more, so that a slower host still finishes.
pub fn budget_s(estimate_s: f64) -> u64 {
    900 + (2.0 * estimate_s).ceil() as u64
}
