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
 *    (check_preempt_wakeup); when it also comes before every queued task
 *    it goes straight to the CPU's local queue (no ops.dispatch round to
 *    fetch it). A task moving between queues keeps its lead or lag over the
 *    queue's min_vruntime, negative or not.
 *
 * 2. Placement (select_task_rq_fair). A forked task goes down the domains
 *    from its parent's CPU (find_idlest_group / find_idlest_cpu): it stays
 *    in the parent's node, LLC and CPU unless another's load per CPU is
 *    lower by more than half the level's imbalance_pct (112 % between nodes
 *    and between the LLCs of a node, 108 % between the CPUs of an LLC), and
 *    enters another at its least loaded LLC and CPU. A waking
 *    task stays in one LLC: the target is its previous CPU, or the waker's
 *    CPU when wake_affine finds the waker's CPU no busier than the previous
 *    one, unless wake_wide sees both tasks switch wakees often (a
 *    many-to-many pattern, which the waker's CPU would serialise); then
 *    select_idle_sibling: the target if idle, the previous CPU if
 *    idle and in the target's LLC, an idle core of that LLC, an idle CPU of
 *    it, else the target. Idle CPUs come from the kernel's own idle tracking
 *    within the LLC's cpumask.
 *
 * 3. Balancing (load_balance). A CPU balances its domains bottom-up (SMT,
 *    LLC, node, machine) once per domain interval: sd->balance_interval,
 *    the domain's CPU count in ms, doubled after each balanced pass (periodic
 *    or newly idle) up to twice that and back after an imbalanced one, times busy_factor while
 *    the CPU is busy, at most a tenth of a second per CPU; so close CPUs are
 *    balanced often and remote nodes rarely. Above the lowest level only one
 *    CPU of each group balances for it (should_we_balance: an idle CPU of
 *    the group, else its first CPU); the others stop their walk there. A
 *    pass finds the busiest group of the
 *    domain (find_busiest_group: an overloaded group, more tasks than CPUs,
 *    before any other, then the highest average load); if the local group
 *    is below it and below the domain's average, and the busiest is more
 *    than imbalance_pct above the local group (110 SMT, 117 LLC, 125 node
 *    and machine: the 25% rule across NUMA) or, on an idle CPU's pass,
 *    overloaded or with two idle CPUs fewer than the local group, or, on a
 *    newly-idle pass, overloaded while the local group has a CPU to spare
 *    (force_balance, whatever the averages), it pulls queued tasks from the busiest CPU of that group
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
 *    - There is no active balance (pushing a running task away takes the
 *      stopper thread, which sched_ext does not offer), so its back-off of
 *      the interval does not happen either.
 *    - should_we_balance's "first idle CPU of the group" is "an idle CPU of
 *      the group": the one that last balanced there while idle, while it
 *      has no task (finding the first from the kernel's idle cpumask pushed
 *      Linux 6.19's verifier past 760k instructions on ops.dispatch,
 *      SCX_BATTLE_VERIFIER_LOG=4). An idle CPU that has not balanced yet
 *      since the group's last one got busy is not known, and the group's
 *      first CPU balances meanwhile.
 *    - Until 2026-12-07 every CPU balanced every level at fixed intervals:
 *      on `paper`, ~32 machine-level passes a second where 4.9 makes one to
 *      two (counters lb_periodic_<level>, lb_not_ours).
 *    - A pass whose tasks were all pinned does not retry with the next
 *      busiest CPU (LBF_ALL_PINNED); the next pass will.
 *    - A group is overloaded (load_above_capacity applies) when it has more
 *      tasks than CPUs; Linux also wants its utilization above capacity /
 *      imbalance_pct, and sched_ext keeps no utilization. There is no
 *      group_imbalanced class (set when pinned tasks foiled a pass), since
 *      there is no LBF_SOME_PINNED retry either.
 *    - Newly-idle balance is gated by avg_idle and each level's
 *      max_newidle_lb_cost as in 4.9, but not by the root domain's overload
 *      flag (no CPU keeps a count of the others' queues; a pass that finds
 *      nothing costs one walk of its groups). avg_idle is updated when a task
 *      next runs on the CPU, not when one wakes onto it.
 *    - The NOHZ kick happens when a CPU has two tasks or more; Linux also
 *      kicks when its LLC has two busy CPUs. Each idle CPU is woken for its
 *      pass instead of being balanced from afar (see 3).
 *    - wake_affine compares instantaneous CPU loads with half the domain's
 *      imbalance_pct, as 4.9 does, without task-group effective loads (there
 *      are no next/last buddies). wake_wide's flips are counted only for
 *      tasks of this scheduler: a waker of another class never wakes wide.
 *    - The idle sibling search takes any idle core and then any idle CPU of
 *      the LLC from the kernel's tracking; Linux scans from the target with a
 *      cost cut-off (avg_idle / avg_scan_cost).
 *    - No exec balancing: sched_ext keeps an exec'ing task on its CPU (it
 *      does not call ops.select_cpu for exec).
 *    - Group scheduling (task groups, cgroups) is not modelled: every task
 *      is an entity of its CPU's root queue.
 *    - SCHED_IDLE tasks are weighted by their nice value, not 4.9's idle
 *      weight of 3, and a waking normal task does not preempt one at once
 *      (check_preempt_wakeup's idle rule): they matter to no experiment.
 */
#ifndef __SCX_BATTLE_CFS_BPF_H
#define __SCX_BATTLE_CFS_BPF_H

/*
 * The units (shared declarations in this header; main.bpf.c is the home of
 * the knobs and maps below, as of shared.bpf.h's):
 *   cfs_place.bpf.c    placement (2): select_task_rq_fair's fork and wakeup
 *                      paths
 *   cfs_runq.bpf.c     the run queue (1): vruntime, slices, preemption, a
 *                      new task's place, moving queued tasks for a balancer
 *   cfs_dispatch.bpf.h ops.dispatch's paths of the run queue and the
 *                      balancer, compiled into main.bpf.c (below)
 *   cfs_balance.bpf.c  balancing (3): load_balance and its periodic,
 *                      newly-idle and NOHZ passes, and the NOHZ kick
 * Each is one component of components.bpf.h, which says what the balancer
 * and placement may ask of the run queue, so that each can be combined with
 * ULE's.
 * Functions keep Linux's names where they stand for one (cfs_wake_affine is
 * wake_affine); the pure arithmetic is in cfs_arith.h (checked on the host
 * by sched-ext/tests/cfs_arith.rs).
 *
 * Verifier cost: ops.dispatch (periodic, newly-idle and NOHZ passes, each a
 * call chain down to cfs_pull) is the largest program. Its CFS path is a
 * header included by main.bpf.c, inlined into the callback: as a function
 * of cfs_runq.bpf.c called from there, Linux 6.19's verifier walked it in
 * 653k instructions (limit 1M) and 41 s of emulated time, against 344k and
 * 20 s inlined (SCX_BATTLE_VERIFIER_LOG=4, 2026-12-06). The run queue's
 * q_migrate, at the bottom of every chain, is now a global function,
 * verified once on its own (components.bpf.h): 60k instructions, and the
 * load 3-10 s on 6.19.
 * should_we_balance and the adaptive intervals (2026-12-07) first sat in the
 * periodic walk's loop, and 6.19's verifier gave up on ops.dispatch ("The
 * sequence of 8193 jumps is too complex", 390k instructions): one level's
 * work is now a global function (cfs_rebalance_level), and the group sums
 * of cfs_scan_groups live in map memory; 324k instructions, 12 s of
 * emulated time on 6.19.
 */

#include "cfs_arith.h"

/* Tunables, Linux names; the loader scales the first three by 1 + ilog2(min(ncpus, 8)). */
SHARED const volatile u64 sched_latency_ns SHARED_INIT(24000000ULL);		/* ns, 6 ms x factor */
SHARED const volatile u64 sched_min_granularity_ns SHARED_INIT(3000000ULL);	/* ns, 0.75 ms x factor */
SHARED const volatile u64 sched_wakeup_granularity_ns SHARED_INIT(4000000ULL);	/* ns, 1 ms x factor */
/* Tasks a period covers before it stretches: sched_latency / sched_min_granularity. */
SHARED const volatile u32 sched_nr_latency SHARED_INIT(8);
SHARED const volatile u64 sched_migration_cost_ns SHARED_INIT(500000ULL);	/* ns, cache-hot window; a CPU that idles less on average does not balance when it goes idle */
/*
 * Tasks moved per pass, at most. Writable data rather than rodata on purpose:
 * compared with a constant, the pull loop's counter would be tracked exactly
 * and the verifier would walk every iteration separately.
 */
SHARED u32 sched_nr_migrate SHARED_INIT(32);
/* wake_wide's flip counts are halved at most this often (4.9: once a second, HZ jiffies). */
#define WAKEE_FLIP_DECAY_NS	1000000000ULL	/* ns */
SHARED const volatile u32 busy_factor SHARED_INIT(32);				/* interval multiplier when busy */
SHARED const volatile u32 imbalance_pct[NR_DOM_LEVELS] SHARED_INIT({ 110, 117, 125, 125 });	/* percent */
SHARED const volatile u32 cache_nice_tries[NR_DOM_LEVELS] SHARED_INIT({ 0, 1, 2, 2 });	/* failed passes */
/*
 * A newly-idle pass stops after one task (CONFIG_PREEMPTION kernels, as
 * Debian's PREEMPT_DYNAMIC ones: newidle balancing runs with interrupts off,
 * so it is kept short). 0 pulls like any other pass.
 */
SHARED const volatile u8 newidle_pull_one SHARED_INIT(1);

/* What a balance pass found (load_balance's exits). */
enum cfs_lb_result {
	CFS_LB_BALANCED,	/* out_balanced: nothing to do; the level's interval doubles */
	CFS_LB_MOVED,		/* tasks were pulled */
	CFS_LB_FAILED,		/* imbalanced, nothing could move; the interval goes back to its floor */
};

/*
 * should_we_balance's memory (sched_ext only): per group of CPUs one
 * balances for (a core, an LLC, a node), the CPU that last balanced there
 * while idle. Indexed by the group's level x MAX_CPUS + its id.
 */
struct cfs_balance_group {
	u32	idle_cpu1;	/* that CPU + 1; 0: none yet */
};

/* Linux's idle types of a balance pass (enum cpu_idle_type); cfs_arith.h's numbers. */
enum cfs_idle_type {
	CFS_NOT_IDLE = CFS_ARITH_NOT_IDLE,	/* periodic, on a busy CPU */
	CFS_IDLE = CFS_ARITH_IDLE,		/* periodic, on an idle CPU (its own tick, or a NOHZ round) */
	CFS_NEWLY_IDLE = CFS_ARITH_NEWLY_IDLE,	/* the CPU's last task just stopped */
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
	u64	next_balance;		/* ns, when a level is next due on this CPU, busy (rq->next_balance) */
	u64	next_balance_idle;	/* ns, when a level (or the cost decay) is next due, idle (0: at once) */
	u32	nr_balance_failed[NR_DOM_LEVELS];
	u32	balance_interval[NR_DOM_LEVELS];	/* ms, sd->balance_interval: the domain's weight to twice it (0: not set yet) */
	u64	level_due[NR_DOM_LEVELS];	/* ns, when each level is next due (cfs_rebalance_level) */
	u32	curr_weight;		/* the running task's weight */
	u32	curr_pri;		/* ... its priority on ULE's scale (components.bpf.h, 4) */
	u32	nohz_round;		/* the NOHZ round this CPU was woken for */
	u32	nohz_done;		/* the last round it balanced in */
	u32	in_nohz_pass;		/* this dispatch's periodic passes are its NOHZ turn (move causes) */
	/* Newly-idle balancing's gate (idle_balance, 4.9), all ns: */
	u64	idle_stamp;		/* when the CPU last went idle without pulling (0: busy) */
	u64	avg_idle;		/* its average idle period (update_avg: 1/8 of each new one) */
	u64	max_idle_balance_cost;	/* the dearest newly-idle balance of late, all levels */
	u64	max_newidle_lb_cost[NR_DOM_LEVELS];	/* ... at each level (sd->max_newidle_lb_cost) */
	u64	next_decay_max_lb_cost;	/* when those decay next (by 1 %, once a second) */
} __attribute__((aligned(64)));

SHARED_MAP struct {
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

/*
 * Advance this CPU's queue clock: min_vruntime follows the lowest vruntime in
 * play, the running task's or the queue head's, and never goes back (Linux's
 * update_min_vruntime). Following the running task alone lets the floor run
 * ahead of tasks still queued behind it, and wakers placed against that
 * floor then starve behind them.
 */
static __always_inline void cfs_update_min_vruntime(s32 cpu, struct cfs_rq_ctx *rq, u64 curr_vr)
{
	u64 lowest;

	/* The floor is at or past the running task's: nothing lower can raise it (no peek). */
	if (!time_before(rq->min_vruntime, curr_vr))
		return;
	lowest = cfs_head_vruntime(cpu, curr_vr);

	if (time_before(curr_vr, lowest))
		lowest = curr_vr;
	if (time_before(rq->min_vruntime, lowest))
		rq->min_vruntime = lowest;
}

/*
 * check_preempt_wakeup's test: the running task's vruntime now exceeds the
 * arriving task's by more than sched_wakeup_granularity in the arriving
 * task's vruntime units (weight w).
 */
static __always_inline bool cfs_wakeup_preempts(struct cfs_rq_ctx *rq, u64 vruntime, u64 w)
{
	u64 curr_vr = cfs_curr_vruntime(rq, scx_bpf_now());
	u64 gran = sched_wakeup_granularity_ns * NICE_0_LOAD / (w ? w : 1);

	return rq->curr_started && (s64)(curr_vr - vruntime) > (s64)gran;
}

/* Would a task of this vruntime be picked before every task queued on cpu? */
static __always_inline bool cfs_first_in_queue(s32 cpu, u64 vruntime)
{
	u64 head = cfs_head_vruntime(cpu, ~0ULL);

	return head == ~0ULL || time_before(vruntime, head);
}

/*
 * check_preempt_wakeup (and check_preempt_curr at a migration's attach):
 * preempt cpu's running task when cfs_wakeup_preempts; otherwise wake cpu
 * if it is idle. Not when the
 * task was queued on its own run queue (own_rq: a wakeup or a fork): the
 * kernel's wakeup_preempt reschedules an idle CPU then (sched_ext outranks
 * the idle class), and a kick from ops.enqueue, which holds that CPU's rq
 * lock, would cost a deferred self-interrupt and the lock again for nothing.
 */
static __always_inline void cfs_check_preempt(s32 cpu, struct cfs_rq_ctx *rq, u64 vruntime, u64 w, bool own_rq)
{
	if (cfs_wakeup_preempts(rq, vruntime, w)) {
		stat_inc(STAT_KICK_PREEMPT);
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	} else if (!own_rq) {
		/* A no-op unless the CPU is idle. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

/* Across the units (__hidden: one BPF program after linking, verified in context). */

/* cfs_place.bpf.c: the placement component */
s32 cfs_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags);

/* cfs_runq.bpf.c: the run-queue component (cfs_q_migrate: components.bpf.h) */
s32 cfs_enqueue(struct task_struct *p, u64 enq_flags);
void cfs_tick(struct task_struct *p);
void cfs_running(struct task_struct *p);
void cfs_stopping(struct task_struct *p, u64 ran_ns);
void cfs_enable(struct task_struct *p);

/* cfs_balance.bpf.c: the balancer component */
int cfs_periodic_balance(s32 cpu, u32 busy, u32 nohz);
int cfs_newidle_balance(s32 cpu);
void cfs_lb_running(s32 cpu);
int cfs_nohz_pass_on(u32 round);
void cfs_nohz_kick(s32 cpu);

#endif /* __SCX_BATTLE_CFS_BPF_H */
