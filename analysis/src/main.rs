// SPDX-License-Identifier: GPL-2.0-only
//! analysis: reports and plots of scx_battle runs.
//!
//! - `analysis plot RUN_DIR... --figure FILE.png|.svg`: figure-6-style panels,
//!   threads per core over time, one per run.
//! - `analysis compare RUN_DIR... --figure FILE`: the same panels plus the
//!   imbalance and per-node totals of all runs on one time axis.
//! - `analysis summary RUN_DIR... [--json FILE]`: balance metrics as a
//!   markdown table (and JSON).
//! - `analysis starvation RUN_DIR... [--figure FILE] [--json FILE]`: runs of
//!   `loadgen serve`: CPU time per thread and ULE's scores over time, and
//!   who got the CPU (the paper's starvation claim).
//! - `analysis report RUN_DIR... --out DIR [--study study.json]`: a study's
//!   figures, summary.md and summary.json, as scripts/reproduce shows them.
//! - `analysis perfetto RUN_DIR --json FILE`: the run as a trace that
//!   ui.perfetto.dev opens (per-CPU thread counts, migrations, the release,
//!   the scheduler's counters).
//! - `analysis stress-report RUN_DIR...`: compares runs of `loadgen stress`,
//!   one per scheduler: each RUN_DIR holds the workload's `stress.json` and a
//!   `scheduler` file naming the scheduler it ran under.
//! - `analysis apps-compare A B [--json FILE]`: two application studies (their
//!   report directories) side by side, e.g. icount against `--realtime`, or
//!   the VM against a native run: which results change.
//!
//! Options follow docs/cli.md: `--out DIR` is a directory, `--figure FILE`
//! a .png or .svg, `--json FILE` a JSON file. (The old `--out FILE` of plot,
//! compare, starvation and perfetto is still accepted.)

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(name = "analysis", version, about = "Reports on scx_battle runs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Threads per core over time, one panel per run (figure 6 of the ULE vs CFS paper).
    Plot {
        /// loadgen run directories (meta.json, timeline.csv).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The figure, .png or .svg.
        #[arg(long, alias = "out", value_name = "FILE")]
        figure: PathBuf,
        /// Counts below this are blue [default: fair share - 1].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        threshold: Option<u32>,
    },
    /// The panels of `plot`, plus imbalance and per-node totals of all runs over time.
    Compare {
        /// loadgen run directories of one experiment, one per scheduler.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The figure, .png or .svg.
        #[arg(long, alias = "out", value_name = "FILE")]
        figure: PathBuf,
        /// Counts below this are blue [default: fair share - 1].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        threshold: Option<u32>,
    },
    /// Balance metrics of spreading runs: a markdown table on stdout.
    Summary {
        /// loadgen spin run directories of one experiment.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write the metrics as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Runs of `loadgen serve` (ULE's starvation): CPU time per thread over
    /// time and ULE's interactivity scores, and a markdown table of who got
    /// the CPU.
    Starvation {
        /// loadgen serve run directories, one per scheduler.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The figure, .png or .svg.
        #[arg(long, alias = "out", value_name = "FILE")]
        figure: Option<PathBuf>,
        /// Also write the metrics as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// A study's figures, summary.md and summary.json (paths relative to DIR): figure 6 of
    /// the spin runs, a starvation figure and table per serve experiment. Exit status 0:
    /// complete; 2: written, but the study is incomplete; 3: written, complete but for
    /// schedulers that failed; 1: error.
    Report {
        /// Run directories (spin and serve runs, one per scheduler and experiment).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the figures and summaries go.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The study's record (study.json, from scripts/reproduce): its command, timings
        /// and how every run it meant to make ended.
        #[arg(long)]
        study: Option<PathBuf>,
    },
    /// One run as a trace for ui.perfetto.dev (Chrome JSON): a counter per CPU with its
    /// thread count, each thread's migrations, the release, and the scheduler's counters
    /// (sched_stats.csv, from scx_battle --stats-csv) on the run's clock.
    Perfetto {
        /// A loadgen run directory.
        run: PathBuf,
        /// The trace (Chrome JSON).
        #[arg(long, alias = "out", value_name = "FILE")]
        json: PathBuf,
    },
    /// Two application studies side by side (the same suite run two ways, e.g.
    /// under icount and --realtime, or in the VM and natively): each scheduler
    /// against CFS in both, and the results whose median changes side of ±5 %.
    AppsCompare {
        /// A study's report directory (its summary.json), or the file.
        a: PathBuf,
        /// The other study's.
        b: PathBuf,
        /// Also write the comparison as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Compare `loadgen stress` runs side by side.
    StressReport {
        /// Run directories, each with stress.json and scheduler.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write the comparison as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

/// The fields of loadgen's stress report that the comparison uses.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
struct Stress {
    secs: f64,
    cpus: usize,
    spinners: usize,
    spin_rounds_min: u64,
    spin_rounds_max: u64,
    spinners_starved: usize,
    wakeups: u64,
    wake_late_us_mean: f64,
    wake_late_us_max: u64,
    pipe_round_trips: u64,
    execs: u64,
    exec_failures: u64,
}

#[derive(Debug, Serialize)]
struct Row {
    scheduler: String,
    run: PathBuf,
    /// Slowest spinner's rounds over the fastest's: 1.0 is perfectly even.
    spin_evenness: f64,
    /// Spin rounds per second per CPU (throughput of the CPU-bound part).
    spin_rounds_per_cpu_sec: f64,
    pipe_round_trips_per_sec: f64,
    execs_per_sec: f64,
    #[serde(flatten)]
    stress: Stress,
}

fn load_run(dir: &Path) -> Result<Row> {
    if !dir.is_dir() {
        bail!("{}: not a run directory", dir.display());
    }
    let path = dir.join("stress.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let stress: Stress = serde_json::from_str(&text).with_context(|| format!("{}: not a loadgen stress report", path.display()))?;
    if stress.secs <= 0.0 || stress.cpus == 0 {
        bail!("{}: secs and cpus must be positive", path.display());
    }
    let sched_path = dir.join("scheduler");
    let scheduler = std::fs::read_to_string(&sched_path)
        .with_context(|| format!("reading {}", sched_path.display()))?
        .trim()
        .to_string();
    if scheduler.is_empty() {
        bail!("{}: empty", sched_path.display());
    }
    let spin_evenness = if stress.spin_rounds_max > 0 {
        stress.spin_rounds_min as f64 / stress.spin_rounds_max as f64
    } else {
        0.0
    };
    Ok(Row {
        scheduler,
        run: dir.to_path_buf(),
        spin_evenness,
        spin_rounds_per_cpu_sec: stress.spin_rounds_min.saturating_add(stress.spin_rounds_max) as f64 / 2.0
            * stress.spinners as f64
            / stress.cpus as f64
            / stress.secs,
        pipe_round_trips_per_sec: stress.pipe_round_trips as f64 / stress.secs,
        execs_per_sec: stress.execs as f64 / stress.secs,
        stress,
    })
}

fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scheduler | secs | spinners starved | spin evenness (min/max) | spin rounds/CPU/s | \
         wake late mean (us) | wake late max (us) | pipe round trips/s | execs/s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.1} | {} of {} | {:.3} | {:.0} | {:.0} | {} | {:.0} | {:.1} |\n",
            r.scheduler,
            r.stress.secs,
            r.stress.spinners_starved,
            r.stress.spinners,
            r.spin_evenness,
            r.spin_rounds_per_cpu_sec,
            r.stress.wake_late_us_mean,
            r.stress.wake_late_us_max,
            r.pipe_round_trips_per_sec,
            r.execs_per_sec
        ));
    }
    s
}

fn run(cli: Cli) -> Result<()> {
    use analysis::{metrics, plot, run::load_comparable};
    match cli.cmd {
        Cmd::Plot { runs, figure, threshold } => plot::plot(&load_comparable(&runs)?, &figure, threshold, false),
        Cmd::Compare { runs, figure, threshold } => plot::plot(&load_comparable(&runs)?, &figure, threshold, true),
        Cmd::Summary { runs, json } => {
            let rows: Vec<_> = load_comparable(&runs)?.iter().map(metrics::summarize).collect();
            print!("{}", metrics::markdown(&rows));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Cmd::Report { runs, out, study } => {
            let study = match study {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
                    Some(serde_json::from_str::<rundata::Study>(&text).with_context(|| format!("{}: not a study record", p.display()))?)
                }
            };
            let rep = analysis::report::write(&runs, &out, study)?;
            eprintln!(
                "{}: {} spin runs, {} starvation experiments{}{}",
                out.join("summary.md").display(),
                rep.figure6.as_ref().map_or(0, |f| f.runs.len()),
                rep.starvation.len(),
                if rep.complete { "" } else { "; INCOMPLETE" },
                if rep.failed.is_empty() { String::new() } else { format!("; {} failed", rep.failed.len()) }
            );
            if !rep.complete {
                return Err(Incomplete.into());
            }
            if !rep.failed.is_empty() {
                return Err(SchedulerFailed.into());
            }
            Ok(())
        }
        Cmd::Perfetto { run, json } => {
            let r = analysis::run::Run::load(&run)?;
            let n = analysis::perfetto::write(&r, &json)?;
            eprintln!(
                "{}: {} events: {} CPU tracks, {} migrations, {} thread CPU-time tracks, {} scheduler counters",
                json.display(),
                n.events,
                n.cpu_tracks,
                n.migrations,
                n.thread_time_tracks,
                n.scheduler_counters
            );
            Ok(())
        }
        Cmd::Starvation { runs, figure, json } => {
            use analysis::serve::{self, ServeRun};
            let runs = runs.iter().map(|d| ServeRun::load(d)).collect::<Result<Vec<_>>>()?;
            let key = |r: &ServeRun| (r.servers, r.batch, r.load_percent.to_bits(), r.arrivals.clone());
            if let Some(r) = runs.iter().find(|r| key(r) != key(&runs[0])) {
                bail!(
                    "{} and {} are different experiments (servers, batch threads, load or arrivals differ)",
                    runs[0].dir.display(),
                    r.dir.display()
                );
            }
            let rows: Vec<_> = runs.iter().map(serve::summarize).collect();
            print!("{}", serve::markdown(&rows));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(figure) = figure {
                analysis::starve_plot::plot(&runs, &figure)?;
            }
            Ok(())
        }
        Cmd::AppsCompare { a, b, json } => {
            let c = analysis::apps_compare::compare_files(&a, &b)?;
            print!("{}", analysis::apps_compare::markdown(&c));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&c)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Cmd::StressReport { runs, json } => {
            let rows = runs.iter().map(|d| load_run(d)).collect::<Result<Vec<_>>>()?;
            if let Some(r) = rows.iter().find(|r| r.stress.cpus != rows[0].stress.cpus) {
                bail!(
                    "runs from different machines: {} has {} CPUs, {} has {}",
                    rows[0].run.display(),
                    rows[0].stress.cpus,
                    r.run.display(),
                    r.stress.cpus
                );
            }
            print!("{}", markdown(&rows));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}

/// `analysis report` wrote everything, for a study that is incomplete:
/// exit status 2.
#[derive(Debug)]
struct Incomplete;

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the study is incomplete (summary.md says what is missing)")
    }
}

impl std::error::Error for Incomplete {}

/// `analysis report` wrote everything, for a study that went on without a
/// scheduler that failed: exit status 3.
#[derive(Debug)]
struct SchedulerFailed;

impl std::fmt::Display for SchedulerFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a scheduler failed and the study went on without it (summary.md says which)")
    }
}

impl std::error::Error for SchedulerFailed {}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Incomplete>() => {
            eprintln!("analysis: {e}");
            ExitCode::from(2)
        }
        Err(e) if e.is::<SchedulerFailed>() => {
            eprintln!("analysis: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("analysis: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"secs":10.0,"cpus":8,"spinners":32,"spin_rounds_min":900,"spin_rounds_max":1000,
        "spinners_starved":0,"sleepers":8,"wakeups":5000,"wake_late_us_mean":80.5,"wake_late_us_max":900,
        "pipe_pairs":4,"pipe_round_trips":20000,"forkers":2,"execs":300,"exec_failures":0,"interrupted":false}"#;

    fn run_dir(name: &str, stress: Option<&str>, sched: Option<&str>) -> PathBuf {
        let d = std::env::temp_dir().join(format!("analysis-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(s) = stress {
            std::fs::write(d.join("stress.json"), s).unwrap();
        }
        if let Some(s) = sched {
            std::fs::write(d.join("scheduler"), s).unwrap();
        }
        d
    }

    #[test]
    fn reads_a_run() {
        let d = run_dir("good", Some(GOOD), Some("scx_battle (vtime)\n"));
        let r = load_run(&d).unwrap();
        assert_eq!(r.scheduler, "scx_battle (vtime)");
        assert!((r.spin_evenness - 0.9).abs() < 1e-9);
        assert!((r.pipe_round_trips_per_sec - 2000.0).abs() < 1e-9);
        // (900+1000)/2 rounds x 32 spinners / 8 CPUs / 10 s
        assert!((r.spin_rounds_per_cpu_sec - 380.0).abs() < 1e-9);
        let md = markdown(&[r]);
        assert!(md.contains("| scx_battle (vtime) | 10.0 | 0 of 32 | 0.900 |"), "{md}");
    }

    #[test]
    fn bad_runs_are_errors_naming_the_file() {
        let cases = [
            ("nostress", None, Some("x"), "stress.json"),
            ("nosched", Some(GOOD), None, "scheduler"),
            ("corrupt", Some("{\"secs\": 1"), Some("x"), "not a loadgen stress report"),
            ("wrongcols", Some(r#"{"a":1}"#), Some("x"), "not a loadgen stress report"),
            ("emptysched", Some(GOOD), Some("  \n"), "empty"),
        ];
        for (name, stress, sched, want) in cases {
            let d = run_dir(name, stress, sched);
            let e = format!("{:#}", load_run(&d).unwrap_err());
            assert!(e.contains(want) && e.contains(&d.display().to_string()), "{name}: {e}");
        }
        let e = format!("{:#}", load_run(Path::new("/nonexistent/run")).unwrap_err());
        assert!(e.contains("not a run directory"), "{e}");
    }

    #[test]
    fn runs_from_different_machines_are_refused() {
        let a = run_dir("m8", Some(GOOD), Some("a"));
        let b = run_dir("m32", Some(&GOOD.replace("\"cpus\":8", "\"cpus\":32")), Some("b"));
        let e = run(Cli { cmd: Cmd::StressReport { runs: vec![a, b], json: None } }).unwrap_err();
        assert!(e.to_string().contains("different machines"), "{e}");
    }
}
