/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types and constants shared by the BPF scheduler and its Rust loader.
 * bindgen turns this file into sched-ext's bpf_intf.rs; keep it plain C.
 */
#ifndef __SCX_BATTLE_INTF_H
#define __SCX_BATTLE_INTF_H

#ifndef __VMLINUX_H__
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int s32;
#endif

/* Why a task moves: the note loadgen's recorder reads (shared.bpf.h, note_move). */
#include "../recorder/move_note.h"

enum consts {
	MAX_CPUS		= 1024,		/* size of per-CPU tables (a power of two) */
	SHARED_DSQ		= 0,		/* the vtime policy's single queue */
	CPU_DSQ_BASE		= 1 << 16,	/* per-CPU queue of CPU c: CPU_DSQ_BASE + c */
	NICE_0_LOAD		= 1024,		/* Linux's weight of a nice-0 task */
	ULE_DSQ_BASE		= 1 << 20,	/* ULE queues of CPU c start at ULE_DSQ_BASE + c * ULE_DSQ_STRIDE */
	ULE_DSQ_STRIDE		= 128,
	RQ_NQS			= 64,		/* ULE: buckets of the timeshare calendar (sys/runq.h) */
	ULE_TASK_COMM_LEN	= 16,
	ULE_STARVE_SCAN_MS	= 100,		/* ULE's starvation guard: ms between two looks, per CPU */
	ULE_STARVE_SCAN		= 32,		/* ... and the realtime-queue threads it examines per look */
};

/* ULE's three run queues per CPU, searched in this order. */
enum ule_queue {
	ULE_Q_REALTIME,		/* interactive threads (FreeBSD's realtime runq), by priority */
	ULE_Q_TIMESHARE,	/* batch threads: the RQ_NQS-bucket calendar */
	ULE_Q_IDLE,		/* idle-class threads (SCHED_IDLE) */
	ULE_NR_QUEUES,
};

/* Scheduling-domain levels, bottom-up, as Linux builds them. */
enum dom_level {
	DOM_SMT,		/* hardware threads of one core */
	DOM_LLC,		/* cores sharing a last-level cache */
	DOM_NODE,		/* one NUMA node */
	DOM_ALL,		/* the whole machine */
	NR_DOM_LEVELS,
};

/*
 * The components a scheduler is made of; --policy picks one of each at load
 * time. vtime is all three at once; CFS's and ULE's run queue, placement and
 * balancer mix freely (policy/components.bpf.h).
 */
enum battle_component {
	COMP_VTIME		= 0,	/* one global weighted-vtime queue, the kernel's idle pick */
	COMP_CFS		= 1,	/* Linux CFS's */
	COMP_ULE		= 2,	/* FreeBSD ULE's */
};

/* Per-CPU event counters, read by --stats. */
enum stat_idx {
	STAT_ENQUEUE,		/* ops.enqueue calls */
	STAT_DISPATCH,		/* ops.dispatch calls */
	STAT_DSQ_MOVE,		/* tasks moved from a queue to a CPU in dispatch */
	STAT_IDLE_PICK,		/* wakeups sent straight to an idle CPU */
	STAT_KICK_IDLE,		/* idle CPUs kicked at enqueue */
	STAT_KICK_PREEMPT,	/* wakeups that preempted the running task */
	STAT_LB_ATTEMPT,	/* load-balance passes over a domain */
	STAT_LB_PERIODIC,	/* ... of which periodic */
	STAT_LB_NEWIDLE,	/* ... of which by a CPU that went idle */
	STAT_LB_BALANCED,	/* nothing to do: no busier group */
	STAT_LB_BELOW_PCT,	/* nothing to do: imbalance below imbalance_pct */
	STAT_LB_NO_TASK,	/* imbalanced, but no queued task could move */
	STAT_LB_HOT_SKIP,	/* tasks skipped as cache-hot */
	STAT_LB_SUCCESS,	/* passes that moved at least one task */
	STAT_MIGRATE_SMT,	/* tasks moved by balancing, per domain level */
	STAT_MIGRATE_LLC,
	STAT_MIGRATE_NODE,
	STAT_MIGRATE_ALL,
	STAT_ULE_ENQ_REALTIME,	/* ULE: threads queued as interactive */
	STAT_ULE_ENQ_TIMESHARE,	/* ... as batch */
	STAT_ULE_ENQ_IDLE,	/* ... as idle class */
	STAT_ULE_PICK_PREV,	/* sched_pickcpu kept the previous CPU (idle, cache-warm) */
	STAT_ULE_PICK_LLC,	/* ... took the least loaded idle CPU of the LLC */
	STAT_ULE_PICK_PRI,	/* ... least loaded CPU running worse priorities */
	STAT_ULE_PICK_ANY,	/* ... least loaded CPU */
	STAT_ULE_PICK_SELF,	/* ... the waker's CPU */
	STAT_ULE_BAL_PASS,	/* balancer passes (CPU 0 only) */
	STAT_ULE_BAL_MOVE,	/* threads moved by the balancer */
	STAT_ULE_BAL_REPEAT,	/* a CPU gave or got a second thread in one pass (must stay 0) */
	STAT_ULE_STEAL,		/* threads stolen by an idle CPU */
	STAT_ULE_KEEP_PREV,	/* slice ends where the running thread was still the best */
	STAT_ULE_MOVE_LOST,	/* a thread left its queue while being moved (raced with its CPU) */
	STAT_ULE_STARVE,	/* threads run out of turn after waiting ule_starve_ns (watchdog guard) */
	STAT_NOHZ_KICK,		/* CFS: idle CPUs woken to balance for the NOHZ idle balancer */
	STAT_TICK_PREEMPT,	/* CFS: running tasks preempted at a tick (check_preempt_tick) */
	STAT_WAKE_AFFINE,	/* CFS: wakeups placed near the waker's CPU (wake_affine) */
	STAT_ULE_PREEMPTED_HEAD,/* ULE: preempted threads put back at the head of their queue (SRQ_PREEMPTED) */
	STAT_ULE_SLICE_END,	/* ULE: slices ended at a tick, against the current tdq_slice */
	STAT_ULE_BAL_ROTATE,	/* ULE: balancer moves between CPUs one thread apart (the k+1/k rotation) */
	STAT_LB_SMALL_FIX,	/* CFS: passes that asked for a whole task's load (fix_small_imbalance) */
	STAT_LB_NEWIDLE_SKIP,	/* CFS: idle entries not balanced: the CPU idles for less than a pass is worth (avg_idle) */
	STAT_ULE_TICK_RESCHED,	/* ULE: a tick rescheduled a batch thread for an interactive one no add announced */
	STAT_ULE_STATIC_BOOST,	/* ULE: waking batch threads queued at static_boost */
	STAT_LB_PERIODIC_SMT,	/* CFS: periodic passes made, per domain level (should_we_balance said yes) */
	STAT_LB_PERIODIC_LLC,
	STAT_LB_PERIODIC_NODE,
	STAT_LB_PERIODIC_ALL,
	STAT_LB_NOT_OURS,	/* CFS: periodic passes left to another CPU of the local group (should_we_balance) */
	STAT_DISPATCH_RECHECK,	/* threads found in this CPU's queue by its last look before idling */
	STAT_WAKE_WIDE,		/* CFS: wakeups left near the wakee's previous CPU (wake_wide) */
	NR_BATTLE_STATS,
};

/*
 * Work per call, for scripts/bench-cost: the CPUs, groups and queued tasks a
 * callback looked at. Summed over CPUs by the loader; max is per CPU, and the
 * loader takes the largest.
 */
enum cost_kind {
	COST_SELECT,		/* ops.select_cpu */
	COST_ENQUEUE,		/* ops.enqueue */
	COST_DISPATCH,		/* ops.dispatch, balancing and stealing included */
	COST_BALANCE,		/* one ULE balancer pass (its timer) */
	NR_COSTS,
};

struct cost {
	u64	calls;
	u64	visits;
	u64	max;		/* most visits in one call */
	u64	cur;		/* visits of the call in progress */
};

/* Load and thread count of an LLC or a node, kept up to date as tasks move. */
struct dom_stat {
	u64	load;			/* sum of Linux weights of its tasks */
	u32	nr_running;		/* its tasks: queued or running */
	u32	nr_cpus;		/* online CPUs in it (set by the loader) */
	u32	nr_busy;		/* its CPUs with a task (nr_cpus - idle_cpus) */
} __attribute__((aligned(64)));	/* written by every CPU in it: a line of its own */

/* Per-CPU state every policy can read for any CPU; written by other CPUs too. */
struct cpu_ctx {
	u64	load;			/* sum of Linux weights of tasks on this CPU */
	u32	nr_running;		/* tasks on this CPU: queued or running */
	u32	pad;
} __attribute__((aligned(64)));	/* a line per CPU: no false sharing */

/*
 * ULE's per-CPU run-queue state (FreeBSD's struct tdq, the part not held in
 * cpu_ctx). The thread count, tdq_load, is cpu_ctx.nr_running.
 */
struct ule_tdq {
	u64	last_stat_tick;		/* ns, last calendar advance */
	u64	bucket_mask;		/* calendar buckets that may hold a thread (see ule_runq.bpf.c) */
	u32	idx;			/* tdq_idx: insertion base of the calendar */
	u32	ridx;			/* tdq_ridx: removal index */
	u32	curr_pri;		/* priority of the running thread, 255 if none */
	u32	switch_req;		/* why the running thread was asked to switch: enum ule_switch (ule_arith.h) */
	u64	starve_scan_at;		/* ns, next look for threads near the watchdog's limit */
	s32	nr_queued[ULE_NR_QUEUES];	/* threads waiting in each queue, as of the last tick (--stats) */
	u32	starve_rt_from;		/* where the guard's window of the realtime queue starts (ule_runq.bpf.c) */
} __attribute__((aligned(64)));	/* bucket_mask is set by other CPUs: a line of its own */

/* What --stats shows of a thread under ULE (map ule_tasks, by tid). */
struct ule_task_info {
	u64	runtime_ns;		/* run time in the interactivity history */
	u64	slptime_ns;		/* sleep time in it */
	u32	score;			/* interactivity score, 0..100 */
	u32	pri;			/* ULE priority, lower runs first */
	s32	nice;
	u32	queue;			/* enum ule_queue its priority selects */
	u32	starved;		/* times the starvation guard ran it out of turn */
	char	comm[ULE_TASK_COMM_LEN];
};

#endif /* __SCX_BATTLE_INTF_H */
