/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The CFS policy: Linux's Completely Fair Scheduler (the pick rule before
 * EEVDF) and its load balancer, on sched_ext.
 *
 * Selection. Every CPU has its own queue ordered by vruntime and runs the
 * task with the lowest. vruntime grows by run time x NICE_0_LOAD / weight,
 * with Linux's nice-to-weight table, so a nice -5 task (3121) accrues it
 * three times slower than a nice 0 one (1024). The slice is sched_latency
 * shared among the CPU's tasks, never below sched_min_granularity. A waking
 * task is placed no earlier than the queue's min_vruntime minus half
 * sched_latency (bounded sleeper credit), and preempts the running task when
 * its vruntime is lower by more than sched_wakeup_granularity.
 *
 * Placement. A waking task goes to its previous CPU if that is idle, else to
 * an idle CPU in the same LLC (a whole idle core first, with SMT), then in
 * the same node, else to the least loaded CPU: the least loaded node's least
 * loaded LLC's least loaded CPU. Idle CPUs come from the kernel's own idle
 * tracking within the LLC's or node's cpumask; a task that may not run
 * everywhere tries its LLC's CPUs one by one and otherwise stays where it
 * was.
 *
 * Balancing. A CPU balances its domains bottom-up (SMT, LLC, node, machine)
 * when it runs out of tasks (newly idle), and otherwise once per domain
 * interval: the domain's CPU count in ms, times busy_factor while the CPU is
 * busy, so close CPUs are balanced often and remote nodes rarely. A pass
 * finds the busiest group of the domain by average load; if that is more
 * than imbalance_pct above the local group's (110 SMT, 117 LLC, 125 node and
 * machine: the 25% rule across NUMA), it pulls queued tasks from the busiest
 * CPU of that group until the load moved evens the two out, skipping tasks
 * that ran within sched_migration_cost (cache-hot) until balancing at that
 * level has failed cache_nice_tries times, and looking at sched_nr_migrate
 * queued tasks at most (Linux's loop_max). Running tasks and tasks not
 * allowed here never move. Balancing runs in ops.dispatch, which
 * SCX_OPS_ENQ_LAST makes run at every slice end even on a CPU with one task.
 *
 * Cost. Group loads come from per-LLC and per-node sums kept up to date as
 * tasks come, go and move (shared.bpf.h), so a pass looks at the CPUs of one
 * core or one LLC, the LLCs of one node, or the nodes, never at every CPU;
 * the busiest CPU is then looked for in one LLC (at the machine level, in
 * the busiest node's busiest LLC).
 *
 * Not modelled: PELT load averages (the load is the weight of the runnable
 * tasks now), adaptive balance intervals, and active balance (pushing a
 * running task away).
 */
#ifndef __SCX_BATTLE_CFS_BPF_H
#define __SCX_BATTLE_CFS_BPF_H

/* Tunables, Linux names; the loader scales the first three by 1 + ilog2(min(ncpus, 8)). */
const volatile u64 sched_latency_ns = 24000000ULL;		/* ns, 6 ms x factor */
const volatile u64 sched_min_granularity_ns = 3000000ULL;	/* ns, 0.75 ms x factor */
const volatile u64 sched_wakeup_granularity_ns = 4000000ULL;	/* ns, 1 ms x factor */
const volatile u64 sched_migration_cost_ns = 500000ULL;	/* ns, cache-hot window */
/*
 * Tasks moved per pass, at most. Writable data rather than rodata on purpose:
 * compared with a constant, the pull loop's counter would be tracked exactly
 * and the verifier would walk every iteration separately.
 */
u32 sched_nr_migrate = 32;
const volatile u32 busy_factor = 32;				/* interval multiplier when busy */
const volatile u32 imbalance_pct[NR_DOM_LEVELS] = { 110, 117, 125, 125 };	/* percent */
const volatile u32 cache_nice_tries[NR_DOM_LEVELS] = { 0, 1, 2, 2 };	/* failed passes */

/*
 * The state of one pull, kept in map memory: the verifier does not track
 * values there, so every turn of the pull loop looks alike to it and the
 * loop verifies in a few states instead of one per task moved.
 */
struct pull_state {
	u64	imbalance;	/* load to move */
	u64	moved_load;
	u64	now;
	u64	src_min_vruntime;
	u64	dst_min_vruntime;
	u32	moved;
	u32	loops;		/* queued tasks looked at (Linux's env->loop) */
	u32	ignore_hot;
	u32	pad;
};

/* The running totals of one balance pass, in map memory for the same reason. */
struct balance_state {
	u64	dom_load;	/* the domain's load and CPUs */
	u64	local_load;	/* this CPU's group's */
	u64	busiest_load;	/* the busiest other group's */
	u64	src_load;
	u32	dom_nr;
	u32	local_nr;
	u32	busiest_nr;
	u32	busiest_g;	/* its id: a CPU, core (first CPU's tree position), LLC or node */
	s32	src;
	u32	visits;
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

static __always_inline u64 cfs_slice(struct cpu_ctx *cctx)
{
	u64 nr = cctx->nr_running ? cctx->nr_running : 1;
	u64 slice = sched_latency_ns / nr;

	return slice < sched_min_granularity_ns ? sched_min_granularity_ns : slice;
}

static __always_inline bool cpu_usable(s32 cpu, const struct task_struct *p)
{
	return cpu >= 0 && cpu < MAX_CPUS && cpu_online[cpu_idx(cpu)] && bpf_cpumask_test_cpu(cpu, p->cpus_ptr);
}

/* May p run on every CPU? Then the topology masks need no intersection with its own. */
static __always_inline bool runs_anywhere(const struct task_struct *p)
{
	return p->nr_cpus_allowed >= nr_cpus;
}

/*
 * Claim an idle CPU of LLC `llc` for p: from the kernel's idle tracking, a
 * whole idle core first when there is SMT; for a task that may not run
 * everywhere, the LLC's CPUs one by one (an LLC is small). -1 if none.
 */
static s32 pick_idle_in_llc(struct task_struct *p, u32 llc, enum cost_kind kind)
{
	const struct cpumask *mask;
	u32 i, first = llc_first[llc & (MAX_CPUS - 1)], nr = llc_nr[llc & (MAX_CPUS - 1)];
	s32 cpu;

	if (runs_anywhere(p) && (mask = llc_mask(llc))) {
		cost_visit(kind, 1);
		if (dom_active[DOM_SMT] && (cpu = scx_bpf_pick_idle_cpu(mask, SCX_PICK_IDLE_CORE)) >= 0)
			return cpu;
		return scx_bpf_pick_idle_cpu(mask, 0);
	}
	bpf_for(i, 0, nr) {
		if (i >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + i);
		cost_visit(kind, 1);
		if (cpu_usable(cpu, p) && scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}

/*
 * The least loaded CPU for p, walking down the tree: the node with the
 * lowest load per CPU, its LLC with the lowest, that LLC's least loaded CPU.
 * A task that may not run everywhere stays on its previous CPU when allowed.
 */
static s32 least_loaded_cpu(struct task_struct *p, s32 prev_cpu, enum cost_kind kind)
{
	struct dom_stat *ds;
	struct cpu_ctx *cctx;
	u64 best_avg = ~0ULL, avg;
	u32 d, best_node = 0, best_llc, l0, nl, first, nr;
	s32 cpu, best = -1;

	if (!runs_anywhere(p))
		return cpu_usable(prev_cpu, p) ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	bpf_for(d, 0, nr_nodes) {
		ds = node_stat_of(d);
		avg = ds->nr_cpus ? ds->load / ds->nr_cpus : ~0ULL;
		if (avg < best_avg) {
			best_avg = avg;
			best_node = d;
		}
	}
	l0 = node_first_llc[best_node & (MAX_CPUS - 1)];
	nl = node_nr_llcs[best_node & (MAX_CPUS - 1)];
	best_llc = l0;
	best_avg = ~0ULL;
	bpf_for(d, 0, nl) {
		if (d >= max_node_llcs)
			break;
		ds = llc_stat_of(l0 + d);
		avg = ds->nr_cpus ? ds->load / ds->nr_cpus : ~0ULL;
		if (avg < best_avg) {
			best_avg = avg;
			best_llc = l0 + d;
		}
	}
	first = llc_first[best_llc & (MAX_CPUS - 1)];
	nr = llc_nr[best_llc & (MAX_CPUS - 1)];
	best_avg = ~0ULL;
	bpf_for(d, 0, nr) {
		if (d >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + d);
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		if (cctx->load < best_avg) {
			best_avg = cctx->load;
			best = cpu;
		}
	}
	cost_visit(kind, nr_nodes + nl + nr);
	return best >= 0 ? best : prev_cpu;
}

static s32 cfs_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	const struct cpumask *mask;
	s32 cpu = -1;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	if (cpu_usable(prev_cpu, p) && scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		cpu = prev_cpu;
		goto out;
	}
	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS) {
		cpu = pick_idle_in_llc(p, llc_of(prev_cpu), COST_SELECT);
		/* The rest of the node: from the kernel's tracking alone. */
		if (cpu < 0 && dom_active[DOM_NODE] && runs_anywhere(p) && (mask = node_mask(node_of(prev_cpu)))) {
			cost_visit(COST_SELECT, 1);
			cpu = scx_bpf_pick_idle_cpu(mask, 0);
		}
		if (cpu >= 0) {
			stat_inc(STAT_IDLE_PICK);
			goto out;
		}
	}
	cpu = least_loaded_cpu(p, prev_cpu, COST_SELECT);
out:
	cost_end(COST_SELECT);
	return cpu;
}

/* A vruntime on `from`'s queue clock, expressed on `to`'s (Linux renormalises likewise). */
static __always_inline u64 cfs_rebase(u64 vruntime, s32 from, s32 to)
{
	struct cpu_ctx *f, *t;

	if (from < 0 || from == to || !(f = cpu_ctx(from)) || !(t = cpu_ctx(to)))
		return vruntime;
	vruntime = vruntime > f->min_vruntime ? vruntime - f->min_vruntime : 0;
	return vruntime + t->min_vruntime;
}

static void cfs_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cpu_ctx *cctx;
	u64 vruntime = p->scx.dsq_vtime, floor;

	if (!cpu_usable(cpu, p))
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	if (!tctx || cpu < 0 || !(cctx = cpu_ctx(cpu))) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_min_granularity_ns, enq_flags);
		return;
	}
	account_task(p, tctx, cpu);

	/* Each queue has its own clock: carry the lead or lag over on a move. */
	vruntime = cfs_rebase(vruntime, tctx->vtime_cpu, cpu);
	tctx->vtime_cpu = cpu;

	/* Bounded sleeper credit: a waking task is at most half a latency period behind. */
	floor = cctx->min_vruntime - sched_latency_ns / 2;
	if ((enq_flags & SCX_ENQ_WAKEUP) && cctx->min_vruntime > sched_latency_ns / 2 &&
	    time_before(vruntime, floor))
		vruntime = floor;
	scx_bpf_dsq_insert_vtime(p, cpu_dsq(cpu), cfs_slice(cctx), vruntime, enq_flags);

	if ((enq_flags & SCX_ENQ_WAKEUP) &&
	    cctx->curr_vruntime > vruntime + sched_wakeup_granularity_ns) {
		stat_inc(STAT_KICK_PREEMPT);
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	} else {
		/* A no-op unless the CPU is idle. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

/*
 * Pull queued tasks from src's queue to this CPU's until `imbalance` load has
 * moved, looking at sched_nr_migrate tasks at most; returns how many moved. vruntime is carried over relative to each
 * queue's min_vruntime. A global function: the verifier checks it once, not
 * at every call site inside the callers' loops.
 */
__hidden __noinline int cfs_pull(s32 this_cpu, s32 src, u32 level, u64 imbalance)
{
	struct cpu_ctx *sctx = cpu_ctx(src), *dctx = cpu_ctx(this_cpu);
	struct task_struct *p;
	struct lb_scratch *gs;
	struct pull_state *ps;
	u32 zero = 0;

	if (!sctx || !dctx || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	ps = &gs->pull;
	ps->imbalance = imbalance;
	ps->moved_load = 0;
	ps->moved = 0;
	ps->loops = 0;
	ps->now = scx_bpf_now();
	ps->src_min_vruntime = sctx->min_vruntime;
	ps->dst_min_vruntime = dctx->min_vruntime;
	ps->ignore_hot = dctx->nr_balance_failed[level] > cache_nice_tries[level];

	bpf_for_each(scx_dsq, p, cpu_dsq(src), 0) {
		struct task_ctx *tctx;
		u64 vruntime, w;

		/* Linux's loop_max: look at no more than sched_nr_migrate tasks. */
		if (ps->loops++ >= sched_nr_migrate || ps->moved_load >= ps->imbalance)
			break;
		if (!bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr) || !(tctx = task_ctx(p)))
			continue;
		w = task_load_weight(p);
		/* Moving more than twice what is missing would just flip the imbalance. */
		if (w / 2 > ps->imbalance - ps->moved_load)
			continue;
		if (!ps->ignore_hot && ps->now - tctx->last_stop_at < sched_migration_cost_ns) {
			stat_inc(STAT_LB_HOT_SKIP);
			continue;
		}
		vruntime = p->scx.dsq_vtime;
		vruntime = vruntime > ps->src_min_vruntime ? vruntime - ps->src_min_vruntime : 0;
		scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, vruntime + ps->dst_min_vruntime);
		if (scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, cpu_dsq(this_cpu), 0)) {
			account_task(p, tctx, this_cpu);
			tctx->vtime_cpu = this_cpu;
			ps->moved++;
			ps->moved_load += w;
			stat_inc(STAT_MIGRATE_SMT + level);
		}
	}
	cost_visit(COST_DISPATCH, ps->loops);
	return ps->moved;
}

/*
 * The groups of this CPU's domain at `level`, from the per-LLC and per-node
 * counts where the groups are LLCs or nodes, else from the CPUs of one core
 * or one LLC: adds every group's load into bs and keeps the busiest other
 * group (by load per CPU) and this CPU's own. Looks at one LLC's CPUs, or a
 * node's LLCs, or the nodes: never at every CPU. Global, as cfs_pull, and
 * so are the next two: verified once, which older verifiers need.
 */
__hidden __noinline int cfs_scan_groups(s32 this_cpu, u32 level)
{
	u32 i, first, nr, g, local_g, gnr = 0, zero = 0;
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 gload = 0;
	struct cpu_ctx *cctx;
	struct dom_stat *ds;

	if (this_cpu < 0 || this_cpu >= MAX_CPUS || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	bs = &gs->bal;

	bs->dom_load = bs->local_load = bs->busiest_load = 0;
	bs->dom_nr = bs->local_nr = bs->busiest_nr = 0;
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
			bs->dom_load += gload;
			bs->dom_nr += gnr;
			if (g == local_g) {
				bs->local_load = gload;
				bs->local_nr = gnr;
			} else if (gnr && (!bs->busiest_nr || gload * bs->busiest_nr > bs->busiest_load * gnr)) {
				bs->busiest_load = gload;
				bs->busiest_nr = gnr;
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
	bpf_for(i, 0, nr) {
		s32 cpu;

		if (i >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + i);
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		/* A group's CPUs are side by side in the tree order. */
		g = level == DOM_SMT ? (u32)cpu : core_first[cpu_idx(cpu)];
		gload += cctx->load;
		gnr++;
		bs->dom_load += cctx->load;
		bs->dom_nr++;
		if (level == DOM_LLC && i + 1 < nr && core_first[cpu_idx(topo_cpu(first + i + 1))] == g)
			continue;
		if (g == local_g) {
			bs->local_load = gload;
			bs->local_nr = gnr;
		} else if (!bs->busiest_nr || gload * bs->busiest_nr > bs->busiest_load * gnr) {
			bs->busiest_load = gload;
			bs->busiest_nr = gnr;
			bs->busiest_g = g;
		}
		gload = 0;
		gnr = 0;
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
	u32 i, first, nr, l0, nl, best_llc, zero = 0;
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
		return scx_bpf_dsq_nr_queued(cpu_dsq(g)) > 0 ? (int)g : -1;
	case DOM_LLC:	/* g is the core's first position in the tree order */
		first = g;
		nr = core_nr[cpu_idx(topo_cpu(g))];
		break;
	case DOM_NODE:
		first = llc_first[g & (MAX_CPUS - 1)];
		nr = llc_nr[g & (MAX_CPUS - 1)];
		break;
	default:
		l0 = node_first_llc[g & (MAX_CPUS - 1)];
		nl = node_nr_llcs[g & (MAX_CPUS - 1)];
		best_llc = l0;
		bpf_for(i, 0, nl) {
			if (i >= max_node_llcs)
				break;
			ds = llc_stat_of(l0 + i);
			avg = ds->nr_cpus ? ds->load / ds->nr_cpus : 0;
			if (avg > best) {
				best = avg;
				best_llc = l0 + i;
			}
		}
		bs->visits += nl;
		best = 0;
		first = llc_first[best_llc & (MAX_CPUS - 1)];
		nr = llc_nr[best_llc & (MAX_CPUS - 1)];
	}
	bpf_for(i, 0, nr) {
		if (i >= max_llc_cpus)
			break;
		cpu = topo_cpu(first + i);
		if (!(cctx = cpu_ctx(cpu)))
			continue;
		if (cctx->load > best && scx_bpf_dsq_nr_queued(cpu_dsq(cpu)) > 0) {
			best = cctx->load;
			src = cpu;
		}
	}
	bs->visits += nr;
	return src;
}

/* One pass over this CPU's domain at `level`; 1 if tasks were pulled. Global, as cfs_pull. */
__hidden __noinline int cfs_balance(s32 this_cpu, u32 level, u32 newidle)
{
	struct cpu_ctx *dctx = cpu_ctx(this_cpu);
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 local_avg, dom_avg, busiest_avg, imbalance, room;
	u32 zero = 0;
	int moved;

	if (!dctx || this_cpu < 0 || this_cpu >= MAX_CPUS || level >= NR_DOM_LEVELS ||
	    !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	barrier_var(level);
	bs = &gs->bal;
	bs->visits = 0;
	stat_inc(STAT_LB_ATTEMPT);
	stat_inc(newidle ? STAT_LB_NEWIDLE : STAT_LB_PERIODIC);

	cfs_scan_groups(this_cpu, level);
	cost_visit(COST_DISPATCH, bs->visits);
	bs->visits = 0;
	if (!bs->local_nr || !bs->dom_nr)
		return 0;
	local_avg = bs->local_load / bs->local_nr;
	dom_avg = bs->dom_load / bs->dom_nr;
	busiest_avg = bs->busiest_nr ? bs->busiest_load / bs->busiest_nr : 0;
	if (bs->busiest_g == ~0U || busiest_avg <= local_avg || dom_avg <= local_avg) {
		stat_inc(STAT_LB_BALANCED);
		return 0;
	}
	barrier_var(level);
	if (busiest_avg * 100 <= local_avg * imbalance_pct[level & (NR_DOM_LEVELS - 1)]) {
		stat_inc(STAT_LB_BELOW_PCT);
		return 0;
	}
	/* Load to move here: what the busiest group has above the domain's
	 * average, but no more than this group lacks below it. */
	imbalance = (busiest_avg - dom_avg) * bs->busiest_nr;
	room = (dom_avg - local_avg) * bs->local_nr;
	if (room < imbalance)
		imbalance = room;

	bs->src = cfs_busiest_cpu(level, bs->busiest_g);
	cost_visit(COST_DISPATCH, bs->visits);
	moved = bs->src >= 0 ? cfs_pull(this_cpu, bs->src, level, imbalance) : 0;
	level &= NR_DOM_LEVELS - 1;
	barrier_var(level);
	if (!moved) {
		stat_inc(STAT_LB_NO_TASK);
		dctx->nr_balance_failed[level & (NR_DOM_LEVELS - 1)]++;
		return 0;
	}
	stat_inc(STAT_LB_SUCCESS);
	dctx->nr_balance_failed[level & (NR_DOM_LEVELS - 1)] = 0;
	return 1;
}

/*
 * Advance this CPU's queue clock: min_vruntime follows the lowest vruntime in
 * play, the running task's or the queue head's, and never goes back (Linux's
 * update_min_vruntime). Following the running task alone lets the floor run
 * ahead of tasks still queued behind it, and wakers placed against that
 * floor then starve behind them.
 */
static void cfs_update_min_vruntime(s32 cpu, struct cpu_ctx *cctx, u64 curr_vr)
{
	struct task_struct *p;
	u64 lowest = curr_vr;

	bpf_for_each(scx_dsq, p, cpu_dsq(cpu), 0) {
		if (time_before(p->scx.dsq_vtime, lowest))
			lowest = p->scx.dsq_vtime;
		break;
	}
	cctx->curr_vruntime = curr_vr;
	if (time_before(cctx->min_vruntime, lowest))
		cctx->min_vruntime = lowest;
}

/*
 * ops.dispatch runs before the kernel puts a still-runnable prev back in the
 * queue, so prev is not in it yet. Charge prev for the slice it just used and
 * keep it running while it still has the lowest vruntime, as CFS would pick
 * it; otherwise taking the queue's head would hand prev's turn to the next
 * task every time and flatten the nice weights.
 */
static bool cfs_keep_prev(s32 cpu, struct task_struct *prev, struct cpu_ctx *cctx)
{
	struct task_ctx *tctx;
	struct task_struct *p;
	u64 prev_vr, now = scx_bpf_now();

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || !(tctx = task_ctx(prev)))
		return false;
	prev_vr = prev->scx.dsq_vtime;
	if (tctx->last_run_at && !time_before(now, tctx->last_run_at))
		prev_vr += (now - tctx->last_run_at) * NICE_0_LOAD / task_load_weight(prev);
	bpf_for_each(scx_dsq, p, cpu_dsq(cpu), 0) {
		if (time_before(p->scx.dsq_vtime, prev_vr))
			return false;
		break;
	}
	/* prev keeps the CPU: charge it now, as the stop and restart would. */
	prev->scx.dsq_vtime = prev_vr;
	tctx->last_run_at = now;
	prev->scx.slice = cfs_slice(cctx);
	cfs_update_min_vruntime(cpu, cctx, prev_vr);
	return true;
}

static __always_inline void cfs_dispatch_work(s32 cpu, struct task_struct *prev, struct cpu_ctx *cctx, u64 now)
{
	bool busy;
	u32 level;

	busy = scx_bpf_dsq_nr_queued(cpu_dsq(cpu)) > 0 ||
	       (prev && (prev->scx.flags & SCX_TASK_QUEUED));

	bpf_for(level, 0, NR_DOM_LEVELS) {
		u64 interval;

		if (!dom_active[level & (NR_DOM_LEVELS - 1)])
			continue;
		interval = (u64)dom_weight[level & (NR_DOM_LEVELS - 1)][cpu_idx(cpu)] * 1000000ULL *
			   (busy ? busy_factor : 1);
		if (now - cctx->last_balance[level] < interval)
			continue;
		cctx->last_balance[level] = now;
		cfs_balance(cpu, level, 0);
	}

	if (cfs_keep_prev(cpu, prev, cctx))
		return;
	if (scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0)) {
		stat_inc(STAT_DSQ_MOVE);
		return;
	}
	/* Newly idle: pull from the closest domain that has work. */
	bpf_for(level, 0, NR_DOM_LEVELS) {
		if (!dom_active[level & (NR_DOM_LEVELS - 1)])
			continue;
		if (cfs_balance(cpu, level, 1) && scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0)) {
			stat_inc(STAT_DSQ_MOVE);
			return;
		}
	}
}

static void cfs_dispatch(s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = scx_bpf_now();

	if (!cctx || cpu < 0 || cpu >= MAX_CPUS)
		return;
	cost_begin(COST_DISPATCH);
	cfs_dispatch_work(cpu, prev, cctx, now);
	cost_end(COST_DISPATCH);
}

static void cfs_running(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);

	if (cctx)
		cfs_update_min_vruntime(cpu, cctx, p->scx.dsq_vtime);
}

static void cfs_stopping(struct task_struct *p, u64 ran_ns)
{
	p->scx.dsq_vtime += ran_ns * NICE_0_LOAD / task_load_weight(p);
}

static void cfs_enable(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	struct task_ctx *tctx = task_ctx(p);

	p->scx.dsq_vtime = cctx ? cctx->min_vruntime : 0;
	if (tctx)
		tctx->vtime_cpu = cpu;
}

#endif /* __SCX_BATTLE_CFS_BPF_H */
