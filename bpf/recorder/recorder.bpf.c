/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * loadgen's recorder: which CPU each workload thread belongs to, counted per
 * CPU, kept exact by the scheduler's own tracepoints instead of by polling
 * /proc. It works under any scheduler, the kernel's own or a sched_ext one.
 *
 * A thread is tracked from its creation (sched_wakeup_new, once userspace
 * sets `tracking`) while its process is the workload's, until it exits
 * (sched_process_exit). It belongs to task_cpu(): the CPU it runs on, or
 * whose run queue it waits on, or where it last ran while it sleeps. Every
 * change of task_cpu() goes through sched_migrate_task, where the counts move
 * and the migration goes to the ring buffer, with the cause the scheduler
 * noted for it (move_note.h) when the scheduler is scx_battle.
 *
 * Userspace samples cpu_threads[] through the mmap of .bss. Updates bump
 * `in_flight` while they run and `seq` when they finish, so a reader that
 * sees in_flight == 0 and the same seq before and after its copy has an
 * exact snapshot, in which the counts add up to `live`.
 *
 * Events are not signalled one by one: userspace drains the ring buffer
 * every few tens of ms, so recording costs no extra wakeups.
 *
 * Latency: for threads userspace marks, the time from sched_wakeup to the
 * sched_switch that runs them goes to the ring buffer.
 *
 * Waits: for every tracked thread, the time it is runnable without running,
 * from a wakeup (or from being switched out still runnable: preempted, slice
 * over, yield) to the sched_switch that runs it; its total, count and the
 * longest, in the thread's map entry. A wait still open is runnable_at.
 * The longest wait since time 0 (set by userspace once every worker has
 * run) is kept apart, so the start (threads created one by one, each waiting
 * for its first turn) and the run after it can be told apart.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "recorder_intf.h"

char _license[] SEC("license") = "GPL";

const volatile u32 target_tgid;		/* the workload process */

u32 tracking;				/* set by userspace: adopt new threads */
u64 seq;				/* completed count updates */
s64 in_flight;				/* count updates under way */
u32 live;				/* threads tracked now */
u32 cpu_threads[REC_MAX_CPUS];		/* threads that belong to each CPU */
u64 lost_events;			/* ring buffer full */
u64 untracked_cpu;			/* a CPU beyond REC_MAX_CPUS was seen */
u64 t0_ns;				/* set by userspace: the run's time 0 (0: not yet) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REC_MAX_THREADS);
	__type(key, u32);
	__type(value, struct rec_thread);
} threads SEC(".maps");

/*
 * Why threads move (move_note.h): scx_battle's map of the same name when
 * loadgen found it to share (Recorder::start), else this object's own,
 * which nobody writes. The names must match: libbpf renames a map to the
 * one whose fd it reuses, and the skeleton then looks for it by name.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct move_note);
} battle_moves SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REC_RINGBUF_BYTES);
} events SEC(".maps");

static __always_inline bool time_after_or_eq(u64 a, u64 b)
{
	return (s64)(a - b) >= 0;
}

static __always_inline bool cpu_ok(s32 cpu)
{
	if (cpu >= 0 && cpu < REC_MAX_CPUS)
		return true;
	__sync_fetch_and_add(&untracked_cpu, 1);
	return false;
}

/* Move one thread between CPU counts (from or to may be -1: none). */
static __always_inline void count_move(s32 from, s32 to)
{
	__sync_fetch_and_add(&in_flight, 1);
	if (from >= 0 && cpu_ok(from))
		__sync_fetch_and_sub(&cpu_threads[from], 1);
	if (to >= 0 && cpu_ok(to))
		__sync_fetch_and_add(&cpu_threads[to], 1);
	if (from < 0)
		__sync_fetch_and_add(&live, 1);
	if (to < 0)
		__sync_fetch_and_sub(&live, 1);
	__sync_fetch_and_add(&seq, 1);
	__sync_fetch_and_sub(&in_flight, 1);
}

static __always_inline void emit(u32 kind, u32 tid, s32 from, s32 to, u64 value)
{
	struct rec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->ts = bpf_ktime_get_ns();
	e->value = value;
	e->kind = kind;
	e->tid = tid;
	e->from_cpu = from;
	e->to_cpu = to;
	/* Userspace drains on a timer: waking it per event would cost more than the event. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rec_wakeup_new, struct task_struct *p)
{
	struct rec_thread t = { .cpu = p->thread_info.cpu, .runnable_at = bpf_ktime_get_ns() };
	u32 tid = p->pid;

	struct rec_thread *old;

	if (!tracking || p->tgid != target_tgid)
		return 0;
	/* A reused tid replaces its exited predecessor, never a live thread. */
	old = bpf_map_lookup_elem(&threads, &tid);
	if (old && old->cpu >= 0)
		return 0;
	if (bpf_map_update_elem(&threads, &tid, &t, BPF_ANY))
		return 0;
	count_move(-1, t.cpu);
	return 0;
}

/* The cause the scheduler noted for this move (MOVE_NONE if none); the note is used up. */
static __always_inline u32 move_cause_of(struct task_struct *p, s32 from)
{
	struct move_note *n = bpf_task_storage_get(&battle_moves, p, 0, 0);
	u32 cause = MOVE_NONE;

	if (!n)
		return MOVE_NONE;
	if (n->cause < MOVE_NR && n->from == from)
		cause = n->cause;
	n->cause = MOVE_NONE;
	return cause;
}

/*
 * A thread starts running on the CPU a note says it leaves: that move did
 * not happen (its CPU took it first, or a stealer noted it after another
 * had moved it here). The note must not explain a later move.
 */
static __always_inline void forget_stale_note(struct task_struct *p)
{
	struct move_note *n = bpf_task_storage_get(&battle_moves, p, 0, 0);

	if (n && n->cause != MOVE_NONE && n->from == (s32)bpf_get_smp_processor_id())
		n->cause = MOVE_NONE;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(rec_migrate, struct task_struct *p, int dest_cpu)
{
	u32 tid = p->pid;
	struct rec_thread *t = bpf_map_lookup_elem(&threads, &tid);
	s32 from;

	/* An exited thread (cpu -1) may still move once on its way out. */
	if (!t || t->cpu < 0 || t->cpu == dest_cpu)
		return 0;
	from = t->cpu;
	t->cpu = dest_cpu;
	t->migrations++;
	count_move(from, dest_cpu);
	emit(REC_EV_MIGRATE, tid, from, dest_cpu, move_cause_of(p, from));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rec_exit, struct task_struct *p)
{
	u32 tid = p->pid;
	struct rec_thread *t = bpf_map_lookup_elem(&threads, &tid);

	if (!t)
		return 0;
	count_move(t->cpu, -1);
	/* Keep the entry: userspace reads each thread's migrations at the end. */
	t->cpu = -1;
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rec_wakeup, struct task_struct *p)
{
	u32 tid = p->pid;
	struct rec_thread *t = bpf_map_lookup_elem(&threads, &tid);

	u64 now;

	if (!t || t->cpu < 0)
		return 0;
	now = bpf_ktime_get_ns();
	if (t->track_latency)
		t->woken_at = now;
	if (!t->runnable_at)
		t->runnable_at = now;
	return 0;
}

/* A thread switched out still runnable starts waiting; one switched in stops. */
static __always_inline void wait_end(struct rec_thread *t, u64 now)
{
	u64 d;

	if (!t->runnable_at || time_after_or_eq(t->runnable_at, now))
		goto out;
	d = now - t->runnable_at;
	t->wait_total_ns += d;
	t->waits++;
	if (d > t->wait_max_ns)
		t->wait_max_ns = d;
	if (t0_ns && time_after_or_eq(now, t0_ns)) {
		/* Only the part after time 0. */
		if (!time_after_or_eq(t->runnable_at, t0_ns))
			d = now - t0_ns;
		if (d > t->wait_max_t0_ns)
			t->wait_max_t0_ns = d;
	}
out:
	t->runnable_at = 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rec_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u32 tid;
	struct rec_thread *t;
	u64 now = 0;

	/* Still runnable: preempted (even while setting up a sleep), or TASK_RUNNING. */
	if (prev->tgid == target_tgid && (preempt || !prev_state)) {
		tid = prev->pid;
		t = bpf_map_lookup_elem(&threads, &tid);
		if (t && t->cpu >= 0) {
			now = bpf_ktime_get_ns();
			t->runnable_at = now;
		}
	}
	if (next->tgid != target_tgid)
		return 0;
	tid = next->pid;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		return 0;
	if (!now)
		now = bpf_ktime_get_ns();
	wait_end(t, now);
	forget_stale_note(next);
	if (!t->woken_at)
		return 0;
	emit(REC_EV_WAKE_LATENCY, tid, -1, bpf_get_smp_processor_id(), now - t->woken_at);
	t->woken_at = 0;
	return 0;
}
