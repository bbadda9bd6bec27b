// SPDX-License-Identifier: GPL-2.0-only
//! The application suite's report (`study run --apps`), in the paper's
//! style: for each application, ULE's performance relative to CFS in %
//! (positive: ULE better), with the range over rounds, and the kernel's
//! scheduler and any peer beside it as markers; a table of the raw
//! metrics; and a generated paragraph: how many applications differ by
//! more than 5 %, the largest differences, and for each of those the
//! measures that differ most between the two (migrations, context
//! switches, the scheduler's share, its own counters per second).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rundata::bench::Bench;
use serde::{Deserialize, Serialize};

use crate::plot::{err, FONT};
use crate::report::Spread;

/// The pair the figure compares, as the paper does: ULE against CFS.
pub const BASE: &str = "cfs";
pub const VERSUS: &str = "ule";
/// A difference the paragraph counts, %.
pub const NOTABLE_PCT: f64 = 5.0;
/// Counters every callback moves (they follow the context switches, which
/// the paragraph gives already): left out of its "busiest policy counters".
const GENERIC_COUNTERS: [&str; 3] = ["enqueue", "dispatch", "dsq_move"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRow {
    /// The application, or "app (program)" for a program's metric measured
    /// beside it (App::companion).
    pub app: String,
    /// That program, for such a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<String>,
    pub category: String,
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Scheduler -> the primary metric over its rounds.
    pub values: BTreeMap<String, Spread>,
    /// Scheduler -> migrations per second, context switches per second and
    /// the scheduler's CPU share (%), over its rounds.
    pub migrations_per_s: BTreeMap<String, Spread>,
    pub switches_per_s: BTreeMap<String, Spread>,
    pub share_pct: BTreeMap<String, Spread>,
    /// Scheduler (not BASE) -> its performance relative to BASE in %,
    /// positive when better, round against round.
    pub relative_pct: BTreeMap<String, Spread>,
    /// Scheduler -> its own counters per second (medians), the busiest first.
    pub counters_per_s: BTreeMap<String, Vec<(String, f64)>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Apps {
    pub schedulers: Vec<String>,
    pub rows: Vec<AppRow>,
    /// apps.png, relative to the report's directory.
    pub figure: Option<String>,
    /// Whether the runs were emulated (TCG): no caches, no memory latency.
    pub emulated: bool,
    /// ... under --realtime (MTTCG): the vCPUs ran in parallel on the host's
    /// cores, not on icount's one shared instruction budget.
    #[serde(default)]
    pub realtime: bool,
}

/// A run directory's scheduler and round (apps/cfs.2: cfs, 2).
fn scheduler_round(dir: &Path) -> (String, u32) {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    match name.rsplit_once('.') {
        Some((s, r)) if !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()) => (s.to_string(), r.parse().unwrap_or(1)),
        _ => (name, 1),
    }
}

pub fn is_app_dir(dir: &Path) -> bool {
    !rundata::bench::app_files(dir).is_empty()
}

/// (scheduler, round, the application's run)
type AppRun = (String, u32, Bench);

/// SCHED's performance relative to BASE's in %, positive when better.
fn relative(v: f64, base: f64, higher_is_better: bool) -> Option<f64> {
    if v <= 0.0 || base <= 0.0 {
        return None;
    }
    Some(if higher_is_better { (v / base - 1.0) * 100.0 } else { (base / v - 1.0) * 100.0 })
}

/// Reads every application run, draws apps.png into OUT; `order` is the
/// study's scheduler order (others after it).
pub fn build(
    dirs: &[PathBuf],
    order: &[String],
    emulated: bool,
    realtime: bool,
    out: &Path,
    problems: &mut Vec<String>,
) -> Result<Option<Apps>> {
    let mut runs: Vec<AppRun> = Vec::new();
    for d in dirs {
        let (sched, round) = scheduler_round(d);
        for path in rundata::bench::app_files(d) {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            match Bench::parse(&text) {
                Ok(b) => runs.push((sched.clone(), round, b)),
                Err(e) => problems.push(format!("{}: unreadable: {e}", path.display())),
            }
        }
    }
    if runs.is_empty() {
        return Ok(None);
    }
    let mut schedulers: Vec<String> = order.iter().filter(|s| runs.iter().any(|(r, _, _)| r == *s)).cloned().collect();
    for (s, _, _) in &runs {
        if !schedulers.contains(s) {
            schedulers.push(s.clone());
        }
    }
    let mut rows = Vec::new();
    // One row per application, and one more for a companion program's
    // metric (fibo beside sysbench), labelled "app (program)".
    let measures = rundata::apps::APPS.iter().flat_map(|app| {
        let primary = (app.name.to_string(), None, app.metric, app.unit, app.higher_is_better);
        let companion = app.companion.map(|c| {
            (format!("{} ({})", app.name, c.program), Some(c.program.to_string()), c.metric, c.unit, c.higher_is_better)
        });
        std::iter::once((app, primary)).chain(companion.map(|c| (app, c)))
    });
    for (app, (label, beside, metric, unit, higher_is_better)) in measures {
        let of_app: Vec<&AppRun> = runs.iter().filter(|(_, _, b)| b.kind == app.name).collect();
        if of_app.is_empty() {
            continue;
        }
        let per_sched = |f: &dyn Fn(&Bench) -> Option<f64>| -> BTreeMap<String, Spread> {
            schedulers
                .iter()
                .filter_map(|s| {
                    let vals: Vec<Option<f64>> = of_app.iter().filter(|(r, _, _)| r == s).map(|(_, _, b)| f(b)).collect();
                    (!vals.is_empty()).then(|| (s.clone(), Spread::of(&vals)))
                })
                .collect()
        };
        let primary = |b: &Bench| b.metric(metric).map(|m| m.value);
        let per_s = |n: Option<u64>, b: &Bench| n.map(|n| n as f64 / b.elapsed_s.max(1e-9));
        let mut relative_pct = BTreeMap::new();
        for s in schedulers.iter().filter(|s| *s != BASE) {
            let vals: Vec<Option<f64>> = of_app
                .iter()
                .filter(|(r, _, _)| r == s)
                .map(|(_, round, b)| {
                    let base = of_app.iter().find(|(r, rr, _)| r == BASE && rr == round).and_then(|(_, _, bb)| primary(bb));
                    relative(primary(b)?, base?, higher_is_better)
                })
                .collect();
            if vals.iter().any(Option::is_some) {
                relative_pct.insert(s.clone(), Spread::of(&vals));
            }
        }
        let mut counters_per_s = BTreeMap::new();
        for s in &schedulers {
            let mine: Vec<&Bench> = of_app.iter().filter(|(r, _, _)| r == s).map(|(_, _, b)| b).collect();
            let mut names: Vec<&String> = mine.iter().flat_map(|b| b.sched_counters.keys()).collect();
            names.sort();
            names.dedup();
            let mut rates: Vec<(String, f64)> = names
                .into_iter()
                .filter_map(|n| {
                    let vals: Vec<Option<f64>> =
                        mine.iter().map(|b| b.sched_counters.get(n).map(|v| *v as f64 / b.elapsed_s.max(1e-9))).collect();
                    Spread::of(&vals).median.map(|m| (n.clone(), m))
                })
                .collect();
            rates.sort_by(|a, b| b.1.total_cmp(&a.1));
            if !rates.is_empty() {
                counters_per_s.insert(s.clone(), rates);
            }
        }
        rows.push(AppRow {
            app: label,
            beside,
            category: app.category.name().into(),
            metric: metric.into(),
            unit: unit.into(),
            higher_is_better,
            values: per_sched(&primary),
            migrations_per_s: per_sched(&|b| per_s(b.migrations, b)),
            switches_per_s: per_sched(&|b| per_s(b.context_switches, b)),
            share_pct: per_sched(&|b| b.sched_share_pct),
            relative_pct,
            counters_per_s,
        });
    }
    let mut apps = Apps { schedulers, rows, figure: None, emulated, realtime };
    let has_pair = apps.rows.iter().any(|r| r.relative_pct.contains_key(VERSUS));
    if has_pair {
        let path = out.join("apps.png");
        match plot(&apps, &path) {
            Ok(()) => apps.figure = Some("apps.png".into()),
            Err(e) => problems.push(format!("apps.png: {e:#}")),
        }
    } else {
        problems.push(format!("the applications ran without both {BASE} and {VERSUS}: no figure"));
    }
    Ok(Some(apps))
}

/// A value with as many decimals as it needs.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(s: Option<&Spread>) -> String {
    match s {
        Some(Spread { median: Some(m), min: Some(lo), max: Some(hi), n, .. }) if *n > 1 => {
            format!("{} ({}-{})", num(*m), num(*lo), num(*hi))
        }
        Some(Spread { median: Some(m), .. }) => num(*m),
        _ => "-".into(),
    }
}

fn pct(s: Option<&Spread>) -> String {
    match s {
        Some(Spread { median: Some(m), min: Some(lo), max: Some(hi), n, .. }) if *n > 1 => {
            format!("{m:+.1} % ({lo:+.1} to {hi:+.1})")
        }
        Some(Spread { median: Some(m), .. }) => format!("{m:+.1} %"),
        _ => "-".into(),
    }
}

/// The emulator's caveat, for the figure and the summary.
pub const EMULATED_CAVEAT: &str = "Emulated machine (QEMU TCG): caches and memory latency are not modelled, so a migration \
                                   costs no cache misses and cache-affinity effects (a reason ULE wins some of the paper's \
                                   cases) cannot show. And the emulator runs the vCPUs one at a time: under icount all busy \
                                   vCPUs share about 1 G guest instructions per guest second, so a parallel program's \
                                   throughput does not grow with the CPUs a scheduler gives it, and a CPU left idle costs \
                                   nothing (under --realtime, parallelism is bounded by the host's cores). What shows here is \
                                   what the policies cost in instructions and their wakeup and preemption chains, not their \
                                   placement's effect on throughput; a native run has neither caveat.";

/// summary.md's section.
pub fn markdown(a: &Apps) -> String {
    let mut s = String::from("\n## Applications\n\n");
    s += &format!(
        "Each application under every scheduler ({}), in rounds; the primary metric as median (min-max) over the rounds. \
         The paper's comparison is ULE against CFS: {VERSUS} relative to {BASE} in %, positive when {VERSUS} does better, \
         round against round.\n\n",
        a.schedulers.join(", ")
    );
    if a.emulated {
        s += &format!("**{EMULATED_CAVEAT}**\n\n");
    }
    if let Some(f) = &a.figure {
        s += &format!("![applications]({f})\n\n");
    }
    let others: Vec<&String> = a.schedulers.iter().filter(|x| *x != BASE).collect();
    s += "| application | metric |";
    for x in &a.schedulers {
        s += &format!(" {x} |");
    }
    for x in &others {
        s += &format!(" {x} vs {BASE} |");
    }
    s += "\n|---|---|";
    s += &"---|".repeat(a.schedulers.len() + others.len());
    s += "\n";
    for r in &a.rows {
        let dir = if r.higher_is_better { "↑" } else { "↓" };
        s += &format!("| {} ({}) | {} ({}) {dir} |", r.app, r.category, r.metric, r.unit);
        for x in &a.schedulers {
            s += &format!(" {} |", cell(r.values.get(x)));
        }
        for x in &others {
            s += &format!(" {} |", pct(r.relative_pct.get(*x)));
        }
        s += "\n";
    }
    s += "\nWhat the machine did meanwhile (medians): migrations/s, context switches/s, the scheduler's CPU share.\n\n";
    s += "| application |";
    for x in &a.schedulers {
        s += &format!(" {x} |");
    }
    s += "\n|---|";
    s += &"---|".repeat(a.schedulers.len());
    s += "\n";
    let med = |m: &BTreeMap<String, Spread>, x: &str| m.get(x).and_then(|s| s.median);
    // A program measured beside an application ran in the same runs: its
    // machine measures are the application's row, not a second one.
    for r in a.rows.iter().filter(|r| r.beside.is_none()) {
        s += &format!("| {} |", r.app);
        for x in &a.schedulers {
            let mig = med(&r.migrations_per_s, x).map(num).unwrap_or("-".into());
            let sw = med(&r.switches_per_s, x).map(num).unwrap_or("-".into());
            let share = med(&r.share_pct, x).map(|v| format!("{v:.2} %")).unwrap_or("-".into());
            s += &format!(" {mig} / {sw} / {share} |");
        }
        s += "\n";
    }
    s += &format!("\n{}\n", paragraph(a));
    s
}

/// The generated paragraph: the differences over NOTABLE_PCT between
/// VERSUS and BASE, the largest first, each with what differed most.
pub fn paragraph(a: &Apps) -> String {
    let mut diffs: Vec<(&AppRow, f64)> =
        a.rows.iter().filter_map(|r| r.relative_pct.get(VERSUS).and_then(|s| s.median).map(|m| (r, m))).collect();
    if diffs.is_empty() {
        return format!("No application ran under both {BASE} and {VERSUS}.");
    }
    let n = diffs.len();
    diffs.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
    // A difference whose rounds disagree on its sign is not one.
    let crosses = |r: &AppRow| r.relative_pct.get(VERSUS).and_then(|x| Some(x.min? < 0.0 && x.max? > 0.0)).unwrap_or(false);
    let notable: Vec<&(&AppRow, f64)> = diffs.iter().filter(|(r, m)| m.abs() > NOTABLE_PCT && !crosses(r)).collect();
    let unsure = diffs.iter().filter(|(r, m)| m.abs() > NOTABLE_PCT && crosses(r)).count();
    let better = notable.iter().filter(|(_, m)| *m > 0.0).count();
    let rounds = diffs.iter().map(|(r, _)| r.relative_pct[VERSUS].n).min().unwrap_or(0);
    let beside: Vec<&str> = diffs.iter().filter_map(|(r, _)| r.beside.as_deref()).collect();
    let what = if beside.is_empty() {
        "applications".to_string()
    } else {
        format!("results ({} applications, and {} measured beside one)", n - beside.len(), beside.join(", "))
    };
    let mut s = format!(
        "{} of {n} {what} differ by more than {NOTABLE_PCT} % between {VERSUS} and {BASE} (medians, every round on the same side): {better} in {VERSUS}'s favour, {} in {BASE}'s.",
        notable.len(),
        notable.len() - better
    );
    if unsure > 0 {
        s += &format!(" {unsure} more differ by the median, but their rounds disagree on the sign.");
    }
    if rounds < 2 {
        s += " Some applications ran one round only: their differences are not checked against the rounds' spread (use --repeat 3).";
    }
    for (r, m) in notable.iter().take(4) {
        s += &format!("\n- **{}**: {VERSUS} {m:+.1} %", r.app);
        let mut why = Vec::new();
        let med = |m: &BTreeMap<String, Spread>, x: &str| m.get(x).and_then(|s| s.median);
        for (label, map) in [("migrations/s", &r.migrations_per_s), ("context switches/s", &r.switches_per_s)] {
            if let (Some(u), Some(c)) = (med(map, VERSUS), med(map, BASE)) {
                why.push(format!("{label} {VERSUS} {} vs {BASE} {}", num(u), num(c)));
            }
        }
        for x in [VERSUS, BASE] {
            if let Some(top) = r.counters_per_s.get(x) {
                let t: Vec<String> = top
                    .iter()
                    .filter(|(k, _)| !GENERIC_COUNTERS.contains(&k.as_str()))
                    .take(3)
                    .map(|(k, v)| format!("{k} {}/s", num(*v)))
                    .collect();
                if !t.is_empty() {
                    why.push(format!("{x}'s busiest policy counters: {}", t.join(", ")));
                }
            }
        }
        if !why.is_empty() {
            s += &format!(": {}", why.join("; "));
        }
        s += ".";
    }
    s
}

const WIDTH: u32 = 1600;
const HEIGHT: u32 = 720;

/// apps.png: one bar per application, VERSUS relative to BASE in % with
/// the rounds' range; other schedulers as markers.
/// Wide enough for every bar's label (about 120 pixels each).
fn width(a: &Apps) -> u32 {
    WIDTH.max(200 + 120 * a.rows.len() as u32)
}

pub fn plot(a: &Apps, out: &Path) -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    match out.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "png" => {
            let root = BitMapBackend::new(out, (width(a), HEIGHT)).into_drawing_area();
            draw(&root, a)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))
        }
        "svg" => {
            let root = SVGBackend::new(out, (width(a), HEIGHT)).into_drawing_area();
            draw(&root, a)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))
        }
        _ => bail!("{}: the output must end in .png or .svg", out.display()),
    }
}

/// Marker colours for the schedulers beside the bars (colour-blind safe: Okabe-Ito).
const MARKERS: [RGBColor; 5] =
    [RGBColor(0, 0, 0), RGBColor(230, 159, 0), RGBColor(0, 158, 115), RGBColor(204, 121, 167), RGBColor(86, 180, 233)];
const BAR: RGBColor = RGBColor(0, 114, 178);

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, a: &Apps) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let rows: Vec<&AppRow> = a.rows.iter().filter(|r| !r.relative_pct.is_empty()).collect();
    if rows.is_empty() {
        bail!("no application ran under {BASE} and another scheduler");
    }
    let markers: Vec<&String> = a.schedulers.iter().filter(|s| *s != BASE && *s != VERSUS).collect();
    let mut lo: f64 = -10.0;
    let mut hi: f64 = 10.0;
    for r in &rows {
        for s in r.relative_pct.values() {
            lo = lo.min(s.min.unwrap_or(0.0));
            hi = hi.max(s.max.unwrap_or(0.0));
        }
    }
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let caption = format!(
        "Applications: {VERSUS}'s performance relative to {BASE} (%, positive: {VERSUS} better; bars: median, whiskers: min-max over rounds){}",
        match (a.emulated, a.realtime) {
            (false, _) => "",
            (true, false) => "\nemulated (TCG, icount): no cache effects, and busy vCPUs share one instruction budget (parallel speed-up does not show)",
            (true, true) => "\nemulated (TCG, real time): no cache effects, and the vCPUs share the host's cores (rounds vary with the host's load)",
        }
    );
    let (title, body) = root.split_vertically(if a.emulated { 70 } else { 44 });
    for (i, line) in caption.lines().enumerate() {
        title
            .draw(&Text::new(
                line.to_string(),
                (width(a) as i32 / 2, 20 + 26 * i as i32),
                ("sans-serif", if i == 0 { 21 } else { 19 }).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(err)?;
    }
    let n = rows.len();
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, lo..hi)
        .map_err(err)?;
    // A program measured beside an application sits next to it: "+fibo".
    let names: Vec<String> = rows.iter().map(|r| r.beside.as_ref().map_or_else(|| r.app.clone(), |p| format!("+{p}"))).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < names.len() { names[i].clone() } else { String::new() }
        })
        .y_desc(format!("{VERSUS} vs {BASE} (%)"))
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (n as f64, 0.0)], BLACK.stroke_width(1))).map_err(err)?;
    for (i, r) in rows.iter().enumerate() {
        let x = i as f64;
        if let Some(s) = r.relative_pct.get(VERSUS) {
            if let Some(m) = s.median {
                chart.draw_series([Rectangle::new([(x + 0.2, 0.0), (x + 0.8, m)], BAR.mix(0.85).filled())]).map_err(err)?;
            }
            if let (Some(l), Some(h)) = (s.min, s.max) {
                chart
                    .draw_series([PathElement::new([(x + 0.5, l), (x + 0.5, h)], BLACK.stroke_width(2))])
                    .map_err(err)?;
                for y in [l, h] {
                    chart.draw_series([PathElement::new([(x + 0.42, y), (x + 0.58, y)], BLACK.stroke_width(2))]).map_err(err)?;
                }
            }
        }
        for (k, m) in markers.iter().enumerate() {
            if let Some(v) = r.relative_pct.get(*m).and_then(|s| s.median) {
                let c = MARKERS[k % MARKERS.len()];
                chart.draw_series([Circle::new((x + 0.5, v), 7, c.filled())]).map_err(err)?;
            }
        }
    }
    // The legend: the bar, then each marker.
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(err)?
        .label(format!("{VERSUS} vs {BASE}"))
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], BAR.filled()));
    for (k, m) in markers.iter().enumerate() {
        let c = MARKERS[k % MARKERS.len()];
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label(format!("{} vs {BASE}", if m.as_str() == "kernel" { "kernel (today's EEVDF)" } else { m.as_str() }))
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 17))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(kind: &str, value: f64, migrations: u64) -> Bench {
        let app = rundata::apps::by_name(kind).unwrap();
        Bench {
            format_version: rundata::bench::BENCH_FORMAT_VERSION,
            kind: kind.into(),
            tool: "loadgen 0.1.0".into(),
            command: None,
            topology: rundata::Topology { cpus: vec![0, 1], nodes: vec![vec![0, 1]], llcs: vec![vec![0, 1]] },
            kernel_release: "7.3".into(),
            scheduler: rundata::SchedulerInfo { name: "x".into(), sched_ext_state: "enabled".into(), switch_all: None },
            elapsed_s: 2.0,
            metrics: vec![rundata::bench::BenchMetric {
                name: app.metric.into(),
                unit: app.unit.into(),
                value,
                higher_is_better: app.higher_is_better,
            }],
            sched_share_pct: Some(1.0),
            sched_calls: None,
            sched_ns_per_call: None,
            context_switches: Some(100),
            sched_programs: vec![],
            migrations: Some(migrations),
            sched_counters: [("lb_attempt".to_string(), 40u64)].into_iter().collect(),
        }
    }

    fn write(dir: &Path, b: &Bench) {
        let d = dir.join(&b.kind);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("bench.json"), serde_json::to_string(b).unwrap()).unwrap();
    }

    #[test]
    fn ule_against_cfs_round_by_round_with_the_direction_of_each_metric() {
        let tmp = std::env::temp_dir().join(format!("apps-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        // Two rounds; pigz (MB/s, higher better), build (s, lower better).
        for (dir, pigz, build, mig) in
            [("cfs", 100.0, 10.0, 10), ("cfs.2", 100.0, 10.0, 10), ("ule", 120.0, 12.5, 50), ("ule.2", 110.0, 12.5, 50), ("kernel", 90.0, 9.0, 5)]
        {
            write(&tmp.join(dir), &bench("pigz", pigz, mig));
            write(&tmp.join(dir), &bench("build", build, mig));
        }
        let dirs: Vec<PathBuf> = ["kernel", "cfs", "ule", "cfs.2", "ule.2"].iter().map(|d| tmp.join(d)).collect();
        let mut problems = vec![];
        let a = build(&dirs, &["kernel".into(), "cfs".into(), "ule".into()], true, false, &tmp, &mut problems).unwrap().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(a.schedulers, ["kernel", "cfs", "ule"]);
        let pigz = a.rows.iter().find(|r| r.app == "pigz").unwrap();
        let ule = &pigz.relative_pct["ule"];
        assert_eq!((ule.min.unwrap().round(), ule.max.unwrap().round(), ule.n), (10.0, 20.0, 2));
        // A build that takes 12.5 s against 10 s is 20 % worse.
        let build_row = a.rows.iter().find(|r| r.app == "build").unwrap();
        assert_eq!(build_row.relative_pct["ule"].median.unwrap().round(), -20.0);
        // The kernel, round 1 only, as a marker.
        assert_eq!(pigz.relative_pct["kernel"].n, 1);
        assert_eq!(pigz.migrations_per_s["ule"].median, Some(25.0));
        assert_eq!(pigz.counters_per_s["cfs"][0], ("lb_attempt".to_string(), 20.0));
        assert_eq!(a.figure.as_deref(), Some("apps.png"));
        assert!(tmp.join("apps.png").is_file());
        let md = markdown(&a);
        assert!(md.contains("Emulated machine") && md.contains("+15.0 % (+10.0 to +20.0)"), "{md}");
        let p = paragraph(&a);
        assert!(p.starts_with("2 of 2 applications differ"), "{p}");
        assert!(p.contains("**build**: ule -20.0 %") && p.contains("migrations/s ule 25.0 vs cfs 5.00"), "{p}");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn a_program_beside_an_application_gets_its_own_row() {
        let tmp = std::env::temp_dir().join(format!("apps-test-beside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (dir, tps, fibo) in [("cfs", 20.0, 100.0), ("ule", 25.0, 90.0)] {
            let mut b = bench("sysbench-fibo", tps, 10);
            b.metrics.push(rundata::bench::BenchMetric {
                name: "fibo_per_s".into(),
                unit: "computations/s".into(),
                value: fibo,
                higher_is_better: true,
            });
            write(&tmp.join(dir), &b);
        }
        let dirs: Vec<PathBuf> = ["cfs", "ule"].iter().map(|d| tmp.join(d)).collect();
        let mut problems = vec![];
        let a = build(&dirs, &["cfs".into(), "ule".into()], true, false, &tmp, &mut problems).unwrap().unwrap();
        let names: Vec<&str> = a.rows.iter().map(|r| r.app.as_str()).collect();
        assert_eq!(names, ["sysbench-fibo", "sysbench-fibo (fibo)"]);
        assert_eq!(a.rows[0].relative_pct["ule"].median.unwrap().round(), 25.0);
        assert_eq!(a.rows[1].relative_pct["ule"].median.unwrap().round(), -10.0);
        assert_eq!(a.rows[1].unit, "computations/s");
        let p = paragraph(&a);
        assert!(p.starts_with("2 of 2 results (1 applications, and fibo measured beside one) differ"), "{p}");
        // The machine measures are the runs': one row for both results.
        let md = markdown(&a);
        let machine = md.split("What the machine did").nth(1).unwrap();
        assert_eq!(machine.matches("| sysbench-fibo").count(), 1, "{md}");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn a_zero_or_missing_value_gives_no_ratio() {
        assert_eq!(relative(0.0, 10.0, true), None);
        assert_eq!(relative(10.0, 0.0, false), None);
        assert_eq!(relative(5.0, 10.0, false), Some(100.0));
    }
}
