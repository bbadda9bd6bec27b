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
    /// CPUs of each NUMA node that has CPUs, by node id.
    pub nodes: Vec<Vec<usize>>,
    /// Nodes with memory and no online CPU (CXL memory expanders, or nodes
    /// whose CPUs are all offline): nothing runs there, so no domain spans them.
    pub mem_only_nodes: Vec<usize>,
    /// Possible CPUs that are offline now (sysfs `possible` minus `online`).
    pub offline: Vec<usize>,
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
            .filter(|n| !n.all_cpus.is_empty())
            .map(|n| n.all_cpus.keys().copied().collect())
            .collect();
        let mem_only_nodes = topo.nodes.iter().filter(|(_, n)| n.all_cpus.is_empty()).map(|(&id, _)| id).collect();
        let read_list = |f: &str| {
            std::fs::read_to_string(format!("/sys/devices/system/cpu/{f}"))
                .map(|s| parse_cpu_list(s.trim()))
                .unwrap_or_default()
        };
        let online = read_list("online");
        let offline = read_list("possible").into_iter().filter(|c| !online.contains(c)).collect();
        let llcs: Vec<Vec<usize>> = topo
            .all_llcs
            .values()
            .map(|l| l.all_cpus.keys().copied().collect())
            .collect();
        // Dense ids, in order of first appearance by CPU id. An LLC is
        // keyed with its node: one that spans nodes (Intel sub-NUMA
        // clustering) becomes one LLC per node, so the tree stays a tree.
        let dense = |ids: &mut BTreeMap<(usize, usize), usize>, k: (usize, usize)| {
            let n = ids.len();
            *ids.entry(k).or_insert(n)
        };
        let (mut cores, mut llc_ids) = (BTreeMap::new(), BTreeMap::new());
        let mut cpus: Vec<CpuPlace> = topo
            .all_cpus
            .values()
            .map(|c| CpuPlace {
                cpu: c.id,
                core: dense(&mut cores, (c.node_id, c.core_id)),
                llc: dense(&mut llc_ids, (c.node_id, c.llc_id)),
                node: c.node_id,
            })
            .collect();
        renumber_llcs_by_node(&mut cpus);
        let split = llc_ids.len() != llcs.len();
        let mut m = Machine {
            nr_cpus: topo.all_cpus.len(),
            nodes,
            mem_only_nodes,
            offline,
            llcs,
            smt: topo.smt_enabled,
            cpus,
        };
        if split {
            // The LLCs as the scheduler sees them.
            m.llcs = m.tree().llc_cpus();
        }
        Ok(m)
    }

    pub fn tree(&self) -> Tree {
        Tree::new(&self.cpus)
    }

    /// e.g. "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off", then any
    /// memory-only nodes and offline CPUs.
    pub fn summary(&self) -> String {
        let spans: Vec<String> = self.nodes.iter().map(|c| cpu_list(c)).collect();
        let mut s = format!(
            "{} CPUs, {} NUMA node{} [{}], {} LLC{}, SMT {}",
            self.nr_cpus,
            self.nodes.len(),
            if self.nodes.len() == 1 { "" } else { "s" },
            spans.join(" | "),
            self.llcs.len(),
            if self.llcs.len() == 1 { "" } else { "s" },
            if self.smt { "on" } else { "off" }
        );
        if !self.mem_only_nodes.is_empty() {
            let ids: Vec<String> = self.mem_only_nodes.iter().map(|n| n.to_string()).collect();
            s += &format!(", memory-only node{} {}", if ids.len() == 1 { "" } else { "s" }, ids.join(","));
        }
        if !self.offline.is_empty() {
            s += &format!(", offline CPUs {}", cpu_list(&self.offline));
        }
        s
    }

    /// Refuse a machine the BPF tables cannot hold, before anything loads:
    /// every possible CPU id (an offline CPU may come online later) must be
    /// below `max`.
    pub fn check_fits(&self, max: usize) -> Result<()> {
        let highest = self.cpus.iter().map(|c| c.cpu).chain(self.offline.iter().copied()).max().unwrap_or(0);
        if highest >= max {
            anyhow::bail!(
                "this machine has CPU ids up to {highest}, and scx_battle's per-CPU tables hold {max} (MAX_CPUS in \
                 bpf/scheduler/intf.h); rebuild with a larger MAX_CPUS (a power of two), or boot with fewer possible CPUs \
                 (nr_cpus= / possible_cpus=)"
            );
        }
        Ok(())
    }
}

/// The scheduling domains of each CPU level by level, as one line per real
/// level: "llc: 2 domains of 4 CPUs [0-3 | 4-7]". Degenerate levels say so.
pub fn describe_domains(cpus: &[CpuPlace], doms: &Domains) -> Vec<String> {
    const NAMES: [&str; NR_DOM_LEVELS] = ["smt", "llc", "node", "machine"];
    let key = |c: &CpuPlace, level: usize| match level {
        0 => c.core,
        1 => c.llc,
        2 => c.node,
        _ => 0,
    };
    (0..NR_DOM_LEVELS)
        .map(|level| {
            let mut spans: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for c in cpus {
                spans.entry(key(c, level)).or_default().push(c.cpu);
            }
            let mut lists: Vec<Vec<usize>> = spans.into_values().collect();
            lists.iter_mut().for_each(|l| l.sort_unstable());
            lists.sort();
            let sizes: std::collections::BTreeSet<usize> = lists.iter().map(|l| l.len()).collect();
            let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
            let shown: Vec<String> = lists.iter().take(8).map(|l| cpu_list(l)).collect();
            let more = if lists.len() > 8 { format!(" | ... {} more", lists.len() - 8) } else { String::new() };
            format!(
                "{}: {} domain{} of {} CPUs [{}{more}]{}",
                NAMES[level],
                lists.len(),
                if lists.len() == 1 { "" } else { "s" },
                sizes.join("/"),
                shown.join(" | "),
                if doms.active[level] { "" } else { " (degenerate: same span as the level below, skipped)" }
            )
        })
        .collect()
}

/// LLC ids in tree order: node by node (nodes by id), within a node by
/// lowest CPU, so that a node's LLCs are consecutive.
pub fn renumber_llcs_by_node(cpus: &mut [CpuPlace]) {
    let mut first: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for c in cpus.iter() {
        let e = first.entry(c.llc).or_insert((c.node, c.cpu));
        e.1 = e.1.min(c.cpu);
    }
    let mut order: Vec<(usize, usize, usize)> = first.iter().map(|(&l, &(n, c))| (n, c, l)).collect();
    order.sort_unstable();
    let new: BTreeMap<usize, usize> = order.iter().enumerate().map(|(i, &(_, _, l))| (l, i)).collect();
    for c in cpus.iter_mut() {
        c.llc = new[&c.llc];
    }
}

/// The topology as the tree the BPF side walks: machine -> nodes -> LLCs ->
/// cores -> CPUs, flattened. `cpus` lists the CPUs node by node, LLC by LLC,
/// core by core; an LLC's and a core's CPUs are a range of it; a node's LLCs
/// are a range of LLC ids (see renumber_llcs_by_node).
#[derive(Debug, PartialEq, Eq)]
pub struct Tree {
    pub cpus: Vec<usize>,
    /// Dense node index of each node id with CPUs.
    pub node_idx: BTreeMap<usize, usize>,
    pub llc_first: Vec<usize>,
    pub llc_nr: Vec<usize>,
    pub node_first_llc: Vec<usize>,
    pub node_nr_llcs: Vec<usize>,
    /// Per CPU: the range of its core in `cpus`.
    pub core_first: BTreeMap<usize, usize>,
    pub core_nr: BTreeMap<usize, usize>,
}

impl Tree {
    pub fn new(places: &[CpuPlace]) -> Tree {
        let node_idx: BTreeMap<usize, usize> = {
            let ids: std::collections::BTreeSet<usize> = places.iter().map(|c| c.node).collect();
            ids.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
        };
        let mut order: Vec<&CpuPlace> = places.iter().collect();
        order.sort_by_key(|c| (node_idx[&c.node], c.llc, c.core, c.cpu));
        let cpus: Vec<usize> = order.iter().map(|c| c.cpu).collect();
        let nr_llcs = places.iter().map(|c| c.llc + 1).max().unwrap_or(0);
        let (mut llc_first, mut llc_nr) = (vec![0; nr_llcs], vec![0; nr_llcs]);
        let (mut core_first, mut core_nr) = (BTreeMap::new(), BTreeMap::new());
        let mut node_first_llc = vec![usize::MAX; node_idx.len()];
        let mut node_nr_llcs = vec![0; node_idx.len()];
        for (pos, c) in order.iter().enumerate() {
            if llc_nr[c.llc] == 0 {
                llc_first[c.llc] = pos;
                let n = node_idx[&c.node];
                node_first_llc[n] = node_first_llc[n].min(c.llc);
                node_nr_llcs[n] += 1;
            }
            llc_nr[c.llc] += 1;
            let first = order.iter().position(|o| o.core == c.core && o.llc == c.llc).unwrap();
            let nr = order.iter().filter(|o| o.core == c.core && o.llc == c.llc).count();
            core_first.insert(c.cpu, first);
            core_nr.insert(c.cpu, nr);
        }
        Tree { cpus, node_idx, llc_first, llc_nr, node_first_llc, node_nr_llcs, core_first, core_nr }
    }

    /// The CPUs of each LLC, by LLC id.
    pub fn llc_cpus(&self) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = (0..self.llc_nr.len())
            .map(|l| self.cpus[self.llc_first[l]..self.llc_first[l] + self.llc_nr[l]].to_vec())
            .collect();
        out.iter_mut().for_each(|l| l.sort_unstable());
        out
    }
}

/// Parse a sysfs CPU list: "0-3,8,10-11" -> [0,1,2,3,8,10,11]. Bad parts are skipped.
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
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

    fn small() -> Machine {
        Machine {
            nr_cpus: 8,
            nodes: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            mem_only_nodes: vec![],
            offline: vec![],
            llcs: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            smt: false,
            cpus: (0..8).map(|c| place(c, c, c / 4, c / 4)).collect(),
        }
    }

    #[test]
    fn summary_wording() {
        let mut m = small();
        assert_eq!(m.summary(), "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off");
        m.mem_only_nodes = vec![2];
        m.offline = vec![8, 9];
        assert_eq!(
            m.summary(),
            "8 CPUs, 2 NUMA nodes [0-3 | 4-7], 2 LLCs, SMT off, memory-only node 2, offline CPUs 8-9"
        );
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n".trim()), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
    }

    #[test]
    fn too_many_cpus_refused() {
        let mut m = small();
        m.check_fits(512).unwrap();
        m.offline = vec![600];
        let e = m.check_fits(512).unwrap_err().to_string();
        assert!(e.contains("CPU ids up to 600") && e.contains("MAX_CPUS"), "{e}");
    }

    #[test]
    fn tree_of_a_split_machine() {
        // 2 nodes x 2 LLCs x 2 cores x 2 threads, LLC ids given out of order.
        let mut cpus: Vec<_> = (0..16).map(|c| place(c, c / 2, [3, 1, 0, 2][c / 4], c / 8)).collect();
        renumber_llcs_by_node(&mut cpus);
        assert_eq!(cpus.iter().map(|c| c.llc).collect::<Vec<_>>(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
        let t = Tree::new(&cpus);
        assert_eq!(t.cpus, (0..16).collect::<Vec<_>>());
        assert_eq!((t.llc_first.clone(), t.llc_nr.clone()), (vec![0, 4, 8, 12], vec![4, 4, 4, 4]));
        assert_eq!((t.node_first_llc.clone(), t.node_nr_llcs.clone()), (vec![0, 2], vec![2, 2]));
        assert_eq!((t.core_first[&5], t.core_nr[&5]), (4, 2));
        assert_eq!(t.llc_cpus()[3], [12, 13, 14, 15]);
    }

    #[test]
    fn tree_with_interleaved_numbering() {
        // SMT siblings numbered n and n+4 (as on many x86 machines), one node, one LLC.
        let cpus: Vec<_> = (0..8).map(|c| place(c, c % 4, 0, 0)).collect();
        let t = Tree::new(&cpus);
        assert_eq!(t.cpus, [0, 4, 1, 5, 2, 6, 3, 7]);
        assert_eq!((t.core_first[&6], t.core_nr[&6]), (4, 2));
        // A node id gap (memory-only node 1 between them) leaves dense indices.
        let cpus: Vec<_> = (0..4).map(|c| place(c, c, c / 2, if c < 2 { 0 } else { 2 })).collect();
        let t = Tree::new(&cpus);
        assert_eq!(t.node_idx.get(&2), Some(&1));
        assert_eq!(t.node_first_llc, [0, 1]);
    }

    #[test]
    fn domains_described() {
        // 2 nodes x 2 LLCs x 2 cores x 2 threads.
        let cpus: Vec<_> = (0..16).map(|c| place(c, c / 2, c / 4, c / 8)).collect();
        let lines = describe_domains(&cpus, &domains(&cpus));
        assert_eq!(lines[0], "smt: 8 domains of 2 CPUs [0-1 | 2-3 | 4-5 | 6-7 | 8-9 | 10-11 | 12-13 | 14-15]");
        assert_eq!(lines[1], "llc: 4 domains of 4 CPUs [0-3 | 4-7 | 8-11 | 12-15]");
        assert_eq!(lines[2], "node: 2 domains of 8 CPUs [0-7 | 8-15]");
        assert_eq!(lines[3], "machine: 1 domain of 16 CPUs [0-15]");
        let small: Vec<_> = (0..8).map(|c| place(c, c, c / 4, c / 4)).collect();
        let lines = describe_domains(&small, &domains(&small));
        assert!(lines[0].ends_with("(degenerate: same span as the level below, skipped)"), "{}", lines[0]);
        assert!(lines[2].ends_with("(degenerate: same span as the level below, skipped)"), "{}", lines[2]);
    }
}
