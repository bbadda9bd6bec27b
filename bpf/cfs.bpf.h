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
 * an idle CPU in the same LLC, then in the same node, else to the least
 * loaded CPU it may run on.
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
 * level has failed cache_nice_tries times. Running tasks and tasks not
 * allowed here never move. Balancing runs in ops.dispatch, which
 * SCX_OPS_ENQ_LAST makes run at every slice end even on a CPU with one task.
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
	u32	ignore_hot;
};

/* The running totals of one balance pass, in map memory for the same reason. */
struct balance_state {
	u64	dom_load;
	u64	busiest_avg;
	u64	src_load;
	u32	dom_nr;
	u32	busiest_g;
	s32	src;
	u32	pad;
};

/* Per-CPU scratch for balancing: group loads of the domain, the pass, the pull. */
struct lb_groups {
	u64	load[MAX_CPUS];
	u32	nr[MAX_CPUS];
	struct balance_state bal;
	struct pull_state pull;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct lb_groups);
} lb_scratch SEC(".maps");

static __always_inline u64 cfs_slice(struct cpu_ctx *cctx)
{
	u64 nr = cctx->nr_running ? cctx->nr_running : 1;
	u64 slice = sched_latency_ns / nr;

	return slice < sched_min_granularity_ns ? sched_min_granularity_ns : slice;
}

static __always_inline bool cpu_usable(u32 cpu, const struct task_struct *p)
{
	return cpu < MAX_CPUS && cpu_online[cpu_idx(cpu)] && bpf_cpumask_test_cpu(cpu, p->cpus_ptr);
}

static s32 cfs_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	u64 best_load = ~0ULL;
	s32 best = -1;
	u32 cpu, level;

	if (cpu_usable(prev_cpu, p) && scx_bpf_test_and_clear_cpu_idle(prev_cpu))
		return prev_cpu;

	for (level = DOM_LLC; level <= DOM_NODE; level++) {
		bpf_for(cpu, 0, nr_cpu_ids) {
			if (!cpu_usable(cpu, p) || !in_domain(prev_cpu, cpu, level))
				continue;
			if (scx_bpf_test_and_clear_cpu_idle(cpu)) {
				stat_inc(STAT_IDLE_PICK);
				return cpu;
			}
		}
	}

	bpf_for(cpu, 0, nr_cpu_ids) {
		struct cpu_ctx *cctx;

		if (!cpu_usable(cpu, p) || !(cctx = cpu_ctx(cpu)))
			continue;
		if (cctx->load < best_load) {
			best_load = cctx->load;
			best = cpu;
		}
	}
	return best >= 0 ? best : prev_cpu;
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
 * moved; returns how many moved. vruntime is carried over relative to each
 * queue's min_vruntime. A global function: the verifier checks it once, not
 * at every call site inside the callers' loops.
 */
__hidden __noinline int cfs_pull(s32 this_cpu, s32 src, u32 level, u64 imbalance)
{
	struct cpu_ctx *sctx = cpu_ctx(src), *dctx = cpu_ctx(this_cpu);
	struct task_struct *p;
	struct lb_groups *gs;
	struct pull_state *ps;
	u32 zero = 0;

	if (!sctx || !dctx || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	ps = &gs->pull;
	ps->imbalance = imbalance;
	ps->moved_load = 0;
	ps->moved = 0;
	ps->now = scx_bpf_now();
	ps->src_min_vruntime = sctx->min_vruntime;
	ps->dst_min_vruntime = dctx->min_vruntime;
	ps->ignore_hot = dctx->nr_balance_failed[level] > cache_nice_tries[level];

	bpf_for_each(scx_dsq, p, cpu_dsq(src), 0) {
		struct task_ctx *tctx;
		u64 vruntime, w;

		if (ps->moved >= sched_nr_migrate || ps->moved_load >= ps->imbalance)
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
	return ps->moved;
}

/* One pass over this CPU's domain at `level`; 1 if tasks were pulled. Global, as cfs_pull. */
__hidden __noinline int cfs_balance(s32 this_cpu, u32 level, u32 newidle)
{
	struct cpu_ctx *dctx = cpu_ctx(this_cpu), *cctx;
	struct balance_state *bs;
	struct lb_groups *gs;
	u64 local_avg, dom_avg, imbalance;
	u32 cpu, g, local_g, zero = 0;
	int moved;

	if (!dctx || level >= NR_DOM_LEVELS || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	bs = &gs->bal;
	stat_inc(STAT_LB_ATTEMPT);
	stat_inc(newidle ? STAT_LB_NEWIDLE : STAT_LB_PERIODIC);

	/* Load per group of the domain. */
	bpf_for(cpu, 0, nr_cpu_ids) {
		if (!cpu_online[cpu_idx(cpu)] || !in_domain(this_cpu, cpu, level))
			continue;
		g = cpu_idx(group_of(cpu, level));
		gs->load[g] = 0;
		gs->nr[g] = 0;
	}
	bs->dom_load = 0;
	bs->dom_nr = 0;
	bpf_for(cpu, 0, nr_cpu_ids) {
		if (!cpu_online[cpu_idx(cpu)] || !in_domain(this_cpu, cpu, level) || !(cctx = cpu_ctx(cpu)))
			continue;
		g = cpu_idx(group_of(cpu, level));
		gs->load[g] += cctx->load;
		gs->nr[g]++;
		bs->dom_load += cctx->load;
		bs->dom_nr++;
	}
	local_g = cpu_idx(group_of(this_cpu, level));
	if (!gs->nr[local_g] || !bs->dom_nr)
		return 0;
	local_avg = gs->load[local_g] / gs->nr[local_g];
	dom_avg = bs->dom_load / bs->dom_nr;

	/* The busiest other group, by average load per CPU. */
	bs->busiest_avg = 0;
	bs->busiest_g = MAX_CPUS;
	bpf_for(cpu, 0, nr_cpu_ids) {
		u64 avg;

		if (!cpu_online[cpu_idx(cpu)] || !in_domain(this_cpu, cpu, level))
			continue;
		g = cpu_idx(group_of(cpu, level));
		if (g == local_g || !gs->nr[g])
			continue;
		avg = gs->load[g] / gs->nr[g];
		if (avg > bs->busiest_avg) {
			bs->busiest_avg = avg;
			bs->busiest_g = g;
		}
	}
	if (bs->busiest_g >= MAX_CPUS || bs->busiest_avg <= local_avg || dom_avg <= local_avg) {
		stat_inc(STAT_LB_BALANCED);
		return 0;
	}
	if (bs->busiest_avg * 100 <= local_avg * imbalance_pct[level]) {
		stat_inc(STAT_LB_BELOW_PCT);
		return 0;
	}
	/* Load to move here: what the busiest group has above the domain's
	 * average, but no more than this group lacks below it. */
	g = cpu_idx(bs->busiest_g);
	imbalance = (bs->busiest_avg - dom_avg) * gs->nr[g];
	if ((dom_avg - local_avg) * gs->nr[local_g] < imbalance)
		imbalance = (dom_avg - local_avg) * gs->nr[local_g];

	/* Its busiest CPU that has queued tasks. */
	bs->src = -1;
	bs->src_load = 0;
	bpf_for(cpu, 0, nr_cpu_ids) {
		if (!cpu_online[cpu_idx(cpu)] || !in_domain(this_cpu, cpu, level) ||
		    group_of(cpu, level) != bs->busiest_g || !(cctx = cpu_ctx(cpu)))
			continue;
		if (scx_bpf_dsq_nr_queued(cpu_dsq(cpu)) > 0 && cctx->load > bs->src_load) {
			bs->src_load = cctx->load;
			bs->src = cpu;
		}
	}
	moved = bs->src >= 0 ? cfs_pull(this_cpu, bs->src, level, imbalance) : 0;
	if (!moved) {
		stat_inc(STAT_LB_NO_TASK);
		dctx->nr_balance_failed[level]++;
		return 0;
	}
	stat_inc(STAT_LB_SUCCESS);
	dctx->nr_balance_failed[level] = 0;
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

static void cfs_dispatch(s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = scx_bpf_now();
	bool busy;
	u32 level;

	if (!cctx || cpu < 0 || cpu >= MAX_CPUS)
		return;
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
