// SPDX-License-Identifier: GPL-2.0-only
//! `analysis apps-compare` on the committed icount and --realtime studies
//! of the application suite (results/2026-12-07-apps-small-clocks).

use std::path::PathBuf;
use std::process::Command;

fn clocks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/2026-12-07-apps-small-clocks")
}

#[test]
fn the_committed_clocks_comparison_is_what_the_tool_says() {
    let d = clocks();
    let out = Command::new(env!("CARGO_BIN_EXE_analysis"))
        .arg("apps-compare")
        .arg(d.join("icount"))
        .arg(d.join("realtime"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("icount (shift 0), TCG") && text.contains("realtime, TCG"), "{text}");
    // sysbench beside fibo is the result the clock turns round.
    assert!(text.contains("sysbench-fibo (-9.9 → +37.4 %)"), "{text}");
    // The paragraph docs/apps.md quotes, apart from the paths.
    let committed = std::fs::read_to_string(d.join("comparison.md")).unwrap();
    let body = |t: &str| t.lines().filter(|l| !l.starts_with("A: ") && !l.starts_with("B: ")).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&text), body(&committed), "comparison.md is stale: rerun analysis apps-compare");
    // Each study's figure names its own clock's caveat.
    for (study, realtime) in [("icount", false), ("realtime", true)] {
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join(study).join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["apps"]["realtime"].as_bool().unwrap_or(false), realtime, "{study}");
    }
}

#[test]
fn a_study_without_applications_is_an_error() {
    let d = clocks();
    let out = Command::new(env!("CARGO_BIN_EXE_analysis"))
        .arg("apps-compare")
        .arg(d.join("icount"))
        .arg("/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/summary.json") || err.contains("/nonexistent"), "{err}");
}
