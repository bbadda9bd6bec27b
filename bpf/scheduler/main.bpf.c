/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * scx_battle: one sched_ext scheduler, several policies.
 *
 * The loader picks a policy with --policy and writes it into `policy` before
 * the program is verified; because `policy` is read-only data the verifier
 * drops the branches of the policies not chosen. Each ops callback below is a
 * thin switch that hands the event to the policy's own function; the policies
 * live in their own files and share the helpers in shared.bpf.h (task
 * context, topology, counters, run-time accounting). vtime is a header of
 * this unit; CFS and ULE are compilation units of their own (cfs_*.bpf.c
 * declared in cfs.bpf.h, ule*.bpf.c declared in ule.bpf.h), linked with
 * this one into one object by build.rs.
 *
 * Policies:
 *   vtime  one machine-wide queue ordered by weighted virtual time (vtime.bpf.h)
 *   cfs    Linux CFS: per-CPU vruntime queues, topology-aware load balancing
 *          (cfs.bpf.h, cfs_*.bpf.c)
 *   ule    FreeBSD ULE: interactive/batch/idle queues per CPU, thread-count
 *          placement, CPU 0's periodic balancer, idle stealing (ule.bpf.c)
 *
 * Cost. Nothing on a hot path (select_cpu, enqueue, dispatch, balancing
 * under a run-queue lock) looks at every CPU: the topology is a tree with
 * per-LLC and per-node loads kept up to date as tasks move, idle CPUs come
 * from the kernel's idle tracking within topology cpumasks, and queue walks
 * are bounded (see each policy's "Cost" notes). The costs map counts what
 * each callback looked at, for scripts/bench-cost. Per-CPU state that other
 * CPUs write sits on cache lines of its own.
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
#include "policy/cfs.bpf.h"
#include "policy/cfs_dispatch.bpf.h"
#include "policy/ule.bpf.h"

s32 BPF_STRUCT_OPS(battle_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	switch (policy) {
	case POLICY_CFS:
		return cfs_select_cpu(p, prev_cpu, wake_flags);
	case POLICY_ULE:
		return ule_select_cpu(p, prev_cpu, wake_flags);
	default:
		return vtime_select_cpu(p, prev_cpu, wake_flags);
	}
}

void BPF_STRUCT_OPS(battle_enqueue, struct task_struct *p, u64 enq_flags)
{
	stat_inc(STAT_ENQUEUE);
	cost_begin(COST_ENQUEUE);
	cost_visit(COST_ENQUEUE, 1);
	switch (policy) {
	case POLICY_CFS:
		cfs_enqueue(p, enq_flags);
		break;
	case POLICY_ULE:
		ule_enqueue(p, enq_flags);
		break;
	default:
		vtime_enqueue(p, enq_flags);
	}
	cost_end(COST_ENQUEUE);
}

void BPF_STRUCT_OPS(battle_dispatch, s32 cpu, struct task_struct *prev)
{
	stat_inc(STAT_DISPATCH);
	switch (policy) {
	case POLICY_CFS:
		cfs_dispatch(cpu, prev);
		break;
	case POLICY_ULE:
		ule_dispatch(cpu, prev);
		break;
	default:
		vtime_dispatch(cpu, prev);
	}
}

void BPF_STRUCT_OPS(battle_running, struct task_struct *p)
{
	task_start_run(p);
	switch (policy) {
	case POLICY_CFS:
		cfs_running(p);
		break;
	case POLICY_ULE:
		ule_running(p);
		break;
	default:
		vtime_running(p);
	}
}

void BPF_STRUCT_OPS(battle_stopping, struct task_struct *p, bool runnable)
{
	u64 ran = task_stop_run(p);

	switch (policy) {
	case POLICY_CFS:
		cfs_stopping(p, ran);
		break;
	case POLICY_ULE:
		ule_stopping(p, ran, runnable);
		break;
	default:
		vtime_stopping(p, ran);
	}
}

void BPF_STRUCT_OPS(battle_tick, struct task_struct *p)
{
	if (policy == POLICY_CFS)
		cfs_tick(p);
	else if (policy == POLICY_ULE)
		ule_tick(p);
}

/* The task becomes runnable (wakes up, or is queued again after a change). */
void BPF_STRUCT_OPS(battle_runnable, struct task_struct *p, u64 enq_flags)
{
	if (policy == POLICY_ULE)
		ule_runnable(p, enq_flags);
}

/* The task stops being runnable (sleeps): it no longer loads its CPU. */
void BPF_STRUCT_OPS(battle_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		account_task(p, tctx, -1);
	if (policy == POLICY_ULE)
		ule_quiescent(p, deq_flags);
}

void BPF_STRUCT_OPS(battle_enable, struct task_struct *p)
{
	switch (policy) {
	case POLICY_CFS:
		cfs_enable(p);
		break;
	case POLICY_ULE:
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
	if (policy == POLICY_ULE)
		ule_disable(p);
}

s32 BPF_STRUCT_OPS(battle_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	s32 ret = task_ctx_create(p, args->fork);

	if (!ret && policy == POLICY_ULE)
		ret = ule_init_task(p, args);
	return ret;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(battle_init)
{
	s32 ret = dom_masks_init();

	if (ret)
		return ret;
	switch (policy) {
	case POLICY_CFS:
		return create_cpu_dsqs();
	case POLICY_ULE:
		return ule_init();
	default:
		return vtime_init();
	}
}

/* Policy state of one CPU in the kernel's exit dump (scx_bpf_dump). */
void BPF_STRUCT_OPS(battle_dump_cpu, struct scx_dump_ctx *dctx, s32 cpu, bool idle)
{
	if (policy == POLICY_ULE)
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
