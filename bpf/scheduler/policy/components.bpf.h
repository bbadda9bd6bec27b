/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The three components of CFS and ULE, and what each may ask of another.
 *
 * 1. The split. Each scheduler is cut into three parts that can be swapped
 *    one at a time (--policy QUEUE-PLACE-BALANCE; cfs and ule are the whole
 *    originals):
 *    - the run queue: per-CPU queues, which task runs next and for how
 *      long, preemption, what running, sleeping and waking do to a task
 *      (CFS: vruntime, sched_slice, check_preempt_*; ULE: the realtime
 *      queue, the calendar, the idle queue, interactivity, slices, the
 *      starvation guard);
 *    - placement: the CPU a waking or new task goes to (CFS:
 *      select_task_rq_fair; ULE: sched_pickcpu);
 *    - the balancer: moving queued tasks between CPUs afterwards (CFS: the
 *      periodic, newly-idle and NOHZ passes of load_balance; ULE: CPU 0's
 *      balancer, tdq_idled's steal, and the kick that wakes an idle CPU to
 *      steal).
 *
 * 2. What is common to all. Every run queue counts each runnable task on
 *    one CPU with account_task (shared.bpf.h): per CPU, LLC and node, the
 *    number of tasks (ULE's tdq_load) and the sum of their Linux weights
 *    (CFS's load). Each balancer and placement reads its own measure from
 *    there: CFS's weighted load, ULE's thread count. Neither reads the other
 *    run queue's private state (cfs_rqs, ule_tdqs, td_scheds) directly.
 *
 * 3. What a balancer asks of a run queue (q_* below, one implementation
 *    per queue):
 *    - q_has_waiting(cpu): does a task wait in cpu's queue? (CFS's busiest
 *      CPU must have one to give; CFS's NOHZ kick needs one waiting.)
 *    - q_migrate(): move tasks of src's queue to dst, as the request in
 *      this CPU's migrate_req says: the queue walks its tasks in its own
 *      order (CFS: by vruntime; ULE: realtime queue, calendar from ridx,
 *      idle queue), asks migrate_fits() for each, moves one the way the
 *      queue keeps its books (CFS: vruntime carried over min_vruntime; ULE:
 *      the queue of its priority on dst), and tells dst as it would tell a
 *      CPU a task woke on (CFS: check_preempt_wakeup; ULE: tdq_notify).
 *      The balancer sets the limits: tasks to move, tasks to look at, load
 *      to move, the cache-hot window, and whether src keeps the task it
 *      would run next (ULE's runq_steal_from).
 *    - q_take_next(cpu): run the task this CPU's queue would pick next (a
 *      newly-idle CFS pass pulls into the queue, then takes from it).
 *
 * 4. What placement asks of a run queue: ULE's sched_pickcpu compares
 *    priorities (a CPU "running worse work" than the waking thread), so a
 *    queue tells q_task_pri(p) and q_cpu_pri(cpu) on ULE's scale (lower
 *    runs first; PRI_MAX_IDLE for an idle CPU). ULE's queue gives its own
 *    (and first credits the sleep that just ended, as sched_pickcpu's
 *    caller does). CFS's queue has no classes: every task is ULE's batch
 *    priority without CPU history, SCHED_PRI_MIN + nice, and SCHED_IDLE
 *    tasks PRI_MIN_IDLE; so ULE's placement under CFS's queue prefers idle
 *    CPUs and CPUs running nicer tasks, as sched_pickcpu does for threads
 *    of equal interactivity. A CPU running a SCHED_IDLE task then counts
 *    as running idle-class work (FreeBSD's tdq_lowpri would too; ULE's own
 *    queue here reports a busy CPU as PRI_MIN_BATCH when its running
 *    thread's priority is unknown). CFS's placement asks nothing of a queue.
 *
 * 5. Choices the originals never made (a mix is not a real scheduler):
 *    - ULE's balancer under CFS's queue counts threads, not weights, and
 *      moves the first task dst may run after src's head; CFS's balancer
 *      under ULE's queue weighs ULE's threads by their nice weight and walks
 *      them in ULE's steal order.
 *    - A task moved into a queue is notified as that queue notifies a
 *      wakeup: CFS's queue may preempt dst's task when the moved task's
 *      vruntime is far enough behind (check_preempt_curr at attach_task, as
 *      Linux does); ULE's when its priority allows (tdq_notify).
 *    - Every balancer's stealing and pulling leaves the running task where
 *      it is (sched_ext moves queued tasks only).
 *    - ULE's enqueue-time kick of an idle CPU (so it steals) belongs to
 *      ULE's balancer: under CFS's balancer, idle CPUs are woken by the
 *      NOHZ kick instead, and under ULE's balancer a CFS queue gets the
 *      kick.
 *
 * 6. Cost. The dispatch and wrappers here are inlined and switch on
 *    read-only data, so the verifier sees only the components selected:
 *    each of the eight combinations is verified as its own program. The
 *    queues' q_migrate and ULE's q_take_next are global functions, each
 *    verified once on its own, whatever loops of a balancer call them.
 */
#ifndef __SCX_BATTLE_COMPONENTS_BPF_H
#define __SCX_BATTLE_COMPONENTS_BPF_H

#include "cfs.bpf.h"
#include "ule.bpf.h"

/*
 * One migration, asked by a balancer of a run queue (q_migrate). Lives in
 * per-CPU map memory: the walk's counters are then untracked by the
 * verifier, and every turn of a queue walk looks alike to it.
 */
struct migrate_req {
	s32	src;
	s32	dst;
	u32	to_local;	/* dst is this CPU in ops.dispatch: into its local queue, to run now */
	u32	keep_next;	/* src keeps the task it would run next unless no other fits */
	u32	max_tasks;	/* tasks to move at most */
	u32	max_looks;	/* queued tasks to look at, at most */
	u32	kind;		/* enum cost_kind the looks are charged to */
	u32	cause;		/* enum move_cause noted on each task moved */
	u32	newidle_one;	/* stop after one task (CFS's newly-idle pass, CONFIG_PREEMPTION) */
	u32	notify;		/* tell dst as a wakeup would (it is not this CPU about to pick) */
	u64	load_budget;	/* weight to move, ~0 for no limit: a task more than twice the rest is passed over */
	u64	hot_ns;		/* pass over tasks that stopped within this many ns; 0: none is hot */
	u64	now;
	/* Results and the walk's state. */
	u32	moved;
	u32	looked;
	u64	moved_load;
	u32	skipped_first;	/* keep_next: the first task seen was passed over */
	s32	first_pid;	/* ... it, -1 if none */
	u32	first_bucket;	/* ... and its calendar bucket (ULE's queue) */
	u32	only_first;	/* second walk: only that task */
};

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct migrate_req);
} migrate_reqs SEC(".maps");

static __always_inline struct migrate_req *migrate_req(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&migrate_reqs, &zero);
}

/* A fresh request from src to dst, moving one task with no other limit, for `cause`. */
static __always_inline struct migrate_req *migrate_req_init(s32 src, s32 dst, u32 to_local, u32 kind,
								u32 cause)
{
	struct migrate_req *m = migrate_req();

	if (!m)
		return NULL;
	m->src = src;
	m->dst = dst;
	m->to_local = to_local;
	m->keep_next = 0;
	m->max_tasks = 1;
	m->max_looks = 32;
	m->kind = kind;
	m->cause = cause;
	m->newidle_one = 0;
	m->notify = 0;
	m->load_budget = ~0ULL;
	m->hot_ns = 0;
	m->now = scx_bpf_now();
	m->moved = 0;
	m->looked = 0;
	m->moved_load = 0;
	m->skipped_first = 0;
	m->first_pid = -1;
	m->first_bucket = 0;
	m->only_first = 0;
	return m;
}

/* Has the request moved all it may? */
static __always_inline bool migrate_done(struct migrate_req *m)
{
	return m->moved >= m->max_tasks || m->moved_load >= m->load_budget ||
	       (m->moved && m->newidle_one);
}

/*
 * The balancer's filter on one queued task: dst allowed, not more than twice
 * the load still to move, not cache-hot. The queue has already decided the
 * task may leave (keep_next).
 */
static __always_inline bool migrate_fits(struct migrate_req *m, struct task_struct *p, struct task_ctx *tctx)
{
	u64 w;

	if (m->dst < 0 || !bpf_cpumask_test_cpu(m->dst, p->cpus_ptr))
		return false;
	if (m->load_budget != ~0ULL) {
		w = task_load_weight(p);
		/* Moving more than twice what is missing would just flip the imbalance. */
		if (w / 2 > m->load_budget - m->moved_load)
			return false;
	}
	if (m->hot_ns && m->now - tctx->last_stop_at < m->hot_ns) {
		stat_inc(STAT_LB_HOT_SKIP);
		return false;
	}
	return true;
}

/* A move landed: count it. */
static __always_inline void migrate_count(struct migrate_req *m, struct task_struct *p)
{
	m->moved++;
	m->moved_load += task_load_weight(p);
}

/*
 * The run queues' implementations (cfs_runq.bpf.c, ule_runq.bpf.c). The
 * first three are global functions, which the verifier checks once each on
 * their own: called from a balancer's loops as subprograms checked in
 * context, they were walked once per caller state, and ULE's queue under
 * CFS's balancer did not verify on Linux 6.19 (it ran the guest out of
 * memory; 373k instructions on 7.3).
 */
int cfs_q_migrate(void);
int ule_q_migrate(void);
int ule_q_take_next(s32 cpu);
u32 ule_q_task_pri(struct task_struct *p);

/* Does a task wait in cpu's queue (one that is not running)? */
static __always_inline bool q_has_waiting(s32 cpu)
{
	if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
		return false;
	if (queue_comp == COMP_ULE)
		return ule_transferable(cpu) > 0;
	return scx_bpf_dsq_nr_queued(cpu_dsq(cpu)) > 0;
}

/* Carry out this CPU's migrate_req; returns the tasks moved. */
static __always_inline int q_migrate(void)
{
	if (queue_comp == COMP_ULE)
		return ule_q_migrate();
	return cfs_q_migrate();
}

/* Run the task cpu's queue would pick next (cpu is this CPU, in ops.dispatch); counts dsq_move. */
static __always_inline bool q_take_next(s32 cpu)
{
	if (queue_comp == COMP_ULE)
		return ule_q_take_next(cpu);
	if (!scx_bpf_dsq_move_to_local(cpu_dsq(cpu), 0))
		return false;
	stat_inc(STAT_DSQ_MOVE);
	return true;
}

/* CFS's queue on ULE's priority scale: a batch thread without CPU history (4). */
static __always_inline u32 cfs_q_task_pri(const struct task_struct *p)
{
	s32 nice = p->static_prio - 120;

	if (p->policy == SCHED_IDLE)
		return PRI_MIN_IDLE;
	return SCHED_PRI_MIN + nice;
}

/* p's priority on ULE's scale, lower runs first (placement, 4). */
static __always_inline u32 q_task_pri(struct task_struct *p)
{
	if (queue_comp == COMP_ULE)
		return ule_q_task_pri(p);
	return cfs_q_task_pri(p);
}

/* The priority cpu runs at, on ULE's scale; PRI_MAX_IDLE when idle (tdq_lowpri). */
static __always_inline u32 q_cpu_pri(s32 cpu)
{
	struct cfs_rq_ctx *rq;
	struct ule_tdq *tdq;

	if (queue_comp == COMP_ULE)
		return (tdq = ule_tdq(cpu)) ? ule_lowpri(cpu, tdq) : PRI_MAX_IDLE;
	if (!(rq = cfs_rq_of(cpu)) || !rq->curr_started)
		return ule_load(cpu) > 0 ? PRI_MIN_BATCH : PRI_MAX_IDLE;
	return rq->curr_pri;
}

#endif /* __SCX_BATTLE_COMPONENTS_BPF_H */
