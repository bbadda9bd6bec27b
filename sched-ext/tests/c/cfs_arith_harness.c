// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host harness for bpf/scheduler/policy/cfs_arith.h (built by tests/cfs_arith.rs with clang):
 * reads one query per line and prints the answer of the very function the
 * BPF program uses:
 *   imb DOM_LOAD DOM_CPUS LOCAL_LOAD LOCAL_CPUS LOCAL_TASKS BUSIEST_LOAD BUSIEST_CPUS BUSIEST_TASKS
 *   -> "IMBALANCE SMALL_FIX"
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;
typedef uint32_t u32;

#include "cfs_arith.h"

int main(void)
{
	unsigned long long dl, ll, bl;
	unsigned dn, ln, lt, bn, bt;
	char op[32];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (scanf("%31s", op) == 1) {
		if (!strcmp(op, "imb") &&
		    scanf("%llu %u %llu %u %u %llu %u %u", &dl, &dn, &ll, &ln, &lt, &bl, &bn, &bt) == 8) {
			struct cfs_lb_groups g = {
				.dom_load = dl, .dom_nr = dn,
				.local_load = ll, .local_nr = ln, .local_tasks = lt,
				.busiest_load = bl, .busiest_nr = bn, .busiest_tasks = bt,
			};
			bool fix;
			u64 imb = cfs_calc_imbalance(&g, &fix);

			printf("%llu %d\n", (unsigned long long)imb, fix);
		} else {
			printf("bad query\n");
			return 1;
		}
	}
	return 0;
}
