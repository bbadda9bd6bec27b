// SPDX-License-Identifier: GPL-2.0-only
//! ULE's pure arithmetic (bpf/scheduler/policy/ule_arith.h, the file the BPF program
//! includes), compiled for the host with clang through tests/c's harness and
//! checked against the rules of FreeBSD's sys/kern/sched_ule.c.

mod common;
use common::Harness;

const MS: u64 = 1_000_000;
const STATHZ_TICK: u64 = 7_874_015;
const SLICE: u64 = 12 * STATHZ_TICK; // sched_slice
const SLICE_MIN: u64 = 2 * STATHZ_TICK; // sched_slice_min
const RQ_NQS: u64 = 64;

fn harness() -> Harness {
    Harness::new("ule_arith")
}

#[test]
fn interactivity_score_follows_the_sleep_run_ratio() {
    let mut h = harness();
    // Sleeps 3x what it runs: 50 / (slp / run) = 16 (integer steps of FreeBSD's formula).
    assert_eq!(h.one("score 1000000000 3000000000 30"), 16);
    assert_eq!(h.one("score 0 3000000000 30"), 0);
    assert_eq!(h.one("score 2000000000 2000000000 30"), 50);
    // Runs more than it sleeps: with interact <= 50 the score is only needed up to 50.
    assert_eq!(h.one("score 3000000000 1000000000 30"), 50);
    // ... and with interact above 50, the full formula: 50 + (50 - slp / (run / 50)).
    assert_eq!(h.one("score 3000000000 1000000000 60"), 50 + 50 - 1_000_000_000 / (3_000_000_000 / 50));
    // No history at all: the shortcut answers 50; the full formula 0.
    assert_eq!(h.one("score 0 0 30"), 50);
    assert_eq!(h.one("score 0 0 60"), 0);
}

#[test]
fn history_stays_under_five_seconds() {
    let mut h = harness();
    // Just over the limit: both sides cut to 4/5.
    assert_eq!(h.q("update 3000000000 2100000000"), vec![2_400_000_000, 1_680_000_000]);
    // Over by more than a fifth: halved.
    assert_eq!(h.q("update 4000000000 2500000000"), vec![2_000_000_000, 1_250_000_000]);
    // More than twice the limit (a long sleep): only that side is kept.
    assert_eq!(h.q("update 1000000000 20000000000"), vec![1, 5_000_000_000]);
    assert_eq!(h.q("update 1000000000 1000000000"), vec![1_000_000_000, 1_000_000_000]);
    // A child inherits at most SCHED_SLP_RUN_FORK (0.5 s), in the parent's proportions.
    assert_eq!(h.q("fork 1000000000 4000000000"), vec![100_000_000, 400_000_000]);
    assert_eq!(h.q("fork 100000000 300000000"), vec![100_000_000, 300_000_000]);
}

#[test]
fn priority_by_score_nice_and_cpu_use() {
    let mut h = harness();
    // Interactive: 120 + (32 / interact) * score.
    assert_eq!(h.one("pri 16 0 0 0 30"), 136);
    // Nice moves the score: 16 - 10 = 6.
    assert_eq!(h.one("pri 16 -10 0 0 30"), 126);
    // Score + nice at interact or above: batch. No CPU use: SCHED_PRI_MIN (172) + nice.
    assert_eq!(h.one("pri 25 10 0 0 30"), 182);
    // Always running over the window: %CPU adds SCHED_PRI_RANGE - 1 = 31.
    assert_eq!(h.one("pri 50 0 10000000000 10000000000 30"), 203);
    // Half the window: SCHED_PRI_TICKS = 5000 ticks / (roundup(10000, 32) / 32 = 313) = 15,
    // so 172 + 15 = 187 (a plain 32 * run / window would give 16, 188).
    assert_eq!(h.one("pri 50 0 5000000000 10000000000 30"), 187);
    // A window shorter than a second counts as one (max(ltick - ftick, hz)): 0.25 s run
    // in 0.5 s is 250 / (roundup(1000, 32) / 32 = 32) = 7, 179.
    assert_eq!(h.one("pri 50 0 250000000 500000000 30"), 179);
    // 3 s run in 4 s: 3000 / (4000 / 32 = 125) = 24, 196.
    assert_eq!(h.one("pri 50 0 3000000000 4000000000 30"), 196);
    // Clamped to the batch band.
    assert_eq!(h.one("pri 50 19 10000000000 10000000000 30"), 222);
    assert_eq!(h.one("pri 100 -20 0 0 30"), 152);
}

#[test]
fn static_boost_raises_waking_batch_threads_only() {
    let mut h = harness();
    // sched_sleep with static_boost = PRI_MIN_BATCH (152): a batch thread sleeps at 152.
    assert_eq!(h.one("boost 203 152"), 152);
    assert_eq!(h.one("boost 223 152"), 152);
    // Interactive threads (120..151) are better already; 152 itself is unchanged.
    assert_eq!(h.one("boost 136 152"), 136);
    assert_eq!(h.one("boost 152 152"), 152);
    // Idle-class threads (224..255) are not timeshare: not boosted.
    assert_eq!(h.one("boost 224 152"), 224);
    // 0 turns it off; another level boosts to that level.
    assert_eq!(h.one("boost 203 0"), 203);
    assert_eq!(h.one("boost 203 180"), 180);
}

#[test]
fn cpu_window_slides_and_rescales() {
    let mut h = harness();
    let s = 1_000_000_000u64;
    // Within the window: run time adds up, the window's end moves.
    assert_eq!(h.q(&format!("pctcpu {} {} {} {} {}", 2 * s, 0, 5 * s, 6 * s, s)), vec![3 * s, 0, 6 * s]);
    // Idle for SCHED_TICK_TARG (10 s): starts over.
    assert_eq!(h.q(&format!("pctcpu {} {} {} {} {}", 2 * s, 0, 5 * s, 16 * s, 0)), vec![0, 6 * s, 16 * s]);
    // Grown past SCHED_TICK_MAX (11 s): keeps the share of the last 10 s.
    let v = h.q(&format!("pctcpu {} {} {} {} {}", 10 * s, 0, 10 * s, 12 * s, 0));
    assert_eq!(v[1], 2 * s);
    assert_eq!(v[2], 12 * s);
    assert!((v[0] as i64 - 8 * s as i64).abs() < 1_000_000, "{v:?}");
}

#[test]
fn sleep_credit_counts_the_ticks_crossed() {
    let mut h = harness();
    // Issue #13, ULE 4: a 0.3 ms sleep earns a whole tick when it crosses one, else nothing ...
    assert_eq!(h.one(&format!("credit {} {}", 5 * MS + 100_000, 5 * MS + 400_000)), 0);
    assert_eq!(h.one(&format!("credit {} {}", 5 * MS + 800_000, 6 * MS + 100_000)), MS);
    // ... so over every start offset it averages to the real sleep.
    let (sleep, steps) = (300_000u64, 1000u64);
    let total: u64 = (0..steps)
        .map(|i| {
            let at = 7 * MS + i * MS / steps;
            h.one(&format!("credit {} {}", at, at + sleep))
        })
        .sum();
    assert_eq!(total / steps, sleep);
    // Longer sleeps: 2 or 3 ticks for 2.5 ms.
    let c = h.one(&format!("credit {} {}", 3 * MS + 999_999, 6 * MS + 499_999));
    assert!(c == 2 * MS || c == 3 * MS, "{c}");
    assert_eq!(h.one("credit 5000 4000"), 0);
}

#[test]
fn slice_shrinks_with_load_and_a_child_runs_slice_min_first() {
    let mut h = harness();
    for (load, want) in [(0, SLICE), (1, SLICE), (2, SLICE), (3, SLICE / 2), (5, SLICE / 4), (7, SLICE_MIN), (512, SLICE_MIN)] {
        assert_eq!(h.one(&format!("slice {load} {SLICE} {SLICE_MIN}")), want, "load {load}");
    }
    // Issue #13, ULE 2: the child's ts_slice starts at tdq_slice - sched_slice_min,
    // so what is left of its first slice is sched_slice_min, whatever the load.
    for load in [1, 3, 5] {
        let slice = h.one(&format!("slice {load} {SLICE} {SLICE_MIN}"));
        let used = h.one(&format!("forkslice {slice} {SLICE_MIN}"));
        assert_eq!(slice - used, SLICE_MIN, "load {load}");
    }
    assert_eq!(h.one(&format!("forkslice {} {SLICE_MIN}", SLICE_MIN / 2)), 0);
}

#[test]
fn a_preempted_thread_keeps_the_rest_of_its_slice() {
    let mut h = harness();
    let (sliceend, resched, preempt) = (0, 1, 2);
    // Issue #13, ULE 5: a preemption before the slice's end is a preemption,
    // a reschedule a reschedule ...
    assert_eq!(h.one(&format!("switch {preempt} 0")), preempt);
    assert_eq!(h.one(&format!("switch {resched} 0")), resched);
    // ... once a tick has found the slice used up (TDF_SLICEEND), a slice end
    // either way ...
    assert_eq!(h.one(&format!("switch {preempt} 1")), sliceend);
    assert_eq!(h.one(&format!("switch {resched} 1")), sliceend);
    // ... and without a request (the slice expired, a yield) too.
    assert_eq!(h.one(&format!("switch {sliceend} 0")), sliceend);
    // Issue #13, ULE 6: only the tick ends a slice, against the current
    // tdq_slice (sched_clock); a switch does not compare again (sched_switch
    // reads TDF_SLICEEND alone), so a thread preempted by a waking one, which
    // makes the CPU's slice shorter for a moment, keeps the rest of its own.
    let shorter = h.one(&format!("slice 5 {SLICE} {SLICE_MIN}"));
    assert_eq!(h.one(&format!("ended {} {shorter}", 30 * MS)), 1);
    assert_eq!(h.one(&format!("ended {} {SLICE}", 30 * MS)), 0);
}

/// Only a used-up slice starts a fresh one (sched_clock zeroes ts_slice,
/// sched_switch does not): a thread displaced by a higher sched class, with
/// slice left and nothing asked of its CPU, keeps what it used, as do
/// preempted and rescheduled threads; a slice the kernel's countdown (or a
/// yield) emptied between ticks starts afresh. Resetting it at every switch
/// gave a spinner that loadgen's SCHED_FIFO sampler interrupted every 10 ms
/// its CPU for ~1 s at a time, its 15 queue mates waiting ~14 s.
#[test]
fn only_a_used_up_slice_starts_afresh() {
    let mut h = harness();
    let (sliceend, resched, preempt) = (0, 1, 2);
    // Displaced by an RT thread: nothing asked, slice left.
    assert_eq!(h.one(&format!("fresh {sliceend} 0 1")), 0);
    // The kernel's countdown reached 0 between ticks, or a yield.
    assert_eq!(h.one(&format!("fresh {sliceend} 0 0")), 1);
    // A tick found it used up, whatever else happened.
    assert_eq!(h.one(&format!("fresh {sliceend} 1 1")), 1);
    assert_eq!(h.one(&format!("fresh {sliceend} 1 0")), 1);
    // Preempted or rescheduled (a kick empties the slice): the rest of it.
    for kind in [resched, preempt] {
        assert_eq!(h.one(&format!("fresh {kind} 0 0")), 0);
        assert_eq!(h.one(&format!("fresh {kind} 0 1")), 0);
    }
}

#[test]
fn calendar_insertion_and_preempted_threads() {
    let mut h = harness();
    // The batch band spread over the circle after idx.
    assert_eq!(h.one("bucket 152 10 10 0"), 10);
    assert_eq!(h.one("bucket 223 10 10 0"), (10 + 63) % RQ_NQS);
    assert_eq!(h.one("bucket 188 60 60 0"), (60 + 32) % RQ_NQS);
    // Never into the bucket being drained while idx and ridx differ.
    let b = h.one("bucket 223 11 10 0"); // 11 + 63 = 74 -> 10 == ridx
    assert_eq!(b, 9);
    // A preempted thread goes back at the removal index.
    assert_eq!(h.one("bucket 200 11 10 1"), 10);
}

#[test]
fn removal_index_moves_as_freebsd_moves_it() {
    let mut h = harness();
    // Issue #13, ULE 1: a drained removal bucket passes ridx on only while idx != ridx ...
    assert_eq!(h.one("ridx 5 6 5 1"), 6);
    assert_eq!(h.one("ridx 5 5 5 1"), 5);
    // ... and only when it is the removal bucket, and empty.
    assert_eq!(h.one("ridx 7 6 5 1"), 5);
    assert_eq!(h.one("ridx 5 6 5 0"), 5);
    // The tick moves idx once ridx caught up; ridx follows only from an empty bucket.
    assert_eq!(h.q("tick 5 5 1"), vec![6, 6]);
    assert_eq!(h.q("tick 5 5 0"), vec![6, 5]);
    assert_eq!(h.q("tick 63 63 1"), vec![0, 0]);
    // While they differ the tick leaves both alone (the old code pulled ridx to idx).
    assert_eq!(h.q("tick 6 5 1"), vec![6, 5]);
}

/// A calendar driven by the C rules under random inserts, removals and ticks:
/// the removal index is the insertion index or one bucket behind it, never
/// ahead (where the old rules sent it, so that threads inserted at idx waited
/// a whole turn of the circle).
#[test]
fn calendar_removal_index_never_passes_insertion_index() {
    let mut h = harness();
    let mut buckets: Vec<std::collections::VecDeque<u64>> = vec![Default::default(); RQ_NQS as usize];
    let (mut idx, mut ridx) = (0u64, 0u64);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut seq = 0u64;
    for step in 0..4000 {
        match next() % 4 {
            0 | 1 => {
                let pri = 152 + next() % 72;
                let b = h.one(&format!("bucket {pri} {idx} {ridx} 0"));
                seq += 1;
                buckets[b as usize].push_back(seq);
            }
            2 => {
                // tdq_choose: the first non-empty bucket from ridx.
                if let Some(b) = (0..RQ_NQS).map(|i| (ridx + i) % RQ_NQS).find(|&b| !buckets[b as usize].is_empty()) {
                    buckets[b as usize].pop_front();
                    let empty = buckets[b as usize].is_empty() as u64;
                    ridx = h.one(&format!("ridx {b} {idx} {ridx} {empty}"));
                }
            }
            _ => {
                let empty = buckets[ridx as usize].is_empty() as u64;
                let v = h.q(&format!("tick {idx} {ridx} {empty}"));
                (idx, ridx) = (v[0], v[1]);
            }
        }
        let lag = (idx + RQ_NQS - ridx) % RQ_NQS;
        assert!(lag <= 1, "step {step}: idx {idx} ridx {ridx}");
    }
}

#[test]
fn realtime_queue_groups_four_priorities_per_fifo() {
    let mut h = harness();
    // Issue #13, ULE 9: 120..123 share a FIFO: arrival order decides, not priority.
    let early_123 = h.one("rtkey 123 1000 0");
    let late_120 = h.one("rtkey 120 2000 0");
    assert!(early_123 < late_120);
    // A better group runs first whatever its arrival.
    assert!(h.one("rtkey 119 9000 0") < early_123);
    assert!(h.one("rtkey 124 0 0") > late_120);
    // A preempted thread goes to the head of its FIFO, not ahead of a better one.
    let preempted = h.one("rtkey 122 5000 1");
    assert!(preempted < early_123);
    assert!(preempted > h.one("rtkey 119 9000 0"));
}

#[test]
fn preemption_rules() {
    let mut h = harness();
    let thresh = 80; // PRI_MIN_KERN
    // An idle CPU is always preempted; nothing preempts a better or equal priority.
    assert_eq!(h.one(&format!("preempt 200 255 0 {thresh}")), 1);
    assert_eq!(h.one(&format!("preempt 130 130 1 {thresh}")), 0);
    // Interactive beats batch only across CPUs.
    assert_eq!(h.one(&format!("preempt 130 180 1 {thresh}")), 1);
    assert_eq!(h.one(&format!("preempt 130 180 0 {thresh}")), 0);
    // Batch never preempts batch; with preempt_thresh 0, only idle CPUs are preempted.
    assert_eq!(h.one(&format!("preempt 160 200 1 {thresh}")), 0);
    assert_eq!(h.one("preempt 130 180 1 0"), 0);
}

#[test]
fn balancer_pairs_any_cpus_a_thread_apart() {
    let mut h = harness();
    // Issue #13, ULE 7: k+1 gives to k (the rotation), 2 to 1, but 1 keeps its only thread.
    assert_eq!(h.one("pair 17 16"), 1);
    assert_eq!(h.one("pair 2 1"), 1);
    assert_eq!(h.one("pair 16 16"), 0);
    assert_eq!(h.one("pair 1 0"), 0);
    assert_eq!(h.one("pair 400 15"), 1);
}

#[test]
fn findbit_from_matches_a_walk_of_the_buckets() {
    let mut h = harness();
    // The walk it replaces: the first set bit at or after `from`, circularly.
    let walk = |mask: u64, from: u32| (0..64).map(|i| (from + i) % 64).find(|b| mask & (1 << b) != 0).unwrap_or(64);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut masks = vec![0, 1, 1 << 63, u64::MAX, 0x8000_0000_0000_0001, 0x0000_0001_0000_0000];
    for _ in 0..40 {
        // xorshift: sparse and dense masks alike.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        masks.push(x & (x >> 5) & (x >> 11));
        masks.push(x);
    }
    for &m in &masks {
        for from in [0u32, 1, 5, 31, 32, 33, 62, 63] {
            assert_eq!(h.one(&format!("findbit {m} {from}")), u64::from(walk(m, from)), "mask {m:#x} from {from}");
        }
    }
}
