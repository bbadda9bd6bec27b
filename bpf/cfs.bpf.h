/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The CFS policy: Linux's Completely Fair Scheduler as of 4.9 (the pick rule
 * before EEVDF) and its load balancer, on sched_ext.
 *
 * 1. Selection. Every CPU has its own queue ordered by vruntime and runs the
 *    task with the lowest. vruntime grows by run time x NICE_0_LOAD / weight,
 *    with Linux's nice-to-weight table, so a nice -5 task (3121) accrues it
 *    three times slower than a nice 0 one (1024). A task's slice is its
 *    weight's share of the period (sched_slice): sched_latency, or
 *    sched_min_granularity per task beyond sched_nr_latency tasks. At every
 *    tick the running task is preempted once it has run its slice, or when it
 *    has run sched_min_granularity and leads the queue's head by more than a
 *    slice (check_preempt_tick). A forked task starts a slice's worth of
 *    vruntime after the queue's floor, min_vruntime (START_DEBIT), and no
 *    earlier than its parent; a task that was there when the scheduler
 *    loaded starts at the floor. A waking task is placed no earlier than
 *    min_vruntime minus half sched_latency (bounded sleeper credit), and
 *    preempts the running task when the running task's vruntime is higher by
 *    more than sched_wakeup_granularity in the waking task's vruntime units
 *    (check_preempt_wakeup). A task moving between queues keeps its lead or
 *    lag over the queue's min_vruntime, negative or not.
 *
 * 2. Placement (select_task_rq_fair). A forked task goes to the
 *    least loaded CPU of the machine: the least loaded node's least loaded
 *    LLC's least loaded CPU (find_idlest_group / find_idlest_cpu). A waking
 *    task stays in one LLC: the target is its previous CPU, or the waker's
 *    CPU when wake_affine finds the waker's CPU no busier than the previous
 *    one; then select_idle_sibling: the target if idle, the previous CPU if
 *    idle and in the target's LLC, an idle core of that LLC, an idle CPU of
 *    it, else the target. Idle CPUs come from the kernel's own idle tracking
 *    within the LLC's cpumask.
 *
 * 3. Balancing (load_balance). A CPU balances its domains bottom-up (SMT,
 *    LLC, node, machine) once per domain interval, the domain's CPU count in
 *    ms, times busy_factor while the CPU is busy, so close CPUs are balanced
 *    often and remote nodes rarely. A pass finds the busiest group of the
 *    domain by average load; if that is more than imbalance_pct above the
 *    local group's (110 SMT, 117 LLC, 125 node and machine: the 25% rule
 *    across NUMA), it pulls queued tasks from the busiest CPU of that group
 *    until the load moved evens the two out (calculate_imbalance; when that
 *    is less than one task, fix_small_imbalance moves one if that narrows
 *    the gap), skipping tasks that ran within sched_migration_cost
 *    (cache-hot) until balancing at that level has failed cache_nice_tries
 *    times, and looking at sched_nr_migrate queued tasks at most (Linux's
 *    loop_max). Running tasks and tasks not allowed here never move.
 *
 *    Newly idle: a CPU whose task just stopped and that has nothing queued
 *    balances its domains bottom-up until one pass pulls; with
 *    newidle_pull_one (CONFIG_PREEMPTION, as Debian's kernels) such a pass
 *    pulls a single task. Its failures do not count towards cache hotness.
 *
 *    NOHZ idle balancing. Idle CPUs have no tick and would never balance. A
 *    CPU with a task waiting at its tick starts a round when the last one is
 *    older than the shortest idle interval: it wakes one idle CPU, which
 *    balances its domains as an idle CPU (periodic intervals without
 *    busy_factor) and wakes the next idle CPU, until the round comes back to
 *    a CPU that has had its turn. Linux's idle-load balancer makes the same
 *    passes from one CPU on behalf of the others; here each CPU makes its
 *    own, since a sched_ext CPU moves tasks to its own queue only.
 *
 * 4. Cost. Group loads come from per-LLC and per-node sums kept up to date as
 *    tasks come, go and move (shared.bpf.h), so a pass looks at the CPUs of
 *    one core or one LLC, the LLCs of one node, or the nodes, never at every
 *    CPU; the busiest CPU is then looked for in one LLC (at the machine
 *    level, in the busiest node's busiest LLC). The NOHZ round costs each
 *    idle CPU one pass.
 *
 * 5. Deviations from Linux 4.9, each with why:
 *    - Load is the weight of the runnable tasks now, not PELT's decayed
 *      average (no per-entity history in sched_ext without its own PELT);
 *      group loads are not scaled by capacity (all CPUs are equal here).
 *    - Balance intervals do not adapt (no doubling on balanced or failed
 *      passes), and there is no active balance (pushing a running task away
 *      takes the stopper thread, which sched_ext does not offer).
 *    - Every CPU balances every level (no should_we_balance, which lets only
 *      the local group's first idle CPU do it): finding that CPU from the
 *      kernel's idle cpumask pushed Linux 6.19's verifier past 760k
 *      instructions on ops.dispatch (SCX_BATTLE_VERIFIER_LOG=4). More
 *      passes than Linux's, each of which finds the same busiest group.
 *    - A pass whose tasks were all pinned does not retry with the next
 *      busiest CPU (LBF_ALL_PINNED); the next pass will.
 *    - A group is overloaded (load_above_capacity applies) when it has more
 *      tasks than CPUs; Linux also wants its utilization above capacity /
 *      imbalance_pct, and sched_ext keeps no utilization. There is no
 *      group_imbalanced class (set when pinned tasks foiled a pass), since
 *      there is no LBF_SOME_PINNED retry either.
 *    - Newly-idle balance is not gated by avg_idle, max_newidle_lb_cost or
 *      the root domain's overload flag.
 *    - The NOHZ kick happens when a CPU has two tasks or more; Linux also
 *      kicks when its LLC has two busy CPUs. Each idle CPU is woken for its
 *      pass instead of being balanced from afar (see 3).
 *    - wake_affine compares instantaneous CPU loads with half the domain's
 *      imbalance_pct, as 4.9 does, but without wake_wide's flip counts or
 *      task-group effective loads; there are no next/last buddies.
 *    - The idle sibling search takes any idle core and then any idle CPU of
 *      the LLC from the kernel's tracking; Linux scans from the target with a
 *      cost cut-off (avg_idle / avg_scan_cost).
 *    - No exec balancing: sched_ext keeps an exec'ing task on its CPU (it
 *      does not call ops.select_cpu for exec).
 *    - Group scheduling (task groups, cgroups) is not modelled: every task
 *      is an entity of its CPU's root queue.
 */
#ifndef __SCX_BATTLE_CFS_BPF_H
#define __SCX_BATTLE_CFS_BPF_H

#include "cfs_arith.h"

/* Tunables, Linux names; the loader scales the first three by 1 + ilog2(min(ncpus, 8)). */
const volatile u64 sched_latency_ns = 24000000ULL;		/* ns, 6 ms x factor */
const volatile u64 sched_min_granularity_ns = 3000000ULL;	/* ns, 0.75 ms x factor */
const volatile u64 sched_wakeup_granularity_ns = 4000000ULL;	/* ns, 1 ms x factor */
/* Tasks a period covers before it stretches: sched_latency / sched_min_granularity. */
const volatile u32 sched_nr_latency = 8;
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
 * A newly-idle pass stops after one task (CONFIG_PREEMPTION kernels, as
 * Debian's PREEMPT_DYNAMIC ones: newidle balancing runs with interrupts off,
 * so it is kept short). 0 pulls like any other pass.
 */
const volatile u8 newidle_pull_one = 1;

/* Linux's idle types of a balance pass (enum cpu_idle_type). */
enum cfs_idle_type {
	CFS_NOT_IDLE,		/* periodic, on a busy CPU */
	CFS_IDLE,		/* periodic, on an idle CPU (its own tick, or a NOHZ round) */
	CFS_NEWLY_IDLE,		/* the CPU's last task just stopped */
};

/*
 * CFS's per-CPU run-queue state (Linux's cfs_rq and the rq's balancing
 * fields). Other CPUs read min_vruntime and write nohz_round: a line of its own.
 */
struct cfs_rq_ctx {
	u64	min_vruntime;		/* floor of the queue's vruntimes */
	u64	curr_vruntime;		/* vruntime of the running task when it started */
	u64	curr_started;		/* ns, when it started (0: no task running) */
	u64	last_balance[NR_DOM_LEVELS];	/* ns, last balance pass per level */
	u32	nr_balance_failed[NR_DOM_LEVELS];
	u32	curr_weight;		/* the running task's weight */
	u32	nohz_round;		/* the NOHZ round this CPU was woken for */
	u32	nohz_done;		/* the last round it balanced in */
} __attribute__((aligned(64)));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cfs_rq_ctx);
} cfs_rqs SEC(".maps");

static __always_inline struct cfs_rq_ctx *cfs_rq_of(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&cfs_rqs, &key);
}

/* The NOHZ idle balancer: when the next round may start, and its number. */
u64 nohz_next_balance;
u32 nohz_round;

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
 * sched_slice: a task of weight w gets w / (the queue's load) of the period,
 * which is sched_latency up to sched_nr_latency tasks and
 * sched_min_granularity per task beyond. on_rq: the task is already counted
 * in cctx (else it is about to join).
 */
static __always_inline u64 cfs_sched_slice(struct cpu_ctx *cctx, u64 w, bool on_rq)
{
	u64 nr = cctx->nr_running + !on_rq, load = cctx->load + (on_rq ? 0 : w);
	u64 period = nr > sched_nr_latency ? nr * sched_min_granularity_ns : sched_latency_ns;

	return load ? period * w / load : period;
}

/* The same slice in vruntime units (sched_vslice). */
static __always_inline u64 cfs_sched_vslice(struct cpu_ctx *cctx, u64 w, bool on_rq)
{
	return cfs_sched_slice(cctx, w, on_rq) * NICE_0_LOAD / (w ? w : 1);
}

/*
 * The vruntime at the head of a CPU's queue, or `none` if it is empty. A CPU
 * that was offline at load has no queue, and the peek kfunc treats a missing
 * queue as an error that ends the scheduler.
 */
static __always_inline u64 cfs_head_vruntime(s32 cpu, u64 none)
{
	struct task_struct *p;

	if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return none;
	p = __COMPAT_scx_bpf_dsq_peek(cpu_dsq(cpu));

	return p ? p->scx.dsq_vtime : none;
}

/* The running task's vruntime now (update_curr), or 0 if none runs. */
static __always_inline u64 cfs_curr_vruntime(struct cfs_rq_ctx *rq, u64 now)
{
	if (!rq->curr_started || !rq->curr_weight)
		return 0;
	return rq->curr_vruntime +
	       (time_before(now, rq->curr_started) ? 0 : (now - rq->curr_started) * NICE_0_LOAD / rq->curr_weight);
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

static s32 cfs_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 this_cpu = bpf_get_smp_processor_id(), target = prev_cpu, cpu;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	if (wake_flags & SCX_WAKE_FORK) {
		/* Fork balancing: the least loaded CPU of the machine. */
		cpu = least_loaded_cpu(p, prev_cpu, COST_SELECT);
		if (cpu >= 0 && scx_bpf_test_and_clear_cpu_idle(cpu))
			stat_inc(STAT_IDLE_PICK);
		goto out;
	}
	if (!cpu_usable(prev_cpu, p)) {
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
		goto out;
	}
	if (this_cpu != prev_cpu && cpu_usable(this_cpu, p) &&
	    cfs_wake_affine(p, this_cpu, prev_cpu, wake_flags & SCX_WAKE_SYNC)) {
		stat_inc(STAT_WAKE_AFFINE);
		target = this_cpu;
	}
	cpu = cfs_idle_sibling(p, prev_cpu, target);
out:
	cost_end(COST_SELECT);
	return cpu;
}

/*
 * A vruntime on `from`'s queue clock, expressed on `to`'s: the lead or lag
 * over the old queue's min_vruntime, negative or not, is kept (Linux
 * subtracts one min_vruntime and adds the other).
 */
static __always_inline u64 cfs_rebase(u64 vruntime, s32 from, s32 to)
{
	struct cfs_rq_ctx *f, *t;

	if (from < 0 || from == to || !(f = cfs_rq_of(from)) || !(t = cfs_rq_of(to)))
		return vruntime;
	return vruntime - f->min_vruntime + t->min_vruntime;
}

static void cfs_enqueue(struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq;
	struct cpu_ctx *cctx;
	u64 vruntime = p->scx.dsq_vtime, floor, curr_vr, gran, w;

	if (!cpu_usable(cpu, p))
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	if (!tctx || cpu < 0 || !(cctx = cpu_ctx(cpu)) || !(rq = cfs_rq_of(cpu))) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, sched_min_granularity_ns, enq_flags);
		return;
	}
	account_task(p, tctx, cpu);
	w = task_load_weight(p);

	/* Each queue has its own clock: carry the lead or lag over on a move. */
	vruntime = cfs_rebase(vruntime, tctx->vtime_cpu, cpu);
	tctx->vtime_cpu = cpu;

	/* Bounded sleeper credit: a waking task is at most half a latency period behind. */
	floor = rq->min_vruntime - sched_latency_ns / 2;
	if ((enq_flags & SCX_ENQ_WAKEUP) && time_before(vruntime, floor))
		vruntime = floor;
	scx_bpf_dsq_insert_vtime(p, cpu_dsq(cpu), cfs_sched_slice(cctx, w, true), vruntime, enq_flags);

	/*
	 * check_preempt_wakeup: the running task's vruntime now against the
	 * waker's, with the granularity in the waking task's vruntime units.
	 */
	curr_vr = cfs_curr_vruntime(rq, scx_bpf_now());
	gran = sched_wakeup_granularity_ns * NICE_0_LOAD / w;
	if ((enq_flags & SCX_ENQ_WAKEUP) && rq->curr_started && (s64)(curr_vr - vruntime) > (s64)gran) {
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
 * queue's min_vruntime. Not inlined (__noinline): one subprogram, not a copy
 * at every call site inside the callers' loops. (__hidden gives it static
 * linkage in libbpf, so the verifier checks it in its callers' context.)
 */
__hidden __noinline int cfs_pull(s32 this_cpu, s32 src, u32 level, u64 imbalance)
{
	struct cfs_rq_ctx *srq = cfs_rq_of(src), *drq = cfs_rq_of(this_cpu);
	struct task_struct *p;
	struct lb_scratch *gs;
	struct pull_state *ps;
	u32 zero = 0;

	if (!srq || !drq || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	level &= NR_DOM_LEVELS - 1;
	ps = &gs->pull;
	ps->imbalance = imbalance;
	ps->moved_load = 0;
	ps->moved = 0;
	ps->loops = 0;
	ps->now = scx_bpf_now();
	ps->src_min_vruntime = srq->min_vruntime;
	ps->dst_min_vruntime = drq->min_vruntime;
	ps->ignore_hot = drq->nr_balance_failed[level] > cache_nice_tries[level];

	bpf_for_each(scx_dsq, p, cpu_dsq(src), 0) {
		struct task_ctx *tctx;
		u64 w;

		/* Linux's loop_max: look at no more than sched_nr_migrate tasks. */
		if (ps->loops++ >= sched_nr_migrate || ps->moved_load >= ps->imbalance)
			break;
		/* CONFIG_PREEMPTION: a newly-idle pass stops after one task. */
		if (ps->moved && ps->idle_type == CFS_NEWLY_IDLE && newidle_pull_one)
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
		/* The lead or lag over min_vruntime moves with the task. */
		scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER,
					   p->scx.dsq_vtime - ps->src_min_vruntime + ps->dst_min_vruntime);
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
 * node's LLCs, or the nodes: never at every CPU. Not inlined, as cfs_pull,
 * and so are the next two.
 */
__hidden __noinline int cfs_scan_groups(s32 this_cpu, u32 level)
{
	u32 i, first, nr, g, local_g, gnr = 0, gtasks = 0, zero = 0;
	struct balance_state *bs;
	struct lb_scratch *gs;
	u64 gload = 0;
	struct cpu_ctx *cctx;
	struct dom_stat *ds;

	if (this_cpu < 0 || this_cpu >= MAX_CPUS || !(gs = bpf_map_lookup_elem(&lb_scratch, &zero)))
		return 0;
	bs = &gs->bal;

	bs->g.dom_load = bs->g.local_load = bs->g.busiest_load = 0;
	bs->g.dom_nr = bs->g.local_nr = bs->g.busiest_nr = 0;
	bs->g.local_tasks = bs->g.busiest_tasks = 0;
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
			bs->g.dom_load += gload;
			bs->g.dom_nr += gnr;
			if (g == local_g) {
				bs->g.local_load = gload;
				bs->g.local_nr = gnr;
				bs->g.local_tasks = gtasks;
			} else if (gnr && (!bs->g.busiest_nr || gload * bs->g.busiest_nr > bs->g.busiest_load * gnr)) {
				bs->g.busiest_load = gload;
				bs->g.busiest_nr = gnr;
				bs->g.busiest_tasks = gtasks;
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
		gtasks += cctx->nr_running;
		bs->g.dom_load += cctx->load;
		bs->g.dom_nr++;
		if (level == DOM_LLC && i + 1 < nr && core_first[cpu_idx(topo_cpu(first + i + 1))] == g)
			continue;
		if (g == local_g) {
			bs->g.local_load = gload;
			bs->g.local_nr = gnr;
			bs->g.local_tasks = gtasks;
		} else if (!bs->g.busiest_nr || gload * bs->g.busiest_nr > bs->g.busiest_load * gnr) {
			bs->g.busiest_load = gload;
			bs->g.busiest_nr = gnr;
			bs->g.busiest_tasks = gtasks;
			bs->busiest_g = g;
		}
		gload = 0;
		gnr = 0;
		gtasks = 0;
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

/* One pass over this CPU's domain at `level`; 1 if tasks were pulled. Global, as cfs_pull. */
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
		return 0;
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
	if (!bs->g.local_nr || !bs->g.dom_nr)
		return 0;
	local_avg = bs->g.local_load / bs->g.local_nr;
	dom_avg = bs->g.dom_load / bs->g.dom_nr;
	busiest_avg = bs->g.busiest_nr ? bs->g.busiest_load / bs->g.busiest_nr : 0;
	if (bs->busiest_g == ~0U || busiest_avg <= local_avg || dom_avg <= local_avg) {
		stat_inc(STAT_LB_BALANCED);
		return 0;
	}
	barrier_var(level);
	if (busiest_avg * 100 <= local_avg * imbalance_pct[level & (NR_DOM_LEVELS - 1)]) {
		stat_inc(STAT_LB_BELOW_PCT);
		return 0;
	}
	cfs_pass_imbalance();
	imbalance = bs->imbalance;
	if (!imbalance) {
		stat_inc(STAT_LB_BALANCED);
		return 0;
	}

	bs->src = cfs_busiest_cpu(level, bs->busiest_g);
	cost_visit(COST_DISPATCH, bs->visits);
	moved = bs->src >= 0 ? cfs_pull(this_cpu, bs->src, level, imbalance) : 0;
	level &= NR_DOM_LEVELS - 1;
	barrier_var(level);
	if (!moved) {
		stat_inc(STAT_LB_NO_TASK);
		/* Only periodic failures make tasks lose their cache hotness. */
		if (idle_type != CFS_NEWLY_IDLE)
			drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)]++;
		return 0;
	}
	stat_inc(STAT_LB_SUCCESS);
	drq->nr_balance_failed[level & (NR_DOM_LEVELS - 1)] = 0;
	return 1;
}

/*
 * Advance this CPU's queue clock: min_vruntime follows the lowest vruntime in
 * play, the running task's or the queue head's, and never goes back (Linux's
 * update_min_vruntime). Following the running task alone lets the floor run
 * ahead of tasks still queued behind it, and wakers placed against that
 * floor then starve behind them.
 */
static void cfs_update_min_vruntime(s32 cpu, struct cfs_rq_ctx *rq, u64 curr_vr)
{
	u64 lowest = cfs_head_vruntime(cpu, curr_vr);

	if (time_before(curr_vr, lowest))
		lowest = curr_vr;
	if (time_before(rq->min_vruntime, lowest))
		rq->min_vruntime = lowest;
}

/*
 * ops.dispatch runs before the kernel puts a still-runnable prev back in the
 * queue, so prev is not in it yet. Charge prev for the slice it just used and
 * keep it running while it still has the lowest vruntime, as CFS would pick
 * it; otherwise taking the queue's head would hand prev's turn to the next
 * task every time and flatten the nice weights.
 */
static bool cfs_keep_prev(s32 cpu, struct task_struct *prev, struct cpu_ctx *cctx, struct cfs_rq_ctx *rq)
{
	struct task_ctx *tctx;
	u64 prev_vr, now = scx_bpf_now(), w;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || !(tctx = task_ctx(prev)))
		return false;
	w = task_load_weight(prev);
	prev_vr = prev->scx.dsq_vtime;
	prev_vr += task_ran(tctx, now) * NICE_0_LOAD / w;
	if (time_before(cfs_head_vruntime(cpu, prev_vr), prev_vr))
		return false;
	/* prev keeps the CPU: charge it now, as the stop and restart would. */
	prev->scx.dsq_vtime = prev_vr;
	tctx->last_run_at = now;
	prev->scx.slice = cfs_sched_slice(cctx, w, true);
	rq->curr_vruntime = prev_vr;
	rq->curr_started = now;
	cfs_update_min_vruntime(cpu, rq, prev_vr);
	return true;
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

/*
 * Periodic passes: every level whose interval has passed, the interval
 * stretched by busy_factor on a busy CPU. Global, as cfs_pull.
 */
__hidden __noinline int cfs_periodic_balance(s32 cpu, u32 busy)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	u64 now = scx_bpf_now();
	u32 level;

	if (!rq || cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	bpf_for(level, 0, NR_DOM_LEVELS) {
		u64 interval;

		if (!dom_active[level & (NR_DOM_LEVELS - 1)])
			continue;
		interval = (u64)dom_weight[level & (NR_DOM_LEVELS - 1)][cpu_idx(cpu)] * 1000000ULL *
			   (busy ? busy_factor : 1);
		if (now - rq->last_balance[level & (NR_DOM_LEVELS - 1)] < interval)
			continue;
		rq->last_balance[level & (NR_DOM_LEVELS - 1)] = now;
		cfs_balance(cpu, level, busy ? CFS_NOT_IDLE : CFS_IDLE);
	}
	return 0;
}

/* Newly idle: pull from the closest domain that has work. Global, as cfs_pull. */
__hidden __noinline int cfs_newidle_balance(s32 cpu)
{
	u32 level;

	bpf_for(level, 0, NR_DOM_LEVELS) {
		if (!dom_active[level & (NR_DOM_LEVELS - 1)])
			continue;
		if (cfs_balance(cpu, level, CFS_NEWLY_IDLE) && scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0)) {
			stat_inc(STAT_DSQ_MOVE);
			return 1;
		}
	}
	return 0;
}

static __always_inline void cfs_dispatch_work(s32 cpu, struct task_struct *prev, struct cpu_ctx *cctx,
					      struct cfs_rq_ctx *rq)
{
	bool busy, nohz = rq->nohz_round != rq->nohz_done;
	u32 round = rq->nohz_round;

	busy = scx_bpf_dsq_nr_queued(cpu_dsq(cpu)) > 0 ||
	       (prev && (prev->scx.flags & SCX_TASK_QUEUED));
	cfs_periodic_balance(cpu, busy);
	if (nohz) {
		/* This CPU's turn in a NOHZ round is done: hand the round on. */
		rq->nohz_done = round;
		cfs_nohz_pass_on(round);
	}

	if (cfs_keep_prev(cpu, prev, cctx, rq))
		return;
	if (scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0)) {
		stat_inc(STAT_DSQ_MOVE);
		return;
	}
	/*
	 * Newly idle: the CPU's last task just stopped (an idle CPU woken by
	 * a kick has no prev: it balanced above, as an idle CPU). Pull from the
	 * closest domain that has work.
	 */
	if (prev)
		cfs_newidle_balance(cpu);
}

static void cfs_dispatch(s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	/* A CPU that came online after the load has no queues: the restart is on its way. */
	if (!cctx || !rq || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	cost_begin(COST_DISPATCH);
	cfs_dispatch_work(cpu, prev, cctx, rq);
	cost_end(COST_DISPATCH);
}

/*
 * The tick: check_preempt_tick, and the NOHZ kick (nohz_balancer_kick) when
 * a task waits here while CPUs may idle.
 */
static void cfs_tick(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = scx_bpf_now(), ran, ideal, head, next, w;
	u32 lowest = 0, level;

	if (!rq || !tctx || !cctx || cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return;
	if (!scx_bpf_dsq_nr_queued(cpu_dsq(cpu)))
		return;		/* alone here: nothing to preempt for, nobody to give away */

	/* check_preempt_tick: the slice is used up, or the head is far behind. */
	w = task_load_weight(p);
	ran = task_ran(tctx, now);
	ideal = cfs_sched_slice(cctx, w, true);
	head = cfs_head_vruntime(cpu, ~0ULL);
	if (ran > ideal ||
	    (ran >= sched_min_granularity_ns && head != ~0ULL &&
	     (s64)(cfs_curr_vruntime(rq, now) - head) > (s64)ideal)) {
		p->scx.slice = 0;
		stat_inc(STAT_TICK_PREEMPT);
	}

	/* The NOHZ kick: one CPU starts a round per shortest idle interval. */
	next = nohz_next_balance;
	if (time_before(now, next))
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

static void cfs_running(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu);

	if (!rq)
		return;
	rq->curr_vruntime = p->scx.dsq_vtime;
	rq->curr_weight = task_load_weight(p);
	rq->curr_started = scx_bpf_now();
	cfs_update_min_vruntime(cpu, rq, p->scx.dsq_vtime);
}

static void cfs_stopping(struct task_struct *p, u64 ran_ns)
{
	struct cfs_rq_ctx *rq = cfs_rq_of(scx_bpf_task_cpu(p));

	p->scx.dsq_vtime += ran_ns * NICE_0_LOAD / task_load_weight(p);
	if (rq)
		rq->curr_started = 0;
}

/*
 * A task joins the policy. A new one (a fork): START_DEBIT places it one
 * vslice after the queue's floor, so it waits its turn instead of
 * preempting, and never before the CFS task running on the forking CPU
 * (task_fork_fair's cfs_rq->curr: the parent when the parent is ours; none
 * when the parent belongs to another class, a SCHED_FIFO thread say, whose
 * own vruntime is frozen since it left). One that existed already (the
 * scheduler loading, or a task switching in from another class) starts at
 * the floor, as switched_to_fair places a task that was not queued: a debit
 * there would be a fork's penalty on a task that never forked, and for a
 * nice-19 kernel thread on a quiet CPU it is a whole period at weight 15,
 * 1.6 s of vruntime, which 16 spinners arriving later take 26 s to catch up
 * with: the watchdog ejected the scheduler for khugepaged so.
 *
 * The parent's own dsq_vtime is not used: a parent of another class last ran
 * here long ago, and charging it the time since then as if it had run (as
 * this function once did) gave each child created by a SCHED_FIFO thread a
 * vruntime that grew with wall-clock time. Children pinned to one CPU then
 * queued behind each other by up to the whole creation time each, so the
 * last ones waited nr_running times that, and the watchdog ejected the
 * scheduler (512 threads started spinning on one CPU of 2 x 16 cores).
 */
static void cfs_enable(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p), this_cpu = bpf_get_smp_processor_id();
	struct cfs_rq_ctx *rq = cfs_rq_of(cpu), *this_rq;
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 vr, curr_vr;

	if (!rq || !cctx || !tctx) {
		p->scx.dsq_vtime = 0;
		return;
	}
	vr = rq->min_vruntime;
	if (!tctx->forked)
		goto out;
	/* Only the first enable is a fork's: a later one is a switch back from another class. */
	tctx->forked = 0;
	vr += cfs_sched_vslice(cctx, task_load_weight(p), false);
	if ((this_rq = cfs_rq_of(this_cpu)) && (curr_vr = cfs_curr_vruntime(this_rq, scx_bpf_now()))) {
		curr_vr = cfs_rebase(curr_vr, this_cpu, cpu);
		if (time_before(vr, curr_vr))
			vr = curr_vr;
	}
out:
	p->scx.dsq_vtime = vr;
	tctx->vtime_cpu = cpu;
}

#endif /* __SCX_BATTLE_CFS_BPF_H */
