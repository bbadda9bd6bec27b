// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host harness for bpf/scheduler/policy/ule_arith.h (built by tests/ule_arith.rs with clang):
 * reads one query per line, "<op> <numbers...>", and prints the answer of
 * the very functions the BPF program uses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef int32_t s32;

#include "ule_arith.h"

int main(void)
{
	char op[32];
	unsigned long long a, b, c, d, e;
	long long n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (scanf("%31s", op) == 1) {
		if (!strcmp(op, "update") && scanf("%llu %llu", &a, &b) == 2) {
			u64 r = a, s = b;

			ule_interact_update(&r, &s);
			printf("%llu %llu\n", (unsigned long long)r, (unsigned long long)s);
		} else if (!strcmp(op, "fork") && scanf("%llu %llu", &a, &b) == 2) {
			u64 r = a, s = b;

			ule_interact_fork(&r, &s);
			printf("%llu %llu\n", (unsigned long long)r, (unsigned long long)s);
		} else if (!strcmp(op, "score") && scanf("%llu %llu %llu", &a, &b, &c) == 3) {
			printf("%u\n", ule_interact_score(a, b, c));
		} else if (!strcmp(op, "pri") && scanf("%llu %lld %llu %llu %llu", &a, &n, &b, &c, &d) == 5) {
			printf("%u\n", ule_timeshare_pri(a, n, b, c, d));
		} else if (!strcmp(op, "boost") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%u\n", ule_static_boost(a, b));
		} else if (!strcmp(op, "pctcpu") && scanf("%llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) == 5) {
			u64 t = a, f = b, l = c;

			ule_pctcpu_update(&t, &f, &l, d, e);
			printf("%llu %llu %llu\n", (unsigned long long)t, (unsigned long long)f,
			       (unsigned long long)l);
		} else if (!strcmp(op, "credit") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%llu\n", (unsigned long long)ule_sleep_credit(a, b));
		} else if (!strcmp(op, "slice") && scanf("%lld %llu %llu", &n, &a, &b) == 3) {
			printf("%llu\n", (unsigned long long)ule_tdq_slice(n, a, b));
		} else if (!strcmp(op, "forkslice") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%llu\n", (unsigned long long)ule_fork_slice_used(a, b));
		} else if (!strcmp(op, "ended") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%u\n", ule_slice_ended(a, b));
		} else if (!strcmp(op, "switch") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%u\n", ule_switch_kind(a, b));
		} else if (!strcmp(op, "fresh") && scanf("%llu %llu %llu", &a, &b, &c) == 3) {
			printf("%d\n", ule_switch_fresh(a, b, c));
		} else if (!strcmp(op, "findbit") && scanf("%llu %llu", &a, &b) == 2) {
			printf("%u\n", ule_findbit_from(a, b));
		} else if (!strcmp(op, "bucket") && scanf("%llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
			printf("%u\n", ule_insert_bucket(a, b, c, d));
		} else if (!strcmp(op, "ridx") && scanf("%llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
			printf("%u\n", ule_ridx_after_remove(a, b, c, d));
		} else if (!strcmp(op, "tick") && scanf("%llu %llu %llu", &a, &b, &c) == 3) {
			u32 i = a, r = b;

			ule_calendar_tick(&i, &r, c);
			printf("%u %u\n", i, r);
		} else if (!strcmp(op, "rtkey") && scanf("%llu %llu %llu", &a, &b, &c) == 3) {
			printf("%llu\n", (unsigned long long)ule_rt_key(a, b, c));
		} else if (!strcmp(op, "preempt") && scanf("%llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
			printf("%d\n", ule_shouldpreempt(a, b, c, d));
		} else if (!strcmp(op, "pair") && scanf("%lld %llu", &n, &a) == 2) {
			printf("%d\n", ule_balance_pair_ok(n, (s32)a));
		} else {
			printf("error: bad query %s\n", op);
			return 1;
		}
	}
	return 0;
}
