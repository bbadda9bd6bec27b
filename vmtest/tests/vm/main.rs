// SPDX-License-Identifier: GPL-2.0-only
//! Integration tests on a real kernel with sched_ext, one module per suite.
//!
//! Each suite reads what one or more VM jobs left: a job boots a guest
//! (scripts/vm: a preset, the newest or oldest kernel) and runs a check
//! script in it (scripts/check-*). A job starts the first time a test needs
//! it, at most two at a time (one VM per host core under icount; natively,
//! where this machine's kernel has sched_ext and we are root, one at a
//! time), so `cargo test -p vmtest --features vm --test vm ule::` boots the
//! ULE suite's guest alone. A run of every test (no name filter) starts
//! every job at once, longest first, so that the last job to start is a
//! short one.
//!
//! | suite        | job (guest, kernel)          | script                                    |
//! |--------------|------------------------------|-------------------------------------------|
//! | scheduler    | small, paper (newest); oldest (flat, oldest) | check-policies                |
//! | crowded      | the same three boots         | check-crowded-start                       |
//! | recorder, cfs| recorder (small)             | check-recorder                            |
//! | ule          | ule (small)                  | check-ule                                 |
//! | shapes       | smt-ccx                      | check-shape                               |
//! | starvation   | starvation (small)           | check-starvation                          |
//! | native       | cxl-native (cxl)             | check-native                              |
//! | interrupts   | interrupts (small, 2 boots)  | SIGINT to scripts/vm and scripts/reproduce|
//! | runner       | none, or a 5 s boot          | scripts/vm's own options                  |
//!
//! Nothing here skips: a missing kernel, tool or binary is a failure that
//! says what is missing (run scripts/setup and cargo build --release).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

mod cfs;
mod crowded;
mod interrupts;
mod native;
mod recorder;
mod runner;
mod scheduler;
mod shapes;
mod starvation;
mod ule;

/// Wall-clock limit for one VM run (boot, checks, shutdown): a hang's limit,
/// far above any job's time.
const VM_TIMEOUT_SECS: u32 = 2400;

// --- Jobs: started on first use, two at a time ---------------------------------

/// One VM job: what it runs, and its result once it ran (Err: it panicked,
/// and every test that needs it fails with the message).
pub struct Job<T: 'static> {
    name: &'static str,
    run: fn() -> T,
    cell: OnceLock<Result<T, String>>,
}

impl<T: Send + Sync> Job<T> {
    pub const fn new(name: &'static str, run: fn() -> T) -> Self {
        Job { name, run, cell: OnceLock::new() }
    }

    /// The job's result: runs it (waiting for a free slot) unless another
    /// test already did or is doing so.
    pub fn get(&'static self) -> &'static T {
        // Every test runs: the workers run every job in EVERY_JOB's order.
        let done = if start_every_job_if_all_tests_run() { self.cell.wait() } else { self.run() };
        match done {
            Ok(v) => v,
            Err(e) => panic!("[{}] the VM job failed: {e}", self.name),
        }
    }

    /// Run the job here (once), in a free slot.
    fn run(&'static self) -> &'static Result<T, String> {
        self.cell.get_or_init(|| {
            let _slot = Slot::take();
            let t = Instant::now();
            eprintln!("[{}] VM job starting", self.name);
            let v = std::panic::catch_unwind(self.run).map_err(|e| {
                e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
            });
            eprintln!("[{}] VM job took {:.0} s of wall time", self.name, t.elapsed().as_secs_f64());
            v
        })
    }
}

/// A job to start ahead of its tests.
trait Prefetch: Sync {
    fn prefetch(&'static self);
}

impl<T: Send + Sync> Prefetch for Job<T> {
    fn prefetch(&'static self) {
        let _ = self.run();
    }
}

/// Every job, longest first (the wall times each job prints, measured on a
/// 2-core machine: docs/testing.md), for a run of every test.
static EVERY_JOB: [&dyn Prefetch; 11] = [
    &scheduler::OLDEST,
    &native::CXL_NATIVE,
    &scheduler::MIXES,
    &scheduler::PAPER,
    &ule::ULE,
    &scheduler::SMALL,
    &shapes::SMT_CCX,
    &starvation::STARVATION,
    &recorder::RECORDER,
    &interrupts::INTERRUPTS,
    &runner::TIMEOUT,
];

/// A slot for one VM: two (one per host core), one natively.
struct Slot;

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl Slot {
    fn take() -> Slot {
        let most = if native() { 1 } else { 2 };
        let (busy, freed) = &SLOTS;
        let mut n = busy.lock().unwrap();
        while *n >= most {
            n = freed.wait(n).unwrap();
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (busy, freed) = &SLOTS;
        *busy.lock().unwrap() -= 1;
        freed.notify_all();
    }
}

/// True when the test binary was given no test name to filter by (nor
/// --skip, --list, --ignored): every test will run, so every job is needed.
/// SCX_BATTLE_VM_PREFETCH=1 or 0 decides instead.
fn every_test_runs() -> bool {
    if let Ok(v) = std::env::var("SCX_BATTLE_VM_PREFETCH") {
        return v == "1";
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skip" | "--list" | "--ignored" | "--include-ignored" | "--exact" => return false,
            "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" | "--shuffle-seed" => {
                args.next();
            }
            s if s.starts_with('-') => {}
            _ => return false,
        }
    }
    true
}

/// On the first job any test asks for, when every test runs: start every
/// job, longest first, on as many workers as there are slots, and say so
/// (true: the tests wait for the workers).
fn start_every_job_if_all_tests_run() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        if !every_test_runs() {
            return false;
        }
        let queue: &'static Mutex<std::slice::Iter<'static, &'static dyn Prefetch>> =
            Box::leak(Box::new(Mutex::new(EVERY_JOB.iter())));
        for _ in 0..if native() { 1 } else { 2 } {
            std::thread::spawn(move || loop {
                let next = queue.lock().unwrap().next();
                match next {
                    Some(job) => job.prefetch(),
                    None => break,
                }
            });
        }
        true
    })
}

// --- Helpers shared by the suites ------------------------------------------------

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
    let (t, started) = (Instant::now(), std::time::SystemTime::now());
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
    eprintln!(
        "[{name}] scripts/vm ({preset}, {kernel} kernel) finished in {wall_secs:.0} s with {:?}; wall time of its steps: {}\n{stderr}",
        res.status.code(),
        step_times(&out, started)
    );
    VmRun { status: res.status.code(), wall_secs, out, stderr }
}

/// Where a VM job's wall time went: the guest command's start (scripts/vm's
/// `started`) and each step the check scripts marked (an empty `.mark-NAME`
/// file, created at the end of the step: the host's file system stamps it
/// with the host's clock, which the guest's icount clock is not), in
/// seconds after the job started.
fn step_times(out: &Path, started: std::time::SystemTime) -> String {
    fn walk(out: &Path, dir: &Path, found: &mut Vec<(f64, String)>, started: std::time::SystemTime) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let (path, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                walk(out, &path, found, started);
            } else if name == "started" || name.starts_with(".mark-") {
                let at = meta.modified().ok().and_then(|m| m.duration_since(started).ok()).map_or(f64::NAN, |d| d.as_secs_f64());
                let rel = path.parent().and_then(|p| p.strip_prefix(out).ok()).map(|p| p.display().to_string()).unwrap_or_default();
                let step = name.strip_prefix(".mark-").unwrap_or("booted");
                found.push((at, if rel.is_empty() { step.to_string() } else { format!("{rel}/{step}") }));
            }
        }
    }
    let mut found = Vec::new();
    walk(out, out, &mut found, started);
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    found.iter().map(|(at, step)| format!("{step} {at:.0}")).collect::<Vec<_>>().join(", ")
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

/// A counter from the last "stats total" line of scx_battle's log.
fn total_counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.starts_with("stats total")).expect("no 'stats total' line");
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .parse()
        .unwrap()
}


/// One recorded run directory of `loadgen spin`, parsed.
struct SpinRun {
    dir: PathBuf,
    meta: rundata::Meta,
    /// time_ms -> threads per CPU (index = cpu)
    samples: Vec<(f64, Vec<u32>)>,
    /// (thread, cpu_time_ms, migrations)
    threads: Vec<(u32, f64, u64)>,
    migration_rows: usize,
    /// migrations.csv's rows by cause (rundata::MoveCause names).
    causes: BTreeMap<String, usize>,
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
    let migrations = read("migrations.csv")?;
    let mut lines = migrations.lines();
    if lines.next() != Some(rundata::MIGRATIONS_HEADER) {
        return Err(format!("{}/migrations.csv: not the header {}", dir.display(), rundata::MIGRATIONS_HEADER));
    }
    let mut causes = BTreeMap::new();
    let mut migration_rows = 0;
    for l in lines {
        migration_rows += 1;
        let cause = l.rsplit(',').next().unwrap_or_default();
        if rundata::MoveCause::from_name(cause).is_none() {
            return Err(format!("{}/migrations.csv: no cause in '{l}'", dir.display()));
        }
        *causes.entry(cause.to_string()).or_insert(0) += 1;
    }
    Ok(SpinRun { dir: dir.to_path_buf(), meta, samples, threads, migration_rows, causes })
}
