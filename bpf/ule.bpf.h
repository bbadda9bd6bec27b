/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ULE policy: FreeBSD's ULE scheduler (sys/kern/sched_ule.c) on
 * sched_ext, with FreeBSD's names for its constants and knobs.
 *
 * Interactivity. Every thread keeps a history of its run time and its
 * voluntary sleep time, capped at SCHED_SLP_RUN_MAX (5 s) and cut to 4/5
 * when it overflows. The score, 0..100, is low for threads that mostly sleep
 * and high for threads that mostly run; a thread whose score plus nice is
 * below `interact` (30) is interactive. A child starts with its parent's
 * history scaled down to SCHED_SLP_RUN_FORK, and an exiting child charges
 * its run time to its parent.
 *
 * Queues. Every CPU has three queues, searched in order. Interactive
 * threads wait in the realtime queue, by priority (120 + score). Batch
 * threads wait in the timeshare calendar: RQ_NQS FIFO buckets used as a
 * circle, a thread being inserted (recent CPU use + nice) buckets after the
 * insertion index `idx` and the CPU draining from the removal index `ridx`;
 * `idx` moves one bucket per stathz tick once `ridx` has caught up, so a
 * batch thread of poor priority is reached in the end. Idle-class threads
 * (SCHED_IDLE) wait in the idle queue. Interactive threads always run
 * first: batch threads can starve, as on FreeBSD.
 *
 * Slices. sched_slice (~94 ms) while the CPU has at most two threads,
 * divided by the count beyond one from there on, never below
 * sched_slice_min (~16 ms). A waking thread preempts the running one only
 * on its own CPU (TDF_NEEDRESCHED) or, remotely, when sched_shouldpreempt
 * allows it: an interactive thread displacing a batch one.
 *
 * Placement and balancing count threads, not load. A waking or new thread
 * goes through sched_pickcpu: its previous CPU if that is idle and the
 * thread ran there within `affinity`, else the least loaded idle CPU of its
 * LLC, else the least loaded CPU running worse priorities, else the least
 * loaded CPU, walking the topology tree by thread count. Only CPU 0
 * balances periodically, every 0.5 to 1.5 balance_interval: each pass
 * pairs the most loaded CPU with the least loaded one and moves one queued
 * thread; a CPU gives or gets one thread per pass. A CPU with nothing to
 * run steals one queued thread from a CPU with at least steal_thresh
 * threads, its core first, then its LLC, node, machine. Running threads
 * never move.
 *
 * Starvation guard (sched_ext only). The kernel's watchdog ends a scheduler
 * that leaves a runnable thread waiting for its timeout. ULE lets
 * batch threads starve behind interactive ones, and new threads inherit
 * their parent's interactivity: 512 spinners forked by a sleepy parent stay
 * interactive for their first ~0.3 s of run time each, and the ones already
 * demoted to batch wait until every other one is. So a thread that has
 * waited ule_starve_ns (half the watchdog timeout by default; the loader
 * sets ULE's to the kernel's maximum, 30 s) runs next, oldest first; the
 * stat ule_starve counts how often ULE's own order would have starved one.
 *
 * sched_ext differences. ULE charges run time at every stathz tick; here it
 * is charged when a thread stops or its slice ends. The balancer is a BPF
 * timer pinned to CPU 0 (the first online CPU), outside any run-queue lock,
 * as FreeBSD runs it from CPU 0's clock interrupt; it is armed the first
 * time CPU 0 ticks or dispatches. tdq_lowpri is approximated by the running
 * thread's priority.
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
 *  - the realtime queue's FIFO order among equal priorities comes from the
 *    clock, not a counter every CPU increments.
 */
#ifndef __SCX_BATTLE_ULE_BPF_H
#define __SCX_BATTLE_ULE_BPF_H

#ifndef SCHED_IDLE
#define SCHED_IDLE		5	/* include/uapi/linux/sched.h */
#endif
#ifndef PF_EXITING
#define PF_EXITING		0x00000004	/* include/linux/sched.h */
#endif

/* Priority bands, sys/sys/priority.h (lower runs first). */
#define PRI_MIN_KERN		80
#define PRI_MIN_TIMESHARE	120
#define PRI_MAX_TIMESHARE	223
#define PRI_MIN_IDLE		224
#define PRI_MAX_IDLE		255
#define SCHED_PRI_NRESV		40	/* nice values: PRIO_MAX - PRIO_MIN */
#define PRI_INTERACT_RANGE	32	/* (timeshare range - NRESV) / 2 */
#define PRI_MIN_INTERACT	PRI_MIN_TIMESHARE
#define PRI_MAX_INTERACT	(PRI_MIN_INTERACT + PRI_INTERACT_RANGE - 1)	/* 151 */
#define PRI_MIN_BATCH		(PRI_MAX_INTERACT + 1)				/* 152 */
#define PRI_MAX_BATCH		PRI_MAX_TIMESHARE
#define PRI_BATCH_RANGE		(PRI_MAX_BATCH - PRI_MIN_BATCH + 1)		/* 72 */
#define SCHED_PRI_NHALF		(SCHED_PRI_NRESV / 2)
#define SCHED_PRI_MIN		(PRI_MIN_BATCH + SCHED_PRI_NHALF)		/* 172 */
#define SCHED_PRI_RANGE		32	/* batch levels spanned by %CPU */

/* Interactivity (sched_interact_score). */
#define SCHED_INTERACT_MAX	100
#define SCHED_INTERACT_HALF	(SCHED_INTERACT_MAX / 2)
#define SCHED_SLP_RUN_MAX	5000000000ULL	/* ns of run+sleep history kept */
#define SCHED_SLP_RUN_FORK	500000000ULL	/* ns of history a child inherits */
#define SCHED_TICK_TARG		10000000000ULL	/* ns, %CPU window */
#define SCHED_TICK_MAX		11000000000ULL	/* ns, window length that triggers a rescale */

#define STATHZ_TICK_NS		7874015ULL	/* ns, one tick of stathz = 127 */
#define HZ_TICK_NS		1000000ULL	/* ns, one tick of hz = 1000 */
#define SCHED_SLICE_MIN_DIVISOR	6	/* sched_slice_min = sched_slice / 6 */
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
	u64	runtime;	/* ns run, interactivity history */
	u64	slptime;	/* ns slept voluntarily, interactivity history */
	u64	ticks;		/* ns run inside the %CPU window */
	u64	ftick;		/* ns, start of the %CPU window */
	u64	ltick;		/* ns, last update of the window */
	u64	slept_at;	/* ns, when it went to sleep; 0 while awake */
	u32	pri;		/* priority, PRI_MIN_TIMESHARE..PRI_MAX_IDLE */
	u32	score;		/* interactivity score */
	u32	first_slice;	/* a new thread's short first slice is due */
	u32	new_slice;	/* queued by ops.enqueue: its next run starts a fresh slice */
	u64	queued_at;	/* ns, when ops.enqueue last queued it */
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

/* Threads a move has looked at (see ule_move_one), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
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

static __always_inline struct td_sched *td_sched(const struct task_struct *p)
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

static __always_inline bool ule_usable(s32 cpu, const struct task_struct *p)
{
	return cpu >= 0 && cpu < MAX_CPUS && cpu_online[cpu_idx(cpu)] &&
	       bpf_cpumask_test_cpu(cpu, p->cpus_ptr);
}

/* tdq_load: threads on the CPU, running or queued. */
static __always_inline s32 tdq_load(s32 cpu)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);

	return cctx ? (s32)cctx->nr_running : 0;
}

/*
 * Queued threads that could move (tdq_transferable): all but the running
 * one. Affinity is checked when a move is tried.
 */
static __always_inline s32 tdq_transferable(s32 cpu)
{
	s32 load = tdq_load(cpu);

	return load > 1 ? load - 1 : 0;
}

/* tdq_lowpri: the best priority on the CPU; the running thread's stands in for it. */
static __always_inline u32 tdq_lowpri(s32 cpu, struct ule_tdq *tdq)
{
	if (tdq->curr_pri <= PRI_MAX_IDLE && tdq->curr_pri < PRI_MIN_IDLE)
		return tdq->curr_pri;
	return tdq_load(cpu) > 0 ? PRI_MIN_BATCH : PRI_MAX_IDLE;
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

/* sched_interact_update: keep the history under SCHED_SLP_RUN_MAX. */
static void sched_interact_update(struct td_sched *ts)
{
	u64 sum = ts->runtime + ts->slptime;

	if (sum < SCHED_SLP_RUN_MAX)
		return;
	/* One huge addition (a long sleep): keep only its side. */
	if (sum > SCHED_SLP_RUN_MAX * 2) {
		if (ts->runtime > ts->slptime) {
			ts->runtime = SCHED_SLP_RUN_MAX;
			ts->slptime = 1;
		} else {
			ts->slptime = SCHED_SLP_RUN_MAX;
			ts->runtime = 1;
		}
		return;
	}
	/* Well over the limit: halve, so the next additions still register. */
	if (sum > SCHED_SLP_RUN_MAX / 5 * 6) {
		ts->runtime /= 2;
		ts->slptime /= 2;
		return;
	}
	ts->runtime = ts->runtime / 5 * 4;
	ts->slptime = ts->slptime / 5 * 4;
}

/* sched_interact_score: 0 (always sleeps) .. 100 (always runs). */
static u32 sched_interact_score(struct td_sched *ts)
{
	u64 div;

	if (sched_interact <= SCHED_INTERACT_HALF && ts->runtime >= ts->slptime)
		return SCHED_INTERACT_HALF;
	if (ts->runtime > ts->slptime) {
		div = ts->runtime / SCHED_INTERACT_HALF;
		div = div ? div : 1;
		return SCHED_INTERACT_HALF + (SCHED_INTERACT_HALF - ts->slptime / div);
	}
	if (ts->slptime > ts->runtime) {
		div = ts->slptime / SCHED_INTERACT_HALF;
		div = div ? div : 1;
		return ts->runtime / div;
	}
	return ts->runtime ? SCHED_INTERACT_HALF : 0;
}

/*
 * sched_pctcpu_update: slide the %CPU window to end now, adding `ran` ns of
 * run time. A window idle for SCHED_TICK_TARG starts over; one grown past
 * SCHED_TICK_MAX keeps the share of its run time that falls in the last
 * SCHED_TICK_TARG.
 */
static void sched_pctcpu_update(struct td_sched *ts, u64 now, u64 ran)
{
	u64 start = now > SCHED_TICK_TARG ? now - SCHED_TICK_TARG : 0;

	if (now - ts->ltick >= SCHED_TICK_TARG) {
		ts->ticks = 0;
		ts->ftick = start;
	} else if (now - ts->ftick >= SCHED_TICK_MAX) {
		u64 span = (ts->ltick - ts->ftick) >> 10, keep = (ts->ltick - start) >> 10;

		/* In units of 1024 ns, so the product stays inside 64 bits. */
		ts->ticks = span ? ((ts->ticks >> 10) * keep / span) << 10 : 0;
		ts->ftick = start;
	}
	ts->ticks += ran;
	ts->ltick = now;
}

static __always_inline s32 task_nice(const struct task_struct *p)
{
	return p->static_prio - 120;	/* DEFAULT_PRIO */
}

/* sched_priority: interactive threads by score, batch ones by %CPU and nice. */
static void sched_priority(const struct task_struct *p, struct td_sched *ts)
{
	s32 score, pri;
	u64 window, pri_ticks;

	ts->score = sched_interact_score(ts);
	if (p->policy == SCHED_IDLE) {
		ts->pri = PRI_MIN_IDLE;
		return;
	}
	score = (s32)ts->score + task_nice(p);
	if (score < 0)
		score = 0;
	if (score < (s32)sched_interact) {
		pri = PRI_MIN_INTERACT + (PRI_INTERACT_RANGE / sched_interact) * score;
		if (pri > PRI_MAX_INTERACT)
			pri = PRI_MAX_INTERACT;
	} else {
		pri = SCHED_PRI_MIN;
		if (ts->ticks) {
			window = ts->ltick - ts->ftick;
			window = window > 1000000000ULL ? window : 1000000000ULL;
			pri_ticks = ts->ticks * SCHED_PRI_RANGE / window;
			pri += pri_ticks < SCHED_PRI_RANGE - 1 ? pri_ticks : SCHED_PRI_RANGE - 1;
		}
		pri += task_nice(p);
		if (pri < PRI_MIN_BATCH)
			pri = PRI_MIN_BATCH;
		if (pri > PRI_MAX_BATCH)
			pri = PRI_MAX_BATCH;
	}
	ts->pri = pri;
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
	__builtin_memcpy(info.comm, p->comm, sizeof(info.comm));
	bpf_map_update_elem(&ule_tasks, &pid, &info, BPF_ANY);
}

/* Charge run time (sched_clock's share of it) and recompute the priority. */
static void ule_charge(struct task_struct *p, struct td_sched *ts, u64 ran)
{
	u64 now = scx_bpf_now();

	ts->runtime += ran;
	sched_interact_update(ts);
	sched_pctcpu_update(ts, now, ran);
	sched_priority(p, ts);
	ule_note_task(p, ts);
}

/* sched_wakeup: credit the voluntary sleep that just ended, if over a tick. */
static void ule_wakeup_credit(struct task_struct *p, struct td_sched *ts)
{
	u64 now = scx_bpf_now();

	if (!ts->slept_at)
		return;
	if (now - ts->slept_at > HZ_TICK_NS) {
		ts->slptime += now - ts->slept_at;
		sched_interact_update(ts);
		sched_pctcpu_update(ts, now, 0);
		sched_priority(p, ts);
		ule_note_task(p, ts);
	}
	ts->slept_at = 0;
}

/* tdq_slice: the slice shrinks as the CPU's thread count grows. */
static __always_inline u64 tdq_slice(s32 cpu)
{
	s32 load = tdq_load(cpu) - 1;

	if (load >= SCHED_SLICE_MIN_DIVISOR)
		return sched_slice_min_ns;
	if (load <= 1)
		return sched_slice_ns;
	return sched_slice_ns / load;
}

/* The calendar bucket a batch thread of priority `pri` is inserted in (tdq_runq_add). */
static __always_inline u32 ule_bucket(struct ule_tdq *tdq, u32 pri)
{
	u32 b = RQ_NQS * (pri - PRI_MIN_BATCH) / PRI_BATCH_RANGE;
	u32 idx = tdq->idx % RQ_NQS, ridx = tdq->ridx % RQ_NQS;

	b = (b + idx) % RQ_NQS;
	/* Never into the bucket being drained: that shortens the circle by one. */
	if (ridx != idx && b == ridx)
		b = (b + RQ_NQS - 1) % RQ_NQS;
	return b;
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
 * The key of the realtime queue: priority first, then arrival time (the low
 * 56 bits of the clock wrap after two years). A clock rather than a shared
 * counter: no cache line every CPU writes on every insert.
 */
#define ULE_RT_PRI_SHIFT	56
static __always_inline u64 ule_rt_key(u32 pri)
{
	return ((u64)pri << ULE_RT_PRI_SHIFT) | (scx_bpf_now() & ((1ULL << ULE_RT_PRI_SHIFT) - 1));
}

/* tdq_runq_add: put a thread in the queue its priority selects on `cpu`. */
static void tdq_runq_add(struct task_struct *p, struct td_sched *ts, s32 cpu, u64 enq_flags)
{
	struct ule_tdq *tdq = ule_tdq(cpu);
	u32 queue = ule_queue_of(ts->pri), b;

	if (!tdq) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_slice_min_ns, enq_flags);
		return;
	}
	b = queue == ULE_Q_TIMESHARE ? ule_bucket(tdq, ts->pri) : 0;
	switch (queue) {
	case ULE_Q_REALTIME:
		stat_inc(STAT_ULE_ENQ_REALTIME);
		scx_bpf_dsq_insert_vtime(p, ule_dsq(cpu, queue, 0), sched_slice_ns,
					 ule_rt_key(ts->pri), enq_flags);
		break;
	case ULE_Q_TIMESHARE:
		stat_inc(STAT_ULE_ENQ_TIMESHARE);
		ule_mark_bucket(tdq, b);
		scx_bpf_dsq_insert(p, ule_dsq(cpu, queue, b), sched_slice_ns, enq_flags);
		break;
	default:
		stat_inc(STAT_ULE_ENQ_IDLE);
		scx_bpf_dsq_insert(p, ule_dsq(cpu, queue, 0), sched_slice_ns, enq_flags);
	}
}

/* sched_shouldpreempt: may a thread of priority pri displace one of cpri? */
static __always_inline bool sched_shouldpreempt(u32 pri, u32 cpri, bool remote)
{
	if (pri >= cpri)
		return false;
	if (cpri >= PRI_MIN_IDLE)
		return true;
	if (!preempt_thresh)
		return false;
	if (pri <= preempt_thresh)
		return true;
	/* Interactive beats batch, but only across CPUs. */
	return remote && pri <= PRI_MAX_INTERACT && cpri > PRI_MAX_INTERACT;
}

/*
 * Is cpu acceptable to sched_lowest: allowed, running worse work than pri?
 * (FreeBSD's maxload filter is always "any" in sched_pickcpu's calls.)
 */
static __always_inline bool ule_acceptable(struct task_struct *p, s32 cpu, s32 pri)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	return tdq && ule_usable(cpu, p) && (pri == ULE_NO_PRI || tdq_lowpri(cpu, tdq) > (u32)pri);
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
		score = (u64)tdq_load(cpu) * ULE_LOAD_SCALE + ULE_PREFER_BONUS + 32 -
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
	return tdq_load(cpu) == 0;
}

/* SCHED_AFFINITY: did the thread run on its CPU within `level` x affinity? */
static __always_inline bool sched_affinity(struct task_ctx *tctx, u32 level)
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
	struct td_sched *ts = td_sched(p);
	struct task_ctx *tctx = task_ctx(p);
	struct ule_tdq *self_tdq;
	s32 cpu = -1, self = bpf_get_smp_processor_id();
	bool prev_ok = ule_usable(prev_cpu, p);

	if (!ts || !tctx)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	ule_wakeup_credit(p, ts);
	sched_priority(p, ts);

	/* Cache-warm and idle: stay (with SMT, the whole core must be idle). */
	if (prev_ok && ule_cpu_idle(prev_cpu) && sched_affinity(tctx, CG_SHARE_L2) &&
	    (!dom_active[DOM_SMT] || ule_core_idle(prev_cpu, COST_SELECT))) {
		stat_inc(STAT_ULE_PICK_PREV);
		return prev_cpu;
	}
	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS && sched_affinity(tctx, CG_SHARE_L3)) {
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
	if (self != cpu && ule_usable(self, p) && (self_tdq = ule_tdq(self)) &&
	    tdq_lowpri(self, self_tdq) > ts->pri && !ule_cpu_idle(cpu) &&
	    tdq_load(self) <= tdq_load(cpu) + 1) {
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
	struct td_sched *ts = td_sched(p);
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
	if (!ule_usable(cpu, p)) {
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
	ule_wakeup_credit(p, ts);
	sched_priority(p, ts);
	account_task(p, tctx, cpu);
	tdq_runq_add(p, ts, cpu, enq_flags);

	/*
	 * A CPU with steal_thresh threads has one to give: wake an idle CPU so
	 * it runs tdq_idled. (FreeBSD's idle CPUs poll; sched_ext's sleep until
	 * kicked, and a widened affinity mask enqueues but wakes nobody.)
	 */
	if (steal_idle && tdq_load(cpu) >= (s32)steal_thresh) {
		s32 idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (idle >= 0)
			scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	}

	/* tdq_notify / sched_setpreempt. */
	if (tdq->curr_pri >= PRI_MIN_IDLE) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	} else if ((enq_flags & SCX_ENQ_WAKEUP) && ts->pri < tdq->curr_pri &&
	    (cpu == bpf_get_smp_processor_id() ||
	     sched_shouldpreempt(ts->pri, tdq->curr_pri, true))) {
		stat_inc(STAT_KICK_PREEMPT);
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	}
}

/*
 * Move one queued thread from src's queues, searched as tdq_steal does
 * (realtime, then the calendar from ridx, then idle), to dst: into dst's
 * local queue when dst is this CPU stealing (to_local), else into the
 * queue its priority selects on dst. Returns 1 if a thread moved. A move
 * fails when src ran or requeued the thread since the search saw it; then
 * the next one is tried. Nothing is counted until a move has landed. Looks
 * at ULE_MOVE_SCAN queued threads at most: a queue of threads pinned to src
 * (figure 6's first seconds) is not walked whole at every attempt.
 */
__hidden __noinline int ule_move_one(s32 src, s32 dst, u32 to_local, u32 kind)
{
	struct ule_tdq *stdq = ule_tdq(src), *dtdq = ule_tdq(dst);
	struct task_struct *p;
	struct td_sched *ts;
	struct task_ctx *tctx;
	u32 q, i, b, nb, zero = 0, *looked_p = bpf_map_lookup_elem(&ule_move_scratch, &zero);
	u32 looked;

	if (!stdq || !dtdq || !looked_p || src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS ||
	    kind >= NR_COSTS)
		return 0;
	*looked_p = 0;
	bpf_for(q, 0, ULE_NR_QUEUES) {
		nb = q == ULE_Q_TIMESHARE ? RQ_NQS : 1;
		bpf_for(i, 0, nb) {
			b = q == ULE_Q_TIMESHARE ? (stdq->ridx + i) % RQ_NQS : 0;
			if (q == ULE_Q_TIMESHARE && !ule_bucket_maybe(src, stdq, b))
				continue;
			bpf_for_each(scx_dsq, p, ule_dsq(src, q, b), 0) {
				u32 dq, db = 0;
				bool moved;

				/* Counted in map memory, untracked: one verifier state per turn, not per count. */
				if (++*looked_p > ULE_MOVE_SCAN) {
					cost_visit(kind, ULE_MOVE_SCAN);
					return 0;
				}
				if (!bpf_cpumask_test_cpu(dst, p->cpus_ptr) ||
				    !(ts = td_sched(p)) || !(tctx = task_ctx(p)))
					continue;
				dq = ule_queue_of(ts->pri);
				if (to_local) {
					moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0);
				} else if (dq == ULE_Q_REALTIME) {
					scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, ule_rt_key(ts->pri));
					moved = scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, 0), 0);
				} else {
					db = dq == ULE_Q_TIMESHARE ? ule_bucket(dtdq, ts->pri) : 0;
					moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, db), 0);
				}
				if (!moved) {
					stat_inc(STAT_ULE_MOVE_LOST);
					continue;
				}
				account_task(p, tctx, dst);
				if (!to_local) {
					if (dq == ULE_Q_TIMESHARE)
						ule_mark_bucket(dtdq, db);
					scx_bpf_kick_cpu(dst, SCX_KICK_IDLE);
				}
				looked = *looked_p;
				cost_visit(kind, looked);
				return 1;
			}
		}
	}
	looked = *looked_p;
	cost_visit(kind, looked);
	return 0;
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
		load = tdq_load(cpu);
		if (load < minload || tdq_transferable(cpu) <= 0)
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
 * least loaded one at least two threads below it; a receiver that may run
 * none of its threads is skipped for that donor; a CPU gives or gets one
 * thread per pass. FreeBSD searches every CPU for each pair (N^2 per pass);
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

		b->key[b->n & BAL_M] = ((u64)tdq_load(cpu) << 32) | bpf_get_prandom_u32();
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
		if (tdq_transferable(b->cpu[h]) <= 0)
			continue;
		b->moved = 0;
		b->anylow = 1;
		b->tries = 0;
		bpf_for(j, b->lo, h) {
			if (b->used[j & BAL_M])
				continue;
			lload = b->key[j & BAL_M] >> 32;
			if (lload + 2 > hload || b->tries >= ULE_BAL_TRIES)
				break;		/* sorted: nobody further up is low enough */
			b->tries++;
			cost_visit(COST_BALANCE, 1);
			if (ule_move_one(b->cpu[h], b->cpu[j & BAL_M], 0, COST_BALANCE)) {
				b->used[j & BAL_M] = 1;
				b->used[h] = 1;
				b->moves++;
				b->moved = 1;
				stat_inc(STAT_ULE_BAL_MOVE);
				break;
			}
			b->anylow = 0;	/* may not run any of h's threads: the next receiver */
		}
		if (!b->moved && b->anylow)
			break;			/* the least loaded is not two below: balanced */
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
		     tdq_load(cpu), tdq->curr_pri, tdq->idx, tdq->ridx, tdq->bucket_mask);
	scx_bpf_dump(" rt=%d ts=%d idle=%d\n", tdq->nr_queued[ULE_Q_REALTIME],
		     tdq->nr_queued[ULE_Q_TIMESHARE], tdq->nr_queued[ULE_Q_IDLE]);
}

/* The head of a queue, as its priority; PRI_MAX_IDLE + 1 if empty. */
static __always_inline u32 ule_rt_head_pri(s32 cpu)
{
	struct task_struct *p;
	u32 pri = PRI_MAX_IDLE + 1;

	bpf_for_each(scx_dsq, p, ule_dsq(cpu, ULE_Q_REALTIME, 0), 0) {
		pri = p->scx.dsq_vtime >> ULE_RT_PRI_SHIFT;
		break;
	}
	return pri;
}

/*
 * ops.dispatch runs before a still-runnable prev is queued again. ULE would
 * queue it and then choose: keep prev when it would be chosen first, and
 * charge the slice it used now, since it does not stop.
 */
static bool ule_keep_prev(s32 cpu, struct task_struct *prev, struct ule_tdq *tdq)
{
	struct td_sched *ts;
	struct task_ctx *tctx;
	u64 now = scx_bpf_now();
	u32 q, rt_head, b, first;
	bool keep;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || !(ts = td_sched(prev)) ||
	    !(tctx = task_ctx(prev)))
		return false;
	if (tctx->last_run_at && !time_before(now, tctx->last_run_at)) {
		ule_charge(prev, ts, now - tctx->last_run_at);
		tctx->last_run_at = now;
	}
	q = ule_queue_of(ts->pri);
	rt_head = ule_rt_head_pri(cpu);
	if (q == ULE_Q_REALTIME) {
		keep = ts->pri < rt_head;
	} else if (rt_head <= PRI_MAX_IDLE) {
		keep = false;
	} else if (q == ULE_Q_TIMESHARE) {
		b = ule_bucket(tdq, ts->pri);
		first = ule_first_bucket(cpu, tdq, tdq->ridx);
		keep = first >= RQ_NQS ||
		       (b + RQ_NQS - tdq->ridx % RQ_NQS) % RQ_NQS < (first + RQ_NQS - tdq->ridx % RQ_NQS) % RQ_NQS;
	} else {
		keep = ule_first_bucket(cpu, tdq, 0) >= RQ_NQS &&
		       !scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_IDLE, 0));
	}
	if (!keep)
		return false;
	stat_inc(STAT_ULE_KEEP_PREV);
	prev->scx.slice = tdq_slice(cpu);
	tdq->curr_pri = ts->pri;
	return true;
}

/*
 * tdq_choose from the calendar: the first non-empty bucket from ridx. A
 * bucket whose thread was taken meanwhile (by a stealer) is passed over.
 */
static bool ule_dispatch_timeshare(s32 cpu, struct ule_tdq *tdq)
{
	u32 i, b, ridx = tdq->ridx % RQ_NQS;

	if (!tdq->bucket_mask)
		return false;
	bpf_for(i, 0, RQ_NQS) {
		b = (ridx + i) % RQ_NQS;
		if (!ule_bucket_busy(cpu, tdq, b))
			continue;
		if (scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_TIMESHARE, b), 0)) {
			/* runq_remove_idx: the drained removal bucket passes ridx on. */
			if (b == ridx && !scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b)))
				tdq->ridx = (b + 1) % RQ_NQS;
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
 * Global, so the verifier checks it once.
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
				if (!(ts = td_sched(p)) || now - ts->queued_at < ule_starve_ns)
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

	if (!tdq || cpu < 0 || cpu >= MAX_CPUS)
		return;
	ule_arm_balancer(cpu);
	cost_begin(COST_DISPATCH);
	ule_dispatch_work(cpu, prev, tdq);
	cost_end(COST_DISPATCH);
}

/*
 * sched_clock's calendar step, once per stathz tick: the insertion index
 * moves on once the removal index has caught up with it, and the removal
 * index follows when its bucket is empty.
 */
static void ule_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);
	u64 now = scx_bpf_now();
	u32 idx, ridx;

	if (!tdq)
		return;
	ule_arm_balancer(cpu);
	/* sched_setpreempt's TDF_NEEDRESCHED: an interactive thread waits behind a batch one. */
	if (tdq->curr_pri > PRI_MAX_INTERACT && scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_REALTIME, 0)) > 0)
		p->scx.slice = 0;
	if (now - tdq->last_stat_tick < STATHZ_TICK_NS)
		return;
	tdq->last_stat_tick = now;
	idx = tdq->idx % RQ_NQS;
	ridx = tdq->ridx % RQ_NQS;
	if (idx == ridx)
		tdq->idx = idx = (idx + 1) % RQ_NQS;
	/*
	 * FreeBSD does this only in the branch above. Doing it always also pulls
	 * back a removal index that drained past the insertion index, which
	 * would otherwise wait a whole turn of the circle for it.
	 */
	if (!scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, ridx)))
		tdq->ridx = idx;
	ule_snapshot(cpu, tdq);
}

static void ule_running(struct task_struct *p)
{
	struct td_sched *ts = td_sched(p);
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);
	u64 slice;

	if (!ts || !tdq || !tctx)
		return;
	/* It runs here, whichever CPU counted it last (a stolen thread, a race). */
	account_task(p, tctx, cpu);
	tdq->curr_pri = ts->pri;
	/*
	 * A thread resuming after a higher sched class (an RT thread) took the
	 * CPU was not queued by us: it goes on with what is left of its slice,
	 * like a thread FreeBSD puts back after a preemption. Refilling it
	 * here would let a batch thread that is preempted often run forever.
	 */
	if (!ts->new_slice)
		return;
	ts->new_slice = 0;
	slice = tdq_slice(cpu);
	/* A new thread's first slice is short, to learn its interactivity soon. */
	if (ts->first_slice) {
		ts->first_slice = 0;
		slice = slice > sched_slice_min_ns ? slice - sched_slice_min_ns : slice;
		slice = slice > sched_slice_min_ns ? slice : sched_slice_min_ns;
	}
	p->scx.slice = slice;
}

static void ule_stopping(struct task_struct *p, u64 ran_ns)
{
	struct td_sched *ts = td_sched(p);
	struct ule_tdq *tdq = ule_tdq(scx_bpf_task_cpu(p));

	if (tdq)
		tdq->curr_pri = PRI_MAX_IDLE;
	if (ts)
		ule_charge(p, ts, ran_ns);
}

static void ule_runnable(struct task_struct *p, u64 enq_flags)
{
	struct td_sched *ts = td_sched(p);

	if (ts && (enq_flags & SCX_ENQ_WAKEUP))
		ule_wakeup_credit(p, ts);
}

static void ule_quiescent(struct task_struct *p, u64 deq_flags)
{
	struct td_sched *ts = td_sched(p);

	if (ts && (deq_flags & SCX_DEQ_SLEEP))
		ts->slept_at = scx_bpf_now();
}

/* A new thread: sched_fork_thread's inherited, scaled-down history. */
static s32 ule_init_task(struct task_struct *p, struct scx_init_task_args *args)
{
	struct td_sched *ts, *pts;
	struct task_struct *parent;
	u64 now = scx_bpf_now(), sum, ratio;

	ts = bpf_task_storage_get(&td_scheds, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts)
		return -ENOMEM;
	ts->ftick = now;
	ts->ltick = now;
	if (args->fork) {
		parent = bpf_get_current_task_btf();
		pts = td_sched(parent);
		if (pts) {
			ts->runtime = pts->runtime;
			ts->slptime = pts->slptime;
			sum = ts->runtime + ts->slptime;
			if (sum > SCHED_SLP_RUN_FORK) {
				ratio = sum / SCHED_SLP_RUN_FORK;
				ts->runtime /= ratio;
				ts->slptime /= ratio;
			}
			/* The parent pays one tick for the fork. */
			pts->runtime += STATHZ_TICK_NS;
			sched_interact_update(pts);
		}
		ts->first_slice = 1;
	}
	sched_priority(p, ts);
	return 0;
}

/* sched_exit: an exiting thread's run time is charged to its parent. */
static void ule_disable(struct task_struct *p)
{
	struct td_sched *ts = td_sched(p), *pts;
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
		sched_interact_update(pts);
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
