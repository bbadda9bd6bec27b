/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ULE policy's pure arithmetic: integers in, integers out, no helpers,
 * no maps. The ULE units build on it, and the Rust unit tests
 * (sched-ext/tests/ule_arith.rs) compile this very file with the host's C
 * compiler and check it against sys/kern/sched_ule.c's rules. The includer
 * provides u32, u64, s32 and bool (vmlinux.h in BPF, <stdint.h> on the host).
 *
 * Times are in ns where FreeBSD counts ticks (hz = 1000, stathz = 127);
 * every function names the FreeBSD code it stands for.
 */
#ifndef __SCX_BATTLE_ULE_ARITH_H
#define __SCX_BATTLE_ULE_ARITH_H

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

/* The run queues, sys/sys/runq.h. */
#define ULE_RQ_NQS		64	/* RQ_NQS: FIFO queues of a run queue (intf.h's RQ_NQS) */
#define RQ_PPQ			4	/* priorities that share one FIFO queue */

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

/* sched_interact_update: keep the run+sleep history under SCHED_SLP_RUN_MAX. */
static inline void ule_interact_update(u64 *runtime, u64 *slptime)
{
	u64 sum = *runtime + *slptime;

	if (sum < SCHED_SLP_RUN_MAX)
		return;
	/* One huge addition (a long sleep, a child's run time): keep only its side. */
	if (sum > SCHED_SLP_RUN_MAX * 2) {
		if (*runtime > *slptime) {
			*runtime = SCHED_SLP_RUN_MAX;
			*slptime = 1;
		} else {
			*slptime = SCHED_SLP_RUN_MAX;
			*runtime = 1;
		}
		return;
	}
	/* Over by more than a fifth: halve, so the next additions still register. */
	if (sum > SCHED_SLP_RUN_MAX / 5 * 6) {
		*runtime /= 2;
		*slptime /= 2;
		return;
	}
	*runtime = *runtime / 5 * 4;
	*slptime = *slptime / 5 * 4;
}

/*
 * sched_interact_fork: a child starts with its parent's history scaled down
 * to SCHED_SLP_RUN_FORK, so it shows its own behaviour soon.
 */
static inline void ule_interact_fork(u64 *runtime, u64 *slptime)
{
	u64 sum = *runtime + *slptime, ratio;

	if (sum <= SCHED_SLP_RUN_FORK)
		return;
	ratio = sum / SCHED_SLP_RUN_FORK;
	*runtime /= ratio;
	*slptime /= ratio;
}

/* sched_interact_score: 0 (always sleeps) .. 100 (always runs). */
static inline u32 ule_interact_score(u64 runtime, u64 slptime, u32 interact)
{
	u64 div;

	/* Only the interactive side of the scale matters then. */
	if (interact <= SCHED_INTERACT_HALF && runtime >= slptime)
		return SCHED_INTERACT_HALF;
	if (runtime > slptime) {
		div = runtime / SCHED_INTERACT_HALF;
		div = div ? div : 1;
		return SCHED_INTERACT_HALF + (SCHED_INTERACT_HALF - slptime / div);
	}
	if (slptime > runtime) {
		div = slptime / SCHED_INTERACT_HALF;
		div = div ? div : 1;
		return runtime / div;
	}
	return runtime ? SCHED_INTERACT_HALF : 0;
}

/*
 * sched_priority for a timeshare thread: an interactive score (plus nice)
 * maps onto 120..151; a batch one gets SCHED_PRI_MIN plus its %CPU over the
 * window (ticks ns run in window ns, the window at least one second, with
 * SCHED_PRI_TICKS's rounding) plus nice, within 152..223.
 */
static inline u32 ule_timeshare_pri(u32 score, s32 nice, u64 ticks, u64 window, u32 interact)
{
	s32 s = (s32)score + nice, pri;
	u64 pri_ticks;

	if (s < 0)
		s = 0;
	if (interact && s < (s32)interact) {
		pri = PRI_MIN_INTERACT + (PRI_INTERACT_RANGE / interact) * s;
		return pri > PRI_MAX_INTERACT ? PRI_MAX_INTERACT : pri;
	}
	pri = SCHED_PRI_MIN;
	if (ticks) {
		/*
		 * SCHED_PRI_TICKS, in hz ticks as FreeBSD counts them: the run
		 * ticks over the window's ticks rounded up to a multiple of
		 * SCHED_PRI_RANGE, then divided by it. The rounding makes half
		 * of a 10 s window 5000 / 313 = 15, not 16.
		 */
		u64 run_ticks = ticks / HZ_TICK_NS;
		u64 total_ticks = window / HZ_TICK_NS;

		total_ticks = total_ticks > 1000 ? total_ticks : 1000;	/* max(.., hz) */
		pri_ticks = run_ticks / ((total_ticks + SCHED_PRI_RANGE - 1) / SCHED_PRI_RANGE);
		pri += pri_ticks < SCHED_PRI_RANGE - 1 ? pri_ticks : SCHED_PRI_RANGE - 1;
	}
	pri += nice;
	if (pri < PRI_MIN_BATCH)
		pri = PRI_MIN_BATCH;
	if (pri > PRI_MAX_BATCH)
		pri = PRI_MAX_BATCH;
	return pri;
}

/*
 * sched_sleep's static_boost: a timeshare thread that sleeps in the kernel
 * is raised to static_boost while it sleeps, and keeps it until it returns
 * to user mode (sched_userret). Interactive threads are better already;
 * idle-class ones are not timeshare. 0 turns it off. (FreeBSD's value 1,
 * "the priority the sleep asked for", has no counterpart here.)
 */
static inline u32 ule_static_boost(u32 pri, u32 boost)
{
	if (!boost || pri < PRI_MIN_TIMESHARE || pri > PRI_MAX_TIMESHARE || pri <= boost)
		return pri;
	return boost;
}

/*
 * sched_pctcpu_update: slide the %CPU window to end at now, adding ran ns
 * of run time. A window idle for SCHED_TICK_TARG starts over; one grown
 * past SCHED_TICK_MAX keeps the share of its run time that falls in the
 * last SCHED_TICK_TARG.
 */
static inline void ule_pctcpu_update(u64 *ticks, u64 *ftick, u64 *ltick, u64 now, u64 ran)
{
	u64 start = now > SCHED_TICK_TARG ? now - SCHED_TICK_TARG : 0;

	if (now - *ltick >= SCHED_TICK_TARG) {
		*ticks = 0;
		*ftick = start;
	} else if (now - *ftick >= SCHED_TICK_MAX) {
		u64 span = (*ltick - *ftick) >> 10, keep = (*ltick - start) >> 10;

		/* In units of 1024 ns, so the product stays inside 64 bits. */
		*ticks = span ? ((*ticks >> 10) * keep / span) << 10 : 0;
		*ftick = start;
	}
	*ticks += ran;
	*ltick = now;
}

/*
 * sched_wakeup's sleep credit: the hz ticks the sleep crossed (FreeBSD
 * compares tick counters), so a 0.3 ms sleep earns a whole tick 30 % of the
 * time and nothing otherwise, and the credit averages to the real sleep.
 */
static inline u64 ule_sleep_credit(u64 slept_at, u64 now)
{
	if (now <= slept_at)
		return 0;
	return (now / HZ_TICK_NS - slept_at / HZ_TICK_NS) * HZ_TICK_NS;
}

/* tdq_slice: the slice shrinks as the CPU's thread count (load) grows. */
static inline u64 ule_tdq_slice(s32 load, u64 slice, u64 slice_min)
{
	load -= 1;	/* the threads other than the running one */
	if (load >= SCHED_SLICE_MIN_DIVISOR)
		return slice_min;
	if (load <= 1)
		return slice;
	return slice / load;
}

/*
 * sched_fork_thread's ts_slice for a child: it starts as if it had used all
 * but sched_slice_min of the parent CPU's slice, so its first run ends soon
 * and its interactivity is learnt early.
 */
static inline u64 ule_fork_slice_used(u64 tdq_slice, u64 slice_min)
{
	return tdq_slice > slice_min ? tdq_slice - slice_min : 0;
}

/* sched_clock's slice test, at every tick against the current tdq_slice. */
static inline bool ule_slice_ended(u64 used, u64 tdq_slice)
{
	return used >= tdq_slice;
}

/* Why a runnable thread leaves its CPU (sched_switch). */
enum ule_switch {
	ULE_SW_SLICEEND,	/* TDF_SLICEEND, or nothing asked: a fresh slice, at its place */
	ULE_SW_NEEDRESCHED,	/* TDF_NEEDRESCHED: the rest of its slice, at its place */
	ULE_SW_PREEMPT,		/* SW_PREEMPT: the rest of its slice, at the head (SRQ_PREEMPTED) */
};

/*
 * sched_switch's `preempted`: what the CPU was asked (req, an enum
 * ule_switch) decides, unless sched_clock has found the slice used up at a
 * tick (TDF_SLICEEND). Only the tick ends a slice: a thread preempted while
 * a waking thread makes the CPU's tdq_slice shorter keeps the rest of its
 * slice, and the next tick compares it with the tdq_slice of then.
 */
static inline u32 ule_switch_kind(u32 req, bool slice_end)
{
	if (req > ULE_SW_PREEMPT || slice_end)
		return ULE_SW_SLICEEND;
	return req;
}

/*
 * Does the thread start a fresh slice after this switch? FreeBSD zeroes
 * ts_slice only where sched_clock finds it used up (and at a wakeup):
 * a thread that leaves its CPU with slice left keeps what it used. Here a
 * slice also ends without a tick when the kernel's own countdown of it
 * (p->scx.slice) reaches 0 between ticks, or a yield zeroes it; so a
 * switch nobody asked for starts afresh only with nothing left
 * (slice_left false). One with slice left was displaced by a higher
 * sched class (an RT thread), and goes on with the rest: resetting it there
 * let a spinner that an RT sampler interrupts every 10 ms keep its CPU for
 * a second at a time.
 */
static inline bool ule_switch_fresh(u32 kind, bool slice_end, bool slice_left)
{
	return slice_end || (kind == ULE_SW_SLICEEND && !slice_left);
}

/*
 * tdq_runq_add: the calendar bucket of a batch thread of priority pri, its
 * band spread over the RQ_NQS buckets after the insertion index idx. Never
 * the bucket being drained while idx and ridx differ (that shortens the
 * circle by one). A preempted thread goes back at the removal index.
 */
static inline u32 ule_insert_bucket(u32 pri, u32 idx, u32 ridx, bool preempted)
{
	u32 b;

	idx %= ULE_RQ_NQS;
	ridx %= ULE_RQ_NQS;
	if (preempted)
		return ridx;
	if (pri < PRI_MIN_BATCH)
		pri = PRI_MIN_BATCH;
	b = (ULE_RQ_NQS * (pri - PRI_MIN_BATCH) / PRI_BATCH_RANGE + idx) % ULE_RQ_NQS;
	if (ridx != idx && b == ridx)
		b = (b + ULE_RQ_NQS - 1) % ULE_RQ_NQS;
	return b;
}

/*
 * runq_findbit_from over one 64-bit status word: the first set bit of mask
 * at or after `from`, circularly; ULE_RQ_NQS if mask is empty. A rotation
 * and a count of trailing zeros by halving (six steps, no loop, no table),
 * where a bucket-by-bucket walk costs up to 64 turns.
 */
static inline u32 ule_findbit_from(u64 mask, u32 from)
{
	u64 rot;
	u32 n = 0;

	if (!mask)
		return ULE_RQ_NQS;
	from %= 64;
	rot = from ? (mask >> from) | (mask << (64 - from)) : mask;
	if (!(rot & 0xffffffffULL)) { n += 32; rot >>= 32; }
	if (!(rot & 0xffffULL)) { n += 16; rot >>= 16; }
	if (!(rot & 0xffULL)) { n += 8; rot >>= 8; }
	if (!(rot & 0xfULL)) { n += 4; rot >>= 4; }
	if (!(rot & 0x3ULL)) { n += 2; rot >>= 2; }
	if (!(rot & 0x1ULL))
		n += 1;
	return (from + n) % 64;
}

/*
 * tdq_runq_rem / runq_remove_idx: the removal index after a thread left
 * bucket b. It passes on to the next bucket only when b was the removal
 * bucket, b is now empty, and the insertion index is elsewhere.
 */
static inline u32 ule_ridx_after_remove(u32 b, u32 idx, u32 ridx, bool b_empty)
{
	idx %= ULE_RQ_NQS;
	ridx %= ULE_RQ_NQS;
	if (idx != ridx && b % ULE_RQ_NQS == ridx && b_empty)
		return (ridx + 1) % ULE_RQ_NQS;
	return ridx;
}

/*
 * sched_clock's calendar step, once per stathz tick: when the removal index
 * has caught up with the insertion index, the insertion index moves on, and
 * the removal index follows if its bucket is empty. ridx_empty: is bucket
 * ridx empty.
 */
static inline void ule_calendar_tick(u32 *idx, u32 *ridx, bool ridx_empty)
{
	*idx %= ULE_RQ_NQS;
	*ridx %= ULE_RQ_NQS;
	if (*idx != *ridx)
		return;
	*idx = (*idx + 1) % ULE_RQ_NQS;
	if (ridx_empty)
		*ridx = *idx;
}

/*
 * The order key of the realtime queue (runq_add): RQ_PPQ priorities share
 * one FIFO queue, so the key is the queue's number, then the arrival time
 * (the low 56 bits of the clock wrap after two years). A preempted thread
 * goes to the head of its queue (SRQ_PREEMPTED): arrival time 0.
 */
#define ULE_RT_PRI_SHIFT	56
static inline u64 ule_rt_key(u32 pri, u64 now, bool preempted)
{
	u64 at = preempted ? 0 : now & ((1ULL << ULE_RT_PRI_SHIFT) - 1);

	return ((u64)(pri / RQ_PPQ) << ULE_RT_PRI_SHIFT) | at;
}

/* The FIFO queue of the realtime run queue a key belongs to. */
static inline u32 ule_rt_key_queue(u64 key)
{
	return key >> ULE_RT_PRI_SHIFT;
}

/*
 * sched_shouldpreempt: may a thread of priority pri displace one of cpri
 * now (remote: on another CPU, by IPI)? thresh is kern.sched.preempt_thresh.
 */
static inline bool ule_shouldpreempt(u32 pri, u32 cpri, bool remote, u32 thresh)
{
	if (pri >= cpri)
		return false;
	if (cpri >= PRI_MIN_IDLE)
		return true;
	if (!thresh)
		return false;
	if (pri <= thresh)
		return true;
	/* Interactive beats batch, but only across CPUs. */
	return remote && pri <= PRI_MAX_INTERACT && cpri > PRI_MAX_INTERACT;
}

/*
 * sched_balance_group's pairing rule: a CPU with hload threads (at least
 * two, one of them queued) gives one to a CPU with fewer (sched_lowest with
 * maxload hload - 1, then sched_balance_pair's high > low). So k+1 and k
 * trade a thread at every pass: threads that don't divide evenly rotate.
 */
static inline bool ule_balance_pair_ok(s32 hload, s32 lload)
{
	return hload >= 2 && lload < hload;
}

#endif /* __SCX_BATTLE_ULE_ARITH_H */
