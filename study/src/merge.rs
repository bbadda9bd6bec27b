// SPDX-License-Identifier: GPL-2.0-only
//! `study report SLICE_DIR... --out DIR`: one study from the slices of a
//! sharded one (`study run --shard K/N` on N machines, or N jobs of a batch
//! system). Every slice 1..N must be there once, planned alike (parameters,
//! schedulers, experiments, machine, mode) and built from one commit. The
//! runs are hard-linked (copied across file systems) into DIR under their
//! own names, so DIR is a study like any other and can be moved; study.json
//! lists the runs in the unsharded plan's order, each slice's problems, and
//! the slices themselves; `analysis report` then writes the figures and the
//! summary exactly as for the study run in one piece.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use rundata::{Study, StudySlice};

use crate::plan::Plan;

/// One slice: its directory, plan and record.
struct Slice {
    dir: PathBuf,
    plan: Plan,
    study: Study,
}

fn load(dir: &Path) -> Result<Slice> {
    let plan = Plan::load(&dir.join("plan.json"))
        .with_context(|| format!("{} is not a study directory (study run writes plan.json)", dir.display()))?;
    let path = dir.join("study.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (a slice that never finished has none: run it again)", path.display()))?;
    let mut study: Study = serde_json::from_str(&text).with_context(|| format!("{}: not a study record", path.display()))?;
    // Records written before the engine read application runs name no
    // machine or kernel: the runs' own files do.
    if study.kernel.is_none() || study.machine.is_none() {
        let (machine, kernel) = crate::record::machine(&plan, dir);
        study.machine = study.machine.or(machine);
        study.kernel = study.kernel.or(kernel);
    }
    Ok(Slice { dir: dir.to_path_buf(), plan, study })
}

/// Every slice of one plan, once: what is missing, doubled or different.
fn check(slices: &[Slice]) -> Result<()> {
    let first = &slices[0];
    let n = first.plan.shard.1;
    for s in slices {
        if s.plan.shard.1 != n {
            bail!(
                "{} is slice {}/{} but {} is slice {}/{n}: slices of different shardings",
                s.dir.display(),
                s.plan.shard.0,
                s.plan.shard.1,
                first.dir.display(),
                first.plan.shard.0
            );
        }
        let differs = [
            ("parameters", s.plan.params != first.plan.params),
            ("schedulers", s.plan.schedulers != first.plan.schedulers),
            ("experiments", s.plan.experiments != first.plan.experiments),
            ("machine", s.plan.machine != first.plan.machine),
            ("mode", s.plan.mode != first.plan.mode),
        ];
        if let Some((what, _)) = differs.iter().find(|d| d.1) {
            bail!("{} and {} were planned with different {what}: not slices of one study", first.dir.display(), s.dir.display());
        }
        // One build: the same binaries (slices started from different
        // checkouts with one frozen build are fine), or binaries rebuilt
        // from one clean commit (a study longer than the life of one
        // machine: the next one rebuilds that commit), or, for records
        // without a fingerprint, the same commit.
        let one_clean_commit = first.study.commit.is_some()
            && s.study.commit == first.study.commit
            && first.study.dirty == Some(false)
            && s.study.dirty == Some(false);
        match ((&first.study.binaries, &s.study.binaries), (&first.study.commit, &s.study.commit)) {
            ((Some(a), Some(b)), _) if a != b && !one_clean_commit => bail!(
                "{} and {} ran different binaries ({a}, {b}) not rebuilt from one clean commit: run every slice with one \
                 build (SCX_BATTLE_BIN), or build each from the same commit without changes",
                first.dir.display(),
                s.dir.display()
            ),
            ((Some(_), Some(_)), _) => {}
            (_, (Some(a), Some(b))) if a != b => bail!(
                "{} was built from commit {a} and {} from {b}: build every slice from one commit",
                first.dir.display(),
                s.dir.display()
            ),
            _ => {}
        }
        // One kernel: a slice booted on another kernel measured another system.
        if let (Some(a), Some(b)) = (&first.study.kernel, &s.study.kernel) {
            if a != b {
                bail!(
                    "{} ran kernel {a} and {} kernel {b}: run every slice on one kernel (scripts/setup with \
                     SCX_BATTLE_KERNEL pins the VM's)",
                    first.dir.display(),
                    s.dir.display()
                );
            }
        }
    }
    for k in 1..=n {
        let with_k: Vec<_> = slices.iter().filter(|s| s.plan.shard.0 == k).map(|s| s.dir.display().to_string()).collect();
        match with_k.len() {
            0 => bail!("slice {k}/{n} is missing: give every slice's directory"),
            1 => {}
            _ => bail!("slice {k}/{n} is given twice: {}", with_k.join(", ")),
        }
    }
    Ok(())
}

/// A directory tree, hard-linked where the file system allows, else copied.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// The merged record: the runs in the unsharded plan's order (run i of the
/// whole plan is run i / N of slice i % N + 1), every slice's problems, the
/// slices' times summed (machine time, not elapsed).
fn merged(slices: &mut [Slice], command: String) -> Study {
    slices.sort_by_key(|s| s.plan.shard.0);
    let n = slices.len();
    let mut runs = Vec::new();
    let longest = slices.iter().map(|s| s.study.runs.len()).max().unwrap_or(0);
    for pos in 0..longest {
        runs.extend(slices.iter().filter_map(|s| s.study.runs.get(pos).cloned()));
    }
    let first = &slices[0].study;
    Study {
        command,
        commit: first.commit.clone(),
        dirty: slices.iter().map(|s| s.study.dirty).reduce(|a, b| match (a, b) {
            (Some(x), Some(y)) => Some(x || y),
            _ => None,
        })
        .flatten(),
        estimate_s: slices.iter().map(|s| s.study.estimate_s).sum(),
        date: slices.iter().map(|s| s.study.date.clone()).max().unwrap_or_default(),
        wall_s: slices.iter().map(|s| s.study.wall_s).sum(),
        runs,
        problems: slices
            .iter()
            .flat_map(|s| s.study.problems.iter().map(move |p| format!("slice {}/{n}: {p}", s.plan.shard.0)))
            .collect(),
        slices: slices
            .iter()
            .map(|s| StudySlice {
                shard: format!("{}/{n}", s.plan.shard.0),
                dir: s.dir.display().to_string(),
                command: s.study.command.clone(),
                wall_s: s.study.wall_s,
                estimate_s: s.study.estimate_s,
                emulation: s.study.emulation.clone(),
                commit: s.study.commit.clone(),
                binaries: s.study.binaries.clone(),
            })
            .collect(),
        ..first.clone()
    }
}

pub fn main(dirs: &[PathBuf], out: &Path, bin: &Path, command: String) -> Result<ExitCode> {
    let mut slices = dirs.iter().map(|d| load(d)).collect::<Result<Vec<_>>>()?;
    if slices.is_empty() {
        bail!("no slice given");
    }
    check(&slices)?;
    crate::host::check_out_dir(out)?;
    let study = merged(&mut slices, command);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut recorded = Vec::new();
    for s in &slices {
        for r in &s.plan.runs {
            let src = s.dir.join(&r.dir);
            if crate::host::recorded(&src) {
                link_tree(&src, &out.join(&r.dir))?;
                recorded.push(out.join(&r.dir));
            }
        }
    }
    // The report's order: the unsharded plan's.
    recorded.sort_by_key(|d| study.runs.iter().position(|r| out.join(&r.dir) == *d));
    std::fs::write(out.join("study.json"), serde_json::to_string_pretty(&study)? + "\n")?;
    eprintln!("[study] {} slices, {} runs ({} recorded) merged into {}", slices.len(), study.runs.len(), recorded.len(), out.display());
    let rc = crate::host::report(bin, &recorded, out, &study)?;
    Ok(crate::host::exit_status(rc))
}
