/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ULE policy: FreeBSD's ULE scheduler (sys/kern/sched_ule.c) on
 * sched_ext, with FreeBSD's names for its constants and knobs.
 *
 * Names: every function is ule_*, with the FreeBSD function it stands for
 * in its comment; constants, knobs and struct fields keep FreeBSD's names.
 * The pure arithmetic (scores, priorities, slices, calendar indices,
 * preemption and pairing rules) lives in ule_arith.h, which the Rust tests
 * compile for the host and check (sched-ext/tests/ule_arith.rs).
 *
 * 1. Interactivity. Every thread keeps a history of its run time and its
 *    voluntary sleep time, capped at SCHED_SLP_RUN_MAX (5 s) and cut to 4/5
 *    when it overflows; a sleep is credited as the hz ticks it crossed. The
 *    score, 0..100, is low for threads that mostly sleep and high for
 *    threads that mostly run; a thread whose score plus nice is below
 *    `interact` (30) is interactive. A child starts with its parent's
 *    history scaled down to SCHED_SLP_RUN_FORK and its parent's %CPU
 *    window; the parent pays a stathz tick for the fork; an exiting child
 *    charges its run time to its parent.
 *
 * 2. Queues. Every CPU has three queues, searched in order. Interactive
 *    threads wait in the realtime queue, RQ_PPQ (4) priorities per FIFO.
 *    Batch threads wait in the timeshare calendar: RQ_NQS FIFO buckets used
 *    as a circle, a thread being inserted (recent CPU use + nice) buckets
 *    after the insertion index `idx` and the CPU draining from the removal
 *    index `ridx`; `idx` moves one bucket per stathz tick once `ridx` has
 *    caught up, and `ridx` passes a drained bucket only while it trails
 *    `idx`, so a batch thread of poor priority is reached in the end.
 *    Idle-class threads (SCHED_IDLE) wait in the idle queue. Interactive
 *    threads always run first: batch threads can starve, as on FreeBSD.
 *
 * 3. Slices. ts_slice counts what a thread used of its slice: sched_slice
 *    (~94 ms) while the CPU has at most two threads, divided by the count
 *    beyond one from there on, never below sched_slice_min (~16 ms),
 *    compared at every tick with the CPU's current count. A new thread
 *    starts with all but sched_slice_min used; a wakeup starts afresh. A
 *    thread preempted (SW_PREEMPT: by sched_shouldpreempt's rule, on its
 *    CPU or by IPI) goes back to the head of its queue with the rest of its
 *    slice (SRQ_PREEMPTED); one only asked to reschedule (TDF_NEEDRESCHED:
 *    a better thread woke on its CPU) goes back to its normal place, also
 *    with the rest of its slice; one displaced by a higher sched class (an
 *    RT thread) resumes first, with the rest of its slice. Only a used-up
 *    slice or a wakeup starts a fresh one.
 *
 * 4. Placement and balancing count threads, not load. A waking or new
 *    thread goes through sched_pickcpu: its previous CPU if that is idle and
 *    the thread ran there within `affinity`, else the least loaded idle CPU
 *    of its LLC, else the least loaded CPU running worse priorities, else
 *    the least loaded CPU, walking the topology tree by thread count. Only
 *    CPU 0 balances periodically, every 0.5 to 1.5 balance_interval: each
 *    pass pairs the most loaded CPU with the least loaded one holding fewer
 *    threads and moves one queued thread; a CPU gives or gets one thread per
 *    pass, so CPUs with k+1 and k threads trade one at every pass. A CPU
 *    with nothing to run steals one queued thread from a CPU with at least
 *    steal_thresh threads, its core first, then its LLC, node, machine; the
 *    victim keeps the thread it runs next unless it is its only one. A moved
 *    thread preempts its new CPU's only if sched_shouldpreempt allows it
 *    (tdq_notify). Running threads never move.
 *
 * 5. Starvation guard (sched_ext only). The kernel's watchdog ends a
 *    scheduler that leaves a runnable thread waiting for its timeout. ULE
 *    lets batch threads starve behind interactive ones, and new threads
 *    inherit their parent's interactivity: 512 spinners forked by a sleepy
 *    parent stay interactive for their first ~0.3 s of run time each, and
 *    the ones already demoted to batch wait until every other one is. So a
 *    thread that has waited ule_starve_ns (half the watchdog timeout by
 *    default; the loader sets ULE's to the kernel's maximum, 30 s) runs
 *    next, oldest first; the stat ule_starve counts how often ULE's own
 *    order would have starved one.
 *
 * 6. Deviations from sched_ule.c, each with why:
 *    - Run time is charged when a thread stops, its slice ends or ops.dispatch
 *      keeps it, not at every stathz tick (sched_ext reports it then); the
 *      slice test runs at the kernel's ticks (HZ), not stathz's.
 *    - tdq_lowpri is the running thread's priority, not the best of the
 *      running and queued ones (keeping it exact would mean peeking at every
 *      queue at every change).
 *    - The balancer is a BPF timer pinned to CPU 0 (the first online CPU),
 *      outside any run-queue lock, as FreeBSD runs it from CPU 0's clock
 *      interrupt; it is armed the first time CPU 0 ticks or dispatches. Its
 *      pass uses the thread counts of the pass's start (see Cost).
 *    - A CPU's indices are moved only by that CPU: when a stealer empties
 *      the removal bucket, ridx passes on at the owner's next dispatch, as
 *      runq_remove_idx would have moved it at the steal.
 *    - Idle CPUs do not poll (sched_idletd): a CPU that queues a thread
 *      while holding steal_thresh wakes an idle CPU to steal it.
 *    - A yielding thread (sched_yield) starts a fresh slice; FreeBSD keeps
 *      its ts_slice.
 *    - The starvation guard (5), which FreeBSD does not have.
 *    - No priority propagation (lent priorities, turnstiles) and no
 *      interrupt threads: sched_ext schedules user and kernel tasks alike.
 *
 * Cost (FreeBSD looks at every CPU in sched_lowest and sched_highest, and
 * at every pair in a balancer pass; on sched_ext those run with a run-queue
 * lock held, so they are bounded here):
 *  - sched_lowest walks the tree with per-node and per-LLC thread counts
 *    (shared.bpf.h) and looks at the CPUs of one LLC; an LLC with no
 *    acceptable CPU is set aside and the next least loaded one tried,
 *    ULE_LOWEST_TRIES times at most.
 *  - sched_highest for stealing looks at the core, the LLC, then the
 *    busiest LLC of the node and of the machine.
 *  - a balancer pass sorts the CPUs once by thread count (N log N) and pairs
 *    them from both ends, trying ULE_BAL_TRIES receivers per donor at most;
 *    the counts are those at the start of the pass.
 *  - a move looks at ULE_MOVE_SCAN queued threads at most for one the
 *    receiver may run.
 *  - the starvation guard looks at queue heads and the tail of the
 *    realtime queue only.
 *  - the realtime queue's FIFO order comes from the clock, not a counter
 *    every CPU increments.
 */
#ifndef __SCX_BATTLE_ULE_BPF_H
#define __SCX_BATTLE_ULE_BPF_H

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

/* Knobs, FreeBSD sysctl names (kern.sched.*); the loader may override them. */
const volatile u32 sched_interact = 30;			/* kern.sched.interact: score limit of interactive */
const volatile u32 preempt_thresh = PRI_MIN_KERN;		/* kern.sched.preempt_thresh: priority that always preempts */
const volatile u64 sched_slice_ns = 12 * STATHZ_TICK_NS;	/* kern.sched.quantum: ns, 12 stathz ticks */
const volatile u64 sched_slice_min_ns = 2 * STATHZ_TICK_NS;	/* ns, sched_slice / 6 */
const volatile u64 affinity_ns = HZ_TICK_NS;			/* kern.sched.affinity: ns of cache warmth per level */
const volatile u32 rebalance = 1;				/* kern.sched.balance: periodic balancer on */
const volatile u32 balance_interval_ms = 1000;			/* kern.sched.balance_interval: ms, mean period */
const volatile u32 steal_idle = 1;				/* kern.sched.steal_idle: idle CPUs steal */
const volatile u32 steal_thresh = 2;				/* kern.sched.steal_thresh: threads a victim needs */
const volatile u32 ule_track_tasks;				/* fill ule_tasks for --stats */
/* sched_ext only, no FreeBSD counterpart: see ule_rescue_starved(). */
const volatile u64 ule_starve_ns = 5000000000ULL;		/* ns a queued thread may wait; 0: no limit */
#define ULE_STARVE_SCAN_NS	100000000ULL	/* ns between two looks for starving threads, per CPU */

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
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct td_sched);
} td_scheds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct ule_tdq);
} ule_tdqs SEC(".maps");

struct {
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
/* Queued threads of each queue the starvation guard looks at, oldest end first. */
#define ULE_STARVE_SCAN		32

/*
 * The balancer's scratch (one pass at a time, on one CPU): online CPUs sorted
 * by thread count, and per sorted position whether it gave or took a thread.
 */
struct ule_balance_scratch {
	u64	key[MAX_CPUS];		/* thread count << 32 | random: the sort key */
	u32	cpu[MAX_CPUS];
	u8	used[MAX_CPUS];
	/*
	 * The pass's counters live here, in map memory the verifier does not
	 * track, so the loops verify in a few states (see cfs.bpf.h).
	 */
	u32	n;
	u32	lo;			/* lowest sorted position not yet a receiver */
	u32	tries;
	u32	moves;
	u32	moved;
	u32	anylow;
	u32	root;			/* ule_sift's position */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_balance_scratch);
} ule_bal_scratch SEC(".maps");

/* One move's state (see ule_move_one), per CPU, in map memory the verifier does not track. */
struct ule_move_ctx {
	s32	src;
	s32	dst;
	u32	to_local;	/* dst is this CPU stealing: into its local queue */
	u32	kind;		/* enum cost_kind the visits are charged to */
	u32	looked;		/* queued threads looked at */
	u32	skip_first;	/* runq_steal_from: the next thread seen is src's next to run */
	s32	first_pid;	/* that thread, -1 if none */
	u32	first_bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_move_ctx);
} ule_move_scratch SEC(".maps");

/* CPU 0's periodic balancer, a timer pinned to that CPU. */
struct ule_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_timer);
} ule_timers SEC(".maps");

const volatile u32 ule_balancer_cpu;	/* FreeBSD's CPU 0: the first online CPU */

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

static __always_inline s32 task_nice(const struct task_struct *p)
{
	return p->static_prio - 120;	/* DEFAULT_PRIO */
}

/* sched_priority: interactive threads by score, batch ones by %CPU and nice. */
static void ule_priority(const struct task_struct *p, struct td_sched *ts)
{
	ts->score = ule_interact_score(ts->runtime, ts->slptime, sched_interact);
	if (p->policy == SCHED_IDLE) {
		ts->pri = PRI_MIN_IDLE;
		return;
	}
	ts->pri = ule_timeshare_pri(ts->score, task_nice(p), ts->ticks, ts->ltick - ts->ftick,
				    sched_interact);
}

/* Publish a thread's classification for --stats. */
static void ule_note_task(struct task_struct *p, struct td_sched *ts)
{
	struct ule_task_info info = {};
	u32 pid = p->pid;

	if (!ule_track_tasks)
		return;
	info.runtime_ns = ts->runtime;
	info.slptime_ns = ts->slptime;
	info.score = ts->score;
	info.pri = ts->pri;
	info.nice = task_nice(p);
	info.queue = ule_queue_of(ts->pri);
	info.starved = ts->starved;
	__builtin_memcpy(info.comm, p->comm, sizeof(info.comm));
	bpf_map_update_elem(&ule_tasks, &pid, &info, BPF_ANY);
}

/* Charge run time (sched_clock's share of it) and recompute the priority. */
static void ule_charge(struct task_struct *p, struct td_sched *ts, u64 ran)
{
	u64 now = scx_bpf_now();

	ts->runtime += ran;
	ule_interact_update(&ts->runtime, &ts->slptime);
	ule_pctcpu_update(&ts->ticks, &ts->ftick, &ts->ltick, now, ran);
	ule_priority(p, ts);
	ule_note_task(p, ts);
}

/*
 * sched_wakeup: credit the voluntary sleep that just ended (the hz ticks it
 * crossed) and start a fresh slice.
 */
static void ule_wakeup(struct task_struct *p, struct td_sched *ts)
{
	u64 now = scx_bpf_now(), credit;

	if (!ts->slept_at)
		return;
	credit = ule_sleep_credit(ts->slept_at, now);
	if (credit) {
		ts->slptime += credit;
		ule_interact_update(&ts->runtime, &ts->slptime);
		ule_pctcpu_update(&ts->ticks, &ts->ftick, &ts->ltick, now, 0);
		ule_priority(p, ts);
		ule_note_task(p, ts);
	}
	ts->slept_at = 0;
	ts->slice_used = 0;
	ts->slice_end = 0;
	ts->preempted = 0;
}

/* tdq_slice of a CPU: the slice shrinks as its thread count grows. */
static __always_inline u64 ule_cpu_slice(s32 cpu)
{
	return ule_tdq_slice(ule_load(cpu), sched_slice_ns, sched_slice_min_ns);
}

/* runq_findbit_from, on the owning CPU: the first non-empty bucket from `from`, circularly; RQ_NQS if none. */
static __always_inline u32 ule_first_bucket(s32 cpu, struct ule_tdq *tdq, u32 from)
{
	u32 i, b;

	if (!tdq->bucket_mask)
		return RQ_NQS;
	bpf_for(i, 0, RQ_NQS) {
		b = (from + i) % RQ_NQS;
		if (ule_bucket_busy(cpu, tdq, b))
			return b;
	}
	return RQ_NQS;
}

/*
 * tdq_runq_add: put a thread in the queue its priority selects on `cpu`. A
 * thread preempted before its slice ended (SRQ_PREEMPTED) goes to the head:
 * of the removal bucket in the calendar, of its FIFO in the other queues.
 */
static void ule_runq_add(struct task_struct *p, struct td_sched *ts, s32 cpu, u64 enq_flags)
{
	struct ule_tdq *tdq = ule_tdq(cpu);
	u32 queue = ule_queue_of(ts->pri), b;
	bool preempted = ts->preempted;

	ts->preempted = 0;
	if (!tdq) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_slice_min_ns, enq_flags);
		return;
	}
	if (preempted) {
		stat_inc(STAT_ULE_PREEMPTED_HEAD);
		if (queue != ULE_Q_REALTIME)
			enq_flags |= SCX_ENQ_HEAD;
	}
	switch (queue) {
	case ULE_Q_REALTIME:
		stat_inc(STAT_ULE_ENQ_REALTIME);
		scx_bpf_dsq_insert_vtime(p, ule_dsq(cpu, queue, 0), sched_slice_ns,
					 ule_rt_key(ts->pri, scx_bpf_now(), preempted), enq_flags);
		break;
	case ULE_Q_TIMESHARE:
		stat_inc(STAT_ULE_ENQ_TIMESHARE);
		b = ule_insert_bucket(ts->pri, tdq->idx, tdq->ridx, preempted);
		ule_mark_bucket(tdq, b);
		scx_bpf_dsq_insert(p, ule_dsq(cpu, queue, b), sched_slice_ns, enq_flags);
		break;
	default:
		stat_inc(STAT_ULE_ENQ_IDLE);
		scx_bpf_dsq_insert(p, ule_dsq(cpu, queue, 0), sched_slice_ns, enq_flags);
	}
}

/*
 * Is cpu acceptable to sched_lowest: allowed, running worse work than pri?
 * (FreeBSD's maxload filter is always "any" in sched_pickcpu's calls.)
 */
static __always_inline bool ule_acceptable(struct task_struct *p, s32 cpu, s32 pri)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	return tdq && cpu_usable(cpu, p) && (pri == ULE_NO_PRI || ule_lowpri(cpu, tdq) > (u32)pri);
}

/*
 * sched_lowest inside one LLC: the acceptable CPU with the lowest score, a
 * CPU's thread count x ULE_LOAD_SCALE, less ULE_PREFER_BONUS on the
 * preferred CPU, plus a random 0..31. -1 if none.
 */
static s32 ule_lowest_in_llc(struct task_struct *p, u32 llc, s32 prefer, s32 pri)
{
	u32 i, first = llc_first[llc & (MAX_CPUS - 1)], nr = llc_nr[llc & (MAX_CPUS - 1)];
	u64 score, best_score = ~0ULL;
	s32 cpu, best = -1;

	bpf_for(i, 0, nr) {
		if (i >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + i);
		if (!ule_acceptable(p, cpu, pri))
			continue;
		score = (u64)ule_load(cpu) * ULE_LOAD_SCALE + ULE_PREFER_BONUS + 32 -
			(cpu == prefer ? ULE_PREFER_BONUS : 0) - bpf_get_prandom_u32() % 32;
		if (score < best_score) {
			best_score = score;
			best = cpu;
		}
	}
	cost_visit(COST_SELECT, nr);
	return best;
}

/* Threads per CPU of a domain, x ULE_LOAD_SCALE, with a random 0..31 to break ties. */
static __always_inline u64 ule_dom_score(struct dom_stat *ds)
{
	if (!ds->nr_cpus)
		return ~0ULL;
	return (u64)ds->nr_running * ULE_LOAD_SCALE / ds->nr_cpus + bpf_get_prandom_u32() % 32;
}

/*
 * sched_lowest over the machine, walking the tree: the node with the fewest
 * threads per CPU, its LLC with the fewest, and the best acceptable CPU in
 * it. An LLC with no acceptable CPU (affinity, priorities) is set aside and
 * the least loaded LLC not yet tried is next, ULE_LOWEST_TRIES times at
 * most. FreeBSD's cpu_search_lowest looks at every CPU instead.
 */
static s32 ule_lowest(struct task_struct *p, s32 prefer, s32 pri)
{
	u32 tried[ULE_LOWEST_TRIES] = {}, t, d, j, llc = 0, l0, nl, node = 0;
	u64 score, best;
	s32 cpu;

	bpf_for(t, 0, ULE_LOWEST_TRIES) {
		best = ~0ULL;
		if (t == 0) {
			bpf_for(d, 0, nr_nodes) {
				score = ule_dom_score(node_stat_of(d));
				if (score < best) {
					best = score;
					node = d;
				}
			}
			l0 = node_first_llc[node & (MAX_CPUS - 1)];
			nl = node_nr_llcs[node & (MAX_CPUS - 1)];
			if (nl > max_node_llcs)
				nl = max_node_llcs;
			cost_visit(COST_SELECT, nr_nodes + nl);
		} else {
			l0 = 0;
			nl = nr_llcs;
			cost_visit(COST_SELECT, nl);
		}
		best = ~0ULL;
		llc = ~0U;
		bpf_for(d, 0, nl) {
			bool seen = false;

			bpf_for(j, 0, t)
				if (tried[j & (ULE_LOWEST_TRIES - 1)] == l0 + d + 1)
					seen = true;
			if (seen)
				continue;
			score = ule_dom_score(llc_stat_of(l0 + d));
			if (score < best) {
				best = score;
				llc = l0 + d;
			}
		}
		if (llc == ~0U)
			return -1;
		cpu = ule_lowest_in_llc(p, llc, prefer, pri);
		if (cpu >= 0)
			return cpu;
		tried[t & (ULE_LOWEST_TRIES - 1)] = llc + 1;
	}
	return -1;
}

static __always_inline bool ule_cpu_idle(s32 cpu)
{
	return ule_load(cpu) == 0;
}

/* SCHED_AFFINITY: did the thread run on its CPU within `level` x affinity? */
static __always_inline bool ule_affine(struct task_ctx *tctx, u32 level)
{
	u64 now = scx_bpf_now();

	return tctx->last_stop_at && now - tctx->last_stop_at < level * affinity_ns;
}

/* Is every other SMT thread of cpu's core idle too? */
static __always_inline bool ule_core_idle(s32 cpu, enum cost_kind kind)
{
	u32 i, first = core_first[cpu_idx(cpu)], nr = core_nr[cpu_idx(cpu)];
	s32 c;

	bpf_for(i, 0, nr) {
		if (i >= max_core_cpus)
			break;
		c = topo_cpu(first + i);
		if (c != cpu && !ule_cpu_idle(c))
			return false;
	}
	cost_visit(kind, nr);
	return true;
}

/* sched_pickcpu, for a waking or new thread. */
static s32 ule_pickcpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	struct ule_tdq *self_tdq;
	s32 cpu = -1, self = bpf_get_smp_processor_id();
	bool prev_ok = cpu_usable(prev_cpu, p);

	if (!ts || !tctx)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	ule_wakeup(p, ts);
	ule_priority(p, ts);

	/* Cache-warm and idle: stay (with SMT, the whole core must be idle). */
	if (prev_ok && ule_cpu_idle(prev_cpu) && ule_affine(tctx, CG_SHARE_L2) &&
	    (!dom_active[DOM_SMT] || ule_core_idle(prev_cpu, COST_SELECT))) {
		stat_inc(STAT_ULE_PICK_PREV);
		return prev_cpu;
	}
	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS && ule_affine(tctx, CG_SHARE_L3)) {
		cpu = ule_lowest_in_llc(p, llc_of(prev_cpu), prev_cpu,
					ts->pri > PRI_MAX_TIMESHARE ? ts->pri : PRI_MAX_TIMESHARE);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_LLC);
	}
	if (cpu < 0) {
		cpu = ule_lowest(p, prev_cpu, ts->pri);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_PRI);
	}
	if (cpu < 0) {
		cpu = ule_lowest(p, prev_cpu, ULE_NO_PRI);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_ANY);
	}
	if (cpu < 0)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);

	/* The waker's CPU, if it runs worse work and is no busier than the pick. */
	if (self != cpu && cpu_usable(self, p) && (self_tdq = ule_tdq(self)) &&
	    ule_lowpri(self, self_tdq) > ts->pri && !ule_cpu_idle(cpu) &&
	    ule_load(self) <= ule_load(cpu) + 1) {
		stat_inc(STAT_ULE_PICK_SELF);
		cpu = self;
	}
	return cpu;
}

static s32 ule_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	cpu = ule_pickcpu(p, prev_cpu, wake_flags);
	cost_end(COST_SELECT);
	return cpu;
}

static void ule_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq;

	if (ts) {
		ts->new_slice = 1;
		ts->queued_at = scx_bpf_now();
	}
	/*
	 * Its CPU became unusable (affinity change): the global queue, which
	 * every CPU drains before asking ops.dispatch. The calendar bits need
	 * the owning CPU's rq lock, which is held only for the task's own CPU.
	 */
	if (!cpu_usable(cpu, p)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, sched_slice_min_ns, enq_flags);
		return;
	}
	/*
	 * SCX_ENQ_LAST: the CPU found nothing else to run. Keeping the thread
	 * on its CPU is what ULE would pick, and the CPU must not go idle.
	 */
	if (!ts || !tctx || !(tdq = ule_tdq(cpu)) || (enq_flags & SCX_ENQ_LAST)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_slice_min_ns, enq_flags);
		return;
	}
	/* sched_add recomputes the priority first. */
	ule_wakeup(p, ts);
	ule_priority(p, ts);
	account_task(p, tctx, cpu);
	ule_runq_add(p, ts, cpu, enq_flags);

	/*
	 * A CPU with steal_thresh threads has one to give: wake an idle CPU so
	 * it runs tdq_idled. (FreeBSD's idle CPUs poll; sched_ext's sleep until
	 * kicked, and a widened affinity mask enqueues but wakes nobody.)
	 */
	if (steal_idle && ule_load(cpu) >= (s32)steal_thresh) {
		s32 idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (idle >= 0) {
			stat_inc(STAT_KICK_IDLE);
			scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
		}
	}

	/*
	 * tdq_notify (another CPU: an IPI when sched_shouldpreempt allows) and
	 * sched_setpreempt (this CPU: TDF_NEEDRESCHED for any better priority,
	 * a real preemption only when sched_shouldpreempt allows; a thread
	 * merely rescheduled goes back to its normal place, not the head).
	 */
	if (tdq->curr_pri >= PRI_MIN_IDLE) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	} else if ((enq_flags & SCX_ENQ_WAKEUP) && ts->pri < tdq->curr_pri) {
		bool local = cpu == bpf_get_smp_processor_id();

		if (ule_shouldpreempt(ts->pri, tdq->curr_pri, !local, preempt_thresh)) {
			tdq->switch_req = ULE_SW_PREEMPT;
			stat_inc(STAT_KICK_PREEMPT);
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		} else if (local) {
			if (tdq->switch_req < ULE_SW_NEEDRESCHED)
				tdq->switch_req = ULE_SW_NEEDRESCHED;
			stat_inc(STAT_KICK_PREEMPT);
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		}
	}
}

/* How ule_move_from treats the threads of a queue. */
enum ule_move_mode {
	ULE_MOVE_ANY,		/* the first one dst may run */
	ULE_MOVE_SKIP_FIRST,	/* the same, but pass over the first thread of the walk */
	ULE_MOVE_ONLY_FIRST,	/* only that passed-over thread */
};

/*
 * tdq_move's half for one queue of src (bucket b of the calendar): move a
 * thread dst may run to dst, into dst's local queue when dst is this CPU
 * stealing, else into the queue its priority selects on dst (tdq_add), and
 * notify dst as tdq_notify does. 1 if a thread moved, 0 if none did, -1 when
 * the move has looked at ULE_MOVE_SCAN threads. A move fails when src ran or
 * requeued the thread since the walk saw it; then the next one is tried.
 * Not inlined (__noinline): one subprogram for all its call sites.
 */
__hidden __noinline int ule_move_from(u32 q, u32 b, u32 mode)
{
	struct ule_move_ctx *m;
	struct ule_tdq *dtdq;
	struct task_struct *p;
	struct td_sched *ts;
	struct task_ctx *tctx;
	u32 zero = 0;
	s32 src, dst;

	if (!(m = bpf_map_lookup_elem(&ule_move_scratch, &zero)))
		return -1;
	src = m->src;
	dst = m->dst;
	if (src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS || q >= ULE_NR_QUEUES ||
	    !(dtdq = ule_tdq(dst)))
		return -1;
	bpf_for_each(scx_dsq, p, ule_dsq(src, q, b), 0) {
		u32 dq, db = 0;
		bool moved;

		if (++m->looked > ULE_MOVE_SCAN)
			return -1;
		if (mode == ULE_MOVE_SKIP_FIRST && m->skip_first) {
			/* runq_steal_from leaves src the thread it runs next, unless it is the only one. */
			m->skip_first = 0;
			m->first_pid = p->pid;
			m->first_bucket = b;
			continue;
		}
		if (mode == ULE_MOVE_ONLY_FIRST && p->pid != m->first_pid)
			continue;
		if (!bpf_cpumask_test_cpu(dst, p->cpus_ptr) || !(ts = ule_ts(p)) || !(tctx = task_ctx(p)))
			continue;
		dq = ule_queue_of(ts->pri);
		if (m->to_local) {
			moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0);
		} else if (dq == ULE_Q_REALTIME) {
			scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, ule_rt_key(ts->pri, scx_bpf_now(), false));
			moved = scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, 0), 0);
		} else {
			db = dq == ULE_Q_TIMESHARE ? ule_insert_bucket(ts->pri, dtdq->idx, dtdq->ridx, false) : 0;
			moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, db), 0);
		}
		if (!moved) {
			stat_inc(STAT_ULE_MOVE_LOST);
			continue;
		}
		account_task(p, tctx, dst);
		if (!m->to_local) {
			if (dq == ULE_Q_TIMESHARE)
				ule_mark_bucket(dtdq, db);
			/* tdq_notify: an IPI only when the thread may preempt dst's. */
			if (dtdq->curr_pri >= PRI_MIN_IDLE) {
				scx_bpf_kick_cpu(dst, SCX_KICK_IDLE);
			} else if (ule_shouldpreempt(ts->pri, dtdq->curr_pri, true, preempt_thresh)) {
				dtdq->switch_req = ULE_SW_PREEMPT;
				scx_bpf_kick_cpu(dst, SCX_KICK_PREEMPT);
			}
		}
		return 1;
	}
	return 0;
}

/*
 * tdq_move: move one queued thread from src to dst, searched as tdq_steal
 * does: the realtime queue (runq_steal: the first thread dst may run), the
 * calendar from ridx (runq_steal_from: the same, but src keeps the thread it
 * runs next unless no other will do), then the idle queue. Returns 1 if a
 * thread moved. Nothing is counted until a move has landed. Looks at
 * ULE_MOVE_SCAN queued threads at most: a queue of threads pinned to src
 * (figure 6's first seconds) is not walked whole at every attempt.
 */
__hidden __noinline int ule_move_one(s32 src, s32 dst, u32 to_local, u32 kind)
{
	struct ule_move_ctx *m;
	struct ule_tdq *stdq = ule_tdq(src);
	u32 i, b, zero = 0, looked;
	int ret;

	if (!stdq || kind >= NR_COSTS || !(m = bpf_map_lookup_elem(&ule_move_scratch, &zero)))
		return 0;
	m->src = src;
	m->dst = dst;
	m->to_local = to_local;
	m->kind = kind;
	m->looked = 0;
	m->skip_first = 1;
	m->first_pid = -1;
	ret = ule_move_from(ULE_Q_REALTIME, 0, ULE_MOVE_ANY);
	bpf_for(i, 0, RQ_NQS) {
		if (ret)
			break;
		b = (stdq->ridx + i) % RQ_NQS;
		if (ule_bucket_maybe(src, stdq, b))
			ret = ule_move_from(ULE_Q_TIMESHARE, b, ULE_MOVE_SKIP_FIRST);
	}
	if (!ret && m->first_pid >= 0)
		ret = ule_move_from(ULE_Q_TIMESHARE, m->first_bucket, ULE_MOVE_ONLY_FIRST);
	if (!ret)
		ret = ule_move_from(ULE_Q_IDLE, 0, ULE_MOVE_ANY);
	looked = m->looked;
	cost_visit(kind, looked > ULE_MOVE_SCAN ? ULE_MOVE_SCAN : looked);
	return ret > 0;
}

/*
 * sched_highest over topo_cpus[first..first+nr) (a core or an LLC): the
 * most loaded CPU with at least minload threads and a queued one, not self.
 */
static s32 ule_highest_in(s32 self, u32 first, u32 nr, s32 minload)
{
	s32 cpu, load, best = -1, best_load = -1;
	u32 i;

	bpf_for(i, 0, nr) {
		if (i >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + i);
		if (cpu == self)
			continue;
		load = ule_load(cpu);
		if (load < minload || ule_transferable(cpu) <= 0)
			continue;
		if (load > best_load || (load == best_load && (bpf_get_prandom_u32() & 1))) {
			best_load = load;
			best = cpu;
		}
	}
	cost_visit(COST_DISPATCH, nr);
	return best;
}

/* The LLC with the most threads per CPU among first..first+nr, other than `skip`. */
static u32 ule_busiest_llc(u32 first, u32 nr, u32 skip)
{
	u32 i, best = ~0U;
	u64 score, best_score = 0;
	struct dom_stat *ds;

	bpf_for(i, 0, nr) {
		if (i >= MAX_CPUS || first + i == skip)
			continue;
		ds = llc_stat_of(first + i);
		if (!ds->nr_cpus || ds->nr_running <= ds->nr_cpus)
			continue;	/* nobody there has a thread to spare */
		score = (u64)ds->nr_running * ULE_LOAD_SCALE / ds->nr_cpus;
		if (score > best_score) {
			best_score = score;
			best = first + i;
		}
	}
	cost_visit(COST_DISPATCH, nr);
	return best;
}

/*
 * tdq_idled: a CPU with nothing to run steals one thread, closest domain
 * first (sched_highest up the tree): its core, its LLC, then the busiest
 * other LLC of its node, then the busiest LLC of the machine.
 */
__hidden __noinline int ule_steal(s32 cpu)
{
	u32 level, llc, own;
	s32 src;

	if (cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	own = llc_of(cpu);
	bpf_for(level, DOM_SMT, NR_DOM_LEVELS) {
		if (level == DOM_SMT) {
			if (!dom_active[DOM_SMT])
				continue;
			src = ule_highest_in(cpu, core_first[cpu_idx(cpu)], core_nr[cpu_idx(cpu)], steal_thresh);
			if (src >= 0 && ule_move_one(src, cpu, 1, COST_DISPATCH)) {
				stat_inc(STAT_ULE_STEAL);
				return 1;
			}
			continue;
		}
		if (level == DOM_LLC)
			llc = own;
		else if (level == DOM_NODE)
			llc = ule_busiest_llc(node_first_llc[node_of(cpu) & (MAX_CPUS - 1)],
					      node_nr_llcs[node_of(cpu) & (MAX_CPUS - 1)], own);
		else
			llc = ule_busiest_llc(0, nr_llcs, own);
		if (llc == ~0U)
			continue;
		src = ule_highest_in(cpu, llc_first[llc & (MAX_CPUS - 1)], llc_nr[llc & (MAX_CPUS - 1)], steal_thresh);
		if (src < 0)
			continue;
		if (ule_move_one(src, cpu, 1, COST_DISPATCH)) {
			stat_inc(STAT_ULE_STEAL);
			return 1;
		}
	}
	return 0;
}

#define BAL_M	(MAX_CPUS - 1)

/* Sift position root down the max-heap key[0..n) of the balancer's scratch (heapsort's step). */
__hidden __noinline int ule_sift(u32 root, u32 n)
{
	struct ule_balance_scratch *b;
	u32 zero = 0, step, child, r, c;
	u64 k;

	if (!(b = bpf_map_lookup_elem(&ule_bal_scratch, &zero)))
		return 0;
	b->root = root;
	bpf_for(step, 0, 12) {	/* log2(MAX_CPUS) + 2 levels at most */
		r = b->root & BAL_M;
		child = 2 * r + 1;
		if (child >= n)
			break;
		if (child + 1 < n && b->key[(child + 1) & BAL_M] > b->key[child & BAL_M])
			child++;
		child &= BAL_M;
		if (b->key[r] >= b->key[child])
			break;
		k = b->key[r];
		b->key[r] = b->key[child];
		b->key[child] = k;
		c = b->cpu[r];
		b->cpu[r] = b->cpu[child];
		b->cpu[child] = c;
		b->root = child;
	}
	return 0;
}

/*
 * sched_balance_group over the machine, by the balancer timer. FreeBSD
 * repeats: the most loaded CPU not yet used gives one queued thread to the
 * least loaded one with fewer threads (so CPUs with k+1 and k threads trade
 * one at every pass: threads that don't divide evenly rotate); a receiver
 * that may run none of its threads is skipped for that donor; a CPU gives or
 * gets one thread per pass. FreeBSD searches every CPU for each pair (N^2 per pass);
 * here the CPUs are sorted once by thread count (heapsort, N log N) and
 * paired from both ends, so a pass costs N log N plus ULE_BAL_TRIES
 * receivers per donor. The counts are those of the pass's start.
 */
__hidden __noinline int ule_balance_pass(void)
{
	struct ule_balance_scratch *b;
	u32 zero = 0, i, round, k, h, j, end;
	u64 hload, lload, tmp;

	if (!(b = bpf_map_lookup_elem(&ule_bal_scratch, &zero)))
		return 0;
	stat_inc(STAT_ULE_BAL_PASS);
	b->n = 0;
	bpf_for(i, 0, nr_cpus) {
		s32 cpu = topo_cpu(i);

		b->key[b->n & BAL_M] = ((u64)ule_load(cpu) << 32) | bpf_get_prandom_u32();
		b->cpu[b->n & BAL_M] = cpu;
		b->used[b->n & BAL_M] = 0;
		b->n++;
	}
	if (b->n < 2 || b->n > MAX_CPUS)
		return 0;
	/* Heapsort, ascending: least loaded first. */
	bpf_for(i, 0, b->n / 2)
		ule_sift(b->n / 2 - 1 - i, b->n);
	bpf_for(i, 0, b->n - 1) {
		end = (b->n - 1 - i) & BAL_M;
		tmp = b->key[0];
		b->key[0] = b->key[end];
		b->key[end] = tmp;
		k = b->cpu[0];
		b->cpu[0] = b->cpu[end];
		b->cpu[end] = k;
		ule_sift(0, end);
	}
	/* The sort: 1.5 N sifts of log N steps each, counted as one visit per sift. */
	cost_visit(COST_BALANCE, b->n * 5 / 2);

	/* Donors from the top, receivers from the bottom. */
	b->lo = 0;
	b->moves = 0;
	bpf_for(round, 0, b->n) {
		h = (b->n - 1 - round) & BAL_M;
		if (h <= b->lo)
			break;
		if (b->used[h])
			continue;
		hload = b->key[h] >> 32;
		if (hload < 2)
			break;			/* nobody has a thread to spare */
		cost_visit(COST_BALANCE, 1);
		if (ule_transferable(b->cpu[h]) <= 0)
			continue;
		b->moved = 0;
		b->anylow = 1;
		b->tries = 0;
		bpf_for(j, b->lo, h) {
			if (b->used[j & BAL_M])
				continue;
			lload = b->key[j & BAL_M] >> 32;
			if (!ule_balance_pair_ok(hload, lload) || b->tries >= ULE_BAL_TRIES)
				break;		/* sorted: nobody further up is low enough */
			b->tries++;
			cost_visit(COST_BALANCE, 1);
			if (ule_move_one(b->cpu[h], b->cpu[j & BAL_M], 0, COST_BALANCE)) {
				b->used[j & BAL_M] = 1;
				b->used[h] = 1;
				b->moves++;
				b->moved = 1;
				stat_inc(STAT_ULE_BAL_MOVE);
				if (hload == lload + 1)
					stat_inc(STAT_ULE_BAL_ROTATE);
				break;
			}
			b->anylow = 0;	/* may not run any of h's threads: the next receiver */
		}
		if (!b->moved && b->anylow)
			break;			/* nobody has fewer threads than the donor: balanced */
		bpf_for(j, b->lo, h) {
			if (!b->used[j & BAL_M])
				break;
			b->lo = j + 1;
		}
	}
	return b->moves;
}

/* The balancer timer: a pass, then the next one in 0.5 to 1.5 balance_interval. */
static int ule_balance_timer_fn(void *map, int *key, struct ule_timer *t)
{
	u64 ms;

	if (rebalance) {
		cost_begin(COST_BALANCE);
		ule_balance_pass();
		cost_end(COST_BALANCE);
	}
	ms = balance_interval_ms / 2 + bpf_get_prandom_u32() % (balance_interval_ms ? balance_interval_ms : 1);
	bpf_timer_start(&t->timer, (ms ? ms : 1) * 1000000ULL, BPF_F_TIMER_CPU_PIN);
	return 0;
}

u32 ule_timer_armed;	/* not static: clang would shrink it to one byte, which BTF refuses */

/*
 * Arm the balancer timer on the balancer CPU, the first time that CPU
 * passes here: BPF_F_TIMER_CPU_PIN keeps it there, as FreeBSD runs the
 * balancer on CPU 0 (ops.init may run on any CPU).
 */
static __always_inline void ule_arm_balancer(s32 cpu)
{
	struct ule_timer *t;
	u32 zero = 0;

	if (!rebalance || cpu != (s32)ule_balancer_cpu || ule_timer_armed)
		return;
	if (!(t = bpf_map_lookup_elem(&ule_timers, &zero)))
		return;
	ule_timer_armed = 1;
	bpf_timer_start(&t->timer, (u64)balance_interval_ms * 1000000ULL, BPF_F_TIMER_CPU_PIN);
}

/* The per-queue thread counts --stats shows, taken on the CPU itself. */
static void ule_snapshot(s32 cpu, struct ule_tdq *tdq)
{
	s32 ts_nr = 0;
	u32 b;

	if (tdq->bucket_mask) {
		bpf_for(b, 0, RQ_NQS) {
			if (tdq->bucket_mask & (1ULL << b))
				ts_nr += scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b));
		}
	}
	tdq->nr_queued[ULE_Q_REALTIME] = scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_REALTIME, 0));
	tdq->nr_queued[ULE_Q_TIMESHARE] = ts_nr;
	tdq->nr_queued[ULE_Q_IDLE] = scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_IDLE, 0));
}

/* The calendar and queues of a CPU, for the kernel's exit dump. */
static void ule_dump_cpu(struct scx_dump_ctx *dctx, s32 cpu)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	if (!tdq)
		return;
	ule_snapshot(cpu, tdq);
	scx_bpf_dump("ule: load=%d curr_pri=%u idx=%u ridx=%u bucket_mask=0x%llx",
		     ule_load(cpu), tdq->curr_pri, tdq->idx, tdq->ridx, tdq->bucket_mask);
	scx_bpf_dump(" rt=%d ts=%d idle=%d\n", tdq->nr_queued[ULE_Q_REALTIME],
		     tdq->nr_queued[ULE_Q_TIMESHARE], tdq->nr_queued[ULE_Q_IDLE]);
}

/*
 * The FIFO queue (priority / RQ_PPQ) at the head of the realtime queue; ~0 if
 * empty, or if the CPU was offline at load and has no queues (a peek at a
 * missing queue is an error that ends the scheduler).
 */
static __always_inline u32 ule_rt_head_queue(s32 cpu)
{
	struct task_struct *p;

	if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return ~0U;
	p = __COMPAT_scx_bpf_dsq_peek(ule_dsq(cpu, ULE_Q_REALTIME, 0));

	return p ? ule_rt_key_queue(p->scx.dsq_vtime) : ~0U;
}

/* Circular distance of calendar bucket b from the removal index. */
static __always_inline u32 ule_from_ridx(struct ule_tdq *tdq, u32 b)
{
	return (b + RQ_NQS - tdq->ridx % RQ_NQS) % RQ_NQS;
}

/*
 * sched_switch for a thread leaving its CPU still runnable, after `ran` ns
 * more of its slice: preempted (the rest of its slice, at the head),
 * rescheduled (the rest, at its place) or at its slice's end (a fresh
 * slice). Consumes the CPU's switch request.
 */
static __always_inline void ule_switch_out(struct td_sched *ts, struct ule_tdq *tdq, u64 ran, bool slice_left)
{
	u32 kind;

	ts->slice_used += ran;
	kind = ule_switch_kind(tdq->switch_req, ts->slice_end);
	if (ule_switch_fresh(kind, ts->slice_end, slice_left))
		ts->slice_used = 0;
	ts->slice_end = 0;
	tdq->switch_req = ULE_SW_SLICEEND;
	ts->preempted = kind == ULE_SW_PREEMPT;
}

/*
 * ops.dispatch runs before a still-runnable prev is queued again. ULE would
 * queue it (sched_switch) and then choose (tdq_choose): keep prev when it
 * would be chosen first, and charge what it ran now, since it does not stop.
 */
static bool ule_keep_prev(s32 cpu, struct task_struct *prev, struct ule_tdq *tdq)
{
	struct td_sched *ts;
	struct task_ctx *tctx;
	u64 now = scx_bpf_now(), ran = 0, slice;
	u32 q, rt_head, pq, b, first, kind;
	bool keep, head;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || !(ts = ule_ts(prev)) ||
	    !(tctx = task_ctx(prev)))
		return false;
	ran = task_restart_run(tctx, now);
	ule_charge(prev, ts, ran);
	ts->slice_used += ran;	/* ops.stopping adds only what runs from now on */
	slice = ule_cpu_slice(cpu);
	kind = ule_switch_kind(tdq->switch_req, ts->slice_end);
	head = kind == ULE_SW_PREEMPT;
	q = ule_queue_of(ts->pri);
	rt_head = ule_rt_head_queue(cpu);
	if (q == ULE_Q_REALTIME) {
		pq = ts->pri / RQ_PPQ;
		keep = pq < rt_head || (head && pq == rt_head);
	} else if (rt_head != ~0U) {
		keep = false;
	} else if (q == ULE_Q_TIMESHARE) {
		b = ule_insert_bucket(ts->pri, tdq->idx, tdq->ridx, head);
		first = ule_first_bucket(cpu, tdq, tdq->ridx);
		keep = first >= RQ_NQS || ule_from_ridx(tdq, b) < ule_from_ridx(tdq, first) ||
		       (head && b == first);
	} else {
		keep = ule_first_bucket(cpu, tdq, 0) >= RQ_NQS &&
		       (head || !scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_IDLE, 0)));
	}
	if (!keep)
		return false;	/* ops.stopping decides the same with the same numbers */
	stat_inc(STAT_ULE_KEEP_PREV);
	ule_switch_out(ts, tdq, 0, prev->scx.slice > 0);
	ts->preempted = 0;
	prev->scx.slice = slice > ts->slice_used + HZ_TICK_NS ? slice - ts->slice_used : HZ_TICK_NS;
	tdq->curr_pri = ts->pri;
	return true;
}

/*
 * tdq_choose from the calendar: the first non-empty bucket from ridx. A
 * bucket whose thread was taken meanwhile (by a stealer) is passed over.
 * The removal index moves as runq_remove_idx moves it, also for the
 * removals other CPUs made (a stealer does not touch this CPU's indices).
 */
static bool ule_dispatch_timeshare(s32 cpu, struct ule_tdq *tdq)
{
	u32 i, b, ridx = tdq->ridx % RQ_NQS;

	if (!ule_bucket_busy(cpu, tdq, ridx))
		tdq->ridx = ridx = ule_ridx_after_remove(ridx, tdq->idx, ridx, true);
	if (!tdq->bucket_mask)
		return false;
	bpf_for(i, 0, RQ_NQS) {
		b = (ridx + i) % RQ_NQS;
		if (!ule_bucket_busy(cpu, tdq, b))
			continue;
		if (scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_TIMESHARE, b), 0)) {
			tdq->ridx = ule_ridx_after_remove(b, tdq->idx, ridx,
				!scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b)));
			return true;
		}
	}
	return false;
}

/*
 * The starvation guard: run the longest-waiting thread of this CPU's queues
 * if it has waited ule_starve_ns, whatever its queue and priority. Looks
 * every ULE_STARVE_SCAN_NS, and at every dispatch while it keeps finding
 * some; oldest first, so a backlog of starving threads drains in order. It
 * looks at the head of each FIFO queue and ULE_STARVE_SCAN threads at the
 * tail of the realtime queue, not at every queued thread.
 * Not inlined (__noinline): one subprogram for all its call sites.
 */
__hidden __noinline int ule_rescue_starved(s32 cpu)
{
	struct ule_tdq *tdq = ule_tdq(cpu);
	struct task_struct *p;
	struct td_sched *ts;
	u64 now = scx_bpf_now(), oldest = 0;
	u32 q, i, b, nb, found_q = 0, found_b = 0;
	s32 found_pid = -1;

	if (!tdq || !ule_starve_ns || time_before(now, tdq->starve_scan_at))
		return 0;
	bpf_for(q, 0, ULE_NR_QUEUES) {
		nb = q == ULE_Q_TIMESHARE ? RQ_NQS : 1;
		bpf_for(i, 0, nb) {
			u32 looked = 0;

			b = i;
			if (q == ULE_Q_TIMESHARE && !(tdq->bucket_mask & (1ULL << (b % RQ_NQS))))
				continue;
			/*
			 * FIFO queues: the head waited longest. The realtime queue
			 * is by priority: its tail, the worst, is where threads wait.
			 */
			bpf_for_each(scx_dsq, p, ule_dsq(cpu, q, b), q == ULE_Q_REALTIME ? SCX_DSQ_ITER_REV : 0) {
				if (++looked > (q == ULE_Q_REALTIME ? ULE_STARVE_SCAN : 1))
					break;
				if (!(ts = ule_ts(p)) || now - ts->queued_at < ule_starve_ns)
					continue;
				if (found_pid < 0 || ts->queued_at < oldest) {
					oldest = ts->queued_at;
					found_pid = p->pid;
					found_q = q;
					found_b = b;
				}
			}
			cost_visit(COST_DISPATCH, looked);
		}
	}
	if (found_pid < 0) {
		tdq->starve_scan_at = now + ULE_STARVE_SCAN_NS;
		return 0;
	}
	bpf_for_each(scx_dsq, p, ule_dsq(cpu, found_q, found_b), found_q == ULE_Q_REALTIME ? SCX_DSQ_ITER_REV : 0) {
		if (p->pid != found_pid)
			continue;
		if (scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0)) {
			stat_inc(STAT_ULE_STARVE);
			if ((ts = ule_ts(p))) {
				ts->starved++;
				ule_note_task(p, ts);
			}
			return 1;
		}
		break;
	}
	return 0;
}

static void ule_dispatch_work(s32 cpu, struct task_struct *prev, struct ule_tdq *tdq)
{
	if (ule_rescue_starved(cpu))
		return;
	if (ule_keep_prev(cpu, prev, tdq))
		return;
	if (scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_REALTIME, 0), 0) ||
	    ule_dispatch_timeshare(cpu, tdq) ||
	    scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_IDLE, 0), 0)) {
		stat_inc(STAT_DSQ_MOVE);
		return;
	}
	/*
	 * The thread that beat prev was stolen meanwhile: prev goes on. (With
	 * SCX_ENQ_LAST the kernel would queue it again anyway.)
	 */
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED)) {
		prev->scx.slice = sched_slice_min_ns;
		return;
	}
	ule_snapshot(cpu, tdq);
	if (steal_idle)
		ule_steal(cpu);
}

static void ule_dispatch(s32 cpu, struct task_struct *prev)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	/* A CPU that came online after the load has no queues: the restart is on its way. */
	if (!tdq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	ule_arm_balancer(cpu);
	cost_begin(COST_DISPATCH);
	ule_dispatch_work(cpu, prev, tdq);
	cost_end(COST_DISPATCH);
}

/*
 * sched_clock, at every tick of the running thread: its slice against the
 * CPU's current tdq_slice (threads arriving shorten a hog's slice, threads
 * leaving lengthen it), and once per stathz tick the calendar's step.
 */
static void ule_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	u64 now = scx_bpf_now(), used, slice;
	u32 idx, ridx;

	if (!tdq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	ule_arm_balancer(cpu);
	if (ts && tctx && tctx->last_run_at) {
		used = ts->slice_used + task_ran(tctx, now);
		slice = ule_cpu_slice(cpu);
		if (ule_slice_ended(used, slice)) {
			stat_inc(STAT_ULE_SLICE_END);
			ts->slice_end = 1;
			p->scx.slice = 0;
		} else {
			p->scx.slice = slice - used;
		}
	}
	/* sched_setpreempt's TDF_NEEDRESCHED: an interactive thread waits behind a batch one. */
	if (tdq->curr_pri > PRI_MAX_INTERACT && scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_REALTIME, 0)) > 0) {
		if (tdq->switch_req < ULE_SW_NEEDRESCHED)
			tdq->switch_req = ULE_SW_NEEDRESCHED;
		p->scx.slice = 0;
	}
	if (now - tdq->last_stat_tick < STATHZ_TICK_NS)
		return;
	tdq->last_stat_tick = now;
	idx = tdq->idx;
	ridx = tdq->ridx;
	ule_calendar_tick(&idx, &ridx, !scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, ridx % RQ_NQS)));
	tdq->idx = idx;
	tdq->ridx = ridx;
	ule_snapshot(cpu, tdq);
}

static void ule_running(struct task_struct *p)
{
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);
	u64 slice;

	if (!ts || !tdq || !tctx)
		return;
	/* It runs here, whichever CPU counted it last (a stolen thread, a race). */
	account_task(p, tctx, cpu);
	tdq->curr_pri = ts->pri;
	tdq->switch_req = ULE_SW_SLICEEND;
	/*
	 * A thread resuming after a higher sched class (an RT thread) took the
	 * CPU was not queued by us: it goes on with what is left of its slice,
	 * like a thread FreeBSD puts back after a preemption. Refilling it
	 * here would let a batch thread that is preempted often run forever.
	 */
	if (!ts->new_slice)
		return;
	ts->new_slice = 0;
	/*
	 * What is left of its slice (ts_slice counts what it used: a preempted
	 * thread resumes its slice, a new one has only sched_slice_min left);
	 * at least a tick, as sched_clock ends a slice at a tick.
	 */
	slice = ule_cpu_slice(cpu);
	p->scx.slice = slice > ts->slice_used + HZ_TICK_NS ? slice - ts->slice_used : HZ_TICK_NS;
}

static void ule_stopping(struct task_struct *p, u64 ran_ns, bool runnable)
{
	struct td_sched *ts = ule_ts(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);

	if (tdq)
		tdq->curr_pri = PRI_MAX_IDLE;
	if (!ts)
		return;
	ule_charge(p, ts, ran_ns);
	if (!tdq)
		return;
	if (runnable)
		ule_switch_out(ts, tdq, ran_ns, p->scx.slice > 0);
	else
		tdq->switch_req = ULE_SW_SLICEEND;
}

static void ule_runnable(struct task_struct *p, u64 enq_flags)
{
	struct td_sched *ts = ule_ts(p);

	if (ts && (enq_flags & SCX_ENQ_WAKEUP))
		ule_wakeup(p, ts);
}

static void ule_quiescent(struct task_struct *p, u64 deq_flags)
{
	struct td_sched *ts = ule_ts(p);

	if (ts && (deq_flags & SCX_DEQ_SLEEP))
		ts->slept_at = scx_bpf_now();
}

/*
 * A new thread (sched_fork, sched_fork_thread): the parent's %CPU window
 * and its history scaled down; a slice nearly used up, so the first run is
 * sched_slice_min long. The parent pays a stathz tick for the fork and gets
 * its priority again.
 */
static s32 ule_init_task(struct task_struct *p, struct scx_init_task_args *args)
{
	struct td_sched *ts, *pts;
	struct task_struct *parent;
	u64 now = scx_bpf_now();

	ts = bpf_task_storage_get(&td_scheds, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts)
		return -ENOMEM;
	ts->ftick = now;
	ts->ltick = now;
	if (args->fork) {
		parent = bpf_get_current_task_btf();
		pts = ule_ts(parent);
		if (pts) {
			ts->ticks = pts->ticks;
			ts->ftick = pts->ftick;
			ts->ltick = pts->ltick;
			ts->runtime = pts->runtime;
			ts->slptime = pts->slptime;
			ule_interact_fork(&ts->runtime, &ts->slptime);
			pts->runtime += STATHZ_TICK_NS;
			ule_interact_update(&pts->runtime, &pts->slptime);
			ule_priority(parent, pts);
		}
		ts->slice_used = ule_fork_slice_used(ule_cpu_slice(bpf_get_smp_processor_id()),
						     sched_slice_min_ns);
	}
	ule_priority(p, ts);
	return 0;
}

/* sched_exit: an exiting thread's run time is charged to its parent. */
static void ule_disable(struct task_struct *p)
{
	struct td_sched *ts = ule_ts(p), *pts;
	struct task_struct *parent;
	u32 pid = p->pid;

	if (!ts)
		return;
	if (ule_track_tasks)
		bpf_map_delete_elem(&ule_tasks, &pid);
	if (!(p->flags & PF_EXITING))
		return;
	/* A thread charges its process's main thread; a process its parent. */
	parent = p->pid == p->tgid ? p->real_parent : p->group_leader;
	if (parent && parent != p && (pts = bpf_task_storage_get(&td_scheds, parent, 0, 0))) {
		pts->runtime += ts->runtime;
		ule_interact_update(&pts->runtime, &pts->slptime);
		ule_priority(parent, pts);
	}
}

/*
 * One realtime queue, RQ_NQS calendar buckets and one idle queue per online
 * CPU; the balancer's timer, armed later on its CPU.
 */
static s32 ule_init(void)
{
	struct ule_timer *t;
	struct ule_tdq *tdq;
	u32 cpu, q, zero = 0;
	s32 ret;

	if (!(t = bpf_map_lookup_elem(&ule_timers, &zero)))
		return -ENOENT;
	ret = bpf_timer_init(&t->timer, &ule_timers, CLOCK_MONOTONIC);
	if (ret)
		return ret;
	ret = bpf_timer_set_callback(&t->timer, ule_balance_timer_fn);
	if (ret)
		return ret;

	bpf_for(cpu, 0, nr_cpu_ids) {
		if (cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
			continue;
		if ((tdq = ule_tdq(cpu)))
			tdq->curr_pri = PRI_MAX_IDLE;
		bpf_for(q, 0, RQ_NQS + 2) {
			ret = scx_bpf_create_dsq(ULE_DSQ_BASE + (u64)cpu * ULE_DSQ_STRIDE + q,
						 cpu_node_id[cpu_idx(cpu)]);
			if (ret)
				return ret;
		}
	}
	return 0;
}

#endif /* __SCX_BATTLE_ULE_BPF_H */
