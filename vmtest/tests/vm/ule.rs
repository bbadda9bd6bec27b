// SPDX-License-Identifier: GPL-2.0-only
//! The ULE policy on `small` (scripts/check-ule): spreading, the balancer,
//! interactivity, the starvation guard, slices.

use super::*;

/// What scripts/check-ule leaves: the spreading run, the pinned mixed run,
/// and scx_battle's logs of them.
pub struct UleRuns {
    spin: SpinRun,
    mixed: SpinRun,
    /// scx_battle's log of the spreading run (counters every 10 s) and of the
    /// mixed run (every second, with the threads' classification).
    log: String,
    mixed_log: String,
    /// scx_battle's logs of the starvation-guard runs: guard at 1 s, guard off.
    starve_guard_log: String,
    starve_off_log: String,
    /// 2 threads per CPU and one more, and scx_battle's log of that run.
    rotate: SpinRun,
    rotate_log: String,
    /// loadgen slices under ULE: the fork and preempt probes' JSON, the
    /// scheduler's log, and the quantum and HZ they ran with.
    slices_fork: serde_json::Value,
    slices_preempt: serde_json::Value,
    slices_log: String,
    slices_env: String,
}

/// scripts/check-ule on `small`.
pub static ULE: Job<Result<UleRuns, String>> = Job::new("ule", || {
    let vm = run_vm("ule", "small", "newest", &["scripts/check-ule"]);
    let out = &vm.out;
    let why = format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, out.display(), vm.stderr);
    if vm.status != Some(0) {
        return Err(why);
    }
    let read = |name: &str| std::fs::read_to_string(out.join(name)).map_err(|e| format!("{name}: {e}\n{why}"));
    let log = read("ule.log")?;
    let json = |name: &str| -> Result<serde_json::Value, String> {
        serde_json::from_str(&read(name)?).map_err(|e| format!("{name}: {e}\n{why}"))
    };
    Ok(UleRuns {
        slices_fork: json("ule-slices-fork.json")?,
        slices_preempt: json("ule-slices-preempt.json")?,
        slices_log: read("ule-slices.log")?,
        slices_env: read("ule-slices.env")?,
        mixed_log: read("ule-mixed.log")?,
        starve_guard_log: read("ule-starve-guard.log")?,
        starve_off_log: read("ule-starve-off.log")?,
        rotate_log: read("ule-rotate.log")?,
        rotate: read_spin_run(&out.join("ule-rotate")).map_err(|e| format!("{e}\n{why}"))?,
        spin: read_spin_run(&out.join("ule-spin")).map_err(|e| format!("{e}\n{why}"))?,
        mixed: read_spin_run(&out.join("ule-mixed")).map_err(|e| format!("{e}\n{why}"))?,
        log,
    })
});

fn ule() -> &'static UleRuns {
    ULE.get().as_ref().unwrap_or_else(|e| panic!("ULE run missing: {e}"))
}


/// ULE spreading on `small`: idle CPUs steal at once, then CPU 0's balancer
/// moves one thread per donor per pass until every CPU holds exactly its
/// share (scripts/check-ule: 8 per CPU, so ULE's rule needs 49 passes).
/// ULE counts every runnable thread, not only the spinners: a stray thread
/// (a kworker, the scheduler's own stats reader) running at a pass makes the
/// balancer move a spinner off its CPU, and the next pass moves it back, the
/// k+1/k rotation FreeBSD's sched_balance_pair does too. So from the first
/// perfectly balanced sample on, the test wants the counts exact most of the
/// time and never more than one thread off, rather than exact at one instant.
#[test]
fn spreading_steals_then_balances_exactly() {
    let r = &ule().spin;
    let release = r.meta.release_ms.unwrap();
    let threads = r.meta.threads.unwrap() as u32;
    let cpus = r.samples[0].1.len() as u32;
    for (t, c) in &r.samples {
        assert_eq!(c.iter().sum::<u32>(), threads, "sample at {t} ms");
    }
    let all_busy = r.samples.iter().find(|(t, c)| *t >= release && c.iter().all(|&n| n > 0)).map(|s| s.0 - release);
    let fair = threads / cpus;
    let (t_end, last) = r.samples.last().unwrap();
    let first_exact = r.samples.iter().position(|(t, c)| *t >= release && c.iter().all(|&n| n == fair));
    let after: &[(f64, Vec<u32>)] = first_exact.map(|i| &r.samples[i..]).unwrap_or(&[]);
    let exact = after.iter().filter(|(_, c)| c.iter().all(|&n| n == fair)).count();
    let within_one = after.iter().filter(|(_, c)| c.iter().all(|&n| n + 1 >= fair && n <= fair + 1)).count();
    let pct = |n: usize| 100.0 * n as f64 / after.len().max(1) as f64;
    let (passes, moves, repeat, steals, lost, rotate) = (
        total_counter(&ule().log, "ule_bal_pass"),
        total_counter(&ule().log, "ule_bal_move"),
        total_counter(&ule().log, "ule_bal_repeat"),
        total_counter(&ule().log, "ule_steal"),
        total_counter(&ule().log, "ule_move_lost"),
        total_counter(&ule().log, "ule_bal_rotate"),
    );
    let starved = total_counter(&ule().log, "ule_starve");
    // ULE's rule: one steal per idle CPU, then CPU 0 gives one thread per pass.
    let predicted = threads - (cpus - 1) - fair;
    eprintln!(
        "ule: every CPU busy {all_busy:?} ms after the release; exactly {fair} per CPU first at {:?} s after it \
         (run ends at {:.1} s), then exact in {:.1} % and within one thread in {:.1} % of {} samples; \
         balancer: {passes} passes, {moves} moves ({rotate} between CPUs one thread apart), {repeat} repeats; \
         {steals} steals; {lost} moves lost to a race; {starved} threads run by the starvation guard; \
         ULE's rule predicts {predicted} passes moving CPU 0's threads; final {last:?}",
        first_exact.map(|i| (r.samples[i].0 - release) / 1e3),
        (t_end - release) / 1e3,
        pct(exact),
        pct(within_one),
        after.len()
    );
    // Every spinner spins while pinned (a start gate with a lock once kept
    // a quarter of figure 6's threads asleep under ULE until after the release).
    let pinned = r.meta.proc_checks.first().expect("a /proc check in the pinned phase");
    assert_eq!(pinned.not_runnable, Some(0), "spinners asleep in the pinned phase: {pinned:?}");
    let all_busy = all_busy.expect("some CPU never got a thread");
    assert!(all_busy <= 50.0, "idle stealing took {all_busy:.1} ms to give every CPU a thread");
    assert!(first_exact.is_some(), "never exactly {fair} per CPU; the run ended at {last:?}");
    if pct(within_one) < 99.0 {
        // Say where: the longest stretch of samples beyond fair ± 1, and its worst sample.
        let (mut best, mut cur): ((usize, usize), Option<usize>) = ((0, 0), None);
        for (i, (_, c)) in after.iter().enumerate() {
            let off = c.iter().any(|&n| n + 1 < fair || n > fair + 1);
            match (off, cur) {
                (true, None) => cur = Some(i),
                (false, Some(s)) => {
                    if i - s > best.1 - best.0 {
                        best = (s, i);
                    }
                    cur = None;
                }
                _ => {}
            }
        }
        if let Some(s) = cur.filter(|&s| after.len() - s > best.1 - best.0) {
            best = (s, after.len());
        }
        let worst = after[best.0..best.1]
            .iter()
            .max_by_key(|(_, c)| c.iter().map(|&n| n.abs_diff(fair)).sum::<u32>())
            .map(|(t, c)| format!("{:.2} s: {c:?}", (t - release) / 1e3));
        panic!(
            "more than one thread off {fair} in {:.1} % of the samples; the longest stretch: {:.2}-{:.2} s after the \
             release, worst {}",
            100.0 - pct(within_one),
            (after[best.0].0 - release) / 1e3,
            (after[best.1 - 1].0 - release) / 1e3,
            worst.unwrap_or_default()
        );
    }
    // Measured: 100 % (2026-11-22 small reference), 73 % (a check-ule run
    // with 137 rotations); a stats reader every second: 22 %.
    assert!(pct(exact) >= 50.0, "exactly {fair} per CPU in only {:.1} % of the samples after the first", pct(exact));
    assert!(last.iter().all(|&n| n + 1 >= fair && n <= fair + 1), "the run ended at {last:?}, beyond {fair} ± 1");
    assert_eq!(repeat, 0, "a CPU gave or received two threads in one balancer pass");
    assert!(steals >= (cpus - 1) as u64, "{steals} steals, expected one per idle CPU at least");
    assert!(moves >= predicted as u64 / 2, "{moves} balancer moves for {predicted} predicted");
}

/// ULE's balancer finds its receiver down the tree, as sched_lowest does:
/// the node with the fewest threads, its LLC with the fewest, then its CPU.
/// After the release the pinned CPU's node holds almost every thread, so
/// the threads that leave CPU 0 go to the other nodes while its node holds
/// more. (A flat search, the least loaded CPU anywhere, sent them to either
/// node alike: 57 of 117 departures to CPU 0's own node in the 2026-12-06
/// small reference.) From migrations.csv, against the node totals of the
/// timeline sample before each departure; the first second (idle stealing,
/// which takes from any busy CPU) is left out.
#[test]
fn balancer_fills_the_least_loaded_node_first() {
    let r = &ule().spin;
    let release = r.meta.release_ms.unwrap();
    let nodes: Vec<&Vec<usize>> = r.meta.topology.nodes.iter().filter(|n| !n.is_empty()).collect();
    assert!(nodes.len() >= 2, "check-ule's machine has {} node(s) with CPUs: no node to fill first", nodes.len());
    let node_of = |cpu: usize| nodes.iter().position(|n| n.contains(&cpu)).unwrap_or_else(|| panic!("CPU {cpu} in no node"));
    let home = node_of(0);
    let text = std::fs::read_to_string(r.dir.join("migrations.csv")).expect("migrations.csv");
    let (mut away, mut home_while_heavier) = (0, 0);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (t, from, to): (f64, usize, usize) = (f[0].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        if from != 0 || t < release + 1000.0 {
            continue;
        }
        let Some((_, c)) = r.samples.iter().rev().find(|(s, _)| *s <= t) else { continue };
        let total = |n: &Vec<usize>| n.iter().map(|&i| c[i]).sum::<u32>();
        let lightest = nodes.iter().map(|n| total(n)).min().unwrap();
        // Only while CPU 0's node is clearly the heavier (a thread per CPU of margin).
        if total(nodes[home]) < lightest + nodes[home].len() as u32 {
            continue;
        }
        if node_of(to) == home {
            home_while_heavier += 1;
        } else {
            away += 1;
        }
    }
    eprintln!("ule: departures from CPU 0 while its node held more: {away} to another node, {home_while_heavier} within its own");
    assert!(away >= 10, "only {away} departures from CPU 0 to another node while its node was the heavier");
    assert!(
        home_while_heavier * 10 <= away,
        "{home_while_heavier} of CPU 0's threads went to its own, heavier node ({away} elsewhere): the balancer's receiver is not the least loaded node's"
    );
}

/// Every migration of ULE's spreading run has the cause scx_battle noted
/// (migrations.csv): none unknown, the spreading done by idle steals and
/// CPU 0's balancer, and no balancer in ULE's moves but its own.
#[test]
fn every_migration_has_a_cause() {
    use rundata::MoveCause::*;
    let r = &ule().spin;
    let n = |c: rundata::MoveCause| r.causes.get(c.name()).copied().unwrap_or(0);
    eprintln!("ule: {} migrations by cause: {:?}", r.migration_rows, r.causes);
    assert_eq!(n(Unknown) + n(NotAttributed), 0, "ULE moves without a cause");
    assert!(n(Steal) > 0 && n(Balance) > 0, "ULE spread its threads without steals or balancer moves");
    assert_eq!(n(NewIdle) + n(Nohz), 0, "CFS's balancer causes under ULE");
}

/// Once ULE's spreading run is balanced, 8 spinners share each CPU in
/// slices of sched_slice_min (~16 ms), so every thread runs in every second
/// and none runs for much more than its share (62 ms a second). loadgen's
/// SCHED_FIFO sampler, waking every 10 ms, displaces the spinner it lands
/// on; that thread keeps the rest of its slice. When such a switch started a
/// fresh slice, the interrupted spinner kept its CPU for ~0.93 s at a time
/// and its 15 queue mates waited ~14 s each (measured on one CPU of a
/// check-ule run). From thread_time.csv, a sample of every thread's CPU time
/// per second.
#[test]
fn balanced_spinners_share_their_cpu_in_short_turns() {
    let r = &ule().spin;
    let release = r.meta.release_ms.unwrap();
    let threads = r.meta.threads.unwrap() as u32;
    let cpus = r.samples[0].1.len() as u32;
    let fair = threads / cpus;
    let first_exact = r
        .samples
        .iter()
        .find(|(t, c)| *t >= release && c.iter().all(|&n| n == fair))
        .map(|s| s.0)
        .expect("the spreading run never balanced (ule_spreading_steals_then_balances_exactly says more)");
    let text = std::fs::read_to_string(r.dir.join("thread_time.csv")).expect("thread_time.csv of the spreading run");
    let mut per: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        per.entry(f[1].parse().unwrap()).or_default().push((f[0].parse().unwrap(), f[2].parse().unwrap()));
    }
    assert_eq!(per.len() as u32, threads, "threads in thread_time.csv");
    let (mut most, mut longest_idle, mut intervals) = ((0.0f64, 0u32, 0.0f64), (0.0f64, 0u32), 0usize);
    for (&tid, v) in &per {
        let mut idle_since: Option<f64> = None;
        for w in v.windows(2) {
            let ((t0, a), (t1, b)) = (w[0], w[1]);
            if t0 < first_exact {
                continue;
            }
            intervals += 1;
            let share = (b - a) * 1e3 / (t1 - t0); // ms of CPU per second
            if share > most.0 {
                most = (share, tid, (t0 - release) / 1e3);
            }
            if b - a < 0.5 {
                let since = *idle_since.get_or_insert(t0);
                if t1 - since > longest_idle.0 {
                    longest_idle = (t1 - since, tid);
                }
            } else {
                idle_since = None;
            }
        }
    }
    let fair_ms = 1e3 / fair as f64;
    let idle = if longest_idle.0 > 0.0 {
        format!("longest without CPU time {:.0} ms (thread {})", longest_idle.0, longest_idle.1)
    } else {
        "no sample interval without CPU time".to_string()
    };
    eprintln!(
        "ule: once balanced ({:.1} s after the release), {intervals} thread-seconds: at most {:.0} ms of CPU in a second \
         (thread {} at {:.1} s; fair share {fair_ms:.0} ms), {idle}",
        (first_exact - release) / 1e3,
        most.0,
        most.1,
        most.2,
    );
    assert!(intervals > 0, "no thread-time sample after the run balanced");
    // Measured with the fix: at most 94 ms, never a second without CPU time.
    assert!(most.0 <= 4.0 * fair_ms, "thread {} ran {:.0} ms in one second, over 4x its share", most.1, most.0);
    assert!(longest_idle.0 < 2000.0, "thread {} went {:.0} ms without CPU time", longest_idle.1, longest_idle.0);
}

/// Issue #13, ULE 5 and 6: in the spreading run, threads preempted by a
/// better one (a moved interactive spinner displacing a batch one) go back
/// to the head of their queue, and slices end against the current tdq_slice.
#[test]
fn preempted_threads_resume_at_the_head() {
    let log = &ule().log;
    let (head, slice_end, preempt) = (
        total_counter(log, "ule_preempted_head"),
        total_counter(log, "ule_slice_end"),
        total_counter(log, "kick_preempt"),
    );
    eprintln!("ule: {head} preempted threads put back at the head, {slice_end} slices ended at a tick, {preempt} preempting kicks");
    assert!(head > 0, "no preempted thread went back to the head of its queue");
    assert!(slice_end > 0, "no slice ended at a tick");
}

/// The quantum check-ule gave ULE (ms), its sched_slice_min (a sixth, ms),
/// and one kernel tick (ms): slices end at a tick, so a slice can run up to
/// a tick past its length. Without the kernel's HZ (no /boot/config in the
/// guest), the coarsest Linux has, 100.
fn ule_slice_params() -> (f64, f64, f64) {
    let env = &ule().slices_env;
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::trim);
    let quantum = get("quantum_us").and_then(|v| v.parse::<f64>().ok()).expect("quantum_us in ule-slices.env") / 1e3;
    let hz = get("hz").and_then(|v| v.parse::<f64>().ok()).unwrap_or(100.0);
    (quantum, quantum / 6.0, 1e3 / hz)
}

fn turn_ms(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("a list of turns").iter().map(|t| t["on_ms"].as_f64().expect("on_ms")).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no values");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Issue #13, ULE 2: a new thread's first slice is sched_slice_min
/// (sched_fork_thread: the child starts with all but that much of its slice
/// used), seen by the threads themselves (loadgen slices fork: five
/// children one after the other): on a CPU holding only its parent, a
/// child's first turn is sched_slice_min plus whole quanta (ULE may keep it
/// on the CPU for more slices when its calendar bucket comes first), where a
/// child given a full first slice would run whole quanta only. A slice ends
/// at the first tick after it is used up, so at this HZ a quantum lasts a
/// whole number of ticks. A child that slept before or during its first turn
/// (a page of the binary read from disk at its start, a lock its parent
/// held) woke with a fresh slice (sched_wakeup), as ULE gives every waking
/// thread: it says nothing about the fork and is left out, and at least
/// three children must remain.
#[test]
fn fork_first_slice_is_slice_min() {
    let r = &ule().slices_fork;
    let (quantum, slice_min, tick) = ule_slice_params();
    assert!(ule().slices_env.contains("hz=") && !ule().slices_env.contains("hz=unknown"), "the guest's HZ is unknown");
    let q_ticks = (quantum / tick).ceil() * tick;
    let children = r["children"].as_array().expect("children");
    let (mut judged, mut matched) = (0, 0);
    for (i, c) in children.iter().enumerate() {
        let first = c["first"]["on_ms"].as_f64().expect("first.on_ms");
        let n = c["first"]["interruptions"].as_f64().expect("first.interruptions");
        let sleeps = c["first"]["sleeps"].as_u64().expect("first.sleeps (a loadgen that counts sleeps)");
        let k = (0..=8).find(|&k| {
            let base = slice_min + k as f64 * q_ticks;
            first >= base - 1.0 - k as f64 - 1.2 * n && first <= base + tick + 1.0 + k as f64
        });
        if sleeps == 0 {
            judged += 1;
            matched += k.is_some() as usize;
        }
        eprintln!(
            "ule fork: child {i}: first turn {first:.2} ms ({n} interruptions, {sleeps} after a sleep, began {:.2} ms after its creation): \
             sched_slice_min {slice_min:.2} ms + {k:?} quanta of {q_ticks:.0} ms (tick {tick:.1} ms){}; later turns {:.1?}",
            c["first"]["start_ms"].as_f64().unwrap_or(f64::NAN),
            if sleeps > 0 { ", left out: it slept" } else { "" },
            turn_ms(&c["later"]),
        );
    }
    assert!(judged >= 3, "only {judged} of {} children ran their first turn without sleeping", children.len());
    assert_eq!(
        matched, judged,
        "only {matched} of {judged} children that never slept ran sched_slice_min ({slice_min:.2} ms) plus whole quanta ({q_ticks:.0} ms) first"
    );
}

/// Issue #13, ULE 5: a thread preempted before its slice ends goes back to
/// the head of its queue with the rest of its slice (SRQ_PREEMPTED). Two
/// spinners share a CPU with an interactive thread that a waker on another
/// CPU of the LLC wakes every 10 ms (tdq_notify: an interactive thread
/// preempts a batch one remotely). Each spinner's turn is interrupted many
/// times, yet holds whole quanta of CPU time: at the tail it would end at the
/// first interruption (about 10 ms), with a fresh slice it would never end,
/// and a slice compared again at the switch (while the woken thread makes
/// the CPU's tdq_slice half as long) would end at half a quantum.
#[test]
fn preempted_thread_resumes_with_the_rest_of_its_slice() {
    let r = &ule().slices_preempt;
    let (quantum, _, tick) = ule_slice_params();
    let turns = r["turns"].as_array().expect("turns");
    let on = turn_ms(&r["turns"]);
    let interruptions: Vec<f64> = turns.iter().map(|t| t["interruptions"].as_f64().unwrap()).collect();
    let runs = r["interactive_runs"].as_u64().expect("interactive_runs");
    let head = total_counter(&ule().slices_log, "ule_preempted_head");
    eprintln!(
        "ule preempt: {} turns after the warm-up, CPU time median {:.2} ms (min {:.2}, max {:.2}; quantum {quantum:.2} ms), \
         interruptions per turn median {:.0}; the interactive thread ran {runs} times (waker on CPU {}); \
         {head} preempted threads put back at the head",
        on.len(),
        if on.is_empty() { f64::NAN } else { median(on.clone()) },
        on.iter().copied().fold(f64::INFINITY, f64::min),
        on.iter().copied().fold(0.0, f64::max),
        if interruptions.is_empty() { f64::NAN } else { median(interruptions.clone()) },
        r["waker_cpu"],
    );
    assert!(on.len() >= 6, "only {} complete turns: {turns:?}", on.len());
    assert!(runs >= 200, "the interactive thread ran only {runs} times in the probe");
    // A turn is one quantum, or several when ULE keeps a spinner of better
    // priority on its CPU at its slice's end (ule_keep_prev), each slice
    // ending at the first tick after it is used up.
    // The scheduler charges a preempted spinner for the switches, which it
    // does not see itself: up to 1.2 ms less per interruption under TCG.
    let whole = |ms: f64, n: f64| {
        (1..=10).find(|&k| ms >= k as f64 * quantum - 1.0 - 1.2 * n && ms <= k as f64 * (quantum + tick) + 2.0)
    };
    let kinds: Vec<Option<u32>> = on.iter().zip(&interruptions).map(|(&ms, &n)| whole(ms, n)).collect();
    let n_whole = kinds.iter().filter(|k| k.is_some()).count();
    let one_interrupted = kinds.iter().zip(&interruptions).filter(|(k, &n)| **k == Some(1) && n >= 5.0).count();
    eprintln!(
        "ule preempt: {n_whole} of {} turns are whole quanta, {one_interrupted} of them one quantum interrupted 5 times or more; \
         the others {:.1?}",
        on.len(),
        on.iter().zip(&kinds).filter(|(_, k)| k.is_none()).map(|(m, _)| *m).collect::<Vec<_>>()
    );
    // First the probe's premise: the woken thread preempted the spinners. It
    // did not once (2026-12-03: median 0, turns of half a quantum) when it
    // started batch from its parent's history; loadgen now lets it sleep first.
    assert!(
        median(interruptions.clone()) >= 3.0,
        "turns were not interrupted (median {:.0}): the woken thread did not preempt the spinners; was it interactive?",
        median(interruptions.clone())
    );
    // Measured on small (7.3.4, icount), with the probe that reads the clock
    // only between two equal switch counts: 24 of 40 whole. Most of the others
    // end between half a quantum and one (68-84 ms): at a tick while the woken
    // thread was queued, tdq_slice was half a quantum (sched_clock compares
    // the slice with the CPU's current load, as FreeBSD does); a few are cut
    // short (11-19 ms) where a thread woken on the CPU itself (a kworker) asked
    // for a reschedule, which sends the spinner back to its place in the
    // calendar, not to the head. (The old probe, which could count a switch's
    // off-CPU time as a short interruption, measured 23 of 31 and 28 of 32.)
    // At the tail the turns would be ~10 ms, with a fresh slice unbounded:
    // 0 whole. Before the fix (the switch compared the slice again while the
    // woken thread halved tdq_slice): 3 of 46.
    assert!(n_whole * 5 >= on.len() * 2, "only {n_whole} of {} turns are whole quanta ({quantum:.2} ms, + a tick)", on.len());
    // One quantum that survived 5 interruptions or more: 15, 12 (old build),
    // 14, 8 and 5 (this one) in five 6 s probes; the calendar's multi-quantum
    // turns (keep_prev) take the rest, so the count swings from run to run.
    assert!(one_interrupted >= 3, "only {one_interrupted} turns of one quantum interrupted 5 times or more");
    assert!(head > 0, "no preempted thread went back to the head (ule_preempted_head = 0)");
}

/// Issue #13, ULE 7: one thread per CPU and one more. Idle CPUs steal one
/// each, then FreeBSD's balancer moves a thread from the CPU with k+1 to one
/// with k at every pass, so the odd thread keeps moving: the rotation counter
/// grows, and several CPUs hold the second thread in turn, while no two CPUs
/// are ever more than one thread apart once the spreading is done.
#[test]
fn balancer_rotates_threads_that_dont_divide_evenly() {
    let r = &ule().rotate;
    let log = &ule().rotate_log;
    let release = r.meta.release_ms.unwrap();
    let threads = r.meta.threads.unwrap() as u32;
    let cpus = r.samples[0].1.len() as u32;
    let fair = threads / cpus;
    let (passes, moves, rotate) = (
        total_counter(log, "ule_bal_pass"),
        total_counter(log, "ule_bal_move"),
        total_counter(log, "ule_bal_rotate"),
    );
    let gap = |c: &Vec<u32>| c.iter().max().unwrap() - c.iter().min().unwrap();
    // Spread: the first sample after the release where no two CPUs are more than one thread apart.
    let spread_at = r.samples.iter().position(|(t, c)| *t >= release && gap(c) <= 1);
    let settled: Vec<&Vec<u32>> = spread_at.map(|i| r.samples[i..].iter().map(|(_, c)| c).collect()).unwrap_or_default();
    let mut holders = std::collections::BTreeSet::new();
    for c in &settled {
        holders.extend(c.iter().enumerate().filter(|(_, &n)| n > fair).map(|(cpu, _)| cpu));
    }
    let worst_gap = settled.iter().map(|c| gap(c)).max().unwrap_or(u32::MAX);
    eprintln!(
        "ule rotation, {threads} threads on {cpus} CPUs: spread {:?} ms after the release; {passes} passes, {moves} moves,          {rotate} between CPUs one thread apart; CPUs that held {} threads from then on: {holders:?}; widest gap {worst_gap}",
        spread_at.map(|i| r.samples[i].0 - release),
        fair + 1
    );
    assert!(!settled.is_empty(), "the threads never spread to within one of each other");
    assert!(rotate >= 3, "{rotate} rotations in {passes} passes: k+1 does not give to k");
    assert!(holders.len() >= 3, "the odd thread stayed on CPUs {holders:?}");
    assert!(worst_gap <= 1, "CPUs {worst_gap} threads apart after the spreading");
}

/// Two spinners beside 12 interactive threads that want 2.4 CPUs, all on one
/// CPU: ULE runs interactive threads first, so the batch spinners starve.
/// With the guard off (and the watchdog at 1 s) the kernel ejects the
/// scheduler; with the guard at 1 s (watchdog 2 s) the spinners run in time.
#[test]
fn starvation_guard_keeps_the_watchdog_away() {
    let (on, off) = (&ule().starve_guard_log, &ule().starve_off_log);
    let exit = |log: &str| log.lines().find(|l| l.contains("EXIT:")).unwrap_or("no EXIT line").to_string();
    let starved = total_counter(on, "ule_starve");
    eprintln!("guard at 1 s: {starved} threads run by the guard, {}; guard off: {}", exit(on), exit(off));
    assert!(on.contains("state after the run: enabled"), "ejected with the guard on: {}", exit(on));
    assert!(starved > 0, "the guard never fired: ULE's order did not starve anything here");
    assert!(exit(off).contains("runnable task stall"), "guard off, expected a watchdog ejection: {}", exit(off));
}

/// The classification lines of the last stats block of the mixed run.
fn ule_task_classes(log: &str) -> Vec<(String, String)> {
    let mixed = log.split("mixed-start").nth(1).expect("no mixed-start marker").split("mixed-end").next().unwrap();
    let blocks: Vec<&str> = mixed.split("stats t=").collect();
    let last = blocks.iter().rev().find(|b| b.contains("stats ule task")).expect("no task lines during the mixed run");
    last.lines()
        .filter(|l| l.starts_with("stats ule task"))
        .map(|l| {
            let get = |k: &str| l.split(' ').find_map(|kv| kv.strip_prefix(k)).unwrap_or("").to_string();
            (get("comm="), get("queue="))
        })
        .collect()
}

/// One thread that mostly sleeps is interactive and the spinners beside it
/// are batch, and it is served ahead of them (CFS's figure for the same
/// run: cfs::pinned_wakeup_preempts).
/// Threads inherit their parent's history: check-ule lets its shell sleep
/// under the fresh scheduler first, or the interactive thread would start
/// at the neutral score 50 (batch) and wait behind the spinners' slices
/// for its first second (measured: p99 25.5 ms over a 5 s run).
#[test]
fn interactive_thread_classified_and_served_first() {
    let classes = ule_task_classes(&ule().mixed_log);
    eprintln!("ule classification at the end of the mixed run: {classes:?}");
    let of = |comm: &str| classes.iter().filter(|(c, _)| c == comm).map(|(_, q)| q.as_str()).collect::<Vec<_>>();
    assert_eq!(of("lg-interactive"), ["interactive"]);
    assert_eq!(of("lg-spinner"), ["batch", "batch", "batch"]);
    let lat = |r: &SpinRun| {
        let l = r.meta.wake_latency_us.as_ref().expect("wake_latency_us");
        (l.p50, l.p99, l.count)
    };
    let (ule_p50, ule_p99, n) = lat(&ule().mixed);
    eprintln!("wake-to-run latency of the interactive thread beside 3 spinners: ule p50 {ule_p50:.1} us p99 {ule_p99:.1} us ({n} wakeups)");
    assert!(n > 100, "{n} wakeups");
    // Served ahead of batch threads: far below one batch slice (~16-94 ms).
    assert!(ule_p99 < 5000.0, "interactive p99 {ule_p99:.0} us: not served ahead of the spinners");
}
