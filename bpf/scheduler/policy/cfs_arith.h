/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The CFS policy's pure balancing arithmetic: integers in, integers out, no
 * helpers, no maps. cfs.bpf.h builds on it, and the Rust unit tests
 * (sched-ext/tests/cfs_arith.rs) compile this very file with the host's C
 * compiler and check it against Linux 4.9's kernel/sched/fair.c. The includer
 * provides u32, u64 and bool (vmlinux.h in BPF, <stdint.h> on the host).
 *
 * Loads are sums of Linux nice weights (NICE_0_LOAD for a nice-0 task). A
 * group's capacity is its CPU count: Linux's avg_load (load x
 * SCHED_CAPACITY_SCALE / group_capacity) is then load / CPUs, since every
 * CPU here has the full capacity of 1024.
 */
#ifndef __SCX_BATTLE_CFS_ARITH_H
#define __SCX_BATTLE_CFS_ARITH_H

#define CFS_NICE_0_LOAD		1024	/* intf.h's NICE_0_LOAD */

/* The totals of one balance pass over a domain (update_sd_lb_stats). */
struct cfs_lb_groups {
	u64	dom_load;	/* the domain's load and CPUs */
	u64	local_load;	/* the balancing CPU's group */
	u64	busiest_load;	/* the busiest other group */
	u32	dom_nr;
	u32	local_nr;	/* CPUs in the group (its capacity) */
	u32	busiest_nr;
	u32	local_tasks;	/* runnable tasks in the group (sum_nr_running) */
	u32	busiest_tasks;
};

static inline u64 cfs_min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

/*
 * The load a pass moves (calculate_imbalance); 0 when the domain is balanced
 * as far as these totals go. The pull is what the busiest group has above the
 * domain's average, no more than the local group lacks below it, and, when
 * both groups have more tasks than CPUs (group_overloaded), no more than the
 * busiest group's tasks beyond one per CPU (load_above_capacity).
 *
 * When that is less than one of the busiest group's tasks (load_per_task),
 * detach_tasks' half-weight rule would move nothing, so fix_small_imbalance
 * asks for one whole task when moving it narrows the gap: the busiest group's
 * average plus one task (scaled to its capacity) is at least the local
 * average plus imbn tasks (2; 1 when the busiest group's tasks are heavier
 * than the local ones), or when it puts more CPU time to use (capa_move >
 * capa_now, a local group with less than a task per CPU). *small_fix says
 * whether that raised the pull.
 */
static inline u64 cfs_calc_imbalance(const struct cfs_lb_groups *g, bool *small_fix)
{
	u64 local_avg, dom_avg, busiest_avg, max_pull, above, imbalance;
	u64 blpt, llpt, scaled, imbn = 2, capa_now, capa_move = 0, tmp;

	*small_fix = false;
	if (!g->local_nr || !g->dom_nr || !g->busiest_nr || !g->busiest_tasks)
		return 0;
	local_avg = g->local_load / g->local_nr;
	dom_avg = g->dom_load / g->dom_nr;
	busiest_avg = g->busiest_load / g->busiest_nr;
	/* find_busiest_group's out_balanced cases */
	if (busiest_avg <= local_avg || dom_avg <= local_avg || busiest_avg <= dom_avg)
		return 0;

	max_pull = busiest_avg - dom_avg;
	if (g->busiest_tasks > g->busiest_nr && g->local_tasks > g->local_nr) {
		above = (u64)(g->busiest_tasks - g->busiest_nr) * CFS_NICE_0_LOAD / g->busiest_nr;
		max_pull = cfs_min_u64(max_pull, above);
	}
	imbalance = cfs_min_u64(max_pull * g->busiest_nr, (dom_avg - local_avg) * g->local_nr);

	blpt = g->busiest_load / g->busiest_tasks;
	if (imbalance >= blpt)
		return imbalance;

	/* fix_small_imbalance */
	llpt = g->local_tasks ? g->local_load / g->local_tasks : 0;
	if (g->local_tasks && blpt > llpt)
		imbn = 1;
	scaled = blpt / g->busiest_nr;
	if (busiest_avg + scaled >= local_avg + scaled * imbn) {
		*small_fix = true;
		return blpt;
	}
	capa_now = g->busiest_nr * cfs_min_u64(blpt, busiest_avg) + g->local_nr * cfs_min_u64(llpt, local_avg);
	if (busiest_avg > scaled)
		capa_move = g->busiest_nr * cfs_min_u64(blpt, busiest_avg - scaled);
	if (busiest_avg * g->busiest_nr < blpt)
		tmp = busiest_avg * g->busiest_nr / g->local_nr;
	else
		tmp = blpt / g->local_nr;
	capa_move += g->local_nr * cfs_min_u64(llpt, local_avg + tmp);
	if (capa_move > capa_now) {
		*small_fix = true;
		return blpt;
	}
	return imbalance;
}

#endif /* __SCX_BATTLE_CFS_ARITH_H */
