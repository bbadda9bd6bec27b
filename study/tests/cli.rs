// SPDX-License-Identifier: GPL-2.0-only
//! The engine's plan, on the host: `study run --dry-run` builds and boots
//! nothing, and an invalid plan fails before any work, naming what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `study ARGS` with the repository's scripts/vm for the presets.
fn study(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_study"))
        .args(args)
        .env("SCX_BATTLE_REPO", repo())
        .env("SCX_BATTLE_BIN", Path::new(env!("CARGO_BIN_EXE_study")).parent().unwrap())
        .output()
        .expect("running study")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The runs a dry run lists: the first word of every line between the
/// table's header and the summary line.
fn planned_runs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("run "))
        .skip(1)
        .take_while(|l| !l.contains(" runs; estimated"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn quick_dry_run_plans_every_experiment_under_every_scheduler() {
    let o = study(&["run", "--mode", "vm", "--quick", "--dry-run"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let runs = planned_runs(&out);
    assert_eq!(
        runs,
        [
            "kernel",
            "cfs",
            "ule",
            "starvation-batch/kernel",
            "starvation-batch/cfs",
            "starvation-batch/ule",
            "starvation-identical/kernel",
            "starvation-identical/cfs",
            "starvation-identical/ule"
        ],
        "{out}"
    );
    // The ULE rule on small: 128 - 7 - 16 = 105 passes, +10 % and 30 s.
    assert!(out.contains("146 s under ULE: its rule needs 105 passes"), "{out}");
    assert!(out.contains("9 runs; estimated wall time"), "{out}");
}

#[test]
fn selectors_and_repeats_shape_the_plan() {
    let o = study(&["run", "--mode", "vm", "--quick", "--dry-run", "--schedulers", "ule,kernel", "--experiments", "fig6", "--repeat", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Rounds, in the study's scheduler order.
    assert_eq!(planned_runs(&out), ["kernel", "ule", "kernel.2", "ule.2"], "{out}");
}

#[test]
fn shards_split_the_plan_into_disjoint_slices_that_cover_it() {
    let base = ["run", "--mode", "vm", "--dry-run", "--repeat", "2"];
    let all = planned_runs(&text(&study(&base)).0);
    assert_eq!(all.len(), 18);
    let mut union = Vec::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let o = study(&[&base[..], &["--shard", &shard]].concat());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        let part = planned_runs(&text(&o).0);
        assert!(!part.is_empty(), "shard {shard} is empty");
        union.extend(part);
    }
    let mut sorted_union = union.clone();
    sorted_union.sort();
    sorted_union.dedup();
    assert_eq!(sorted_union.len(), union.len(), "shards overlap: {union:?}");
    let mut sorted_all = all.clone();
    sorted_all.sort();
    assert_eq!(sorted_union, sorted_all);
}

#[test]
fn an_invalid_plan_fails_before_any_work_and_names_the_bad_item() {
    for (args, says) in [
        (&["--preset", "huge"][..], "huge"),
        (&["--schedulers", "kernel,bfs"], "bfs"),
        (&["--experiments", "fig7"], "fig7"),
        (&["--threads", "0"], "--threads 0"),
        (&["--threads", "70000"], "--threads 70000"),
        (&["--repeat", "11"], "11"),
        (&["--shard", "5/4"], "5/4"),
        (&["--run-secs", "0"], "'0'"),
        (&["--scheduler", "Bad=scx_battle"], "Bad=scx_battle"),
        (&["--scheduler", "x=no-such-scheduler-here"], "no-such-scheduler-here"),
        (&["--scheduler", "cfs=scx_battle"], "already has a scheduler of that name"),
    ] {
        let o = study(&[&["run", "--mode", "vm", "--dry-run"][..], args].concat());
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: the error does not name {says}: {err}");
        assert!(out.is_empty(), "{args:?} printed a plan: {out}");
    }
}

#[test]
fn an_existing_study_directory_is_refused_with_what_to_do() {
    let dir = std::env::temp_dir().join(format!("study-exists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("summary.md"), "**INCOMPLETE.**\n").unwrap();
    let o = study(&["run", "--mode", "vm", "--quick", "--out", dir.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("an interrupted study") && err.contains("rm -rf"), "{err}");
    assert!(!dir.join("plan.json").exists() && !dir.join(".bin").exists(), "it wrote into the existing directory");
}

#[test]
fn limits_are_published_one_per_line() {
    let o = study(&["limits"]);
    let (out, _) = text(&o);
    let names: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["sched_max_cpus", "recorder_max_cpus", "max_threads"]);
    let o = study(&["limits", "max_threads"]);
    assert_eq!(text(&o).0.trim(), "65472");
    assert_eq!(study(&["limits", "nope"]).status.code(), Some(2));
}
