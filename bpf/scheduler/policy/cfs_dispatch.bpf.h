/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS's parts of ops.dispatch (design: cfs.bpf.h, 1 and 3): the run queue's
 * (keep prev while it has the lowest vruntime, else take the queue's head)
 * and the balancer's (the periodic and NOHZ passes before, newly-idle
 * balancing when the queue had nothing). main.bpf.c's callback calls them
 * in that order, whichever components are in use. Included by main.bpf.c
 * alone and inlined into its dispatch callback, for the verifier's sake
 * (cfs.bpf.h, "Verifier cost").
 */
#ifndef __SCX_BATTLE_CFS_DISPATCH_BPF_H
#define __SCX_BATTLE_CFS_DISPATCH_BPF_H

/*
 * ops.dispatch runs before the kernel puts a still-runnable prev back in the
 * queue, so prev is not in it yet. Charge prev for the slice it just used and
 * keep it running while it still has the lowest vruntime, as CFS would pick
 * it; otherwise taking the queue's head would hand prev's turn to the next
 * task every time and flatten the nice weights.
 */
static __always_inline bool cfs_keep_prev(s32 cpu, struct task_struct *prev, struct cpu_ctx *cctx, struct cfs_rq_ctx *rq)
{
	struct task_ctx *tctx;
	u64 prev_vr, now = scx_bpf_now(), w;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || !(tctx = task_ctx(prev)))
		return false;
	w = task_load_weight(prev);
	prev_vr = prev->scx.dsq_vtime;
	prev_vr += task_ran(tctx, now) * NICE_0_LOAD / w;
	if (time_before(cfs_head_vruntime(cpu, prev_vr), prev_vr))
		return false;
	/* prev keeps the CPU: charge it now, as the stop and restart would. */
	prev->scx.dsq_vtime = prev_vr;
	tctx->last_run_at = now;
	prev->scx.slice = cfs_sched_slice(cctx, w, true);
	rq->curr_vruntime = prev_vr;
	rq->curr_started = now;
	cfs_update_min_vruntime(cpu, rq, prev_vr);
	return true;
}

/* The run queue: prev goes on, or the head runs. False if the queue is empty. */
static __always_inline bool cfs_q_dispatch(s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	if (!cctx || !rq)
		return true;
	if (cfs_keep_prev(cpu, prev, cctx, rq))
		return true;
	if (scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0)) {
		stat_inc(STAT_DSQ_MOVE);
		return true;
	}
	return false;
}

/*
 * The balancer, before the queue picks: the periodic passes that are due
 * (busy: a task waits here, or prev goes on), and this CPU's turn in a
 * NOHZ round it was woken for.
 */
static __always_inline void cfs_lb_dispatch(s32 cpu, struct task_struct *prev)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	bool busy, nohz;
	u32 round;

	if (!rq)
		return;
	nohz = rq->nohz_round != rq->nohz_done;
	round = rq->nohz_round;
	busy = (prev && (prev->scx.flags & SCX_TASK_QUEUED)) || q_has_waiting(cpu);
	/*
	 * A CPU walks the levels only once one is due (rebalance_domains runs
	 * when jiffies pass rq->next_balance): a busy one by next_balance, an
	 * idle one, whose intervals are busy_factor times shorter (idle_balance
	 * lowers next_balance so), by next_balance_idle; a CPU woken for a NOHZ
	 * round always.
	 */
	rq->in_nohz_pass = nohz;
	cfs_periodic_balance(cpu, busy, nohz);	/* which tests whether a level is due */
	rq->in_nohz_pass = 0;
	if (nohz) {
		/* This CPU's turn in a NOHZ round is done: hand the round on. */
		rq->nohz_done = round;
		cfs_nohz_pass_on(round);
	}
}

/*
 * The balancer, when the queue had nothing. Newly idle: the CPU's last task
 * just stopped (an idle CPU woken by a kick has no prev: it balanced
 * before, as an idle CPU). Pull from the closest domain that has work;
 * true if a task was taken.
 */
static __always_inline bool cfs_lb_idle(s32 cpu, struct task_struct *prev)
{
	return prev && cfs_newidle_balance(cpu);
}

/*
 * The last look before idling found a task (battle_dispatch): the CPU does
 * not go idle after all, as idle_balance treats a task enqueued while it
 * had released the rq lock ("pretend we pulled a task"): no idle period to
 * average.
 */
static __always_inline void cfs_lb_not_idle(s32 cpu)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	if (rq)
		rq->idle_stamp = 0;
}

#endif /* __SCX_BATTLE_CFS_DISPATCH_BPF_H */
