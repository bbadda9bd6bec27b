// SPDX-License-Identifier: GPL-2.0-only
//! Ctrl-C: a signal to the process group of scripts/vm and scripts/reproduce.

use super::*;


pub struct Interrupts {
    /// (what, exit status, seconds from the signal to the exit, processes left, detail)
    results: Vec<(String, Option<i32>, f64, String, String)>,
}

/// Start COMMAND in its own process group (as a shell does), wait until
/// `started` appears in OUT (the guest command began), then SIGINT the group.
fn interrupt(what: &str, out: &Path, command: &mut Command) -> (String, Option<i32>, f64, String, String) {
    use std::os::unix::process::CommandExt;
    // As a terminal starts it: INT, TERM and HUP at their defaults, whatever
    // this test inherited (a shell's background job has INT ignored, and bash
    // cannot trap a signal ignored at entry).
    unsafe {
        command.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = command
        .process_group(0)
        .env("SCX_BATTLE_BIN", bin_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !out.join("started").exists() && t0.elapsed().as_secs() < 600 {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let t = Instant::now();
    let status = child.wait_with_output().expect("wait");
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let left = Command::new("pgrep").args(["-af", &out.display().to_string()]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&status.stderr).lines().rev().take(4).collect::<Vec<_>>().join(" / ");
    (what.to_string(), status.status.code(), secs, left, stderr)
}

/// SIGINT to scripts/vm (booting `small`) and to a quick study in the VM.
pub static INTERRUPTS: Job<Interrupts> = Job::new("interrupts", run_interrupts);

fn run_interrupts() -> Interrupts {
    check_bins();
    let base = repo().join("results/tmp").join(format!("test-interrupt-{}", std::process::id()));
    let vm_out = base.join("vm");
    let study_out = base.join("study");
    let mut vm = Command::new(repo().join("scripts/vm"));
    vm.args(["--preset", "small", "--quiet", "--out"]).arg(&vm_out).args(["--", "sleep", "100000"]);
    let mut study = Command::new(repo().join("scripts/reproduce"));
    study.args(["--quick", "--mode", "vm", "--out"]).arg(&study_out);
    Interrupts { results: vec![interrupt("scripts/vm", &vm_out, &mut vm), interrupt("scripts/reproduce", &study_out, &mut study)] }
}

#[test]
fn ctrl_c_stops_the_vm_and_the_study_with_nothing_left() {
    for (what, status, secs, left, detail) in &INTERRUPTS.get().results {
        eprintln!("{what}: SIGINT to its process group: exit {status:?} after {secs:.1} s; left running: [{left}]; {detail}");
        assert_eq!(*status, Some(130), "{what}: exit status");
        assert!(*secs < 30.0, "{what}: took {secs:.1} s to stop");
        assert!(left.is_empty(), "{what}: still running: {left}");
    }
    let base = repo().join("results/tmp").join(format!("test-interrupt-{}", std::process::id()));
    let summary = std::fs::read_to_string(base.join("study/summary.md")).expect("the interrupted study wrote no summary.md");
    assert!(summary.contains("INCOMPLETE"), "summary.md not marked incomplete:\n{summary}");
}

// --- Threads that start spinning on a crowded CPU (scripts/check-crowded-start) ---

