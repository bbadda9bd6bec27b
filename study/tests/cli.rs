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
            "starvation-identical/ule",
            // ULE's guard off: only under the scheduler with ULE's run queue, 25 s at most.
            "starvation-unguarded/ule"
        ],
        "{out}"
    );
    // The ULE rule on small: 128 - 7 - 16 = 105 passes, +10 % and 30 s.
    assert!(out.contains("146 s under ULE: its rule needs 105 passes"), "{out}");
    assert!(out.contains("10 runs; estimated wall time"), "{out}");
    let unguarded = out.lines().find(|l| l.starts_with("starvation-unguarded/ule")).unwrap();
    assert_eq!(unguarded.split_whitespace().nth(1), Some("25.0"), "{unguarded}");
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
    assert_eq!(all.len(), 20);
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
    assert_eq!(names, ["sched_max_cpus", "recorder_max_cpus", "max_threads", "unguarded_starvation_max_s"]);
    let o = study(&["limits", "max_threads"]);
    assert_eq!(text(&o).0.trim(), "65472");
    assert_eq!(study(&["limits", "nope"]).status.code(), Some(2));
}

/// A recursive copy, for the slices the report tests make.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A committed study cut into `n` slices as `study run --shard K/N` would
/// have written them (every N-th run from the K-th, with its records).
fn slices_of(study_dir: &Path, n: usize, into: &Path) -> Vec<PathBuf> {
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(study_dir.join(f)).unwrap()).unwrap()
    };
    let (plan, record) = (read("plan.json"), read("study.json"));
    (1..=n)
        .map(|k| {
            let dir = into.join(format!("slice-{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            let keep = |v: &serde_json::Value| -> serde_json::Value {
                v.as_array().unwrap().iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, r)| r.clone()).collect()
            };
            let mut p = plan.clone();
            p["shard"] = serde_json::json!([k, n]);
            p["runs"] = keep(&plan["runs"]);
            let mut s = record.clone();
            s["runs"] = keep(&record["runs"]);
            std::fs::write(dir.join("plan.json"), p.to_string()).unwrap();
            std::fs::write(dir.join("study.json"), s.to_string()).unwrap();
            for r in p["runs"].as_array().unwrap() {
                let run = r["dir"].as_str().unwrap();
                copy_tree(&study_dir.join(run), &dir.join(run));
            }
            dir
        })
        .collect()
}

#[test]
fn report_over_the_slices_of_a_study_gives_the_study_summary() {
    // A real study (the quick one, recorded in the VM), cut into 2 slices.
    let whole = repo().join("results/2026-12-06-small");
    let tmp = std::env::temp_dir().join(format!("study-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let slices = slices_of(&whole, 2, &tmp);
    let merged = tmp.join("merged");
    // In any order.
    let o = study(&["report", slices[1].to_str().unwrap(), slices[0].to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let summary = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
    };
    // The study in one piece, reported by this build's analysis (the
    // committed summary may come from an older one).
    let single = tmp.join("single");
    copy_tree(&whole, &single);
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("plan.json")).unwrap()).unwrap();
    let runs: Vec<PathBuf> = plan["runs"].as_array().unwrap().iter().map(|r| single.join(r["dir"].as_str().unwrap())).collect();
    let o = Command::new(Path::new(env!("CARGO_BIN_EXE_study")).parent().unwrap().join("analysis"))
        .arg("report")
        .args(&runs)
        .arg("--out")
        .arg(&single)
        .arg("--study")
        .arg(single.join("study.json"))
        .output()
        .expect("running analysis (cargo build --release --workspace builds it)");
    assert!(o.status.success(), "{}", text(&o).1);
    let (a, b) = (summary(&single), summary(&merged));
    for part in ["complete", "failed", "problems", "figure6", "starvation"] {
        assert_eq!(a[part], b[part], "summary.json's {part} differs from the study run in one piece");
    }
    // The merged record: every run in the plan's order, and the slices.
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(merged.join("study.json")).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("study.json")).unwrap()).unwrap();
    assert_eq!(record["runs"], original["runs"]);
    assert_eq!(record["slices"].as_array().map(Vec::len), Some(2), "{record}");

    // A slice missing, given twice, or from another plan: refused, naming it.
    let refused = |args: &[&Path], want: &str| {
        let out = tmp.join(format!("refused-{}", want.len()));
        let mut a: Vec<&str> = vec!["report"];
        a.extend(args.iter().map(|p| p.to_str().unwrap()));
        a.extend(["--out", out.to_str().unwrap()]);
        let o = study(&a);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "wanted '{want}' in: {err}");
        assert!(!out.exists(), "a refused report wrote {}", out.display());
    };
    refused(&[&slices[0]], "slice 2/2 is missing");
    refused(&[&slices[0], &slices[0], &slices[1]], "slice 1/2 is given twice");
    let plan_path = slices[1].join("plan.json");
    let mut p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    p["params"]["threads"] = serde_json::json!(64);
    std::fs::write(&plan_path, p.to_string()).unwrap();
    refused(&[&slices[0], &slices[1]], "different parameters");
    p["params"]["threads"] = serde_json::json!(128);
    std::fs::write(&plan_path, p.to_string()).unwrap();
    // One build: different commits are refused without a fingerprint of the
    // binaries, taken with the same one (frozen binaries, a later checkout),
    // and different binaries are refused unless rebuilt from one clean
    // commit (a dirty tree could have been anything).
    let record_path = |k: usize| slices[k].join("study.json");
    let set = |k: usize, field: &str, value: serde_json::Value| {
        let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(record_path(k)).unwrap()).unwrap();
        r[field] = value;
        std::fs::write(record_path(k), r.to_string()).unwrap();
    };
    let edit = |k: usize, commit: &str, binaries: Option<&str>| {
        set(k, "commit", serde_json::json!(commit));
        set(k, "dirty", serde_json::json!(false));
        set(k, "binaries", binaries.map_or(serde_json::Value::Null, |b| serde_json::json!(b)));
    };
    edit(0, "1111111111111111111111111111111111111111", None);
    edit(1, "2222222222222222222222222222222222222222", None);
    refused(&[&slices[0], &slices[1]], "build every slice from one commit");
    edit(0, "1111111111111111111111111111111111111111", Some("fnv1a64:00000000000000aa"));
    edit(1, "2222222222222222222222222222222222222222", Some("fnv1a64:00000000000000bb"));
    refused(&[&slices[0], &slices[1]], "different binaries");
    edit(1, "1111111111111111111111111111111111111111", Some("fnv1a64:00000000000000bb"));
    set(1, "dirty", serde_json::json!(true));
    refused(&[&slices[0], &slices[1]], "not rebuilt from one clean commit");
    set(1, "dirty", serde_json::json!(false));
    let rebuilt = tmp.join("rebuilt");
    let o = study(&["report", slices[0].to_str().unwrap(), slices[1].to_str().unwrap(), "--out", rebuilt.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let md = std::fs::read_to_string(rebuilt.join("summary.md")).unwrap();
    assert!(md.contains("binaries fnv1a64:00000000000000bb"), "{md}");
    assert!(md.contains("built separately from this one clean commit"), "{md}");
    // One kernel.
    let kernel = |k: usize| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(record_path(k)).unwrap()).unwrap()["kernel"].clone()
    };
    let original_kernel = kernel(1);
    assert!(original_kernel.is_string(), "the study records its kernel");
    set(1, "kernel", serde_json::json!("0.0.1-other"));
    refused(&[&slices[0], &slices[1]], "run every slice on one kernel");
    set(1, "kernel", original_kernel);
    edit(1, "2222222222222222222222222222222222222222", Some("fnv1a64:00000000000000aa"));
    let same_build = tmp.join("same-build");
    let o = study(&["report", slices[0].to_str().unwrap(), slices[1].to_str().unwrap(), "--out", same_build.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let md = std::fs::read_to_string(same_build.join("summary.md")).unwrap();
    assert!(md.contains("Binaries: fnv1a64:00000000000000aa."), "{md}");
    assert!(md.contains("started from a checkout at 222222222222"), "{md}");
    assert!(md.contains("different checkouts with the same binaries"), "{md}");
    // An existing output directory is refused as by `study run`.
    let o = study(&["report", slices[0].to_str().unwrap(), slices[1].to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("exists"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn report_over_application_slices_names_their_machine_and_kernel() {
    // A recorded application study whose record predates the engine reading
    // application runs: it names no kernel; its runs' bench.json do, and the
    // merged record (which the one-kernel check reads) takes it from there.
    let whole = repo().join("results/2026-12-07-apps-small-lostwakeup");
    let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("study.json")).unwrap()).unwrap();
    assert!(original["kernel"].is_null(), "this test needs a record without a kernel");
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("plan.json")).unwrap()).unwrap();
    let first_run = plan["runs"][0]["dir"].as_str().unwrap();
    let bench_dir = std::fs::read_dir(whole.join(first_run)).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("bench.json").is_file()).unwrap();
    let bench: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bench_dir.join("bench.json")).unwrap()).unwrap();
    let tmp = std::env::temp_dir().join(format!("study-report-apps-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let slices = slices_of(&whole, 1, &tmp);
    let merged = tmp.join("merged");
    let o = study(&["report", slices[0].to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(merged.join("study.json")).unwrap()).unwrap();
    assert_eq!(record["kernel"], bench["kernel_release"], "{record}");
    assert_eq!(record["machine"]["cpus"].as_u64(), bench["topology"]["cpus"].as_array().map(|c| c.len() as u64), "{record}");
    let _ = std::fs::remove_dir_all(&tmp);
}
