/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS run queue (design: cfs.bpf.h, 1): vruntime and its floor, slices,
 * tick and wakeup preemption, a new task's place, and moving queued tasks
 * for a balancer (components.bpf.h, 3). The dispatch path is
 * cfs_dispatch.bpf.h's.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "components.bpf.h"

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

/* Queue p on its CPU; returns that CPU, -1 if p went to the local queue instead (no context). */
__hidden s32 cfs_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq;
	struct cpu_ctx *cctx;
	u64 vruntime = p->scx.dsq_vtime, floor, w;

	bool own_rq = true;

	if (!cpu_usable(cpu, p)) {
		/* Its CPU left its allowed ones: the kernel or that CPU's dispatch moves it. */
		note_move(p, MOVE_AFFINITY);
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
		own_rq = false;
	}
	if (!tctx || cpu < 0 || !(cctx = cpu_ctx(cpu)) || !(rq = cfs_rq_of(cpu))) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_min_granularity_ns, enq_flags);
		return -1;
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
	/*
	 * A wakeup on its own CPU that preempts the running task and comes
	 * before every queued one: check_preempt_wakeup and then
	 * pick_next_entity would run it next, so it goes straight to the local
	 * queue, which spares the CPU an ops.dispatch round to fetch it.
	 */
	if ((enq_flags & SCX_ENQ_WAKEUP) && own_rq && cfs_wakeup_preempts(rq, vruntime, w) &&
	    cfs_first_in_queue(cpu, vruntime)) {
		p->scx.dsq_vtime = vruntime;
		stat_inc(STAT_KICK_PREEMPT);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, cfs_sched_slice(cctx, w, true), enq_flags | SCX_ENQ_PREEMPT);
		return -1;
	}
	scx_bpf_dsq_insert_vtime(p, cpu_dsq(cpu), cfs_sched_slice(cctx, w, true), vruntime, enq_flags);

	/*
	 * Queued on its own CPU's queue, that CPU is busy (a task put back) or
	 * the kernel wakes it (a wakeup or fork: wakeup_preempt); only a queue
	 * of another CPU needs the kick.
	 */
	if (enq_flags & SCX_ENQ_WAKEUP)
		cfs_check_preempt(cpu, rq, vruntime, w, own_rq);
	else if (!own_rq)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);	/* a no-op unless the CPU is idle */
	return cpu;
}

/* The tick: check_preempt_tick (the NOHZ kick is the balancer's: cfs_balance.bpf.c). */
__hidden void cfs_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = scx_bpf_now(), ran, ideal, head, w;

	if (!rq || !tctx || !cctx || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	if (!scx_bpf_dsq_nr_queued(cpu_dsq(cpu)))
		return;		/* alone here: nothing to preempt for */

	/* The slice is used up, or the head is far behind. */
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
}

__hidden void cfs_running(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	if (!rq)
		return;
	rq->curr_vruntime = p->scx.dsq_vtime;
	rq->curr_weight = task_load_weight(p);
	rq->curr_pri = cfs_q_task_pri(p);
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


/*
 * One walk of src's queue for this CPU's migrate_req (components.bpf.h, 3):
 * from the head (lowest vruntime), tasks the balancer's filter accepts move
 * to dst, keeping their lead or lag over each queue's min_vruntime. With
 * keep_next, the head stays (src runs it next) unless the second walk,
 * only_first, finds nothing else was taken. Not inlined (__noinline): one
 * subprogram for both walks, verified once in its callers' context.
 */
__hidden __noinline int cfs_q_walk(void)
{
	struct migrate_req *m = migrate_req();
	struct cfs_rq_ctx *srq, *drq;
	struct task_struct *p;
	u64 src_floor, dst_floor;
	s32 src, dst;

	if (!m)
		return 0;
	src = m->src;
	dst = m->dst;
	if (src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS || !cpu_online[cpu_idx(src)] ||
	    !cpu_online[cpu_idx(dst)] || !(srq = cfs_rq_of(src)) || !(drq = cfs_rq_of(dst)))
		return 0;
	/* The queue clocks as the walk starts (src's may move on meanwhile). */
	src_floor = srq->min_vruntime;
	dst_floor = drq->min_vruntime;
	bpf_for_each(scx_dsq, p, cpu_dsq(src), 0) {
		struct task_ctx *tctx;
		u64 vr;
		bool ok;

		/* Linux's loop_max: look at no more than max_looks tasks. */
		if (migrate_done(m) || m->looked++ >= m->max_looks)
			break;
		if (m->keep_next && !m->skipped_first) {
			m->skipped_first = 1;
			m->first_pid = p->pid;
			continue;
		}
		if (m->only_first && p->pid != m->first_pid)
			break;
		if (!(tctx = task_ctx(p)) || !migrate_fits(m, p, tctx))
			continue;
		/* The lead or lag over min_vruntime moves with the task. */
		vr = p->scx.dsq_vtime - src_floor + dst_floor;
		scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, vr);
		/* Before the move: into a local queue, the task changes CPU inside the call. */
		note_queue_move(p, m->cause, dst);
		if (m->to_local)
			ok = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0);
		else
			ok = scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, cpu_dsq(dst), 0);
		/*
		 * A failed move keeps its note: the task is still here, and another
		 * CPU racing for it (whose move won) noted the same departure.
		 */
		if (!ok)
			continue;
		account_task(p, tctx, dst);
		tctx->vtime_cpu = dst;
		migrate_count(m, p);
		/* attach_task's check_preempt_curr, for a queue that is not this CPU's own. */
		if (m->notify)
			cfs_check_preempt(dst, drq, vr, task_load_weight(p), false);
	}
	return 0;
}

/*
 * q_migrate for CFS's queue; returns the tasks moved. A global function (no
 * __hidden): the verifier checks it once, on its own, rather than at every
 * call site in every caller's state (components.bpf.h, 6).
 */
__noinline int cfs_q_migrate(void)
{
	struct migrate_req *m = migrate_req();

	if (!m)
		return 0;
	cfs_q_walk();
	if (!m->moved && m->keep_next && m->first_pid >= 0 && m->looked < m->max_looks) {
		m->only_first = 1;
		m->keep_next = 0;
		cfs_q_walk();
	}
	if (m->looked > m->max_looks)
		m->looked = m->max_looks;
	return m->moved;
}
