/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types and constants shared by the BPF scheduler and its Rust loader.
 * bindgen turns this file into sched-ext's bpf_intf.rs; keep it plain C.
 */
#ifndef __SCX_BATTLE_INTF_H
#define __SCX_BATTLE_INTF_H

#ifndef __VMLINUX_H__
typedef unsigned int u32;
typedef unsigned long long u64;
#endif

enum consts {
	MAX_CPUS		= 512,		/* size of per-CPU tables */
	SHARED_DSQ		= 0,		/* the vtime policy's single queue */
	CPU_DSQ_BASE		= 1 << 16,	/* per-CPU queue of CPU c: CPU_DSQ_BASE + c */
	NICE_0_LOAD		= 1024,		/* Linux's weight of a nice-0 task */
};

/* Scheduling-domain levels, bottom-up, as Linux builds them. */
enum dom_level {
	DOM_SMT,		/* hardware threads of one core */
	DOM_LLC,		/* cores sharing a last-level cache */
	DOM_NODE,		/* one NUMA node */
	DOM_ALL,		/* the whole machine */
	NR_DOM_LEVELS,
};

/* Scheduling policies; --policy picks one at load time. */
enum policy {
	POLICY_VTIME		= 0,	/* one global weighted-vtime queue */
	POLICY_CFS		= 1,	/* Linux CFS: per-CPU vruntime queues, load balancing */
};

/* Per-CPU event counters, read by --stats. */
enum stat_idx {
	STAT_ENQUEUE,		/* ops.enqueue calls */
	STAT_DISPATCH,		/* ops.dispatch calls */
	STAT_DSQ_MOVE,		/* tasks moved from a queue to a CPU in dispatch */
	STAT_IDLE_PICK,		/* wakeups sent straight to an idle CPU */
	STAT_KICK_IDLE,		/* idle CPUs kicked at enqueue */
	STAT_KICK_PREEMPT,	/* wakeups that preempted the running task */
	STAT_LB_ATTEMPT,	/* load-balance passes over a domain */
	STAT_LB_PERIODIC,	/* ... of which periodic */
	STAT_LB_NEWIDLE,	/* ... of which by a CPU that went idle */
	STAT_LB_BALANCED,	/* nothing to do: no busier group */
	STAT_LB_BELOW_PCT,	/* nothing to do: imbalance below imbalance_pct */
	STAT_LB_NO_TASK,	/* imbalanced, but no queued task could move */
	STAT_LB_HOT_SKIP,	/* tasks skipped as cache-hot */
	STAT_LB_SUCCESS,	/* passes that moved at least one task */
	STAT_MIGRATE_SMT,	/* tasks moved by balancing, per domain level */
	STAT_MIGRATE_LLC,
	STAT_MIGRATE_NODE,
	STAT_MIGRATE_ALL,
	NR_BATTLE_STATS,
};

/* Per-CPU state every policy can read for any CPU. */
struct cpu_ctx {
	u64	load;			/* sum of Linux weights of tasks on this CPU */
	u32	nr_running;		/* tasks on this CPU: queued or running */
	u32	pad;
	u64	min_vruntime;		/* CFS: floor of the queue's vruntimes */
	u64	curr_vruntime;		/* CFS: vruntime of the running task */
	u64	last_balance[NR_DOM_LEVELS];	/* ns, last balance pass per level */
	u32	nr_balance_failed[NR_DOM_LEVELS];
};

#endif /* __SCX_BATTLE_INTF_H */
