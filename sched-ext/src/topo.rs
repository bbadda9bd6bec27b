// SPDX-License-Identifier: GPL-2.0-only
//! The machine's CPU topology as the scheduler sees it: CPUs, cores, LLCs and
//! NUMA nodes, read once at start through scx_utils::Topology, and the
//! scheduling domains Linux would build from them. The BPF side gets its
//! topology tables from here (see `domains` and main.rs).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use scx_utils::Topology;

use crate::bpf_intf;

pub const NR_DOM_LEVELS: usize = bpf_intf::dom_level_NR_DOM_LEVELS as usize;

/// One online CPU, with dense ids for its core, LLC and node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPlace {
    pub cpu: usize,
    pub core: usize,
    pub llc: usize,
    pub node: usize,
}

pub struct Machine {
    pub nr_cpus: usize,
    /// CPUs of each NUMA node, by node id.
    pub nodes: Vec<Vec<usize>>,
    /// CPUs of each last-level cache.
    pub llcs: Vec<Vec<usize>>,
    pub smt: bool,
    pub cpus: Vec<CpuPlace>,
}

/// Linux's scheduling domains for a set of CPUs: for each level (SMT, LLC,
/// node, machine) whether it is a real level (its span is wider than the
/// level below somewhere), and each CPU's domain size at that level.
#[derive(Debug, PartialEq, Eq)]
pub struct Domains {
    pub active: [bool; NR_DOM_LEVELS],
    /// weight[level][cpu]: CPUs in that CPU's domain.
    pub weight: [BTreeMap<usize, usize>; NR_DOM_LEVELS],
}

pub fn domains(cpus: &[CpuPlace]) -> Domains {
    let key = |c: &CpuPlace, level: usize| match level {
        0 => Some(c.core),
        1 => Some(c.llc),
        2 => Some(c.node),
        _ => None,
    };
    let mut weight: [BTreeMap<usize, usize>; NR_DOM_LEVELS] = Default::default();
    for (level, w) in weight.iter_mut().enumerate() {
        for c in cpus {
            let n = cpus.iter().filter(|o| key(o, level) == key(c, level)).count();
            w.insert(c.cpu, n);
        }
    }
    let mut active = [false; NR_DOM_LEVELS];
    for level in 0..NR_DOM_LEVELS {
        active[level] = cpus.iter().any(|c| {
            let below = if level == 0 { 1 } else { weight[level - 1][&c.cpu] };
            weight[level][&c.cpu] > below
        });
    }
    Domains { active, weight }
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
        // Dense ids, in order of first appearance by CPU id.
        let dense = |ids: &mut BTreeMap<usize, usize>, k: usize| {
            let n = ids.len();
            *ids.entry(k).or_insert(n)
        };
        let (mut cores, mut llc_ids) = (BTreeMap::new(), BTreeMap::new());
        let cpus = topo
            .all_cpus
            .values()
            .map(|c| CpuPlace {
                cpu: c.id,
                core: dense(&mut cores, c.core_id),
                llc: dense(&mut llc_ids, c.llc_id),
                node: c.node_id,
            })
            .collect();
        Ok(Machine {
            nr_cpus: topo.all_cpus.len(),
            nodes,
            llcs,
            smt: topo.smt_enabled,
            cpus,
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

    fn place(cpu: usize, core: usize, llc: usize, node: usize) -> CpuPlace {
        CpuPlace { cpu, core, llc, node }
    }

    #[test]
    fn domains_of_the_small_vm() {
        // 2 nodes x 4 cores, no SMT, one LLC per node: SMT and node levels
        // are degenerate, LLC spans 4 CPUs, the machine 8.
        let cpus: Vec<_> = (0..8).map(|c| place(c, c, c / 4, c / 4)).collect();
        let d = domains(&cpus);
        assert_eq!(d.active, [false, true, false, true]);
        assert_eq!(d.weight[1][&5], 4);
        assert_eq!(d.weight[3][&5], 8);
    }

    #[test]
    fn domains_with_smt_and_split_llcs() {
        // 1 node, 2 LLCs of 2 cores, 2 threads per core.
        let cpus: Vec<_> = (0..8).map(|c| place(c, c / 2, c / 4, 0)).collect();
        let d = domains(&cpus);
        assert_eq!(d.active, [true, true, true, false]);
        assert_eq!((d.weight[0][&3], d.weight[1][&3], d.weight[2][&3]), (2, 4, 8));
    }

    #[test]
    fn summary_wording() {
        let m = Machine {
            nr_cpus: 8,
            nodes: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            llcs: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            smt: false,
            cpus: vec![],
        };
        assert_eq!(m.summary(), "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off");
    }
}
