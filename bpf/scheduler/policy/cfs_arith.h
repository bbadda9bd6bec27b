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
	u32	local_idle;	/* CPUs of the group with no task (idle_cpus) */
	u32	busiest_idle;
};

/*
 * Linux 4.9's group types (enum group_type), in find_busiest_group's order
 * of preference. group_imbalanced (pinned tasks foiled a pass) is not
 * modelled. A group is overloaded (group_no_capacity) when it has more
 * tasks than CPUs; Linux also wants its utilization above capacity /
 * imbalance_pct, and sched_ext keeps no utilization.
 */
enum cfs_group_type {
	CFS_GROUP_OTHER,
	CFS_GROUP_OVERLOADED,
};

static inline unsigned int cfs_group_type(unsigned int tasks, unsigned int nr_cpus)
{
	return tasks > nr_cpus ? CFS_GROUP_OVERLOADED : CFS_GROUP_OTHER;
}

/*
 * update_sd_pick_busiest: is group a (tasks, load over nr CPUs) busier than
 * the busiest so far, b? The higher group type first, then the higher
 * average load. A group without CPUs never is; anything beats no group.
 */
static inline bool cfs_group_busier(unsigned int a_tasks, u64 a_load, unsigned int a_nr,
				    unsigned int b_tasks, u64 b_load, unsigned int b_nr)
{
	unsigned int ta, tb;

	if (!a_nr)
		return false;
	if (!b_nr)
		return true;
	ta = cfs_group_type(a_tasks, a_nr);
	tb = cfs_group_type(b_tasks, b_nr);
	if (ta != tb)
		return ta > tb;
	return a_load * b_nr > b_load * a_nr;
}

/* Linux's idle types of a balance pass (enum cpu_idle_type), as cfs.bpf.h's. */
#define CFS_ARITH_NOT_IDLE	0
#define CFS_ARITH_IDLE		1
#define CFS_ARITH_NEWLY_IDLE	2

/*
 * find_busiest_group's tests before calculate_imbalance: true when the pass
 * goes on to compute an imbalance, false for out_balanced. A newly-idle
 * CPU whose group has room (fewer tasks than CPUs) pulls from an
 * overloaded busiest group whatever the averages say (force_balance).
 * Otherwise the local group must be below the busiest one and below the
 * domain's average; then an idle CPU's pass goes on only when the busiest
 * group is overloaded or has at least two idle CPUs fewer than the local
 * group, and the other passes only when the busiest group is above
 * imbalance_pct of the local one.
 */
static inline bool cfs_fbg_imbalanced(const struct cfs_lb_groups *g, unsigned int idle_type, unsigned int imbalance_pct)
{
	u64 local_avg, dom_avg, busiest_avg;

	if (!g->busiest_nr || !g->busiest_tasks || !g->local_nr || !g->dom_nr)
		return false;
	if (idle_type == CFS_ARITH_NEWLY_IDLE && g->local_tasks < g->local_nr &&
	    cfs_group_type(g->busiest_tasks, g->busiest_nr) == CFS_GROUP_OVERLOADED)
		return true;
	local_avg = g->local_load / g->local_nr;
	dom_avg = g->dom_load / g->dom_nr;
	busiest_avg = g->busiest_load / g->busiest_nr;
	if (local_avg >= busiest_avg || local_avg >= dom_avg)
		return false;
	if (idle_type == CFS_ARITH_IDLE)
		return cfs_group_type(g->busiest_tasks, g->busiest_nr) == CFS_GROUP_OVERLOADED ||
		       g->local_idle > g->busiest_idle + 1;
	return busiest_avg * 100 > local_avg * imbalance_pct;
}

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
	blpt = g->busiest_load / g->busiest_tasks;

	/*
	 * Below the domain's average already, or the busiest not above it
	 * (reachable after force_balance): no pull, only fix_small_imbalance.
	 */
	if (busiest_avg <= dom_avg || local_avg >= dom_avg) {
		imbalance = 0;
	} else {
		max_pull = busiest_avg - dom_avg;
		if (g->busiest_tasks > g->busiest_nr && g->local_tasks > g->local_nr) {
			above = (u64)(g->busiest_tasks - g->busiest_nr) * CFS_NICE_0_LOAD / g->busiest_nr;
			max_pull = cfs_min_u64(max_pull, above);
		}
		imbalance = cfs_min_u64(max_pull * g->busiest_nr, (dom_avg - local_avg) * g->local_nr);
		if (imbalance >= blpt)
			return imbalance;
	}

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
