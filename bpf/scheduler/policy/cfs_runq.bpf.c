/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS run queue (design: cfs.bpf.h, 1): vruntime and its floor, slices,
 * tick and wakeup preemption, the dispatch path, a new task's place, and
 * the NOHZ kick that starts an idle-balance round.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "cfs.bpf.h"

/* The NOHZ idle balancer: when the next round may start, and its number. */
u64 nohz_next_balance;
u32 nohz_round;

/*
 * A vruntime on `from`'s queue clock, expressed on `to`'s: the lead or lag
 * over the old queue's min_vruntime, negative or not, is kept (Linux
 * subtracts one min_vruntime and adds the other).
 */
static __always_inline u64 cfs_rebase(u64 vruntime, s32 from, s32 to)
{
	struct cfs_rq_ctx *f, *t;

	if (from < 0 || from == to || !(f = cfs_rq_of(from)) || !(t = cfs_rq_of(to)))
		return vruntime;
	return vruntime - f->min_vruntime + t->min_vruntime;
}

__hidden void cfs_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq;
	struct cpu_ctx *cctx;
	u64 vruntime = p->scx.dsq_vtime, floor, curr_vr, gran, w;

	if (!cpu_usable(cpu, p))
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	if (!tctx || cpu < 0 || !(cctx = cpu_ctx(cpu)) || !(rq = cfs_rq_of(cpu))) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_min_granularity_ns, enq_flags);
		return;
	}
	account_task(p, tctx, cpu);
	w = task_load_weight(p);

	/* Each queue has its own clock: carry the lead or lag over on a move. */
	vruntime = cfs_rebase(vruntime, tctx->vtime_cpu, cpu);
	tctx->vtime_cpu = cpu;

	/* Bounded sleeper credit: a waking task is at most half a latency period behind. */
	floor = rq->min_vruntime - sched_latency_ns / 2;
	if ((enq_flags & SCX_ENQ_WAKEUP) && time_before(vruntime, floor))
		vruntime = floor;
	scx_bpf_dsq_insert_vtime(p, cpu_dsq(cpu), cfs_sched_slice(cctx, w, true), vruntime, enq_flags);

	/*
	 * check_preempt_wakeup: the running task's vruntime now against the
	 * waker's, with the granularity in the waking task's vruntime units.
	 */
	curr_vr = cfs_curr_vruntime(rq, scx_bpf_now());
	gran = sched_wakeup_granularity_ns * NICE_0_LOAD / w;
	if ((enq_flags & SCX_ENQ_WAKEUP) && rq->curr_started && (s64)(curr_vr - vruntime) > (s64)gran) {
		stat_inc(STAT_KICK_PREEMPT);
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	} else {
		/* A no-op unless the CPU is idle. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

/*
 * The tick: check_preempt_tick, and the NOHZ kick (nohz_balancer_kick) when
 * a task waits here while CPUs may idle.
 */
__hidden void cfs_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = scx_bpf_now(), ran, ideal, head, next, w;
	u32 lowest = 0, level;

	if (!rq || !tctx || !cctx || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	if (!scx_bpf_dsq_nr_queued(cpu_dsq(cpu)))
		return;		/* alone here: nothing to preempt for, nobody to give away */

	/* check_preempt_tick: the slice is used up, or the head is far behind. */
	w = task_load_weight(p);
	ran = task_ran(tctx, now);
	ideal = cfs_sched_slice(cctx, w, true);
	head = cfs_head_vruntime(cpu, ~0ULL);
	if (ran > ideal ||
	    (ran >= sched_min_granularity_ns && head != ~0ULL &&
	     (s64)(cfs_curr_vruntime(rq, now) - head) > (s64)ideal)) {
		p->scx.slice = 0;
		stat_inc(STAT_TICK_PREEMPT);
	}

	/* The NOHZ kick: one CPU starts a round per shortest idle interval. */
	next = nohz_next_balance;
	if (time_before(now, next))
		return;
	bpf_for(level, 0, NR_DOM_LEVELS) {
		if (dom_active[level & (NR_DOM_LEVELS - 1)]) {
			lowest = dom_weight[level & (NR_DOM_LEVELS - 1)][cpu_idx(cpu)];
			break;
		}
	}
	if (!__sync_bool_compare_and_swap(&nohz_next_balance, next, now + (u64)lowest * 1000000ULL))
		return;
	cfs_nohz_pass_on(__sync_add_and_fetch(&nohz_round, 1));
}

__hidden void cfs_running(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	if (!rq)
		return;
	rq->curr_vruntime = p->scx.dsq_vtime;
	rq->curr_weight = task_load_weight(p);
	rq->curr_started = scx_bpf_now();
	cfs_update_min_vruntime(cpu, rq, p->scx.dsq_vtime);
}

__hidden void cfs_stopping(struct task_struct *p, u64 ran_ns)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(scx_bpf_task_cpu(p));

	p->scx.dsq_vtime += ran_ns * NICE_0_LOAD / task_load_weight(p);
	if (rq)
		rq->curr_started = 0;
}

/*
 * A task joins the policy. A new one (a fork): START_DEBIT places it one
 * vslice after the queue's floor, so it waits its turn instead of
 * preempting, and never before the CFS task running on the forking CPU
 * (task_fork_fair's cfs_rq->curr: the parent when the parent is ours; none
 * when the parent belongs to another class, a SCHED_FIFO thread say, whose
 * own vruntime is frozen since it left). One that existed already (the
 * scheduler loading, or a task switching in from another class) starts at
 * the floor, as switched_to_fair places a task that was not queued: a debit
 * there would be a fork's penalty on a task that never forked, and for a
 * nice-19 kernel thread on a quiet CPU it is a whole period at weight 15,
 * 1.6 s of vruntime, which 16 spinners arriving later take 26 s to catch up
 * with: the watchdog ejected the scheduler for khugepaged so.
 *
 * The parent's own dsq_vtime is not used: a parent of another class last ran
 * here long ago, and charging it the time since then as if it had run (as
 * this function once did) gave each child created by a SCHED_FIFO thread a
 * vruntime that grew with wall-clock time. Children pinned to one CPU then
 * queued behind each other by up to the whole creation time each, so the
 * last ones waited nr_running times that, and the watchdog ejected the
 * scheduler (512 threads started spinning on one CPU of 2 x 16 cores).
 */
__hidden void cfs_enable(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p), this_cpu = bpf_get_smp_processor_id();
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu), *this_rq;
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 vr, curr_vr;

	if (!rq || !cctx || !tctx) {
		p->scx.dsq_vtime = 0;
		return;
	}
	vr = rq->min_vruntime;
	if (!tctx->forked)
		goto out;
	/* Only the first enable is a fork's: a later one is a switch back from another class. */
	tctx->forked = 0;
	vr += cfs_sched_vslice(cctx, task_load_weight(p), false);
	if ((this_rq = cfs_rq_of(this_cpu)) && (curr_vr = cfs_curr_vruntime(this_rq, scx_bpf_now()))) {
		curr_vr = cfs_rebase(curr_vr, this_cpu, cpu);
		if (time_before(vr, curr_vr))
			vr = curr_vr;
	}
out:
	p->scx.dsq_vtime = vr;
	tctx->vtime_cpu = cpu;
}
