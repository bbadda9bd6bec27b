/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The vtime policy: one machine-wide queue ordered by weighted virtual time.
 *
 * A task's vtime grows by its run time scaled by 100/weight (weight 100 is
 * nice 0), so a CPU always takes the task that has had the least weighted
 * CPU. A sleeper is placed no earlier than one slice behind the queue's
 * clock, so it gets a prompt turn but cannot starve the others. Wakeups go
 * straight to an idle CPU when the kernel's default selection finds one.
 * The slice shrinks as the queue grows so a full round stays short.
 */
#ifndef __SCX_BATTLE_VTIME_BPF_H
#define __SCX_BATTLE_VTIME_BPF_H

/* Virtual time of the most recently started task: the queue's clock. */
static u64 vtime_now;

/* Slice for the next task: slice_ns shared among the tasks queued per CPU. */
static __always_inline u64 vtime_slice(void)
{
	u64 per_cpu = scx_bpf_dsq_nr_queued(SHARED_DSQ) / (nr_cpus ? nr_cpus : 1);
	u64 slice = slice_ns / (1 + per_cpu);

	return slice < slice_min_ns ? slice_min_ns : slice;
}

static s32 vtime_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle) {
		stat_inc(STAT_IDLE_PICK);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	}
	return cpu;
}

static void vtime_enqueue(struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;
	s32 cpu;

	if (time_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, vtime_slice(), vtime, enq_flags);

	/*
	 * A CPU that went idle after select_cpu looked, or any CPU when
	 * select_cpu was skipped (pinned tasks), would not look at the queue
	 * until something else woke it.
	 */
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		stat_inc(STAT_KICK_IDLE);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

static void vtime_dispatch(s32 cpu, struct task_struct *prev)
{
	if (scx_bpf_dsq_move_to_local(SHARED_DSQ, 0))
		stat_inc(STAT_DSQ_MOVE);
}

static void vtime_running(struct task_struct *p)
{
	if (time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

static void vtime_stopping(struct task_struct *p, u64 ran_ns)
{
	p->scx.dsq_vtime += scale_by_task_weight_inverse(p, ran_ns);
}

static void vtime_enable(struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

static s32 vtime_init(void)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

#endif /* __SCX_BATTLE_VTIME_BPF_H */
