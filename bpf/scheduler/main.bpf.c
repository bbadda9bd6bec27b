/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * scx_battle: one sched_ext scheduler, built from components.
 *
 * A scheduler here is three components: a run queue (which task runs next
 * on a CPU, for how long, and what running, sleeping and waking do to it),
 * a placement (where a waking or new task goes), and a balancer (moving
 * queued tasks between CPUs afterwards). The loader picks each with
 * --policy and writes it into queue_comp, place_comp and balance_comp
 * before the program is verified; because they are read-only data the
 * verifier drops the branches of the components not chosen, so each
 * combination is verified as a program of its own. Each ops callback below
 * hands the event to the component it concerns, in a fixed order (ops.dispatch:
 * the balancer's periodic work, the run queue's pick, the balancer's idle
 * pull or steal). What one component may ask of another is
 * policy/components.bpf.h's; the components share the helpers in
 * shared.bpf.h (task context, topology, the per-CPU, LLC and node loads and
 * task counts every run queue keeps, counters, run time).
 *
 * Components:
 *   vtime  one machine-wide queue ordered by weighted virtual time, the
 *          kernel's default idle pick, no balancer (policy/vtime.bpf.h);
 *          all three components at once
 *   cfs    Linux CFS: per-CPU vruntime queues (cfs_runq.bpf.c),
 *          select_task_rq_fair (cfs_place.bpf.c), load_balance
 *          (cfs_balance.bpf.c); the design is cfs.bpf.h's
 *   ule    FreeBSD ULE: interactive/batch/idle queues per CPU
 *          (ule_runq.bpf.c, ule_prio.bpf.c), sched_pickcpu (ule_place.bpf.c),
 *          CPU 0's balancer and idle stealing (ule_balance.bpf.c); the
 *          design is ule.bpf.c's
 * The presets cfs and ule take all three of one scheduler; the six mixes
 * (e.g. cfs-cfs-ule: CFS's run queue and placement, ULE's balancer) are the
 * ablation's.
 *
 * Cost. Nothing on a hot path (select_cpu, enqueue, dispatch, balancing
 * under a run-queue lock) looks at every CPU: the topology is a tree with
 * per-LLC and per-node loads kept up to date as tasks move, idle CPUs come
 * from the kernel's idle tracking within topology cpumasks, and queue walks
 * are bounded (see each policy's "Cost" notes). The costs map counts what
 * each callback looked at, for scripts/bench-cost. Per-CPU state that other
 * CPUs write sits on cache lines of its own.
 *
 * Why tasks move. Every decision that sends a task to another CPU leaves a
 * note on the task (shared.bpf.h's note_move: wakeup placement in
 * ops.select_cpu, each balancer's and steal's queue moves with their cause,
 * an affinity change that leaves the task's CPU), which loadgen's recorder
 * reads when the move happens (bpf/recorder/move_note.h): every migration a
 * study records has its cause. Only moves are noted; a task that stays
 * costs nothing. Not noted: the vtime policy's shared queue (any CPU takes
 * any task: its migrations are "unknown"), and the kernel's own moves (its
 * fallbacks while the scheduler loads or a CPU goes offline).
 *
 * The scheduler runs every task (no SCX_OPS_SWITCH_PARTIAL). It implements no
 * CPU hotplug callbacks, so the kernel ends it with a restart request when a
 * CPU comes or goes, and the loader starts it again.
 */
#include <scx/common.bpf.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

UEI_DEFINE(uei);

/*
 * This unit is the home of the globals and maps of shared.bpf.h, cfs.bpf.h
 * and ule.bpf.h, and build.rs links it first (see shared.bpf.h).
 */
#define BATTLE_SHARED_HOME
#include "shared.bpf.h"
#include "policy/vtime.bpf.h"
#include "policy/components.bpf.h"
#include "policy/cfs_dispatch.bpf.h"

s32 BPF_STRUCT_OPS(battle_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu;

	switch (place_comp) {
	case COMP_CFS:
		cpu = cfs_select_cpu(p, prev_cpu, wake_flags);
		break;
	case COMP_ULE:
		cpu = ule_select_cpu(p, prev_cpu, wake_flags);
		break;
	default:
		cpu = vtime_select_cpu(p, prev_cpu, wake_flags);
	}
	/*
	 * A waking task placed elsewhere moves right after this returns. (A new
	 * task's first CPU is set without a migration: nothing to note.)
	 */
	if (cpu >= 0 && cpu != prev_cpu && !(wake_flags & SCX_WAKE_FORK))
		note_move(p, bpf_cpumask_test_cpu(prev_cpu, p->cpus_ptr) ? MOVE_WAKEUP : MOVE_AFFINITY);
	return cpu;
}

void BPF_STRUCT_OPS(battle_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 queued_on;

	stat_inc(STAT_ENQUEUE);
	cost_begin(COST_ENQUEUE);
	cost_visit(COST_ENQUEUE, 1);
	switch (queue_comp) {
	case COMP_CFS:
		queued_on = cfs_enqueue(p, enq_flags);
		break;
	case COMP_ULE:
		queued_on = ule_enqueue(p, enq_flags);
		break;
	default:
		vtime_enqueue(p, enq_flags);
		queued_on = -1;
	}
	if (queued_on >= 0 && balance_comp == COMP_ULE)
		ule_kick_stealer(p, queued_on);
	cost_end(COST_ENQUEUE);
}

void BPF_STRUCT_OPS(battle_dispatch, s32 cpu, struct task_struct *prev)
{
	bool picked;

	stat_inc(STAT_DISPATCH);
	if (queue_comp == COMP_VTIME) {
		vtime_dispatch(cpu, prev);
		return;
	}
	/* A CPU that came online after the load has no queues: the restart is on its way. */
	if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	cost_begin(COST_DISPATCH);
	/* The balancer's periodic work. */
	if (balance_comp == COMP_CFS)
		cfs_lb_dispatch(cpu, prev);
	else
		ule_arm_balancer(cpu);
	/* The run queue's pick. */
	if (queue_comp == COMP_CFS)
		picked = cfs_q_dispatch(cpu, prev);
	else
		picked = ule_q_dispatch(cpu, prev);
	/* Nothing queued here: the balancer pulls or steals. */
	if (!picked) {
		if (balance_comp == COMP_CFS)
			picked = cfs_lb_idle(cpu, prev);
		else if (steal_idle)
			picked = ule_steal(cpu);
		/*
		 * Still nothing: look at this CPU's queue once more before it
		 * goes idle. Taking a task from another CPU drops this CPU's
		 * run-queue lock for the move, and a wakeup queued here in
		 * that window found the CPU neither idle nor about to look
		 * (its kick rescheduled prev, not the idle task to come, and
		 * the kernel does not call ops.dispatch again after a pass
		 * that dispatched nothing): the thread waited until some other
		 * event woke this CPU, 1.9 s under pgbench (ULE: 8 clients on
		 * 8 CPUs at 60-120 transactions/s against CFS's 620-690).
		 * Linux's idle_balance looks again for the same reason.
		 */
		if (!picked && q_take_next(cpu)) {
			stat_inc(STAT_DISPATCH_RECHECK);
			if (balance_comp == COMP_CFS)
				cfs_lb_not_idle(cpu);
		}
	}
	cost_end(COST_DISPATCH);
}

void BPF_STRUCT_OPS(battle_running, struct task_struct *p)
{
	task_start_run(p);
	/* An idle period ends: CFS's balancer averages them (avg_idle). */
	if (balance_comp == COMP_CFS)
		cfs_lb_running(scx_bpf_task_cpu(p));
	switch (queue_comp) {
	case COMP_CFS:
		cfs_running(p);
		break;
	case COMP_ULE:
		ule_running(p);
		break;
	default:
		vtime_running(p);
	}
}

void BPF_STRUCT_OPS(battle_stopping, struct task_struct *p, bool runnable)
{
	u64 ran = task_stop_run(p);

	switch (queue_comp) {
	case COMP_CFS:
		cfs_stopping(p, ran);
		break;
	case COMP_ULE:
		ule_stopping(p, ran, runnable);
		break;
	default:
		vtime_stopping(p, ran);
	}
}

void BPF_STRUCT_OPS(battle_tick, struct task_struct *p)
{
	s32 cpu;

	if (queue_comp == COMP_VTIME)
		return;
	if (queue_comp == COMP_CFS)
		cfs_tick(p);
	else
		ule_tick(p);
	cpu = scx_bpf_task_cpu(p);
	if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	/* (ULE's balancer is armed in ops.dispatch alone: ule_arm_balancer says why.) */
	if (balance_comp == COMP_CFS)
		cfs_nohz_kick(cpu);
}

/* New allowed CPUs. If they exclude the task's CPU, the kernel moves it. */
void BPF_STRUCT_OPS(battle_set_cpumask, struct task_struct *p, const struct cpumask *cpumask)
{
	if (!bpf_cpumask_test_cpu(scx_bpf_task_cpu(p), cpumask))
		note_move(p, MOVE_AFFINITY);
}

/* The task becomes runnable (wakes up, or is queued again after a change). */
void BPF_STRUCT_OPS(battle_runnable, struct task_struct *p, u64 enq_flags)
{
	if (queue_comp == COMP_ULE)
		ule_runnable(p, enq_flags);
}

/* The task stops being runnable (sleeps): it no longer loads its CPU. */
void BPF_STRUCT_OPS(battle_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		account_task(p, tctx, -1);
	if (queue_comp == COMP_ULE)
		ule_quiescent(p, deq_flags);
}

void BPF_STRUCT_OPS(battle_enable, struct task_struct *p)
{
	switch (queue_comp) {
	case COMP_CFS:
		cfs_enable(p);
		break;
	case COMP_ULE:
		break;
	default:
		vtime_enable(p);
	}
}

/* The task leaves sched_ext (exit, or the scheduler unloading). */
void BPF_STRUCT_OPS(battle_disable, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		account_task(p, tctx, -1);
	if (queue_comp == COMP_ULE)
		ule_disable(p);
}

s32 BPF_STRUCT_OPS(battle_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	s32 ret = task_ctx_create(p, args->fork);

	if (!ret && queue_comp == COMP_ULE)
		ret = ule_init_task(p, args);
	return ret;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(battle_init)
{
	s32 ret = dom_masks_init();

	if (ret)
		return ret;
	switch (queue_comp) {
	case COMP_CFS:
		ret = create_cpu_dsqs();
		break;
	case COMP_ULE:
		ret = ule_init();
		break;
	default:
		return vtime_init();
	}
	return ret;
}

/* Policy state of one CPU in the kernel's exit dump (scx_bpf_dump). */
void BPF_STRUCT_OPS(battle_dump_cpu, struct scx_dump_ctx *dctx, s32 cpu, bool idle)
{
	if (queue_comp == COMP_ULE)
		ule_dump_cpu(dctx, cpu);
}

void BPF_STRUCT_OPS(battle_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

SCX_OPS_DEFINE(battle_ops,
	       .select_cpu	= (void *)battle_select_cpu,
	       .enqueue		= (void *)battle_enqueue,
	       .dispatch	= (void *)battle_dispatch,
	       .running		= (void *)battle_running,
	       .stopping	= (void *)battle_stopping,
	       .tick		= (void *)battle_tick,
	       .runnable	= (void *)battle_runnable,
	       .quiescent	= (void *)battle_quiescent,
	       .set_cpumask	= (void *)battle_set_cpumask,
	       .enable		= (void *)battle_enable,
	       .disable		= (void *)battle_disable,
	       .init_task	= (void *)battle_init_task,
	       .init		= (void *)battle_init,
	       .dump_cpu	= (void *)battle_dump_cpu,
	       .exit		= (void *)battle_exit,
	       /*
	        * No flags. Without SCX_OPS_ENQ_LAST the kernel keeps running a
	        * task whose slice ended when dispatch finds nothing else, as
	        * both policies want (CFS's and ULE's dispatch decide themselves
	        * whether prev goes on). Built-in idle tracking stays on (no
	        * ops.update_idle): placement relies on it. Exiting and
	        * migration-disabled tasks go straight to their CPU's local
	        * queue, the kernel's default.
	        */
	       .flags		= 0,
	       .timeout_ms	= 10000,
	       .name		= "scx_battle");
