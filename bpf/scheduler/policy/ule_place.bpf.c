/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ULE, placement (sched_ule.c: sched_pickcpu, sched_lowest): where a waking
 * or new thread goes, by thread counts down the topology tree. The
 * placement component (components.bpf.h): priorities come from the run
 * queue, whichever that is.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "components.bpf.h"


/*
 * Is cpu acceptable to sched_lowest: allowed, running worse work than pri?
 * (FreeBSD's maxload filter is always "any" in sched_pickcpu's calls.)
 */
static __always_inline bool ule_acceptable(struct task_struct *p, s32 cpu, s32 pri)
{
	return cpu_usable(cpu, p) && (pri == ULE_NO_PRI || q_cpu_pri(cpu) > (u32)pri);
}


/*
 * The searches' running bests, per CPU in map memory: the verifier does not
 * track values there, so the walks' turns look alike to it and verify in a
 * few states (kept in registers, the best score and CPU of every turn were
 * states of their own, and ULE's placement over CFS's run queue passed
 * Linux 6.19's limit of 1M instructions).
 */
struct ule_pick_scratch {
	u64	best_score;	/* ule_lowest_in_llc */
	s32	best;
	u32	llc;		/* ule_lowest: the LLC chosen, ~0 if none */
	u64	dom_best;	/* ule_lowest: the best node's or LLC's score */
	u32	node;
	u32	seen;
	u32	tried[ULE_LOWEST_TRIES];	/* LLCs set aside, + 1 (0: none) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_pick_scratch);
} ule_pick_scratch SEC(".maps");

static __always_inline struct ule_pick_scratch *pick_scratch(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&ule_pick_scratch, &zero);
}


/*
 * sched_lowest inside one LLC: the acceptable CPU with the lowest score, a
 * CPU's thread count x ULE_LOAD_SCALE, less ULE_PREFER_BONUS on the
 * preferred CPU, plus a random 0..31. -1 if none.
 */
static s32 ule_lowest_in_llc(struct task_struct *p, u32 llc, s32 prefer, s32 pri)
{
	struct ule_pick_scratch *s = pick_scratch();
	u64 score;
	s32 cpu;
	u32 i;

	if (!s)
		return -1;
	s->best_score = ~0ULL;
	s->best = -1;
	for_each_llc_cpu(i, cpu, llc) {
		if (!ule_acceptable(p, cpu, pri))
			continue;
		score = (u64)ule_load(cpu) * ULE_LOAD_SCALE + ULE_PREFER_BONUS + 32 -
			(cpu == prefer ? ULE_PREFER_BONUS : 0) - bpf_get_prandom_u32() % 32;
		if (score < s->best_score) {
			s->best_score = score;
			s->best = cpu;
		}
	}
	cost_visit(COST_SELECT, llc_nr[llc & (MAX_CPUS - 1)]);
	return s->best;
}


/* Threads per CPU of a domain, x ULE_LOAD_SCALE, with a random 0..31 to break ties. */
static __always_inline u64 ule_dom_score(struct dom_stat *ds)
{
	if (!ds->nr_cpus)
		return ~0ULL;
	return (u64)ds->nr_running * ULE_LOAD_SCALE / ds->nr_cpus + bpf_get_prandom_u32() % 32;
}


/*
 * sched_lowest over the machine, walking the tree: the node with the fewest
 * threads per CPU, its LLC with the fewest, and the best acceptable CPU in
 * it. An LLC with no acceptable CPU (affinity, priorities) is set aside and
 * the least loaded LLC not yet tried is next, ULE_LOWEST_TRIES times at
 * most. FreeBSD's cpu_search_lowest looks at every CPU instead.
 */
static s32 ule_lowest(struct task_struct *p, s32 prefer, s32 pri)
{
	struct ule_pick_scratch *s = pick_scratch();
	u32 t, d, j, l0, nl;
	u64 score;
	s32 cpu;

	if (!s)
		return -1;
	bpf_for(j, 0, ULE_LOWEST_TRIES)
		s->tried[j & (ULE_LOWEST_TRIES - 1)] = 0;
	bpf_for(t, 0, ULE_LOWEST_TRIES) {
		s->dom_best = ~0ULL;
		if (t == 0) {
			s->node = 0;
			bpf_for(d, 0, nr_nodes) {
				score = ule_dom_score(node_stat_of(d));
				if (score < s->dom_best) {
					s->dom_best = score;
					s->node = d;
				}
			}
			l0 = node_first_llc[s->node & (MAX_CPUS - 1)];
			nl = node_nr_llcs[s->node & (MAX_CPUS - 1)];
			if (nl > max_node_llcs)
				nl = max_node_llcs;
			cost_visit(COST_SELECT, nr_nodes + nl);
		} else {
			l0 = 0;
			nl = nr_llcs;
			cost_visit(COST_SELECT, nl);
		}
		s->dom_best = ~0ULL;
		s->llc = ~0U;
		bpf_for(d, 0, nl) {
			s->seen = 0;
			bpf_for(j, 0, t)
				if (s->tried[j & (ULE_LOWEST_TRIES - 1)] == l0 + d + 1)
					s->seen = 1;
			if (s->seen)
				continue;
			score = ule_dom_score(llc_stat_of(l0 + d));
			if (score < s->dom_best) {
				s->dom_best = score;
				s->llc = l0 + d;
			}
		}
		if (s->llc == ~0U)
			return -1;
		cpu = ule_lowest_in_llc(p, s->llc, prefer, pri);
		if (cpu >= 0)
			return cpu;
		s->tried[t & (ULE_LOWEST_TRIES - 1)] = s->llc + 1;
	}
	return -1;
}


static __always_inline bool ule_cpu_idle(s32 cpu)
{
	return ule_load(cpu) == 0;
}


/* SCHED_AFFINITY: did the thread run on its CPU within `level` x affinity? */
static __always_inline bool ule_affine(struct task_ctx *tctx, u32 level)
{
	u64 now = scx_bpf_now();

	return tctx->last_stop_at && now - tctx->last_stop_at < level * affinity_ns;
}


/* Is every other SMT thread of cpu's core idle too? */
static __always_inline bool ule_core_idle(s32 cpu, enum cost_kind kind)
{
	s32 c;
	u32 i;

	for_each_core_cpu(i, c, cpu) {
		if (c != cpu && !ule_cpu_idle(c))
			return false;
	}
	cost_visit(kind, core_nr[cpu_idx(cpu)]);
	return true;
}


/*
 * sched_pickcpu, for a waking or new thread. Priorities come from the run
 * queue (components.bpf.h, 4); affinity from when the thread last left a
 * CPU, loads from the thread counts.
 */
static s32 ule_pickcpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = -1, self = bpf_get_smp_processor_id();
	bool prev_ok = cpu_usable(prev_cpu, p);
	u32 pri;

	if (!tctx)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	pri = q_task_pri(p);

	/* Cache-warm and idle: stay (with SMT, the whole core must be idle). */
	if (prev_ok && ule_cpu_idle(prev_cpu) && ule_affine(tctx, CG_SHARE_L2) &&
	    (!dom_active[DOM_SMT] || ule_core_idle(prev_cpu, COST_SELECT))) {
		stat_inc(STAT_ULE_PICK_PREV);
		return prev_cpu;
	}
	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS && ule_affine(tctx, CG_SHARE_L3)) {
		cpu = ule_lowest_in_llc(p, llc_of(prev_cpu), prev_cpu,
					pri > PRI_MAX_TIMESHARE ? pri : PRI_MAX_TIMESHARE);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_LLC);
	}
	if (cpu < 0) {
		cpu = ule_lowest(p, prev_cpu, pri);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_PRI);
	}
	if (cpu < 0) {
		cpu = ule_lowest(p, prev_cpu, ULE_NO_PRI);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_ANY);
	}
	if (cpu < 0)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);

	/* The waker's CPU, if it runs worse work and is no busier than the pick. */
	if (self != cpu && cpu_usable(self, p) && q_cpu_pri(self) > pri && !ule_cpu_idle(cpu) &&
	    ule_load(self) <= ule_load(cpu) + 1) {
		stat_inc(STAT_ULE_PICK_SELF);
		cpu = self;
	}
	return cpu;
}


/*
 * sched_add picks the CPU and adds the thread to its load under one lock,
 * so the next wakeup's sched_pickcpu sees it. On sched_ext the thread is
 * queued later, on the target CPU (a remote wakeup goes through that CPU's
 * wake list), and wakeups placed in between would all see the same least
 * loaded CPU: count the thread there now. ops.enqueue counts it again,
 * which moves it if the kernel put it elsewhere.
 */
__hidden s32 ule_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx;
	s32 cpu;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	cpu = ule_pickcpu(p, prev_cpu, wake_flags);
	cost_end(COST_SELECT);
	if ((tctx = task_ctx(p)) && tctx->cpu < 0 && cpu_usable(cpu, p))
		account_task(p, tctx, cpu);
	return cpu;
}
