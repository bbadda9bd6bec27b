// SPDX-License-Identifier: GPL-2.0-only
//! Integration tests on a real kernel with sched_ext.
//!
//! Boots the VM test bed on `small` (2 nodes x 4 cores) and `paper` (2 nodes
//! x 16 cores), in parallel, and runs scripts/check-scheduler in each: it
//! loads scx_battle, runs the mixed workload, hot-plugs a CPU, stops it, has
//! the kernel eject it, and writes one PASS/FAIL line per check. Each #[test]
//! below asserts one of those lines, so a failure names what broke. A third
//! boot of `small` runs scripts/check-recorder: the spreading experiment
//! (loadgen spin) recorded under the kernel's scheduler and under scx_battle,
//! whose run directories the recorder_* tests read.
//! Where this machine's own kernel has sched_ext and we are root, the checks
//! run natively (scripts/vm --mode auto), one after the other.
//!
//! Nothing here skips: a missing kernel, tool or binary is a failure that
//! says what is missing (run scripts/setup and cargo build --release).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// How long the mixed workload runs in each VM, in guest seconds.
const STRESS_SECS: u32 = 20;
/// Wall-clock limit for one VM run (boot, checks, shutdown).
const VM_TIMEOUT_SECS: u32 = 1500;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// target/<profile>, where cargo put this test and the workspace binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn native() -> bool {
    Path::new("/sys/kernel/sched_ext").is_dir() && unsafe { libc::geteuid() } == 0
}

struct Run {
    preset: &'static str,
    status: Option<i32>,
    wall_secs: f64,
    out: PathBuf,
    stderr: String,
    /// check name -> (passed, detail)
    checks: BTreeMap<String, (bool, String)>,
}

fn run_checks(preset: &'static str, expect_cpus: u32, policy: &str) -> Run {
    let out = repo().join("results/tmp").join(format!("test-{preset}-{policy}-{}", std::process::id()));
    let bins = bin_dir();
    for b in ["scx_battle", "loadgen"] {
        assert!(
            bins.join(b).is_file(),
            "{} is missing: run `cargo build --release --workspace` before the tests",
            bins.join(b).display()
        );
    }
    let mut cmd = Command::new(repo().join("scripts/vm"));
    cmd.args(["--preset", preset, "--quiet", "--timeout", &VM_TIMEOUT_SECS.to_string()])
        .arg("--out")
        .arg(&out)
        .args(["--", "scripts/check-scheduler", "--stress-secs", &STRESS_SECS.to_string(), "--policy", policy])
        .env("SCX_BATTLE_BIN", &bins);
    if !native() {
        cmd.args(["--expect-cpus", &expect_cpus.to_string(), "--expect-nodes", "2"]);
    }
    let t = Instant::now();
    let res = cmd.output().expect("running scripts/vm");
    let wall_secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    eprintln!("[{preset}] scripts/vm finished in {wall_secs:.0} s with {:?}\n{stderr}", res.status.code());

    let mut checks = BTreeMap::new();
    let text = std::fs::read_to_string(out.join("checks.txt")).unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (verdict, name, detail) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        if let (Some(v), Some(n)) = (verdict, name) {
            checks.insert(n.to_string(), (v == "PASS", detail.to_string()));
        }
    }
    Run { preset, status: res.status.code(), wall_secs, out, stderr, checks }
}

/// The run directories scripts/check-recorder leaves: spin and mixed, under
/// the kernel's scheduler and under scx_battle.
type RecorderRuns = [Result<SpinRun, String>; 7];
const REC_DIRS: [&str; 7] =
    ["kernel", "scx_battle", "mixed-kernel", "mixed-scx_battle", "cfs", "mixed-cfs", "cfs-nice"];

/// Every VM run of this file, started on first use. In VMs: paper in one
/// thread; small and then the recorder runs in another. Natively: one after
/// the other.
struct AllRuns {
    small: Run,
    paper: Run,
    small_cfs: Run,
    small_ule: Run,
    recorder: RecorderRuns,
    ule: Result<UleRuns, String>,
}

fn all() -> &'static AllRuns {
    static ALL: OnceLock<AllRuns> = OnceLock::new();
    ALL.get_or_init(|| {
        if native() {
            let small = run_checks("small", 8, "vtime");
            let paper = run_checks("paper", 32, "vtime");
            let small_cfs = run_checks("small", 8, "cfs");
            let small_ule = run_checks("small", 8, "ule");
            AllRuns { small, paper, small_cfs, small_ule, recorder: run_recorder(), ule: run_ule() }
        } else {
            let paper = std::thread::spawn(|| run_checks("paper", 32, "vtime"));
            let ule = std::thread::spawn(run_ule);
            let small = run_checks("small", 8, "vtime");
            let recorder = run_recorder();
            let small_cfs = run_checks("small", 8, "cfs");
            let small_ule = run_checks("small", 8, "ule");
            AllRuns {
                small,
                paper: paper.join().expect("paper VM thread"),
                small_cfs,
                small_ule,
                recorder,
                ule: ule.join().expect("ULE VM thread"),
            }
        }
    })
}

fn assert_check(run: &Run, name: &str) {
    match run.checks.get(name) {
        Some((true, detail)) => eprintln!("[{}] {name}: {detail}", run.preset),
        Some((false, detail)) => panic!(
            "[{}] check {name} failed: {detail}\n(results in {})",
            run.preset,
            run.out.display()
        ),
        None => panic!(
            "[{}] check {name} never ran: scripts/vm exited {:?} after {:.0} s; results in {}\n{}",
            run.preset,
            run.status,
            run.wall_secs,
            run.out.display(),
            run.stderr
        ),
    }
}

macro_rules! checks {
    ($($test:ident => $which:ident $name:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_check(&all().$which, $name); })*
    };
}

checks! {
    small_topology => small "topology",
    small_bad_options => small "bad_options",
    small_not_root_refused => small "not_root_refused",
    small_load => small "load",
    small_ops_name => small "ops_name",
    small_second_instance_refused => small "second_instance_refused",
    small_mixed_workload => small "mixed_workload",
    small_never_ejected => small "never_ejected",
    small_stats_printed => small "stats_printed",
    small_hotplug_restart => small "hotplug_restart",
    small_clean_exit => small "clean_exit",
    small_ejection_reported => small "ejection_reported",
    small_kernel_log_clean => small "kernel_log_clean",
    cfs_small_load => small_cfs "load",
    cfs_small_mixed_workload => small_cfs "mixed_workload",
    cfs_small_never_ejected => small_cfs "never_ejected",
    cfs_small_stats_printed => small_cfs "stats_printed",
    cfs_small_hotplug_restart => small_cfs "hotplug_restart",
    cfs_small_clean_exit => small_cfs "clean_exit",
    cfs_small_ejection_reported => small_cfs "ejection_reported",
    cfs_small_kernel_log_clean => small_cfs "kernel_log_clean",
    ule_small_load => small_ule "load",
    ule_small_mixed_workload => small_ule "mixed_workload",
    ule_small_never_ejected => small_ule "never_ejected",
    ule_small_stats_printed => small_ule "stats_printed",
    ule_small_hotplug_restart => small_ule "hotplug_restart",
    ule_small_clean_exit => small_ule "clean_exit",
    ule_small_ejection_reported => small_ule "ejection_reported",
    ule_small_kernel_log_clean => small_ule "kernel_log_clean",
    paper_topology => paper "topology",
    paper_load => paper "load",
    paper_ops_name => paper "ops_name",
    paper_mixed_workload => paper "mixed_workload",
    paper_never_ejected => paper "never_ejected",
    paper_hotplug_restart => paper "hotplug_restart",
    paper_clean_exit => paper "clean_exit",
    paper_ejection_reported => paper "ejection_reported",
    paper_kernel_log_clean => paper "kernel_log_clean",
}

#[test]
fn every_check_passed_and_vm_exit_status_agrees() {
    for run in [&all().small, &all().paper, &all().small_cfs, &all().small_ule] {
        let failed: Vec<_> = run.checks.iter().filter(|(_, (ok, _))| !ok).map(|(n, _)| n).collect();
        assert!(run.checks.len() >= 13, "[{}] only {} checks ran", run.preset, run.checks.len());
        assert!(failed.is_empty(), "[{}] failed checks: {failed:?}", run.preset);
        assert_eq!(run.status, Some(0), "[{}] scripts/vm exit status", run.preset);
    }
}

/// The runner refuses bad options before booting anything.
#[test]
fn vm_runner_rejects_bad_options() {
    for args in [
        &["--preset", "huge", "--", "true"][..],
        &["--nodes", "0", "--", "true"],
        &["--cores-per-node", "x", "--", "true"],
        &["--mode", "fast", "--", "true"],
        &["--nodes", "64", "--cores-per-node", "16", "--", "true"],
        &["--preset", "small"],
    ] {
        let res = Command::new(repo().join("scripts/vm")).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("error:"), "{args:?} gave no error message: {err}");
    }
}

/// The hard wall-clock limit ends a run that would go on forever, with status 124.
#[test]
fn vm_runner_enforces_timeout() {
    let t = Instant::now();
    let out = repo().join("results/tmp").join(format!("test-timeout-{}", std::process::id()));
    let res = Command::new(repo().join("scripts/vm"))
        .args(["--preset", "small", "--quiet", "--timeout", "5", "--out"])
        .arg(&out)
        .args(["--", "sleep", "1000"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(124), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(t.elapsed().as_secs() < 60, "timeout took {:?}", t.elapsed());
}

// --- The recorder (loadgen spin) under the kernel's scheduler and scx_battle ---

/// Threads in the recorder runs: 16 per CPU of `small`.
const SPIN_THREADS: usize = 128;

/// One recorded run directory of `loadgen spin`, parsed.
struct SpinRun {
    dir: PathBuf,
    meta: serde_json::Value,
    /// time_ms -> threads per CPU (index = cpu)
    samples: Vec<(f64, Vec<u32>)>,
    /// (thread, cpu_time_ms, migrations)
    threads: Vec<(u32, f64, u64)>,
    migration_rows: usize,
}

fn read_spin_run(dir: &Path) -> Result<SpinRun, String> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{}/{f}: {e}", dir.display()));
    let meta: serde_json::Value = serde_json::from_str(&read("meta.json")?).map_err(|e| format!("meta.json: {e}"))?;
    let mut by_time: BTreeMap<String, (f64, Vec<u32>)> = BTreeMap::new();
    for (i, line) in read("timeline.csv")?.lines().enumerate() {
        if i == 0 {
            assert_eq!(line, "time_ms,cpu,node,threads");
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let (t, cpu, n): (f64, usize, u32) = (f[0].parse().unwrap(), f[1].parse().unwrap(), f[3].parse().unwrap());
        let e = by_time.entry(f[0].to_string()).or_insert((t, Vec::new()));
        if e.1.len() <= cpu {
            e.1.resize(cpu + 1, 0);
        }
        e.1[cpu] = n;
    }
    let mut samples: Vec<(f64, Vec<u32>)> = by_time.into_values().collect();
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let threads = read("threads.csv")?
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect();
    let migration_rows = read("migrations.csv")?.lines().count() - 1;
    Ok(SpinRun { dir: dir.to_path_buf(), meta, samples, threads, migration_rows })
}

fn run_recorder() -> RecorderRuns {
    let out = repo().join("results/tmp").join(format!("test-recorder-{}", std::process::id()));
    let res = Command::new(repo().join("scripts/vm"))
        .args(["--preset", "small", "--quiet", "--timeout", &VM_TIMEOUT_SECS.to_string(), "--out"])
        .arg(&out)
        .args(["--", "scripts/check-recorder", "--threads", &SPIN_THREADS.to_string()])
        .args(["--pin-secs", "3", "--run-secs", "5"])
        .env("SCX_BATTLE_BIN", bin_dir())
        .output()
        .expect("running scripts/vm");
    let stderr = String::from_utf8_lossy(&res.stderr);
    eprintln!("[recorder] scripts/vm exited {:?}\n{stderr}", res.status.code());
    let why = format!("scripts/vm exited {:?}; results in {}\n{stderr}", res.status.code(), out.display());
    REC_DIRS.map(|name| read_spin_run(&out.join(name)).map_err(|e| format!("{e}\n{why}")))
}

fn spin_run(which: usize) -> &'static SpinRun {
    let r = &all().recorder[which];
    r.as_ref().unwrap_or_else(|e| panic!("recorder run missing: {e}"))
}

/// The run finished, under the scheduler it claims, and lost nothing.
fn check_spin_meta(r: &SpinRun, scheduler_prefix: &str) {
    let m = &r.meta;
    eprintln!("[{}] meta: {}", r.dir.display(), serde_json::to_string(m).unwrap());
    assert_eq!(m["complete"], true, "run not complete");
    let name = m["scheduler"]["name"].as_str().unwrap();
    assert!(name.starts_with(scheduler_prefix), "scheduler {name}, expected {scheduler_prefix}");
    assert_eq!(m["threads"], SPIN_THREADS);
    assert_eq!(m["lost_events"], 0);
    assert_eq!(m["untracked_cpu_events"], 0);
    assert_eq!(m["inconsistent_samples"], 0);
    assert!(m["samples"].as_u64().unwrap() > 500, "too few samples for 8 s at 10 ms");
    let pct = m["recorder_cpu"]["percent_of_machine"].as_f64().unwrap();
    assert!(pct.is_finite() && pct > 0.0, "recorder cost {pct}");
    assert_eq!(r.migration_rows as u64, m["migrations"].as_u64().unwrap());
}

/// Every sample adds up to all threads; all on CPU 0 until the release; on
/// every CPU by the end.
fn check_spin_timeline(r: &SpinRun) {
    let release = r.meta["release_ms"].as_f64().expect("release_ms");
    let (mut before, mut after) = (0, 0);
    for (t, per_cpu) in &r.samples {
        let sum: u32 = per_cpu.iter().sum();
        assert_eq!(sum as usize, SPIN_THREADS, "sample at {t} ms adds up to {sum}");
        if *t < release {
            before += 1;
            assert_eq!(per_cpu[0] as usize, SPIN_THREADS, "at {t} ms, before the release, CPU 0 holds {}", per_cpu[0]);
        } else {
            after += 1;
        }
    }
    assert!(before > 100 && after > 100, "{before} samples before the release, {after} after");
    let (t, last) = r.samples.last().unwrap();
    assert!(last.iter().all(|&n| n > 0), "at the end ({t} ms) some CPU had no thread: {last:?}");
    let first_spread = r.samples.iter().find(|(t, c)| *t >= release && c.iter().all(|&n| n > 0)).map(|s| s.0);
    eprintln!(
        "[{}] release at {release:.1} ms (spread over {:.3} ms); every CPU busy {:.1} ms after it; final {last:?}",
        r.dir.display(),
        r.meta["release_spread_ms"].as_f64().unwrap(),
        first_spread.unwrap() - release,
    );
}

/// /proc/<pid>/task/*/stat agrees with the recorder.
fn check_spin_proc(r: &SpinRun) {
    let checks = r.meta["proc_checks"].as_array().expect("proc_checks");
    assert_eq!(checks.len(), 3, "{checks:?}");
    for c in checks {
        assert_eq!(c["unreadable"], 0, "{c}");
    }
    // Pinned: nothing can move, so the two must agree exactly.
    assert_eq!(checks[0]["placed_differently"], 0, "pinned phase: {}", checks[0]);
    // Spreading: each /proc read is bracketed by two recorder reads, so only a
    // thread that moved twice within microseconds can differ; allow two.
    for c in &checks[1..] {
        let d = c["placed_differently"].as_u64().unwrap();
        assert!(d <= 2, "after release {d} threads placed differently: {c}");
    }
}

/// Every thread ran and is in threads.csv.
fn check_spin_threads(r: &SpinRun) {
    assert_eq!(r.threads.len(), SPIN_THREADS);
    for (tid, cpu_ms, _) in &r.threads {
        assert!(*cpu_ms > 0.0, "thread {tid} never ran");
    }
}


/// loadgen mixed pinned on one CPU: the interactive thread's wake-to-run
/// latency is recorded, and every thread ran.
fn check_mixed(r: &SpinRun, scheduler_prefix: &str) {
    let m = &r.meta;
    eprintln!("[{}] wake latency us: {}", r.dir.display(), m["wake_latency_us"]);
    assert_eq!(m["complete"], true);
    assert!(m["scheduler"]["name"].as_str().unwrap().starts_with(scheduler_prefix));
    assert_eq!(m["lost_events"], 0);
    assert_eq!(m["inconsistent_samples"], 0);
    let lat = &m["wake_latency_us"];
    // 3 s of 10 ms sleeps plus 0.5 ms runs: about 280 wakeups.
    assert!(lat["count"].as_u64().unwrap() > 100, "{lat}");
    let (p50, p99, max) = (lat["p50"].as_f64().unwrap(), lat["p99"].as_f64().unwrap(), lat["max"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat}");
    // A wakeup, a context switch and the tracepoints take microseconds, and
    // the spinners sharing the CPU make some waits far longer: a histogram
    // stuck below 1 us, or with nothing longer than its median, is broken.
    assert!(p50 >= 0.5 && max > p50, "implausible wake-to-run latencies: {lat}");
    assert_eq!(r.threads.len(), 4);
    assert!(r.threads.iter().all(|t| t.1 > 0.0), "a thread never ran: {:?}", r.threads);
    // Pinned to CPU 1 for the whole run: all four threads there in every sample.
    assert!(r.samples.iter().all(|(_, c)| c[1] == 4), "threads left CPU 1");
}



/// Final placement of the spreading run: per-node totals within the NUMA
/// imbalance_pct (125%) and per-CPU counts within the LLC one (117%), as CFS
/// promises; and how fast every CPU got work, next to the kernel's scheduler.
#[test]
fn cfs_spreading_ends_within_thresholds() {
    let (cfs, kernel) = (spin_run(4), spin_run(0));
    let last = &cfs.samples.last().unwrap().1;
    let nodes = [last[..4].iter().sum::<u32>(), last[4..8].iter().sum::<u32>()];
    let (nmin, nmax) = (*nodes.iter().min().unwrap(), *nodes.iter().max().unwrap());
    assert!(nmax * 100 <= nmin * 125, "node totals {nodes:?} beyond 125%");
    for node in [&last[..4], &last[4..8]] {
        let (cmin, cmax) = (*node.iter().min().unwrap(), *node.iter().max().unwrap());
        assert!(cmin > 0 && cmax * 100 <= cmin * 117 + 100, "per-CPU counts {node:?} beyond 117% (+1 thread)");
    }
    let busy = |r: &SpinRun| {
        let rel = r.meta["release_ms"].as_f64().unwrap();
        r.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|(t, _)| t - rel)
    };
    eprintln!(
        "every CPU busy after the release: cfs {:?} ms, kernel {:?} ms; cfs final {last:?}",
        busy(cfs),
        busy(kernel)
    );
    assert!(busy(cfs).is_some(), "some CPU never got a thread under cfs");
}

/// Nice -5, 0, +5 spinners pinned to one CPU get CPU time in the ratio of
/// their Linux weights (3121 : 1024 : 335), within 10%.
#[test]
fn cfs_nice_fairness() {
    let r = spin_run(6);
    assert_eq!(r.threads.len(), 3);
    let nice_of = |i: usize| [-5, 0, 5][i];
    let weight = |n: i32| match n {
        -5 => 3121.0,
        0 => 1024.0,
        _ => 335.0,
    };
    let total_cpu: f64 = r.threads.iter().map(|t| t.1).sum();
    let total_w: f64 = (0..3).map(|i| weight(nice_of(i))).sum();
    // threads.csv lists threads in creation order, which is the nice order.
    for (i, t) in r.threads.iter().enumerate() {
        let share = t.1 / total_cpu;
        let want = weight(nice_of(i)) / total_w;
        eprintln!("nice {:>2}: {:.1} ms, share {share:.3}, weight share {want:.3}", nice_of(i), t.1);
        assert!((share - want).abs() <= 0.10 * want, "nice {} got {share:.3}, expected {want:.3} +-10%", nice_of(i));
    }
}

/// One #[test] per check of a recorder run: `name => check(run index[, scheduler])`.
macro_rules! recorder_tests {
    ($($test:ident => $check:ident($which:literal $(, $arg:literal)?)),* $(,)?) => {
        $(#[test] fn $test() { $check(spin_run($which) $(, $arg)?); })*
    };
}

recorder_tests! {
    recorder_kernel_meta => check_spin_meta(0, "kernel"),
    recorder_kernel_timeline => check_spin_timeline(0),
    recorder_kernel_matches_proc => check_spin_proc(0),
    recorder_kernel_threads => check_spin_threads(0),
    recorder_scx_battle_meta => check_spin_meta(1, "scx_battle"),
    recorder_scx_battle_timeline => check_spin_timeline(1),
    recorder_scx_battle_matches_proc => check_spin_proc(1),
    recorder_scx_battle_threads => check_spin_threads(1),
    recorder_mixed_kernel => check_mixed(2, "kernel"),
    recorder_mixed_scx_battle => check_mixed(3, "scx_battle"),
    recorder_cfs_meta => check_spin_meta(4, "scx_battle"),
    recorder_cfs_timeline => check_spin_timeline(4),
    recorder_cfs_matches_proc => check_spin_proc(4),
    recorder_mixed_cfs => check_mixed(5, "scx_battle"),
}

// --- The ULE policy: spreading, balancer, interactivity (scripts/check-ule) ---

/// What scripts/check-ule leaves: the spreading run, the pinned mixed run,
/// and scx_battle's log of both.
struct UleRuns {
    spin: SpinRun,
    mixed: SpinRun,
    log: String,
    /// scx_battle's logs of the starvation-guard runs: guard at 1 s, guard off.
    starve_guard_log: String,
    starve_off_log: String,
}

fn run_ule() -> Result<UleRuns, String> {
    let out = repo().join("results/tmp").join(format!("test-ule-{}", std::process::id()));
    let res = Command::new(repo().join("scripts/vm"))
        .args(["--preset", "small", "--quiet", "--timeout", &VM_TIMEOUT_SECS.to_string(), "--out"])
        .arg(&out)
        .args(["--", "scripts/check-ule"])
        .env("SCX_BATTLE_BIN", bin_dir())
        .output()
        .expect("running scripts/vm");
    let stderr = String::from_utf8_lossy(&res.stderr);
    eprintln!("[ule] scripts/vm exited {:?}\n{stderr}", res.status.code());
    let why = format!("scripts/vm exited {:?}; results in {}\n{stderr}", res.status.code(), out.display());
    if res.status.code() != Some(0) {
        return Err(why);
    }
    let read = |name: &str| std::fs::read_to_string(out.join(name)).map_err(|e| format!("{name}: {e}\n{why}"));
    let log = read("ule.log")?;
    Ok(UleRuns {
        starve_guard_log: read("ule-starve-guard.log")?,
        starve_off_log: read("ule-starve-off.log")?,
        spin: read_spin_run(&out.join("ule-spin")).map_err(|e| format!("{e}\n{why}"))?,
        mixed: read_spin_run(&out.join("ule-mixed")).map_err(|e| format!("{e}\n{why}"))?,
        log,
    })
}

fn ule() -> &'static UleRuns {
    all().ule.as_ref().unwrap_or_else(|e| panic!("ULE run missing: {e}"))
}

/// A counter from the last "stats total" line of scx_battle's log.
fn total_counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.starts_with("stats total")).expect("no 'stats total' line");
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .parse()
        .unwrap()
}

/// ULE spreading on `small`: idle CPUs steal at once, then CPU 0's balancer
/// moves one thread per donor per pass until every CPU holds exactly 16.
#[test]
fn ule_spreading_steals_then_balances_exactly() {
    let r = &ule().spin;
    let release = r.meta["release_ms"].as_f64().unwrap();
    let threads = r.meta["threads"].as_u64().unwrap() as u32;
    let cpus = r.samples[0].1.len() as u32;
    for (t, c) in &r.samples {
        assert_eq!(c.iter().sum::<u32>(), threads, "sample at {t} ms");
    }
    let all_busy = r.samples.iter().find(|(t, c)| *t >= release && c.iter().all(|&n| n > 0)).map(|s| s.0 - release);
    let fair = threads / cpus;
    let (t_end, last) = r.samples.last().unwrap();
    let balanced_from = r.samples.iter().rposition(|(_, c)| c.iter().any(|&n| n != fair)).map(|i| i + 1);
    let balanced_at = balanced_from.and_then(|i| r.samples.get(i)).map(|s| (s.0 - release) / 1e3);
    let (passes, moves, repeat, steals, lost) = (
        total_counter(&ule().log, "ule_bal_pass"),
        total_counter(&ule().log, "ule_bal_move"),
        total_counter(&ule().log, "ule_bal_repeat"),
        total_counter(&ule().log, "ule_steal"),
        total_counter(&ule().log, "ule_move_lost"),
    );
    let starved = total_counter(&ule().log, "ule_starve");
    // ULE's rule: one steal per idle CPU, then CPU 0 gives one thread per pass.
    let predicted = threads - (cpus - 1) - fair;
    eprintln!(
        "ule: every CPU busy {all_busy:?} ms after the release; exactly {fair} per CPU from {balanced_at:?} s \
         after it (run ends at {:.1} s); balancer: {passes} passes, {moves} moves, {repeat} repeats; \
         {steals} steals; {lost} moves lost to a race; {starved} threads run by the starvation guard; ULE's rule predicts {predicted} passes moving CPU 0's threads; final {last:?}",
        (t_end - release) / 1e3
    );
    let all_busy = all_busy.expect("some CPU never got a thread");
    assert!(all_busy <= 50.0, "idle stealing took {all_busy:.1} ms to give every CPU a thread");
    assert!(last.iter().all(|&n| n == fair), "the run ended at {last:?}, not {fair} per CPU");
    assert_eq!(repeat, 0, "a CPU gave or received two threads in one balancer pass");
    assert!(steals >= (cpus - 1) as u64, "{steals} steals, expected one per idle CPU at least");
    assert!(moves >= predicted as u64 / 2, "{moves} balancer moves for {predicted} predicted");
}

/// Two spinners beside 12 interactive threads that want 2.4 CPUs, all on one
/// CPU, under a 2 s watchdog: ULE runs interactive threads first, so the
/// batch spinners starve. With the guard off the kernel ejects the scheduler;
/// with the guard at 1 s the spinners run in time.
#[test]
fn ule_starvation_guard_keeps_the_watchdog_away() {
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
/// are batch; its wake-to-run latency is reported next to the CFS policy's.
#[test]
fn ule_interactive_thread_classified_and_served_first() {
    let classes = ule_task_classes(&ule().log);
    eprintln!("ule classification at the end of the mixed run: {classes:?}");
    let of = |comm: &str| classes.iter().filter(|(c, _)| c == comm).map(|(_, q)| q.as_str()).collect::<Vec<_>>();
    assert_eq!(of("lg-interactive"), ["interactive"]);
    assert_eq!(of("lg-spinner"), ["batch", "batch", "batch"]);
    let lat = |r: &SpinRun| {
        let l = &r.meta["wake_latency_us"];
        (l["p50"].as_f64().unwrap(), l["p99"].as_f64().unwrap(), l["count"].as_u64().unwrap())
    };
    let (ule_p50, ule_p99, n) = lat(&ule().mixed);
    let (cfs_p50, cfs_p99, _) = lat(spin_run(5));
    eprintln!(
        "wake-to-run latency of the interactive thread beside 3 spinners: ule p50 {ule_p50:.1} us p99 {ule_p99:.1} us \
         ({n} wakeups); cfs p50 {cfs_p50:.1} us p99 {cfs_p99:.1} us"
    );
    assert!(n > 100, "{n} wakeups");
    // Served ahead of batch threads: far below one batch slice (~16-94 ms).
    assert!(ule_p99 < 5000.0, "interactive p99 {ule_p99:.0} us: not served ahead of the spinners");
}
