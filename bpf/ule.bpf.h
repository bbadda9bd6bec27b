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
 * threads, its LLC first. Running threads never move.
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
 * is charged when a thread stops or its slice ends. The balancer runs in
 * CPU 0's dispatch path once due, which a busy CPU 0 reaches at its next
 * slice end, and a sleeping CPU 0 on its next wakeup. tdq_lowpri is
 * approximated by the running thread's priority.
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

/* Scratch for the CPU searches and the balancer, per CPU (see cfs.bpf.h on why in a map). */
struct ule_search {
	u64	score[MAX_CPUS];		/* load score of each CPU */
	u64	sum[NR_DOM_LEVELS][MAX_CPUS];	/* summed scores of each domain, by domain id */
	u8	match[NR_DOM_LEVELS][MAX_CPUS];	/* the domain holds an acceptable CPU */
	u8	allowed[MAX_CPUS];		/* the thread may run there */
	u8	hmask[MAX_CPUS];		/* balancer: may still give or receive */
	u8	ltried[MAX_CPUS];		/* balancer: refused as receiver for this donor */
	u8	given[MAX_CPUS];		/* balancer: threads given or got this pass */
	s32	best;
	u32	pad;
	u64	best_score;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_search);
} ule_scratch SEC(".maps");

u64 ule_balance_at;	/* ns, when CPU 0 runs the balancer next */
u64 ule_seq;		/* FIFO order among equal priorities in the realtime queue */

static __always_inline struct td_sched *td_sched(const struct task_struct *p)
{
	return bpf_task_storage_get(&td_scheds, (struct task_struct *)p, 0, 0);
}

static __always_inline struct ule_tdq *ule_tdq(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&ule_tdqs, &key);
}

static __always_inline struct ule_search *ule_search_scratch(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&ule_scratch, &zero);
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

/* The key of the realtime queue: priority first, then arrival. */
static __always_inline u64 ule_rt_key(u32 pri)
{
	return ((u64)pri << 40) | (__sync_fetch_and_add(&ule_seq, 1) & ((1ULL << 40) - 1));
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
 * The least loaded acceptable CPU of a domain, walking the topology tree as
 * sched_lowest does: at each level the child domain with the smallest summed
 * score that holds an acceptable CPU, down to a CPU. A CPU's score is its
 * thread count x ULE_LOAD_SCALE, less ULE_PREFER_BONUS on the preferred CPU
 * and a random 0..31. Acceptable: allowed (scratch `allowed`), best priority
 * worse than `pri` (unless ULE_NO_PRI), and at most `maxload` threads.
 * Global, so the verifier checks it once.
 */
__hidden __noinline int ule_lowest(s32 scope_cpu, u32 scope_level, s32 prefer, s32 pri, s32 maxload)
{
	struct ule_search *s = ule_search_scratch();
	struct ule_tdq *tdq;
	u32 cpu, lvl, id, i;
	s32 pick = -1, sel;

	if (!s || scope_cpu < 0 || scope_cpu >= MAX_CPUS || scope_level >= NR_DOM_LEVELS)
		return -1;
	bpf_for(cpu, 0, nr_cpu_ids) {
		if (!cpu_online[cpu_idx(cpu)] || !in_domain(scope_cpu, cpu, scope_level))
			continue;
		bpf_for(lvl, 0, NR_DOM_LEVELS) {
			id = cpu_idx(lvl == DOM_SMT ? cpu_core_id[cpu_idx(cpu)] :
				     lvl == DOM_LLC ? cpu_llc_id[cpu_idx(cpu)] :
				     lvl == DOM_NODE ? cpu_node_id[cpu_idx(cpu)] : 0);
			s->sum[lvl & (NR_DOM_LEVELS - 1)][id] = 0;
			s->match[lvl & (NR_DOM_LEVELS - 1)][id] = 0;
		}
	}
	bpf_for(cpu, 0, nr_cpu_ids) {
		s32 load;
		u64 score;
		bool ok;

		if (!cpu_online[cpu_idx(cpu)] || !in_domain(scope_cpu, cpu, scope_level) ||
		    !(tdq = ule_tdq(cpu)))
			continue;
		load = tdq_load(cpu);
		score = (u64)load * ULE_LOAD_SCALE + ULE_PREFER_BONUS + 32 -
			((s32)cpu == prefer ? ULE_PREFER_BONUS : 0) - bpf_get_prandom_u32() % 32;
		s->score[cpu_idx(cpu)] = score;
		ok = s->allowed[cpu_idx(cpu)] && load <= maxload &&
		     (pri == ULE_NO_PRI || tdq_lowpri(cpu, tdq) > (u32)pri);
		bpf_for(lvl, 0, NR_DOM_LEVELS) {
			id = cpu_idx(lvl == DOM_SMT ? cpu_core_id[cpu_idx(cpu)] :
				     lvl == DOM_LLC ? cpu_llc_id[cpu_idx(cpu)] :
				     lvl == DOM_NODE ? cpu_node_id[cpu_idx(cpu)] : 0);
			s->sum[lvl & (NR_DOM_LEVELS - 1)][id] += score;
			if (ok)
				s->match[lvl & (NR_DOM_LEVELS - 1)][id] = 1;
		}
	}
	if (!s->match[scope_level & (NR_DOM_LEVELS - 1)][cpu_idx(
		    scope_level == DOM_SMT ? cpu_core_id[cpu_idx(scope_cpu)] :
		    scope_level == DOM_LLC ? cpu_llc_id[cpu_idx(scope_cpu)] :
		    scope_level == DOM_NODE ? cpu_node_id[cpu_idx(scope_cpu)] : 0)])
		return -1;

	/* Descend: the child domain with the lowest sum, until one CPU is left. */
	sel = scope_cpu;
	bpf_for(i, 0, scope_level) {
		u32 lvl = scope_level - i, child = lvl - 1;

		s->best = -1;
		s->best_score = ~0ULL;
		bpf_for(cpu, 0, nr_cpu_ids) {
			if (!cpu_online[cpu_idx(cpu)] || !in_domain(sel, cpu, lvl))
				continue;
			id = cpu_idx(child == DOM_SMT ? cpu_core_id[cpu_idx(cpu)] :
				     child == DOM_LLC ? cpu_llc_id[cpu_idx(cpu)] :
				     cpu_node_id[cpu_idx(cpu)]);
			if (!s->match[child & (NR_DOM_LEVELS - 1)][id])
				continue;
			if (s->sum[child & (NR_DOM_LEVELS - 1)][id] < s->best_score) {
				s->best_score = s->sum[child & (NR_DOM_LEVELS - 1)][id];
				s->best = cpu;
			}
		}
		if (s->best < 0)
			return -1;
		sel = s->best;
	}
	/* Inside the chosen core: the acceptable CPU with the lowest score. */
	s->best = -1;
	s->best_score = ~0ULL;
	bpf_for(cpu, 0, nr_cpu_ids) {
		s32 load;

		if (!cpu_online[cpu_idx(cpu)] || !in_domain(sel, cpu, DOM_SMT) ||
		    !s->allowed[cpu_idx(cpu)] || !(tdq = ule_tdq(cpu)))
			continue;
		load = tdq_load(cpu);
		if (load > maxload || (pri != ULE_NO_PRI && tdq_lowpri(cpu, tdq) <= (u32)pri))
			continue;
		if (s->score[cpu_idx(cpu)] < s->best_score) {
			s->best_score = s->score[cpu_idx(cpu)];
			s->best = cpu;
		}
	}
	pick = s->best;
	return pick;
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

/* sched_pickcpu, for a waking or new thread. */
static s32 ule_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct td_sched *ts = td_sched(p);
	struct task_ctx *tctx = task_ctx(p);
	struct ule_search *s = ule_search_scratch();
	struct ule_tdq *self_tdq;
	s32 cpu = -1, self = bpf_get_smp_processor_id();
	u32 c;
	bool prev_ok = ule_usable(prev_cpu, p);

	if (!ts || !tctx || !s)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	ule_wakeup_credit(p, ts);
	sched_priority(p, ts);

	/* Cache-warm and idle: stay (with SMT, the whole core must be idle). */
	if (prev_ok && ule_cpu_idle(prev_cpu) && sched_affinity(tctx, CG_SHARE_L2)) {
		bool core_idle = true;

		if (dom_active[DOM_SMT]) {
			bpf_for(c, 0, nr_cpu_ids) {
				if (c != prev_cpu && in_domain(prev_cpu, c, DOM_SMT) &&
				    cpu_online[cpu_idx(c)] && !ule_cpu_idle(c))
					core_idle = false;
			}
		}
		if (core_idle) {
			stat_inc(STAT_ULE_PICK_PREV);
			return prev_cpu;
		}
	}

	bpf_for(c, 0, nr_cpu_ids)
		s->allowed[cpu_idx(c)] = ule_usable(c, p);

	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS && sched_affinity(tctx, CG_SHARE_L3)) {
		cpu = ule_lowest(prev_cpu, DOM_LLC, prev_cpu,
				 ts->pri > PRI_MAX_TIMESHARE ? ts->pri : PRI_MAX_TIMESHARE, MAX_CPUS);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_LLC);
	}
	if (cpu < 0) {
		cpu = ule_lowest(0, DOM_ALL, prev_cpu, ts->pri, MAX_CPUS);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_PRI);
	}
	if (cpu < 0) {
		cpu = ule_lowest(0, DOM_ALL, prev_cpu, ULE_NO_PRI, MAX_CPUS);
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
 * the next one is tried. Nothing is counted until a move has landed.
 */
__hidden __noinline int ule_move_one(s32 src, s32 dst, u32 to_local)
{
	struct ule_tdq *stdq = ule_tdq(src), *dtdq = ule_tdq(dst);
	struct task_struct *p;
	struct td_sched *ts;
	struct task_ctx *tctx;
	u32 q, i, b, nb;

	if (!stdq || !dtdq || src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS)
		return 0;
	bpf_for(q, 0, ULE_NR_QUEUES) {
		nb = q == ULE_Q_TIMESHARE ? RQ_NQS : 1;
		bpf_for(i, 0, nb) {
			b = q == ULE_Q_TIMESHARE ? (stdq->ridx + i) % RQ_NQS : 0;
			if (q == ULE_Q_TIMESHARE && !ule_bucket_maybe(src, stdq, b))
				continue;
			bpf_for_each(scx_dsq, p, ule_dsq(src, q, b), 0) {
				u32 dq, db = 0;
				bool moved;

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
				return 1;
			}
		}
	}
	return 0;
}

/*
 * The most loaded CPU of this CPU's domain at `level` with at least
 * `minload` threads and a queued one, other than `self` (sched_highest).
 */
static __always_inline s32 ule_highest_in(s32 self, u32 level, s32 minload)
{
	struct ule_tdq *tdq;
	s32 best = -1, best_load = -1;
	u32 cpu;

	bpf_for(cpu, 0, nr_cpu_ids) {
		s32 load;

		if ((s32)cpu == self || !cpu_online[cpu_idx(cpu)] || !in_domain(self, cpu, level) ||
		    !(tdq = ule_tdq(cpu)))
			continue;
		load = tdq_load(cpu);
		if (load < minload || tdq_transferable(cpu) <= 0)
			continue;
		if (load > best_load || (load == best_load && (bpf_get_prandom_u32() & 1))) {
			best_load = load;
			best = cpu;
		}
	}
	return best;
}

/* tdq_idled: a CPU with nothing to run steals one thread, closest domain first. */
__hidden __noinline int ule_steal(s32 cpu)
{
	u32 level;
	s32 src;

	if (cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	bpf_for(level, DOM_SMT, NR_DOM_LEVELS) {
		if (level != DOM_ALL && !dom_active[level & (NR_DOM_LEVELS - 1)])
			continue;
		src = ule_highest_in(cpu, level, steal_thresh);
		if (src < 0)
			continue;
		if (ule_move_one(src, cpu, 1)) {
			stat_inc(STAT_ULE_STEAL);
			return 1;
		}
	}
	return 0;
}

/*
 * sched_balance_group over the machine, run by CPU 0. Repeatedly: the most
 * loaded CPU not yet used as donor or receiver gives one queued thread to
 * the least loaded such CPU with at least two threads fewer; a receiver
 * that cannot take any of its threads (affinity) is skipped for that donor.
 * A CPU gives or receives at most one thread per pass.
 */
__hidden __noinline int ule_balance_pass(void)
{
	struct ule_search *s = ule_search_scratch();
	struct ule_tdq *tdq;
	u32 cpu, round, tries;
	s32 high, low, hload, lload, load, moves = 0;
	bool anylow;

	if (!s)
		return 0;
	stat_inc(STAT_ULE_BAL_PASS);
	bpf_for(cpu, 0, nr_cpu_ids) {
		s->hmask[cpu_idx(cpu)] = cpu_online[cpu_idx(cpu)];
		s->given[cpu_idx(cpu)] = 0;
	}
	bpf_for(round, 0, nr_cpu_ids) {
		/* The donor: most loaded with a queued thread. */
		high = -1;
		hload = 0;
		bpf_for(cpu, 0, nr_cpu_ids) {
			if (!s->hmask[cpu_idx(cpu)] || !(tdq = ule_tdq(cpu)))
				continue;
			load = tdq_load(cpu);
			if (load < 1 || tdq_transferable(cpu) <= 0)
				continue;
			if (load > hload || (load == hload && (bpf_get_prandom_u32() & 1))) {
				hload = load;
				high = cpu;
			}
		}
		if (high < 0)
			break;
		s->hmask[cpu_idx(high)] = 0;
		bpf_for(cpu, 0, nr_cpu_ids)
			s->ltried[cpu_idx(cpu)] = 0;
		anylow = true;
		low = -1;
		bpf_for(tries, 0, nr_cpu_ids) {
			/* The receiver: least loaded, at least two threads below the donor. */
			low = -1;
			lload = hload - 1;
			bpf_for(cpu, 0, nr_cpu_ids) {
				if (!s->hmask[cpu_idx(cpu)] || s->ltried[cpu_idx(cpu)])
					continue;
				load = tdq_load(cpu);
				if (load < lload || (load == lload && low >= 0 && (bpf_get_prandom_u32() & 1))) {
					lload = load;
					low = cpu;
				}
			}
			if (low < 0 || lload > hload - 2) {
				low = -1;
				break;
			}
			if (ule_move_one(high, low, 0)) {
				moves++;
				stat_inc(STAT_ULE_BAL_MOVE);
				s->given[cpu_idx(high)]++;
				s->given[cpu_idx(low)]++;
				if (s->given[cpu_idx(high)] > 1 || s->given[cpu_idx(low)] > 1)
					stat_inc(STAT_ULE_BAL_REPEAT);
				s->hmask[cpu_idx(low)] = 0;
				break;
			}
			s->ltried[cpu_idx(low)] = 1;
			anylow = false;
		}
		/* Nobody is two threads below the busiest donor: balanced. */
		if (low < 0 && anylow)
			break;
	}
	return moves;
}

/* CPU 0's periodic balancer: due every 0.5 to 1.5 balance_interval, at random. */
static void ule_maybe_balance(s32 cpu)
{
	u64 now = scx_bpf_now(), ms;

	if (cpu != 0 || !rebalance)
		return;
	if (ule_balance_at && time_before(now, ule_balance_at))
		return;
	if (ule_balance_at)
		ule_balance_pass();
	ms = balance_interval_ms / 2 + bpf_get_prandom_u32() % (balance_interval_ms ? balance_interval_ms : 1);
	ule_balance_at = now + (ms ? ms : 1) * 1000000ULL;
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
		pri = p->scx.dsq_vtime >> 40;
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
 * some; oldest first, so a backlog of starving threads drains in order.
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
			b = i;
			if (q == ULE_Q_TIMESHARE && !(tdq->bucket_mask & (1ULL << (b % RQ_NQS))))
				continue;
			bpf_for_each(scx_dsq, p, ule_dsq(cpu, q, b), 0) {
				if (!(ts = td_sched(p)) || now - ts->queued_at < ule_starve_ns)
					continue;
				if (found_pid < 0 || ts->queued_at < oldest) {
					oldest = ts->queued_at;
					found_pid = p->pid;
					found_q = q;
					found_b = b;
				}
			}
		}
	}
	if (found_pid < 0) {
		tdq->starve_scan_at = now + ULE_STARVE_SCAN_NS;
		return 0;
	}
	bpf_for_each(scx_dsq, p, ule_dsq(cpu, found_q, found_b), 0) {
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

static void ule_dispatch(s32 cpu, struct task_struct *prev)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	if (!tdq || cpu < 0 || cpu >= MAX_CPUS)
		return;
	ule_maybe_balance(cpu);
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

/* One realtime queue, RQ_NQS calendar buckets and one idle queue per online CPU. */
static s32 ule_init(void)
{
	struct ule_tdq *tdq;
	u32 cpu, q;
	s32 ret;

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
