/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ULE, placement and balancing (sched_ule.c: sched_pickcpu, sched_lowest,
 * sched_highest, tdq_move, tdq_idled, sched_balance_group): where a waking
 * or new thread goes, the thread an idle CPU steals, and CPU 0's periodic
 * balancer; all of it by thread counts, down the topology tree.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "ule.bpf.h"

/*
 * The balancer's scratch (one pass at a time, on one CPU): online CPUs sorted
 * by thread count, and per sorted position whether it gave or took a thread.
 */
struct ule_balance_scratch {
	u64	key[MAX_CPUS];		/* thread count << 32 | random: the sort key */
	u32	cpu[MAX_CPUS];
	u8	used[MAX_CPUS];
	/*
	 * The pass's counters live here, in map memory the verifier does not
	 * track, so the loops verify in a few states (see cfs.bpf.h).
	 */
	u32	n;
	u32	lo;			/* lowest sorted position not yet a receiver */
	u32	tries;
	u32	moves;
	u32	moved;
	u32	anylow;
	u32	root;			/* ule_sift's position */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_balance_scratch);
} ule_bal_scratch SEC(".maps");

/* One move's state (see ule_move_one), per CPU, in map memory the verifier does not track. */
struct ule_move_ctx {
	s32	src;
	s32	dst;
	u32	to_local;	/* dst is this CPU stealing: into its local queue */
	u32	kind;		/* enum cost_kind the visits are charged to */
	u32	looked;		/* queued threads looked at */
	u32	skip_first;	/* runq_steal_from: the next thread seen is src's next to run */
	s32	first_pid;	/* that thread, -1 if none */
	u32	first_bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ule_move_ctx);
} ule_move_scratch SEC(".maps");

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
 * Is cpu acceptable to sched_lowest: allowed, running worse work than pri?
 * (FreeBSD's maxload filter is always "any" in sched_pickcpu's calls.)
 */
static __always_inline bool ule_acceptable(struct task_struct *p, s32 cpu, s32 pri)
{
	struct ule_tdq *tdq = ule_tdq(cpu);

	return tdq && cpu_usable(cpu, p) && (pri == ULE_NO_PRI || ule_lowpri(cpu, tdq) > (u32)pri);
}


/*
 * sched_lowest inside one LLC: the acceptable CPU with the lowest score, a
 * CPU's thread count x ULE_LOAD_SCALE, less ULE_PREFER_BONUS on the
 * preferred CPU, plus a random 0..31. -1 if none.
 */
static s32 ule_lowest_in_llc(struct task_struct *p, u32 llc, s32 prefer, s32 pri)
{
	u64 score, best_score = ~0ULL;
	s32 cpu, best = -1;
	u32 i;

	for_each_llc_cpu(i, cpu, llc) {
		if (!ule_acceptable(p, cpu, pri))
			continue;
		score = (u64)ule_load(cpu) * ULE_LOAD_SCALE + ULE_PREFER_BONUS + 32 -
			(cpu == prefer ? ULE_PREFER_BONUS : 0) - bpf_get_prandom_u32() % 32;
		if (score < best_score) {
			best_score = score;
			best = cpu;
		}
	}
	cost_visit(COST_SELECT, llc_nr[llc & (MAX_CPUS - 1)]);
	return best;
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
	u32 tried[ULE_LOWEST_TRIES] = {}, t, d, j, llc = 0, l0, nl, node = 0;
	u64 score, best;
	s32 cpu;

	bpf_for(t, 0, ULE_LOWEST_TRIES) {
		best = ~0ULL;
		if (t == 0) {
			bpf_for(d, 0, nr_nodes) {
				score = ule_dom_score(node_stat_of(d));
				if (score < best) {
					best = score;
					node = d;
				}
			}
			l0 = node_first_llc[node & (MAX_CPUS - 1)];
			nl = node_nr_llcs[node & (MAX_CPUS - 1)];
			if (nl > max_node_llcs)
				nl = max_node_llcs;
			cost_visit(COST_SELECT, nr_nodes + nl);
		} else {
			l0 = 0;
			nl = nr_llcs;
			cost_visit(COST_SELECT, nl);
		}
		best = ~0ULL;
		llc = ~0U;
		bpf_for(d, 0, nl) {
			bool seen = false;

			bpf_for(j, 0, t)
				if (tried[j & (ULE_LOWEST_TRIES - 1)] == l0 + d + 1)
					seen = true;
			if (seen)
				continue;
			score = ule_dom_score(llc_stat_of(l0 + d));
			if (score < best) {
				best = score;
				llc = l0 + d;
			}
		}
		if (llc == ~0U)
			return -1;
		cpu = ule_lowest_in_llc(p, llc, prefer, pri);
		if (cpu >= 0)
			return cpu;
		tried[t & (ULE_LOWEST_TRIES - 1)] = llc + 1;
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


/* sched_pickcpu, for a waking or new thread. */
static s32 ule_pickcpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct td_sched *ts = ule_ts(p);
	struct task_ctx *tctx = task_ctx(p);
	struct ule_tdq *self_tdq;
	s32 cpu = -1, self = bpf_get_smp_processor_id();
	bool prev_ok = cpu_usable(prev_cpu, p);

	if (!ts || !tctx)
		return prev_ok ? prev_cpu : scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	ule_wakeup(p, ts);
	ule_priority(p, ts);

	/* Cache-warm and idle: stay (with SMT, the whole core must be idle). */
	if (prev_ok && ule_cpu_idle(prev_cpu) && ule_affine(tctx, CG_SHARE_L2) &&
	    (!dom_active[DOM_SMT] || ule_core_idle(prev_cpu, COST_SELECT))) {
		stat_inc(STAT_ULE_PICK_PREV);
		return prev_cpu;
	}
	if (prev_cpu >= 0 && prev_cpu < MAX_CPUS && ule_affine(tctx, CG_SHARE_L3)) {
		cpu = ule_lowest_in_llc(p, llc_of(prev_cpu), prev_cpu,
					ts->pri > PRI_MAX_TIMESHARE ? ts->pri : PRI_MAX_TIMESHARE);
		if (cpu >= 0)
			stat_inc(STAT_ULE_PICK_LLC);
	}
	if (cpu < 0) {
		cpu = ule_lowest(p, prev_cpu, ts->pri);
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
	if (self != cpu && cpu_usable(self, p) && (self_tdq = ule_tdq(self)) &&
	    ule_lowpri(self, self_tdq) > ts->pri && !ule_cpu_idle(cpu) &&
	    ule_load(self) <= ule_load(cpu) + 1) {
		stat_inc(STAT_ULE_PICK_SELF);
		cpu = self;
	}
	return cpu;
}


__hidden s32 ule_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu;

	cost_begin(COST_SELECT);
	cost_visit(COST_SELECT, 1);
	cpu = ule_pickcpu(p, prev_cpu, wake_flags);
	cost_end(COST_SELECT);
	return cpu;
}


/* How ule_move_from treats the threads of a queue. */
enum ule_move_mode {
	ULE_MOVE_ANY,		/* the first one dst may run */
	ULE_MOVE_SKIP_FIRST,	/* the same, but pass over the first thread of the walk */
	ULE_MOVE_ONLY_FIRST,	/* only that passed-over thread */
};


/*
 * tdq_move's half for one queue of src (bucket b of the calendar): move a
 * thread dst may run to dst, into dst's local queue when dst is this CPU
 * stealing, else into the queue its priority selects on dst (tdq_add), and
 * notify dst as tdq_notify does. 1 if a thread moved, 0 if none did, -1 when
 * the move has looked at ULE_MOVE_SCAN threads. A move fails when src ran or
 * requeued the thread since the walk saw it; then the next one is tried.
 * Not inlined (__noinline): one subprogram for all its call sites.
 */
__hidden __noinline int ule_move_from(u32 q, u32 b, u32 mode)
{
	struct ule_move_ctx *m;
	struct ule_tdq *dtdq;
	struct task_struct *p;
	struct td_sched *ts;
	struct task_ctx *tctx;
	u32 zero = 0;
	s32 src, dst;

	if (!(m = bpf_map_lookup_elem(&ule_move_scratch, &zero)))
		return -1;
	src = m->src;
	dst = m->dst;
	if (src < 0 || dst < 0 || src >= MAX_CPUS || dst >= MAX_CPUS || q >= ULE_NR_QUEUES ||
	    !(dtdq = ule_tdq(dst)))
		return -1;
	bpf_for_each(scx_dsq, p, ule_dsq(src, q, b), 0) {
		u32 dq, db = 0;
		bool moved;

		if (++m->looked > ULE_MOVE_SCAN)
			return -1;
		if (mode == ULE_MOVE_SKIP_FIRST && m->skip_first) {
			/* runq_steal_from leaves src the thread it runs next, unless it is the only one. */
			m->skip_first = 0;
			m->first_pid = p->pid;
			m->first_bucket = b;
			continue;
		}
		if (mode == ULE_MOVE_ONLY_FIRST && p->pid != m->first_pid)
			continue;
		if (!bpf_cpumask_test_cpu(dst, p->cpus_ptr) || !(ts = ule_ts(p)) || !(tctx = task_ctx(p)))
			continue;
		dq = ule_queue_of(ts->pri);
		if (m->to_local) {
			moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0);
		} else if (dq == ULE_Q_REALTIME) {
			scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, ule_rt_key(ts->pri, scx_bpf_now(), false));
			moved = scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, 0), 0);
		} else {
			db = dq == ULE_Q_TIMESHARE ? ule_insert_bucket(ts->pri, dtdq->idx, dtdq->ridx, false) : 0;
			moved = scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, ule_dsq(dst, dq, db), 0);
		}
		if (!moved) {
			stat_inc(STAT_ULE_MOVE_LOST);
			continue;
		}
		account_task(p, tctx, dst);
		if (!m->to_local) {
			if (dq == ULE_Q_TIMESHARE)
				ule_mark_bucket(dtdq, db);
			/* tdq_notify: an IPI only when the thread may preempt dst's. */
			if (dtdq->curr_pri >= PRI_MIN_IDLE) {
				scx_bpf_kick_cpu(dst, SCX_KICK_IDLE);
			} else if (ule_shouldpreempt(ts->pri, dtdq->curr_pri, true, preempt_thresh)) {
				dtdq->switch_req = ULE_SW_PREEMPT;
				scx_bpf_kick_cpu(dst, SCX_KICK_PREEMPT);
			}
		}
		return 1;
	}
	return 0;
}


/*
 * tdq_move: move one queued thread from src to dst, searched as tdq_steal
 * does: the realtime queue (runq_steal: the first thread dst may run), the
 * calendar from ridx (runq_steal_from: the same, but src keeps the thread it
 * runs next unless no other will do), then the idle queue. Returns 1 if a
 * thread moved. Nothing is counted until a move has landed. Looks at
 * ULE_MOVE_SCAN queued threads at most: a queue of threads pinned to src
 * (figure 6's first seconds) is not walked whole at every attempt.
 */
__hidden __noinline int ule_move_one(s32 src, s32 dst, u32 to_local, u32 kind)
{
	struct ule_move_ctx *m;
	struct ule_tdq *stdq = ule_tdq(src);
	u32 i, b, zero = 0, looked;
	int ret;

	if (!stdq || kind >= NR_COSTS || !(m = bpf_map_lookup_elem(&ule_move_scratch, &zero)))
		return 0;
	m->src = src;
	m->dst = dst;
	m->to_local = to_local;
	m->kind = kind;
	m->looked = 0;
	m->skip_first = 1;
	m->first_pid = -1;
	ret = ule_move_from(ULE_Q_REALTIME, 0, ULE_MOVE_ANY);
	bpf_for(i, 0, RQ_NQS) {
		if (ret)
			break;
		b = (stdq->ridx + i) % RQ_NQS;
		if (ule_bucket_maybe(src, stdq, b))
			ret = ule_move_from(ULE_Q_TIMESHARE, b, ULE_MOVE_SKIP_FIRST);
	}
	if (!ret && m->first_pid >= 0)
		ret = ule_move_from(ULE_Q_TIMESHARE, m->first_bucket, ULE_MOVE_ONLY_FIRST);
	if (!ret)
		ret = ule_move_from(ULE_Q_IDLE, 0, ULE_MOVE_ANY);
	looked = m->looked;
	cost_visit(kind, looked > ULE_MOVE_SCAN ? ULE_MOVE_SCAN : looked);
	return ret > 0;
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
 * other LLC of its node, then the busiest LLC of the machine.
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
			src = ule_highest_in(cpu, core_first[cpu_idx(cpu)], core_nr[cpu_idx(cpu)], steal_thresh);
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
 * sched_balance_group over the machine, by the balancer timer. FreeBSD
 * repeats: the most loaded CPU not yet used gives one queued thread to the
 * least loaded one with fewer threads (so CPUs with k+1 and k threads trade
 * one at every pass: threads that don't divide evenly rotate); a receiver
 * that may run none of its threads is skipped for that donor; a CPU gives or
 * gets one thread per pass. FreeBSD searches every CPU for each pair (N^2 per pass);
 * here the CPUs are sorted once by thread count (heapsort, N log N) and
 * paired from both ends, so a pass costs N log N plus ULE_BAL_TRIES
 * receivers per donor. The counts are those of the pass's start.
 */
__hidden __noinline int ule_balance_pass(void)
{
	struct ule_balance_scratch *b;
	u32 zero = 0, i, round, k, h, j, end;
	u64 hload, lload, tmp;

	if (!(b = bpf_map_lookup_elem(&ule_bal_scratch, &zero)))
		return 0;
	stat_inc(STAT_ULE_BAL_PASS);
	b->n = 0;
	bpf_for(i, 0, nr_cpus) {
		s32 cpu = topo_cpu(i);

		b->key[b->n & BAL_M] = ((u64)ule_load(cpu) << 32) | bpf_get_prandom_u32();
		b->cpu[b->n & BAL_M] = cpu;
		b->used[b->n & BAL_M] = 0;
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

	/* Donors from the top, receivers from the bottom. */
	b->lo = 0;
	b->moves = 0;
	bpf_for(round, 0, b->n) {
		h = (b->n - 1 - round) & BAL_M;
		if (h <= b->lo)
			break;
		if (b->used[h])
			continue;
		hload = b->key[h] >> 32;
		if (hload < 2)
			break;			/* nobody has a thread to spare */
		cost_visit(COST_BALANCE, 1);
		if (ule_transferable(b->cpu[h]) <= 0)
			continue;
		b->moved = 0;
		b->anylow = 1;
		b->tries = 0;
		bpf_for(j, b->lo, h) {
			if (b->used[j & BAL_M])
				continue;
			lload = b->key[j & BAL_M] >> 32;
			if (!ule_balance_pair_ok(hload, lload) || b->tries >= ULE_BAL_TRIES)
				break;		/* sorted: nobody further up is low enough */
			b->tries++;
			cost_visit(COST_BALANCE, 1);
			if (ule_move_one(b->cpu[h], b->cpu[j & BAL_M], 0, COST_BALANCE)) {
				b->used[j & BAL_M] = 1;
				b->used[h] = 1;
				b->moves++;
				b->moved = 1;
				stat_inc(STAT_ULE_BAL_MOVE);
				if (hload == lload + 1)
					stat_inc(STAT_ULE_BAL_ROTATE);
				break;
			}
			b->anylow = 0;	/* may not run any of h's threads: the next receiver */
		}
		if (!b->moved && b->anylow)
			break;			/* nobody has fewer threads than the donor: balanced */
		bpf_for(j, b->lo, h) {
			if (!b->used[j & BAL_M])
				break;
			b->lo = j + 1;
		}
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
 * Arm the balancer timer on the balancer CPU, the first time that CPU
 * passes here: BPF_F_TIMER_CPU_PIN keeps it there, as FreeBSD runs the
 * balancer on CPU 0 (ops.init may run on any CPU).
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
	bpf_timer_start(&t->timer, (u64)balance_interval_ms * 1000000ULL, BPF_F_TIMER_CPU_PIN);
}


/* The balancer's timer, set up by ule_init and armed later on its CPU. */
__hidden s32 ule_balancer_init(void)
{
	struct ule_timer *t;
	u32 zero = 0;
	s32 ret;

	if (!(t = bpf_map_lookup_elem(&ule_timers, &zero)))
		return -ENOENT;
	ret = bpf_timer_init(&t->timer, &ule_timers, CLOCK_MONOTONIC);
	if (ret)
		return ret;
	return bpf_timer_set_callback(&t->timer, ule_balance_timer_fn);
}
