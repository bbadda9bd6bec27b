/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers every policy uses: the CPU topology, per-task and per-CPU context,
 * per-CPU queues with the load (sum of task weights) and task count each
 * holds, event counters, and how long a task ran. Policies are header files
 * included by main.bpf.c after this one.
 */
#ifndef __SCX_BATTLE_SHARED_BPF_H
#define __SCX_BATTLE_SHARED_BPF_H

/*
 * Topology, written by the loader (topo.rs). Linux builds its scheduling
 * domains from the same facts: a domain at each level spans the CPUs that
 * share a core, an LLC, a node, or the machine; its groups are the domains
 * of the level below. A level whose span equals the level below is
 * degenerate and skipped, as Linux does.
 */
const volatile u32 nr_cpu_ids = 1;			/* highest CPU id + 1 */
const volatile u8 cpu_online[MAX_CPUS];			/* 1 if online when loaded */
const volatile u32 cpu_core_id[MAX_CPUS];
const volatile u32 cpu_llc_id[MAX_CPUS];
const volatile u32 cpu_node_id[MAX_CPUS];
const volatile u8 dom_active[NR_DOM_LEVELS];		/* level is not degenerate */
const volatile u32 dom_weight[NR_DOM_LEVELS][MAX_CPUS];	/* CPUs in each CPU's domain */

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
	u32	pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

static __always_inline struct task_ctx *task_ctx(const struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, (struct task_struct *)p, 0, 0);
}

static __always_inline s32 task_ctx_create(struct task_struct *p)
{
	struct task_ctx *tctx;

	tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->cpu = -1;
	tctx->vtime_cpu = -1;
	return 0;
}

/* Per-CPU context, readable from any CPU. */
struct {
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
	if (old >= 0 && (cctx = cpu_ctx(old))) {
		__sync_fetch_and_sub(&cctx->load, old_weight);
		__sync_fetch_and_sub(&cctx->nr_running, 1);
	}
	if (new_cctx) {
		__sync_fetch_and_add(&new_cctx->load, weight);
		__sync_fetch_and_add(&new_cctx->nr_running, 1);
	}
}

/* Per-CPU counters, summed by userspace (stats.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_BATTLE_STATS);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat_inc(enum stat_idx idx)
{
	u32 key = idx;
	u64 *cnt = bpf_map_lookup_elem(&stats, &key);

	if (cnt)
		(*cnt)++;
}

/* Mark the start of a task's run on a CPU. */
static __always_inline void task_start_run(struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		tctx->last_run_at = scx_bpf_now();
}

/* Wall-clock ns the task has run since task_start_run(); marks its stop. */
static __always_inline u64 task_stop_run(struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 now = scx_bpf_now();

	if (!tctx)
		return 0;
	tctx->last_stop_at = now;
	if (!tctx->last_run_at || time_before(now, tctx->last_run_at))
		return 0;
	return now - tctx->last_run_at;
}

#endif /* __SCX_BATTLE_SHARED_BPF_H */
