// SPDX-License-Identifier: GPL-2.0-only
//! CFS's balancing arithmetic (bpf/scheduler/policy/cfs_arith.h, the file the BPF program
//! includes), compiled for the host with clang through tests/c's harness and
//! checked against Linux 4.9's calculate_imbalance and fix_small_imbalance
//! (kernel/sched/fair.c), worked by hand below.

mod common;
use common::Harness;

/// Linux's nice-0 weight and two others (sched_prio_to_weight).
const W0: u64 = 1024;
const W_NICE_M1: u64 = 1277;
const W_NICE_M5: u64 = 3121;
const W_NICE_M10: u64 = 9548;

/// A group: load, CPUs, tasks.
type Group = (u64, u32, u32);

/// calculate_imbalance for a domain of `local`, `busiest` and `others`:
/// (load to move, whether fix_small_imbalance raised it).
fn imbalance(h: &mut Harness, local: Group, busiest: Group, others: &[Group]) -> (u64, bool) {
    let (dl, dn) = others.iter().chain([&local, &busiest]).fold((0, 0), |(l, n), g| (l + g.0, n + g.1));
    let v = h.q(&format!(
        "imb {dl} {dn} {} {} {} {} {} {}",
        local.0, local.1, local.2, busiest.0, busiest.1, busiest.2
    ));
    assert_eq!(v.len(), 2);
    (v[0], v[1] == 1)
}

/// Nice-0 spinners on one CPU.
fn cpu(tasks: u32) -> Group {
    (tasks as u64 * W0, 1, tasks)
}

#[test]
fn a_gap_of_less_than_one_task_still_moves_one() {
    let mut h = Harness::new("cfs_arith");
    // The 2026-11-22 paper run: one CPU of a 16-CPU LLC with 12 spinners
    // beside 15 CPUs with 16. The LLC's average is 15.75 tasks, so the
    // busiest CPU is only 0.25 task above it: detach_tasks' half-weight rule
    // alone moves nothing and the CPU stayed at 12 to the end. Linux's
    // fix_small_imbalance asks for one task: 16 + 1 >= 12 + 2.
    let others = vec![cpu(16); 14];
    assert_eq!(imbalance(&mut h, cpu(12), cpu(16), &others), (W0, true));
    // A large gap needs no fix: an idle CPU beside three with 16 gets 4 tasks' worth.
    assert_eq!(imbalance(&mut h, cpu(0), cpu(16), &[cpu(16), cpu(16)]), (4 * W0, false));
    // Two tasks apart: one task's worth from calculate_imbalance itself.
    assert_eq!(imbalance(&mut h, cpu(15), cpu(17), &[]), (W0, false));
}

#[test]
fn balanced_domains_move_nothing() {
    let mut h = Harness::new("cfs_arith");
    assert_eq!(imbalance(&mut h, cpu(16), cpu(16), &[cpu(16)]), (0, false));
    // The local group is above the domain's average.
    assert_eq!(imbalance(&mut h, cpu(16), cpu(17), &[cpu(10)]), (0, false));
    // The local group is the busier one.
    assert_eq!(imbalance(&mut h, cpu(17), cpu(16), &[]), (0, false));
    // Empty groups (an offline LLC) and an empty domain.
    assert_eq!(imbalance(&mut h, (0, 0, 0), cpu(4), &[]), (0, false));
    assert_eq!(imbalance(&mut h, cpu(0), (0, 1, 0), &[]), (0, false));
}

#[test]
fn one_task_apart_moves_one_as_linux_4_9_does() {
    let mut h = Harness::new("cfs_arith");
    // 1 beside 2: the average is 1.5, so 0.5 task to move; 2 + 1 >= 1 + 2, so
    // fix_small_imbalance asks for a task (imbalance_pct, checked before,
    // and cache hotness make the balancer ping-pong it only now and then).
    assert_eq!(imbalance(&mut h, cpu(1), cpu(2), &[]), (W0, true));
}

#[test]
fn no_task_moves_when_that_widens_the_gap() {
    let mut h = Harness::new("cfs_arith");
    // Three nice-0 tasks beside two nice -1 ones: moving a nice-0 task would
    // leave 2048 against 3578, and no CPU time is gained (capa_move =
    // capa_now), so the pull stays at the computed 259.
    let r = imbalance(&mut h, (2 * W_NICE_M1, 1, 2), (3 * W0, 1, 3), &[]);
    assert_eq!(r, ((3 * W0 - (3 * W0 + 2 * W_NICE_M1) / 2), false));
}

#[test]
fn a_task_moves_to_put_an_idle_cpu_to_use() {
    let mut h = Harness::new("cfs_arith");
    // Groups of 2 CPUs: four nice-0 tasks beside one nice -5 task. The gap is
    // under one task (2048 + 512 < 1560 + 1024), but the local group has an
    // idle CPU: moving a task uses more CPU time (capa_move 6192 > capa_now 5168).
    assert_eq!(imbalance(&mut h, (W_NICE_M5, 2, 1), (4 * W0, 2, 4), &[]), (W0, true));
}

#[test]
fn load_above_capacity_caps_the_pull_of_overloaded_groups() {
    let mut h = Harness::new("cfs_arith");
    // Groups of 2 CPUs with 3 tasks each: nice -10 tasks beside nice-0 ones.
    // Without the cap the pull would be 12786; the busiest group has one task
    // beyond one per CPU, 512 per CPU, so 1024, less than one of its tasks:
    // fix_small_imbalance then asks for one (9548), since they are heavier
    // than the local ones (imbn 1).
    assert_eq!(imbalance(&mut h, (3 * W0, 2, 3), (3 * W_NICE_M10, 2, 3), &[]), (W_NICE_M10, true));
    // With one task per CPU locally the cap does not apply: 12786.
    let (imb, _) = imbalance(&mut h, (2 * W0, 2, 2), (3 * W_NICE_M10, 2, 3), &[]);
    let dom_avg = (2 * W0 + 3 * W_NICE_M10) / 4;
    assert_eq!(imb, ((3 * W_NICE_M10 / 2 - dom_avg) * 2).min((dom_avg - W0) * 2));
}

/// find_busiest_group's tests for a pass of `idle_type` (0 busy, 1 idle, 2
/// newly idle) with `pct`, groups as (load, CPUs, tasks, idle CPUs).
fn fbg(h: &mut Harness, idle_type: u32, pct: u32, local: (u64, u32, u32, u32), busiest: (u64, u32, u32, u32), others: &[Group]) -> bool {
    let (dl, dn) = others.iter().fold((local.0 + busiest.0, local.1 + busiest.1), |(l, n), g| (l + g.0, n + g.1));
    let v = h.one(&format!(
        "fbg {idle_type} {pct} {dl} {dn} {} {} {} {} {} {} {} {}",
        local.0, local.1, local.2, local.3, busiest.0, busiest.1, busiest.2, busiest.3
    ));
    v == 1
}

#[test]
fn the_busiest_group_is_the_overloaded_one_first() {
    let mut h = Harness::new("cfs_arith");
    // update_sd_pick_busiest: group_overloaded beats group_other whatever the
    // loads: 5 nice-0 tasks on 4 CPUs (overloaded) against 2 nice -10 tasks
    // on 4 CPUs (load 19096, far higher, but no task waits).
    assert_eq!(h.one(&format!("busier 5 {} 4 2 {} 4", 5 * W0, 2 * W_NICE_M10)), 1);
    assert_eq!(h.one(&format!("busier 2 {} 4 5 {} 4", 2 * W_NICE_M10, 5 * W0)), 0);
    // Same type: the higher average load (per CPU: groups of 2 and 4 CPUs).
    assert_eq!(h.one(&format!("busier 3 {} 2 5 {} 4", 3 * W0, 5 * W0)), 1);
    assert_eq!(h.one(&format!("busier 1 {} 2 3 {} 4", W0, 3 * W0)), 0);
    // No busiest yet: any group with CPUs; a group without CPUs never.
    assert_eq!(h.one(&format!("busier 1 {} 1 0 0 0", W0)), 1);
    assert_eq!(h.one(&format!("busier 0 0 0 1 {} 1", W0)), 0);
}

#[test]
fn idle_passes_count_idle_cpus_and_busy_ones_use_imbalance_pct() {
    let mut h = Harness::new("cfs_arith");
    // Groups of 4 CPUs, none overloaded: local 1 task (3 idle CPUs), busiest 3
    // tasks (1 idle). A busy CPU's pass: 3072 > 1.25 x 1024 at the NUMA
    // level's 125, so it goes on.
    let (local, busiest) = ((W0, 4, 1, 3), (3 * W0, 4, 3, 1));
    assert!(fbg(&mut h, 0, 125, local, busiest, &[]));
    // An idle CPU's pass instead compares idle CPUs: 3 > 1 + 1, so it goes on;
    // with 2 tasks in the busiest (2 idle CPUs) 3 <= 2 + 1: balanced, though
    // the loads are 2x apart.
    assert!(fbg(&mut h, 1, 125, local, busiest, &[]));
    assert!(!fbg(&mut h, 1, 125, local, (2 * W0, 4, 2, 2), &[]));
    assert!(fbg(&mut h, 0, 125, local, (2 * W0, 4, 2, 2), &[]));
    // ... unless the busiest group is overloaded: 2 idle CPUs locally against
    // 1 in a busiest group of 5 tasks on 4 CPUs goes on; with 4 tasks there
    // (not overloaded) it is balanced.
    assert!(fbg(&mut h, 1, 125, (2 * W0, 4, 2, 2), (5 * W0, 4, 5, 1), &[]));
    assert!(!fbg(&mut h, 1, 125, (2 * W0, 4, 2, 2), (4 * W0, 4, 4, 1), &[]));
    // A busy CPU's pass below imbalance_pct: 5 against 4.5 tasks per CPU is 111 %, under 125 %.
    assert!(!fbg(&mut h, 0, 125, (18 * W0, 4, 18, 0), (20 * W0, 4, 20, 0), &[]));
    assert!(fbg(&mut h, 0, 110, (18 * W0, 4, 18, 0), (20 * W0, 4, 20, 0), &[]));
}

#[test]
fn a_newly_idle_cpu_with_room_pulls_from_an_overloaded_group() {
    let mut h = Harness::new("cfs_arith");
    // force_balance: the local group (2 CPUs, 1 task) has room and the
    // busiest (2 CPUs, 3 tasks) is overloaded, though its average load is
    // below the local one's (nice 19 tasks, weight 15, against a nice -10 one).
    let (local, busiest) = ((W_NICE_M10, 2, 1, 1), (3 * 15, 2, 3, 0));
    assert!(fbg(&mut h, 2, 117, local, busiest, &[]));
    // A busy or idle pass, or a newly-idle one without room, does not.
    assert!(!fbg(&mut h, 0, 117, local, busiest, &[]));
    assert!(!fbg(&mut h, 1, 117, local, busiest, &[]));
    assert!(!fbg(&mut h, 2, 117, (2 * W_NICE_M10, 2, 2, 0), busiest, &[]));
}
