// SPDX-License-Identifier: GPL-2.0-only
//! Loading and unloading a sched_ext scheduler, running a workload step, and
//! what a signal does meanwhile: the workload gets SIGINT first (loadgen then
//! writes what it recorded), then the scheduler is unloaded. Nothing stays
//! attached or running when the runner exits, whatever ends it.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

const SYSFS: &str = "/sys/kernel/sched_ext";

/// How long a scheduler may take to load (verification under TCG is slow).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to exit after SIGINT before it is killed (closing
/// its link detaches it either way).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a workload may take to write what it recorded after SIGINT.
const STEP_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The signal that asked us to stop (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Note INT, TERM and HUP instead of dying of them: the runner stops its
/// runs in order. Children get their default dispositions back (exec resets
/// handled signals), so loadgen and the scheduler handle theirs.
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// The signal received, if any.
pub fn signalled() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit status for a signal: 128 + its number (130 for INT, 143 for TERM).
pub fn signal_status(sig: i32) -> u8 {
    (128 + sig) as u8
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "INT",
        libc::SIGTERM => "TERM",
        libc::SIGHUP => "HUP",
        _ => "?",
    }
}

/// sched_ext's state: enabled, disabled, ... ("missing": no sched_ext).
pub fn state() -> String {
    std::fs::read_to_string(format!("{SYSFS}/state")).map(|s| s.trim().to_string()).unwrap_or_else(|_| "missing".into())
}

/// The loaded scheduler's ops name, if any.
pub fn ops() -> String {
    std::fs::read_to_string(format!("{SYSFS}/root/ops")).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn send(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// A loaded scheduler: its process and its log.
pub struct Loaded {
    child: Child,
    pub log: std::path::PathBuf,
}

/// Start COMMAND (output to LOG) and wait until sched_ext is enabled.
/// Err: why it did not load (from its log), with nothing left running.
pub fn load(command: &[String], log: &Path) -> Result<Loaded, String> {
    if state() != "disabled" {
        return Err(format!("a sched_ext scheduler is already loaded ({})", ops()));
    }
    let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", command[0]))?;
    let mut loaded = Loaded { child, log: log.to_path_buf() };
    let mut exited = false;
    let enabled = wait_until(LOAD_TIMEOUT, || {
        exited = matches!(loaded.child.try_wait(), Ok(Some(_)));
        state() == "enabled" || exited || signalled().is_some()
    }) && state() == "enabled";
    if !enabled {
        let why = load_error(log);
        let _ = loaded.stop();
        return Err(if exited { why } else { format!("not enabled after {} s ({why})", LOAD_TIMEOUT.as_secs()) });
    }
    Ok(loaded)
}

impl Loaded {
    /// Whether sched_ext still runs it (false: ejected, or it exited).
    pub fn attached(&mut self) -> bool {
        state() == "enabled" && matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGINT, wait for it to exit (kill it after STOP_TIMEOUT), wait until
    /// sched_ext is disabled. Returns its exit status (None: killed).
    pub fn stop(&mut self) -> Option<i32> {
        if matches!(self.child.try_wait(), Ok(None)) {
            send(&self.child, libc::SIGINT);
            if !wait_until(STOP_TIMEOUT, || matches!(self.child.try_wait(), Ok(Some(_)))) {
                let _ = self.child.kill();
            }
        }
        let status = self.child.wait().ok().and_then(|s| s.code());
        if !wait_until(Duration::from_secs(30), || state() == "disabled") {
            eprintln!("[study] sched_ext still {} after the scheduler exited", state());
        }
        status
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// One line: why a scheduler did not load. A Rust scheduler ends with
/// "Error: X / Caused by: Y" after its libbpf warnings, and the first libbpf
/// warning is often the root cause (a missing Kconfig, an unknown kfunc).
pub fn load_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let plain: String = strip_ansi(&text);
    let lines: Vec<&str> = plain.lines().collect();
    let err = lines.iter().find(|l| l.starts_with("Error:")).map(|l| l.to_string());
    let cause = lines
        .iter()
        .position(|l| l.starts_with("Caused by:"))
        .and_then(|i| lines[i + 1..].iter().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().trim_start_matches(|c: char| c.is_ascii_digit() || c == ':').trim().to_string());
    let warn = lines.iter().find_map(|l| l.find("libbpf: ").map(|i| l[i + 8..].to_string()));
    match err {
        Some(e) => format!(
            "{e}{}{}",
            cause.map(|c| format!(": {c}")).unwrap_or_default(),
            warn.map(|w| format!(" (first libbpf warning: {w})")).unwrap_or_default()
        ),
        None => lines
            .iter()
            .find(|l| l.to_lowercase().contains("error") || l.to_lowercase().contains("fail"))
            .or(lines.last())
            .map(|l| l.to_string())
            .unwrap_or_else(|| "it exited without a word".into()),
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Run a workload step to its end; on a signal, SIGINT it, give it
/// STEP_STOP_TIMEOUT to write what it recorded, then kill it. Returns its
/// exit status (None: killed by a signal).
pub fn run_step(command: &mut Command) -> Result<Option<i32>> {
    let mut child = command.spawn().context("starting the workload")?;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st.code());
        }
        if signalled().is_some() {
            send(&child, libc::SIGINT);
            if !wait_until(STEP_STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_)))) {
                let _ = child.kill();
            }
            return Ok(child.wait()?.code());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_error_names_the_error_its_cause_and_the_first_libbpf_warning() {
        let dir = std::env::temp_dir().join(format!("study-sched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        std::fs::write(&log, "\x1b[31mlibbpf: failed to find kfunc scx_bpf_foo\x1b[0m\nError: loading\n\nCaused by:\n    0: bad prog\n").unwrap();
        assert_eq!(load_error(&log), "Error: loading: bad prog (first libbpf warning: failed to find kfunc scx_bpf_foo)");
        std::fs::write(&log, "starting\nerror: --slice-us 5 is below 100\n").unwrap();
        assert_eq!(load_error(&log), "error: --slice-us 5 is below 100");
    }
}
