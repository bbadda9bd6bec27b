// SPDX-License-Identifier: GPL-2.0-only
//! The starvation figure: for each `loadgen serve` run, every thread's CPU
//! time so far over time (a flat line is a thread that gets nothing; a colour
//! and a legend entry per thread, batch threads black and on top), with the
//! starvation guard's rescues marked; then, for
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
/// The key row under the title: one entry per thread, shared by all panels.
const KEY_H: u32 = 40;
/// The batch thread: black and thick, drawn over the servers.
const BATCH: RGBColor = BLACK;
/// The starvation guard's rescues.
const GUARD: RGBColor = RGBColor(213, 94, 0);
/// Server threads, one colour each (Okabe-Ito, then greys): told apart with
/// any common colour-vision deficiency for the first seven.
const SERVER_COLORS: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
    RGBColor(140, 86, 75),
    RGBColor(150, 150, 150),
    RGBColor(90, 90, 90),
    RGBColor(200, 200, 200),
];

pub fn plot(runs: &[ServeRun], out: &Path) -> Result<()> {
    if runs.is_empty() {
        bail!("nothing to plot");
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    let ule_panels = runs.iter().filter(|r| r.ule.is_some()).count() as u32;
    let height = TITLE_H + KEY_H + PANEL_H * (runs.len() as u32 + ule_panels);
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
    let (title, rest) = root.split_vertically(TITLE_H);
    let batch = if first.batch > 0 { format!(" beside {} CPU-bound batch thread(s)", first.batch) } else { String::new() };
    title
        .draw(&Text::new(
            format!(
                "CPU time per thread on one CPU: {} servers, {:.1} ms requests, each asking {} % ({} arrivals){batch}",
                first.servers,
                first.request_us as f64 / 1e3,
                first.load_percent,
                first.arrivals
            ),
            (WIDTH as i32 / 2, TITLE_H as i32 / 2),
            ("sans-serif", 24).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;
    let (key, mut rest) = rest.split_vertically(KEY_H);
    draw_key(&key, first, runs.iter().any(|r| r.guard_limit_ms.is_some_and(|ms| ms > 0)))?;
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

/// A thread's colour and legend name: servers numbered in tid order, the batch thread(s) black.
fn color_of(run: &ServeRun, tid: u32) -> (RGBColor, bool, String) {
    let batch = run.threads.iter().any(|t| t.tid == tid && t.is_batch());
    if batch {
        return (BATCH, true, "batch".into());
    }
    let k = run.threads.iter().filter(|t| !t.is_batch()).position(|t| t.tid == tid).unwrap_or(0);
    (SERVER_COLORS[k % SERVER_COLORS.len()], false, format!("server {}", k + 1))
}

/// The key: a swatch per thread (servers numbered as in every panel), the batch line, the guard's marks.
fn draw_key<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &ServeRun, guard: bool) -> Result<()> {
    let font = ("sans-serif", 17).into_font();
    let y = KEY_H as i32 / 2;
    let mut x = 60;
    let text = |area: &DrawingArea<DB, Shift>, x: &mut i32, t: &str| -> Result<()> {
        area.draw(&Text::new(t.to_string(), (*x, y), font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(err)?;
        *x += 8 * t.len() as i32 + 18;
        Ok(())
    };
    for k in 0..run.servers as usize {
        let c = SERVER_COLORS[k % SERVER_COLORS.len()];
        area.draw(&PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3))).map_err(err)?;
        x += 30;
        text(area, &mut x, &format!("server {}", k + 1))?;
    }
    if run.batch > 0 {
        area.draw(&PathElement::new([(x, y), (x + 10, y)], BATCH.stroke_width(4))).map_err(err)?;
        area.draw(&PathElement::new([(x + 16, y), (x + 26, y)], BATCH.stroke_width(4))).map_err(err)?;
        x += 32;
        text(area, &mut x, "batch (dashed, drawn over the servers)")?;
    }
    if guard {
        area.draw(&TriangleMarker::new((x + 8, y), 8, GUARD.filled())).map_err(err)?;
        x += 22;
        text(area, &mut x, "ULE's starvation guard ran it")?;
    }
    Ok(())
}

/// The run's threads, servers first and batch threads last, so the batch line is drawn on top.
fn drawing_order(run: &ServeRun, tids: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut v: Vec<u32> = tids.collect();
    v.sort_by_key(|&tid| (run.threads.iter().any(|t| t.tid == tid && t.is_batch()), tid));
    v
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
    let mut chart = time_chart(area, (&caption, 20), 30, (0.0, t_max), y_max, "CPU time used (s)")?;
    // The guard's limit as a length on the time axis: no flat stretch of a
    // queued thread's line gets longer than this bar.
    if let Some(ms) = run.guard_limit_ms.filter(|ms| *ms > 0) {
        let (len, y) = ((ms as f64 / 1e3).min(t_max), y_max * 0.97);
        chart.draw_series(DashedLineSeries::new([(0.0, y), (len, y)], 8, 5, BLACK.stroke_width(2))).map_err(err)?;
        // Named at its end, on the axis: a legend box would sit on the bar.
        chart
            .draw_series(std::iter::once(Text::new(
                format!(" starvation guard's limit ({:.0} s): a thread queued this long runs next", ms as f64 / 1e3),
                (len, y),
                ("sans-serif", 17).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            )))
            .map_err(err)?;
    }
    // Dashed, the batch line lets servers with the same share show through.
    for tid in drawing_order(run, run.cpu_time.keys().copied()) {
        let (color, batch, _) = color_of(run, tid);
        let pts: Vec<(f64, f64)> = run.cpu_time[&tid].iter().map(|&(t, ms)| (t, ms / 1e3)).collect();
        if batch {
            chart.draw_series(DashedLineSeries::new(pts, 14, 10, color.stroke_width(4))).map_err(err)?;
        } else {
            chart.draw_series(LineSeries::new(pts, color.stroke_width(2))).map_err(err)?;
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
                .draw_series(marks.into_iter().map(|(t, y)| TriangleMarker::new((t, y), 9, GUARD.filled())))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn score_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &ServeRun, t_max: f64) -> Result<()> {
    let samples = run.ule.as_ref().expect("only runs with ULE samples");
    let caption = format!("{}: interactivity score per thread (below {ULE_INTERACT}: interactive, runs first)", run.scheduler);
    let mut chart = time_chart(area, (&caption, 20), 30, (0.0, t_max), 100.0, "score")?;
    let mut by_tid: std::collections::BTreeMap<u32, Vec<(f64, f64)>> = Default::default();
    for u in samples.iter().filter(|u| u.t >= 0.0 && u.t <= t_max) {
        by_tid.entry(u.tid).or_default().push((u.t, u.score as f64));
    }
    for tid in drawing_order(run, by_tid.keys().copied()) {
        if !run.threads.iter().any(|t| t.tid == tid) {
            continue;
        }
        let (color, batch, _) = color_of(run, tid);
        if batch {
            chart.draw_series(DashedLineSeries::new(by_tid[&tid].clone(), 14, 10, color.stroke_width(4))).map_err(err)?;
        } else {
            chart.draw_series(LineSeries::new(by_tid[&tid].clone(), color.stroke_width(2))).map_err(err)?;
        }
    }
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, ULE_INTERACT as f64), (t_max, ULE_INTERACT as f64)],
            10,
            6,
            RGBColor(120, 120, 120).stroke_width(2),
        ))
        .map_err(err)?
        .label(format!("interact = {ULE_INTERACT}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], RGBColor(120, 120, 120).stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
