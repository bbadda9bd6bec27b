// SPDX-License-Identifier: GPL-2.0-only
//! study.json: the study's record, through rundata's types.

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use rundata::{Emulation, Study, StudyMachine, StudyRun, StudyScheduler};

use crate::host::{mark_time, Setup};
use crate::plan::{Mode, Plan};

/// How each planned run ended: the runner's last `status` line for it, or
/// "not run" / "started, did not finish".
fn status_of(out: &Path, dir: &str, status: &str) -> String {
    let last = status.lines().filter(|l| l.strip_prefix(dir).is_some_and(|r| r.starts_with(' '))).last();
    match last {
        Some(l) => l[dir.len() + 1..].to_string(),
        None if out.join(dir).is_dir() => "started, did not finish".into(),
        None => "not run".into(),
    }
}

fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git").arg("-C").arg(repo).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The machine, as the first recorded run saw it (CPUs, nodes, LLCs; a
/// loadgen run's meta.json or a benchmark's bench.json), and SMT from sysfs
/// (natively) or the preset.
pub fn machine(plan: &Plan, out: &Path) -> (Option<StudyMachine>, Option<String>) {
    let seen = plan.runs.iter().find_map(|r| {
        let dir = out.join(&r.dir);
        if let Some(m) = std::fs::read_to_string(dir.join("meta.json")).ok().and_then(|t| rundata::Meta::parse(&t).ok()) {
            return Some((m.topology, m.kernel_release));
        }
        let first = rundata::bench::files(&dir).into_iter().chain(rundata::bench::app_files(&dir)).next()?;
        let b = rundata::bench::Bench::parse(&std::fs::read_to_string(first).ok()?).ok()?;
        Some((b.topology, b.kernel_release))
    });
    let Some((t, kernel)) = seen else { return (None, None) };
    let smt = match &plan.mode {
        Mode::Vm { .. } => plan.machine.smt,
        Mode::Native => crate::topology::native_smt(),
    };
    let machine = StudyMachine {
        cpus: t.cpus.len(),
        nodes: t.nodes.iter().filter(|n| !n.is_empty()).count(),
        memory_only_nodes: t.nodes.iter().filter(|n| n.is_empty()).count(),
        llcs: t.llcs.len(),
        smt,
    };
    (Some(machine), Some(kernel))
}

/// The checkout's commit and whether it has uncommitted changes, taken when
/// the study starts and copies its binaries (a commit made while it runs is
/// not what it ran).
pub fn source(repo: &Path) -> (Option<String>, Option<bool>) {
    (git(repo, &["rev-parse", "HEAD"]), git(repo, &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()))
}

/// The binaries a study copies into its `.bin`, in a fixed order.
pub const BINARIES: [&str; 4] = ["scx_battle", "loadgen", "analysis", "study"];

/// A fingerprint of the binaries in `dir` (FNV-1a, 64 bits, over each
/// file's name and bytes): equal for the same build, whatever checkout the
/// study was started from. None if one cannot be read.
pub fn fingerprint(dir: &Path) -> Option<String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in BINARIES {
        let bytes = std::fs::read(dir.join(b)).ok()?;
        for &x in b.as_bytes().iter().chain([0u8].iter()).chain(bytes.iter()) {
            h ^= x as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Some(format!("fnv1a64:{h:016x}"))
}

#[allow(clippy::too_many_arguments)]
pub fn study(
    plan: &Plan,
    setup: &Setup,
    out: &Path,
    source: (Option<String>, Option<bool>),
    binaries: Option<String>,
    wall_s: f64,
    problems: Vec<String>,
    load_start: f64,
    load_end: f64,
) -> Result<Study> {
    let status = std::fs::read_to_string(out.join("status")).unwrap_or_default();
    let runs = plan
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let wall_s = match (mark_time(out, &format!(".mark-run-{i}")), mark_time(out, &format!(".mark-run-{i}-end"))) {
                (Some(a), Some(b)) => b.duration_since(a).ok().map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
                _ => None,
            };
            StudyRun { dir: r.dir.clone(), status: status_of(out, &r.dir, &status), wall_s }
        })
        .collect();
    let vm_line = std::fs::read_to_string(out.join("vm.log"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.split_once("booting VM: ").map(|(_, rest)| rest.split("; results in").next().unwrap_or(rest).to_string()));
    let (machine, kernel) = machine(plan, out);
    Ok(Study {
        format_version: rundata::STUDY_FORMAT_VERSION,
        command: setup.command.clone(),
        commit: source.0,
        dirty: source.1,
        binaries,
        machine,
        kernel,
        emulation: Some(Emulation {
            kind: match plan.mode {
                Mode::Native => "native".into(),
                Mode::Vm { .. } => "vm".into(),
            },
            vm: vm_line,
            host_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            host_load_start: load_start,
            host_load_end: load_end,
        }),
        estimate_s: Some(plan.estimate_s.round()),
        date: utc_date(),
        wall_s: wall_s.round() as u64,
        place: plan.machine.place.clone(),
        params: plan.params.clone(),
        schedulers: plan
            .schedulers
            .iter()
            .map(|s| StudyScheduler { name: s.name.clone(), command: (!s.is_kernel()).then(|| s.command.join(" ")) })
            .collect(),
        runs,
        problems,
        slices: Vec::new(),
    })
}

/// Today's date, UTC, as YYYY-MM-DD.
pub fn utc_date() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86400).unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_takes_its_last_status_line_and_no_other_runs() {
        let dir = std::env::temp_dir().join(format!("study-status-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ule")).unwrap();
        let status = "cfs complete\ncfs.2 failed: scheduler was ejected\nule failed: x\n";
        assert_eq!(status_of(&dir, "cfs", status), "complete");
        assert_eq!(status_of(&dir, "cfs.2", status), "failed: scheduler was ejected");
        assert_eq!(status_of(&dir, "ule", status), "failed: x");
        assert_eq!(status_of(&dir, "kernel", status), "not run");
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        assert_eq!(status_of(&dir, "kernel", status), "started, did not finish");
    }

    #[test]
    fn utc_date_is_a_date() {
        let d = utc_date();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
