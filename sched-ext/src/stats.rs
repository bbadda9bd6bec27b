// SPDX-License-Identifier: GPL-2.0-only
//! The scheduler's event counters: read from the BPF per-CPU `stats` map,
//! summed over CPUs, and printed as `key=value` lines by `--stats`.

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::bpf_intf;

/// Counter names, indexed by `enum stat_idx` in bpf/intf.h.
pub const NAMES: [&str; bpf_intf::stat_idx_NR_BATTLE_STATS as usize] = [
    "enqueue",
    "dispatch",
    "dsq_move",
    "idle_pick",
    "kick_idle",
    "kick_preempt",
    "lb_attempt",
    "lb_periodic",
    "lb_newidle",
    "lb_balanced",
    "lb_below_pct",
    "lb_no_task",
    "lb_hot_skip",
    "lb_success",
    "migrate_smt",
    "migrate_llc",
    "migrate_node",
    "migrate_all",
    "ule_enq_interactive",
    "ule_enq_batch",
    "ule_enq_idle",
    "ule_pick_prev",
    "ule_pick_llc",
    "ule_pick_pri",
    "ule_pick_any",
    "ule_pick_self",
    "ule_bal_pass",
    "ule_bal_move",
    "ule_bal_repeat",
    "ule_steal",
    "ule_keep_prev",
    "ule_move_lost",
    "ule_starve",
    "nohz_kick",
    "tick_preempt",
    "wake_affine",
    "ule_preempted_head",
    "ule_slice_end",
    "ule_bal_rotate",
    "lb_small_fix",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters(pub [u64; NAMES.len()]);

// Arrays longer than 32 have no derived Default.
impl Default for Counters {
    fn default() -> Self {
        Counters([0; NAMES.len()])
    }
}

impl Counters {
    /// Sum the per-CPU values of every counter in the map.
    pub fn read(map: &impl MapCore) -> Result<Self> {
        let mut out = Counters::default();
        for (idx, total) in out.0.iter_mut().enumerate() {
            let per_cpu = per_cpu_values(map, idx, || format!("reading counter {}", NAMES[idx]))?;
            *total = per_cpu.iter().map(|v| sum_u64(v)).sum();
        }
        Ok(out)
    }

    /// Events since `earlier` (counters only grow; a restart resets them).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters::default();
        for i in 0..NAMES.len() {
            d.0[i] = self.0[i].saturating_sub(earlier.0[i]);
        }
        d
    }

    pub fn add(&mut self, other: &Counters) {
        for i in 0..NAMES.len() {
            self.0[i] += other.0[i];
        }
    }

    /// One line: `stats <label> enqueue=N dispatch=N ...`.
    pub fn line(&self, label: &str) -> String {
        let mut s = format!("stats {label}");
        for (name, v) in NAMES.iter().zip(self.0.iter()) {
            s.push_str(&format!(" {name}={v}"));
        }
        s
    }
}

/// Names of `enum cost_kind` in bpf/intf.h.
pub const COST_NAMES: [&str; bpf_intf::cost_kind_NR_COSTS as usize] = ["select", "enqueue", "dispatch", "balance"];

/// Work per call (the BPF `costs` map): per kind, calls and visits summed
/// over CPUs, and the most visits one call made on any CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Costs(pub [(u64, u64, u64); COST_NAMES.len()]);

impl Costs {
    pub fn read(map: &impl MapCore) -> Result<Self> {
        let mut out = Costs::default();
        for (kind, slot) in out.0.iter_mut().enumerate() {
            for v in per_cpu_values(map, kind, || format!("reading cost {}", COST_NAMES[kind]))? {
                let field = |i: usize| sum_u64(v.get(8 * i..).unwrap_or(&[]));
                slot.0 += field(0);
                slot.1 += field(1);
                slot.2 = slot.2.max(field(2));
            }
        }
        Ok(out)
    }

    /// `stats cost <label> select_calls=N select_visits=N select_max=N ...`
    pub fn line(&self, label: &str) -> String {
        let mut s = format!("stats cost {label}");
        for (name, (calls, visits, max)) in COST_NAMES.iter().zip(self.0.iter()) {
            s.push_str(&format!(" {name}_calls={calls} {name}_visits={visits} {name}_max={max}"));
        }
        s
    }
}

/// Every CPU's value of entry `idx` of a per-CPU array map (none if absent).
fn per_cpu_values(map: &impl MapCore, idx: usize, what: impl FnOnce() -> String) -> Result<Vec<Vec<u8>>> {
    Ok(map
        .lookup_percpu(&(idx as u32).to_ne_bytes(), MapFlags::ANY)
        .with_context(what)?
        .unwrap_or_default())
}

/// A per-CPU map value is a u64 counter; tolerate a shorter buffer as zero.
fn sum_u64(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_bpf_counter() {
        assert_eq!(NAMES.len(), bpf_intf::stat_idx_NR_BATTLE_STATS as usize);
        assert_eq!(NAMES[bpf_intf::stat_idx_STAT_IDLE_PICK as usize], "idle_pick");
        assert_eq!(NAMES[bpf_intf::stat_idx_STAT_DISPATCH as usize], "dispatch");
        assert_eq!(NAMES[bpf_intf::stat_idx_STAT_ENQUEUE as usize], "enqueue");
    }

    fn counters(head: &[u64]) -> Counters {
        let mut c = Counters::default();
        c.0[..head.len()].copy_from_slice(head);
        c
    }

    #[test]
    fn since_and_add() {
        let a = counters(&[10, 20, 30, 40, 50]);
        let b = counters(&[15, 20, 31, 45, 50]);
        let d = b.since(&a);
        assert_eq!(d, counters(&[5, 0, 1, 5, 0]));
        // A restarted scheduler starts from zero: never underflow.
        assert_eq!(a.since(&b), Counters::default());
        let mut t = a;
        t.add(&d);
        assert_eq!(t, b);
    }

    #[test]
    fn line_format() {
        let c = counters(&[1, 2, 3, 4, 5]);
        let line = c.line("t=1.0");
        assert!(
            line.starts_with("stats t=1.0 enqueue=1 dispatch=2 dsq_move=3 idle_pick=4 kick_idle=5 kick_preempt=0"),
            "{line}"
        );
        assert!(line.ends_with(" lb_small_fix=0"), "{line}");
    }

    #[test]
    fn migrate_counters_follow_dom_levels() {
        let base = bpf_intf::stat_idx_STAT_MIGRATE_SMT as usize;
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_LLC as usize], "migrate_llc");
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_ALL as usize], "migrate_all");
    }

    #[test]
    fn cost_line_format() {
        let mut c = Costs::default();
        c.0[bpf_intf::cost_kind_COST_SELECT as usize] = (10, 35, 7);
        let line = c.line("total");
        assert!(line.starts_with("stats cost total select_calls=10 select_visits=35 select_max=7 enqueue_calls=0"), "{line}");
        assert!(line.ends_with(" balance_max=0"), "{line}");
    }

    #[test]
    fn short_percpu_value_reads_as_zero() {
        assert_eq!(sum_u64(&[1, 0, 0]), 0);
        assert_eq!(sum_u64(&7u64.to_ne_bytes()), 7);
    }
}
