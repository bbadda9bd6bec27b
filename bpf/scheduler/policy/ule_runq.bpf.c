/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ULE, the run queues (sched_ule.c: tdq_runq_add, tdq_choose, sched_add,
 * sched_switch, sched_clock): each CPU's realtime queue, timeshare calendar
 * and idle queue; which thread runs next, its slice, and what happens to a
 * thread that leaves its CPU still runnable; the starvation guard; moving
 * queued threads for a balancer (components.bpf.h, 3).
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "components.bpf.h"


/*
 * runq_findbit_from, on the owning CPU: the first non-empty bucket from
 * `from`, circularly; RQ_NQS if none. The status word says where to look; a
 * bit left set by a bucket that emptied behind its back (a steal, a
 * dequeue) is dropped and the search goes on.
 */
static __always_inline u32 ule_first_bucket(s32 cpu, struct ule_tdq *tdq, u32 from)
{
	u32 i, b;

	bpf_for(i, 0, RQ_NQS) {
		b = ule_findbit_from(tdq->bucket_mask, from);
		if (b >= RQ_NQS || ule_bucket_busy(cpu, tdq, b))
			return b;
	}
	return RQ_NQS;
}


/*
 * tdq_runq_add: put a thread in the queue its priority selects on `cpu`. A
 * thread preempted before its slice ended (SRQ_PREEMPTED) goes to the head:
 * of the removal bucket in the calendar, of its FIFO in the other queues.
 */
__hidden void ule_runq_add(struct task_struct *p, struct td_sched *ts, s32 cpu, u64 enq_flags)
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


/* sched_add; returns the CPU p was queued on, -1 if it went to a local or the global queue instead. */
__hidden s32 ule_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq;

	if (ts) {
		ts->new_slice = 1;
		ts->guard_turn = 0;
		ts->queued_at = scx_bpf_now();
	}
	/*
	 * Its CPU became unusable (affinity change): the global queue, which
	 * every CPU drains before asking ops.dispatch. The calendar bits need
	 * the owning CPU's rq lock, which is held only for the task's own CPU.
	 */
	if (!cpu_usable(cpu, p)) {
		note_move(p, MOVE_AFFINITY);
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, sched_slice_min_ns, enq_flags);
		return -1;
	}
	/*
	 * SCX_ENQ_LAST: the CPU found nothing else to run. Keeping the thread
	 * on its CPU is what ULE would pick, and the CPU must not go idle.
	 */
	if (!ts || !tctx || !(tdq = ule_tdq(cpu)) || (enq_flags & SCX_ENQ_LAST)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_slice_min_ns, enq_flags);
		return -1;
	}
	/* sched_add recomputes the priority first. */
	ule_wakeup(p, ts);
	ule_priority(p, ts);
	/* A batch thread waking from a sleep in the kernel still has sched_sleep's boost. */
	if ((enq_flags & SCX_ENQ_WAKEUP) && ule_static_boost(ts->pri, static_boost) != ts->pri) {
		ts->pri = ule_static_boost(ts->pri, static_boost);
		ts->boosted = 1;
		stat_inc(STAT_ULE_STATIC_BOOST);
	}
	account_task(p, tctx, cpu);
	ule_runq_add(p, ts, cpu, enq_flags);

	/* (The kick that wakes an idle CPU to steal is the balancer's: ule_kick_stealer.) */

	/*
	 * tdq_notify (another CPU: an IPI when sched_shouldpreempt allows) and
	 * sched_setpreempt (this CPU: TDF_NEEDRESCHED for any better priority,
	 * a real preemption only when sched_shouldpreempt allows; a thread
	 * merely rescheduled goes back to its normal place, not the head).
	 * sched_add does so for a waking thread and for a new one (sched_fork
	 * adds the child); a thread put back after running or requeued by an
	 * affinity change announces nothing.
	 */
	/*
	 * An idle CPU (curr_pri PRI_MAX_IDLE) needs no kick: the thread is
	 * queued on its own CPU, which the kernel's wakeup_preempt reschedules
	 * for a wakeup or a fork (sched_ext outranks the idle class), and a
	 * thread put back finds its CPU busy. (A kick from here, under that
	 * CPU's rq lock, costs a deferred self-interrupt and the lock again.) A
	 * CPU running an idle-class thread is preempted (sched_shouldpreempt).
	 */
	if (tdq->curr_pri >= PRI_MAX_IDLE) {
		/* nothing */
	} else if (((enq_flags & SCX_ENQ_WAKEUP) || (tctx->forked && !tctx->last_run_at)) &&
		   ts->pri < tdq->curr_pri) {
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
	return cpu;
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
__hidden void ule_dump_cpu(struct scx_dump_ctx *dctx, s32 cpu)
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

	/* The guard's turn is over: back to its place with the rest of its slice. */
	if (ts->guard_turn && tdq->switch_req < ULE_SW_NEEDRESCHED)
		tdq->switch_req = ULE_SW_NEEDRESCHED;
	ts->guard_turn = 0;
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
	u32 i, b, ridx = tdq->ridx % RQ_NQS, from;

	if (!ule_bucket_busy(cpu, tdq, ridx))
		tdq->ridx = ridx = ule_ridx_after_remove(ridx, tdq->idx, ridx, true);
	/*
	 * The status word names the bucket; taking from it is the test (a
	 * bucket that emptied behind the word's back fails the move and loses
	 * its bit; an emptied bucket's bit goes at the next search; one whose
	 * threads could not be taken now is passed, as the walk did).
	 */
	from = ridx;
	bpf_for(i, 0, RQ_NQS) {
		b = ule_findbit_from(tdq->bucket_mask, from);
		if (b >= RQ_NQS)
			return false;
		if (scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_TIMESHARE, b), 0)) {
			tdq->ridx = ule_ridx_after_remove(b, tdq->idx, ridx,
				!scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_TIMESHARE, b)));
			return true;
		}
		if (ule_bucket_busy(cpu, tdq, b)) {
			from = (b + 1) % RQ_NQS;
			if (from == ridx)
				return false;	/* every busy bucket tried */
		}
	}
	return false;
}


/*
 * The starvation guard: run the longest-waiting thread of this CPU's queues
 * if it has waited ule_starve_ns, whatever its queue and priority. Looks
 * every ULE_STARVE_SCAN_NS, and at every dispatch while it keeps finding
 * some; oldest first, so a backlog of starving threads drains in order.
 * The turn it gives lasts to the next tick (guard_turn), not a slice: the
 * watchdog needs a thread to run, not to run long, and a backlog of N
 * starving threads then drains in N ticks, not N slices of ULE's ~16 ms
 * floor (hundreds reach the limit together when 512 spinners start on one
 * CPU: the last of them waited 21.2 s in CI with whole slices). Then the thread goes back to its place with the rest of
 * its slice, as after a TDF_NEEDRESCHED.
 * In a FIFO queue (the calendar's buckets, the idle queue) the head waited
 * longest, so it looks at the heads. The realtime queue is FIFO per
 * priority level, so the thread that waited longest can be anywhere in it
 * (the first of a level deep in the queue: 512 threads started spinning on
 * one CPU fill its worst level with hundreds): there it examines a window of
 * ULE_STARVE_SCAN threads that moves along the queue from one look to the
 * next and wraps at its end, so a queue of N threads is covered within
 * N / ULE_STARVE_SCAN looks. Passing over the threads before the window
 * reads nothing of them (no task storage).
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
			u32 looked = 0, passed = 0, from = 0, window = 1;

			b = i;
			if (q == ULE_Q_TIMESHARE && !(tdq->bucket_mask & (1ULL << (b % RQ_NQS))))
				continue;
			if (q == ULE_Q_REALTIME) {
				from = tdq->starve_rt_from;
				window = ULE_STARVE_SCAN;
			}
			bpf_for_each(scx_dsq, p, ule_dsq(cpu, q, b), 0) {
				if (passed < from) {
					passed++;
					continue;
				}
				if (++looked > window)
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
			/* The next look's window: on, or back to the head at the end. */
			if (q == ULE_Q_REALTIME)
				tdq->starve_rt_from = looked > window ? from + window : 0;
			cost_visit(COST_DISPATCH, passed + looked);
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
			if ((ts = ule_ts(p))) {
				ts->guard_turn = 1;
				ts->starved++;
				ule_note_task(p, ts);
			}
			return 1;
		}
		break;
	}
	return 0;
}


/*
 * tdq_choose: the realtime queue, the calendar, the idle queue; into the
 * local queue. 1 if a thread was taken. A global function, verified once on
 * its own (as cfs_q_migrate): CFS's balancer calls it in its loops.
 */
__noinline int ule_q_take_next(s32 cpu)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	if (!tdq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return false;
	if (scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_REALTIME, 0), 0) ||
	    ule_dispatch_timeshare(cpu, tdq) ||
	    scx_bpf_dsq_move_to_local(ule_dsq(cpu, ULE_Q_IDLE, 0), 0)) {
		stat_inc(STAT_DSQ_MOVE);
		return true;
	}
	return false;
}


/*
 * The run queue's part of ops.dispatch: a starving thread, prev if it comes
 * first, or the next thread. False when nothing is queued here (the
 * balancer may steal then).
 */
__hidden bool ule_q_dispatch(s32 cpu, struct task_struct *prev)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	/* A CPU that came online after the load has no queues: the restart is on its way. */
	if (!tdq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return true;
	if (ule_rescue_starved(cpu))
		return true;
	if (ule_keep_prev(cpu, prev, tdq))
		return true;
	if (ule_q_take_next(cpu))
		return true;
	/*
	 * The thread that beat prev was stolen meanwhile: prev goes on. (With
	 * SCX_ENQ_LAST the kernel would queue it again anyway.)
	 */
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED)) {
		prev->scx.slice = sched_slice_min_ns;
		return true;
	}
	/* --stats' queue counts: every queue was just found empty (no lookups). */
	tdq->nr_queued[ULE_Q_REALTIME] = 0;
	tdq->nr_queued[ULE_Q_TIMESHARE] = 0;
	tdq->nr_queued[ULE_Q_IDLE] = 0;
	return false;
}


/*
 * sched_clock, at every tick of the running thread: its slice against the
 * CPU's current tdq_slice (threads arriving shorten a hog's slice, threads
 * leaving lengthen it), and once per stathz tick the calendar's step.
 */
__hidden void ule_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct ule_tdq *tdq = ule_tdq(cpu);
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	u64 now = scx_bpf_now(), used, slice;
	u32 idx, ridx;

	if (!tdq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	if (ts && ts->guard_turn) {
		/* The guard's turn lasts to this tick (ule_rescue_starved). */
		p->scx.slice = 0;
	} else if (ts && tctx && tctx->last_run_at) {
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
	/*
	 * An interactive thread waits behind a batch one and no add announced
	 * it (an affinity change or a race with curr_pri): FreeBSD's
	 * sched_add would have (sched_setpreempt, tdq_notify), so reschedule
	 * as TDF_NEEDRESCHED would, a tick late. Counted: it should be rare.
	 */
	if (tdq->curr_pri > PRI_MAX_INTERACT && !(ts && ts->guard_turn) &&
	    scx_bpf_dsq_nr_queued(ule_dsq(cpu, ULE_Q_REALTIME, 0)) > 0) {
		if (tdq->switch_req < ULE_SW_NEEDRESCHED)
			tdq->switch_req = ULE_SW_NEEDRESCHED;
		if (p->scx.slice)
			stat_inc(STAT_ULE_TICK_RESCHED);
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


__hidden void ule_running(struct task_struct *p)
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
	/*
	 * sched_userret: a boosted thread gets its own priority back when it
	 * returns to user mode; its time in the kernel is taken as nil.
	 */
	if (ts->boosted) {
		ts->boosted = 0;
		ule_priority(p, ts);
	}
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
	/* The guard runs it out of turn until the next tick (ule_rescue_starved). */
	if (ts->guard_turn) {
		p->scx.slice = HZ_TICK_NS;
		return;
	}
	/*
	 * What is left of its slice (ts_slice counts what it used: a preempted
	 * thread resumes its slice, a new one has only sched_slice_min left);
	 * at least a tick, as sched_clock ends a slice at a tick.
	 */
	slice = ule_cpu_slice(cpu);
	p->scx.slice = slice > ts->slice_used + HZ_TICK_NS ? slice - ts->slice_used : HZ_TICK_NS;
}


__hidden void ule_stopping(struct task_struct *p, u64 ran_ns, bool runnable)
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


/* sched_pickcpu's view of p's priority (components.bpf.h, 4): the sleep that just ended credited first. */
__hidden u32 ule_q_task_pri(struct task_struct *p)
{
	struct td_sched *ts = ule_ts(p);

	bool waking;

	if (!ts)
		return SCHED_PRI_MIN + (p->static_prio - 120);
	/* sched_pickcpu runs in sched_add: a waking thread has its static_boost then. */
	waking = ts->slept_at != 0;
	ule_wakeup(p, ts);
	ule_priority(p, ts);
	return waking ? ule_static_boost(ts->pri, static_boost) : ts->pri;
}


/* How ule_move_from treats the threads of a queue. */
enum ule_move_mode {
	ULE_MOVE_ANY,		/* every thread the balancer's filter accepts */
	ULE_MOVE_SKIP_FIRST,	/* the same, but with keep_next, pass over the first thread of the walk */
	ULE_MOVE_ONLY_FIRST,	/* only that passed-over thread */
};


/*
 * tdq_move's half for one queue of src (bucket b of the calendar), for this
 * CPU's migrate_req: move threads the balancer's filter accepts to dst, into
 * dst's local queue when dst is this CPU stealing, else into the queue its
 * priority selects on dst (tdq_add), and notify dst as tdq_notify does. 1
 * when the walk is over (the request is done, or has looked at max_looks
 * threads), 0 to go on with the next queue. A move fails when src ran or
 * requeued the thread since the walk saw it; then the next one is tried.
 * Not inlined (__noinline): one subprogram for all its call sites.
 */
__hidden __noinline int ule_move_from(u32 q, u32 b, u32 mode)
{
	struct migrate_req *m = migrate_req();
	struct ule_tdq *dtdq;
	struct task_struct *p;
	struct td_sched *ts;
	struct task_ctx *tctx;
	s32 src, dst;

	if (!m)
		return 1;
	src = m->src;
	dst = m->dst;
	if (src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS || q >= ULE_NR_QUEUES ||
	    !cpu_online[cpu_idx(src)] || !(dtdq = ule_tdq(dst)))
		return 1;
	bpf_for_each(scx_dsq, p, ule_dsq(src, q, b), 0) {
		u32 dq, db = 0;
		bool moved;

		if (migrate_done(m))
			return 1;
		if (++m->looked > m->max_looks)
			return 1;
		if (mode == ULE_MOVE_SKIP_FIRST && m->keep_next && !m->skipped_first) {
			/* runq_steal_from leaves src the thread it runs next, unless it is the only one. */
			m->skipped_first = 1;
			m->first_pid = p->pid;
			m->first_bucket = b;
			continue;
		}
		if (mode == ULE_MOVE_ONLY_FIRST && p->pid != m->first_pid)
			continue;
		if (!(ts = ule_ts(p)) || !(tctx = task_ctx(p)) || !migrate_fits(m, p, tctx))
			continue;
		dq = ule_queue_of(ts->pri);
		/* Before the move: into a local queue, the thread changes CPU inside the call. */
		note_queue_move(p, m->cause, dst);
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
			/* Its note stays (cfs_q_walk says why). */
			stat_inc(STAT_ULE_MOVE_LOST);
			continue;
		}
		account_task(p, tctx, dst);
		migrate_count(m, p);
		if (m->to_local)
			continue;
		if (dq == ULE_Q_TIMESHARE)
			ule_mark_bucket(dtdq, db);
		if (!m->notify)
			continue;
		/* tdq_notify: an IPI only when the thread may preempt dst's. */
		if (dtdq->curr_pri >= PRI_MIN_IDLE) {
			scx_bpf_kick_cpu(dst, SCX_KICK_IDLE);
		} else if (ule_shouldpreempt(ts->pri, dtdq->curr_pri, true, preempt_thresh)) {
			dtdq->switch_req = ULE_SW_PREEMPT;
			scx_bpf_kick_cpu(dst, SCX_KICK_PREEMPT);
		}
	}
	return migrate_done(m);
}


/*
 * q_migrate for ULE's queues: searched as tdq_steal does, the realtime
 * queue (runq_steal: the threads dst may run), the calendar from ridx
 * (runq_steal_from: the same, but with keep_next src keeps the thread it
 * runs next unless no other will do), then the idle queue. Nothing is
 * counted until a move has landed. Looks at max_looks queued threads at
 * most: a queue of threads pinned to src (figure 6's first seconds) is not
 * walked whole at every attempt. Returns the threads moved. A global
 * function, verified once on its own (as cfs_q_migrate).
 */
__noinline int ule_q_migrate(void)
{
	struct migrate_req *m = migrate_req();
	struct ule_tdq *stdq;
	u32 i, b;
	int stop;

	if (!m || m->src < 0 || m->src >= MAX_CPUS || !(stdq = ule_tdq(m->src)))
		return 0;
	stop = ule_move_from(ULE_Q_REALTIME, 0, ULE_MOVE_ANY);
	bpf_for(i, 0, RQ_NQS) {
		if (stop)
			break;
		b = (stdq->ridx + i) % RQ_NQS;
		if (ule_bucket_maybe(m->src, stdq, b))
			stop = ule_move_from(ULE_Q_TIMESHARE, b, ULE_MOVE_SKIP_FIRST);
	}
	if (!stop && !m->moved && m->first_pid >= 0)
		stop = ule_move_from(ULE_Q_TIMESHARE, m->first_bucket, ULE_MOVE_ONLY_FIRST);
	if (!stop)
		ule_move_from(ULE_Q_IDLE, 0, ULE_MOVE_ANY);
	if (m->looked > m->max_looks)
		m->looked = m->max_looks;
	return m->moved;
}
