// SPDX-License-Identifier: GPL-2.0-only
//! The paper beside us: what Bouron et al. report for the experiments a
//! study reproduces, next to what the study measured.
//!
//! Only what the paper's text states is quoted. It gives figure 6's setup
//! (its caption) and, for balancing and starvation, the abstract's
//! sentences, but no times to balance, no final per-core counts and no CPU
//! shares: the table says so rather than filling the gap.

use crate::metrics::Summary;
use crate::report::Report;
use crate::serve::ServeSummary;

/// The paper, as every table and caption names it.
pub const CITATION: &str =
    "Bouron et al., \"The Battle of the Schedulers: FreeBSD ULE vs. Linux CFS\", USENIX ATC 2018";

/// What the paper compared (its introduction).
const PAPER_SCHEDULERS: &str =
    "Linux 4.9's CFS against FreeBSD 11.1's ULE ported to Linux, each scheduling every thread";
/// Figure 6's setup, from its caption.
const PAPER_FIGURE6: &str = "512 spinning threads pinned on core 0 for 14.5 s, then released; \
    threads per core over time, one line per core, 32 cores (figure 6)";
/// The abstract on balancing: the only statement the text makes about it.
const PAPER_CFS_BALANCE: &str =
    "\"The more complex load balancing mechanism of CFS reacts more quickly to workload changes\" (abstract; no time given)";
const PAPER_ULE_BALANCE: &str =
    "\"... but ULE achieves a better load balance in the long run\" (abstract; no time or final counts given)";
/// The abstract on starvation.
const PAPER_STARVATION: &str = "\"ULE may cause starvation, even when executing a single application with \
    identical threads\" (abstract; no CPU shares given)";

fn row(s: &mut String, what: &str, paper: &str, ours: &str) {
    *s += &format!("| {what} | {paper} | {ours} |\n");
}

/// "<what> after T s", or what the run's length allowed to say.
fn after(what: &str, v: Option<f64>, watched: Option<f64>) -> String {
    match (v, watched) {
        (Some(t), _) => format!("{what} after {t:.2} s"),
        (None, Some(w)) => format!("{what} not within {w:.0} s"),
        (None, None) => format!("{what} never"),
    }
}

fn spreading(r: &Summary) -> String {
    let w = r.duration_after_release_s;
    format!(
        "{}; {}; {}{}; final {}-{} threads per CPU",
        after("all CPUs busy", r.all_busy_s, w),
        after("within CFS's thresholds", r.cfs_thresholds_s, w),
        after("perfect balance", r.perfect_balance_first_s, w),
        r.perfect_balance_after_first_pct.map(|p| format!(" (then in {p:.0} % of the samples)")).unwrap_or_default(),
        r.final_cpu_min,
        r.final_cpu_max
    )
}

fn find<'a, T>(rows: &'a [T], label: impl Fn(&T) -> &str, policy: &str) -> Option<&'a T> {
    rows.iter().find(|r| label(r) == format!("scx_battle {policy}"))
}

fn batch_share(runs: &[ServeSummary], policy: &str) -> Option<String> {
    let r = find(runs, |r| r.scheduler.as_str(), policy)?;
    Some(format!(
        "{policy}: the batch thread got {:.1} % of the CPU (fair {:.1} %), under 5 % for {:.1} s",
        r.batch_share_percent + 0.0,
        r.batch_fair_percent + 0.0,
        r.batch_starved_s + 0.0
    ))
}

/// The section, or nothing when the study has neither figure 6 nor starvation runs.
pub fn markdown(rep: &Report) -> String {
    let f6 = rep.figure6.as_ref();
    let batch = rep.starvation.iter().find(|s| s.experiment == "batch");
    let identical = rep.starvation.iter().find(|s| s.experiment == "identical");
    if f6.is_none() && batch.is_none() && identical.is_none() {
        return String::new();
    }
    let mut s = format!("\n## The paper beside us\n\nWhat {CITATION} states for these experiments, and what this study measured. ");
    s += "The paper's text gives figure 6's setup and, for balancing and starvation, only its abstract's sentences.\n\n";
    s += "| | the paper | this study |\n|---|---|---|\n";
    let emulated = rep
        .study
        .as_ref()
        .and_then(|st| st.emulation.as_ref())
        .and_then(|e| e.vm.clone())
        .map(|vm| format!(", emulated ({vm}: no caches, so a migration costs no cache misses)"))
        .unwrap_or_default();
    // The runs' kernel: figure 6's, else the study's (a study of starvation alone).
    let kernel = f6
        .and_then(|f| f.runs.first())
        .map(|r| r.kernel.clone())
        .or_else(|| rep.study.as_ref().and_then(|st| st.kernel.clone()))
        .unwrap_or_else(|| "of the runs".into());
    row(
        &mut s,
        "schedulers",
        PAPER_SCHEDULERS,
        &format!(
            "scx_battle's cfs and ule policies (sched_ext, Linux {kernel}); \"kernel (EEVDF)\" is today's Linux scheduler, not the paper's CFS"
        ),
    );
    if let Some(f) = f6 {
        let first = &f.runs[0];
        let setup = match rep.study.as_ref() {
            Some(st) => format!(
                "{} threads pinned on core 0 for {} s, then released; {}{emulated}",
                st.params.threads, st.params.pin_s, first.topology
            ),
            None => format!("{} threads; {}{emulated}", first.threads, first.topology),
        };
        row(&mut s, "figure 6", PAPER_FIGURE6, &setup);
        if let Some(r) = find(&f.runs, |r| r.scheduler.as_str(), "cfs") {
            row(&mut s, "CFS spreading", PAPER_CFS_BALANCE, &spreading(r));
        }
        if let Some(r) = find(&f.runs, |r| r.scheduler.as_str(), "ule") {
            row(&mut s, "ULE spreading", PAPER_ULE_BALANCE, &spreading(r));
        }
    }
    if let Some(b) = batch {
        let ours: Vec<String> = ["cfs", "ule"].iter().filter_map(|p| batch_share(&b.runs, p)).collect();
        if !ours.is_empty() {
            row(&mut s, "starvation: batch beside servers", PAPER_STARVATION, &ours.join("; "));
        }
    }
    if let Some(i) = identical {
        let ours: Vec<String> = ["cfs", "ule"]
            .iter()
            .filter_map(|p| {
                let r = find(&i.runs, |r| r.scheduler.as_str(), p)?;
                Some(format!("{p}: {} of {} identical threads starved 5 s or more", r.servers_starved, r.servers))
            })
            .collect();
        if !ours.is_empty() {
            row(&mut s, "starvation: identical threads", PAPER_STARVATION, &ours.join("; "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_paper_does_not_give() {
        // The gaps are stated, never filled with a number.
        for claim in [PAPER_CFS_BALANCE, PAPER_ULE_BALANCE, PAPER_STARVATION] {
            assert!(claim.contains("no "), "{claim}");
        }
        assert_eq!(after("perfect balance", None, Some(30.4)), "perfect balance not within 30 s");
        assert_eq!(after("all CPUs busy", Some(2.123), Some(30.0)), "all CPUs busy after 2.12 s");
    }
}
