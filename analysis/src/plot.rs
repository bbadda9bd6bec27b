// SPDX-License-Identifier: GPL-2.0-only
//! Figure-6-style plots: threads per core over time, one panel per run.
//!
//! Each core is a horizontal band across time, coloured by its thread count:
//! counts below the threshold (by default one less than the fair share) in
//! shades of grey, the rest in colours that grow hotter with the excess. A
//! dashed line marks the release, solid lines the NUMA node boundaries. The
//! comparison figure adds the imbalance (max - min threads per core) and the
//! per-node totals of every run over the same time axis.

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

/// The colour scale: greys below `threshold`, colours from it on.
pub fn bins(threshold: u32, fair: u32) -> Vec<Bin> {
    let mut v = vec![Bin { lo: 0, hi: 0, color: RGBColor(238, 238, 238), label: "0".into() }];
    let greys = [RGBColor(200, 200, 200), RGBColor(150, 150, 150), RGBColor(95, 95, 95)];
    // Split 1..threshold-1 into up to three grey steps.
    if threshold > 1 {
        let span = threshold - 1;
        let steps = span.min(3);
        let mut lo = 1;
        for k in 0..steps {
            let hi = if k + 1 == steps { threshold - 1 } else { lo + span / steps - 1 };
            v.push(Bin { lo, hi, color: greys[(3 - steps + k) as usize], label: label(lo, hi) });
            lo = hi + 1;
        }
    }
    // Saturating: a threshold near u32::MAX (--threshold) must not wrap.
    let fair = fair.max(threshold);
    let hot = [
        (fair, RGBColor(44, 160, 44)),
        (fair.saturating_add(2), RGBColor(188, 189, 34)),
        (fair.saturating_mul(2), RGBColor(255, 127, 14)),
        (fair.saturating_mul(8), RGBColor(214, 39, 40)),
        (u32::MAX, RGBColor(110, 30, 130)),
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
    // The scheduler's moves over time, for runs that recorded its counters.
    let moves: Vec<(usize, Vec<(f64, f64)>)> = if compare {
        // A run whose counters cannot be read or placed (a run cut short before
        // it recorded its time 0) is left out of this panel, and said so.
        runs.iter()
            .enumerate()
            .filter_map(|(k, r)| match SchedCounters::load(&r.dir, r.meta.t0_monotonic_ns) {
                Ok(c) => c.map(|c| (k, moves_per_second(&c))),
                Err(e) => {
                    eprintln!("analysis: warning: {} left out of the moves panel: {e:#}", r.scheduler);
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

/// The counters of threads a scheduler moved between CPUs on its own
/// initiative: CFS's balancing migrations, ULE's balancer moves and idle steals.
pub const MOVE_COUNTERS: [&str; 6] = ["migrate_smt", "migrate_llc", "migrate_node", "migrate_all", "ule_bal_move", "ule_steal"];

/// Threads moved per second over 1 s windows: (window end, rate).
pub fn moves_per_second(c: &SchedCounters) -> Vec<(f64, f64)> {
    let cols: Vec<usize> = MOVE_COUNTERS.iter().filter_map(|m| c.names.iter().position(|n| n == m)).collect();
    let total = |v: &Vec<u64>| cols.iter().map(|&i| v[i]).sum::<u64>();
    let mut out = Vec::new();
    let Some((mut t0, first)) = c.samples.first().map(|(t, v)| (*t, total(v))) else { return out };
    let mut base = first;
    for (t, v) in &c.samples[1..] {
        if t - t0 >= 1.0 {
            let now = total(v);
            out.push((*t, now.saturating_sub(base) as f64 / (t - t0)));
            t0 = *t;
            base = now;
        }
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[Run],
    threshold: Option<u32>,
    compare: bool,
    moves: &[(usize, Vec<(f64, f64)>)],
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let first = &runs[0];
    let threshold = threshold.unwrap_or_else(|| default_threshold(first));
    let fair = (first.threads / first.cpus.len()) as u32;
    let bins = bins(threshold, fair);
    let t_max = runs.iter().map(|r| r.samples.last().unwrap().t).fold(0.0, f64::max).max(1.0);

    let (title, rest) = root.split_vertically(TITLE_H);
    let what = match first.pin_secs {
        Some(p) => format!("{} spinning threads pinned on core 0 for {p} s, then released", first.threads),
        None => format!("{}: {} threads", first.experiment, first.threads),
    };
    title
        .draw(&Text::new(
            format!("Threads per core over time: {what}"),
            (WIDTH as i32 / 2, TITLE_H as i32 / 2),
            ("sans-serif", 26).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;

    // The colour legend, one row.
    let (legend, mut rest) = rest.split_vertically(LEGEND_H);
    let font = ("sans-serif", 18).into_font();
    let mut x = 90;
    legend
        .draw(&Text::new(
            format!("threads on the core (grey: below {threshold}):"),
            (x, LEGEND_H as i32 / 2),
            font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    x += 400;
    for b in &bins {
        legend
            .draw(&Rectangle::new([(x, 16), (x + 26, 40)], b.color.filled()))
            .map_err(err)?;
        legend.draw(&Rectangle::new([(x, 16), (x + 26, 40)], BLACK.stroke_width(1))).map_err(err)?;
        legend
            .draw(&Text::new(
                b.label.clone(),
                (x + 32, LEGEND_H as i32 / 2),
                font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        x += 44 + 11 * b.label.len() as i32;
    }

    for run in runs {
        let (panel, below) = rest.split_vertically(heat_panel_h(run));
        heat_panel(root, &panel, run, &bins, t_max)?;
        rest = below;
    }
    if compare {
        let (imb, nodes) = rest.split_vertically(LINE_PANEL_H);
        line_panel(&imb, runs, t_max, "Imbalance: max - min threads per core", "threads", |_, s| {
            vec![(s.counts.iter().max().unwrap() - s.counts.iter().min().unwrap()) as f64]
        })?;
        let (nodes, rest) = nodes.split_vertically(LINE_PANEL_H);
        line_panel(&nodes, runs, t_max, "Threads per NUMA node (solid: node 0, dashed: others)", "threads", |r, s| {
            r.node_totals(s).into_iter().map(|n| n as f64).collect()
        })?;
        if !moves.is_empty() {
            // Log scale: ULE's one move a second and a burst of hundreds at the
            // release both stay readable; a second without moves sits at the floor.
            const FLOOR: f64 = 0.1;
            let y_max = moves.iter().flat_map(|(_, m)| m.iter().map(|p| p.1)).fold(10.0, f64::max) * 1.5;
            let title = "Threads the scheduler moved per second (CFS: balancing; ULE: balancer and idle steals; 1 s windows; log scale, floor: none)";
            let mut chart = frame(&rest, title, 20, 110)
                .build_cartesian_2d(0f64..t_max, (FLOOR..y_max).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc("threads/s")
                .label_style(("sans-serif", 17))
                .axis_desc_style(("sans-serif", 18))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            for (k, pts) in moves {
                let color = RUN_COLORS[k % RUN_COLORS.len()];
                let pts = pts.iter().filter(|p| p.0 <= t_max).map(|&(t, v)| (t, v.max(FLOOR)));
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?
                    .label(runs[*k].scheduler.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 17))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
    }
    Ok(())
}

fn heat_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    run: &Run,
    bins: &[Bin],
    t_max: f64,
) -> Result<()> {
    let title = format!("{}  |  kernel {}  |  {}", run.scheduler, run.kernel, run.topology());
    heat_panel_titled(root, area, run, bins, t_max, &title, 22)
}

fn heat_panel_titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    run: &Run,
    bins: &[Bin],
    t_max: f64,
    title: &str,
    title_size: u32,
) -> Result<()> {
    let n = run.cpus.len();
    let mut chart = frame(area, title, title_size, 110)
        .build_cartesian_2d(0f64..t_max, -0.5f64..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_x_mesh()
        .y_labels(0)
        .x_desc("time (s)")
        .y_desc("core")
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;

    // Rows: node by node, LLC by LLC (display_order), each core a band of
    // runs of equal counts drawn as one rectangle.
    let rows = run.display_order();
    let mut rects = Vec::new();
    for (r, &i) in rows.iter().enumerate() {
        let y = r as f64;
        let mut start = run.samples[0].t;
        let mut cur = run.samples[0].counts[i];
        for w in run.samples.windows(2) {
            let next = w[1].counts[i];
            if next != cur {
                rects.push(Rectangle::new([(start, y - 0.42), (w[1].t, y + 0.42)], color_of(bins, cur).filled()));
                start = w[1].t;
                cur = next;
            }
        }
        let end = run.samples.last().unwrap().t;
        if end > start {
            rects.push(Rectangle::new([(start, y - 0.42), (end, y + 0.42)], color_of(bins, cur).filled()));
        }
    }
    chart.draw_series(rects).map_err(err)?;

    // Core numbers on the left, thinned so they never overlap.
    let step = label_step(row_px(run));
    let label_font = ("sans-serif", 15).into_font();
    // The last core too, when it is not too close to the last labelled one.
    for r in (0..n).filter(|r| r % step == 0 || (*r == n - 1 && r % step >= step / 2)) {
        let (px, py) = chart.backend_coord(&(0.0, r as f64));
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
            chart.draw_series(LineSeries::new([(0.0, y), (t_max, y)], BLACK.stroke_width(2))).map_err(err)?;
        } else if run.llc_of.as_ref().is_some_and(|l| l[a] != l[b]) {
            chart.draw_series(LineSeries::new([(0.0, y), (t_max, y)], grey.stroke_width(1))).map_err(err)?;
        }
    }
    for node in 0..run.nr_nodes {
        let members: Vec<usize> = (0..n).filter(|&r| run.node_of[rows[r]] == node).collect();
        let (Some(&lo), Some(&hi)) = (members.first(), members.last()) else { continue };
        let (px, py) = chart.backend_coord(&(t_max, (lo + hi) as f64 / 2.0));
        root.draw(&Text::new(
            format!("node {}", run.node_ids[node]),
            (px + 12, py),
            ("sans-serif", 17).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    if let Some(rel) = run.release {
        chart
            .draw_series(DashedLineSeries::new([(rel, -0.5), (rel, n as f64 - 0.5)], 8, 6, BLACK.stroke_width(2)))
            .map_err(err)?;
        // Below the axis, clear of the bands.
        let (px, py) = chart.backend_coord(&(rel, -0.5));
        root.draw(&Text::new(
            "release",
            (px, py + 22),
            ("sans-serif", 15).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    }
    let end = run.samples.last().unwrap().t;
    if end < t_max * 0.98 {
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

fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[Run],
    t_max: f64,
    title: &str,
    y_desc: &str,
    values: impl Fn(&Run, &crate::run::Sample) -> Vec<f64>,
) -> Result<()> {
    let y_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().flat_map(|s| values(r, s)))
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = time_chart(area, (title, 22), 110, t_max, y_max, y_desc)?;
    for (k, run) in runs.iter().enumerate() {
        let color = RUN_COLORS[k % RUN_COLORS.len()];
        let series: Vec<Vec<(f64, f64)>> = {
            let width = values(run, &run.samples[0]).len();
            (0..width)
                .map(|j| run.samples.iter().map(|s| (s.t, values(run, s)[j])).collect())
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

/// A chart over time, 0..t_max seconds by 0..y_max, with the figures' mesh.
pub(crate) fn time_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (caption, size): (&str, u32),
    margin_right: u32,
    t_max: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>> {
    let mut chart = frame(area, caption, size, margin_right)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)
        .map_err(err)?;
    let decimals = if y_max < 10.0 { 1 } else { 0 };
    chart
        .configure_mesh()
        .x_desc("time (s)")
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
        let t_max = runs.iter().map(|r| r.samples.last().unwrap().t).fold(0.0, f64::max).max(1.0);
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
        let font = ("sans-serif", 18).into_font();
        let mut x = 90;
        for b in &bins {
            legend.draw(&Rectangle::new([(x, 16), (x + 26, 40)], b.color.filled())).map_err(err)?;
            legend.draw(&Rectangle::new([(x, 16), (x + 26, 40)], BLACK.stroke_width(1))).map_err(err)?;
            legend
                .draw(&Text::new(b.label.clone(), (x + 32, LEGEND_H as i32 / 2), font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
                .map_err(err)?;
            x += 44 + 11 * b.label.len() as i32;
        }
        legend
            .draw(&Text::new(
                format!("threads on the core (grey: below {threshold})"),
                (x + 20, LEGEND_H as i32 / 2),
                font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        let cells = rest.split_evenly((rows, cols));
        for (k, (run, t)) in runs.iter().zip(titles).enumerate() {
            heat_panel_titled(&root, &cells[k], run, &bins, t_max, t, 20)?;
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
