// SPDX-License-Identifier: GPL-2.0-only
//! Figure-6-style plots: threads per core over time, one panel per run.
//!
//! Each core is a horizontal band across time, coloured by its thread count:
//! counts below the threshold (by default one less than the fair share) in
//! blues, the fair share yellow, the rest in colours that darken with the
//! excess. Time counts from the release; a run with one is drawn twice, the
//! release zoomed beside the whole run on its own axis. A dashed line marks
//! the release, solid lines the NUMA node boundaries. The comparison figure
//! adds the imbalance (max - min threads per core) and the per-node totals of
//! every run (the window all runs cover, and the whole runs), ULE's threads
//! off the pinned core per balancer pass, and migrations by cause.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::counters::SchedCounters;
use crate::run::Run;

pub(crate) const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const WIDTH: u32 = 1600;
const TITLE_H: u32 = 50;
const LEGEND_H: u32 = 56;
const LINE_PANEL_H: u32 = 300;

/// A range of thread counts and how it is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    pub lo: u32,
    pub hi: u32,
    pub color: RGBColor,
    pub label: String,
}

fn label(lo: u32, hi: u32) -> String {
    match (lo, hi) {
        (l, h) if l == h => l.to_string(),
        (l, u32::MAX) => format!("{l}+"),
        (l, h) => format!("{l}-{h}"),
    }
}

/// The colour scale: light to dark blues below `threshold`, yellow at the
/// fair share, then orange to dark purple as the excess grows. Blue against
/// yellow and orange, and lightness rising in each half, stay apart for
/// readers with any common colour-vision deficiency (ColorBrewer Blues and
/// the Okabe-Ito colours).
pub fn bins(threshold: u32, fair: u32) -> Vec<Bin> {
    let mut v = vec![Bin { lo: 0, hi: 0, color: RGBColor(247, 247, 247), label: "0".into() }];
    let blues = [RGBColor(198, 219, 239), RGBColor(107, 174, 214), RGBColor(33, 113, 181)];
    // Split 1..threshold-1 into up to three steps.
    if threshold > 1 {
        let span = threshold - 1;
        let steps = span.min(3);
        let mut lo = 1;
        for k in 0..steps {
            let hi = if k + 1 == steps { threshold - 1 } else { lo + span / steps - 1 };
            v.push(Bin { lo, hi, color: blues[(3 - steps + k) as usize], label: label(lo, hi) });
            lo = hi + 1;
        }
    }
    // Saturating: a threshold near u32::MAX (--threshold) must not wrap.
    let fair = fair.max(threshold);
    let hot = [
        (fair, RGBColor(240, 228, 66)),
        (fair.saturating_add(2), RGBColor(230, 159, 0)),
        (fair.saturating_mul(2), RGBColor(213, 94, 0)),
        (fair.saturating_mul(8), RGBColor(150, 30, 60)),
        (u32::MAX, RGBColor(50, 0, 70)),
    ];
    let mut lo = threshold.max(1);
    for (hi, color) in hot {
        if hi < lo {
            continue;
        }
        v.push(Bin { lo, hi, color, label: label(lo, hi) });
        if hi == u32::MAX {
            break;
        }
        lo = hi + 1;
    }
    v
}

fn color_of(bins: &[Bin], n: u32) -> RGBColor {
    bins.iter().find(|b| n >= b.lo && n <= b.hi).map(|b| b.color).unwrap_or(RGBColor(0, 0, 0))
}

/// Line colours for runs in the comparison panels.
const RUN_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Pixels per core band: 14 up to ~115 CPUs, then thinner, so that a
/// 1024-CPU machine still fits a page (2 px per core).
fn row_px(run: &Run) -> u32 {
    (1600 / run.cpus.len().max(1) as u32).clamp(2, 14)
}

fn heat_panel_h(run: &Run) -> u32 {
    (70 + run.cpus.len() as u32 * row_px(run)).max(240)
}

/// Label every `step`-th core so labels stay at least 14 px apart: 1, 2, 4, 8, ...
pub fn label_step(row_px: u32) -> usize {
    let mut step = 1;
    while (step as u32) * row_px < 14 {
        step *= 2;
    }
    step
}

/// The default threshold: one less than the fair share of threads per core.
pub fn default_threshold(run: &Run) -> u32 {
    ((run.threads / run.cpus.len()) as u32).saturating_sub(1).max(1)
}

pub fn plot(runs: &[Run], out: &Path, threshold: Option<u32>, compare: bool) -> Result<()> {
    if runs.is_empty() {
        bail!("nothing to plot");
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    let mut height = TITLE_H + LEGEND_H + runs.iter().map(heat_panel_h).sum::<u32>();
    // The scheduler's counters (balancer passes), for runs that recorded them.
    let moves: Vec<(usize, SchedCounters)> = if compare {
        // A run whose counters cannot be read or placed (a run cut short before
        // it recorded its time 0) is left out of the moves panels, and said so.
        runs.iter()
            .enumerate()
            .filter_map(|(k, r)| match SchedCounters::load(&r.dir, r.meta.t0_monotonic_ns) {
                Ok(c) => c.map(|c| (k, c)),
                Err(e) => {
                    eprintln!("analysis: warning: {} left out of the moves panels: {e:#}", r.scheduler);
                    None
                }
            })
            .collect()
    } else {
        vec![]
    };
    if compare {
        height += 2 * LINE_PANEL_H;
        if !moves.is_empty() {
            height += LINE_PANEL_H;
        }
    }
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => {
            let root = BitMapBackend::new(out, (WIDTH, height)).into_drawing_area();
            draw(&root, runs, threshold, compare, &moves)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
        }
        "svg" => {
            let root = SVGBackend::new(out, (WIDTH, height)).into_drawing_area();
            draw(&root, runs, threshold, compare, &moves)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
        }
        _ => bail!("{}: the output must end in .png or .svg", out.display()),
    }
    Ok(())
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

/// The release, zoomed: seconds after it, beside each run's whole length.
const ZOOM: (f64, f64) = (-0.5, 3.0);
/// The share of a row's width the zoomed view takes.
const ZOOM_SHARE: f64 = 0.3;
/// How much of the pinned phase the whole-run views show, seconds.
const BEFORE_RELEASE: f64 = 2.0;
/// Windows of the moves panels, seconds.
const MOVE_WINDOW: f64 = 10.0;

/// A run's clock shifted so the release is 0 (runs without one keep theirs).
fn since_release(run: &Run, t: f64) -> f64 {
    t - run.release.unwrap_or(0.0)
}

/// Where a run's recording ends, seconds after its release.
fn run_end(run: &Run) -> f64 {
    since_release(run, run.samples.last().unwrap().t)
}

/// The whole-run view of a run: from a little before the release to its end.
fn whole_range(run: &Run) -> (f64, f64) {
    let lo = match run.release {
        Some(r) => -r.min(BEFORE_RELEASE),
        None => 0.0,
    };
    (lo, run_end(run).max(lo + 1.0))
}

/// An area split into the zoomed view (left) and the whole view (right).
fn split_zoom<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let w = area.dim_in_pixel().0;
    area.split_horizontally((w as f64 * ZOOM_SHARE) as u32)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[Run],
    threshold: Option<u32>,
    compare: bool,
    moves: &[(usize, SchedCounters)],
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let first = &runs[0];
    let threshold = threshold.unwrap_or_else(|| default_threshold(first));
    let fair = (first.threads / first.cpus.len()) as u32;
    let bins = bins(threshold, fair);
    // Runs with a release get the zoomed view beside the whole run.
    let zoom = runs.iter().all(|r| r.release.is_some());

    let (title, rest) = root.split_vertically(TITLE_H);
    let what = match first.pin_secs {
        Some(p) => format!("{} spinning threads pinned on core 0 for {p} s, then released", first.threads),
        None => format!("{}: {} threads", first.experiment, first.threads),
    };
    let paper = if first.pin_secs.is_some() { " (Bouron et al., ATC 2018, figure 6)" } else { "" };
    title
        .draw(&Text::new(
            format!("Threads per core over time: {what}{paper}"),
            (WIDTH as i32 / 2, TITLE_H as i32 / 2),
            ("sans-serif", 26).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;

    let (legend, mut rest) = rest.split_vertically(LEGEND_H);
    draw_scale(&legend, &bins, &format!("threads on the core (blue: below {threshold}, yellow: the fair share):"), 90)?;

    for run in runs {
        let (panel, below) = rest.split_vertically(heat_panel_h(run));
        let title = format!("{}  |  kernel {}  |  {}", run.scheduler, run.kernel, run.topology());
        if zoom {
            let (left, right) = split_zoom(&panel);
            heat_panel_titled(root, &left, run, &bins, ZOOM, "the release, zoomed", 20, false)?;
            heat_panel_titled(root, &right, run, &bins, whole_range(run), &title, 22, true)?;
        } else {
            heat_panel_titled(root, &panel, run, &bins, whole_range(run), &title, 22, true)?;
        }
        rest = below;
    }
    if !compare {
        return Ok(());
    }
    // Line panels: the window every run covers (left) beside the whole runs.
    let common = runs.iter().map(run_end).fold(f64::INFINITY, f64::min).max(1.0);
    let whole = (
        runs.iter().map(|r| whole_range(r).0).fold(0.0, f64::min),
        runs.iter().map(run_end).fold(1.0, f64::max),
    );
    let imbalance = |_: &Run, s: &crate::run::Sample| vec![(s.counts.iter().max().unwrap() - s.counts.iter().min().unwrap()) as f64];
    let per_node = |r: &Run, s: &crate::run::Sample| r.node_totals(s).into_iter().map(|n| n as f64).collect::<Vec<_>>();
    let (imb, below) = rest.split_vertically(LINE_PANEL_H);
    let (nodes, below) = below.split_vertically(LINE_PANEL_H);
    if zoom {
        let (l, r) = split_zoom(&imb);
        line_panel(&l, runs, (-0.5, common), &format!("Imbalance, the first {common:.0} s"), "threads", imbalance)?;
        line_panel(&r, runs, whole, "Imbalance: max - min threads per core, whole runs", "threads", imbalance)?;
        let (l, r) = split_zoom(&nodes);
        line_panel(&l, runs, (-0.5, common), &format!("Threads per node, the first {common:.0} s"), "threads", per_node)?;
        line_panel(&r, runs, whole, "Threads per NUMA node (solid: node 0, dashed: others), whole runs", "threads", per_node)?;
    } else {
        line_panel(&imb, runs, whole, "Imbalance: max - min threads per core", "threads", imbalance)?;
        line_panel(&nodes, runs, whole, "Threads per NUMA node (solid: node 0, dashed: others)", "threads", per_node)?;
    }
    if !moves.is_empty() {
        let (l, r) = split_zoom(&below);
        leaving_per_pass_panel(&l, runs, moves, whole)?;
        causes_panel(&r, runs, whole)?;
    }
    Ok(())
}

/// The colour scale in one row: `caption`, then a box and a label per bin.
fn draw_scale<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bins: &[Bin], caption: &str, x0: i32) -> Result<()> {
    let font = ("sans-serif", 18).into_font();
    let h = LEGEND_H as i32;
    area.draw(&Text::new(caption.to_string(), (x0, h / 2), font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
        .map_err(err)?;
    let mut x = x0 + 10 + 9 * caption.len() as i32;
    for b in bins {
        area.draw(&Rectangle::new([(x, 16), (x + 26, 40)], b.color.filled())).map_err(err)?;
        area.draw(&Rectangle::new([(x, 16), (x + 26, 40)], BLACK.stroke_width(1))).map_err(err)?;
        area.draw(&Text::new(b.label.clone(), (x + 32, h / 2), font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
            .map_err(err)?;
        x += 44 + 11 * b.label.len() as i32;
    }
    Ok(())
}

/// The pass counter of a balancer that moves one thread per pass: ULE's.
const PASS_COUNTER: &str = "ule_bal_pass";

/// Threads the balancer took off the pinned core per balancer pass, in
/// MOVE_WINDOW windows: (window end after the release, threads per pass).
/// Runs without move causes count every move off the pinned core.
pub fn leaving_per_pass(run: &Run, c: &SchedCounters) -> Vec<(f64, f64)> {
    let Some(col) = c.names.iter().position(|n| n == PASS_COUNTER) else { return vec![] };
    let (Some(migrations), rundata::Workload::Spin(o)) = (&run.migrations, &run.meta.workload) else { return vec![] };
    let mut out = Vec::new();
    let mut start = match c.samples.first() {
        Some(s) => s,
        None => return out,
    };
    for s in &c.samples[1..] {
        if s.0 - start.0 < MOVE_WINDOW && s.0 < c.samples.last().unwrap().0 {
            continue;
        }
        let passes = s.1[col].saturating_sub(start.1[col]);
        if passes > 0 {
            let left = migrations
                .iter()
                .filter(|m| m.t > start.0 && m.t <= s.0 && m.from == o.pin_cpu)
                .filter(|m| m.cause.is_none_or(|c| c == rundata::MoveCause::Balance))
                .count();
            out.push((since_release(run, s.0), left as f64 / passes as f64));
        }
        start = s;
    }
    out
}

fn leaving_per_pass_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[Run],
    moves: &[(usize, SchedCounters)],
    x: (f64, f64),
) -> Result<()> {
    let series: Vec<(usize, Vec<(f64, f64)>)> =
        moves.iter().map(|(k, c)| (*k, leaving_per_pass(&runs[*k], c))).filter(|(_, v)| !v.is_empty()).collect();
    let y_max = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(2.0, f64::max) * 1.1;
    let title = format!("Threads leaving core 0 per balancer pass ({MOVE_WINDOW:.0} s windows)");
    let mut chart = time_chart(area, (&title, 18), 20, x, y_max, "threads/pass")?;
    if series.is_empty() {
        let (px, py) = chart.backend_coord(&(x.0 + (x.1 - x.0) / 2.0, y_max / 2.0));
        area.draw(&Text::new("no run with ULE's balancer", (px, py), ("sans-serif", 17).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center))))
            .map_err(err)?;
        return Ok(());
    }
    for (k, pts) in series {
        let color = RUN_COLORS[k % RUN_COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied().filter(|p| p.0 <= x.1), color.stroke_width(2)))
            .map_err(err)?
            .label(runs[k].scheduler.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Colours of the move causes, in MoveCause::ALL's order (Okabe-Ito).
const CAUSE_COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
];

/// Migrations of one run and cause per second, in MOVE_WINDOW windows after the release.
pub fn cause_rate(run: &Run, cause: Option<rundata::MoveCause>) -> Vec<(f64, f64)> {
    let Some(m) = &run.migrations else { return vec![] };
    let (lo, hi) = whole_range(run);
    let n = ((hi - lo) / MOVE_WINDOW).ceil().max(1.0) as usize;
    let mut counts = vec![0u64; n];
    for m in m.iter().filter(|m| m.cause == cause) {
        let t = since_release(run, m.t);
        if t >= lo && t < hi {
            counts[(((t - lo) / MOVE_WINDOW) as usize).min(n - 1)] += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let (a, b) = (lo + i as f64 * MOVE_WINDOW, (lo + (i + 1) as f64 * MOVE_WINDOW).min(hi));
            (b, c as f64 / (b - a).max(1e-3))
        })
        .collect()
}

/// Every run's migrations by cause over time: a colour per cause, a dash
/// pattern per run; log scale, a window without moves at the floor.
fn causes_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, runs: &[Run], x: (f64, f64)) -> Result<()> {
    use rundata::MoveCause;
    const FLOOR: f64 = 0.01;
    let mut lines = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        let causes: Vec<Option<MoveCause>> = match &run.migrations {
            Some(m) if m.iter().any(|m| m.cause.is_some()) => {
                MoveCause::ALL.into_iter().filter(|c| m.iter().any(|m| m.cause == Some(*c))).map(Some).collect()
            }
            Some(_) => vec![None],
            None => vec![],
        };
        for c in causes {
            lines.push((k, c, cause_rate(run, c)));
        }
    }
    let y_max = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1)).fold(10.0, f64::max) * 1.5;
    let title = format!("Migrations per second by cause ({MOVE_WINDOW:.0} s windows; log scale, floor: none)");
    let mut chart = frame(area, &title, 18, 110).build_cartesian_2d(x.0..x.1, (FLOOR..y_max).log_scale()).map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the release")
        .y_desc("threads/s")
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (k, cause, pts) in lines {
        let color = match cause {
            Some(c) => CAUSE_COLORS[MoveCause::ALL.iter().position(|x| *x == c).unwrap_or(7)],
            None => CAUSE_COLORS[7],
        };
        let what = match cause {
            Some(MoveCause::NotAttributed) | None => "not attributed",
            Some(c) => c.describe(),
        };
        let label = format!("{}: {what}", runs[k].scheduler);
        let pts: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.0 <= x.1).map(|(t, v)| (t, v.max(FLOOR))).collect();
        let style = color.stroke_width(2);
        let dash = [(0, 0), (10, 5), (3, 4)][k % 3];
        let series = if dash.0 == 0 {
            chart.draw_series(LineSeries::new(pts, style)).map_err(err)?
        } else {
            chart.draw_series(DashedLineSeries::new(pts, dash.0, dash.1, style)).map_err(err)?
        };
        series.label(label).legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// One run's cores over time, `x` in seconds since its release; the core
/// and node labels only where `labels` (the zoomed view shares them).
#[allow(clippy::too_many_arguments)]
fn heat_panel_titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    run: &Run,
    bins: &[Bin],
    x: (f64, f64),
    title: &str,
    title_size: u32,
    nodes: bool,
) -> Result<()> {
    let n = run.cpus.len();
    let mut chart = frame(area, title, title_size, if nodes { 110 } else { 20 })
        .build_cartesian_2d(x.0..x.1, -0.5f64..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_x_mesh()
        .y_labels(0)
        .x_desc(if run.release.is_some() { "seconds since the release" } else { "time (s)" })
        .y_desc("core")
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;

    // Rows: node by node, LLC by LLC (display_order), each core a band of
    // runs of equal counts drawn as one rectangle, clipped to the view.
    let rows = run.display_order();
    let clip = |t: f64| since_release(run, t).clamp(x.0, x.1);
    let mut rects = Vec::new();
    for (r, &i) in rows.iter().enumerate() {
        let y = r as f64;
        let mut start = run.samples[0].t;
        let mut cur = run.samples[0].counts[i];
        let mut push = |a: f64, b: f64, c: u32| {
            let (a, b) = (clip(a), clip(b));
            if b > a {
                rects.push(Rectangle::new([(a, y - 0.42), (b, y + 0.42)], color_of(bins, c).filled()));
            }
        };
        for w in run.samples.windows(2) {
            let next = w[1].counts[i];
            if next != cur {
                push(start, w[1].t, cur);
                start = w[1].t;
                cur = next;
            }
        }
        push(start, run.samples.last().unwrap().t, cur);
    }
    chart.draw_series(rects).map_err(err)?;

    // Core numbers on the left, thinned so they never overlap.
    let step = label_step(row_px(run));
    let label_font = ("sans-serif", 15).into_font();
    // The last core too, when it is not too close to the last labelled one.
    for r in (0..n).filter(|r| r % step == 0 || (*r == n - 1 && r % step >= step / 2)) {
        let (px, py) = chart.backend_coord(&(x.0, r as f64));
        root.draw(&Text::new(
            run.cpus[rows[r]].to_string(),
            (px - 8, py),
            label_font.color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
    }
    // LLC boundaries thin and grey, node boundaries thick and black; node
    // names on the right.
    let grey = RGBColor(120, 120, 120);
    for r in 1..n {
        let (a, b) = (rows[r - 1], rows[r]);
        let y = r as f64 - 0.5;
        if run.node_of[a] != run.node_of[b] {
            chart.draw_series(LineSeries::new([(x.0, y), (x.1, y)], BLACK.stroke_width(2))).map_err(err)?;
        } else if run.llc_of.as_ref().is_some_and(|l| l[a] != l[b]) {
            chart.draw_series(LineSeries::new([(x.0, y), (x.1, y)], grey.stroke_width(1))).map_err(err)?;
        }
    }
    if nodes {
        for node in 0..run.nr_nodes {
            let members: Vec<usize> = (0..n).filter(|&r| run.node_of[rows[r]] == node).collect();
            let (Some(&lo), Some(&hi)) = (members.first(), members.last()) else { continue };
            let (px, py) = chart.backend_coord(&(x.1, (lo + hi) as f64 / 2.0));
            root.draw(&Text::new(
                format!("node {}", run.node_ids[node]),
                (px + 12, py),
                ("sans-serif", 17).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
    }
    if run.release.is_some() && x.0 < 0.0 {
        chart
            .draw_series(DashedLineSeries::new([(0.0, -0.5), (0.0, n as f64 - 0.5)], 8, 6, BLACK.stroke_width(2)))
            .map_err(err)?;
    }
    let end = run_end(run);
    if end < x.1 - (x.1 - x.0) * 0.02 {
        // At the top edge, clear of the node boundary drawn across the middle.
        let (px, py) = chart.backend_coord(&(end, n as f64 - 0.5));
        root.draw(&Text::new(
            "run ends",
            (px + 8, py + 2),
            ("sans-serif", 16).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Lines over time, one colour per run (solid: a run's first value, dashed: the others), x in seconds since the release.
fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[Run],
    x: (f64, f64),
    title: &str,
    y_desc: &str,
    values: impl Fn(&Run, &crate::run::Sample) -> Vec<f64>,
) -> Result<()> {
    let y_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().flat_map(|s| values(r, s)))
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = time_chart(area, (title, 20), 20, x, y_max, y_desc)?;
    for (k, run) in runs.iter().enumerate() {
        let color = RUN_COLORS[k % RUN_COLORS.len()];
        let series: Vec<Vec<(f64, f64)>> = {
            let width = values(run, &run.samples[0]).len();
            let inside: Vec<&crate::run::Sample> =
                run.samples.iter().filter(|s| (x.0..=x.1).contains(&since_release(run, s.t))).collect();
            (0..width)
                .map(|j| inside.iter().map(|s| (since_release(run, s.t), values(run, s)[j])).collect())
                .collect()
        };
        for (j, pts) in series.into_iter().enumerate() {
            if j == 0 {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?
                    .label(run.scheduler.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
            } else {
                chart.draw_series(DashedLineSeries::new(pts, 7, 5, color.stroke_width(2))).map_err(err)?;
            }
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// The figures' chart frame: caption, margins and label areas.
fn frame<'a, 'b, DB: DrawingBackend>(area: &'a DrawingArea<DB, Shift>, caption: &str, size: u32, margin_right: u32) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    b.caption(caption, ("sans-serif", size))
        .margin_left(20)
        .margin_right(margin_right)
        .margin_top(8)
        .margin_bottom(8)
        .x_label_area_size(42)
        .y_label_area_size(70);
    b
}

/// A chart over time, x.0..x.1 seconds (since the release) by 0..y_max, with the figures' mesh.
pub(crate) fn time_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (caption, size): (&str, u32),
    margin_right: u32,
    x: (f64, f64),
    y_max: f64,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>> {
    let mut chart = frame(area, caption, size, margin_right)
        .build_cartesian_2d(x.0..x.1, 0f64..y_max)
        .map_err(err)?;
    let decimals = if y_max < 10.0 { 1 } else { 0 };
    chart
        .configure_mesh()
        .x_desc(if x.0 < 0.0 { "seconds since the release" } else { "time (s)" })
        .x_labels(7)
        .y_desc(y_desc)
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The series' legend box, where it hides the least.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 17))
        .position(position)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_threshold_does_not_wrap() {
        // --threshold near u32::MAX: the colour scale must stay ordered and
        // cover every count, not wrap around to small numbers.
        for t in [u32::MAX, u32::MAX - 1, u32::MAX / 2, u32::MAX / 8 + 1] {
            let b = bins(t, 16);
            for w in b.windows(2) {
                assert!(w[0].hi < w[1].lo, "threshold {t}: {w:?}");
            }
            assert_eq!(b.last().unwrap().hi, u32::MAX, "threshold {t}");
            assert_eq!(b[0].lo, 0);
        }
    }

    #[test]
    fn scale_for_the_paper_experiment() {
        let b = bins(15, 16);
        let labels: Vec<&str> = b.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["0", "1-4", "5-8", "9-14", "15-16", "17-18", "19-32", "33-128", "129+"]);
        // Every count has exactly one bin.
        for n in 0..1000 {
            assert_eq!(b.iter().filter(|x| n >= x.lo && n <= x.hi).count(), 1, "{n}");
        }
    }

    #[test]
    fn labels_thin_out_on_big_machines() {
        assert_eq!(label_step(14), 1);
        assert_eq!(label_step(7), 2);
        assert_eq!(label_step(2), 8);
    }

    #[test]
    fn scale_for_few_threads() {
        let b = bins(1, 2);
        for n in 0..100 {
            assert_eq!(b.iter().filter(|x| n >= x.lo && n <= x.hi).count(), 1, "{n}");
        }
    }
}


/// The ablation's grid: one heat map per run, `cols` to a row, titled by
/// `titles`, on one time axis (the runs share the pinned phase, so the
/// release falls at the same time in every panel) and one colour scale.
pub fn grid(runs: &[&Run], titles: &[String], cols: usize, out: &Path) -> Result<()> {
    if runs.is_empty() || runs.len() != titles.len() || cols == 0 {
        bail!("nothing to draw in the grid");
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    let rows = runs.len().div_ceil(cols);
    let cell_h = runs.iter().map(|r| heat_panel_h(r)).max().unwrap_or(240);
    let (w, h) = (cols as u32 * 700, TITLE_H + LEGEND_H + rows as u32 * cell_h);
    let draw_grid = |root: DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(err)?;
        let first = runs[0];
        let threshold = default_threshold(first);
        let fair = (first.threads / first.cpus.len()) as u32;
        let bins = bins(threshold, fair);
        // One axis for all: from a little before the release to the longest run's end.
        let x = (
            runs.iter().map(|r| whole_range(r).0).fold(0.0, f64::min),
            runs.iter().map(|r| run_end(r)).fold(1.0, f64::max),
        );
        let (title, rest) = root.split_vertically(TITLE_H);
        title
            .draw(&Text::new(
                format!(
                    "Figure 6 under every combination of run queue - placement - balancer ({} threads, {})",
                    first.threads,
                    first.topology()
                ),
                (w as i32 / 2, TITLE_H as i32 / 2),
                ("sans-serif", 26).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(err)?;
        let (legend, rest) = rest.split_vertically(LEGEND_H);
        draw_scale(&legend, &bins, &format!("threads on the core (blue: below {threshold}):"), 90)?;
        let cells = rest.split_evenly((rows, cols));
        for (k, (run, t)) in runs.iter().zip(titles).enumerate() {
            heat_panel_titled(&root, &cells[k], run, &bins, x, t, 20, true)?;
        }
        Ok(())
    };
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => {
            let root = BitMapBackend::new(out, (w, h)).into_drawing_area();
            draw_grid(root.clone())?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
        }
        _ => bail!("{}: the grid is drawn as .png", out.display()),
    }
    Ok(())
}
