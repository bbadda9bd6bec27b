/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Why a thread changed CPU: the note a scheduler leaves on a task just before
 * it moves it, and that loadgen's recorder reads when the move happens.
 *
 * The scheduler (bpf/scheduler) writes a move_note into its task-storage map
 * `battle_moves` whenever it decides that a task will leave its CPU: the
 * cause, and the CPU it leaves. The move itself comes later or at once
 * (set_task_cpu, where sched_migrate_task fires): at a wakeup right after
 * ops.select_cpu; for a queued task when the CPU whose queue now holds it
 * takes it. The recorder (bpf/recorder) shares the map (loadgen finds it by
 * name when a scheduler of ours is attached), reads the note in its
 * sched_migrate_task program, and clears it: a note explains one move away
 * from the CPU it names. A move without such a note is MOVE_NONE
 * ("unknown"). A note whose move never happened (the task's own CPU ran it
 * first) is dropped when the task next runs on the CPU it names.
 *
 * Why the CPU left and not the one reached: two idle CPUs may race to steal
 * the same thread; each notes before its move, the loser's move fails. The
 * note then names the loser's CPU as the destination, but the thread left
 * the CPU both named, for the cause both had.
 *
 * Under any other scheduler the recorder has a map of its own that nobody
 * writes: its migrations are "not attributed".
 *
 * Included by the scheduler's intf.h and the recorder's recorder_intf.h, so
 * both sides and their Rust bindings agree on the numbers; the names are
 * rundata's MoveCause.
 */
#ifndef __BATTLE_MOVE_NOTE_H
#define __BATTLE_MOVE_NOTE_H

enum move_cause {
	MOVE_NONE	= 0,	/* no note: unknown */
	MOVE_WAKEUP	= 1,	/* wakeup placement (ops.select_cpu chose another CPU) */
	MOVE_BALANCE	= 2,	/* the periodic balancer (CFS's load_balance at its interval, ULE's sched_balance) */
	MOVE_NEWIDLE	= 3,	/* CFS's newly-idle pull */
	MOVE_NOHZ	= 4,	/* CFS's NOHZ idle balance (an idle CPU woken to balance) */
	MOVE_STEAL	= 5,	/* ULE's idle steal (tdq_idled, and a CPU kicked to steal) */
	MOVE_AFFINITY	= 6,	/* the task's CPU left its allowed CPUs; the kernel or the queue moves it */
	MOVE_NR,
};

/* The task-storage value: one note per task. */
struct move_note {
	u32	cause;		/* enum move_cause; MOVE_NONE once the recorder used it */
	s32	from;		/* the CPU the task leaves (its CPU when the move was decided) */
};

#endif /* __BATTLE_MOVE_NOTE_H */
