// SPDX-License-Identifier: GPL-2.0-only
//! Integration tests on a real kernel with sched_ext.
//!
//! Boots the VM test bed twice, `small` (2 nodes x 4 cores) and `paper`
//! (2 nodes x 16 cores), in parallel, and runs scripts/check-scheduler in each:
//! it loads scx_battle, runs the mixed workload, hot-plugs a CPU, stops it,
//! has the kernel eject it, and writes one PASS/FAIL line per check. Each
//! #[test] below asserts one of those lines, so a failure names what broke.
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

fn run_checks(preset: &'static str, expect_cpus: u32) -> Run {
    let out = repo().join("results/tmp").join(format!("test-{preset}-{}", std::process::id()));
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
        .args(["--", "scripts/check-scheduler", "--stress-secs", &STRESS_SECS.to_string()])
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

/// Both runs, started on first use: in parallel in VMs, one after the other natively.
fn runs() -> &'static (Run, Run) {
    static RUNS: OnceLock<(Run, Run)> = OnceLock::new();
    RUNS.get_or_init(|| {
        if native() {
            (run_checks("small", 8), run_checks("paper", 32))
        } else {
            let paper = std::thread::spawn(|| run_checks("paper", 32));
            let small = run_checks("small", 8);
            (small, paper.join().expect("paper VM thread"))
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
    ($($test:ident => $which:tt $name:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_check(&runs().$which, $name); })*
    };
}

checks! {
    small_topology => 0 "topology",
    small_bad_options => 0 "bad_options",
    small_not_root_refused => 0 "not_root_refused",
    small_load => 0 "load",
    small_ops_name => 0 "ops_name",
    small_second_instance_refused => 0 "second_instance_refused",
    small_mixed_workload => 0 "mixed_workload",
    small_never_ejected => 0 "never_ejected",
    small_stats_printed => 0 "stats_printed",
    small_hotplug_restart => 0 "hotplug_restart",
    small_clean_exit => 0 "clean_exit",
    small_ejection_reported => 0 "ejection_reported",
    small_kernel_log_clean => 0 "kernel_log_clean",
    paper_topology => 1 "topology",
    paper_load => 1 "load",
    paper_ops_name => 1 "ops_name",
    paper_mixed_workload => 1 "mixed_workload",
    paper_never_ejected => 1 "never_ejected",
    paper_hotplug_restart => 1 "hotplug_restart",
    paper_clean_exit => 1 "clean_exit",
    paper_ejection_reported => 1 "ejection_reported",
    paper_kernel_log_clean => 1 "kernel_log_clean",
}

#[test]
fn every_check_passed_and_vm_exit_status_agrees() {
    for run in [&runs().0, &runs().1] {
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
