/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ULE, priority and interactivity (sched_ule.c: sched_interact_score,
 * sched_priority, sched_pctcpu_update, sched_wakeup, sched_fork_thread,
 * sched_exit_thread): a thread's run and sleep history, its score and
 * priority, what a child inherits and what an exiting one gives back.
 * The arithmetic is ule_arith.h's; this unit applies it to threads.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "ule.bpf.h"


static __always_inline s32 task_nice(const struct task_struct *p)
{
	return p->static_prio - 120;	/* DEFAULT_PRIO */
}


/* sched_priority: interactive threads by score, batch ones by %CPU and nice. */
__hidden void ule_priority(const struct task_struct *p, struct td_sched *ts)
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
__hidden void ule_note_task(struct task_struct *p, struct td_sched *ts)
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
__hidden void ule_charge(struct task_struct *p, struct td_sched *ts, u64 ran)
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
__hidden void ule_wakeup(struct task_struct *p, struct td_sched *ts)
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


__hidden void ule_runnable(struct task_struct *p, u64 enq_flags)
{
	struct td_sched *ts = ule_ts(p);

	if (ts && (enq_flags & SCX_ENQ_WAKEUP))
		ule_wakeup(p, ts);
}


__hidden void ule_quiescent(struct task_struct *p, u64 deq_flags)
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
__hidden s32 ule_init_task(struct task_struct *p, struct scx_init_task_args *args)
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
__hidden void ule_disable(struct task_struct *p)
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
