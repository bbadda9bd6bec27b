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
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// How long the mixed workload runs in each VM, in guest seconds.
const STRESS_SECS: u32 = 20;
/// The oldest kernel's VM (both policies, one after the other) is one of the
/// two longest jobs: a shorter mixed workload there (check-native's native
/// checks pass with the same), the full one on the newest kernel.
const OLDEST_STRESS_SECS: u32 = 10;
/// Wall-clock limit for one VM run (boot, checks, shutdown): a hang's limit,
/// far above any job's time (the longest, oldest, took 1501 s with the
/// machine loaded twice over on 2026-12-06 and was cut there).
const VM_TIMEOUT_SECS: u32 = 2400;

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

/// One scripts/vm run: which preset, kernel and command, and how it ended.
struct VmRun {
    status: Option<i32>,
    wall_secs: f64,
    out: PathBuf,
    stderr: String,
}

fn check_bins() {
    let bins = bin_dir();
    for b in ["scx_battle", "loadgen", "analysis"] {
        assert!(
            bins.join(b).is_file(),
            "{} is missing: run `cargo build --release --workspace` before the tests",
            bins.join(b).display()
        );
    }
}

/// Run COMMAND on PRESET (booted with KERNEL: newest or oldest) through scripts/vm.
fn run_vm(name: &str, preset: &str, kernel: &str, command: &[&str]) -> VmRun {
    check_bins();
    let out = repo().join("results/tmp").join(format!("test-{name}-{}", std::process::id()));
    let t = Instant::now();
    let res = Command::new(repo().join("scripts/vm"))
        .args(["--preset", preset, "--quiet", "--timeout", &VM_TIMEOUT_SECS.to_string(), "--out"])
        .arg(&out)
        .arg("--")
        .args(command)
        .env("SCX_BATTLE_BIN", bin_dir())
        .env("SCX_BATTLE_KERNEL", kernel)
        .output()
        .expect("running scripts/vm");
    let wall_secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    eprintln!("[{name}] scripts/vm ({preset}, {kernel} kernel) finished in {wall_secs:.0} s with {:?}\n{stderr}", res.status.code());
    VmRun { status: res.status.code(), wall_secs, out, stderr }
}

/// PASS/FAIL lines of a checks file: check name -> (passed, detail).
fn read_checks(path: &Path) -> BTreeMap<String, (bool, String)> {
    let mut checks = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (verdict, name, detail) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        if let (Some(v), Some(n)) = (verdict, name) {
            checks.insert(n.to_string(), (v == "PASS", detail.to_string()));
        }
    }
    checks
}

/// scripts/check-scheduler for each policy in one boot (scripts/check-policies),
/// then, in the same boot, scripts/check-crowded-start for CROWDED's schedulers
/// with `threads` threads (none: skipped). Returns the checks per policy and the VM run.
fn run_policies(
    name: &'static str,
    preset: &'static str,
    kernel: &str,
    stress_secs: u32,
    policies: &[&str],
    crowded: Option<(usize, &[&str])>,
) -> (Vec<Run>, VmRun) {
    let mut script = format!("scripts/check-policies --stress-secs {stress_secs} {}; rc=$?", policies.join(" "));
    if let Some((threads, scheds)) = crowded {
        script += &format!("; scripts/check-crowded-start --threads {threads} --pin-secs {CROWDED_PIN_SECS} {} || rc=1", scheds.join(" "));
    }
    script += "; exit $rc";
    let vm = run_vm(name, preset, kernel, &["bash", "-c", &script]);
    let runs = policies
        .iter()
        .map(|p| Run {
            preset: Box::leak(format!("{name}/{p}").into_boxed_str()),
            status: vm.status,
            wall_secs: vm.wall_secs,
            out: vm.out.join(p),
            stderr: vm.stderr.clone(),
            checks: read_checks(&vm.out.join(p).join("checks.txt")),
        })
        .collect();
    (runs, vm)
}

/// The run directories scripts/check-recorder leaves: spin and mixed, under
/// the kernel's scheduler and under scx_battle.
type RecorderRuns = [Result<SpinRun, String>; 7];
const REC_DIRS: [&str; 7] =
    ["kernel", "scx_battle", "mixed-kernel", "mixed-scx_battle", "cfs", "mixed-cfs", "cfs-nice"];

/// Every VM run of this file, started on first use, two at a time (one VM
/// per host core under icount), longest first. Natively (this machine has
/// sched_ext) one at a time.
struct AllRuns {
    small: Run,
    paper: Run,
    small_cfs: Run,
    small_ule: Run,
    oldest_cfs: Run,
    oldest_ule: Run,
    recorder: RecorderRuns,
    ule: Result<UleRuns, String>,
    smt: VmRun,
    ccx: VmRun,
    cxl_native: VmRun,
    starvation: VmRun,
    interrupts: Interrupts,
    /// The boots that ran scripts/check-crowded-start, by job name.
    crowded: BTreeMap<&'static str, VmRun>,
}

#[derive(Default)]
struct Slots {
    small: Mutex<Vec<Run>>,
    paper: Mutex<Vec<Run>>,
    oldest: Mutex<Vec<Run>>,
    recorder: Mutex<Option<RecorderRuns>>,
    ule: Mutex<Option<Result<UleRuns, String>>>,
    smt: Mutex<Option<VmRun>>,
    ccx: Mutex<Option<VmRun>>,
    cxl_native: Mutex<Option<VmRun>>,
    starvation: Mutex<Option<VmRun>>,
    interrupts: Mutex<Option<Interrupts>>,
    crowded: Mutex<BTreeMap<&'static str, VmRun>>,
}

/// A VM job: its name (for the wall time it prints) and what it runs.
type Job = (&'static str, Box<dyn FnOnce(&Slots) + Send>);

fn all() -> &'static AllRuns {
    static ALL: OnceLock<AllRuns> = OnceLock::new();
    ALL.get_or_init(|| {
        let shape = ["scripts/check-shape"];
        let jobs: Vec<Job> = vec![
            ("paper", Box::new(|s| {
                let (runs, vm) = run_policies("paper", "paper", "newest", STRESS_SECS, &["vtime"], Some((PAPER_THREADS, &["kernel", "vtime", "cfs", "ule"])));
                *s.paper.lock().unwrap() = runs;
                s.crowded.lock().unwrap().insert("paper", vm);
            })),
            ("paper-oldest", Box::new(|s| {
                let (threads, pin) = (PAPER_THREADS.to_string(), CROWDED_PIN_SECS.to_string());
                let vm = run_vm("paper-oldest", "paper", "oldest", &["scripts/check-crowded-start", "--threads", &threads, "--pin-secs", &pin, "cfs", "ule"]);
                s.crowded.lock().unwrap().insert("paper-oldest", vm);
            })),
            ("cxl-native", Box::new(|s| *s.cxl_native.lock().unwrap() = Some(run_vm("cxl-native", "cxl", "newest", &["scripts/check-native"])))),
            ("ule", Box::new(|s| *s.ule.lock().unwrap() = Some(run_ule()))),
            ("smt", Box::new(move |s| *s.smt.lock().unwrap() = Some(run_vm("smt", "smt", "newest", &shape)))),
            ("ccx", Box::new(move |s| *s.ccx.lock().unwrap() = Some(run_vm("ccx", "ccx", "newest", &shape)))),
            ("small", Box::new(|s| {
                let (runs, vm) = run_policies("small", "small", "newest", STRESS_SECS, &["vtime", "cfs", "ule"], Some((SPIN_THREADS, &["vtime", "cfs", "ule"])));
                *s.small.lock().unwrap() = runs;
                s.crowded.lock().unwrap().insert("small", vm);
            })),
            ("oldest", Box::new(|s| *s.oldest.lock().unwrap() = run_policies("oldest", "flat", "oldest", OLDEST_STRESS_SECS, &["cfs", "ule"], None).0)),
            ("small-oldest", Box::new(|s| {
                let (threads, pin) = (SPIN_THREADS.to_string(), CROWDED_PIN_SECS.to_string());
                let vm = run_vm("small-oldest", "small", "oldest", &["scripts/check-crowded-start", "--threads", &threads, "--pin-secs", &pin, "vtime", "cfs", "ule"]);
                s.crowded.lock().unwrap().insert("small-oldest", vm);
            })),
            ("recorder", Box::new(|s| *s.recorder.lock().unwrap() = Some(run_recorder()))),
            ("starvation", Box::new(|s| *s.starvation.lock().unwrap() = Some(run_vm("starvation", "small", "newest", &["scripts/check-starvation"])))),
            ("interrupts", Box::new(|s| *s.interrupts.lock().unwrap() = Some(run_interrupts()))),
        ];
        let slots = Slots::default();
        let queue = Mutex::new(jobs.into_iter());
        let workers = if native() { 1 } else { 2 };
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let job = queue.lock().unwrap().next();
                    match job {
                        Some((name, job)) => {
                            let t = std::time::Instant::now();
                            job(&slots);
                            eprintln!("[{name}] VM job took {:.0} s of wall time", t.elapsed().as_secs_f64());
                        }
                        None => break,
                    }
                });
            }
        });
        let mut small = std::mem::take(&mut *slots.small.lock().unwrap()).into_iter();
        let mut oldest = std::mem::take(&mut *slots.oldest.lock().unwrap()).into_iter();
        let take = |m: &Mutex<Option<VmRun>>| m.lock().unwrap().take().expect("VM job did not run");
        let paper = std::mem::take(&mut *slots.paper.lock().unwrap()).pop().expect("paper run");
        let recorder = slots.recorder.lock().unwrap().take().expect("recorder run");
        let ule = slots.ule.lock().unwrap().take().expect("ULE run");
        let interrupts = slots.interrupts.lock().unwrap().take().expect("interrupt runs");
        let crowded = std::mem::take(&mut *slots.crowded.lock().unwrap());
        AllRuns {
            paper,
            small: small.next().expect("small vtime run"),
            small_cfs: small.next().expect("small cfs run"),
            small_ule: small.next().expect("small ule run"),
            oldest_cfs: oldest.next().expect("oldest-kernel cfs run"),
            oldest_ule: oldest.next().expect("oldest-kernel ule run"),
            recorder,
            ule,
            smt: take(&slots.smt),
            ccx: take(&slots.ccx),
            cxl_native: take(&slots.cxl_native),
            starvation: take(&slots.starvation),
            interrupts,
            crowded,
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
    small_monitor => small "monitor",
    small_monitor_without_scheduler => small "monitor_without_scheduler",
    small_hotplug_restart => small "hotplug_restart",
    small_clean_exit => small "clean_exit",
    small_ejection_reported => small "ejection_reported",
    small_kernel_log_clean => small "kernel_log_clean",
    cfs_small_load => small_cfs "load",
    cfs_small_mixed_workload => small_cfs "mixed_workload",
    cfs_small_never_ejected => small_cfs "never_ejected",
    cfs_small_stats_printed => small_cfs "stats_printed",
    cfs_small_monitor => small_cfs "monitor",
    cfs_small_hotplug_restart => small_cfs "hotplug_restart",
    cfs_small_clean_exit => small_cfs "clean_exit",
    cfs_small_ejection_reported => small_cfs "ejection_reported",
    cfs_small_kernel_log_clean => small_cfs "kernel_log_clean",
    ule_small_load => small_ule "load",
    ule_small_mixed_workload => small_ule "mixed_workload",
    ule_small_never_ejected => small_ule "never_ejected",
    ule_small_stats_printed => small_ule "stats_printed",
    ule_small_monitor => small_ule "monitor",
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
    oldest_kernel_cfs_load => oldest_cfs "load",
    oldest_kernel_cfs_mixed_workload => oldest_cfs "mixed_workload",
    oldest_kernel_cfs_never_ejected => oldest_cfs "never_ejected",
    oldest_kernel_cfs_hotplug_restart => oldest_cfs "hotplug_restart",
    oldest_kernel_cfs_clean_exit => oldest_cfs "clean_exit",
    oldest_kernel_cfs_kernel_log_clean => oldest_cfs "kernel_log_clean",
    oldest_kernel_ule_load => oldest_ule "load",
    oldest_kernel_ule_mixed_workload => oldest_ule "mixed_workload",
    oldest_kernel_ule_never_ejected => oldest_ule "never_ejected",
    oldest_kernel_ule_hotplug_restart => oldest_ule "hotplug_restart",
    oldest_kernel_ule_clean_exit => oldest_ule "clean_exit",
    oldest_kernel_ule_kernel_log_clean => oldest_ule "kernel_log_clean",
}

#[test]
fn every_check_passed_and_vm_exit_status_agrees() {
    for run in [&all().small, &all().paper, &all().small_cfs, &all().small_ule, &all().oldest_cfs, &all().oldest_ule] {
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
        // Bad usage: exit status 2 (docs/cli.md).
        assert_eq!(res.status.code(), Some(2), "{args:?}: {err}");
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
        .args(["--", "sleep", "100000"])
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
    meta: rundata::Meta,
    /// time_ms -> threads per CPU (index = cpu)
    samples: Vec<(f64, Vec<u32>)>,
    /// (thread, cpu_time_ms, migrations)
    threads: Vec<(u32, f64, u64)>,
    migration_rows: usize,
}

fn read_spin_run(dir: &Path) -> Result<SpinRun, String> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{}/{f}: {e}", dir.display()));
    let meta = rundata::Meta::parse(&read("meta.json")?).map_err(|e| format!("{}/meta.json: {e}", dir.display()))?;
    let mut by_time: BTreeMap<String, (f64, Vec<u32>)> = BTreeMap::new();
    for (i, line) in read("timeline.csv")?.lines().enumerate() {
        if i == 0 {
            assert_eq!(line, rundata::TIMELINE_HEADER);
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
    eprintln!("[{}] meta: {}", r.dir.display(), m.to_json());
    assert!(m.complete, "run not complete");
    let name = &m.scheduler.name;
    assert!(name.starts_with(scheduler_prefix), "scheduler {name}, expected {scheduler_prefix}");
    assert_eq!(m.threads, Some(SPIN_THREADS as u64));
    assert_eq!(m.lost_events, Some(0));
    assert_eq!(m.untracked_cpu_events, Some(0));
    assert_eq!(m.inconsistent_samples, Some(0));
    assert!(m.samples.unwrap() > 500, "too few samples for 8 s at 10 ms");
    let pct = m.recorder_cpu.as_ref().unwrap().percent_of_machine;
    assert!(pct.is_finite() && pct > 0.0, "recorder cost {pct}");
    assert_eq!(Some(r.migration_rows as u64), m.migrations);
}

/// Every sample adds up to all threads; all on CPU 0 until the release; on
/// every CPU by the end.
fn check_spin_timeline(r: &SpinRun) {
    let release = r.meta.release_ms.expect("release_ms");
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
        r.meta.release_spread_ms.unwrap(),
        first_spread.unwrap() - release,
    );
}

/// /proc/<pid>/task/*/stat agrees with the recorder.
fn check_spin_proc(r: &SpinRun) {
    let checks = &r.meta.proc_checks;
    assert_eq!(checks.len(), 3, "{checks:?}");
    for c in checks {
        assert_eq!(c.unreadable, 0, "{c:?}");
        assert_eq!(c.not_runnable, Some(0), "a spinner was asleep: {c:?}");
    }
    // Pinned: nothing can move, so the two must agree exactly.
    assert_eq!(checks[0].placed_differently, 0, "pinned phase: {:?}", checks[0]);
    // Spreading: each /proc read is bracketed by two recorder reads, so only a
    // thread that moved twice within microseconds can differ; allow two.
    for c in &checks[1..] {
        let d = c.placed_differently;
        assert!(d <= 2, "after release {d} threads placed differently: {c:?}");
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
    eprintln!("[{}] wake latency us: {:?}", r.dir.display(), m.wake_latency_us);
    assert!(m.complete);
    assert!(m.scheduler.name.starts_with(scheduler_prefix));
    assert_eq!(m.lost_events, Some(0));
    assert_eq!(m.inconsistent_samples, Some(0));
    let lat = m.wake_latency_us.as_ref().expect("wake_latency_us");
    // 3 s of 10 ms sleeps plus 0.5 ms runs: about 280 wakeups.
    assert!(lat.count > 100, "{lat:?}");
    let (p50, p99, max) = (lat.p50, lat.p99, lat.max);
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat:?}");
    // A wakeup, a context switch and the tracepoints take microseconds, and
    // the spinners sharing the CPU make some waits far longer: a histogram
    // stuck below 1 us, or with nothing longer than its median, is broken.
    assert!(p50 >= 0.5 && max > p50, "implausible wake-to-run latencies: {lat:?}");
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
        let rel = r.meta.release_ms.unwrap();
        r.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|(t, _)| t - rel)
    };
    let log = std::fs::read_to_string(cfs.dir.parent().unwrap().join("cfs.log")).expect("cfs.log of the recorder run");
    let nohz_kicks = total_counter(&log, "nohz_kick");
    eprintln!(
        "every CPU busy after the release: cfs {:?} ms, kernel {:?} ms; cfs final {last:?}; {nohz_kicks} NOHZ kicks",
        busy(cfs),
        busy(kernel)
    );
    let (cfs_busy, kernel_busy) = (
        busy(cfs).expect("some CPU never got a thread under cfs"),
        busy(kernel).expect("some CPU never got a thread under the kernel"),
    );
    // Idle CPUs have no tick: only the NOHZ idle balancer wakes them to pull.
    // Without it they wait for a stray wakeup (hundreds of ms). One sample
    // interval (10 ms) of slack.
    assert!(nohz_kicks > 0, "the NOHZ idle balancer never woke an idle CPU");
    assert!(
        cfs_busy <= kernel_busy + 10.0,
        "cfs took {cfs_busy:.0} ms to give every CPU a thread, the kernel {kernel_busy:.0} ms"
    );
}

/// The interactive thread pinned beside 3 spinners wakes with a vruntime far
/// behind theirs (it sleeps 95% of the time), so CFS's wakeup preemption runs
/// it at once (measured: p99 10-40 us; only its first few wakeups, before its
/// lag reaches the sleeper floor, may wait for a tick). A wakeup test against
/// a stale vruntime snapshot let it wait for a spinner's slice (p99 1.6-17 ms).
#[test]
fn cfs_pinned_wakeup_preempts() {
    let l = spin_run(5).meta.wake_latency_us.as_ref().expect("wake_latency_us");
    let (p99, n) = (l.p99, l.count);
    eprintln!("cfs pinned mixed run: {l:?}");
    assert!(n > 100, "{n} wakeups");
    assert!(p99 <= 1000.0, "wake-to-run p99 {p99:.0} us beside 3 spinners");
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
/// and scx_battle's logs of them.
struct UleRuns {
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
/// ULE counts every runnable thread, not only the spinners: a stray thread
/// (a kworker, the scheduler's own stats reader) running at a pass makes the
/// balancer move a spinner off its CPU, and the next pass moves it back, the
/// k+1/k rotation FreeBSD's sched_balance_pair does too. So from the first
/// perfectly balanced sample on, the test wants the counts exact most of the
/// time and never more than one thread off, rather than exact at one instant.
#[test]
fn ule_spreading_steals_then_balances_exactly() {
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

/// Once ULE's spreading run is balanced, 16 spinners share each CPU in
/// slices of sched_slice_min (~16 ms), so every thread runs in every second
/// and none runs for much more than its share (62 ms a second). loadgen's
/// SCHED_FIFO sampler, waking every 10 ms, displaces the spinner it lands
/// on; that thread keeps the rest of its slice. When such a switch started a
/// fresh slice, the interrupted spinner kept its CPU for ~0.93 s at a time
/// and its 15 queue mates waited ~14 s each (measured on one CPU of a
/// check-ule run). From thread_time.csv, a sample of every thread's CPU time
/// per second.
#[test]
fn ule_balanced_spinners_share_their_cpu_in_short_turns() {
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
fn ule_preempted_threads_resume_at_the_head() {
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
/// child's first turn is sched_slice_min plus whole quanta (ULE may keep it on the CPU for more slices when its
/// calendar bucket comes first), where a child given a full first slice
/// would run whole quanta only. A slice ends at the first tick after it is
/// used up, so at this HZ a quantum lasts a whole number of ticks.
#[test]
fn ule_fork_first_slice_is_slice_min() {
    let r = &ule().slices_fork;
    let (quantum, slice_min, tick) = ule_slice_params();
    assert!(ule().slices_env.contains("hz=") && !ule().slices_env.contains("hz=unknown"), "the guest's HZ is unknown");
    let q_ticks = (quantum / tick).ceil() * tick;
    let children = r["children"].as_array().expect("children");
    let mut matched = 0;
    for (i, c) in children.iter().enumerate() {
        let first = c["first"]["on_ms"].as_f64().expect("first.on_ms");
        let n = c["first"]["interruptions"].as_f64().unwrap_or(0.0);
        let k = (0..=8).find(|&k| {
            let base = slice_min + k as f64 * q_ticks;
            first >= base - 1.0 - k as f64 - 1.2 * n && first <= base + tick + 1.0 + k as f64
        });
        matched += k.is_some() as usize;
        eprintln!(
            "ule fork: child {i}: first turn {first:.2} ms ({n} interruptions, began {:.2} ms after its creation): \
             sched_slice_min {slice_min:.2} ms + {k:?} quanta of {q_ticks:.0} ms (tick {tick:.1} ms); later turns {:.1?}",
            c["first"]["start_ms"].as_f64().unwrap_or(f64::NAN),
            turn_ms(&c["later"]),
        );
    }
    // Measured (small, 7.3.4, icount): single children's first turns of 15.9,
    // 303.9 (slice_min + 3 quanta) and 199.9 ms, the last interrupted once
    // and about 8 ms short of slice_min + 2 quanta, unexplained; hence a
    // majority of five.
    assert!(children.len() >= 3, "only {} children", children.len());
    assert!(
        matched * 2 > children.len(),
        "only {matched} of {} children ran sched_slice_min ({slice_min:.2} ms) plus whole quanta ({q_ticks:.0} ms) first",
        children.len()
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
fn ule_preempted_thread_resumes_with_the_rest_of_its_slice() {
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
    // Measured on small (7.3.4, icount): 23 of 31 and 28 of 32 whole; the others are cut
    // short (4-57 ms) or run past a quantum boundary, probably where a thread
    // woken on the CPU itself (a kworker) asked for a reschedule, which sends
    // the spinner back to its place in the calendar, not to the head. Before
    // the fix (the switch compared the slice again while the woken thread
    // halved tdq_slice): 3 of 46.
    assert!(n_whole * 2 >= on.len(), "only {n_whole} of {} turns are whole quanta ({quantum:.2} ms, + a tick)", on.len());
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
fn ule_balancer_rotates_threads_that_dont_divide_evenly() {
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
/// Threads inherit their parent's history: check-ule lets its shell sleep
/// under the fresh scheduler first, or the interactive thread would start
/// at the neutral score 50 (batch) and wait behind the spinners' slices
/// for its first second (measured: p99 25.5 ms over a 5 s run).
#[test]
fn ule_interactive_thread_classified_and_served_first() {
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
    let (cfs_p50, cfs_p99, _) = lat(spin_run(5));
    eprintln!(
        "wake-to-run latency of the interactive thread beside 3 spinners: ule p50 {ule_p50:.1} us p99 {ule_p99:.1} us \
         ({n} wakeups); cfs p50 {cfs_p50:.1} us p99 {cfs_p99:.1} us"
    );
    assert!(n > 100, "{n} wakeups");
    // Served ahead of batch threads: far below one batch slice (~16-94 ms).
    assert!(ule_p99 < 5000.0, "interactive p99 {ule_p99:.0} us: not served ahead of the spinners");
}

// --- Machine shapes: smt, ccx (scripts/check-shape) ---------------------------

/// What a shape run left: per policy, the log, the stress report, the spin run.
struct ShapeRun {
    log: String,
    stress: serde_json::Value,
    spin: SpinRun,
    state: String,
}

fn shape(which: &str, policy: &str) -> ShapeRun {
    let vm = match which {
        "smt" => &all().smt,
        _ => &all().ccx,
    };
    let why = || format!("scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr);
    let read = |f: &str| std::fs::read_to_string(vm.out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}\n{}", why()));
    ShapeRun {
        log: read(&format!("{policy}.log")),
        stress: serde_json::from_str(&read(&format!("{policy}-stress.json"))).expect("stress.json"),
        spin: read_spin_run(&vm.out.join(format!("{policy}-spin"))).unwrap_or_else(|e| panic!("{e}\n{}", why())),
        state: read(&format!("{policy}.state")).trim().to_string(),
    }
}

/// The guest's topology as loadgen recorded it: (CPUs, nodes with CPUs, LLCs).
fn recorded_topology(r: &SpinRun) -> (usize, Vec<Vec<usize>>, usize) {
    let t = &r.meta.topology;
    let nodes: Vec<Vec<usize>> = t.nodes.iter().filter(|n| !n.is_empty()).cloned().collect();
    (t.cpus.len(), nodes, t.llcs.len())
}

/// The guest sees the shape the preset asks QEMU for.
fn check_shape_topology(which: &str, cpus: usize, nodes: usize, llcs: usize, smt: bool) {
    let r = shape(which, "cfs");
    let (c, n, l) = recorded_topology(&r.spin);
    let start = r.log.lines().find(|l| l.starts_with("scx_battle: policy")).unwrap_or("").to_string();
    eprintln!("[{which}] guest: {c} CPUs, {} nodes, {l} LLCs; scx_battle: {start}", n.len());
    assert_eq!((c, n.len(), l), (cpus, nodes, llcs), "[{which}] guest topology");
    assert!(start.contains(if smt { "SMT on" } else { "SMT off" }), "[{which}] {start}");
}

/// The domains each policy logs follow from the detected topology: CFS
/// balances at the SMT level iff there is SMT, at the node level iff a node
/// holds more than one LLC; ULE's sched_pickcpu walks down to SMT threads iff
/// there is SMT, through nodes iff there are several LLCs per node.
fn check_shape_domains(which: &str) {
    let (cfs, ule) = (shape(which, "cfs"), shape(which, "ule"));
    let (_, nodes, llcs) = recorded_topology(&cfs.spin);
    let smt = cfs.log.contains("SMT on");
    let node_level = llcs > nodes.len();
    let cfs_line = cfs.log.lines().find(|l| l.contains("cfs: balances over")).expect("no cfs domain line").to_string();
    let ule_line = ule.log.lines().find(|l| l.contains("ule: sched_pickcpu walks")).expect("no ule placement line").to_string();
    eprintln!("[{which}] {cfs_line}\n[{which}] {ule_line}");
    for line in cfs.log.lines().filter(|l| l.starts_with("scx_battle: domain")) {
        eprintln!("[{which}] {line}");
    }
    assert_eq!(cfs_line.contains("smt (imbalance_pct 110)"), smt, "{cfs_line}");
    assert_eq!(cfs_line.contains("node (imbalance_pct 125)"), node_level, "{cfs_line}");
    assert!(cfs_line.contains("llc (imbalance_pct 117)") && cfs_line.contains("machine"), "{cfs_line}");
    assert_eq!(ule_line.contains("SMT threads"), smt, "{ule_line}");
    assert_eq!(ule_line.contains(&format!("{} nodes", nodes.len())), node_level, "{ule_line}");
    assert!(ule_line.contains(&format!("{llcs} LLCs")), "{ule_line}");
}

/// Both policies stay loaded through the mixed workload and the spreading run.
fn check_shape_survives(which: &str) {
    for policy in ["cfs", "ule"] {
        let r = shape(which, policy);
        eprintln!("[{which}/{policy}] stress: {}; state after the runs: {}", r.stress, r.state);
        assert_eq!(r.state, "enabled", "[{which}/{policy}] ejected: {}", r.log.lines().find(|l| l.contains("EXIT")).unwrap_or(""));
        assert_eq!(r.stress["spinners_starved"], 0);
        assert!(r.stress["execs"].as_u64().unwrap() > 0 && r.stress["exec_failures"] == 0, "{}", r.stress);
        assert!(r.spin.meta.complete);
    }
}

/// CFS: every CPU busy, and the end within CFS's thresholds for the recorded
/// topology, level by level as Linux's domains have them: node totals within
/// 125%; the LLCs of one node (Linux's package level, imbalance_pct 125) by
/// their average per CPU within 125% (+1 thread); the CPUs of one LLC within
/// 117% (+1 thread).
fn check_shape_cfs_spread(which: &str) {
    let r = shape(which, "cfs");
    let (_, nodes, _) = recorded_topology(&r.spin);
    let llcs: Vec<Vec<usize>> = r.spin.meta.topology.llcs.clone();
    let rel = r.spin.meta.release_ms.unwrap();
    let (t, last) = r.spin.samples.last().unwrap();
    let busy = r.spin.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|s| s.0 - rel);
    let totals: Vec<u32> = nodes.iter().map(|n| n.iter().map(|&c| last[c]).sum()).collect();
    eprintln!("[{which}/cfs] every CPU busy {busy:?} ms after the release; at {:.1} s: per node {totals:?}, per CPU {last:?}", (t - rel) / 1e3);
    assert!(busy.is_some(), "a CPU never got a thread");
    let (nmin, nmax) = (*totals.iter().min().unwrap(), *totals.iter().max().unwrap());
    assert!(nmax * 100 <= nmin * 125, "node totals {totals:?} beyond 125%");
    for n in &nodes {
        // Average per CPU of each LLC of this node, in hundredths of a thread.
        let avgs: Vec<u32> = llcs
            .iter()
            .filter(|l| l.iter().all(|c| n.contains(c)) && !l.is_empty())
            .map(|l| l.iter().map(|&c| last[c]).sum::<u32>() * 100 / l.len() as u32)
            .collect();
        let (amin, amax) = (*avgs.iter().min().unwrap(), *avgs.iter().max().unwrap());
        assert!(amax * 100 <= amin * 125 + 100 * 100, "LLC averages (x100) {avgs:?} of node {n:?} beyond 125% (+1)");
    }
    for l in &llcs {
        let c: Vec<u32> = l.iter().map(|&c| last[c]).collect();
        let (cmin, cmax) = (*c.iter().min().unwrap(), *c.iter().max().unwrap());
        assert!(cmin > 0 && cmax * 100 <= cmin * 117 + 100, "per-CPU counts {c:?} of one LLC beyond 117% (+1)");
    }
}

/// ULE: every CPU busy at once (idle stealing), then CPU 0's balancer gives
/// one thread per pass, never two CPUs the same pass twice.
fn check_shape_ule_spread(which: &str) {
    let r = shape(which, "ule");
    let rel = r.spin.meta.release_ms.unwrap();
    let busy = r.spin.samples.iter().find(|(t, c)| *t >= rel && c.iter().all(|&n| n > 0)).map(|s| s.0 - rel);
    let after_steals = r.spin.samples.iter().find(|(t, _)| *t >= rel + 200.0).map(|s| s.1[0]).unwrap();
    let (t, last) = r.spin.samples.last().unwrap();
    let (passes, moves, repeat, steals) = (
        total_counter(&r.log, "ule_bal_pass"),
        total_counter(&r.log, "ule_bal_move"),
        total_counter(&r.log, "ule_bal_repeat"),
        total_counter(&r.log, "ule_steal"),
    );
    eprintln!(
        "[{which}/ule] every CPU busy {busy:?} ms after the release; CPU 0: {after_steals} threads 0.2 s after it, {} at {:.1} s; \
         {passes} passes, {moves} moves, {repeat} repeats, {steals} steals; final {last:?}",
        last[0],
        (t - rel) / 1e3
    );
    let busy = busy.expect("a CPU never got a thread");
    assert!(busy <= 50.0, "idle stealing took {busy:.1} ms");
    assert_eq!(repeat, 0, "a CPU gave or got two threads in one pass");
    assert!(passes >= 10, "{passes} balancer passes");
    let gave = after_steals.saturating_sub(last[0]) as u64;
    assert!(gave * 10 >= passes * 8, "CPU 0 gave {gave} threads in {passes} passes: not one per pass");
}

macro_rules! shape_tests {
    ($($test:ident => $check:ident($($arg:expr),*)),* $(,)?) => {
        $(#[test] fn $test() { $check($($arg),*); })*
    };
}

shape_tests! {
    smt_guest_topology => check_shape_topology("smt", 16, 2, 2, true),
    smt_domains => check_shape_domains("smt"),
    smt_policies_survive => check_shape_survives("smt"),
    smt_cfs_spread => check_shape_cfs_spread("smt"),
    smt_ule_spread => check_shape_ule_spread("smt"),
    ccx_guest_topology => check_shape_topology("ccx", 16, 2, 4, false),
    ccx_domains => check_shape_domains("ccx"),
    ccx_policies_survive => check_shape_survives("ccx"),
    ccx_cfs_spread => check_shape_cfs_spread("ccx"),
    ccx_ule_spread => check_shape_ule_spread("ccx"),
}

// --- The paper's starvation claim (scripts/check-starvation) -----------------

/// One run of scripts/check-starvation (batch or identical, cfs or ule),
/// measured by the study's own report code.
fn starvation(name: &str) -> (analysis::serve::ServeRun, analysis::serve::ServeSummary) {
    let vm = &all().starvation;
    let dir = vm.out.join(name);
    let run = analysis::serve::ServeRun::load(&dir).unwrap_or_else(|e| {
        panic!("{name}: {e:#}\nscripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr)
    });
    let s = analysis::serve::summarize(&run);
    eprintln!("[starvation] {name}: {}", serde_json::to_string(&s).unwrap());
    assert!(s.complete, "{name}: the run did not complete");
    (run, s)
}

/// A batch thread beside 8 servers that together ask for the whole CPU:
/// ULE runs the interactive servers first and the batch thread gets almost
/// nothing (the paper's fibo beside sysbench), while every server gets what
/// it asks for and they serve more requests than under CFS; CFS gives the
/// batch thread its fair share (a ninth). Under ULE the servers take some
/// seconds to line up their turns (measured: 12-13 s; until then the batch
/// thread gets 5-7 % in the gaps), hence 40 s runs for 10 s of starvation.
#[test]
fn ule_starves_a_batch_thread_and_cfs_does_not() {
    let (_, ule) = starvation("batch-ule");
    let (_, cfs) = starvation("batch-cfs");
    assert!(ule.batch_starved_s >= 10.0, "ule: the batch thread got under 5 % of the CPU for only {:.1} s", ule.batch_starved_s);
    assert!(ule.servers_share_percent >= 95.0, "ule: the servers got {:.1} % of the CPU", ule.servers_share_percent);
    assert_eq!(ule.servers_starved, 0, "ule: a server starved beside the batch thread");
    assert!(ule.servers_jain.unwrap() >= 0.95, "ule: the servers' CPU times are uneven: Jain {:?}", ule.servers_jain);
    assert!(
        cfs.batch_share_percent >= 0.8 * cfs.batch_fair_percent,
        "cfs: the batch thread got {:.1} % of the CPU, under 80 % of its fair share ({:.1} %)",
        cfs.batch_share_percent,
        cfs.batch_fair_percent
    );
    assert!(cfs.batch_starved_s < 1.0, "cfs: the batch thread got under 5 % of the CPU for {:.1} s", cfs.batch_starved_s);
    let (u, c) = (ule.requests_per_s.unwrap(), cfs.requests_per_s.unwrap());
    assert!(u > c, "the servers answered {u:.0} requests/s under ULE, {c:.0} under CFS: starving the batch thread should pay");
}

/// Identical servers asking for twice the CPU: under ULE the ones whose
/// score came out better keep the CPU and at least one waits 5 s or more
/// for it (gets under 5 % of the CPU for 5 s: a lucky turn now and then
/// when every better server thinks at once; measured, the longest single
/// wait of such a server is 1-3.5 s and its total 27-29 s of 30); under CFS
/// every one runs within a few latency periods.
#[test]
fn ule_starves_identical_threads_and_cfs_does_not() {
    let (ule_run, ule) = starvation("identical-ule");
    let (_, cfs) = starvation("identical-cfs");
    assert!(ule.servers_starved >= 1, "ule: no server got under 5 % of the CPU for 5 s");
    // ... while others run: some servers got their whole quarter.
    let busy = ule_run.threads.iter().filter(|t| t.cpu_ms / 1e3 / ule_run.secs >= 0.2).count();
    assert!(busy >= 1, "ule: no server got 20 % of the CPU");
    // CFS: 9 runnable threads at most, sched_latency 24 ms stretched to 3 ms
    // each: a wait beyond a few periods (100 ms) is not CFS.
    assert!(cfs.servers_longest_wait_ms <= 100.0, "cfs: a server waited {:.0} ms", cfs.servers_longest_wait_ms);
    assert_eq!(cfs.servers_starved, 0, "cfs: a server got under 5 % of the CPU for 5 s");
}

/// ULE's classification is recorded on the run's clock: every thread has
/// samples within the run, scores in 0..=100, and the batch thread ends in
/// the batch queue while the servers that ran are interactive.
#[test]
fn ule_classification_is_recorded_over_time() {
    let (run, s) = starvation("batch-ule");
    let samples = run.ule.as_ref().expect("batch-ule has no ule_tasks.csv");
    for t in &run.threads {
        let mine: Vec<_> = samples.iter().filter(|u| u.tid == t.tid && u.t >= 0.0 && u.t <= run.secs + 1.0).collect();
        assert!(mine.len() as f64 >= run.secs * 5.0, "thread {} ({}): {} samples in {:.0} s", t.tid, t.kind, mine.len(), run.secs);
        assert!(mine.iter().all(|u| u.score <= 100));
        let last = mine.last().unwrap();
        if t.is_batch() {
            assert_eq!(last.queue, "batch", "the batch thread: {last:?}");
        } else if t.cpu_ms / 1e3 / run.secs >= 0.05 {
            assert_eq!(last.queue, "interactive", "a server that ran: {last:?}");
        }
    }
    eprintln!("[starvation] guard rescues in batch-ule: {:?}", s.guard_rescues);
}

// --- The native path in a guest with a memory-only node (scripts/check-native) ---

fn native_check(name: &str) {
    let vm = &all().cxl_native;
    let checks = read_checks(&vm.out.join("native-checks.txt"));
    match checks.get(name) {
        Some((true, detail)) => eprintln!("[cxl native] {name}: {detail}"),
        Some((false, detail)) => panic!("[cxl native] {name} failed: {detail}\n(results in {})", vm.out.display()),
        None => panic!("[cxl native] {name} never ran: scripts/vm exited {:?}; results in {}\n{}", vm.status, vm.out.display(), vm.stderr),
    }
}

shape_tests! {
    native_doctor => native_check("doctor"),
    native_scheduler_checks => native_check("checks"),
    native_quick_study => native_check("study"),
    native_study_run_as_a_perfetto_trace => native_check("trace"),
    native_killed_loadgen_leaves_nothing => native_check("killed_loadgen"),
    native_sigint_leaves_nothing => native_check("interrupted"),
}

/// The cxl guest has a memory-only node: meta.json lists it without CPUs,
/// the summary says so and is not thrown off by it.
#[test]
fn cxl_memory_only_node_in_the_study() {
    let dir = all().cxl_native.out.join("study");
    let r = read_spin_run(&dir.join("cfs")).map_err(|e| e.to_string());
    let meta = match r {
        Ok(r) => r.meta,
        Err(_) => analysis::run::load_meta(&dir.join("cfs")).expect("study cfs/meta.json"),
    };
    let nodes = meta.topology.nodes.clone();
    let empty = nodes.iter().filter(|n| n.is_empty()).count();
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    eprintln!("[cxl] nodes {nodes:?}\n{}", summary.lines().filter(|l| l.starts_with("| scx_battle cfs") || l.contains("memory-only")).collect::<Vec<_>>().join("\n"));
    assert_eq!(empty, 1, "expected one memory-only node in {nodes:?}");
    assert!(summary.contains("memory-only"), "summary.md does not mention the memory-only node");
    let cfs_row = summary.lines().find(|l| l.starts_with("| scx_battle cfs")).expect("cfs row");
    assert!(!cfs_row.contains("| never | never | never |"), "cfs never balanced: {cfs_row}");
}

/// The two kernels really are the oldest and the newest series setup fetched.
#[test]
fn oldest_and_newest_kernels_both_ran() {
    let kernel_of = |r: &Run| r.checks.get("topology").map(|(_, d)| d.clone()).unwrap_or_default();
    let (old, new) = (kernel_of(&all().oldest_cfs), kernel_of(&all().small_cfs));
    eprintln!("oldest: {old}\nnewest: {new}");
    let release = |d: &str| d.split("kernel ").nth(1).unwrap_or("").to_string();
    assert!(!release(&old).is_empty() && !release(&new).is_empty(), "no kernel named");
    assert_ne!(release(&old), release(&new), "the same kernel ran twice");
}

// --- Ctrl-C: a signal to the process group of scripts/vm and scripts/reproduce ---

struct Interrupts {
    /// (what, exit status, seconds from the signal to the exit, processes left, detail)
    results: Vec<(String, Option<i32>, f64, String, String)>,
}

/// Start COMMAND in its own process group (as a shell does), wait until
/// `started` appears in OUT (the guest command began), then SIGINT the group.
fn interrupt(what: &str, out: &Path, command: &mut Command) -> (String, Option<i32>, f64, String, String) {
    use std::os::unix::process::CommandExt;
    // As a terminal starts it: INT, TERM and HUP at their defaults, whatever
    // this test inherited (a shell's background job has INT ignored, and bash
    // cannot trap a signal ignored at entry).
    unsafe {
        command.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = command
        .process_group(0)
        .env("SCX_BATTLE_BIN", bin_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !out.join("started").exists() && t0.elapsed().as_secs() < 600 {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let t = Instant::now();
    let status = child.wait_with_output().expect("wait");
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let left = Command::new("pgrep").args(["-af", &out.display().to_string()]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&status.stderr).lines().rev().take(4).collect::<Vec<_>>().join(" / ");
    (what.to_string(), status.status.code(), secs, left, stderr)
}

fn run_interrupts() -> Interrupts {
    check_bins();
    let base = repo().join("results/tmp").join(format!("test-interrupt-{}", std::process::id()));
    let vm_out = base.join("vm");
    let study_out = base.join("study");
    let mut vm = Command::new(repo().join("scripts/vm"));
    vm.args(["--preset", "small", "--quiet", "--out"]).arg(&vm_out).args(["--", "sleep", "100000"]);
    let mut study = Command::new(repo().join("scripts/reproduce"));
    study.args(["--quick", "--mode", "vm", "--out"]).arg(&study_out);
    Interrupts { results: vec![interrupt("scripts/vm", &vm_out, &mut vm), interrupt("scripts/reproduce", &study_out, &mut study)] }
}

#[test]
fn ctrl_c_stops_the_vm_and_the_study_with_nothing_left() {
    for (what, status, secs, left, detail) in &all().interrupts.results {
        eprintln!("{what}: SIGINT to its process group: exit {status:?} after {secs:.1} s; left running: [{left}]; {detail}");
        assert_eq!(*status, Some(130), "{what}: exit status");
        assert!(*secs < 30.0, "{what}: took {secs:.1} s to stop");
        assert!(left.is_empty(), "{what}: still running: {left}");
    }
    let base = repo().join("results/tmp").join(format!("test-interrupt-{}", std::process::id()));
    let summary = std::fs::read_to_string(base.join("study/summary.md")).expect("the interrupted study wrote no summary.md");
    assert!(summary.contains("INCOMPLETE"), "summary.md not marked incomplete:\n{summary}");
}

// --- Threads that start spinning on a crowded CPU (scripts/check-crowded-start) ---

/// The paper's thread count, for `paper`'s crowded start.
const PAPER_THREADS: usize = 512;
/// Seconds the crowded start stays pinned after every thread has run: the
/// waits that matter come while threads arrive, and each second costs about
/// five of wall time on `paper`.
const CROWDED_PIN_SECS: u32 = 2;

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
    let vm = all().crowded.get(job).unwrap_or_else(|| panic!("no crowded-start VM job {job}"));
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
 *   starvation guard runs it at its limit (plus the tick that sees it).
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
        "ule" => log_value(&c.log, "starve limit") + 2.0 * c.tick_ms,
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
    let vm = &all().crowded[job];
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
    crowded_start_cfs_small => "small" "cfs",
    crowded_start_ule_small => "small" "ule",
    crowded_start_vtime_small => "small" "vtime",
    crowded_start_cfs_paper => "paper" "cfs",
    crowded_start_ule_paper => "paper" "ule",
    crowded_start_vtime_paper => "paper" "vtime",
    crowded_start_cfs_small_oldest_kernel => "small-oldest" "cfs",
    crowded_start_ule_small_oldest_kernel => "small-oldest" "ule",
    crowded_start_vtime_small_oldest_kernel => "small-oldest" "vtime",
    crowded_start_cfs_paper_oldest_kernel => "paper-oldest" "cfs",
    crowded_start_ule_paper_oldest_kernel => "paper-oldest" "ule",
}

/// The kernel's own scheduler meets the same start: every thread ran.
#[test]
fn crowded_start_kernel_paper() {
    let k = crowded("paper", "kernel");
    eprintln!("[paper] kernel: {}", crowded_kernel_longest("paper"));
    assert!(k.meta.complete && k.meta.scheduler.sched_ext_state == "disabled", "kernel run: {:?}", k.meta.scheduler);
    assert_eq!(k.wait_max_ms.len(), PAPER_THREADS);
}
