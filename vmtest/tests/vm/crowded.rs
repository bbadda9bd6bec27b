// SPDX-License-Identifier: GPL-2.0-only
//! Threads that start spinning on a crowded CPU (scripts/check-crowded-start,
//! in the boots of the scheduler suite): each policy is held to the longest
//! wait its own rules allow.

use super::*;

/// The paper's thread count, for `paper`'s crowded start.
pub const PAPER_THREADS: usize = 512;
/// Threads of the crowded start on the 8-CPU guests: 16 per CPU.
pub const SMALL_THREADS: usize = 128;
/// Seconds the crowded start stays pinned after every thread has run: the
/// waits that matter come while threads arrive, and each second costs about
/// five of wall time on `paper`.
pub const PIN_SECS: u32 = 2;

/// The boot of the scheduler suite that ran the crowded start.
fn boot(job: &str) -> &'static VmRun {
    match job {
        "small" => &scheduler::SMALL.get().vm,
        "paper" => &scheduler::PAPER.get().vm,
        "oldest" => &scheduler::OLDEST.get().vm,
        _ => panic!("no crowded-start VM job {job}"),
    }
}

/// One scheduler's run of scripts/check-crowded-start.
struct Crowded {
    dir: PathBuf,
    meta: rundata::Meta,
    /// Every thread's longest wait, ms (threads.csv wait_max_ms).
    wait_max_ms: Vec<f64>,
    /// "ok", or why it was ejected (kernel: none).
    attached: Option<String>,
    /// scx_battle's log (kernel: empty).
    log: String,
    /// The kernel's tick, ms (measured in the guest, rounded to a CONFIG_HZ).
    tick_ms: f64,
}

fn crowded(job: &str, sched: &str) -> Crowded {
    let vm = boot(job);
    let why = || format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr);
    let dir = vm.out.join(format!("crowded-{sched}"));
    let read = |f: &str| std::fs::read_to_string(dir.join(f));
    let meta = read("meta.json")
        .map_err(|e| e.to_string())
        .and_then(|t| rundata::Meta::parse(&t).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("[{job}] {sched}: meta.json: {e}\n{}", why()));
    let threads = read("threads.csv").unwrap_or_else(|e| panic!("[{job}] {sched}: threads.csv: {e}\n{}", why()));
    let mut lines = threads.lines();
    assert_eq!(lines.next(), Some(rundata::THREADS_HEADER));
    let col = rundata::THREADS_HEADER.split(',').position(|c| c == "wait_max_ms").expect("wait_max_ms column");
    let wait_max_ms = lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    let hz: f64 = std::fs::read_to_string(vm.out.join("tick_hz"))
        .unwrap_or_else(|e| panic!("[{job}] tick_hz: {e}\n{}", why()))
        .trim()
        .parse()
        .expect("tick_hz is a number");
    // jiffies over a `sleep 1` under icount count a little over HZ.
    let hz = [100.0, 250.0, 300.0, 1000.0].into_iter().min_by(|a: &f64, b: &f64| (a - hz).abs().total_cmp(&(b - hz).abs())).unwrap();
    Crowded {
        meta,
        wait_max_ms,
        attached: read("attached").ok().map(|s| s.trim().to_string()),
        log: read("scheduler.log").unwrap_or_default(),
        tick_ms: 1000.0 / hz,
        dir,
    }
}

/// A number after `key` in scx_battle's log ("min_granularity 3000 us").
fn log_value(log: &str, key: &str) -> f64 {
    let at = log.find(key).unwrap_or_else(|| panic!("'{key}' not in the scheduler's log:\n{log}"));
    let rest = &log[at + key.len()..];
    let num: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.parse().unwrap_or_else(|_| panic!("no number after '{key}' in the scheduler's log"))
}

/*
 * The longest wait each policy's own rules allow a thread among N threads
 * pinned on one CPU, none of which can leave it, while they arrive one by
 * one (each into a queue of threads already spinning) and after. N counts
 * the workload's threads and one more for the kernel's own on that CPU; a
 * tick is the kernel's (CONFIG_HZ), measured. Every bound has 10 % on top
 * for what runs on that CPU besides the queue (interrupts, softirqs, kernel
 * threads, the recorder's programs). The watchdog sees a thread's longest
 * single wait, and so does this check (threads.csv's wait_max_ms, over the
 * whole run); meta.json splits it at time 0 (every thread has run once),
 * which the message shows.
 * - cfs: beyond sched_nr_latency threads the period is N x
 *   sched_min_granularity, so each thread runs sched_min_granularity per
 *   round; the slice is checked at a tick, so a turn lasts up to
 *   sched_min_granularity plus one tick. Threads that all came through this
 *   queue would wait N turns. But a new thread starts one vslice after
 *   min_vruntime (START_DEBIT), a vslice of the forking CPU's queue, and a
 *   SCHED_FIFO creator's CPU has no CFS task queued: the vslice is a whole
 *   sched_latency. So while threads arrive, the ones already there run
 *   ahead of min_vruntime until they pass the newcomers' sched_latency
 *   lead, and a thread that ran early then waits for every later one to
 *   cover up to sched_latency plus a turn: N x (sched_latency + turn).
 *   (Measured on paper: a thread that ran 10 ms early waited 6.1 s.)
 * - vtime: one queue ordered by weighted run time, where no thread is placed
 *   more than slice_ns behind the clock (the highest vtime started) and a
 *   new one starts at the clock; a turn is the slice (slice_ns over 1 +
 *   threads per CPU, at least slice_min) plus one tick. Each thread queued
 *   below a waiting one may run up to slice_ns plus two turns first, and
 *   each arriving one, started at the clock at most a turn below it, up to
 *   two more turns: (N - 1) x (slice_ns + 4 turns).
 * - ule: the timeshare queue may leave a batch thread waiting until the
 *   starvation guard runs it at its limit (plus the tick that sees it). The
 *   guard looks at the heads of the FIFO queues, and at a window of the
 *   realtime queue that moves along it look after look: a thread deep in
 *   it is seen within N / window looks. Threads that reached the limit
 *   together (hundreds, when the parent's interactivity made the first
 *   children interactive) run oldest first, one tick each: up to N ticks
 *   before the last.
 */
fn wait_bound_ms(c: &Crowded, policy: &str) -> f64 {
    const OTHER_WORK: f64 = 1.1;
    let n = c.meta.threads.unwrap_or(0) as f64 + 1.0;
    let bound = match policy {
        "cfs" => {
            let turn = log_value(&c.log, "min_granularity") / 1000.0 + c.tick_ms;
            n * (log_value(&c.log, "sched_latency") / 1000.0 + turn)
        }
        "vtime" => {
            let (slice, min) = (log_value(&c.log, "vtime: slice") / 1000.0, log_value(&c.log, "(min") / 1000.0);
            let per_cpu = (n / c.meta.topology.cpus.len() as f64).floor();
            let turn = (slice / (1.0 + per_cpu)).max(min) + c.tick_ms;
            (n - 1.0) * (slice + 4.0 * turn)
        }
        "ule" => {
            let looks = (n / log_value(&c.log, "at up to")).ceil();
            log_value(&c.log, "starve limit") + looks * log_value(&c.log, "a look every") + (n + 2.0) * c.tick_ms
        }
        _ => panic!("no wait bound for {policy}"),
    };
    bound * OTHER_WORK
}

/// Every thread ran, under the scheduler the run names, which stayed
/// attached, and no thread waited longer than the policy's rules allow.
fn check_crowded(job: &str, policy: &str) {
    let c = crowded(job, policy);
    let w = c.meta.wait_max_ms.unwrap_or_else(|| panic!("[{job}] {policy}: meta.json has no wait_max_ms; {}", c.dir.display()));
    let longest = c.wait_max_ms.iter().copied().fold(0.0, f64::max);
    let bound = wait_bound_ms(&c, policy);
    eprintln!(
        "[{job}] {policy}: {} threads started spinning on one CPU, every one had run after {:.0} ms; longest wait {longest:.0} ms \
         (bound {bound:.0}; of it before that moment {:.0} ms, after {:.0} ms); tick {:.1} ms; kernel: {}; {}",
        c.wait_max_ms.len(),
        c.meta.spawn_ms.unwrap_or(f64::NAN),
        w.before_t0,
        w.after_t0,
        c.tick_ms,
        crowded_kernel_longest(job),
        c.dir.display()
    );
    assert_eq!(c.attached.as_deref(), Some("ok"), "[{job}] {policy} did not stay attached; log:\n{}", c.log);
    assert!(c.meta.complete, "[{job}] {policy}: the run did not complete");
    assert!(c.meta.scheduler.name.contains(policy), "[{job}] ran under {}", c.meta.scheduler.name);
    assert_eq!(c.wait_max_ms.len(), c.meta.threads.unwrap_or(0) as usize, "[{job}] {policy}: threads.csv misses threads");
    assert!(
        longest <= bound,
        "[{job}] {policy}: a thread waited {longest:.0} ms, over the policy's bound of {bound:.0} ms"
    );
}

/// The kernel's own scheduler in the same boot, for the record (jobs without one: "not run").
fn crowded_kernel_longest(job: &str) -> String {
    let vm = boot(job);
    if !vm.out.join("crowded-kernel").is_dir() {
        return "not run in this boot".into();
    }
    let k = crowded(job, "kernel");
    format!(
        "every thread had run after {:.0} ms, longest wait {:.0} ms",
        k.meta.spawn_ms.unwrap_or(f64::NAN),
        k.wait_max_ms.iter().copied().fold(0.0, f64::max)
    )
}

macro_rules! crowded_checks {
    ($($test:ident => $job:literal $policy:literal),* $(,)?) => {
        $(#[test] fn $test() { check_crowded($job, $policy); })*
    };
}

crowded_checks! {
    cfs_small => "small" "cfs",
    ule_small => "small" "ule",
    vtime_small => "small" "vtime",
    cfs_paper => "paper" "cfs",
    ule_paper => "paper" "ule",
    ule_oldest_kernel => "oldest" "ule",
    vtime_oldest_kernel => "oldest" "vtime",
}

/// The kernel's own scheduler meets the same start: every thread ran.
#[test]
fn kernel_small() {
    let k = crowded("small", "kernel");
    eprintln!("[small] kernel: {}", crowded_kernel_longest("small"));
    assert!(k.meta.complete && k.meta.scheduler.sched_ext_state == "disabled", "kernel run: {:?}", k.meta.scheduler);
    assert_eq!(k.wait_max_ms.len(), SMALL_THREADS);
}
