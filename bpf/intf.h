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
	MAX_CPUS		= 512,	/* size of per-CPU tables */
	SHARED_DSQ		= 0,	/* the vtime policy's single queue */
};

/* Scheduling policies; --policy picks one at load time. */
enum policy {
	POLICY_VTIME		= 0,	/* one global weighted-vtime queue */
};

/* Per-CPU event counters, read by --stats. */
enum stat_idx {
	STAT_ENQUEUE,		/* ops.enqueue calls */
	STAT_DISPATCH,		/* ops.dispatch calls */
	STAT_DSQ_MOVE,		/* tasks moved from a queue to a CPU in dispatch */
	STAT_IDLE_PICK,		/* wakeups sent straight to an idle CPU */
	STAT_KICK_IDLE,		/* idle CPUs kicked at enqueue */
	NR_BATTLE_STATS,
};

#endif /* __SCX_BATTLE_INTF_H */
