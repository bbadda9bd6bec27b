/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types shared by the loadgen recorder (recorder.bpf.c) and loadgen's Rust
 * side; bindgen turns this file into loadgen's recorder_intf.rs.
 */
#ifndef __RECORDER_INTF_H
#define __RECORDER_INTF_H

#ifndef __VMLINUX_H__
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;
#endif

#include "move_note.h"

enum recorder_consts {
	REC_MAX_CPUS		= 1024,		/* size of the per-CPU count table (= MAX_CPUS of intf.h) */
	REC_MAX_THREADS		= 65536,	/* workload threads tracked at once */
	REC_RINGBUF_BYTES	= 16 << 20,	/* event ring buffer size */
};

enum rec_event_kind {
	REC_EV_MIGRATE		= 1,	/* a tracked thread moved to another CPU */
	REC_EV_WAKE_LATENCY	= 2,	/* a latency-tracked thread ran after a wakeup */
};

/* One record in the ring buffer. */
struct rec_event {
	u64	ts;		/* ns, CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	u64	value;		/* WAKE_LATENCY: ns from wakeup to running; MIGRATE: enum move_cause */
	u32	kind;		/* enum rec_event_kind */
	u32	tid;
	s32	from_cpu;	/* MIGRATE */
	s32	to_cpu;		/* MIGRATE, and the CPU a WAKE_LATENCY run started on */
};

/* Per-thread state, keyed by tid. */
struct rec_thread {
	s32	cpu;		/* the CPU the thread belongs to (task_cpu) */
	u32	migrations;
	u32	track_latency;	/* set by userspace for interactive threads */
	u32	waits;		/* times it waited for a CPU (runnable, not running) */
	u64	woken_at;	/* ns, last wakeup not yet followed by a run */
	u64	runnable_at;	/* ns, since when it waits for a CPU; 0 while it runs or sleeps */
	u64	wait_total_ns;	/* time spent waiting for a CPU */
	u64	wait_max_ns;	/* the longest single wait */
	u64	wait_max_t0_ns;	/* the longest since time 0 (t0_ns), counted from then */
};

#endif /* __RECORDER_INTF_H */
