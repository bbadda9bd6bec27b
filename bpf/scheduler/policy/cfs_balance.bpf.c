/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS balancing (design: cfs.bpf.h, 3): load_balance over the domains,
 * its periodic, newly-idle and NOHZ passes, and the NOHZ kick. The balancer
 * component (components.bpf.h): it reads loads from account_task's sums
 * and moves tasks through the run queue's q_migrate, whichever queue that is.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "components.bpf.h"

/* The NOHZ idle balancer: when the next round may start, and its number. */
u64 nohz_next_balance;
u32 nohz_round;

/*
 * Linux's lb_env fields a pull needs, kept in map memory: the verifier does
 * not track values there.
 */
struct pull_state {
	u32	idle_type;	/* enum cfs_idle_type of the pass */
};

/* The running totals of one balance pass, in map memory for the same reason. */
struct balance_state {
	struct cfs_lb_groups g;	/* the groups' loads, CPUs and tasks (cfs_arith.h) */
	u64	src_load;
	u64	imbalance;	/* load to move (cfs_calc_imbalance) */
	u32	busiest_g;	/* its id: a CPU, core (first CPU's tree position), LLC or node */
	s32	src;
	u32	visits;
	/*
	 * cfs_scan_groups' running sums for the group being added up, here
	 * rather than in registers: the verifier does not track map memory, so
	 * the walk's turns look alike to it (counted in registers, Linux 6.19's
	 * verifier gave up on ops.dispatch: "sequence of 8193 jumps").
	 */
	u64	cur_load;
	u32	cur_nr;
	u32	cur_tasks;
	u32	cur_idle;
};

/* Per-CPU scratch for balancing: the pass and the pull. */
struct lb_scratch {
	struct balance_state bal;
	struct pull_state pull;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct lb_scratch);
} lb_scratch SEC(".maps");

/*
 * detach_tasks: pull queued tasks from src's queue to this CPU's until
 * `imbalance` load has moved, looking at sched_nr_migrate tasks at most,
 * passing over cache-hot ones until balancing at this level has failed
 * cache_nice_tries times; a newly-idle pass stops after one task
 * (newidle_pull_one). The run queue walks its tasks and moves them
 * (q_migrate). Returns how many moved. Not inlined (__noinline): one
 * subprogram, not a copy at every call site inside the callers' loops.
 * (__hidden gives it static linkage in libbpf, so the verifier checks it in
 * its callers' context.)
 */
__hidden __noinline int cfs_pull(s32 this_cpu, s32 src, u32 level, u64 imbalance)
{
	struct cfs_rq_ctx *drq = cfs_rq_of(this_cpu);
	struct migrate_req *m;
	struct lb_scratch *gs;
	u32 zero = 0, moved, cause;

	if (!drq || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	/* Newly idle; else this CPU's turn in a NOHZ round it was woken for (cfs_lb_dispatch); else periodic. */
	cause = gs->pull.idle_type == CFS_NEWLY_IDLE ? MOVE_NEWIDLE :
		drq->in_nohz_pass ? MOVE_NOHZ : MOVE_BALANCE;
	if (!(m = migrate_req_init(src, this_cpu, 0, COST_DISPATCH, cause)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	m->max_tasks = ~0U;
	m->max_looks = sched_nr_migrate;
	m->load_budget = imbalance;
	if (drq->nr_balance_failed[level] <= cache_nice_tries[level])
		m->hot_ns = sched_migration_cost_ns;
	m->newidle_one = gs->pull.idle_type == CFS_NEWLY_IDLE && newidle_pull_one;
	moved = q_migrate();
	cost_visit(COST_DISPATCH, m->looked);
	stat_add(STAT_MIGRATE_SMT + level, moved);
	return moved;
}

/*
 * The groups of this CPU's domain at `level`, from the per-LLC and per-node
 * counts where the groups are LLCs or nodes, else from the CPUs of one core
 * or one LLC: adds every group's load into bs and keeps the busiest other
 * group (update_sd_pick_busiest: an overloaded group first, then by load per
 * CPU) and this CPU's own, with their idle CPUs. Looks at one LLC's CPUs, or a
 * node's LLCs, or the nodes: never at every CPU. Not inlined, as cfs_pull,
 * and so are the next two.
 */
__hidden __noinline int cfs_scan_groups(s32 this_cpu, u32 level)
{
	u32 i, first, nr, g, local_g, gnr, gtasks, gidle, zero = 0;
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 gload;
	struct cpu_ctx *cctx;
	struct dom_stat *ds;
	s32 cpu;

	if (this_cpu < 0 || this_cpu >= MAX_CPUS || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	bs = &gs->bal;
	bs->cur_load = 0;
	bs->cur_nr = bs->cur_tasks = bs->cur_idle = 0;

	bs->g.dom_load = bs->g.local_load = bs->g.busiest_load = 0;
	bs->g.dom_nr = bs->g.local_nr = bs->g.busiest_nr = 0;
	bs->g.local_tasks = bs->g.busiest_tasks = 0;
	bs->g.local_idle = bs->g.busiest_idle = 0;
	bs->busiest_g = ~0U;
	if (level >= DOM_NODE) {
		/* Groups are LLCs of this node, or nodes of the machine. */
		first = level == DOM_NODE ? node_first_llc[node_of(this_cpu) & (MAX_CPUS - 1)] : 0;
		nr = level == DOM_NODE ? node_nr_llcs[node_of(this_cpu) & (MAX_CPUS - 1)] : nr_nodes;
		local_g = level == DOM_NODE ? llc_of(this_cpu) : node_of(this_cpu);
		bpf_for(i, 0, nr) {
			if (i >= MAX_CPUS)
				break;
			g = first + i;
			ds = level == DOM_NODE ? llc_stat_of(g) : node_stat_of(g);
			gload = ds->load;
			gnr = ds->nr_cpus;
			gtasks = ds->nr_running;
			gidle = ds->nr_busy < gnr ? gnr - ds->nr_busy : 0;
			bs->g.dom_load += gload;
			bs->g.dom_nr += gnr;
			if (g == local_g) {
				bs->g.local_load = gload;
				bs->g.local_nr = gnr;
				bs->g.local_tasks = gtasks;
				bs->g.local_idle = gidle;
			} else if (cfs_group_busier(gtasks, gload, gnr, bs->g.busiest_tasks, bs->g.busiest_load,
						    bs->g.busiest_nr)) {
				bs->g.busiest_load = gload;
				bs->g.busiest_nr = gnr;
				bs->g.busiest_tasks = gtasks;
				bs->g.busiest_idle = gidle;
				bs->busiest_g = g;
			}
		}
		bs->visits += nr;
		return 0;
	}
	/* Groups are the CPUs of this core (SMT), or the cores of this LLC. */
	if (level == DOM_SMT) {
		first = core_first[cpu_idx(this_cpu)];
		nr = core_nr[cpu_idx(this_cpu)];
	} else {
		first = llc_first[llc_of(this_cpu) & (MAX_CPUS - 1)];
		nr = llc_nr[llc_of(this_cpu) & (MAX_CPUS - 1)];
	}
	local_g = level == DOM_SMT ? (u32)this_cpu : core_first[cpu_idx(this_cpu)];
	for_each_topo_cpu(i, cpu, first, nr, max_llc_cpus) {
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		/* A group's CPUs are side by side in the tree order. */
		g = level == DOM_SMT ? (u32)cpu : core_first[cpu_idx(cpu)];
		bs->cur_load += cctx->load;
		bs->cur_nr++;
		bs->cur_tasks += cctx->nr_running;
		if (!cctx->nr_running)
			bs->cur_idle++;
		bs->g.dom_load += cctx->load;
		bs->g.dom_nr++;
		if (level == DOM_LLC && i + 1 < nr && core_first[cpu_idx(topo_cpu(first + i + 1))] == g)
			continue;
		gload = bs->cur_load;
		gnr = bs->cur_nr;
		gtasks = bs->cur_tasks;
		gidle = bs->cur_idle;
		if (g == local_g) {
			bs->g.local_load = gload;
			bs->g.local_nr = gnr;
			bs->g.local_tasks = gtasks;
			bs->g.local_idle = gidle;
		} else if (cfs_group_busier(gtasks, gload, gnr, bs->g.busiest_tasks, bs->g.busiest_load, bs->g.busiest_nr)) {
			bs->g.busiest_load = gload;
			bs->g.busiest_nr = gnr;
			bs->g.busiest_tasks = gtasks;
			bs->g.busiest_idle = gidle;
			bs->busiest_g = g;
		}
		bs->cur_load = 0;
		bs->cur_nr = bs->cur_tasks = bs->cur_idle = 0;
	}
	bs->visits += nr;
	return 0;
}

/*
 * The busiest CPU with queued tasks of group g at `level` (a CPU, a core, an
 * LLC, or a node: then its busiest LLC first). -1 if none.
 */
__hidden __noinline int cfs_busiest_cpu(u32 level, u32 g)
{
	u32 i, first, nr, llc, best_llc, zero = 0;
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 best = 0, avg;
	struct cpu_ctx *cctx;
	struct dom_stat *ds;
	s32 cpu, src = -1;

	if (!(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return -1;
	bs = &gs->bal;

	switch (level) {
	case DOM_SMT:
		return q_has_waiting(g) ? (int)g : -1;
	case DOM_LLC:	/* g is the core's first position in the tree order */
		first = g;
		nr = core_nr[cpu_idx(topo_cpu(g))];
		break;
	case DOM_NODE:
		first = llc_first[g & (MAX_CPUS - 1)];
		nr = llc_nr[g & (MAX_CPUS - 1)];
		break;
	default:
		best_llc = node_first_llc[g & (MAX_CPUS - 1)];
		for_each_node_llc(i, llc, g) {
			ds = llc_stat_of(llc);
			avg = ds->nr_cpus ? ds->load / ds->nr_cpus : 0;
			if (avg > best) {
				best = avg;
				best_llc = llc;
			}
		}
		bs->visits += node_nr_llcs[g & (MAX_CPUS - 1)];
		best = 0;
		first = llc_first[best_llc & (MAX_CPUS - 1)];
		nr = llc_nr[best_llc & (MAX_CPUS - 1)];
	}
	for_each_topo_cpu(i, cpu, first, nr, max_llc_cpus) {
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		if (cctx->load > best && q_has_waiting(cpu)) {
			best = cctx->load;
			src = cpu;
		}
	}
	bs->visits += nr;
	return src;
}

/* calculate_imbalance on the totals cfs_scan_groups left (cfs_arith.h). Global, to keep cfs_balance small. */
__hidden __noinline int cfs_pass_imbalance(void)
{
	struct lb_scratch *gs;
	bool small_fix;
	u32 zero = 0;

	if (!(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	gs->bal.imbalance = cfs_calc_imbalance(&gs->bal.g, &small_fix);
	if (small_fix)
		stat_inc(STAT_LB_SMALL_FIX);
	return 0;
}

/* One pass over this CPU's domain at `level`: a cfs_lb_result. Global, as cfs_pull. */
__hidden __noinline int cfs_balance(s32 this_cpu, u32 level, u32 idle_type)
{
	struct cfs_rq_ctx *drq = cfs_rq_of(this_cpu);
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 local_avg, dom_avg, busiest_avg, imbalance;
	u32 zero = 0;
	int moved;

	if (!drq || this_cpu < 0 || this_cpu >= MAX_CPUS || level >= NR_DOM_LEVELS ||
	    !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return CFS_LB_BALANCED;
	level &= NR_DOM_LEVELS - 1;
	barrier_var(level);
	bs = &gs->bal;
	bs->visits = 0;
	gs->pull.idle_type = idle_type;
	stat_inc(STAT_LB_ATTEMPT);
	stat_inc(idle_type == CFS_NEWLY_IDLE ? STAT_LB_NEWIDLE : STAT_LB_PERIODIC);

	cfs_scan_groups(this_cpu, level);
	cost_visit(COST_DISPATCH, bs->visits);
	bs->visits = 0;
	if (!bs->g.local_nr || !bs->g.dom_nr || bs->busiest_g == ~0U) {
		drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)] = 0;	/* out_balanced */
		return CFS_LB_BALANCED;
	}
	barrier_var(level);
	if (!cfs_fbg_imbalanced(&bs->g, idle_type, imbalance_pct[level & (NR_DOM_LEVELS - 1)])) {
		drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)] = 0;	/* out_balanced */
		local_avg = bs->g.local_load / bs->g.local_nr;
		dom_avg = bs->g.dom_load / bs->g.dom_nr;
		busiest_avg = bs->g.busiest_nr ? bs->g.busiest_load / bs->g.busiest_nr : 0;
		/* Above the averages, a busy pass stopped at imbalance_pct. */
		if (idle_type != CFS_IDLE && busiest_avg > local_avg && dom_avg > local_avg)
			stat_inc(STAT_LB_BELOW_PCT);
		else
			stat_inc(STAT_LB_BALANCED);
		return CFS_LB_BALANCED;
	}
	/*
	 * An imbalance of 0 (calculate_imbalance found the gap too small)
	 * still goes to a pull that moves nothing in 4.9: a failed pass.
	 */
	cfs_pass_imbalance();
	imbalance = bs->imbalance;
	bs->src = imbalance ? cfs_busiest_cpu(level, bs->busiest_g) : -1;
	cost_visit(COST_DISPATCH, bs->visits);
	moved = bs->src >= 0 ? cfs_pull(this_cpu, bs->src, level, imbalance) : 0;
	level &= NR_DOM_LEVELS - 1;
	barrier_var(level);
	if (!moved) {
		stat_inc(STAT_LB_NO_TASK);
		/* Only periodic failures make tasks lose their cache hotness. */
		if (idle_type != CFS_NEWLY_IDLE)
			drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)]++;
		return CFS_LB_FAILED;
	}
	stat_inc(STAT_LB_SUCCESS);
	drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)] = 0;
	return CFS_LB_MOVED;
}

/*
 * Start or continue a NOHZ idle-balance round: wake one idle CPU for it. A
 * CPU that has already balanced in this round ends it (it is woken all the
 * same, since picking it claimed it from the kernel's idle tracking).
 */
__hidden __noinline int cfs_nohz_pass_on(u32 round)
{
	const struct cpumask *all = machine_mask();
	struct cfs_rq_ctx *rq;
	s32 cpu;

	if (!all || (cpu = scx_bpf_pick_idle_cpu(all, 0)) < 0 || !(rq = cfs_rq_of(cpu)))
		return 0;
	if (rq->nohz_done != round) {
		rq->nohz_round = round;
		stat_inc(STAT_NOHZ_KICK);
	}
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	return 0;
}

/* A CPU's newly-idle gate, before its first use: Linux's boot values. */
static __always_inline void newidle_gate_init(struct cfs_rq_ctx *rq)
{
	if (rq->max_idle_balance_cost)
		return;
	rq->max_idle_balance_cost = sched_migration_cost_ns;
	rq->avg_idle = 2 * sched_migration_cost_ns;
}

/*
 * rebalance_domains' decay: once a second each level's dearest newly-idle
 * pass loses 1 % (253/256), and the CPU's dearest newly-idle balance is
 * their sum (a pass may go through every level), at least
 * sched_migration_cost.
 */
static __always_inline void newidle_cost_decay(struct cfs_rq_ctx *rq, u64 now)
{
	u64 sum = 0;
	u32 level, l;

	if (time_before(now, rq->next_decay_max_lb_cost))
		return;
	newidle_gate_init(rq);
	rq->next_decay_max_lb_cost = now + 1000000000ULL;
	bpf_for(level, 0, NR_DOM_LEVELS) {
		l = level & (NR_DOM_LEVELS - 1);
		rq->max_newidle_lb_cost[l] = rq->max_newidle_lb_cost[l] * 253 / 256;
		sum += rq->max_newidle_lb_cost[l];
	}
	rq->max_idle_balance_cost = sum > sched_migration_cost_ns ? sum : sched_migration_cost_ns;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_DOM_LEVELS * MAX_CPUS);
	__type(key, u32);
	__type(value, struct cfs_balance_group);
} cfs_balance_groups SEC(".maps");

/*
 * should_we_balance (4.9): above the lowest level, one CPU of the local
 * group (this CPU's domain one active level down: its core, its LLC, its
 * node) balances for it: the group's first idle CPU, else the group's first
 * CPU. A newly-idle pass always balances. Looking for the first idle CPU
 * in the kernel's idle cpumask pushed Linux 6.19's verifier past 760k
 * instructions on ops.dispatch, so each group remembers the CPU that last
 * balanced in it while idle, and that CPU is taken while it is still idle
 * (no task counted on it) and keeps balancing (it balanced this level
 * within twice its longest idle interval, 2 x 2w ms; else NOHZ rounds have
 * been passing it by): "an idle CPU of the group", not always the first.
 */
static __always_inline bool cfs_should_we_balance(s32 cpu, u32 level, u32 idle_type, u64 now, u32 weight)
{
	struct cfs_balance_group *g;
	struct cfs_rq_ctx *orq;
	u32 key, first;
	s32 child = -1, other;
	struct cpu_ctx *oc;

	if (idle_type == CFS_NEWLY_IDLE || cpu < 0 || cpu >= MAX_CPUS)
		return true;
	if (level > DOM_NODE && dom_active[DOM_NODE])
		child = DOM_NODE;
	else if (level > DOM_LLC && dom_active[DOM_LLC])
		child = DOM_LLC;
	else if (level > DOM_SMT && dom_active[DOM_SMT])
		child = DOM_SMT;
	switch (child) {
	case DOM_SMT:
		key = core_first[cpu_idx(cpu)];
		first = key;
		break;
	case DOM_LLC:
		key = llc_of(cpu);
		first = llc_first[key & (MAX_CPUS - 1)];
		break;
	case DOM_NODE:
		key = node_of(cpu);
		first = llc_first[node_first_llc[key & (MAX_CPUS - 1)] & (MAX_CPUS - 1)];
		break;
	default:
		return true;	/* groups of one CPU: each balances for itself */
	}
	key = (u32)child * MAX_CPUS + (key & (MAX_CPUS - 1));
	if (!(g = bpf_map_lookup_elem(&cfs_balance_groups, &key)))
		return true;
	other = (s32)g->idle_cpu1 - 1;
	if (other >= 0 && other != cpu && (oc = cpu_ctx(other)) && !oc->nr_running && (orq = cfs_rq_of(other)) &&
	    now - orq->last_balance[level & (NR_DOM_LEVELS - 1)] <= 4ULL * weight * 1000000ULL)
		return false;		/* an idle CPU of the group balances for it */
	if (idle_type == CFS_IDLE) {
		g->idle_cpu1 = cpu + 1;
		return true;
	}
	return topo_cpu(first) == cpu;
}

/*
 * load_balance's end for the level's sd->balance_interval (ms), after a
 * periodic or a newly-idle pass alike (4.9): a balanced pass doubles it up
 * to twice the floor w (the domain's CPU count), an imbalanced one puts it
 * back to w.
 */
static __always_inline void cfs_lb_interval_update(struct cfs_rq_ctx *rq, u32 l, u32 weight, int res)
{
	l &= NR_DOM_LEVELS - 1;
	if (rq->balance_interval[l] < weight)
		rq->balance_interval[l] = weight;
	if (res != CFS_LB_BALANCED)
		rq->balance_interval[l] = weight;
	else if (rq->balance_interval[l] < 2 * weight)
		rq->balance_interval[l] = rq->balance_interval[l] * 2 < 2 * weight ? rq->balance_interval[l] * 2 : 2 * weight;
}

/* A level's interval on this CPU now, ns: balance_interval x busy_factor when busy, at most max_load_balance_interval. */
static __always_inline u64 cfs_level_interval(struct cfs_rq_ctx *rq, u32 l, u32 busy)
{
	u64 interval = (u64)rq->balance_interval[l & (NR_DOM_LEVELS - 1)] * 1000000ULL * (busy ? busy_factor : 1);
	u64 max_interval = (u64)nr_cpus * 100000000ULL;

	return interval < max_interval ? interval : max_interval;
}

/*
 * One level of rebalance_domains, if its interval has passed: the pass
 * when this CPU balances for its group (cfs_should_we_balance), and the
 * level's interval after it (cfs_lb_interval_update). Leaves in
 * rq->level_due[level] when the level is next due. Returns 0 when another
 * CPU of the group balances for it (continue_balancing = 0: the walk
 * stops), else 1. Global, verified once on its own: inside the walk's loop,
 * its branches made Linux 6.19's verifier give up on ops.dispatch.
 */
__hidden __noinline int cfs_rebalance_level(s32 cpu, u32 level, u32 busy)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u32 l = level & (NR_DOM_LEVELS - 1), weight, idle_type = busy ? CFS_NOT_IDLE : CFS_IDLE;
	u64 now = scx_bpf_now();
	bool ours;
	int res;

	if (!rq || cpu < 0 || cpu >= MAX_CPUS)
		return 1;
	weight = dom_weight[l][cpu_idx(cpu)];
	if (rq->balance_interval[l] < weight)
		rq->balance_interval[l] = weight;
	if (now - rq->last_balance[l] < cfs_level_interval(rq, l, busy)) {
		rq->level_due[l] = rq->last_balance[l] + cfs_level_interval(rq, l, busy);
		return 1;
	}
	rq->last_balance[l] = now;
	ours = cfs_should_we_balance(cpu, l, idle_type, now, weight);
	if (!ours) {
		stat_inc(STAT_LB_NOT_OURS);
		res = CFS_LB_BALANCED;
	} else {
		stat_inc(STAT_LB_PERIODIC_SMT + l);
		res = cfs_balance(cpu, l, idle_type);
	}
	cfs_lb_interval_update(rq, l, weight, res);
	rq->level_due[l] = now + cfs_level_interval(rq, l, busy);
	return ours;
}

/*
 * Periodic passes (rebalance_domains): every level whose interval has
 * passed, bottom-up (cfs_rebalance_level). A level's interval is
 * sd->balance_interval ms (from the domain's CPU count, doubled after each
 * balanced pass up to twice that, back to it after an imbalanced one),
 * times busy_factor on a busy CPU, at most max_load_balance_interval (a
 * tenth of a second per CPU). A level that another CPU of the local group
 * balances for ends the walk, as continue_balancing does. Leaves in
 * next_balance when the next level is due (rq->next_balance, which spares a
 * busy CPU's dispatch the walk until then). Global, as cfs_pull.
 */
__hidden __noinline int cfs_periodic_balance(s32 cpu, u32 busy, u32 nohz)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u64 now = scx_bpf_now();
	u32 level, l;

	if (!rq || cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	/* Nothing due (a CPU woken for a NOHZ round walks anyway); here, not in ops.dispatch, to keep the verifier's paths there few. */
	if (!nohz && time_before(now, busy ? rq->next_balance : rq->next_balance_idle))
		return 0;
	newidle_cost_decay(rq, now);
	rq->next_balance = now + 1000000000ULL;
	bpf_for(level, 0, NR_DOM_LEVELS) {
		l = level & (NR_DOM_LEVELS - 1);
		if (!dom_active[l])
			continue;
		if (!cfs_rebalance_level(cpu, l, busy))
			break;
		if (time_before(rq->level_due[l], rq->next_balance))
			rq->next_balance = rq->level_due[l];
	}
	/*
	 * When an idle CPU's walk next has something to do: the earliest
	 * level due at the idle intervals, every level (one that ended this
	 * walk does not hide those above it), or the cost decay. A busy walk
	 * leaves it unknown (the idle intervals are shorter).
	 */
	rq->next_balance_idle = 0;
	if (!busy) {
		u64 next = rq->next_decay_max_lb_cost, due;

		bpf_for(level, 0, NR_DOM_LEVELS) {
			l = level & (NR_DOM_LEVELS - 1);
			if (!dom_active[l])
				continue;
			due = rq->last_balance[l] + cfs_level_interval(rq, l, 0);
			if (time_before(due, next))
				next = due;
		}
		rq->next_balance_idle = next;
	}
	return 0;
}

/* cfs_lb_interval_update after a newly-idle pass. Global: out of the newly-idle walk's loop. */
__hidden __noinline int cfs_newidle_interval(s32 cpu, u32 level, int res)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u32 l = level & (NR_DOM_LEVELS - 1);

	if (rq && cpu >= 0 && cpu < MAX_CPUS) {
		cfs_lb_interval_update(rq, l, dom_weight[l][cpu_idx(cpu)], res);
		rq->next_balance_idle = 0;	/* the level's interval may have shrunk */
	}
	return 0;
}

/*
 * Newly idle (idle_balance, 4.9): pull from the closest domain that has
 * work, unless the CPU idles for less than sched_migration_cost on average
 * (a task will be back before a pull would pay off), and only at levels
 * whose dearest pass of late still fits in the idle time left. The cost of
 * each pass is measured (ktime: the rq clock does not move within one
 * dispatch). Global, as cfs_pull.
 */
__hidden __noinline int cfs_newidle_balance(s32 cpu)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u64 t0, cost, curr_cost = 0;
	u32 level, l;
	int pulled = 0, res;

	if (!rq)
		return 0;
	newidle_gate_init(rq);
	rq->idle_stamp = scx_bpf_now();
	if (rq->avg_idle < sched_migration_cost_ns) {
		stat_inc(STAT_LB_NEWIDLE_SKIP);
		return 0;
	}
	bpf_for(level, 0, NR_DOM_LEVELS) {
		l = level & (NR_DOM_LEVELS - 1);
		if (!dom_active[l])
			continue;
		if (rq->avg_idle < curr_cost + rq->max_newidle_lb_cost[l])
			break;
		t0 = bpf_ktime_get_ns();
		res = cfs_balance(cpu, level, CFS_NEWLY_IDLE);
		cfs_newidle_interval(cpu, l, res);
		pulled = res == CFS_LB_MOVED && q_take_next(cpu);
		cost = bpf_ktime_get_ns() - t0;
		if (cost > rq->max_newidle_lb_cost[l])
			rq->max_newidle_lb_cost[l] = cost;
		curr_cost += cost;
		if (pulled)
			break;
	}
	if (curr_cost > rq->max_idle_balance_cost)
		rq->max_idle_balance_cost = curr_cost;
	if (pulled)
		rq->idle_stamp = 0;
	return pulled;
}

/*
 * A task runs on the CPU: an idle period that began in cfs_newidle_balance
 * ends, and joins avg_idle (ttwu_do_wakeup: an eighth of the new sample,
 * capped at twice the dearest newly-idle balance).
 */
__hidden void cfs_lb_running(s32 cpu)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u64 max;
	s64 diff;

	if (!rq || !rq->idle_stamp)
		return;
	newidle_gate_init(rq);
	diff = (s64)(scx_bpf_now() - rq->idle_stamp) - (s64)rq->avg_idle;
	rq->avg_idle += diff / 8;
	max = 2 * rq->max_idle_balance_cost;
	if (rq->avg_idle > max)
		rq->avg_idle = max;
	rq->idle_stamp = 0;
}

/*
 * nohz_balancer_kick, at the tick: when a task waits here while CPUs may
 * idle, one CPU starts a NOHZ round per shortest idle interval.
 */
__hidden void cfs_nohz_kick(s32 cpu)
{
	u64 now = scx_bpf_now(), next = nohz_next_balance;
	u32 lowest = 0, level;

	if (time_before(now, next) || !q_has_waiting(cpu))
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
