// SPDX-License-Identifier: GPL-2.0-only
//! The study on the host: the plan, the study's directory, the binaries it
//! runs (its own copy, so that a rebuild meanwhile changes nothing), the
//! runner started through scripts/vm (a guest, or natively), progress in
//! wall-clock time, then study.json, `analysis report` and the exit status.
//!
//! Interrupted (INT, TERM, HUP), it stops scripts/vm (which stops the guest,
//! or natively the runner, which unloads the scheduler), then summarises what
//! was recorded, marked incomplete.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::plan::{Mode, Plan};
use crate::sched;

/// What the host side needs besides the plan.
pub struct Setup {
    pub repo: PathBuf,
    /// Where scx_battle, loadgen, analysis and study are.
    pub bin: PathBuf,
    pub out: PathBuf,
    /// The command line, as the user typed it (for study.json).
    pub command: String,
}

/// Exit statuses (docs/cli.md).
pub const EXIT_SCHEDULER_FAILED: u8 = 3;

pub fn run(plan: &Plan, setup: &Setup) -> Result<ExitCode> {
    let out = &setup.out;
    let t0 = Instant::now();
    let load_start = load_average();
    let source = crate::record::source(&setup.repo);
    std::fs::create_dir_all(out.join(".bin")).with_context(|| format!("creating {}", out.display()))?;
    for b in crate::record::BINARIES {
        std::fs::copy(setup.bin.join(b), out.join(".bin").join(b))
            .with_context(|| format!("copying {} (build with cargo build --release --workspace)", setup.bin.join(b).display()))?;
    }
    let binaries = crate::record::fingerprint(&out.join(".bin"));
    let plan_path = out.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(plan)? + "\n")?;
    let bin = out.join(".bin");
    let mut vm = Command::new(setup.repo.join("scripts/vm"));
    match &plan.mode {
        Mode::Native => {
            vm.args(["--mode", "native"]);
        }
        Mode::Vm { preset, realtime } => {
            vm.args(["--mode", "vm", "--preset", preset]);
            if *realtime {
                vm.arg("--realtime");
            }
        }
    }
    vm.args(["--timeout", &plan.budget_s.to_string(), "--out"]).arg(out).arg("--").arg(bin.join("study"));
    vm.arg("inside").arg(&plan_path).arg("--bin").arg(&bin);
    eprintln!(
        "[study] {} runs in {} ({}); estimated {}, stopped after {} s",
        plan.runs.len(),
        out.display(),
        match &plan.mode {
            Mode::Native => "natively".to_string(),
            Mode::Vm { preset, .. } => format!("VM {preset}"),
        },
        crate::hms(plan.estimate_s),
        plan.budget_s
    );
    sched::catch_signals();
    let mut child = vm.spawn().context("starting scripts/vm")?;
    let mut forwarded = false;
    let mut next_progress = Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if let Some(sig) = sched::signalled() {
            if !forwarded {
                forwarded = true;
                eprintln!("[study] interrupted (SIG{}): stopping the runs, then summarising what was recorded", sched::signal_name(sig));
                // SAFETY: kill(2) on our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        if t0.elapsed() >= next_progress {
            next_progress += Duration::from_secs(60);
            eprintln!("{}", progress(plan, out, t0.elapsed().as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let vm_rc = status.code();
    let interrupted = sched::signalled();
    let wall = t0.elapsed().as_secs_f64();

    let mut problems = Vec::new();
    if let Some(sig) = interrupted {
        problems.push(format!("interrupted by SIG{}", sched::signal_name(sig)));
    }
    match vm_rc {
        Some(0) => {}
        Some(124) => problems.push(format!("the wall-clock limit ({} s) ended the study", plan.budget_s)),
        Some(c) if interrupted.is_some() && c >= 128 => {}
        c => problems.push(format!("the study's runner exited with status {c:?}")),
    }
    let study = crate::record::study(plan, setup, out, source, binaries, wall, problems, load_start, load_average())?;
    let study_path = out.join("study.json");
    std::fs::write(&study_path, serde_json::to_string_pretty(&study)? + "\n")?;

    let dirs: Vec<PathBuf> = plan.runs.iter().map(|r| out.join(&r.dir)).filter(|d| recorded(d)).collect();
    let report_rc = report(&bin, &dirs, out, &study)?;
    compress(plan, out);
    if let Ok(s) = std::fs::read_to_string(out.join("summary.md")) {
        println!("{s}");
    }
    eprintln!("[study] results in {}; {} of wall time (estimated {})", out.display(), crate::hms(wall), crate::hms(plan.estimate_s));
    if let Some(sig) = interrupted {
        return Ok(ExitCode::from(sched::signal_status(sig)));
    }
    Ok(exit_status(report_rc))
}

/// Did the run in DIR record anything: loadgen's meta.json, or a
/// benchmark's or an application's bench.json (one each, in DIR/<name>/)?
pub fn recorded(dir: &Path) -> bool {
    dir.join("meta.json").is_file() || !rundata::bench::files(dir).is_empty() || !rundata::bench::app_files(dir).is_empty()
}

/// `analysis report` over the recorded run directories, with out/study.json
/// (already written), into out; its exit status. With nothing recorded,
/// summary.md says so and says why.
pub fn report(bin: &Path, dirs: &[PathBuf], out: &Path, study: &rundata::Study) -> Result<Option<i32>> {
    if dirs.is_empty() {
        let mut s = String::from("# The study recorded nothing\n\n**INCOMPLETE.** No run recorded anything:\n");
        for p in study.problems.iter().cloned().chain(study.runs.iter().map(|r| format!("{}: {}", r.dir, r.status))) {
            s += &format!("- {p}\n");
        }
        std::fs::write(out.join("summary.md"), s)?;
        return Ok(Some(2));
    }
    let rc = Command::new(bin.join("analysis"))
        .arg("report")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .arg("--study")
        .arg(out.join("study.json"))
        .status()
        .with_context(|| format!("running {}", bin.join("analysis").display()))?
        .code();
    if rc == Some(1) {
        eprintln!("[study] error: analysis report failed; the runs are in {}", out.display());
    }
    Ok(rc)
}

/// The study's exit status from the report's (docs/cli.md).
pub fn exit_status(report_rc: Option<i32>) -> ExitCode {
    match report_rc {
        Some(0) => ExitCode::SUCCESS,
        Some(3) => {
            eprintln!("[study] a scheduler failed; the study went on without it (summary.md)");
            ExitCode::from(EXIT_SCHEDULER_FAILED)
        }
        _ => ExitCode::FAILURE,
    }
}

/// One progress line: wall time so far, the run under way, and when the
/// study should end by the estimate of what is left.
fn progress(plan: &Plan, out: &Path, elapsed: f64) -> String {
    let current = std::fs::read_to_string(out.join("current")).unwrap_or_default();
    let mut parts = current.split_whitespace();
    let Some(i) = parts.next().and_then(|i| i.parse::<usize>().ok()) else {
        return format!("[study] {} elapsed: booting (estimated {})", crate::hms(elapsed), crate::hms(plan.estimate_s));
    };
    let Some(run) = plan.runs.get(i) else { return String::new() };
    let started = mark_time(out, &format!(".mark-run-{i}"));
    let in_run = started.map(|s| SystemTime::now().duration_since(s).unwrap_or_default().as_secs_f64()).unwrap_or(0.0);
    let left: f64 = (run.estimate_s - in_run).max(0.0) + plan.runs[i + 1..].iter().map(|r| r.estimate_s).sum::<f64>();
    format!(
        "[study] {} elapsed: run {}/{} {} for {} of ~{}; about {} left",
        crate::hms(elapsed),
        i + 1,
        plan.runs.len(),
        run.dir,
        crate::hms(in_run),
        crate::hms(run.estimate_s),
        crate::hms(left)
    )
}

/// When a mark file was made (the host's clock).
pub fn mark_time(out: &Path, name: &str) -> Option<SystemTime> {
    std::fs::metadata(out.join(name)).and_then(|m| m.modified()).ok()
}

/// The host's 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The per-sample CSVs of a long run run to tens of MB: gzip them once
/// every figure is drawn (analysis reads NAME.csv.gz as NAME.csv).
fn compress(plan: &Plan, out: &Path) {
    for r in &plan.runs {
        for f in ["timeline", "migrations", "thread_time", "ule_tasks", "sched_stats"] {
            let csv = out.join(&r.dir).join(format!("{f}.csv"));
            if csv.is_file() {
                let ok = Command::new("gzip").args(["-9", "-n", "-f"]).arg(&csv).status().map(|s| s.success()).unwrap_or(false);
                if !ok {
                    eprintln!("[study] warning: could not gzip {}", csv.display());
                }
            }
        }
    }
}

/// The study's directory must not exist: say what is there and what to do.
pub fn check_out_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let interrupted = std::fs::read_to_string(out.join("summary.md")).map(|s| s.contains("INCOMPLETE")).unwrap_or(false);
        let what = if interrupted { "an interrupted study (see its summary.md)" } else { "an earlier study" };
        bail!(
            "{} exists: {what}. Keep it and write elsewhere with --out DIR, or remove it (rm -rf '{}') and run again",
            out.display(),
            out.display()
        );
    }
    Ok(())
}
