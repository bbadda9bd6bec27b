/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers every policy uses: per-task context, per-CPU event counters, and
 * the wall-clock accounting of how long a task ran. Policies are header files
 * included by main.bpf.c after this one.
 */
#ifndef __SCX_BATTLE_SHARED_BPF_H
#define __SCX_BATTLE_SHARED_BPF_H

/* Per-task scheduler state. */
struct task_ctx {
	u64	last_run_at;	/* ns, scx_bpf_now() when the task last got a CPU */
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
	if (!bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	return 0;
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

/* Wall-clock ns the task has run since task_start_run(). */
static __always_inline u64 task_ran_for(struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 now = scx_bpf_now();

	if (!tctx || !tctx->last_run_at || time_before(now, tctx->last_run_at))
		return 0;
	return now - tctx->last_run_at;
}

#endif /* __SCX_BATTLE_SHARED_BPF_H */
