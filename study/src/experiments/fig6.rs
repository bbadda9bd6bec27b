// SPDX-License-Identifier: GPL-2.0-only
//! Figure 6 of Bouron et al. (ATC'18): THREADS spinning threads pinned on
//! CPU 0 for pin_s, then released; loadgen spin records every CPU's thread
//! count every 10 ms. A run under ULE's balancer (ULE, and the ablation's
//! mixes with it) lasts long enough for ULE's rule.

use crate::plan::{Params, Scheduler};

pub const ABOUT: &str = "figure 6: threads pinned on CPU 0, then released; per-CPU thread counts over time";

/// (run directory, loadgen arguments, seconds on the machine's clock)
pub fn run(p: &Params, sched: &Scheduler, name: String) -> (String, Vec<String>, f64) {
    // ULE's balancer moves a thread a second: its run follows ULE's rule.
    let run_s = if sched.balances_like_ule() { p.ule_run_s } else { p.run_s };
    let args = vec![
        "spin".into(),
        "--threads".into(),
        p.threads.to_string(),
        "--pin-secs".into(),
        p.pin_s.to_string(),
        "--run-secs".into(),
        run_s.to_string(),
    ];
    (name, args, p.pin_s + run_s)
}
