/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ULE policy's shared declarations: its knobs, per-thread and per-CPU
 * state, the queues' addressing, and the functions its compilation units
 * call across (see ule.bpf.c for the design, and the units):
 *   ule.bpf.c          the design; ule_init
 *   ule_prio.bpf.c     priority and interactivity (sched_priority,
 *                      sched_interact_*, sched_wakeup, fork and exit)
 *   ule_runq.bpf.c     the run queues: tdq_runq_add, tdq_choose, slices
 *                      (sched_clock, sched_switch), the starvation guard,
 *                      moving queued threads for a balancer (tdq_move's
 *                      walk: runq_steal, runq_steal_from)
 *   ule_place.bpf.c    placement: sched_pickcpu, sched_lowest
 *   ule_balance.bpf.c  balancing: sched_highest, tdq_idled, the periodic
 *                      balancer, the kick that wakes an idle CPU to steal
 * The run queue, placement and balancing are the three components of
 * components.bpf.h, which says what each may ask of another, so that each
 * can be combined with CFS's.
 * Every function is ule_*, with the FreeBSD function it stands for in its
 * comment; constants, knobs and struct fields keep FreeBSD's names. The
 * pure arithmetic lives in ule_arith.h (checked on the host by
 * sched-ext/tests/ule_arith.rs).
 */
#ifndef __SCX_BATTLE_ULE_BPF_H
#define __SCX_BATTLE_ULE_BPF_H

/*
 * main.bpf.c is the home of the knobs and maps below, as of shared.bpf.h's
 * (SHARED, SHARED_INIT, SHARED_MAP are defined there).
 */


#ifndef SCHED_IDLE
#define SCHED_IDLE		5	/* include/uapi/linux/sched.h */
#endif
#ifndef PF_EXITING
#define PF_EXITING		0x00000004	/* include/linux/sched.h */
#endif

#include "ule_arith.h"

#define CG_SHARE_L2		2	/* affinity levels of sched_pickcpu, in `affinity` units */
#define CG_SHARE_L3		3
#define ULE_PREFER_BONUS	64	/* sched_lowest: load credit of the preferred CPU */
#define ULE_LOAD_SCALE		256	/* sched_lowest: weight of one thread */
#define ULE_NO_PRI		(-1)	/* sched_lowest: no priority filter */
#define ULE_SMT_STEAL_THRESH	1	/* tdq_idled (11.x): threads a victim needs within an SMT core (CG_FLAG_THREAD) */

/* Knobs, FreeBSD sysctl names (kern.sched.*); the loader may override them. */
SHARED const volatile u32 sched_interact SHARED_INIT(30);			/* kern.sched.interact: score limit of interactive */
SHARED const volatile u32 preempt_thresh SHARED_INIT(PRI_MIN_KERN);		/* kern.sched.preempt_thresh: priority that always preempts */
SHARED const volatile u64 sched_slice_ns SHARED_INIT(12 * STATHZ_TICK_NS);	/* kern.sched.quantum: ns, 12 stathz ticks */
SHARED const volatile u64 sched_slice_min_ns SHARED_INIT(2 * STATHZ_TICK_NS);	/* ns, sched_slice / 6 */
SHARED const volatile u64 affinity_ns SHARED_INIT(HZ_TICK_NS);			/* kern.sched.affinity: ns of cache warmth per level */
SHARED const volatile u32 rebalance SHARED_INIT(1);				/* kern.sched.balance: periodic balancer on */
SHARED const volatile u32 balance_interval_ms SHARED_INIT(1000);			/* kern.sched.balance_interval: ms, mean period */
SHARED const volatile u32 steal_idle SHARED_INIT(1);				/* kern.sched.steal_idle: idle CPUs steal */
SHARED const volatile u32 steal_thresh SHARED_INIT(2);				/* kern.sched.steal_thresh: threads a victim needs */
SHARED const volatile u32 static_boost SHARED_INIT(PRI_MIN_BATCH);		/* kern.sched.static_boost: priority of a waking batch thread until it runs (0: off) */
SHARED const volatile u32 ule_track_tasks;				/* fill ule_tasks for --stats */
/* sched_ext only, no FreeBSD counterpart: see ule_rescue_starved(). */
SHARED const volatile u64 ule_starve_ns SHARED_INIT(5000000000ULL);		/* ns a queued thread may wait; 0: no limit */
#define ULE_STARVE_SCAN_NS	(ULE_STARVE_SCAN_MS * 1000000ULL)	/* ns between two looks (intf.h) */

/* FreeBSD's struct td_sched: per-thread state. */
struct td_sched {
	u64	runtime;	/* ts_runtime: ns run, interactivity history */
	u64	slptime;	/* ts_slptime: ns slept voluntarily, interactivity history */
	u64	ticks;		/* ts_ticks: ns run inside the %CPU window */
	u64	ftick;		/* ts_ftick: ns, start of the %CPU window */
	u64	ltick;		/* ts_ltick: ns, last update of the window */
	u64	slept_at;	/* td_slptick: ns, when it went to sleep; 0 while awake */
	u64	slice_used;	/* ts_slice: ns of the current slice used (kept across preemptions) */
	u64	queued_at;	/* ns, when ops.enqueue last queued it */
	u32	pri;		/* td_priority, PRI_MIN_TIMESHARE..PRI_MAX_IDLE */
	u32	score;		/* interactivity score */
	u32	new_slice;	/* queued by ops.enqueue: its next run refills p->scx.slice */
	u32	preempted;	/* SRQ_PREEMPTED: stopped by a preemption before its slice ended */
	u32	starved;	/* times the starvation guard ran it out of turn (--tasks-csv) */
	u32	slice_end;	/* TDF_SLICEEND: a tick found the slice used up */
	u32	guard_turn;	/* run out of turn by the starvation guard: one tick, then back to its place */
	u32	boosted;	/* queued at static_boost after a sleep: its own priority again when it runs */
};

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct td_sched);
} td_scheds SEC(".maps");

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct ule_tdq);
} ule_tdqs SEC(".maps");

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct ule_task_info);
} ule_tasks SEC(".maps");

/* Attempts of sched_lowest at an LLC holding no acceptable CPU before it gives up. */

#define ULE_LOWEST_TRIES	4
/* Queued threads a move looks at for one its receiver may run (sched_ext bound). */
#define ULE_MOVE_SCAN		32
/* Receivers the balancer tries for one donor whose threads they may not run. */
#define ULE_BAL_TRIES		8
/* LLCs the balancer's receiver search looks into for one donor before it gives up. */
#define ULE_BAL_LLC_TRIES	8
#define ULE_BAL_GAVE_UP		(-2)	/* ule_bal_lowest: the tries ran out, not the CPUs */

SHARED const volatile u32 ule_balancer_cpu;	/* FreeBSD's CPU 0: the first online CPU */

static __always_inline struct td_sched *ule_ts(const struct task_struct *p)
{
	return bpf_task_storage_get(&td_scheds, (struct task_struct *)p, 0, 0);
}

static __always_inline struct ule_tdq *ule_tdq(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&ule_tdqs, &key);
}

static __always_inline u64 ule_dsq(s32 cpu, u32 queue, u32 bucket)
{
	u64 base = ULE_DSQ_BASE + (u64)(u32)cpu * ULE_DSQ_STRIDE;

	switch (queue) {
	case ULE_Q_REALTIME:	return base;
	case ULE_Q_TIMESHARE:	return base + 1 + bucket % RQ_NQS;
	default:		return base + 1 + RQ_NQS;
	}
}

static __always_inline u32 ule_queue_of(u32 pri)
{
	if (pri < PRI_MIN_BATCH)
		return ULE_Q_REALTIME;
	if (pri <= PRI_MAX_BATCH)
		return ULE_Q_TIMESHARE;
	return ULE_Q_IDLE;
}

/* tdq_load: threads on the CPU, running or queued. */
static __always_inline s32 ule_load(s32 cpu)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);

	return cctx ? (s32)cctx->nr_running : 0;
}

/*
 * Queued threads that could move (tdq_transferable): all but the running
 * one. Affinity is checked when a move is tried.
 */
static __always_inline s32 ule_transferable(s32 cpu)
{
	s32 load = ule_load(cpu);

	return load > 1 ? load - 1 : 0;
}

/* tdq_lowpri: the best priority on the CPU; the running thread's stands in for it. */
static __always_inline u32 ule_lowpri(s32 cpu, struct ule_tdq *tdq)
{
	if (tdq->curr_pri <= PRI_MAX_IDLE && tdq->curr_pri < PRI_MIN_IDLE)
		return tdq->curr_pri;
	return ule_load(cpu) > 0 ? PRI_MIN_BATCH : PRI_MAX_IDLE;
}

/*
 * The calendar's occupancy, FreeBSD's runq status bits. A set bit in
 * bucket_mask means "may hold a thread"; the queue's own length is the
 * truth. Whoever puts a thread in a bucket sets its bit: ops.enqueue before
 * the insert lands, under the owning CPU's rq lock, and a balancing CPU after
 * its move has landed. Only the owning CPU clears a bit, under its rq lock,
 * by clearing first and setting it again if the bucket turns out not to be
 * empty, so no ordering of the two loses a thread: a thread in a bucket
 * always has the bucket's bit set, or has a set pending from the CPU that
 * moved it there.
 */
static __always_inline void ule_mark_bucket(struct ule_tdq *tdq, u32 b)
{
	__sync_fetch_and_or(&tdq->bucket_mask, 1ULL << (b % RQ_NQS));
}

/* Remote view (balancer, stealer): may bucket b of `cpu` hold a thread? */
static __always_inline bool ule_bucket_maybe(s32 cpu, struct ule_tdq *tdq, u32 b)
{
	return (tdq->bucket_mask & (1ULL << (b % RQ_NQS))) &&
	       scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b)) > 0;
}

/* Owner's view, on its own CPU: does bucket b hold a thread? Drops stale bits. */
static __always_inline bool ule_bucket_busy(s32 cpu, struct ule_tdq *tdq, u32 b)
{
	u64 bit = 1ULL << (b % RQ_NQS);

	if (!(tdq->bucket_mask & bit))
		return false;
	__sync_fetch_and_and(&tdq->bucket_mask, ~bit);
	if (scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b)) > 0) {
		__sync_fetch_and_or(&tdq->bucket_mask, bit);
		return true;
	}
	return false;
}

/* tdq_slice of a CPU: the slice shrinks as its thread count grows. */
static __always_inline u64 ule_cpu_slice(s32 cpu)
{
	return ule_tdq_slice(ule_load(cpu), sched_slice_ns, sched_slice_min_ns);
}

/* Across the units (__hidden: one BPF program after linking, verified in context). */

/* ule_prio.bpf.c */
void ule_priority(const struct task_struct *p, struct td_sched *ts);
void ule_note_task(struct task_struct *p, struct td_sched *ts);
void ule_charge(struct task_struct *p, struct td_sched *ts, u64 ran);
void ule_wakeup(struct task_struct *p, struct td_sched *ts);
void ule_runnable(struct task_struct *p, u64 enq_flags);
void ule_quiescent(struct task_struct *p, u64 deq_flags);
s32 ule_init_task(struct task_struct *p, struct scx_init_task_args *args);
void ule_disable(struct task_struct *p);

/* ule_runq.bpf.c: the run-queue component (ule_q_*: components.bpf.h) */
void ule_runq_add(struct task_struct *p, struct td_sched *ts, s32 cpu, u64 enq_flags);
s32 ule_enqueue(struct task_struct *p, u64 enq_flags);
bool ule_q_dispatch(s32 cpu, struct task_struct *prev);
void ule_tick(struct task_struct *p);
void ule_running(struct task_struct *p);
void ule_stopping(struct task_struct *p, u64 ran_ns, bool runnable);
void ule_dump_cpu(struct scx_dump_ctx *dctx, s32 cpu);

/* ule_place.bpf.c: the placement component */
s32 ule_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags);

/* ule_balance.bpf.c: the balancer component */
int ule_steal(s32 cpu);
void ule_kick_stealer(struct task_struct *p, s32 cpu);
void ule_arm_balancer(s32 cpu);

/* ule.bpf.c */
s32 ule_init(void);

#endif /* __SCX_BATTLE_ULE_BPF_H */
