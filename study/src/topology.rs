// SPDX-License-Identifier: GPL-2.0-only
//! The machine a plan is for, without booting anything: a VM preset as
//! scripts/vm describes it (the one home of the presets), or this machine
//! from sysfs.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::plan::Machine;

/// A preset of scripts/vm (`scripts/vm --preset NAME --describe`).
pub fn preset(repo: &Path, name: &str) -> Result<Machine> {
    let o = Command::new(repo.join("scripts/vm"))
        .args(["--preset", name, "--describe"])
        .output()
        .with_context(|| format!("running {}", repo.join("scripts/vm").display()))?;
    if !o.status.success() {
        bail!("--preset {name}: {}", String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("[vm] error: "));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |k: &str| -> Result<usize> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("scripts/vm --describe gave no {k}: {text}"))
    };
    Ok(Machine { cpus: field("cpus")?, nodes: field("nodes")?, smt: field("threads_per_core")? > 1, place: name.to_string() })
}

/// Online CPUs in a sysfs cpulist ("0-3,8-11").
fn cpulist_len(list: &str) -> usize {
    list.trim()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0).saturating_sub(a.parse().unwrap_or(0)) + 1,
            None => 1,
        })
        .sum()
}

/// This machine: online CPUs, nodes with CPUs, SMT.
pub fn native() -> Result<Machine> {
    let cpus = cpulist_len(&std::fs::read_to_string("/sys/devices/system/cpu/online").context("reading the online CPUs")?);
    let nodes = std::fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("node"))
                .filter(|e| std::fs::read_to_string(e.path().join("cpulist")).map(|l| cpulist_len(&l) > 0).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
        .max(1);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into());
    let short = host.split('.').next().unwrap_or("host").to_string();
    Ok(Machine { cpus, nodes, smt: native_smt(), place: format!("native-{short}") })
}

/// Whether any CPU of this machine has an SMT sibling.
pub fn native_smt() -> bool {
    std::fs::read_to_string("/sys/devices/system/cpu/smt/active").map(|s| s.trim() == "1").unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_count_their_cpus() {
        assert_eq!(cpulist_len("0-3,8-11\n"), 8);
        assert_eq!(cpulist_len("0"), 1);
        assert_eq!(cpulist_len(""), 0);
    }
}
