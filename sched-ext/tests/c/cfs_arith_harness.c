// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host harness for bpf/scheduler/policy/cfs_arith.h (built by tests/cfs_arith.rs with clang):
 * reads one query per line and prints the answer of the very function the
 * BPF program uses:
 *   imb DOM_LOAD DOM_CPUS LOCAL_LOAD LOCAL_CPUS LOCAL_TASKS BUSIEST_LOAD BUSIEST_CPUS BUSIEST_TASKS
 *   -> "IMBALANCE SMALL_FIX": a busy CPU's pass with no imbalance_pct margin
 *      (find_busiest_group's tests, then calculate_imbalance)
 *   fbg IDLE_TYPE PCT DOM_LOAD DOM_CPUS LOCAL_LOAD LOCAL_CPUS LOCAL_TASKS LOCAL_IDLE
 *       BUSIEST_LOAD BUSIEST_CPUS BUSIEST_TASKS BUSIEST_IDLE -> 1 (imbalanced) or 0
 *   busier A_TASKS A_LOAD A_CPUS B_TASKS B_LOAD B_CPUS -> 1 if group A beats B
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
	unsigned dn, ln, lt, bn, bt, li, bi, type, pct;
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
			bool fix = false;
			u64 imb = cfs_fbg_imbalanced(&g, CFS_ARITH_NOT_IDLE, 100) ? cfs_calc_imbalance(&g, &fix) : 0;

			printf("%llu %d\n", (unsigned long long)imb, fix);
		} else if (!strcmp(op, "fbg") &&
			   scanf("%u %u %llu %u %llu %u %u %u %llu %u %u %u", &type, &pct, &dl, &dn, &ll, &ln, &lt, &li,
				 &bl, &bn, &bt, &bi) == 12) {
			struct cfs_lb_groups g = {
				.dom_load = dl, .dom_nr = dn,
				.local_load = ll, .local_nr = ln, .local_tasks = lt, .local_idle = li,
				.busiest_load = bl, .busiest_nr = bn, .busiest_tasks = bt, .busiest_idle = bi,
			};

			printf("%d\n", cfs_fbg_imbalanced(&g, type, pct));
		} else if (!strcmp(op, "busier") && scanf("%u %llu %u %u %llu %u", &lt, &ll, &ln, &bt, &bl, &bn) == 6) {
			printf("%d\n", cfs_group_busier(lt, ll, ln, bt, bl, bn));
		} else {
			printf("bad query\n");
			return 1;
		}
	}
	return 0;
}
