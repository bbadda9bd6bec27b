// SPDX-License-Identifier: GPL-2.0-only
//! The starvation figure: for each `loadgen serve` run, every thread's CPU
//! time so far over time (a flat line is a thread that gets nothing; batch
//! threads in red), with the starvation guard's rescues marked; then, for
//! runs under scx_battle's ULE with ule_tasks.csv, every thread's
//! interactivity score over time against the `interact` threshold (below it
//! a thread is interactive and runs before any batch thread).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{err, legend, time_chart, FONT};
use crate::serve::{summarize, ServeRun, ULE_INTERACT};

const WIDTH: u32 = 1600;
const TITLE_H: u32 = 50;
const PANEL_H: u32 = 380;
const BATCH: RGBColor = RGBColor(214, 39, 40);
/// Server threads: blues and greens, distinct enough for a dozen lines.
const SERVER_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(23, 190, 207),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(255, 127, 14),
];

pub fn plot(runs: &[ServeRun], out: &Path) -> Result<()> {
    if runs.is_empty() {
        bail!("nothing to plot");
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    let ule_panels = runs.iter().filter(|r| r.ule.is_some()).count() as u32;
    let height = TITLE_H + PANEL_H * (runs.len() as u32 + ule_panels);
    match out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase().as_str() {
        "png" => {
            let root = BitMapBackend::new(out, (WIDTH, height)).into_drawing_area();
            draw(&root, runs)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
        }
        "svg" => {
            let root = SVGBackend::new(out, (WIDTH, height)).into_drawing_area();
            draw(&root, runs)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
        }
        _ => bail!("{}: the output must end in .png or .svg", out.display()),
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[ServeRun]) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let first = &runs[0];
    let (title, mut rest) = root.split_vertically(TITLE_H);
    let batch = if first.batch > 0 { format!(" beside {} CPU-bound batch thread(s)", first.batch) } else { String::new() };
    title
        .draw(&Text::new(
            format!(
                "CPU time per thread on one CPU: {} servers asking {} % each ({} arrivals){batch}",
                first.servers, first.load_percent, first.arrivals
            ),
            (WIDTH as i32 / 2, TITLE_H as i32 / 2),
            ("sans-serif", 24).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;
    let t_max = runs.iter().map(|r| r.secs).fold(1.0, f64::max);
    for run in runs {
        let (panel, below) = rest.split_vertically(PANEL_H);
        cpu_panel(&panel, run, t_max)?;
        rest = below;
    }
    for run in runs.iter().filter(|r| r.ule.is_some()) {
        let (panel, below) = rest.split_vertically(PANEL_H);
        score_panel(&panel, run, t_max)?;
        rest = below;
    }
    Ok(())
}

fn color_of(run: &ServeRun, tid: u32) -> (RGBColor, bool) {
    let batch = run.threads.iter().any(|t| t.tid == tid && t.is_batch());
    if batch {
        return (BATCH, true);
    }
    let k = run.threads.iter().filter(|t| !t.is_batch()).position(|t| t.tid == tid).unwrap_or(0);
    (SERVER_COLORS[k % SERVER_COLORS.len()], false)
}

fn cpu_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &ServeRun, t_max: f64) -> Result<()> {
    let s = summarize(run);
    let y_max = run.cpu_time.values().filter_map(|v| v.last()).map(|p| p.1 / 1e3).fold(0.1, f64::max) * 1.05;
    let mut caption = format!("{}: servers {:.0} % of the CPU", run.scheduler, s.servers_share_percent);
    if run.batch > 0 {
        caption += &format!(
            ", batch {:.1} % (fair share {:.1} %), batch under 5 % for {:.1} s",
            s.batch_share_percent, s.batch_fair_percent, s.batch_starved_s
        );
    }
    if s.servers_starved > 0 {
        caption += &format!(", {} server(s) starved 5 s or more", s.servers_starved);
    }
    match run.guard_limit_ms {
        Some(0) => caption += ", starvation guard off",
        Some(ms) => caption += &format!(", starvation guard at {:.0} s", ms as f64 / 1e3),
        None => {}
    }
    if !run.complete {
        caption += " (incomplete run)";
    }
    let mut chart = time_chart(area, (&caption, 20), 30, t_max, y_max, "CPU time used (s)")?;
    // The guard's limit as a length on the time axis: no flat stretch of a
    // queued thread's line gets longer than this bar.
    if let Some(ms) = run.guard_limit_ms.filter(|ms| *ms > 0) {
        let (len, y) = ((ms as f64 / 1e3).min(t_max), y_max * 0.97);
        chart
            .draw_series(DashedLineSeries::new([(0.0, y), (len, y)], 8, 5, BLACK.stroke_width(2)))
            .map_err(err)?
            .label(format!("starvation guard's limit ({:.0} s): a thread queued this long runs next", ms as f64 / 1e3))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    }
    let mut labelled = (false, false);
    for (&tid, series) in &run.cpu_time {
        let (color, batch) = color_of(run, tid);
        let pts: Vec<(f64, f64)> = series.iter().map(|&(t, ms)| (t, ms / 1e3)).collect();
        let drawn = chart.draw_series(LineSeries::new(pts, color.stroke_width(if batch { 4 } else { 2 }))).map_err(err)?;
        if batch && !labelled.0 {
            labelled.0 = true;
            drawn.label("batch thread").legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], BATCH.stroke_width(4)));
        } else if !batch && !labelled.1 {
            labelled.1 = true;
            drawn.label("server threads").legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2)));
        }
    }
    // Rescues by ULE's starvation guard, where a thread's count went up.
    if let Some(samples) = &run.ule {
        let mut seen = std::collections::BTreeMap::new();
        let mut marks = Vec::new();
        for u in samples {
            let before = seen.insert(u.tid, u.starved).unwrap_or(0);
            if u.starved > before {
                let y = run.cpu_time.get(&u.tid).and_then(|v| v.iter().rev().find(|p| p.0 <= u.t)).map(|p| p.1 / 1e3).unwrap_or(0.0);
                marks.push((u.t, y));
            }
        }
        if !marks.is_empty() {
            chart
                .draw_series(marks.into_iter().map(|(t, y)| TriangleMarker::new((t, y), 9, BLACK.filled())))
                .map_err(err)?
                .label("starvation guard ran it")
                .legend(|(x, y)| TriangleMarker::new((x + 12, y), 8, BLACK.filled()));
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn score_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &ServeRun, t_max: f64) -> Result<()> {
    let samples = run.ule.as_ref().expect("only runs with ULE samples");
    let caption = format!("{}: interactivity score per thread (below {ULE_INTERACT}: interactive, runs first)", run.scheduler);
    let mut chart = time_chart(area, (&caption, 20), 30, t_max, 100.0, "score")?;
    let mut by_tid: std::collections::BTreeMap<u32, Vec<(f64, f64)>> = Default::default();
    for u in samples.iter().filter(|u| u.t >= 0.0 && u.t <= t_max) {
        by_tid.entry(u.tid).or_default().push((u.t, u.score as f64));
    }
    for (tid, pts) in by_tid {
        if !run.threads.iter().any(|t| t.tid == tid) {
            continue;
        }
        let (color, batch) = color_of(run, tid);
        chart.draw_series(LineSeries::new(pts, color.stroke_width(if batch { 4 } else { 2 }))).map_err(err)?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, ULE_INTERACT as f64), (t_max, ULE_INTERACT as f64)],
            10,
            6,
            BLACK.stroke_width(2),
        ))
        .map_err(err)?
        .label(format!("interact = {ULE_INTERACT}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
