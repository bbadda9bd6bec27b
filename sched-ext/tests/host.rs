// SPDX-License-Identifier: GPL-2.0-only
//! The real scx_battle binary against this machine, without a VM: the
//! refusals that need no sched_ext kernel.

use std::path::Path;
use std::process::Command;

fn scx_battle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scx_battle"))
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// As a normal user: refused before anything is touched, whatever the kernel.
#[test]
fn not_root_is_refused() {
    assert!(is_root(), "this test drops to uid 65534 with setpriv and needs root");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_scx_battle"))
        .output()
        .expect("running setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must run as root"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The host's own kernel: without sched_ext, a clear refusal naming the
/// kernel; with it (a native machine), the sysfs interface the loader relies on.
#[test]
fn host_kernel_sched_ext_support_is_detected() {
    let dir = Path::new("/sys/kernel/sched_ext");
    if dir.is_dir() {
        let state = std::fs::read_to_string(dir.join("state")).expect("reading sched_ext state");
        assert!(!state.trim().is_empty());
        return;
    }
    assert!(is_root(), "run as root to check the no-sched_ext refusal");
    let out = scx_battle().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has no sched_ext") && err.contains(release.trim()), "{err}");
}

/// Bad option values: exit 2 with clap's message, or 1 with ours; never a panic.
#[test]
fn bad_options_are_refused() {
    for (args, code) in [
        (&["--policy", "nope"][..], 2),
        (&["--slice-us", "-5"], 2),
        (&["--stats", "0.01"], 2),
        (&["--watchdog-ms", "99999"], 2),
        (&["--exit-dump-len", "x"], 2),
        (&["--slice-us", "1000", "--slice-min-us", "2000"], 1),
    ] {
        let out = scx_battle().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.is_empty(), "{args:?}: {err}");
    }
}

/// --help-stats describes every counter of --stats (scx_stats' metadata),
/// without root or a scheduler; --monitor with nothing running says so.
#[test]
fn help_stats_describes_every_counter() {
    let out = scx_battle().arg("--help-stats").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["enqueue", "lb_success", "ule_bal_pass", "ule_steal", "ule_starve", "lb_small_fix", "uptime_s"] {
        assert!(text.lines().any(|l| l.contains(name)), "{name} not described:\n{text}");
    }
    assert!(text.contains("balancer passes"), "{text}");
    let out = scx_battle().args(["--monitor", "0.01"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every script answers --help (and -h) at once, with exit status 0 and its
/// usage, without starting any work: no apt, no build, no VM.
#[test]
fn every_script_answers_help_at_once() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let mut checked = 0;
    for entry in std::fs::read_dir(&scripts).expect("reading scripts/") {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        for flag in ["--help", "-h"] {
            let t = std::time::Instant::now();
            let out = Command::new(&path).arg(flag).output().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let secs = t.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{} {flag}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(secs < 5.0, "{} {flag} took {secs:.1} s", path.display());
            assert!(text.lines().filter(|l| !l.trim().is_empty()).count() >= 3, "{} {flag} printed no usage:\n{text}", path.display());
            assert!(!text.contains("set -"), "{} {flag} printed its code:\n{text}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} scripts in {}", scripts.display());
}

/// packaging/scx_battle.service is a unit systemd accepts, starting the
/// binary this build made (systemd-analyze verify).
#[test]
fn systemd_unit_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/scx_battle.service");
    let text = std::fs::read_to_string(&unit).expect("packaging/scx_battle.service");
    assert!(text.contains("ExecStart=/usr/local/bin/scx_battle $SCX_BATTLE_FLAGS"), "{text}");
    assert!(text.contains("KillSignal=SIGINT"), "the service must stop the scheduler as Ctrl-C does");
    // The same unit, starting this build's binary (systemd wants it to exist).
    let dir = std::env::temp_dir().join(format!("scx-battle-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("scx_battle.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/scx_battle", env!("CARGO_BIN_EXE_scx_battle"))).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (package systemd) is needed to check the unit");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}
