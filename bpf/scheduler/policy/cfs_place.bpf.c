/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS placement (design: cfs.bpf.h, 2): where a forked or waking task goes.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "cfs.bpf.h"


/*
 * Claim an idle CPU of LLC `llc` for p: from the kernel's idle tracking, a
 * whole idle core first when there is SMT; for a task that may not run
 * everywhere, the LLC's CPUs one by one (an LLC is small). -1 if none.
 */
static s32 pick_idle_in_llc(struct task_struct *p, u32 llc, enum cost_kind kind)
{
	const struct cpumask *mask;
	s32 cpu;
	u32 i;

	if (runs_anywhere(p) && (mask = llc_mask(llc))) {
		cost_visit(kind, 1);
		if (dom_active[DOM_SMT] && (cpu = scx_bpf_pick_idle_cpu(mask, SCX_PICK_IDLE_CORE)) >= 0)
			return cpu;
		return scx_bpf_pick_idle_cpu(mask, 0);
	}
	for_each_llc_cpu(i, cpu, llc) {
		cost_visit(kind, 1);
		if (cpu_usable(cpu, p) && scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}

/*
 * find_idlest_group's margin (4.9): the local group is left for the idlest
 * other group only when its load per CPU is at least imbalance_pct/2 above
 * 100 % of the idlest's (112 % at the NUMA levels, 108 % within a node).
 */
static __always_inline bool cfs_leave_local(u64 local_avg, u64 idlest_avg, u32 level)
{
	u32 imb = 100 + (imbalance_pct[level & (NR_DOM_LEVELS - 1)] - 100) / 2;

	return idlest_avg != ~0ULL && 100 * local_avg >= imb * idlest_avg;
}

/*
 * Fork balancing (select_task_rq_fair with SD_BALANCE_FORK: find_idlest_group
 * and find_idlest_cpu down the domains), walking down the tree from the
 * forking CPU: its node unless another node's load per CPU is clearly lower
 * (cfs_leave_local), in that node the forking CPU's LLC unless another is
 * clearly less loaded, in that LLC the forking CPU unless another is clearly
 * less loaded. A node or LLC left for another is entered at its least
 * loaded LLC and CPU. A task that may not run everywhere stays on its
 * previous CPU when allowed.
 */
static s32 least_loaded_cpu(struct task_struct *p, s32 prev_cpu, s32 this_cpu, enum cost_kind kind)
{
	struct dom_stat *ds;
	struct cpu_ctx *cctx;
	u64 best_avg = ~0ULL, local_avg = ~0ULL, avg;
	u32 d, local_node, local_llc, best_node, best_llc, llc;
	s32 cpu, best = -1;
	bool local;

	if (!runs_anywhere(p))
		return cpu_usable(prev_cpu, p) ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	if (this_cpu < 0 || this_cpu >= MAX_CPUS || !cpu_online[cpu_idx(this_cpu)])
		this_cpu = prev_cpu >= 0 && prev_cpu < MAX_CPUS ? prev_cpu : 0;
	local_node = best_node = node_of(this_cpu);
	local_llc = best_llc = llc_of(this_cpu);
	bpf_for(d, 0, nr_nodes) {
		ds = node_stat_of(d);
		avg = ds->nr_cpus ? ds->load / ds->nr_cpus : ~0ULL;
		if (d == local_node)
			local_avg = avg;
		else if (avg < best_avg) {
			best_avg = avg;
			best_node = d;
		}
	}
	if (!cfs_leave_local(local_avg, best_avg, DOM_ALL))
		best_node = local_node;
	local = best_node == local_node;

	best_avg = ~0ULL;
	local_avg = ~0ULL;
	if (!local)
		best_llc = node_first_llc[best_node & (MAX_CPUS - 1)];
	for_each_node_llc(d, llc, best_node) {
		ds = llc_stat_of(llc);
		avg = ds->nr_cpus ? ds->load / ds->nr_cpus : ~0ULL;
		if (local && llc == local_llc)
			local_avg = avg;
		else if (avg < best_avg) {
			best_avg = avg;
			best_llc = llc;
		}
	}
	if (local && !cfs_leave_local(local_avg, best_avg, DOM_NODE))
		best_llc = local_llc;
	local = local && best_llc == local_llc;

	best_avg = ~0ULL;
	local_avg = ~0ULL;
	for_each_llc_cpu(d, cpu, best_llc) {
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		if (local && cpu == this_cpu)
			local_avg = cctx->load;
		else if (cctx->load < best_avg) {
			best_avg = cctx->load;
			best = cpu;
		}
	}
	if (local && !cfs_leave_local(local_avg, best_avg, DOM_LLC))
		best = this_cpu;
	cost_visit(kind, nr_nodes + node_nr_llcs[best_node & (MAX_CPUS - 1)] + llc_nr[best_llc & (MAX_CPUS - 1)]);
	return best >= 0 ? best : prev_cpu;
}

/*
 * wake_affine (4.9, without task groups): may p wake on the waker's CPU
 * rather than on prev? Yes when the waker's CPU, with p added (and the waker
 * taken off for a sync wakeup), is no busier than prev scaled by half the
 * domain's imbalance_pct above 100.
 */
static bool cfs_wake_affine(struct task_struct *p, s32 this_cpu, s32 prev_cpu, bool sync)
{
	struct cpu_ctx *this_ctx = cpu_ctx(this_cpu), *prev_ctx = cpu_ctx(prev_cpu);
	struct task_struct *curr = bpf_get_current_task_btf();
	u64 this_load, prev_load, w = task_load_weight(p);
	u32 level, pct = 125;

	if (!this_ctx || !prev_ctx)
		return false;
	this_load = this_ctx->load;
	prev_load = prev_ctx->load;
	if (sync) {
		u64 cw = task_load_weight(curr);

		this_load = this_load > cw ? this_load - cw : 0;
	}
	/* An idle waker's CPU (after a sync wakeup) takes p. */
	if (!this_load)
		return true;
	/* The lowest domain spanning both CPUs gives the imbalance_pct. */
	bpf_for(level, 0, NR_DOM_LEVELS) {
		if (dom_active[level & (NR_DOM_LEVELS - 1)] && in_domain(this_cpu, prev_cpu, level)) {
			pct = imbalance_pct[level & (NR_DOM_LEVELS - 1)];
			break;
		}
	}
	return 100 * (this_load + w) <= (100 + (pct - 100) / 2) * prev_load;
}

/*
 * record_wakee (4.9): count the waker's switches between wakees, halving
 * the count at most once a second, so a task that wakes many others gathers
 * flips and one that wakes the same partner keeps none.
 */
static __always_inline void cfs_record_wakee(struct task_ctx *waker, const struct task_struct *p)
{
	u64 now = scx_bpf_now();

	if (now - waker->wakee_flip_decay_at > WAKEE_FLIP_DECAY_NS) {
		waker->wakee_flips >>= 1;
		waker->wakee_flip_decay_at = now;
	}
	if (waker->last_wakee != (u64)p) {
		waker->last_wakee = (u64)p;
		waker->wakee_flips++;
	}
}

/*
 * wake_wide (4.9): a many-to-many waking pattern (hackbench's senders and
 * receivers, a server's worker pool) is not pulled onto the waker's CPU,
 * where its wakees would pile up behind one another: both tasks have
 * switched wakees at least as often as the LLC has CPUs, and the busier
 * waker at least that many times more than the other.
 */
static __always_inline bool cfs_wake_wide(const struct task_ctx *waker, const struct task_ctx *wakee, s32 this_cpu)
{
	u32 master = waker->wakee_flips, slave = wakee->wakee_flips, t;
	u32 factor = llc_nr[llc_of(this_cpu) & (MAX_CPUS - 1)];

	if (master < slave) {
		t = master;
		master = slave;
		slave = t;
	}
	return !(slave < factor || master < slave * factor);
}

/*
 * select_idle_sibling: target if idle, prev if idle and in target's LLC,
 * then an idle core and an idle CPU of target's LLC; else target.
 */
static s32 cfs_idle_sibling(struct task_struct *p, s32 prev_cpu, s32 target)
{
	s32 cpu;

	cost_visit(COST_SELECT, 1);
	if (scx_bpf_test_and_clear_cpu_idle(target))
		return target;
	if (prev_cpu != target && cpu_usable(prev_cpu, p) && llc_of(prev_cpu) == llc_of(target)) {
		cost_visit(COST_SELECT, 1);
		if (scx_bpf_test_and_clear_cpu_idle(prev_cpu))
			return prev_cpu;
	}
	cpu = pick_idle_in_llc(p, llc_of(target), COST_SELECT);
	if (cpu >= 0) {
		stat_inc(STAT_IDLE_PICK);
		return cpu;
	}
	return target;
}

__hidden s32 cfs_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 this_cpu = bpf_get_smp_processor_id(), target = prev_cpu, cpu;
	struct task_ctx *waker, *wakee;
	bool wide;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	if (wake_flags & SCX_WAKE_FORK) {
		/* Fork balancing: the idlest CPU down the domains, staying near the parent unless clearly worse. */
		cpu = least_loaded_cpu(p, prev_cpu, this_cpu, COST_SELECT);
		if (cpu >= 0 && scx_bpf_test_and_clear_cpu_idle(cpu))
			stat_inc(STAT_IDLE_PICK);
		goto out;
	}
	if (!cpu_usable(prev_cpu, p)) {
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
		goto out;
	}
	/* A waker of another class (an interrupt's kernel thread, say) has no flips: no wake_wide. */
	waker = task_ctx(bpf_get_current_task_btf());
	if (waker)
		cfs_record_wakee(waker, p);
	/* Both need LLC-size flips: a waker with fewer (one partner, say) spares the wakee's lookup. */
	wide = waker && waker->wakee_flips >= llc_nr[llc_of(this_cpu) & (MAX_CPUS - 1)] &&
	       (wakee = task_ctx(p)) && cfs_wake_wide(waker, wakee, this_cpu);
	if (wide)
		stat_inc(STAT_WAKE_WIDE);
	else if (this_cpu != prev_cpu && cpu_usable(this_cpu, p) &&
	    cfs_wake_affine(p, this_cpu, prev_cpu, wake_flags & SCX_WAKE_SYNC)) {
		stat_inc(STAT_WAKE_AFFINE);
		target = this_cpu;
	}
	cpu = cfs_idle_sibling(p, prev_cpu, target);
out:
	cost_end(COST_SELECT);
	return cpu;
}
