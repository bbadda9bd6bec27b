// SPDX-License-Identifier: GPL-2.0-only
//! The policies scx_battle loads: vtime, or a run queue, a placement and a
//! balancer, each CFS's or ULE's (bpf/scheduler/policy/components.bpf.h).
//! The one home of their names: scx_battle's `--policy` parses them and
//! `--list-policies` prints them, the ops name carries them (SchedulerInfo),
//! the study names its schedulers after them, the analysis reads them back.

use std::fmt;
use std::str::FromStr;

/// Whose component: Linux CFS's or FreeBSD ULE's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comp {
    Cfs,
    Ule,
}

impl Comp {
    pub fn name(self) -> &'static str {
        match self {
            Comp::Cfs => "cfs",
            Comp::Ule => "ule",
        }
    }

    pub fn parse(s: &str) -> Option<Comp> {
        match s {
            "cfs" => Some(Comp::Cfs),
            "ule" => Some(Comp::Ule),
            _ => None,
        }
    }
}

/// The three components a policy other than vtime is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Run queue: which task runs next, for how long, preemption, sleep and wakeup.
    Queue,
    /// Placement: the CPU a waking or new task goes to.
    Place,
    /// Balancer: periodic, idle and stealing passes.
    Balance,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Queue, Part::Place, Part::Balance];

    pub fn name(self) -> &'static str {
        match self {
            Part::Queue => "run queue",
            Part::Place => "placement",
            Part::Balance => "balancer",
        }
    }
}

/// A policy: vtime, or one component of each part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// One machine-wide queue ordered by weighted virtual time.
    Vtime,
    /// A run queue, a placement and a balancer.
    Mix { queue: Comp, place: Comp, balance: Comp },
}

pub const CFS: Policy = Policy::Mix { queue: Comp::Cfs, place: Comp::Cfs, balance: Comp::Cfs };
pub const ULE: Policy = Policy::Mix { queue: Comp::Ule, place: Comp::Ule, balance: Comp::Ule };

impl Policy {
    /// Every policy: vtime, the presets cfs and ule, then the six mixes
    /// (queue, placement, balancer; CFS's before ULE's at each place).
    pub fn all() -> Vec<Policy> {
        let mut v = vec![Policy::Vtime, CFS, ULE];
        let c = [Comp::Cfs, Comp::Ule];
        for queue in c {
            for place in c {
                for balance in c {
                    let p = Policy::Mix { queue, place, balance };
                    if p != CFS && p != ULE {
                        v.push(p);
                    }
                }
            }
        }
        v
    }

    /// The component of a part; None under vtime.
    pub fn comp(self, part: Part) -> Option<Comp> {
        match self {
            Policy::Vtime => None,
            Policy::Mix { queue, place, balance } => Some(match part {
                Part::Queue => queue,
                Part::Place => place,
                Part::Balance => balance,
            }),
        }
    }

    /// Does any part of this policy come from `c`?
    pub fn uses(self, c: Comp) -> bool {
        Part::ALL.iter().any(|&p| self.comp(p) == Some(c))
    }

    /// Its name in the ops name, which allows letters, digits, '_' and '.'
    /// only: the mix's dashes become dots.
    pub fn ops_name(self) -> String {
        self.to_string().replace('-', ".")
    }

    /// What it is made of, in words.
    pub fn describe(self) -> String {
        match self {
            Policy::Vtime => "one machine-wide weighted-vtime queue".into(),
            Policy::Mix { .. } => Part::ALL
                .iter()
                .map(|&p| format!("{} {}", p.name(), self.comp(p).map(Comp::name).unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Policy::Vtime => write!(f, "vtime"),
            p if p == CFS => write!(f, "cfs"),
            p if p == ULE => write!(f, "ule"),
            Policy::Mix { queue, place, balance } => write!(f, "{}-{}-{}", queue.name(), place.name(), balance.name()),
        }
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "vtime" => return Ok(Policy::Vtime),
            "cfs" => return Ok(CFS),
            "ule" => return Ok(ULE),
            _ => {}
        }
        let parts: Vec<&str> = s.split('-').collect();
        if let [q, p, b] = parts.as_slice() {
            if let (Some(queue), Some(place), Some(balance)) = (Comp::parse(q), Comp::parse(p), Comp::parse(b)) {
                return Ok(Policy::Mix { queue, place, balance });
            }
        }
        Err(format!(
            "'{s}' is not a policy: vtime, cfs, ule, or QUEUE-PLACE-BALANCE with each of cfs and ule \
             (the run queue, the placement, the balancer: e.g. cfs-cfs-ule is CFS with ULE's balancer)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_presets_are_canonical() {
        let all = Policy::all();
        assert_eq!(all.len(), 9, "vtime, cfs, ule and six mixes");
        for p in &all {
            assert_eq!(p.to_string().parse::<Policy>().unwrap(), *p);
        }
        assert_eq!("cfs-cfs-cfs".parse::<Policy>().unwrap().to_string(), "cfs");
        assert_eq!("ule-ule-ule".parse::<Policy>().unwrap().to_string(), "ule");
        let p: Policy = "ule-cfs-cfs".parse().unwrap();
        assert_eq!(p.comp(Part::Queue), Some(Comp::Ule));
        assert_eq!(p.comp(Part::Place), Some(Comp::Cfs));
        assert_eq!(p.ops_name(), "ule.cfs.cfs");
        assert_eq!(p.describe(), "run queue ule, placement cfs, balancer cfs");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "fifo", "cfs-ule", "cfs-ule-cfs-ule", "cfs-vtime-ule", "CFS", "cfs--ule"] {
            let e = bad.parse::<Policy>().unwrap_err();
            assert!(e.contains("QUEUE-PLACE-BALANCE"), "{e}");
        }
    }
}
