/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ULE, balancing (sched_ule.c: sched_highest, tdq_move, tdq_idled,
 * sched_balance_group): the thread an idle CPU steals, the kick that wakes
 * an idle CPU to steal, and CPU 0's periodic balancer; all of it by thread
 * counts, down the topology tree. The balancer component
 * (components.bpf.h): it reads thread counts from account_task's sums and
 * moves threads through the run queue's q_migrate, whichever queue that is.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "components.bpf.h"

/*
 * The balancer's scratch (one pass at a time, on one CPU): online CPUs sorted
 * by thread count (the donors' order), and per CPU whether it gave or took a
 * thread in this pass or was set aside for this donor (stamps: equal to the
 * pass's or the donor's number).
 */
struct ule_balance_scratch {
	u64	key[MAX_CPUS];		/* thread count << 32 | random: the sort key */
	u32	cpu[MAX_CPUS];
	u32	used[MAX_CPUS];		/* by CPU: == pass, it gave or took (or was a donor) */
	u32	skip[MAX_CPUS];		/* by CPU: == donor, its threads may not run there */
	u32	llc_tried[MAX_CPUS];	/* by LLC: == search, no acceptable CPU in it */
	/*
	 * The pass's counters live here, in map memory the verifier does not
	 * track, so the loops verify in a few states (see cfs.bpf.h).
	 */
	u32	n;
	u32	pass;
	u32	donor;
	u32	search;
	u32	moves;
	u32	moved;
	u32	anylow;
	u32	root;			/* ule_sift's position */
	s32	hload;
	u32	node;			/* ule_bal_lowest: the node and LLC chosen */
	u32	llc;
	u64	best;
	s32	best_cpu;
	u32	open;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_balance_scratch);
} ule_bal_scratch SEC(".maps");

/* CPU 0's periodic balancer, a timer pinned to that CPU. */
struct ule_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_timer);
} ule_timers SEC(".maps");


/*
 * tdq_move: move one queued thread from src to dst through the run queue's
 * q_migrate (components.bpf.h, 3): src keeps the thread it runs next unless
 * it is the only one dst may run (runq_steal_from), ULE_MOVE_SCAN threads
 * looked at at most; into dst's local queue when dst is this CPU stealing,
 * else into dst's queue, dst notified (tdq_notify). 1 if a thread moved.
 */
static int ule_move_one(s32 src, s32 dst, u32 to_local, u32 kind)
{
	/* The balancer's pass runs from its timer (COST_BALANCE); a steal from dispatch. */
	u32 cause = kind == COST_BALANCE ? MOVE_BALANCE : MOVE_STEAL;
	struct migrate_req *m = migrate_req_init(src, dst, to_local, kind, cause);
	int moved;

	if (!m)
		return 0;
	m->keep_next = 1;
	m->max_looks = ULE_MOVE_SCAN;
	m->notify = !to_local;
	moved = q_migrate();
	cost_visit(kind, m->looked);
	return moved > 0;
}


/*
 * sched_highest over topo_cpus[first..first+nr) (a core or an LLC): the
 * most loaded CPU with at least minload threads and a queued one, not self.
 */
static s32 ule_highest_in(s32 self, u32 first, u32 nr, s32 minload)
{
	s32 cpu, load, best = -1, best_load = -1;
	u32 i;

	for_each_topo_cpu(i, cpu, first, nr, max_llc_cpus) {
		if (cpu == self)
			continue;
		load = ule_load(cpu);
		if (load < minload || ule_transferable(cpu) <= 0)
			continue;
		if (load > best_load || (load == best_load && (bpf_get_prandom_u32() & 1))) {
			best_load = load;
			best = cpu;
		}
	}
	cost_visit(COST_DISPATCH, nr);
	return best;
}


/* The LLC with the most threads per CPU among first..first+nr, other than `skip`. */
static u32 ule_busiest_llc(u32 first, u32 nr, u32 skip)
{
	u32 i, best = ~0U;
	u64 score, best_score = 0;
	struct dom_stat *ds;

	bpf_for(i, 0, nr) {
		if (i >= MAX_CPUS || first + i == skip)
			continue;
		ds = llc_stat_of(first + i);
		if (!ds->nr_cpus || ds->nr_running <= ds->nr_cpus)
			continue;	/* nobody there has a thread to spare */
		score = (u64)ds->nr_running * ULE_LOAD_SCALE / ds->nr_cpus;
		if (score > best_score) {
			best_score = score;
			best = first + i;
		}
	}
	cost_visit(COST_DISPATCH, nr);
	return best;
}


/*
 * tdq_idled: a CPU with nothing to run steals one thread, closest domain
 * first (sched_highest up the tree): its core, its LLC, then the busiest
 * other LLC of its node, then the busiest LLC of the machine. Within its
 * core a sibling with one queued thread is enough (11.x's threshold of 1 in
 * a CG_FLAG_THREAD group); elsewhere the victim needs steal_thresh.
 */
__hidden __noinline int ule_steal(s32 cpu)
{
	u32 level, llc, own;
	s32 src;

	if (cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	own = llc_of(cpu);
	bpf_for(level, DOM_SMT, NR_DOM_LEVELS) {
		if (level == DOM_SMT) {
			if (!dom_active[DOM_SMT])
				continue;
			src = ule_highest_in(cpu, core_first[cpu_idx(cpu)], core_nr[cpu_idx(cpu)], ULE_SMT_STEAL_THRESH);
			if (src >= 0 && ule_move_one(src, cpu, 1, COST_DISPATCH)) {
				stat_inc(STAT_ULE_STEAL);
				return 1;
			}
			continue;
		}
		if (level == DOM_LLC)
			llc = own;
		else if (level == DOM_NODE)
			llc = ule_busiest_llc(node_first_llc[node_of(cpu) & (MAX_CPUS - 1)],
					      node_nr_llcs[node_of(cpu) & (MAX_CPUS - 1)], own);
		else
			llc = ule_busiest_llc(0, nr_llcs, own);
		if (llc == ~0U)
			continue;
		src = ule_highest_in(cpu, llc_first[llc & (MAX_CPUS - 1)], llc_nr[llc & (MAX_CPUS - 1)], steal_thresh);
		if (src < 0)
			continue;
		if (ule_move_one(src, cpu, 1, COST_DISPATCH)) {
			stat_inc(STAT_ULE_STEAL);
			return 1;
		}
	}
	return 0;
}


/*
 * sched_lowest(cpu_top, lmask, -1, high's load - 1, high) for the balancer,
 * as cpu_search_lowest walks the tree: the node with the fewest threads
 * among those with an acceptable CPU, its LLC with the fewest, and that
 * LLC's least loaded acceptable CPU (equal counts: at random). Acceptable:
 * online, not the donor, no thread given or taken in this pass, not set
 * aside for this donor, and fewer threads than the donor. Groups compare by
 * their thread totals, as FreeBSD's do. An LLC without an acceptable CPU is
 * set aside and the search starts again (a node whose LLCs are all set aside
 * is passed over), ULE_BAL_LLC_TRIES LLCs at most: -1 if no CPU is
 * acceptable, ULE_BAL_GAVE_UP if the tries ran out first.
 */
static __noinline s32 ule_bal_lowest(struct ule_balance_scratch *b)
{
	u32 t, d, i, llc, nl, l0;
	u64 score;
	s32 cpu, load;
	struct dom_stat *ds;

	b->search++;
	bpf_for(t, 0, ULE_BAL_LLC_TRIES) {
		/* The node: fewest threads, with an LLC not set aside. */
		b->best = ~0ULL;
		b->node = ~0U;
		bpf_for(d, 0, nr_nodes) {
			ds = node_stat_of(d);
			if (!ds->nr_cpus)
				continue;
			b->open = 0;
			for_each_node_llc(i, llc, d) {
				if (b->llc_tried[llc & (MAX_CPUS - 1)] != b->search)
					b->open = 1;
			}
			if (!b->open)
				continue;
			score = (u64)ds->nr_running * ULE_LOAD_SCALE + bpf_get_prandom_u32() % 32;
			if (score < b->best) {
				b->best = score;
				b->node = d;
			}
		}
		cost_visit(COST_BALANCE, nr_nodes);
		if (b->node == ~0U)
			return -1;
		/* Its LLC with the fewest threads, not set aside. */
		b->best = ~0ULL;
		b->llc = ~0U;
		l0 = node_first_llc[b->node & (MAX_CPUS - 1)];
		nl = node_nr_llcs[b->node & (MAX_CPUS - 1)];
		bpf_for(i, 0, nl) {
			if (i >= max_node_llcs)
				break;
			llc = l0 + i;
			if (b->llc_tried[llc & (MAX_CPUS - 1)] == b->search)
				continue;
			ds = llc_stat_of(llc);
			score = (u64)ds->nr_running * ULE_LOAD_SCALE + bpf_get_prandom_u32() % 32;
			if (score < b->best) {
				b->best = score;
				b->llc = llc;
			}
		}
		cost_visit(COST_BALANCE, nl);
		if (b->llc == ~0U)
			return -1;
		/* Its least loaded acceptable CPU. */
		b->best = ~0ULL;
		b->best_cpu = -1;
		for_each_llc_cpu(i, cpu, b->llc) {
			if (cpu < 0 || cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)] ||
			    b->used[cpu_idx(cpu)] == b->pass || b->skip[cpu_idx(cpu)] == b->donor)
				continue;
			load = ule_load(cpu);
			if (!ule_balance_pair_ok(b->hload, load))
				continue;
			score = (u64)load * ULE_LOAD_SCALE + 32 - bpf_get_prandom_u32() % 32;
			if (score < b->best) {
				b->best = score;
				b->best_cpu = cpu;
			}
		}
		cost_visit(COST_BALANCE, llc_nr[b->llc & (MAX_CPUS - 1)]);
		if (b->best_cpu >= 0)
			return b->best_cpu;
		b->llc_tried[b->llc & (MAX_CPUS - 1)] = b->search;
	}
	return ULE_BAL_GAVE_UP;
}


/* Sift position root down the max-heap key[0..n) of the balancer's scratch (heapsort's step). */
#define BAL_M	(MAX_CPUS - 1)

__hidden __noinline int ule_sift(u32 root, u32 n)
{
	struct ule_balance_scratch *b;
	u32 zero = 0, step, child, r, c;
	u64 k;

	if (!(b = bpf_map_lookup_elem(&ule_bal_scratch, &zero)))
		return 0;
	b->root = root;
	bpf_for(step, 0, 12) {	/* log2(MAX_CPUS) + 2 levels at most */
		r = b->root & BAL_M;
		child = 2 * r + 1;
		if (child >= n)
			break;
		if (child + 1 < n && b->key[(child + 1) & BAL_M] > b->key[child & BAL_M])
			child++;
		child &= BAL_M;
		if (b->key[r] >= b->key[child])
			break;
		k = b->key[r];
		b->key[r] = b->key[child];
		b->key[child] = k;
		c = b->cpu[r];
		b->cpu[r] = b->cpu[child];
		b->cpu[child] = c;
		b->root = child;
	}
	return 0;
}


/*
 * sched_balance_group(cpu_top), by the balancer timer. FreeBSD repeats: the
 * most loaded CPU not yet used (sched_highest) gives one queued thread to
 * the least loaded CPU down the tree (sched_lowest: the node, then the LLC
 * with the fewest threads, then its CPU) among those holding fewer threads
 * than it, not yet used; so CPUs with k+1 and k threads trade one at every
 * pass (threads that don't divide evenly rotate), and a crowded CPU's
 * threads go to the least loaded node first. A receiver that may run none
 * of the donor's threads is set aside for that donor; a CPU gives or gets
 * one thread per pass; when the first search for a donor finds nobody, the
 * pass ends. The donors come in the order of one sort by thread count at
 * the pass's start (heapsort, N log N), where FreeBSD's sched_highest walks
 * the tree again for each; each donor's receiver search walks nodes and
 * LLCs by their live sums and looks at one LLC's CPUs (ule_bal_lowest).
 */
__hidden __noinline int ule_balance_pass(void)
{
	struct ule_balance_scratch *b;
	u32 zero = 0, i, round, k, h, tr, end;
	u64 tmp;

	if (!(b = bpf_map_lookup_elem(&ule_bal_scratch, &zero)))
		return 0;
	stat_inc(STAT_ULE_BAL_PASS);
	b->n = 0;
	bpf_for(i, 0, nr_cpus) {
		s32 cpu = topo_cpu(i);

		b->key[b->n & BAL_M] = ((u64)ule_load(cpu) << 32) | bpf_get_prandom_u32();
		b->cpu[b->n & BAL_M] = cpu;
		b->n++;
	}
	if (b->n < 2 || b->n > MAX_CPUS)
		return 0;
	/* Heapsort, ascending: least loaded first. */
	bpf_for(i, 0, b->n / 2)
		ule_sift(b->n / 2 - 1 - i, b->n);
	bpf_for(i, 0, b->n - 1) {
		end = (b->n - 1 - i) & BAL_M;
		tmp = b->key[0];
		b->key[0] = b->key[end];
		b->key[end] = tmp;
		k = b->cpu[0];
		b->cpu[0] = b->cpu[end];
		b->cpu[end] = k;
		ule_sift(0, end);
	}
	/* The sort: 1.5 N sifts of log N steps each, counted as one visit per sift. */
	cost_visit(COST_BALANCE, b->n * 5 / 2);

	/* Donors from the top; receivers down the tree. */
	b->pass++;
	b->moves = 0;
	bpf_for(round, 0, b->n) {
		h = (b->n - 1 - round) & BAL_M;
		k = b->cpu[h];
		if (k >= MAX_CPUS || b->used[k & BAL_M] == b->pass)
			continue;
		b->used[k & BAL_M] = b->pass;	/* a donor, tried or not, is no receiver */
		if ((b->key[h] >> 32) < 2)
			break;			/* nobody had a thread to spare */
		cost_visit(COST_BALANCE, 1);
		b->hload = ule_load(k);
		if (b->hload < 2 || ule_transferable(k) <= 0)
			continue;
		b->donor++;
		b->moved = 0;
		b->anylow = 1;
		bpf_for(tr, 0, ULE_BAL_TRIES) {
			s32 low = ule_bal_lowest(b);

			if (low == ULE_BAL_GAVE_UP)
				b->anylow = 0;	/* not "nobody has fewer threads": the next donor */
			if (low < 0 || low >= MAX_CPUS)
				break;
			if (ule_move_one(k, low, 0, COST_BALANCE)) {
				b->used[low & BAL_M] = b->pass;
				b->moves++;
				b->moved = 1;
				stat_inc(STAT_ULE_BAL_MOVE);
				if (b->hload == ule_load(low))	/* it had hload - 1 */
					stat_inc(STAT_ULE_BAL_ROTATE);
				break;
			}
			b->skip[low & BAL_M] = b->donor;	/* may not run any of k's threads */
			b->anylow = 0;
		}
		if (!b->moved && b->anylow)
			break;			/* nobody has fewer threads than the donor: balanced */
	}
	return b->moves;
}


/* The balancer timer: a pass, then the next one in 0.5 to 1.5 balance_interval. */
static int ule_balance_timer_fn(void *map, int *key, struct ule_timer *t)
{
	u64 ms;

	if (rebalance) {
		cost_begin(COST_BALANCE);
		ule_balance_pass();
		cost_end(COST_BALANCE);
	}
	ms = balance_interval_ms / 2 + bpf_get_prandom_u32() % (balance_interval_ms ? balance_interval_ms : 1);
	bpf_timer_start(&t->timer, (ms ? ms : 1) * 1000000ULL, BPF_F_TIMER_CPU_PIN);
	return 0;
}


/*
 * Set up and arm the balancer timer on the balancer CPU, the first time
 * that CPU dispatches: BPF_F_TIMER_CPU_PIN keeps it there, as FreeBSD runs
 * the balancer on CPU 0 (ops.init may run on any CPU). The callback is
 * verified as part of the program that sets it, with that program's rules:
 * set from sleepable ops.init, Linux 6.19's verifier held the callback's
 * call of the run queue's global q_migrate (which walks a queue with
 * bpf_for_each) to be outside an RCU read section; set from ops.tick, 7.3
 * refused scx_bpf_dsq_move in it (ops.tick runs under a run-queue lock).
 * ops.dispatch satisfies both. Only the balancer CPU gets here, so there is
 * no race on ule_timer_armed.
 */
u32 ule_timer_armed;	/* not static: clang would shrink it to one byte, which BTF refuses */

__hidden void ule_arm_balancer(s32 cpu)
{
	struct ule_timer *t;
	u32 zero = 0;

	if (!rebalance || cpu != (s32)ule_balancer_cpu || ule_timer_armed)
		return;
	if (!(t = bpf_map_lookup_elem(&ule_timers, &zero)))
		return;
	ule_timer_armed = 1;
	if (bpf_timer_init(&t->timer, &ule_timers, CLOCK_MONOTONIC) ||
	    bpf_timer_set_callback(&t->timer, ule_balance_timer_fn)) {
		scx_bpf_error("ULE's balancer timer could not be set up");
		return;
	}
	bpf_timer_start(&t->timer, (u64)balance_interval_ms * 1000000ULL, BPF_F_TIMER_CPU_PIN);
}


/*
 * A CPU with steal_thresh threads has one to give: wake an idle CPU so it
 * runs tdq_idled. (FreeBSD's idle CPUs poll; sched_ext's sleep until
 * kicked, and a widened affinity mask enqueues but wakes nobody.) Called
 * after the run queue queued p on cpu. The idle CPU is taken where
 * tdq_idled would find cpu first: its LLC, then its node, then anywhere
 * (a stealer in another LLC looks only at LLCs with more threads than
 * CPUs, ule_busiest_llc, so a far kick while cpu's LLC has idle CPUs
 * would wake a CPU that finds nothing). p's affinity stands for the
 * queued threads' (a pinned p wakes nobody).
 */
__hidden void ule_kick_stealer(struct task_struct *p, s32 cpu)
{
	const struct cpumask *mask;
	s32 idle = -1;

	if (!steal_idle || ule_load(cpu) < (s32)steal_thresh || cpu < 0 || cpu >= MAX_CPUS)
		return;
	if (runs_anywhere(p)) {
		if ((mask = llc_mask(llc_of(cpu))))
			idle = scx_bpf_pick_idle_cpu(mask, 0);
		if (idle < 0 && dom_active[DOM_NODE] && (mask = node_mask(node_of(cpu))))
			idle = scx_bpf_pick_idle_cpu(mask, 0);
	}
	if (idle < 0)
		idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0) {
		stat_inc(STAT_KICK_IDLE);
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	}
}
