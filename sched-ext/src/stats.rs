// SPDX-License-Identifier: GPL-2.0-only
//! The scheduler's event counters: read from the BPF per-CPU `stats` map,
//! summed over CPUs, printed as `key=value` lines by `--stats`, and served
//! over scx_stats' socket as `Metrics` (`--monitor`, `--help-stats`).

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use scx_stats::prelude::*;
use scx_stats_derive::Stats;
use serde::{Deserialize, Serialize};

use crate::bpf_intf;

/// Every counter, in the order of `enum stat_idx` in bpf/scheduler/intf.h, with what
/// it counts: the one list from which come `NAMES` (the `--stats` and
/// `--stats-csv` columns) and `Metrics` (the scx_stats struct that
/// `--monitor` and other scx_stats clients read, described by `--help-stats`).
macro_rules! counters {
    ($($name:ident: $desc:literal,)*) => {
        /// Counter names, indexed by `enum stat_idx` in bpf/scheduler/intf.h.
        pub const NAMES: [&str; bpf_intf::stat_idx_NR_BATTLE_STATS as usize] = [$(stringify!($name)),*];

        /// The scheduler's counters as scx_stats serves them: cumulative since
        /// the load, summed over CPUs.
        #[derive(Clone, Debug, Default, Serialize, Deserialize, Stats)]
        #[stat(top, desc = "scx_battle's event counters, cumulative since its first load (restarts after CPU hotplug included), summed over CPUs")]
        pub struct Metrics {
            #[stat(desc = "the policy: cfs, ule or vtime")]
            pub policy: String,
            #[stat(desc = "seconds since scx_battle first loaded")]
            pub uptime_s: f64,
            $(#[stat(desc = $desc)] pub $name: u64,)*
        }

        impl Metrics {
            pub fn new(policy: &str, uptime_s: f64, c: &Counters) -> Metrics {
                let mut v = c.0.iter().copied();
                Metrics { policy: policy.to_string(), uptime_s, $($name: v.next().unwrap_or(0),)* }
            }

            pub fn counters(&self) -> Counters {
                Counters([$(self.$name),*])
            }
        }
    };
}

counters! {
    enqueue: "ops.enqueue calls",
    dispatch: "ops.dispatch calls",
    dsq_move: "tasks moved from a queue to a CPU in dispatch",
    idle_pick: "wakeups sent straight to an idle CPU",
    kick_idle: "idle CPUs kicked at enqueue",
    kick_preempt: "wakeups that preempted the running task",
    lb_attempt: "CFS: load-balance passes over a domain",
    lb_periodic: "CFS: load-balance passes of the periodic balancer",
    lb_newidle: "CFS: load-balance passes by a CPU going idle (newly-idle balance)",
    lb_balanced: "CFS: passes with nothing to do: no busier group",
    lb_below_pct: "CFS: passes with nothing to do: imbalance below imbalance_pct",
    lb_no_task: "CFS: imbalanced, but no queued task could move",
    lb_hot_skip: "CFS: tasks skipped as cache-hot",
    lb_success: "CFS: passes that moved at least one task",
    migrate_smt: "CFS: tasks moved by balancing within an SMT core",
    migrate_llc: "CFS: tasks moved by balancing within an LLC",
    migrate_node: "CFS: tasks moved by balancing within a NUMA node",
    migrate_all: "CFS: tasks moved by balancing across nodes",
    ule_enq_interactive: "ULE: threads queued as interactive (realtime queue)",
    ule_enq_batch: "ULE: threads queued as batch (timeshare queue)",
    ule_enq_idle: "ULE: threads queued in the idle class",
    ule_pick_prev: "ULE: sched_pickcpu kept the previous CPU (idle, cache-warm)",
    ule_pick_llc: "ULE: sched_pickcpu took the least loaded idle CPU of the LLC",
    ule_pick_pri: "ULE: sched_pickcpu took the least loaded CPU running worse priorities",
    ule_pick_any: "ULE: sched_pickcpu took the least loaded CPU",
    ule_pick_self: "ULE: sched_pickcpu took the waker's CPU",
    ule_bal_pass: "ULE: balancer passes (CPU 0 only)",
    ule_bal_move: "ULE: threads moved by the balancer",
    ule_bal_repeat: "ULE: a CPU gave or got a second thread in one pass (must stay 0)",
    ule_steal: "ULE: threads stolen by an idle CPU",
    ule_keep_prev: "ULE: slice ends where the running thread was still the best",
    ule_move_lost: "ULE: a thread left its queue while being moved (raced with its CPU)",
    ule_starve: "ULE: threads run out of turn after waiting the starvation limit (watchdog guard)",
    nohz_kick: "CFS: idle CPUs woken to balance for the NOHZ idle balancer",
    tick_preempt: "CFS: running tasks preempted at a tick (check_preempt_tick)",
    wake_affine: "CFS: wakeups placed near the waker's CPU (wake_affine)",
    ule_preempted_head: "ULE: preempted threads put back at the head of their queue (SRQ_PREEMPTED)",
    ule_slice_end: "ULE: slices ended at a tick, against the current tdq_slice",
    ule_bal_rotate: "ULE: balancer moves between CPUs one thread apart (the k+1/k rotation)",
    lb_small_fix: "CFS: passes that asked for a whole task's load (fix_small_imbalance)",
    lb_newidle_skip: "CFS: idle entries not balanced: the CPU idles for less than a pass is worth (avg_idle)",
    ule_tick_resched: "ULE: a tick rescheduled a batch thread for a queued interactive one that no add announced",
    ule_static_boost: "ULE: waking batch threads queued at static_boost (sched_sleep's boost) until they run",
    lb_periodic_smt: "CFS: periodic passes made within an SMT core (should_we_balance said this CPU)",
    lb_periodic_llc: "CFS: periodic passes made over an LLC",
    lb_periodic_node: "CFS: periodic passes made over a NUMA node",
    lb_periodic_all: "CFS: periodic passes made over the machine (across nodes)",
    lb_not_ours: "CFS: periodic passes left to another CPU of the local group (should_we_balance)",
    dispatch_recheck: "threads found in this CPU's queue by its last look before idling (queued while its run-queue lock was dropped for a move, or by another CPU without waking it)",
    wake_wide: "CFS: wakeups left near the wakee's previous CPU: waker and wakee both switch wakees often (wake_wide)",
}

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

/// What the scx_stats server serves: "top" answers with the scheduler's
/// `Metrics` as its main loop reads them when asked (cumulative; clients
/// take differences).
pub fn server_data() -> StatsServerData<(), Metrics> {
    let open: Box<dyn StatsOpener<(), Metrics>> = Box::new(|_chs| {
        let read: Box<dyn StatsReader<(), Metrics>> = Box::new(|_args, (req, res)| {
            req.send(())?;
            res.recv()?.to_json()
        });
        Ok(read)
    });
    StatsServerData::new().add_meta(Metrics::meta()).add_ops("top", StatsOps { open, close: None })
}

/// `--monitor SECS`: a running scx_battle's counters every SECS, read over
/// its socket and printed as `--stats` prints them (events per interval).
pub fn monitor(every: std::time::Duration, shutdown: &std::sync::atomic::AtomicBool) -> Result<()> {
    // scx_utils retries quietly until a server answers: say why nothing comes.
    if let Err(e) = scx_stats::prelude::StatsClient::new().connect(None) {
        let state = std::fs::read_to_string("/sys/kernel/sched_ext/state").map(|s| s.trim().to_string());
        let ops = std::fs::read_to_string("/sys/kernel/sched_ext/root/ops").map(|s| s.trim().to_string());
        let running = match (state.as_deref(), ops.as_deref()) {
            (Ok("enabled"), Ok(ops)) => format!("the sched_ext scheduler loaded is {ops}"),
            (Ok(state), _) => format!("sched_ext is {state}"),
            (Err(_), _) => "this kernel has no sched_ext".to_string(),
        };
        eprintln!(
            "scx_battle --monitor: no scx_battle answers on /var/run/scx/root/stats ({e:#}; {running}); \
             waiting for one to start (Ctrl-C to stop)"
        );
    }
    let mut last: Option<Counters> = None;
    scx_utils::monitor_stats::<Metrics>(
        &[],
        every,
        || shutdown.load(std::sync::atomic::Ordering::Relaxed),
        |m| {
            let now = m.counters();
            let delta = last.map(|l| now.since(&l)).unwrap_or(now);
            println!("{}", delta.line(&format!("{} t={:.1}s", m.policy, m.uptime_s)));
            last = Some(now);
            Ok(())
        },
    )
}

/// Names of `enum cost_kind` in bpf/scheduler/intf.h.
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
    fn metrics_carry_every_counter_by_name() {
        let c = counters(&[1, 2, 3]);
        let m = Metrics::new("ule", 1.5, &c);
        assert_eq!((m.enqueue, m.dispatch, m.dsq_move, m.lb_small_fix), (1, 2, 3, 0));
        assert_eq!(m.counters(), c);
        let json = serde_json::to_value(&m).unwrap();
        for name in NAMES {
            assert!(json.get(name).is_some(), "{name} missing from {json}");
        }
        // --help-stats describes every one.
        let meta = Metrics::meta();
        assert_eq!(meta.fields.len(), NAMES.len() + 2);
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
        assert!(line.ends_with(" lb_small_fix=0 lb_newidle_skip=0 ule_tick_resched=0 ule_static_boost=0 lb_periodic_smt=0 lb_periodic_llc=0 lb_periodic_node=0 lb_periodic_all=0 lb_not_ours=0 dispatch_recheck=0 wake_wide=0"), "{line}");
    }

    #[test]
    fn migrate_counters_follow_dom_levels() {
        let base = bpf_intf::stat_idx_STAT_MIGRATE_SMT as usize;
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_LLC as usize], "migrate_llc");
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_ALL as usize], "migrate_all");
        let base = bpf_intf::stat_idx_STAT_LB_PERIODIC_SMT as usize;
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_NODE as usize], "lb_periodic_node");
        assert_eq!(NAMES[base + bpf_intf::dom_level_DOM_ALL as usize], "lb_periodic_all");
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
