// SPDX-License-Identifier: GPL-2.0-only
//! Two application studies side by side (`analysis apps-compare A B`): the
//! same suite run two ways, say in the VM under icount and under
//! `--realtime`, or in the VM and natively. For each result, every
//! scheduler's performance relative to CFS in each study, and which results
//! *change*: the median moves to another side of ±NOTABLE_PCT (ahead, within,
//! behind). A change whose two min-max ranges overlap is flagged as such:
//! the rounds do not tell the two apart.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::apps::{AppRow, Apps, BASE, NOTABLE_PCT, VERSUS};
use crate::report::{Report, Spread};

/// Where a relative performance falls, against NOTABLE_PCT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Ahead,
    Within,
    Behind,
}

impl Side {
    fn of(pct: f64) -> Side {
        if pct > NOTABLE_PCT {
            Side::Ahead
        } else if pct < -NOTABLE_PCT {
            Side::Behind
        } else {
            Side::Within
        }
    }

    fn word(self) -> &'static str {
        match self {
            Side::Ahead => "ahead",
            Side::Within => "within 5 %",
            Side::Behind => "behind",
        }
    }
}

/// One scheduler's result relative to BASE in both studies.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub scheduler: String,
    pub a: Spread,
    pub b: Spread,
    /// Both medians' sides differ.
    pub changes: bool,
    /// ... and the two ranges over rounds overlap (a weak change).
    pub ranges_overlap: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub app: String,
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// BASE's own metric (median) in each study, and B over A.
    pub base_a: Option<f64>,
    pub base_b: Option<f64>,
    pub pairs: Vec<Pair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// How each study ran: its VM's clock and accelerator, or "native".
    pub a: String,
    pub b: String,
    pub rows: Vec<Row>,
    /// Results in only one of the two studies.
    pub only_in_one: Vec<String>,
}

/// "icount (shift 0), TCG on small (8 CPUs)", from the study's record.
fn label(rep: &Report, path: &Path) -> String {
    let Some(st) = &rep.study else { return path.display().to_string() };
    let cpus = st.machine.as_ref().map(|m| format!(" ({} CPUs)", m.cpus)).unwrap_or_default();
    // The VM's description names its CPUs already.
    let how = match &st.emulation {
        Some(e) if e.kind == "native" => format!("native{cpus}"),
        Some(e) => e.vm.clone().unwrap_or_else(|| format!("{}{cpus}", e.kind)),
        None => format!("unknown clock{cpus}"),
    };
    format!("{how}, {}", path.display())
}

/// Reads DIR/summary.json (or the file itself), which must hold applications.
pub fn load(path: &Path) -> Result<(Report, PathBuf)> {
    let file = if path.is_dir() { path.join("summary.json") } else { path.to_path_buf() };
    let rep = Report::load(&file)?;
    if rep.apps.as_ref().is_none_or(|a| a.rows.is_empty()) {
        bail!("{}: no application results (not a study run with --apps)", file.display());
    }
    Ok((rep, file))
}

fn ranges_overlap(a: &Spread, b: &Spread) -> bool {
    match (a.min, a.max, b.min, b.max) {
        (Some(alo), Some(ahi), Some(blo), Some(bhi)) => alo <= bhi && blo <= ahi,
        _ => true,
    }
}

pub fn compare(a: &Apps, a_label: String, b: &Apps, b_label: String) -> Comparison {
    let find = |apps: &'_ Apps, name: &str| apps.rows.iter().find(|r| r.app == name).cloned();
    let base = |r: &AppRow| r.values.get(BASE).and_then(|s| s.median);
    let mut rows = Vec::new();
    let mut only_in_one = Vec::new();
    for ra in &a.rows {
        let Some(rb) = find(b, &ra.app) else {
            only_in_one.push(ra.app.clone());
            continue;
        };
        // ULE first (the paper's pair), then the others in A's order.
        let mut scheds: Vec<&String> = ra.relative_pct.keys().filter(|s| rb.relative_pct.contains_key(*s)).collect();
        scheds.sort_by_key(|s| (s.as_str() != VERSUS, a.schedulers.iter().position(|x| x == *s)));
        let pairs = scheds
            .into_iter()
            .filter_map(|s| {
                let (sa, sb) = (ra.relative_pct[s].clone(), rb.relative_pct[s].clone());
                let (ma, mb) = (sa.median?, sb.median?);
                let changes = Side::of(ma) != Side::of(mb);
                Some(Pair { scheduler: s.clone(), ranges_overlap: changes && ranges_overlap(&sa, &sb), a: sa, b: sb, changes })
            })
            .collect();
        rows.push(Row {
            app: ra.app.clone(),
            metric: ra.metric.clone(),
            unit: ra.unit.clone(),
            higher_is_better: ra.higher_is_better,
            base_a: base(ra),
            base_b: base(&rb),
            pairs,
        });
    }
    only_in_one.extend(b.rows.iter().filter(|r| find(a, &r.app).is_none()).map(|r| r.app.clone()));
    Comparison { a: a_label, b: b_label, rows, only_in_one }
}

pub fn compare_files(a: &Path, b: &Path) -> Result<Comparison> {
    let (ra, fa) = load(a)?;
    let (rb, fb) = load(b)?;
    let (aa, ab) = (ra.apps.as_ref().expect("load checked"), rb.apps.as_ref().expect("load checked"));
    Ok(compare(aa, label(&ra, &fa), ab, label(&rb, &fb)))
}

fn pct(s: &Spread) -> String {
    match (s.median, s.min, s.max) {
        (Some(m), Some(lo), Some(hi)) if s.n > 1 => format!("{m:+.1} % ({lo:+.1} to {hi:+.1})"),
        (Some(m), ..) => format!("{m:+.1} %"),
        _ => "-".into(),
    }
}

/// The table and a paragraph, markdown.
pub fn markdown(c: &Comparison) -> String {
    let mut s = format!("A: {}\n\nB: {}\n\n", c.a, c.b);
    s += &format!(
        "Each scheduler relative to {BASE} in %, positive when it does better: median (min-max over rounds). \
         A result *changes* when its median moves to another side of ±{NOTABLE_PCT} % (ahead, within, behind); \
         \"ranges overlap\" means the rounds of A and B do not tell the two apart.\n\n"
    );
    s += &format!("| result | {BASE} in A | {BASE} B/A | scheduler | A | B | changes |\n|---|---|---|---|---|---|---|\n");
    for r in &c.rows {
        let base_a = r.base_a.map(|v| format!("{v:.3} {}", r.unit)).unwrap_or("-".into());
        let ratio = match (r.base_a, r.base_b) {
            (Some(x), Some(y)) if x > 0.0 => format!("{:.2}x", y / x),
            _ => "-".into(),
        };
        for (i, p) in r.pairs.iter().enumerate() {
            let (first, base_a, ratio) = if i == 0 { (r.app.as_str(), base_a.as_str(), ratio.as_str()) } else { ("", "", "") };
            let verdict = match (p.changes, p.ranges_overlap) {
                (false, _) => String::new(),
                (true, over) => format!(
                    "**{} → {}**{}",
                    Side::of(p.a.median.unwrap_or(0.0)).word(),
                    Side::of(p.b.median.unwrap_or(0.0)).word(),
                    if over { " (ranges overlap)" } else { "" }
                ),
            };
            s += &format!("| {first} | {base_a} | {ratio} | {} | {} | {} | {verdict} |\n", p.scheduler, pct(&p.a), pct(&p.b));
        }
    }
    if !c.only_in_one.is_empty() {
        s += &format!("\nIn only one of the two: {}.\n", c.only_in_one.join(", "));
    }
    s += &format!("\n{}\n", paragraph(c));
    s
}

/// "Of 16 results, ule vs cfs changes on 3: hackbench (-33.0 → -2.1 %), ..."
pub fn paragraph(c: &Comparison) -> String {
    let mut out = Vec::new();
    let mut scheds: Vec<&str> = c.rows.iter().flat_map(|r| r.pairs.iter().map(|p| p.scheduler.as_str())).collect();
    scheds.sort_by_key(|s| *s != VERSUS);
    scheds.dedup();
    let mut seen = Vec::new();
    for s in scheds {
        if seen.contains(&s) {
            continue;
        }
        seen.push(s);
        let pairs: Vec<(&Row, &Pair)> =
            c.rows.iter().filter_map(|r| r.pairs.iter().find(|p| p.scheduler == s).map(|p| (r, p))).collect();
        let changed: Vec<String> = pairs
            .iter()
            .filter(|(_, p)| p.changes)
            .map(|(r, p)| {
                format!(
                    "{} ({:+.1} → {:+.1} %{})",
                    r.app,
                    p.a.median.unwrap_or(0.0),
                    p.b.median.unwrap_or(0.0),
                    if p.ranges_overlap { ", ranges overlap" } else { "" }
                )
            })
            .collect();
        out.push(if changed.is_empty() {
            format!("{s} vs {BASE}: no result of {} changes side.", pairs.len())
        } else {
            format!("{s} vs {BASE}: {} of {} results change side: {}.", changed.len(), pairs.len(), changed.join(", "))
        });
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spread(v: &[f64]) -> Spread {
        Spread::of(&v.iter().map(|x| Some(*x)).collect::<Vec<_>>())
    }

    fn row(app: &str, cfs: f64, ule: &[f64], kernel: &[f64]) -> AppRow {
        AppRow {
            app: app.into(),
            beside: None,
            category: "compute".into(),
            metric: "mb_per_s".into(),
            unit: "MB/s".into(),
            higher_is_better: true,
            values: BTreeMap::from([("cfs".to_string(), spread(&[cfs]))]),
            migrations_per_s: BTreeMap::new(),
            switches_per_s: BTreeMap::new(),
            share_pct: BTreeMap::new(),
            relative_pct: BTreeMap::from([("ule".to_string(), spread(ule)), ("kernel".to_string(), spread(kernel))]),
            counters_per_s: BTreeMap::new(),
        }
    }

    fn apps(rows: Vec<AppRow>) -> Apps {
        Apps { schedulers: vec!["kernel".into(), "cfs".into(), "ule".into()], rows, figure: None, emulated: true, realtime: false }
    }

    #[test]
    fn a_result_changes_when_its_median_crosses_five_percent() {
        let a = apps(vec![
            row("pigz", 4.0, &[0.5, 1.0, 2.0], &[0.0]),
            row("hackbench", 100.0, &[-34.0, -33.0, -32.0], &[120.0]),
            row("povray", 1.0, &[-6.0, -5.5, 2.0], &[0.0]),
            row("xz", 1.0, &[0.0], &[0.0]),
        ]);
        let b = apps(vec![
            row("pigz", 8.0, &[0.0, 1.0, 1.5], &[0.0]),
            row("hackbench", 150.0, &[-3.0, -2.0, 1.0], &[130.0]),
            row("povray", 1.0, &[-5.0, -4.0, 0.0], &[0.0]),
            row("redis", 1.0, &[0.0], &[0.0]),
        ]);
        let c = compare(&a, "icount".into(), &b, "realtime".into());
        assert_eq!(c.rows.len(), 3);
        assert_eq!(c.only_in_one, ["xz", "redis"]);
        let ule = |app: &str| c.rows.iter().find(|r| r.app == app).unwrap().pairs[0].clone();
        assert_eq!(c.rows[0].pairs[0].scheduler, "ule", "the paper's pair first");
        assert!(!ule("pigz").changes);
        assert!(ule("hackbench").changes && !ule("hackbench").ranges_overlap);
        assert!(ule("povray").changes && ule("povray").ranges_overlap);
        let md = markdown(&c);
        assert!(md.contains("| pigz | 4.000 MB/s | 2.00x | ule |"), "{md}");
        assert!(md.contains("**behind → within 5 %**"), "{md}");
        let p = paragraph(&c);
        assert!(
            p.starts_with("ule vs cfs: 2 of 3 results change side: hackbench (-33.0 → -2.0 %), povray (-5.5 → -4.0 %, ranges overlap)."),
            "{p}"
        );
        assert!(p.ends_with("kernel vs cfs: no result of 3 changes side."), "{p}");
    }

    #[test]
    fn a_summary_without_applications_is_refused() {
        let dir = std::env::temp_dir().join(format!("apps-compare-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = format!("{:#}", load(&dir).unwrap_err());
        assert!(e.contains("summary.json"), "{e}");
        std::fs::write(
            dir.join("summary.json"),
            r#"{"format_version":1,"complete":true,"failed":[],"problems":[],"figure6":null,"starvation":[]}"#,
        )
        .unwrap();
        let e = format!("{:#}", load(&dir).unwrap_err());
        assert!(e.contains("no application results"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
