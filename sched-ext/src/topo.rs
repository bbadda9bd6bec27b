// SPDX-License-Identifier: GPL-2.0-only
//! The machine's CPU topology as the scheduler sees it: CPUs, LLCs and NUMA
//! nodes, read once at start through scx_utils::Topology. Policies that need
//! topology in BPF get it from here.

use anyhow::{Context, Result};
use scx_utils::Topology;

pub struct Machine {
    pub nr_cpus: usize,
    /// CPUs of each NUMA node, by node id.
    pub nodes: Vec<Vec<usize>>,
    /// CPUs of each last-level cache.
    pub llcs: Vec<Vec<usize>>,
    pub smt: bool,
}

impl Machine {
    pub fn detect() -> Result<Self> {
        let topo = Topology::new().context("reading the CPU topology from sysfs")?;
        let nodes = topo
            .nodes
            .values()
            .map(|n| n.all_cpus.keys().copied().collect())
            .collect();
        let llcs = topo
            .all_llcs
            .values()
            .map(|l| l.all_cpus.keys().copied().collect())
            .collect();
        Ok(Machine {
            nr_cpus: topo.all_cpus.len(),
            nodes,
            llcs,
            smt: topo.smt_enabled,
        })
    }

    /// e.g. "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off"
    pub fn summary(&self) -> String {
        let spans: Vec<String> = self.nodes.iter().map(|c| cpu_list(c)).collect();
        format!(
            "{} CPUs, {} NUMA node{} [{}], {} LLC{}, SMT {}",
            self.nr_cpus,
            self.nodes.len(),
            if self.nodes.len() == 1 { "" } else { "s" },
            spans.join(" | "),
            self.llcs.len(),
            if self.llcs.len() == 1 { "" } else { "s" },
            if self.smt { "on" } else { "off" }
        )
    }
}

/// Compress a sorted CPU list into ranges: [0,1,2,5] -> "0-2,5".
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end { format!("{start}") } else { format!("{start}-{end}") });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_ranges() {
        assert_eq!(cpu_list(&[]), "");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn summary_wording() {
        let m = Machine {
            nr_cpus: 8,
            nodes: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            llcs: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            smt: false,
        };
        assert_eq!(m.summary(), "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off");
    }
}
