/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ULE policy: FreeBSD's ULE scheduler (sys/kern/sched_ule.c) on
 * sched_ext, with FreeBSD's names for its constants and knobs. This unit is
 * its design and its init (the queues); the code is in
 * ule_prio.bpf.c, ule_runq.bpf.c and ule_balance.bpf.c, their shared
 * declarations in ule.bpf.h, whose knobs and maps main.bpf.c defines.
 *
 * Names: every function is ule_*, with the FreeBSD function it stands for
 * in its comment; constants, knobs and struct fields keep FreeBSD's names.
 * The pure arithmetic (scores, priorities, slices, calendar indices,
 * preemption and pairing rules) lives in ule_arith.h, which the Rust tests
 * compile for the host and check (sched-ext/tests/ule_arith.rs).
 *
 * 1. Interactivity. Every thread keeps a history of its run time and its
 *    voluntary sleep time, capped at SCHED_SLP_RUN_MAX (5 s) and cut to 4/5
 *    when it overflows; a sleep is credited as the hz ticks it crossed. The
 *    score, 0..100, is low for threads that mostly sleep and high for
 *    threads that mostly run; a thread whose score plus nice is below
 *    `interact` (30) is interactive. A child starts with its parent's
 *    history scaled down to SCHED_SLP_RUN_FORK and its parent's %CPU
 *    window; the parent pays a stathz tick for the fork; an exiting child
 *    charges its run time to its parent.
 *
 * 2. Queues. Every CPU has three queues, searched in order. Interactive
 *    threads wait in the realtime queue, RQ_PPQ (4) priorities per FIFO.
 *    Batch threads wait in the timeshare calendar: RQ_NQS FIFO buckets used
 *    as a circle, a thread being inserted (recent CPU use + nice) buckets
 *    after the insertion index `idx` and the CPU draining from the removal
 *    index `ridx`; `idx` moves one bucket per stathz tick once `ridx` has
 *    caught up, and `ridx` passes a drained bucket only while it trails
 *    `idx`, so a batch thread of poor priority is reached in the end.
 *    Idle-class threads (SCHED_IDLE) wait in the idle queue. Interactive
 *    threads always run first: batch threads can starve, as on FreeBSD.
 *    A batch thread that wakes from a sleep waits at static_boost
 *    (PRI_MIN_BATCH, the best batch priority: the insertion index's bucket,
 *    ahead of every batch thread queued after it) until it runs, as sched_sleep raises a thread sleeping in
 *    the kernel and sched_userret drops it on the way back to user mode.
 *
 * 3. Slices. ts_slice counts what a thread used of its slice: sched_slice
 *    (~94 ms) while the CPU has at most two threads, divided by the count
 *    beyond one from there on, never below sched_slice_min (~16 ms),
 *    compared at every tick with the CPU's current count. A new thread
 *    starts with all but sched_slice_min used; a wakeup starts afresh. A
 *    thread preempted (SW_PREEMPT: by sched_shouldpreempt's rule, on its
 *    CPU or by IPI) goes back to the head of its queue with the rest of its
 *    slice (SRQ_PREEMPTED); one only asked to reschedule (TDF_NEEDRESCHED:
 *    a better thread woke on its CPU) goes back to its normal place, also
 *    with the rest of its slice; one displaced by a higher sched class (an
 *    RT thread) resumes first, with the rest of its slice. Only a used-up
 *    slice or a wakeup starts a fresh one.
 *
 * 4. Placement and balancing count threads, not load. A waking or new
 *    thread goes through sched_pickcpu: its previous CPU if that is idle and
 *    the thread ran there within `affinity`, else the least loaded idle CPU
 *    of its LLC, else the least loaded CPU running worse priorities, else
 *    the least loaded CPU, walking the topology tree by thread count. Only
 *    CPU 0 balances periodically, every 0.5 to 1.5 balance_interval: each
 *    pass pairs the most loaded CPU with the least loaded CPU down the tree
 *    (the node with the fewest threads, its LLC with the fewest, its CPU
 *    with the fewest) among those holding fewer threads, and moves one
 *    queued thread; a CPU gives or gets one thread per pass, so CPUs with
 *    k+1 and k threads trade one at every pass, and the threads of one
 *    crowded CPU go to the other node until the nodes' totals meet. A CPU
 *    with nothing to run steals one queued thread from a CPU with at least
 *    steal_thresh threads (within its SMT core, one queued thread is enough,
 *    as in 11.x: the same as steal_thresh's default 2, a running thread and
 *    a queued one, and less only when steal_thresh is raised), its core
 *    first, then its LLC, node, machine; the
 *    victim keeps the thread it runs next unless it is its only one. A moved
 *    thread preempts its new CPU's only if sched_shouldpreempt allows it
 *    (tdq_notify). Running threads never move.
 *
 * 5. Starvation guard (sched_ext only). The kernel's watchdog ends a
 *    scheduler that leaves a runnable thread waiting for its timeout. ULE
 *    lets batch threads starve behind interactive ones, and new threads
 *    inherit their parent's interactivity: 512 spinners forked by a sleepy
 *    parent stay interactive for their first ~0.3 s of run time each, and
 *    the ones already demoted to batch wait until every other one is. So a
 *    thread that has waited ule_starve_ns (half the watchdog timeout by
 *    default; the loader sets ULE's to the kernel's maximum, 30 s) runs
 *    next, oldest first, until the next tick (then it goes back to its
 *    place); the stat ule_starve counts how often ULE's own
 *    order would have starved one. It looks at the FIFO queues' heads and
 *    at a window of the realtime queue that moves along it look by look
 *    (ule_rescue_starved), not at every queued thread.
 *
 * 6. Deviations from sched_ule.c, each with why:
 *    - Run time is charged when a thread stops, its slice ends or ops.dispatch
 *      keeps it, not at every stathz tick (sched_ext reports it then); the
 *      slice test runs at the kernel's ticks (HZ), not stathz's.
 *    - tdq_lowpri is the running thread's priority, not the best of the
 *      running and queued ones (keeping it exact would mean peeking at every
 *      queue at every change).
 *    - The balancer is a BPF timer pinned to CPU 0 (the first online CPU),
 *      outside any run-queue lock, as FreeBSD runs it from CPU 0's clock
 *      interrupt; it is armed the first time CPU 0 dispatches. Its donors
 *      come in the order of the pass start's thread counts, the most loaded
 *      CPU machine-wide first (FreeBSD's sched_highest walks the tree anew
 *      for each: the most loaded node's most loaded CPU); receivers are
 *      found down the tree with live counts, as FreeBSD's. A moved thread
 *      preempts its receiver only if sched_shouldpreempt allows it; 11.x's
 *      sched_balance_pair sends IPI_PREEMPT, whose handler switches only to
 *      a better thread too.
 *    - A CPU's indices are moved only by that CPU: when a stealer empties
 *      the removal bucket, ridx passes on at the owner's next dispatch, as
 *      runq_remove_idx would have moved it at the steal.
 *    - Idle CPUs do not poll (sched_idletd): a CPU that queues a thread
 *      while holding steal_thresh wakes an idle CPU to steal it.
 *    - A yielding thread (sched_yield) starts a fresh slice; FreeBSD keeps
 *      its ts_slice.
 *    - static_boost lasts until the thread runs: the kernel part of its run
 *      (before it returns to user mode) is taken as nil, so the CPU's
 *      priority while it runs is already its own. FreeBSD's static_boost = 1
 *      (the priority the sleep asked for) is refused: sched_ext does not see
 *      it.
 *    - A waking or new thread notifies its CPU at ops.enqueue, as sched_add
 *      does; a thread requeued by an affinity change does not (FreeBSD's
 *      sched_affinity leaves it queued where it is allowed, or re-adds it and
 *      notifies). So each tick checks whether an interactive thread waits
 *      behind the running batch one and reschedules it as TDF_NEEDRESCHED
 *      would (counter ule_tick_resched): the same decision, up to a tick late.
 *    - The starvation guard (5), which FreeBSD does not have.
 *    - No priority propagation (lent priorities, turnstiles) and no
 *      interrupt threads: sched_ext schedules user and kernel tasks alike.
 *
 * Cost (FreeBSD looks at every CPU in sched_lowest and sched_highest, and
 * at every pair in a balancer pass; on sched_ext those run with a run-queue
 * lock held, so they are bounded here):
 *  - sched_lowest walks the tree with per-node and per-LLC thread counts
 *    (shared.bpf.h) and looks at the CPUs of one LLC; an LLC with no
 *    acceptable CPU is set aside and the next least loaded one tried,
 *    ULE_LOWEST_TRIES times at most.
 *  - sched_highest for stealing looks at the core, the LLC, then the
 *    busiest LLC of the node and of the machine.
 *  - a balancer pass sorts the CPUs once by thread count (N log N) for the
 *    donors' order; each donor's receiver is searched down the tree (nodes,
 *    the chosen node's LLCs, one LLC's CPUs), ULE_BAL_LLC_TRIES LLCs and
 *    ULE_BAL_TRIES receivers per donor at most.
 *  - a move looks at ULE_MOVE_SCAN queued threads at most for one the
 *    receiver may run.
 *  - the starvation guard looks at queue heads and the tail of the
 *    realtime queue only.
 *  - the realtime queue's FIFO order comes from the clock, not a counter
 *    every CPU increments.
 */
#include <scx/common.bpf.h>
#include "../intf.h"
#include "../shared.bpf.h"
#include "ule.bpf.h"

/*
 * One realtime queue, RQ_NQS calendar buckets and one idle queue per online
 * CPU, on the CPU's node. (The balancer's timer is the balancer
 * component's, set up when CPU 0 first passes: ule_arm_balancer.)
 */
__hidden s32 ule_init(void)
{
	struct ule_tdq *tdq;
	u32 cpu, q;
	s32 ret;

	bpf_for(cpu, 0, nr_cpu_ids) {
		if (cpu >= MAX_CPUS || !cpu_online[cpu_idx(cpu)])
			continue;
		if ((tdq = ule_tdq(cpu)))
			tdq->curr_pri = PRI_MAX_IDLE;
		bpf_for(q, 0, RQ_NQS + 2) {
			ret = scx_bpf_create_dsq(ULE_DSQ_BASE + (u64)cpu * ULE_DSQ_STRIDE + q,
						 cpu_node_id[cpu_idx(cpu)]);
			if (ret)
				return ret;
		}
	}
	return 0;
}
