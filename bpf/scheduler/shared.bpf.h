/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers every policy uses: the CPU topology, per-task and per-CPU context,
 * per-CPU queues with the load (sum of task weights) and task count each
 * holds, event counters, and how long a task ran. The vtime baseline is a
 * header included by main.bpf.c after this one; CFS and ULE are compilation
 * units of their own (cfs.bpf.h, ule.bpf.h).
 */
#ifndef __SCX_BATTLE_SHARED_BPF_H
#define __SCX_BATTLE_SHARED_BPF_H

/*
 * The scheduler is several BPF compilation units linked into one object
 * (build.rs): main.bpf.c and the policies' cfs_*.bpf.c and ule*.bpf.c. A
 * global or map has one home unit, which defines it; the other units
 * declare it, and libbpf's linker resolves them to the one definition.
 * SHARED and SHARED_INIT(value) write both in one line for a global (extern
 * elsewhere), SHARED_MAP for a map. main.bpf.c is the home of every shared
 * global and map (this header's, cfs.bpf.h's and ule.bpf.h's): it defines
 * BATTLE_SHARED_HOME before including them.
 *
 * Why a map is a weak definition and not an extern elsewhere: libbpf-cargo
 * passes every unit through libbpf's linker on its own first, and that link
 * gives an extern map the .maps section, so the final link would see two
 * strong definitions. A weak definition merges with the home's strong one,
 * and the linker checks that both describe the same map. The home must be
 * linked first: with a weak copy first, the linked object's BTF placed the
 * maps at the weak copies' offsets and its symbols at the home's, and libbpf
 * could not find the map of a relocation. scx_cargo links in the sorted
 * order of the source paths, so the policies' units sit in policy/, after
 * main.bpf.c; build.rs checks it.
 */
#ifdef BATTLE_SHARED_HOME
#define SHARED
#define SHARED_INIT(...)	= __VA_ARGS__
#define SHARED_MAP
#else
#define SHARED			extern
#define SHARED_INIT(...)
#define SHARED_MAP		__weak
#endif

/* Set by the loader before load; their home is main.bpf.c. */
/*
 * The components in use (enum battle_component): the run queue (which task runs
 * next, for how long, and what sleeping and waking do to it), the placement
 * of waking and new tasks, and the balancer (periodic, idle and stealing
 * passes). All three COMP_VTIME, or each COMP_CFS or COMP_ULE: the presets
 * cfs and ule, and the six mixes of the ablation (policy/components.bpf.h).
 */
SHARED const volatile u32 queue_comp SHARED_INIT(COMP_VTIME);
SHARED const volatile u32 place_comp SHARED_INIT(COMP_VTIME);
SHARED const volatile u32 balance_comp SHARED_INIT(COMP_VTIME);
SHARED const volatile u64 slice_ns SHARED_INIT(20000000ULL);	/* ns, longest slice, --slice-us */
SHARED const volatile u64 slice_min_ns SHARED_INIT(500000ULL);	/* ns, shortest slice, --slice-min-us */
SHARED const volatile u32 nr_cpus SHARED_INIT(1);		/* CPUs online when loaded */

/*
 * Topology, written by the loader (topo.rs). Linux builds its scheduling
 * domains from the same facts: a domain at each level spans the CPUs that
 * share a core, an LLC, a node, or the machine; its groups are the domains
 * of the level below. A level whose span equals the level below is
 * degenerate and skipped, as Linux does.
 *
 * The same facts as a tree for walking: machine -> nodes -> LLCs -> cores ->
 * CPUs. LLC ids are dense and consecutive within a node (an LLC that spans
 * nodes, as with Intel's sub-NUMA clustering, is split at the node
 * boundary), and topo_cpus lists the CPUs LLC by LLC, a core's SMT threads
 * side by side. Searches walk down the tree using the per-LLC and per-node
 * counts below and look at single CPUs only inside one LLC, so their cost
 * grows with the size of an LLC and the number of nodes and LLCs, not with
 * the number of CPUs.
 */
SHARED const volatile u32 nr_cpu_ids SHARED_INIT(1);			/* highest CPU id + 1 */
SHARED const volatile u8 cpu_online[MAX_CPUS];			/* 1 if online when loaded */
SHARED const volatile u32 cpu_core_id[MAX_CPUS];
SHARED const volatile u32 cpu_llc_id[MAX_CPUS];		/* dense, node by node */
SHARED const volatile u32 cpu_node_id[MAX_CPUS];		/* the kernel's node id (DSQ placement) */
SHARED const volatile u32 cpu_node_idx[MAX_CPUS];		/* dense node index */
SHARED const volatile u8 dom_active[NR_DOM_LEVELS];		/* level is not degenerate */
SHARED const volatile u32 dom_weight[NR_DOM_LEVELS][MAX_CPUS];	/* CPUs in each CPU's domain */
SHARED const volatile u32 nr_llcs SHARED_INIT(1);
SHARED const volatile u32 nr_nodes SHARED_INIT(1);			/* nodes with CPUs */
SHARED const volatile u32 topo_cpus[MAX_CPUS];			/* online CPUs in tree order */
SHARED const volatile u32 llc_first[MAX_CPUS];			/* an LLC's CPUs: topo_cpus[llc_first..+llc_nr] */
SHARED const volatile u32 llc_nr[MAX_CPUS];
SHARED const volatile u32 node_first_llc[MAX_CPUS];		/* a node's LLCs: node_first_llc..+node_nr_llcs */
SHARED const volatile u32 node_nr_llcs[MAX_CPUS];
SHARED const volatile u32 core_first[MAX_CPUS];		/* a CPU's core: topo_cpus[core_first..+core_nr] */
SHARED const volatile u32 core_nr[MAX_CPUS];
SHARED const volatile u32 max_llc_cpus SHARED_INIT(1);			/* CPUs in the largest LLC: bounds the LLC scans */
SHARED const volatile u32 max_node_llcs SHARED_INIT(1);			/* LLCs in the largest node */
SHARED const volatile u32 max_core_cpus SHARED_INIT(1);			/* SMT threads per core, at most */

/* Load and thread count per LLC and per node, kept by account_task(). */
SHARED struct dom_stat llc_stat[MAX_CPUS];
SHARED struct dom_stat node_stat[MAX_CPUS];

/*
 * Index a per-CPU table. Callers check cpu < MAX_CPUS for meaning; the mask
 * (MAX_CPUS is a power of two) gives the verifier a bound it can see, which
 * a range check on a 32-bit copy of the value does not.
 */
static __always_inline u32 cpu_idx(u32 cpu)
{
	/* Keep clang from dropping the mask after an earlier range check. */
	barrier_var(cpu);
	return cpu & (MAX_CPUS - 1);
}

/* May p run on cpu: a CPU online when loaded, in p's affinity mask? */
static __always_inline bool cpu_usable(s32 cpu, const struct task_struct *p)
{
	return cpu >= 0 && cpu < MAX_CPUS && cpu_online[cpu_idx(cpu)] && bpf_cpumask_test_cpu(cpu, p->cpus_ptr);
}

static __always_inline u32 llc_of(s32 cpu)
{
	return cpu_llc_id[cpu_idx(cpu)];
}

static __always_inline u32 node_of(s32 cpu)
{
	return cpu_node_idx[cpu_idx(cpu)];
}

static __always_inline struct dom_stat *llc_stat_of(u32 llc)
{
	return &llc_stat[llc & (MAX_CPUS - 1)];
}

static __always_inline struct dom_stat *node_stat_of(u32 node)
{
	return &node_stat[node & (MAX_CPUS - 1)];
}

/* The i-th CPU of the tree order (any index is safe). */
static __always_inline s32 topo_cpu(u32 i)
{
	return topo_cpus[i & (MAX_CPUS - 1)];
}

/*
 * The bounded topology walks, one home for the loop every search makes.
 * for_each_topo_cpu visits topo_cpus[first .. first + nr), the CPUs of a
 * core or an LLC: `i` counts from 0, `cpu` is the CPU. `bound` is the size
 * of the largest such range (max_core_cpus, max_llc_cpus): a limit the
 * verifier can see whatever nr holds. for_each_llc_cpu and
 * for_each_core_cpu name the range; for_each_node_llc visits the LLCs of a
 * node (`llc` is the LLC id). The body follows as a block; break and
 * continue act on the walk.
 *
 * `first` is read once, before the walk (the one-turn outer loop): read
 * inside it, clang indexes the table with a register whose bounds the
 * verifier forgets when it merges the walk's turns, and the program is
 * refused ("math between map_value pointer and register with unbounded
 * min value").
 */
#define for_each_topo_cpu(i, cpu, first, nr, bound)				\
	for (u32 __walk_first = (first), __walk_once = 1; __walk_once; __walk_once = 0) \
		bpf_for(i, 0, nr)						\
			if ((i) >= (bound))					\
				break;						\
			else if (((cpu) = topo_cpu(__walk_first + (i))), 0)	\
				;						\
			else
#define for_each_llc_cpu(i, cpu, llc)						\
	for_each_topo_cpu(i, cpu, llc_first[(llc) & (MAX_CPUS - 1)],		\
			  llc_nr[(llc) & (MAX_CPUS - 1)], max_llc_cpus)
#define for_each_core_cpu(i, cpu, of_cpu)					\
	for_each_topo_cpu(i, cpu, core_first[cpu_idx(of_cpu)],			\
			  core_nr[cpu_idx(of_cpu)], max_core_cpus)
#define for_each_node_llc(i, llc, node)						\
	for (u32 __walk_first = node_first_llc[(node) & (MAX_CPUS - 1)], __walk_once = 1; \
	     __walk_once; __walk_once = 0)					\
		bpf_for(i, 0, node_nr_llcs[(node) & (MAX_CPUS - 1)])		\
			if ((i) >= max_node_llcs)				\
				break;						\
			else if (((llc) = __walk_first + (i)), 0)		\
				;						\
			else

/* Is CPU b in CPU a's domain at this level? */
static __always_inline bool in_domain(u32 a, u32 b, u32 level)
{
	if (a >= MAX_CPUS || b >= MAX_CPUS)
		return false;
	a = cpu_idx(a);
	b = cpu_idx(b);
	switch (level) {
	case DOM_SMT:	return cpu_core_id[a] == cpu_core_id[b];
	case DOM_LLC:	return cpu_llc_id[a] == cpu_llc_id[b];
	case DOM_NODE:	return cpu_node_id[a] == cpu_node_id[b];
	default:	return true;
	}
}

/* The group a CPU belongs to inside its domain at this level. */
static __always_inline u32 group_of(u32 cpu, u32 level)
{
	if (cpu >= MAX_CPUS)
		return 0;
	cpu = cpu_idx(cpu);
	switch (level) {
	case DOM_SMT:	return cpu;
	case DOM_LLC:	return cpu_core_id[cpu];
	case DOM_NODE:	return cpu_llc_id[cpu];
	default:	return cpu_node_id[cpu];
	}
}

/* Linux's nice-to-weight table (kernel/sched/core.c): nice -20 .. 19. */
static const u32 nice_to_weight[40] = {
	88761, 71755, 56483, 46273, 36291,
	29154, 23254, 18705, 14949, 11916,
	9548, 7620, 6100, 4904, 3906,
	3121, 2501, 1991, 1586, 1277,
	1024, 820, 655, 526, 423,
	335, 272, 215, 172, 137,
	110, 87, 70, 56, 45,
	36, 29, 23, 18, 15,
};

/* A task's Linux load weight, from its nice level. */
static __always_inline u32 task_load_weight(const struct task_struct *p)
{
	s32 idx = p->static_prio - 100;	/* MAX_RT_PRIO: nice -20 is index 0 */

	if (idx < 0)
		idx = 0;
	if (idx > 39)
		idx = 39;
	return nice_to_weight[idx];
}

/* Per-task scheduler state. */
struct task_ctx {
	u64	last_run_at;	/* ns, scx_bpf_now() when the task last got a CPU */
	u64	last_stop_at;	/* ns, when it last left a CPU (cache hotness) */
	s32	cpu;		/* CPU whose load counts this task, -1 if none */
	u32	weight;		/* the weight counted there */
	s32	vtime_cpu;	/* CPU whose queue clock dsq_vtime is relative to */
	u32	forked;		/* created by a fork (not there when the scheduler loaded) */
	/* CFS's wake_wide (4.9's task_struct fields; sched_ext's tasks never update the kernel's) */
	u64	last_wakee;	/* the task this one last woke (its address, only compared) */
	u64	wakee_flip_decay_at;	/* ns, when wakee_flips was last halved */
	u32	wakee_flips;	/* times it woke a task other than the last one, halved each second */
};

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

static __always_inline struct task_ctx *task_ctx(const struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, (struct task_struct *)p, 0, 0);
}

static __always_inline s32 task_ctx_create(struct task_struct *p, bool fork)
{
	struct task_ctx *tctx;

	tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->cpu = -1;
	tctx->vtime_cpu = -1;
	tctx->forked = fork;
	return 0;
}

/*
 * Why each task moves (bpf/recorder/move_note.h): the scheduler notes the
 * cause before a move, loadgen's recorder reads it when the task changes
 * CPU. The map's name is how loadgen finds it (15 characters at most).
 * Only decisions that move a task are noted, never a task that stays: the
 * hot paths pay a task-storage lookup only when a migration follows anyway.
 */
SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct move_note);
} battle_moves SEC(".maps");

/* p will leave its CPU because of cause (before the move: it may happen inside the next call). */
static __always_inline void note_move(struct task_struct *p, u32 cause)
{
	struct move_note *n = bpf_task_storage_get(&battle_moves, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (n) {
		n->cause = cause;
		n->from = scx_bpf_task_cpu(p);
	}
}

/*
 * A queued task goes to dst's queue (a balancer's or a steal's move): note
 * it if it leaves its CPU, else cancel an older note (an earlier move to a
 * queue it has now left, which no migration followed).
 */
static __always_inline void note_queue_move(struct task_struct *p, u32 cause, s32 dst)
{
	struct move_note *n;

	if (dst != scx_bpf_task_cpu(p)) {
		note_move(p, cause);
	} else if ((n = bpf_task_storage_get(&battle_moves, p, 0, 0))) {
		n->cause = MOVE_NONE;
	}
}

/* Per-CPU context, readable from any CPU. */
SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctxs SEC(".maps");

static __always_inline struct cpu_ctx *cpu_ctx(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&cpu_ctxs, &key);
}

/* The per-CPU queue of a CPU. */
static __always_inline u64 cpu_dsq(s32 cpu)
{
	return CPU_DSQ_BASE + (u32)cpu;
}

/*
 * The CPUs of each LLC and each node as kernel cpumasks, built once by
 * ops.init: idle CPUs are then found by the kernel's own idle tracking
 * (scx_bpf_pick_idle_cpu) within a domain, without looking at its CPUs.
 */
struct dom_mask {
	struct bpf_cpumask __kptr *mask;
};

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MAX_CPUS + 1);	/* LLCs, nodes at MAX_CPUS + node, the machine last */
	__type(key, u32);
	__type(value, struct dom_mask);
} dom_masks SEC(".maps");

static __always_inline const struct cpumask *llc_mask(u32 llc)
{
	u32 key = llc & (MAX_CPUS - 1);
	struct dom_mask *m = bpf_map_lookup_elem(&dom_masks, &key);

	return m && m->mask ? cast_mask(m->mask) : NULL;
}

static __always_inline const struct cpumask *node_mask(u32 node)
{
	u32 key = MAX_CPUS + (node & (MAX_CPUS - 1));
	struct dom_mask *m = bpf_map_lookup_elem(&dom_masks, &key);

	return m && m->mask ? cast_mask(m->mask) : NULL;
}

/* May p run on every CPU? Then the topology masks need no intersection with its own. */
static __always_inline bool runs_anywhere(const struct task_struct *p)
{
	return p->nr_cpus_allowed >= nr_cpus;
}

/* Every online CPU: where an idle CPU anywhere is looked for. */
static __always_inline const struct cpumask *machine_mask(void)
{
	u32 key = 2 * MAX_CPUS;
	struct dom_mask *m = bpf_map_lookup_elem(&dom_masks, &key);

	return m && m->mask ? cast_mask(m->mask) : NULL;
}

/* Fill one domain's mask with CPUs topo_cpus[first..first+nr). */
static __always_inline s32 dom_mask_build(u32 key, u32 first, u32 nr)
{
	struct bpf_cpumask *mask, *old;
	struct dom_mask *m = bpf_map_lookup_elem(&dom_masks, &key);
	u32 i;

	if (!m)
		return -ENOENT;
	mask = bpf_cpumask_create();
	if (!mask)
		return -ENOMEM;
	bpf_for(i, 0, nr)
		bpf_cpumask_set_cpu(topo_cpu(first + i), mask);
	old = bpf_kptr_xchg(&m->mask, mask);
	if (old)
		bpf_cpumask_release(old);
	return 0;
}

/* Every LLC's, node's and the machine's mask, and the CPU counts of dom_stat. */
static __always_inline s32 dom_masks_init(void)
{
	u32 d, first;
	s32 ret;

	bpf_for(d, 0, nr_llcs) {
		llc_stat_of(d)->nr_cpus = llc_nr[d & (MAX_CPUS - 1)];
		ret = dom_mask_build(d & (MAX_CPUS - 1), llc_first[d & (MAX_CPUS - 1)], llc_nr[d & (MAX_CPUS - 1)]);
		if (ret)
			return ret;
	}
	bpf_for(d, 0, nr_nodes) {
		u32 l0 = node_first_llc[d & (MAX_CPUS - 1)], nl = node_nr_llcs[d & (MAX_CPUS - 1)], nc = 0, l;

		first = llc_first[l0 & (MAX_CPUS - 1)];
		/*
		 * Summed in map memory, which the verifier does not track: a
		 * running sum in a register is a new state at every turn, and on
		 * a one-node machine Linux 6.19's verifier gave up on it (1M insns).
		 */
		node_stat_of(d)->nr_cpus = 0;
		bpf_for(l, 0, nl)
			node_stat_of(d)->nr_cpus += llc_nr[(l0 + l) & (MAX_CPUS - 1)];
		nc = node_stat_of(d)->nr_cpus;
		ret = dom_mask_build(MAX_CPUS + (d & (MAX_CPUS - 1)), first, nc);
		if (ret)
			return ret;
	}
	return dom_mask_build(2 * MAX_CPUS, 0, nr_cpus);
}

/* One queue per online CPU, on the CPU's node. */
static __always_inline s32 create_cpu_dsqs(void)
{
	s32 ret;
	u32 cpu;

	bpf_for(cpu, 0, nr_cpu_ids) {
		if (cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
			continue;
		ret = scx_bpf_create_dsq(cpu_dsq(cpu), cpu_node_id[cpu_idx(cpu)]);
		if (ret)
			return ret;
	}
	return 0;
}

/* A task's weight and count join (or leave) the LLC and node of `cpu`. */
static __always_inline void dom_stat_add(s32 cpu, s64 load, s32 nr, s32 busy)
{
	struct dom_stat *l = llc_stat_of(llc_of(cpu)), *n = node_stat_of(node_of(cpu));

	__sync_fetch_and_add(&l->load, load);
	__sync_fetch_and_add(&l->nr_running, nr);
	__sync_fetch_and_add(&n->load, load);
	__sync_fetch_and_add(&n->nr_running, nr);
	if (busy) {
		__sync_fetch_and_add(&l->nr_busy, busy);
		__sync_fetch_and_add(&n->nr_busy, busy);
	}
}

/*
 * Count a runnable task in a CPU's load and task count (moving it from the
 * CPU that counted it before), or take it out with cpu = -1.
 */
static __always_inline void account_task(struct task_struct *p, struct task_ctx *tctx, s32 cpu)
{
	struct cpu_ctx *cctx, *new_cctx = cpu >= 0 ? cpu_ctx(cpu) : NULL;
	u32 weight = task_load_weight(p), old_weight = tctx->weight;
	s32 old;

	if (!new_cctx)
		cpu = -1;
	if (tctx->cpu == cpu && old_weight == weight)
		return;
	/*
	 * An exchange, since a balancing CPU and the task's own CPU may account
	 * it at once: each old CPU is then uncounted exactly once.
	 */
	old = __sync_lock_test_and_set(&tctx->cpu, cpu);
	tctx->weight = weight;
	/* A CPU's first task makes it busy, its last one idle (the domains' idle CPU counts). */
	if (old >= 0 && (cctx = cpu_ctx(old))) {
		__sync_fetch_and_sub(&cctx->load, old_weight);
		dom_stat_add(old, -(s64)old_weight, -1, __sync_fetch_and_sub(&cctx->nr_running, 1) == 1 ? -1 : 0);
	}
	if (new_cctx) {
		__sync_fetch_and_add(&new_cctx->load, weight);
		dom_stat_add(cpu, weight, 1, __sync_fetch_and_add(&new_cctx->nr_running, 1) == 0 ? 1 : 0);
	}
}

/* Per-CPU counters, summed by userspace (stats.rs). */
SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_BATTLE_STATS);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat_add(u32 idx, u64 n)
{
	u32 key = idx;
	u64 *cnt = bpf_map_lookup_elem(&stats, &key);

	if (cnt)
		*cnt += n;
}

static __always_inline void stat_inc(enum stat_idx idx)
{
	stat_add(idx, 1);
}

/*
 * Work per call (enum cost_kind), for scripts/bench-cost: per CPU and kind,
 * the calls, what they looked at, the most one call looked at, and the count
 * of the call in progress (callbacks of one kind do not nest on a CPU).
 */
/*
 * Count the work per call (scx_battle --costs, for scripts/bench-cost). Off
 * by default: each count is a map lookup in a hot callback, a few per call.
 */
SHARED const volatile u32 track_costs SHARED_INIT(0);

SHARED_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_COSTS);
	__type(key, u32);
	__type(value, struct cost);
} costs SEC(".maps");

static __always_inline struct cost *cost_slot(u32 kind)
{
	return bpf_map_lookup_elem(&costs, &kind);
}

static __always_inline void cost_begin(enum cost_kind kind)
{
	struct cost *c;

	if (!track_costs)
		return;
	c = cost_slot(kind);

	if (c)
		c->cur = 0;
}

/* n more CPUs, groups or tasks looked at by the call in progress of `kind`. */
static __always_inline void cost_visit(enum cost_kind kind, u64 n)
{
	struct cost *c;

	if (!track_costs)
		return;
	c = cost_slot(kind);

	if (c)
		c->cur += n;
}

static __always_inline void cost_end(enum cost_kind kind)
{
	struct cost *c;

	if (!track_costs)
		return;
	c = cost_slot(kind);
	if (!c)
		return;
	c->calls++;
	c->visits += c->cur;
	if (c->cur > c->max)
		c->max = c->cur;
}

/* Mark the start of a task's run on a CPU. */
static __always_inline void task_start_run(struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		tctx->last_run_at = scx_bpf_now();
}

/* Wall-clock ns the task has run since its run (re)started; 0 if unknown. */
static __always_inline u64 task_ran(struct task_ctx *tctx, u64 now)
{
	if (!tctx->last_run_at || time_before(now, tctx->last_run_at))
		return 0;
	return now - tctx->last_run_at;
}

/*
 * A prev that ops.dispatch keeps on its CPU does not stop: what it ran is
 * charged now, and its run starts again from now.
 */
static __always_inline u64 task_restart_run(struct task_ctx *tctx, u64 now)
{
	u64 ran = task_ran(tctx, now);

	tctx->last_run_at = now;
	return ran;
}

/* Wall-clock ns the task has run since task_start_run(); marks its stop. */
static __always_inline u64 task_stop_run(struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 now = scx_bpf_now();

	if (!tctx)
		return 0;
	tctx->last_stop_at = now;
	return task_ran(tctx, now);
}

#endif /* __SCX_BATTLE_SHARED_BPF_H */
