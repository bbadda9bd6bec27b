// SPDX-License-Identifier: GPL-2.0-only
//! The ablation's attribution: which component of a scheduler (run queue,
//! placement, balancer; CFS's or ULE's each) a metric depends on, from the
//! eight combinations as a 2^3 factorial design.
//!
//! For a metric y measured under the eight combinations, the main effect of
//! a component is the mean of y over the four combinations with ULE's
//! version of it minus the mean over the four with CFS's; an interaction of
//! two (or three) components is the same difference over the combinations
//! where the product of their signs (+1 ULE, -1 CFS) is +1 and -1. The
//! seven effects together say how much of the metric's spread each part and
//! each pairing carries. A time that was not reached in a run counts as the
//! run's length (so the effects involving it are bounds), and is shown as
//! "> N".

use rundata::policy::{Comp, Part, Policy};
use serde::{Deserialize, Serialize};

/// The seven effects of a 2^3 design, in the order of `EFFECT_NAMES`.
pub const EFFECT_NAMES: [&str; 7] =
    ["run queue", "placement", "balancer", "queue x placement", "queue x balancer", "placement x balancer", "all three"];

/// The combination's position in a design's value array: bit 2 the run
/// queue, bit 1 the placement, bit 0 the balancer; a set bit is ULE's.
pub fn index(p: Policy) -> Option<usize> {
    let bit = |part| p.comp(part).map(|c| (c == Comp::Ule) as usize);
    Some(bit(Part::Queue)? << 2 | bit(Part::Place)? << 1 | bit(Part::Balance)?)
}

/// The combination at a position (the inverse of `index`).
pub fn policy_at(i: usize) -> Policy {
    let c = |bit: usize| if i >> bit & 1 == 1 { Comp::Ule } else { Comp::Cfs };
    Policy::Mix { queue: c(2), place: c(1), balance: c(0) }
}

/// +1 where the combination at i has ULE's version of the factor at `bit`, else -1.
fn sign(i: usize, bit: usize) -> f64 {
    if i >> bit & 1 == 1 {
        1.0
    } else {
        -1.0
    }
}

/// The seven effects of the eight values (indexed as `index`).
pub fn effects(y: &[f64; 8]) -> [f64; 7] {
    let contrast = |s: &dyn Fn(usize) -> f64| (0..8).map(|i| s(i) * y[i]).sum::<f64>() / 4.0;
    let (q, p, b) = (|i| sign(i, 2), |i| sign(i, 1), |i| sign(i, 0));
    [
        contrast(&q),
        contrast(&p),
        contrast(&b),
        contrast(&|i| q(i) * p(i)),
        contrast(&|i| q(i) * b(i)),
        contrast(&|i| p(i) * b(i)),
        contrast(&|i| q(i) * p(i) * b(i)),
    ]
}

/// One metric across the combinations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attribution {
    pub metric: String,
    pub unit: String,
    /// Per combination (indexed as `index`): the value, None if not measured.
    pub values: Vec<Option<f64>>,
    /// Per combination: the value is a lower bound (the time was not reached in the run).
    pub censored: Vec<bool>,
    /// The kernel's own scheduler, for reference.
    pub kernel: Option<f64>,
    /// The seven effects (EFFECT_NAMES), when every combination has a value.
    pub effects: Option<Vec<f64>>,
    /// What the table says, in a sentence.
    pub sentence: String,
}

/// Decimals that show a metric's values: none for counts, three for an
/// index below 2, one otherwise.
pub fn decimals(vals: impl Iterator<Item = f64> + Clone) -> usize {
    if vals.clone().all(|v| v.fract() == 0.0) {
        return 0;
    }
    let max = vals.map(f64::abs).fold(0.0, f64::max);
    if max < 2.0 {
        3
    } else {
        1
    }
}

/// A value as the table shows it.
pub fn show(v: Option<f64>, censored: bool, decimals: usize) -> String {
    match (v, censored) {
        (None, _) => "-".into(),
        (Some(v), true) => format!("> {v:.0}"),
        (Some(v), false) => format!("{v:.decimals$}"),
    }
}

impl Attribution {
    /// `values` and `censored` indexed as `index`.
    pub fn new(metric: &str, unit: &str, values: [Option<f64>; 8], censored: [bool; 8], kernel: Option<f64>) -> Attribution {
        let effects = values.iter().all(Option::is_some).then(|| {
            let y: [f64; 8] = std::array::from_fn(|i| values[i].unwrap_or(0.0));
            effects(&y).to_vec()
        });
        let mut a = Attribution {
            metric: metric.into(),
            unit: unit.into(),
            values: values.to_vec(),
            censored: censored.to_vec(),
            kernel,
            effects,
            sentence: String::new(),
        };
        a.sentence = a.explain();
        a
    }

    /// The values of the combinations with `comp`'s version of `part`.
    fn side(&self, part_bit: usize, ule: bool) -> Vec<(f64, bool)> {
        (0..8)
            .filter(|i| (i >> part_bit & 1 == 1) == ule)
            .filter_map(|i| self.values[i].map(|v| (v, self.censored[i])))
            .collect()
    }

    fn range(&self, vals: &[(f64, bool)]) -> String {
        let lo = vals.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let hi = vals.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
        let all_censored = vals.iter().all(|v| v.1);
        let unit = if self.unit.is_empty() { String::new() } else { format!(" {}", self.unit) };
        if all_censored {
            return format!("never (not within {hi:.0}{unit})");
        }
        let d = decimals(vals.iter().map(|v| v.0));
        let c = if vals.iter().any(|v| v.1) { " or never" } else { "" };
        if (hi - lo).abs() < 1e-9 {
            format!("{lo:.d$}{unit}{c}")
        } else {
            format!("{lo:.d$} to {hi:.d$}{unit}{c}")
        }
    }

    /// The sentence: the component with the largest main effect, and whether
    /// it decides the metric alone (every combination with ULE's version on
    /// one side of every combination with CFS's) or with others.
    fn explain(&self) -> String {
        let Some(e) = &self.effects else {
            let missing: Vec<String> =
                (0..8).filter(|&i| self.values[i].is_none()).map(|i| policy_at(i).to_string()).collect();
            return format!("{}: not attributed, no value under {}.", self.metric, missing.join(", "));
        };
        let total: f64 = e.iter().map(|x| x.abs()).sum();
        if total < 1e-9 {
            return format!("{}: the same under every combination; no component changes it.", self.metric);
        }
        let (k, main) = (0..3).map(|k| (k, e[k])).max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        let part = [Part::Queue, Part::Place, Part::Balance][k];
        let bit = 2 - k;
        let (ule, cfs) = (self.side(bit, true), self.side(bit, false));
        let separated = {
            let max = |v: &[(f64, bool)]| v.iter().map(|x| x.0).fold(f64::NEG_INFINITY, f64::max);
            let min = |v: &[(f64, bool)]| v.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
            min(&ule) > max(&cfs) || min(&cfs) > max(&ule)
        };
        let share = 100.0 * main.abs() / total;
        let others: Vec<&str> = Part::ALL.iter().filter(|&&p| p != part).map(|p| p.name()).collect();
        let (ki, inter) = (3..7).map(|k| (k, e[k])).max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        if separated && share >= 60.0 {
            format!(
                "{} is set by the {}: {} with ULE's, {} with CFS's, whatever the {} ({share:.0} % of the effects).",
                self.metric,
                part.name(),
                self.range(&ule),
                self.range(&cfs),
                others.join(" and "),
            )
        } else {
            let unit = if self.unit.is_empty() { String::new() } else { format!(" {}", self.unit) };
            let d = decimals(self.values.iter().flatten().copied());
            format!(
                "{}: the {} matters most (ULE's minus CFS's, on average: {main:+.d$}{unit}; {share:.0} % of the effects), \
                 not alone: {} with ULE's, {} with CFS's; the largest interaction is {} ({inter:+.d$}).",
                self.metric,
                part.name(),
                self.range(&ule),
                self.range(&cfs),
                EFFECT_NAMES[ki],
            )
        }
    }
}

/// The attribution table in Markdown: one row per metric, the combinations
/// as columns (the kernel first), then the effects.
pub fn markdown(rows: &[Attribution]) -> String {
    let mut s = String::from("| metric | kernel |");
    for i in 0..8 {
        s += &format!(" {} |", policy_at(i));
    }
    for n in EFFECT_NAMES {
        s += &format!(" {n} |");
    }
    s += "\n|---|---|";
    s += &"---|".repeat(8 + EFFECT_NAMES.len());
    s += "\n";
    for a in rows {
        let d = decimals(a.values.iter().flatten().chain(&a.kernel).copied());
        let unit = if a.unit.is_empty() { String::new() } else { format!(" ({})", a.unit) };
        s += &format!("| {}{unit} | {} |", a.metric, show(a.kernel, false, d));
        for i in 0..8 {
            s += &format!(" {} |", show(a.values[i], a.censored[i], d));
        }
        match &a.effects {
            Some(e) => {
                let biggest = e.iter().map(|x| x.abs()).fold(0.0, f64::max);
                for x in e {
                    let cell = format!("{x:+.d$}");
                    // The largest effect of the row in bold.
                    s += &if biggest > 0.0 && x.abs() == biggest { format!(" **{cell}** |") } else { format!(" {cell} |") };
                }
            }
            None => s += &" - |".repeat(EFFECT_NAMES.len()),
        }
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_policies_agree() {
        for i in 0..8 {
            assert_eq!(index(policy_at(i)), Some(i));
        }
        assert_eq!(policy_at(0).to_string(), "cfs");
        assert_eq!(policy_at(7).to_string(), "ule");
        assert_eq!(policy_at(1).to_string(), "cfs-cfs-ule");
        assert_eq!(policy_at(4).to_string(), "ule-cfs-cfs");
        assert_eq!(index(Policy::Vtime), None);
    }

    /// A hand-computed 2^3 example. y = 10 + 4 (balancer ULE) + 2 (queue ULE)
    /// + 1 (queue and placement both ULE): the balancer's effect is 4, the
    /// queue's 2 + 0.5 = 2.5 (the +1 sits in two of its four ULE cells and
    /// none of its CFS cells), the placement's 0.5, queue x placement 0.5,
    /// the others 0.
    #[test]
    fn effects_of_a_hand_computed_design() {
        let y: [f64; 8] = std::array::from_fn(|i| {
            let (q, p, b) = (i >> 2 & 1, i >> 1 & 1, i & 1);
            10.0 + 4.0 * b as f64 + 2.0 * q as f64 + (q * p) as f64
        });
        // Cell by cell, for the record: cfs 10, cfs-cfs-ule 14, cfs-ule-cfs 10,
        // cfs-ule-ule 14, ule-cfs-cfs 12, ule-cfs-ule 16, ule-ule-cfs 13, ule 17.
        assert_eq!(y, [10.0, 14.0, 10.0, 14.0, 12.0, 16.0, 13.0, 17.0]);
        // queue: (12+16+13+17)/4 - (10+14+10+14)/4 = 14.5 - 12 = 2.5
        // placement: (10+14+13+17)/4 - (10+14+12+16)/4 = 13.5 - 13 = 0.5
        // balancer: (14+14+16+17)/4 - (10+10+12+13)/4 = 15.25 - 11.25 = 4
        // queue x placement (+ where both or neither are ULE): (10+14+13+17)/4 - (10+14+12+16)/4 = 0.5
        assert_eq!(effects(&y), [2.5, 0.5, 4.0, 0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn a_metric_set_by_one_component_says_so() {
        // Time to perfect balance: 470 s with ULE's balancer, never (run of 60 s) with CFS's.
        let v: [Option<f64>; 8] = std::array::from_fn(|i| Some(if i & 1 == 1 { 470.0 } else { 60.0 }));
        let c: [bool; 8] = std::array::from_fn(|i| i & 1 == 0);
        let a = Attribution::new("perfect balance first reached", "s", v, c, Some(0.5));
        assert_eq!(a.effects.as_ref().unwrap()[2], 410.0);
        assert!(a.sentence.contains("set by the balancer"), "{}", a.sentence);
        assert!(a.sentence.contains("470 s with ULE's") && a.sentence.contains("never (not within 60 s) with CFS's"), "{}", a.sentence);
        let md = markdown(&[a]);
        assert!(md.contains("| perfect balance first reached (s) | 0.5 | > 60 | 470.0 |"), "{md}");
        assert!(md.contains("**+410.0**"), "{md}");
    }

    #[test]
    fn a_metric_with_interactions_is_not_given_to_one_component() {
        // Only the full ULE starves: an interaction of all three.
        let v: [Option<f64>; 8] = std::array::from_fn(|i| Some(if i == 7 { 0.0 } else { 50.0 }));
        let a = Attribution::new("batch CPU share", "%", v, [false; 8], Some(50.0));
        assert!(a.sentence.contains("not alone"), "{}", a.sentence);
        let missing: [Option<f64>; 8] = std::array::from_fn(|i| (i != 3).then_some(1.0));
        let a = Attribution::new("migrations", "", missing, [false; 8], None);
        assert!(a.effects.is_none() && a.sentence.contains("no value under cfs-ule-ule"), "{}", a.sentence);
        let flat = Attribution::new("x", "", [Some(3.0); 8], [false; 8], None);
        assert!(flat.sentence.contains("no component changes it"), "{}", flat.sentence);
    }
}
