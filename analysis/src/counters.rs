// SPDX-License-Identifier: GPL-2.0-only
//! A run's scheduler counters over time: `sched_stats.csv`, written by
//! `scx_battle --stats-csv` beside loadgen's files. Its first column is
//! `mono_ns` (CLOCK_MONOTONIC), the others are the counters by name,
//! cumulative since the scheduler loaded; meta.json's `t0_monotonic_ns`
//! puts the lines on the run's clock.

use std::path::Path;

use anyhow::{bail, Result};

use crate::run::{data_file, field, read};

/// The file's name in a run directory.
pub const FILE: &str = "sched_stats.csv";

#[derive(Clone, Debug, PartialEq)]
pub struct SchedCounters {
    /// Counter names, in the file's order.
    pub names: Vec<String>,
    /// (seconds on the run's clock, cumulative value of each counter).
    pub samples: Vec<(f64, Vec<u64>)>,
}

impl SchedCounters {
    /// The run's counters, if it has a sched_stats.csv (or .gz).
    pub fn load(dir: &Path, t0_monotonic_ns: Option<u64>) -> Result<Option<SchedCounters>> {
        let path = data_file(dir, FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = read(&path)?;
        let mut lines = text.lines().enumerate();
        let Some((_, header)) = lines.next() else { bail!("{}: empty", path.display()) };
        let cols: Vec<&str> = header.trim().split(',').collect();
        if cols[0] != rundata::SCHED_STATS_TIME_COLUMN || cols.len() < 2 {
            bail!("{}: columns are '{}', expected mono_ns and counter names", path.display(), header.trim());
        }
        let Some(t0) = t0_monotonic_ns else {
            bail!("{}: meta.json has no t0_monotonic_ns to put it on the run's clock", path.display())
        };
        let names: Vec<String> = cols[1..].iter().map(|s| s.to_string()).collect();
        let mut samples = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.trim().split(',').collect();
            if f.len() != cols.len() {
                bail!("{}:{}: {} fields, expected {}", path.display(), i + 1, f.len(), cols.len());
            }
            let mono: u64 = field(&path, i + 1, "mono_ns", f[0])?;
            let values = f[1..]
                .iter()
                .zip(&names)
                .map(|(v, n)| field::<u64>(&path, i + 1, n, v))
                .collect::<Result<Vec<_>>>()?;
            samples.push(((mono as f64 - t0 as f64) / 1e9, values));
        }
        Ok(Some(SchedCounters { names, samples }))
    }

    /// Counters that moved during the run.
    pub fn active(&self) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&i| self.samples.first().map(|f| f.1[i]) != self.samples.last().map(|l| l.1[i]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, text: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("analysis-counters-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(FILE), text).unwrap();
        d
    }

    #[test]
    fn reads_counters_on_the_runs_clock() {
        let d = dir("good", "mono_ns,enqueue,ule_bal_move\n2000000000,10,0\n2100000000,15,0\n2200000000,15,1\n");
        let c = SchedCounters::load(&d, Some(1_000_000_000)).unwrap().unwrap();
        assert_eq!(c.names, ["enqueue", "ule_bal_move"]);
        assert_eq!(c.samples[0], (1.0, vec![10, 0]));
        assert_eq!(c.active(), [0, 1]);
        assert!(SchedCounters::load(&std::env::temp_dir(), None).unwrap().is_none());
    }

    #[test]
    fn bad_counters_name_the_file() {
        for (name, text, t0, want) in [
            ("hdr", "time,enqueue\n1,2\n", Some(0), "columns are"),
            ("not0", "mono_ns,enqueue\n1,2\n", None, "t0_monotonic_ns"),
            ("short", "mono_ns,enqueue\n1\n", Some(0), "1 fields, expected 2"),
            ("nan", "mono_ns,enqueue\n1,x\n", Some(0), "enqueue 'x'"),
        ] {
            let e = format!("{:#}", SchedCounters::load(&dir(name, text), t0).unwrap_err());
            assert!(e.contains(want) && e.contains(FILE), "{name}: {e}");
        }
    }
}
