// SPDX-License-Identifier: GPL-2.0-only
//! scripts/vm's own options: bad ones refused before a boot, the timeout.

use super::*;

/// The runner refuses bad options before booting anything.
#[test]
fn rejects_bad_options() {
    for args in [
        &["--preset", "huge", "--", "true"][..],
        &["--nodes", "0", "--", "true"],
        &["--cores-per-node", "x", "--", "true"],
        &["--mode", "fast", "--", "true"],
        &["--nodes", "64", "--cores-per-node", "32", "--", "true"],
        &["--preset", "small"],
    ] {
        let res = Command::new(repo().join("scripts/vm")).args(args).env("SCX_BATTLE_BIN", bin_dir()).output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        // Bad usage: exit status 2 (docs/cli.md).
        assert_eq!(res.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error:"), "{args:?} gave no error message: {err}");
    }
}

/// The hard wall-clock limit ends a run that would go on forever, with
/// status 124: (exit status, seconds it took).
pub static TIMEOUT: Job<(Option<i32>, f64, String)> = Job::new("timeout", || {
    let t = Instant::now();
    let out = repo().join("results/tmp").join(format!("test-timeout-{}", std::process::id()));
    let res = Command::new(repo().join("scripts/vm"))
        .args(["--preset", "small", "--quiet", "--timeout", "5", "--out"])
        .arg(&out)
        .args(["--", "sleep", "100000"])
        .env("SCX_BATTLE_BIN", bin_dir())
        .output()
        .expect("running scripts/vm");
    (res.status.code(), t.elapsed().as_secs_f64(), String::from_utf8_lossy(&res.stderr).into_owned())
});

#[test]
fn enforces_timeout() {
    let (status, secs, stderr) = TIMEOUT.get();
    assert_eq!(*status, Some(124), "{stderr}");
    assert!(*secs < 60.0, "timeout took {secs:.0} s");
}
