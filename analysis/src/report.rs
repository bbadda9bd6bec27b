// SPDX-License-Identifier: GPL-2.0-only
//! `analysis report`: the study's figures, summary.md and summary.json from
//! its run directories, as `scripts/reproduce` presents them.
//!
//! The runs are sorted by what they are: spin runs make figure 6 (one
//! figure with all of them, one per run, the balance metrics), serve runs
//! make one starvation figure and table per experiment (batch beside
//! servers, identical servers). A run that cannot be read is named in the
//! summary and left out; the rest is still reported. With `--study`, the
//! study's own record (`rundata::Study`: the command, the timings, every run
//! it meant to make and how each ended) heads the summary and says whether
//! the study is complete and which schedulers failed.
//!
//! Every path written (summary.md's images, summary.json's runs and
//! figures) is relative to the output directory, so a study can be moved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::metrics::{self, Summary};
use crate::run::{load_meta, Run};
use crate::serve::{self, ServeRun, ServeSummary};
use crate::ablation::{self, Attribution};
use crate::{plot, starve_plot};

/// The counters summary.md lists per policy (from scheduler.log's totals).
const COUNTERS: [(&str, &[&str]); 2] = [
    ("scx_battle cfs", &["lb_attempt", "lb_success", "lb_below_pct", "migrate_"]),
    ("scx_battle ule", &["ule_bal_", "ule_steal", "ule_starve", "ule_move_lost"]),
];

/// summary.json's layout version.
pub const SUMMARY_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// summary.json's layout version (SUMMARY_FORMAT_VERSION; 0: before it had one).
    #[serde(default)]
    pub format_version: u32,
    /// The study's record, when given.
    pub study: Option<rundata::Study>,
    /// Every run the study meant to make ended complete, and nothing else
    /// went wrong (always true without a study record, if every run read).
    pub complete: bool,
    /// Runs whose scheduler failed (did not load, was ejected): left out.
    pub failed: Vec<String>,
    pub problems: Vec<String>,
    pub figure6: Option<Figure6>,
    pub starvation: Vec<Starvation>,
    /// When the study ran all eight combinations of components: which
    /// component each metric depends on.
    #[serde(default)]
    pub ablation: Option<Ablation>,
    /// The overhead benchmarks (`study run --overhead`), when the study ran them.
    #[serde(default)]
    pub overhead: Option<crate::overhead::Overhead>,
    /// The application suite (`study run --apps`), when the study ran it.
    #[serde(default)]
    pub apps: Option<crate::apps::Apps>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Ablation {
    /// Figure 6 under the eight combinations, 2 x 4.
    pub figure: Option<String>,
    pub metrics: Vec<Attribution>,
}

/// A summary's scheduler label as a scx_battle combination, if it is one.
fn combination(label: &str) -> Option<usize> {
    label.strip_prefix("scx_battle ").and_then(|p| p.parse().ok()).and_then(ablation::index)
}

/// The ablation's figure and table, when the runs hold all eight combinations.
fn build_ablation(out: &Path, spin: &[Run], f6: Option<&Figure6>, starvation: &[Starvation], problems: &mut Vec<String>) -> Option<Ablation> {
    let f6 = f6?;
    let mut by = [None; 8];
    for (k, r) in f6.runs.iter().enumerate() {
        if let Some(i) = combination(&r.scheduler) {
            by[i] = Some(k);
        }
    }
    if by.iter().any(Option::is_none) {
        return None;
    }
    let kernel = f6.runs.iter().find(|r| r.scheduler.starts_with("kernel"));
    // A time not reached counts as the run's length, marked as censored.
    let time = |name: &str, get: fn(&Summary) -> Option<f64>| {
        let vals: [(Option<f64>, bool); 8] = std::array::from_fn(|i| {
            let r = &f6.runs[by[i].unwrap()];
            match get(r) {
                Some(v) => (Some(v), false),
                None => (r.duration_after_release_s, true),
            }
        });
        Attribution::new(
            name,
            "s",
            vals.map(|v| v.0),
            vals.map(|v| v.1),
            kernel.and_then(get),
        )
    };
    let plain = |name: &str, unit: &str, get: &dyn Fn(&Summary) -> Option<f64>| {
        Attribution::new(name, unit, std::array::from_fn(|i| get(&f6.runs[by[i].unwrap()])), [false; 8], kernel.and_then(|k| get(k)))
    };
    let mut metrics = vec![
        time("all CPUs busy", |r| r.all_busy_s),
        time("within CFS thresholds", |r| r.cfs_thresholds_s),
        time("perfect balance first reached", |r| r.perfect_balance_first_s),
        plain("perfectly balanced after first reached (0 if never)", "%", &|r| {
            Some(r.perfect_balance_after_first_pct.unwrap_or(0.0))
        }),
        plain("migrations", "", &|r| r.migrations.map(|m| m as f64)),
        plain("Jain's index of the spinners' CPU time (1: fair)", "", &|r| r.jain_cpu_time),
    ];
    for (exp, name, unit, get) in [
        ("batch", "batch CPU share beside servers", "%", (|r: &ServeSummary| Some(r.batch_share_percent)) as fn(&ServeSummary) -> Option<f64>),
        ("batch", "request latency p99 beside batch", "ms", |r: &ServeSummary| r.latency_p99_us.map(|v| v / 1e3)),
        ("identical", "identical servers starved", "", |r: &ServeSummary| Some(r.servers_starved as f64)),
    ] {
        let Some(st) = starvation.iter().find(|s| s.experiment == exp) else { continue };
        let mut vals = [None; 8];
        for r in &st.runs {
            if let Some(i) = combination(&r.scheduler) {
                vals[i] = get(r);
            }
        }
        let k = st.runs.iter().find(|r| r.scheduler.starts_with("kernel")).and_then(get);
        metrics.push(Attribution::new(name, unit, vals, [false; 8], k));
    }
    let runs: Vec<&Run> = (0..8)
        .filter_map(|i| {
            let label = &f6.runs[by[i].unwrap()].scheduler;
            spin.iter().find(|r| &r.scheduler == label)
        })
        .collect();
    let titles: Vec<String> = (0..8)
        .map(|i| {
            let p = ablation::policy_at(i);
            format!("{p}: {}", p.describe())
        })
        .collect();
    let figure = if runs.len() == 8 {
        match plot::grid(&runs, &titles, 4, &out.join("ablation-grid.png")) {
            Ok(()) => Some("ablation-grid.png".to_string()),
            Err(e) => {
                problems.push(format!("ablation-grid.png: not drawn: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    Some(Ablation { figure, metrics })
}

/// One metric over a scheduler's repeated runs.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Spread {
    /// Runs with a value; `missing` had none ("never", not measured).
    pub n: usize,
    pub missing: usize,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    pub fn of(values: &[Option<f64>]) -> Spread {
        // (+ 0.0: a -0.0 prints as "-0.0")
        let mut v: Vec<f64> = values.iter().flatten().map(|x| x + 0.0).filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let median = match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        };
        Spread { n: v.len(), missing: values.len() - v.len(), median, min: v.first().copied(), max: v.last().copied() }
    }

    /// "1.23 (1.10-1.40)", with "never in k" where runs had no value.
    pub fn cell(&self, prec: usize) -> String {
        let mut c = match (self.median, self.min, self.max) {
            (Some(m), Some(lo), Some(hi)) if self.n > 1 => format!("{m:.prec$} ({lo:.prec$}-{hi:.prec$})"),
            (Some(m), _, _) => format!("{m:.prec$}"),
            _ => "-".into(),
        };
        if self.missing > 0 && self.n > 0 {
            c += &format!(", none in {}", self.missing);
        } else if self.missing > 0 {
            c = format!("none in {}", self.missing);
        }
        c
    }
}

/// Every numeric field of `rows` (serialized), over the rows: name -> spread.
fn spreads<T: Serialize>(rows: &[&T]) -> BTreeMap<String, Spread> {
    let values: Vec<serde_json::Value> = rows.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    let mut out = BTreeMap::new();
    let Some(first) = values.first().and_then(|v| v.as_object()) else { return out };
    for (k, v) in first {
        if v.is_number() || v.is_null() {
            let col: Vec<Option<f64>> = values.iter().map(|r| r.get(k).and_then(|x| x.as_f64())).collect();
            if col.iter().any(Option::is_some) || col.iter().all(Option::is_none) {
                out.insert(k.clone(), Spread::of(&col));
            }
        }
    }
    out
}

/// A scheduler's repeated runs of one experiment.
#[derive(Debug, Serialize, Deserialize)]
pub struct Repeats {
    pub scheduler: String,
    pub runs: usize,
    /// The run shown in the figure and the main table: the one closest to
    /// the group's medians.
    pub representative: String,
    pub metrics: BTreeMap<String, Spread>,
}

/// Groups rows by scheduler (first-seen order) and picks each group's
/// representative: the run whose metrics lie closest to the medians (sum
/// over `keys` of the distance, scaled by the group's range).
fn group_repeats<T: Serialize>(rows: &[T], scheduler: impl Fn(&T) -> String, run: impl Fn(&T) -> String, keys: &[&str]) -> Vec<(Repeats, usize)> {
    let mut order: Vec<String> = Vec::new();
    for r in rows {
        let s = scheduler(r);
        if !order.contains(&s) {
            order.push(s);
        }
    }
    order
        .into_iter()
        .map(|sched| {
            let idx: Vec<usize> = (0..rows.len()).filter(|&i| scheduler(&rows[i]) == sched).collect();
            let members: Vec<&T> = idx.iter().map(|&i| &rows[i]).collect();
            let metrics = spreads(&members);
            let dist = |i: usize| -> f64 {
                let v = serde_json::to_value(&rows[i]).unwrap_or_default();
                keys.iter()
                    .filter_map(|k| {
                        let sp = metrics.get(*k)?;
                        let (m, lo, hi) = (sp.median?, sp.min?, sp.max?);
                        let x = v.get(*k).and_then(|x| x.as_f64());
                        Some(match x {
                            Some(x) if hi > lo => (x - m).abs() / (hi - lo),
                            Some(_) => 0.0,
                            None => 1.0,
                        })
                    })
                    .sum()
            };
            let best = *idx.iter().min_by(|a, b| dist(**a).total_cmp(&dist(**b))).unwrap();
            (Repeats { scheduler: sched, runs: idx.len(), representative: run(&rows[best]), metrics }, best)
        })
        .collect()
}


#[derive(Debug, Serialize, Deserialize)]
pub struct Figure6 {
    pub figure: String,
    pub figure_svg: String,
    /// One figure per run, in the order of `runs`.
    pub run_figures: Vec<String>,
    /// One run per scheduler: the representative of its repeats.
    pub runs: Vec<Summary>,
    /// Per scheduler, every metric over its repeated runs (empty: one run each).
    pub repeats: Vec<Repeats>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Starvation {
    /// "batch" (batch threads beside servers) or "identical" (servers only).
    pub experiment: String,
    pub figure: String,
    pub json: String,
    /// One run per scheduler: the representative of its repeats.
    pub runs: Vec<ServeSummary>,
    pub repeats: Vec<Repeats>,
}

/// `path` relative to `base` where it is inside it, else as it is.
fn relative(path: &Path, base: &Path) -> String {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (p, b) = (canon(path), canon(base));
    p.strip_prefix(&b).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string())
}

/// A file name part for a run: its directory's name ("cfs", "rusty").
fn slug(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "run".into());
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// The starvation experiment a serve run belongs to, by its options.
/// A serve run's experiment: batch or identical by its threads; a run in
/// the study's guard-off directory is its own, "unguarded".
fn serve_experiment(r: &ServeRun) -> String {
    let parent = r.dir.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
    if parent == Some(rundata::UNGUARDED_STARVATION_DIR) {
        "unguarded"
    } else if r.batch > 0 {
        "batch"
    } else {
        "identical"
    }
    .to_string()
}

/// Reads the runs, draws every figure into `out` and returns the report;
/// `write` puts summary.md and summary.json beside them.
pub fn build(dirs: &[PathBuf], out: &Path, study: Option<rundata::Study>) -> Result<Report> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut problems = Vec::new();
    let mut spin: Vec<Run> = Vec::new();
    let mut serve_runs: BTreeMap<String, Vec<ServeRun>> = BTreeMap::new();
    // A run whose scheduler failed ran (partly) under another one: not shown.
    let failed_dirs: Vec<&str> = study
        .iter()
        .flat_map(|st| st.runs.iter().filter(|r| r.scheduler_failed()).map(|r| r.dir.as_str()))
        .collect();
    let mut bench_dirs = Vec::new();
    let mut app_dirs = Vec::new();
    for d in dirs {
        let name = relative(d, out);
        if failed_dirs.contains(&name.as_str()) {
            continue;
        }
        if crate::overhead::is_bench_dir(d) {
            bench_dirs.push(d.clone());
            continue;
        }
        if crate::apps::is_app_dir(d) {
            app_dirs.push(d.clone());
            continue;
        }
        let loaded = load_meta(d).and_then(|m| match m.workload {
            rundata::Workload::Spin(_) => Run::load(d).map(|r| spin.push(r)),
            rundata::Workload::Serve(_) => ServeRun::load(d).map(|r| serve_runs.entry(serve_experiment(&r)).or_default().push(r)),
            rundata::Workload::Mixed(_) => bail!("a mixed run: the report shows spin and serve runs"),
        });
        if let Err(e) = loaded {
            problems.push(format!("{name}: recorded data unreadable: {e:#}"));
        }
    }
    if let Some(r) = spin.iter().find(|r| r.experiment_key() != spin[0].experiment_key()) {
        bail!(
            "{} and {} are different experiments ({} / {}): report them apart",
            spin[0].dir.display(),
            r.dir.display(),
            spin[0].experiment_key(),
            r.experiment_key()
        );
    }

    let figure6 = if spin.is_empty() {
        None
    } else {
        let all: Vec<Summary> =
            spin.iter().map(|r| Summary { run: relative(&r.dir, out), ..metrics::summarize(r) }).collect();
        let groups = group_repeats(
            &all,
            |r| r.scheduler.clone(),
            |r| r.run.clone(),
            &[
                "all_busy_s",
                "all_busy_after_release_end_s",
                "cfs_thresholds_s",
                "perfect_balance_first_s",
                "perfect_balance_s",
                "perfect_balance_after_first_pct",
                "migrations",
                "jain_cpu_time",
            ],
        );
        let shown: Vec<Run> = groups.iter().map(|(_, i)| spin[*i].clone()).collect();
        // A figure that cannot be drawn is a problem to report, not the end of the summary.
        let mut draw = |runs: &[Run], file: &str, compare: bool| {
            if let Err(e) = plot::plot(runs, &out.join(file), None, compare) {
                problems.push(format!("{file}: not drawn: {e:#}"));
            }
        };
        draw(&shown, "figure6.png", true);
        draw(&shown, "figure6.svg", true);
        let mut run_figures = Vec::new();
        for r in &shown {
            let f = format!("figure6-{}.png", slug(&r.dir));
            draw(std::slice::from_ref(r), &f, false);
            run_figures.push(f);
        }
        let runs = groups.iter().map(|(_, i)| all[*i].clone()).collect();
        let repeats = if groups.iter().any(|(g, _)| g.runs > 1) { groups.into_iter().map(|(g, _)| g).collect() } else { vec![] };
        Some(Figure6 { figure: "figure6.png".into(), figure_svg: "figure6.svg".into(), run_figures, runs, repeats })
    };

    let mut starvation = Vec::new();
    for (exp, runs) in &serve_runs {
        let key = |r: &ServeRun| (r.servers, r.batch, r.load_percent.to_bits(), r.arrivals.clone());
        if let Some(r) = runs.iter().find(|r| key(r) != key(&runs[0])) {
            bail!("{} and {} are different {exp} experiments (servers, load or arrivals differ)", runs[0].dir.display(), r.dir.display());
        }
        let all: Vec<ServeSummary> =
            runs.iter().map(|r| ServeSummary { run: PathBuf::from(relative(&r.dir, out)), ..serve::summarize(r) }).collect();
        let groups = group_repeats(
            &all,
            |r| r.scheduler.clone(),
            |r| r.run.display().to_string(),
            &["batch_share_percent", "batch_starved_s", "servers_starved", "servers_longest_wait_ms", "requests_per_s"],
        );
        let shown: Vec<ServeRun> = groups.iter().map(|(_, i)| runs[*i].clone()).collect();
        let figure = format!("starvation-{exp}.png");
        if let Err(e) = starve_plot::plot(&shown, &out.join(&figure)) {
            problems.push(format!("{figure}: not drawn: {e:#}"));
        }
        let json = format!("starvation-{exp}.json");
        std::fs::write(out.join(&json), serde_json::to_string_pretty(&all)? + "\n")
            .with_context(|| format!("writing {}", out.join(&json).display()))?;
        let rows = groups.iter().map(|(_, i)| all[*i].clone()).collect();
        let repeats = if groups.iter().any(|(g, _)| g.runs > 1) { groups.into_iter().map(|(g, _)| g).collect() } else { vec![] };
        starvation.push(Starvation { experiment: exp.clone(), figure, json, runs: rows, repeats });
    }
    // Batch first, as the paper tells it, then the same without ULE's guard.
    starvation.sort_by_key(|s| match s.experiment.as_str() {
        "batch" => 0,
        "unguarded" => 1,
        _ => 2,
    });

    let mut failed = Vec::new();
    let mut complete = problems.is_empty();
    if let Some(st) = &study {
        for r in &st.runs {
            if r.scheduler_failed() {
                failed.push(format!("{}: {}", r.dir, r.status));
            } else if !r.complete() {
                complete = false;
                problems.push(format!("{}: {}", r.dir, r.status));
            }
        }
        if !st.problems.is_empty() {
            complete = false;
            problems.splice(0..0, st.problems.iter().cloned());
        }
    }
    let ablation = build_ablation(out, &spin, figure6.as_ref(), &starvation, &mut problems);
    let order: Vec<String> = study.iter().flat_map(|st| st.schedulers.iter().map(|x| x.name.clone())).collect();
    let overhead = crate::overhead::build(&bench_dirs, &order, &mut problems)?;
    // TCG (icount or MTTCG) models no caches; under KVM the caches are the host's.
    let vm = study.as_ref().and_then(|st| st.emulation.as_ref()).and_then(|e| e.vm.as_deref());
    let emulated = vm.is_some_and(|vm| vm.contains("TCG"));
    let realtime = vm.is_some_and(|vm| vm.contains("realtime"));
    let apps = crate::apps::build(&app_dirs, &order, emulated, realtime, out, &mut problems)?;
    Ok(Report { format_version: SUMMARY_FORMAT_VERSION, study, complete, failed, problems, figure6, starvation, ablation, overhead, apps })
}

/// A table of repeats: `cols` are (metric, heading, decimals).
fn repeats_table(reps: &[Repeats], cols: &[(&str, &str, usize)]) -> String {
    let mut t = String::from("| scheduler | runs |");
    for (_, h, _) in cols {
        t += &format!(" {h} |");
    }
    t += " shown |\n|---|---|";
    t += &"---|".repeat(cols.len() + 1);
    t += "\n";
    for r in reps {
        t += &format!("| {} | {} |", r.scheduler, r.runs);
        for (k, _, prec) in cols {
            t += &format!(" {} |", r.metrics.get(*k).map(|sp| sp.cell(*prec)).unwrap_or_else(|| "-".into()));
        }
        t += &format!(" {} |\n", r.representative);
    }
    t
}

const REPEAT_NOTE: &str = "Median (min-max) over every run of each scheduler; \"none in k\": k runs never got there. \
The figure and the table above show each scheduler's run closest to its medians (*shown*).\n\n";

/// The totals line of a scx_battle log: `stats total k=v ...`.
fn counter_totals(dir: &Path, prefixes: &[&str]) -> Option<String> {
    let log = std::fs::read_to_string(dir.join("scheduler.log")).ok()?;
    let line = log.lines().rev().find(|l| l.starts_with("stats total"))?;
    let picked: Vec<&str> = line
        .split_whitespace()
        .filter(|kv| prefixes.iter().any(|p| kv.starts_with(p)) && kv.contains('='))
        .collect();
    Some(picked.join(" "))
}

/// Where the numbers come from: the build, the machine and how it was
/// provided, and a merged study's slices (one line each).
fn provenance(st: &rundata::Study) -> String {
    let mut s = String::new();
    if let Some(c) = &st.commit {
        let short = &c[..c.len().min(12)];
        s += &format!(
            "Built from commit {short}{}.\n",
            if st.dirty == Some(true) { " with changes not committed (dirty)" } else { "" }
        );
    }
    if let Some(e) = &st.emulation {
        let how = match (e.kind.as_str(), &e.vm) {
            ("vm", Some(vm)) => format!("In a VM: {vm}"),
            ("vm", None) => "In a VM".to_string(),
            _ => "Natively".to_string(),
        };
        s += &format!(
            "{how}; the host has {} CPUs, load average {:.2} at the start and {:.2} at the end.\n",
            e.host_cpus, e.host_load_start, e.host_load_end
        );
    }
    if let Some(est) = st.estimate_s {
        s += &format!("The engine estimated {est:.0} s of wall time.\n");
    }
    if let Some(b) = &st.binaries {
        s += &format!("Binaries: {b}.\n");
    }
    let first_commit = st.slices.first().and_then(|sl| sl.commit.clone());
    let mixed = st.slices.iter().any(|sl| sl.commit != first_commit);
    let first_binaries = st.slices.first().and_then(|sl| sl.binaries.clone());
    let rebuilt = st.slices.iter().any(|sl| sl.binaries != first_binaries);
    for sl in &st.slices {
        let from = match (&sl.commit, mixed) {
            (Some(c), true) => format!(", started from a checkout at {}", &c[..c.len().min(12)]),
            _ => String::new(),
        };
        let with = match (&sl.binaries, rebuilt) {
            (Some(b), true) => format!(", binaries {b}"),
            _ => String::new(),
        };
        s += &format!("Slice {} ran in {} ({} s of wall time{from}{with}): `{}`.\n", sl.shard, sl.dir, sl.wall_s, sl.command);
    }
    if mixed {
        s += "The slices were started from different checkouts with the same binaries: the build is the first slice's commit.\n";
    }
    if rebuilt {
        s += "The slices ran binaries built separately from this one clean commit (on different machines or days), not one copy: \
              their fingerprints differ.\n";
    }
    s
}

/// summary.md.
pub fn markdown(rep: &Report, out: &Path) -> String {
    let mut s = String::new();
    let names: Vec<String> = match (&rep.study, &rep.figure6) {
        (Some(st), _) => st.schedulers.iter().map(|x| x.name.clone()).collect(),
        (None, Some(f)) => f.runs.iter().map(|r| r.scheduler.clone()).collect(),
        (None, None) => vec![],
    };
    let place = rep.study.as_ref().map(|st| format!(" ({})", st.place)).unwrap_or_default();
    let title = if rep.figure6.is_none() && rep.starvation.is_empty() && rep.overhead.is_some() {
        "Scheduling overhead"
    } else if rep.figure6.is_none() && rep.starvation.is_empty() && rep.apps.is_some() {
        "Applications"
    } else {
        "Thread spreading and starvation"
    };
    s += &format!("# {title}: {}{place}\n\n", names.join(" vs "));
    if !rep.complete {
        s += "**INCOMPLETE.** This study did not finish; what it recorded is summarised below.\n";
        for p in &rep.problems {
            s += &format!("- {p}\n");
        }
        s += "\n";
    } else if !rep.problems.is_empty() {
        for p in &rep.problems {
            s += &format!("- {p}\n");
        }
        s += "\n";
    }
    if !rep.failed.is_empty() {
        s += &format!("**{} run(s) failed: the scheduler did not load, was ejected or exited with an error.** The study went on without them.\n", rep.failed.len());
        for f in &rep.failed {
            s += &format!("- {f}\n");
        }
        s += "\n";
    }
    if let Some(st) = &rep.study {
        s += &format!("Made by `{}` on {} in {} s of wall time.\n", st.command, st.date, st.wall_s);
        s += &provenance(st);
        if st.params.repeat > 1 {
            s += &format!("Every experiment ran {} times under every scheduler, in rounds.\n", st.params.repeat);
        }
        if rep.figure6.is_some() {
            s += &format!("{} spinning threads pinned on core 0 for {} s, then released;\n", st.params.threads, st.params.pin_s);
            s += &format!(
                "recorded for {} s after the release under every scheduler but ULE's balancer, {} s under it.\n",
                st.params.run_s, st.params.ule_run_s
            );
        }
        let peers: Vec<String> = st
            .schedulers
            .iter()
            .filter_map(|x| x.command.as_ref().map(|c| format!("{}: `{}`", x.name, c)))
            .collect();
        if !peers.is_empty() {
            s += &format!("Schedulers: kernel: the kernel's own; {}.\n", peers.join("; "));
        }
    }
    let Some(f6) = &rep.figure6 else {
        if rep.overhead.is_none() && rep.apps.is_none() {
            s += "\nNo spreading run recorded anything.\n";
        }
        starvation_sections(&mut s, rep);
        s += &crate::paper::markdown(rep);
        if let Some(o) = &rep.overhead {
            s += &crate::overhead::markdown(o);
        }
        if let Some(a) = &rep.apps {
            s += &crate::apps::markdown(a);
        }
        return s;
    };
    let first = &f6.runs[0];
    s += &format!("Kernel {}, {}; details in each run's meta.json.\n\n", first.kernel, first.topology.replace("memory-only", "memory-only node(s), not shown"));
    s += &format!("![figure 6]({})\n\n", f6.figure);
    s += "## Metrics\n\n";
    s += "*Release took*: loadgen's one thread moving every spinner off the pinned core (one sched_setaffinity\n";
    s += "each); *all CPUs busy* counts from its start, and in brackets from its end (the core the releasing thread\n";
    s += "runs on can take a spinner only then; a slow guest stretches the release under a scheduler that gets busy\n";
    s += "stealing during it).\n";
    s += "Seconds after the release. *Within CFS thresholds*: node totals within 125% of each other and, in every node,\n";
    s += "the busiest core within 117% of the idlest plus one thread. *Perfect balance*: every core at floor or ceil\n";
    s += "of threads/cores; *first*: the first such sample; *after first*: the share of the samples from that one to\n";
    s += "the end that are perfectly balanced (ULE's balancer keeps trading a thread between cores with k+1 and k\n";
    s += "threads, counting stray threads too, so it can lose the balance it reached). *Not in N s*: not within the\n";
    s += "N s the run was recorded after the release (runs are recorded for different lengths: see above).\n\n";
    s += &metrics::markdown(&f6.runs);
    if !f6.repeats.is_empty() {
        s += "\n### Over repeated runs\n\n";
        s += REPEAT_NOTE;
        s += &repeats_table(
            &f6.repeats,
            &[
                ("all_busy_s", "all CPUs busy (s)", 2),
                ("all_busy_after_release_end_s", "all CPUs busy after the release's end (s)", 2),
                ("cfs_thresholds_s", "within CFS thresholds (s)", 2),
                ("perfect_balance_first_s", "perfect balance, first (s)", 2),
                ("perfect_balance_after_first_pct", "perfectly balanced after first (%)", 0),
                ("migrations", "migrations", 0),
                ("jain_cpu_time", "Jain (CPU time)", 3),
            ],
        );
    }
    let causes = metrics::causes_markdown(&f6.runs);
    if !causes.is_empty() {
        s += "\n### Migrations by cause\n\n";
        s += "Every migration of a spinner over the whole run (creation, pinning, release), by the cause scx_battle\n";
        s += "noted as it decided the move (bpf/recorder/move_note.h), in brackets those off the pinned core. *Unknown*:\n";
        s += "a move scx_battle did not decide or note (the kernel's own, such as its fallbacks at load and hotplug).\n";
        s += "Other schedulers note nothing: their moves are *not attributed*.\n\n";
        s += &causes;
    }
    s += "\nOne figure per run: ";
    s += &f6
        .runs
        .iter()
        .zip(&f6.run_figures)
        .map(|(r, f)| format!("[{}]({f})", r.scheduler))
        .collect::<Vec<_>>()
        .join(", ");
    s += ". Any run opens in Perfetto: `analysis perfetto RUN_DIR --json trace.json`.\n";
    if let Some(st) = &rep.study {
        let cpus = first.topology.split_whitespace().next().unwrap_or("?");
        s += "\nULE's rule predicts: idle cores steal one thread each within milliseconds; after that only CPU 0's balancer moves\n";
        s += "threads, one from the busiest core per pass every 0.5-1.5 s, so core 0 needs about\n";
        s += &format!(
            "{} - ({cpus} - 1) - {} / {cpus} = {} passes, about as many seconds, to reach its fair share.\n",
            st.params.threads, st.params.threads, st.params.ule_rule_passes
        );
    }
    let mut counters = String::new();
    for r in &f6.runs {
        if let Some((_, prefixes)) = COUNTERS.iter().find(|(label, _)| *label == r.scheduler) {
            if let Some(line) = counter_totals(&out.join(&r.run), prefixes) {
                counters += &format!("- {}: {line}\n", r.scheduler);
            }
        }
    }
    if !counters.is_empty() {
        s += "\n## Scheduler counters\n\n";
        s += &counters;
        s += "\n`ule_starve` counts threads run out of ULE's order because they had waited half the watchdog's limit\n";
        s += "(sched_ext's watchdog ends a scheduler that leaves a thread waiting its limit, 30 s under ULE; ULE itself would let\n";
        s += "them starve). Every counter over time: each run's sched_stats.csv.gz.\n";
    }
    starvation_sections(&mut s, rep);
    s += &crate::paper::markdown(rep);
    ablation_section(&mut s, rep);
    if let Some(o) = &rep.overhead {
        s += &crate::overhead::markdown(o);
    }
    if let Some(a) = &rep.apps {
        s += &crate::apps::markdown(a);
    }
    s
}

fn ablation_section(s: &mut String, rep: &Report) {
    let Some(a) = &rep.ablation else { return };
    *s += "\n## Ablation: which component explains each difference\n\n";
    *s += "Every combination of CFS's and ULE's run queue, placement and balancer (QUEUE-PLACE-BALANCE; cfs and ule are\n";
    *s += "the whole schedulers). An effect is the mean over the four combinations with ULE's version of a component\n";
    *s += "minus the mean over the four with CFS's (a 2^3 factorial design); an interaction is the same over the sign\n";
    *s += "products. *> N*: not reached within the N s recorded (counted as N, so effects with it are bounds).\n";
    if let Some(st) = &rep.study {
        if st.params.repeat < 2 {
            *s += "One run per combination: an effect no larger than the run-to-run spread of the metric (see a\n";
            *s += "study with `--repeat`) is not a finding.\n";
        }
    }
    *s += "\n";
    if let Some(f) = &a.figure {
        *s += &format!("![figure 6 under every combination]({f})\n\n");
    }
    for m in &a.metrics {
        *s += &format!("- {}\n", m.sentence);
    }
    *s += "\n";
    *s += &ablation::markdown(&a.metrics);
}

fn starvation_sections(s: &mut String, rep: &Report) {
    for st in &rep.starvation {
        let r = &st.runs[0];
        let unguarded = st.experiment == "unguarded";
        let secs = if unguarded { r.secs } else { rep.study.as_ref().map(|x| x.params.starve_s).unwrap_or(r.secs) };
        let each = r.offered_percent / r.servers.max(1) as f64;
        *s += "\n";
        *s += match st.experiment.as_str() {
            "batch" => "## Starvation: a batch thread beside an interactive server\n\n",
            "unguarded" => "## Starvation: the same, ULE's starvation guard off\n\n",
            _ => "## Starvation: identical threads of one application\n\n",
        };
        if unguarded {
            *s += "The batch experiment again under each scheduler with ULE's run queue, with its starvation guard off\n\
                   (`--starve-ms 0`): nothing but the kernel's watchdog (30 s) limits how long ULE lets the batch thread wait,\n\
                   so the run stops short of it. What the guarded runs above show beyond this length is bounded by the guard.\n\n";
        }
        *s += &format!(
            "`loadgen serve` for {secs:.0} s under each scheduler: {} server threads on CPU 0 each answer a request, then wait for\n",
            r.servers
        );
        *s += &format!(
            "the next one ({} arrivals), each asking for {each} % of the CPU and together for {} % (*asked*).",
            r.arrivals, r.offered_percent
        );
        if r.arrivals == "closed" {
            *s += " Closed arrivals: a server's next request comes a fixed time after its reply, so a server\n\
                   answered late asks for less than this, and what the servers leave goes to the batch thread.";
        }
        if r.batch > 0 {
            *s += &format!(" Beside them, {} CPU-bound batch thread(s) (the paper's fibo beside sysbench).\n", r.batch);
        } else {
            *s += " Nothing else runs.\n";
        }
        *s += "*Batch starved*: the longest time the batch thread got under 5 % of the CPU (over 1 s windows); *servers starved*:\n";
        *s += "servers that got under 5 % for 5 s or more; *fair*: the batch thread's max-min fair share when every server asks\n";
        *s += "for all it may (with closed arrivals a floor: servers kept waiting ask for less). *Guard rescues*: threads\n";
        *s += "ULE's starvation guard ran out of turn (marked ▲ on the figure); without it ULE would let them wait on.\n\n";
        *s += &format!("![starvation-{}]({})\n\n", st.experiment, st.figure);
        *s += &serve::markdown(&st.runs);
        if !st.repeats.is_empty() {
            *s += "\nOver repeated runs. ";
            *s += REPEAT_NOTE;
            let batch_cols: &[(&str, &str, usize)] =
                if r.batch > 0 { &[("batch_share_percent", "batch CPU %", 1), ("batch_starved_s", "batch starved (s)", 1)] } else { &[] };
            let cols: Vec<(&str, &str, usize)> = batch_cols
                .iter()
                .copied()
                .chain([
                    ("servers_starved", "servers starved", 0),
                    ("servers_longest_wait_ms", "longest wait servers (ms)", 0),
                    ("servers_jain", "Jain (servers)", 3),
                    ("requests_per_s", "requests/s", 0),
                    ("latency_p99_us", "latency p99 (us)", 0),
                ])
                .collect();
            *s += &repeats_table(&st.repeats, &cols);
        }
    }
}

impl Report {
    /// Reads a summary.json that `write` wrote (this version's or an older layout).
    pub fn load(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let rep: Report = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if rep.format_version > SUMMARY_FORMAT_VERSION {
            anyhow::bail!("{}: summary format {} is newer than this analysis reads ({SUMMARY_FORMAT_VERSION})", path.display(), rep.format_version);
        }
        Ok(rep)
    }
}

/// Builds the report and writes summary.md and summary.json into `out`.
pub fn write(dirs: &[PathBuf], out: &Path, study: Option<rundata::Study>) -> Result<Report> {
    let rep = build(dirs, out, study)?;
    let md = markdown(&rep, out);
    std::fs::write(out.join("summary.md"), md).with_context(|| format!("writing {}", out.join("summary.md").display()))?;
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&rep)? + "\n")
        .with_context(|| format!("writing {}", out.join("summary.json").display()))?;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, files: &[(&str, String)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
    }

    /// A spin run of 8 threads on 2 CPUs, released at 1 s, balanced at 1.5 s.
    fn spin_run(dir: &Path, scheduler: &str, label: Option<&str>) {
        let mut m = rundata::Meta::example_spin(
            rundata::Topology { cpus: vec![0, 1], nodes: vec![vec![0], vec![1]], llcs: vec![vec![0], vec![1]] },
            8,
            scheduler,
        );
        m.label = label.map(str::to_string);
        let mut tl = String::from("time_ms,cpu,node,threads\n");
        for i in 0..30 {
            let t = i as f64 * 100.0;
            let on1 = if t < 1500.0 { 0 } else { 4 };
            tl += &format!("{t},0,0,{}\n{t},1,1,{on1}\n", 8 - on1);
        }
        files(dir, &[("meta.json", m.to_json()), ("timeline.csv", tl)]);
    }

    /// A serve run: 1 batch thread (tid 10) and 2 servers on CPU 0.
    fn serve_run(dir: &Path, scheduler: &str, batch: u64) {
        let m = rundata::Meta::example_serve(batch, scheduler);
        let mut threads = format!("{}\n", rundata::THREADS_HEADER);
        let mut tt = format!("{}\n", rundata::THREAD_TIME_HEADER);
        if batch > 0 {
            threads += "10,spinner,0,1000.0,0,9000.0,8000.0,3,,\n";
        }
        threads += "11,server,0,4500.0,0,100.0,2.0,4000,4500,0\n12,server,0,4500.0,0,100.0,2.0,4000,4500,0\n";
        for i in 0..=10 {
            let t = i as f64 * 1000.0;
            if batch > 0 {
                tt += &format!("{t},10,{}\n", t / 10.0);
            }
            tt += &format!("{t},11,{}\n{t},12,{}\n", t * 0.45, t * 0.45);
        }
        files(dir, &[("meta.json", m.to_json()), ("threads.csv", threads), ("thread_time.csv", tt)]);
    }

    fn study(runs: &[(&str, &str)]) -> rundata::Study {
        rundata::Study {
            command: "scripts/reproduce --quick".into(),
            date: "2026-11-22".into(),
            wall_s: 100,
            place: "small".into(),
            params: rundata::StudyParams { threads: 8, pin_s: 1.0, run_s: 2.0, ule_run_s: 2.0, ule_rule_passes: 3, starve_s: 10.0, repeat: 1 },
            schedulers: vec![
                rundata::StudyScheduler { name: "kernel".into(), command: None },
                rundata::StudyScheduler { name: "cfs".into(), command: Some("scx_battle --policy cfs".into()) },
                rundata::StudyScheduler { name: "rusty".into(), command: Some("/usr/bin/scx_rusty".into()) },
            ],
            runs: runs.iter().map(|(d, s)| rundata::StudyRun { dir: d.to_string(), status: s.to_string(), wall_s: None }).collect(),
            problems: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn a_study_is_reported_with_relative_paths() {
        let out = std::env::temp_dir().join(format!("analysis-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        spin_run(&out.join("kernel"), "kernel", None);
        spin_run(&out.join("cfs"), "scx_battle_cfs_0.1.0", None);
        spin_run(&out.join("vt"), "scx_battle_vtime_0.1.0", Some("vt"));
        serve_run(&out.join("starvation-batch/kernel"), "kernel", 1);
        serve_run(&out.join("starvation-batch/cfs"), "scx_battle_cfs_0.1.0", 1);
        serve_run(&out.join("starvation-identical/cfs"), "scx_battle_cfs_0.1.0", 0);
        serve_run(&out.join("starvation-unguarded/ule"), "scx_battle_ule_0.1.0", 1);
        std::fs::write(out.join("starvation-unguarded/ule/scheduler.log"), "scx_battle: ule: ..., starve limit 0 ms (a look ...)\n").unwrap();
        let dirs: Vec<PathBuf> = [
            "kernel",
            "cfs",
            "vt",
            "starvation-batch/kernel",
            "starvation-batch/cfs",
            "starvation-identical/cfs",
            "starvation-unguarded/ule",
        ]
        .iter()
            .map(|d| out.join(d))
            .collect();
        let st = study(&[("kernel", "complete"), ("cfs", "complete"), ("vt", "complete")]);
        let rep = super::write(&dirs, &out, Some(st)).unwrap();
        assert!(rep.complete && rep.failed.is_empty(), "{:?} {:?}", rep.problems, rep.failed);
        for f in ["figure6.png", "figure6.svg", "figure6-vt.png", "starvation-batch.png", "starvation-identical.png", "summary.md"] {
            let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{f}: {len} bytes");
        }
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(md.contains("![figure 6](figure6.png)") && md.contains("![starvation-batch](starvation-batch.png)"), "{md}");
        assert!(md.contains("| vt |") && md.contains("rusty: `/usr/bin/scx_rusty`"), "{md}");
        assert!(md.contains("= 3 passes") && !md.contains("INCOMPLETE"), "{md}");
        // Batch before identical, as the paper tells it; the guard-off runs, their own section, between.
        assert!(md.find("a batch thread beside").unwrap() < md.find("identical threads of one").unwrap());
        let unguarded = md.find("ULE's starvation guard off").unwrap();
        assert!(md.find("a batch thread beside").unwrap() < unguarded && unguarded < md.find("identical threads of one").unwrap());
        assert!(std::fs::metadata(out.join("starvation-unguarded.png")).unwrap().len() > 1000);
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(json["figure6"]["runs"][2]["run"], "vt");
        assert_eq!(json["starvation"][0]["runs"][1]["run"], "starvation-batch/cfs");
        assert!(!std::fs::read_to_string(out.join("summary.json")).unwrap().contains(&out.display().to_string()), "an absolute path");
        // summary.json reads back, versioned.
        let back = Report::load(&out.join("summary.json")).unwrap();
        assert_eq!(back.format_version, SUMMARY_FORMAT_VERSION);
        assert_eq!(back.figure6.as_ref().unwrap().runs[2].run, "vt");
        assert_eq!(back.starvation[0].runs[1].run, Path::new("starvation-batch/cfs"));
    }

    #[test]
    fn repeated_runs_give_medians_ranges_and_a_representative() {
        let out = std::env::temp_dir().join(format!("analysis-report-rep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        // cfs three times: balanced at 1.5 s (twice) and never (once).
        spin_run(&out.join("kernel"), "kernel", None);
        spin_run(&out.join("cfs"), "scx_battle_cfs_0.1.0", None);
        spin_run(&out.join("cfs.2"), "scx_battle_cfs_0.1.0", None);
        spin_run(&out.join("cfs.3"), "scx_battle_cfs_0.1.0", None);
        let mut tl = String::from("time_ms,cpu,node,threads\n");
        for i in 0..30 {
            tl += &format!("{t},0,0,7\n{t},1,1,1\n", t = i as f64 * 100.0);
        }
        std::fs::write(out.join("cfs.3/timeline.csv"), tl).unwrap();
        serve_run(&out.join("starvation-batch/cfs"), "scx_battle_cfs_0.1.0", 1);
        serve_run(&out.join("starvation-batch/cfs.2"), "scx_battle_cfs_0.1.0", 1);
        let dirs: Vec<PathBuf> =
            ["kernel", "cfs", "cfs.2", "cfs.3", "starvation-batch/cfs", "starvation-batch/cfs.2"].iter().map(|d| out.join(d)).collect();
        let rep = super::write(&dirs, &out, None).unwrap();
        let f6 = rep.figure6.as_ref().unwrap();
        assert_eq!(f6.runs.len(), 2, "one row per scheduler");
        let cfs = &f6.repeats[1];
        assert_eq!((cfs.scheduler.as_str(), cfs.runs), ("scx_battle cfs", 3));
        assert_eq!(cfs.representative, "cfs", "the first of the two alike runs");
        let pb = &cfs.metrics["perfect_balance_s"];
        assert_eq!((pb.n, pb.missing, pb.median), (2, 1, Some(0.5)));
        assert_eq!(pb.cell(2), "0.50 (0.50-0.50), none in 1");
        assert_eq!(f6.repeats[0].runs, 1);
        assert_eq!(rep.starvation[0].repeats[0].runs, 2);
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(md.contains("### Over repeated runs") && md.contains("| scx_battle cfs | 3 |"), "{md}");
        // The starvation JSON keeps every run.
        let js: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("starvation-batch.json")).unwrap()).unwrap();
        assert_eq!(js.as_array().unwrap().len(), 2);
    }

    #[test]
    fn spreads_of_odd_even_and_empty_groups() {
        assert_eq!(Spread::of(&[Some(3.0), Some(1.0), Some(2.0)]).median, Some(2.0));
        assert_eq!(Spread::of(&[Some(4.0), Some(1.0)]).median, Some(2.5));
        let none = Spread::of(&[None, None]);
        assert_eq!((none.n, none.missing, none.cell(1)), (0, 2, "none in 2".to_string()));
    }

    #[test]
    fn failed_schedulers_and_unreadable_runs_are_named_and_the_rest_reported() {
        let out = std::env::temp_dir().join(format!("analysis-report-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        spin_run(&out.join("kernel"), "kernel", None);
        spin_run(&out.join("cfs"), "scx_battle_cfs_0.1.0", None);
        files(&out.join("broken"), &[("meta.json", "{".into())]);
        // A run killed before its time 0 was recorded: its counters cannot be
        // placed, and the summary is still written.
        files(&out.join("cfs"), &[("sched_stats.csv", "mono_ns,ule_steal\n1,0\n".into())]);
        spin_run(&out.join("rusty"), "rusty_1.0.0", Some("rusty"));
        let dirs: Vec<PathBuf> = ["kernel", "cfs", "broken", "rusty"].iter().map(|d| out.join(d)).collect();
        let st = study(&[
            ("kernel", "complete"),
            ("cfs", "complete"),
            ("rusty", "failed: scheduler was ejected: stall"),
            ("starvation-batch/kernel", "not run"),
        ]);
        let rep = super::write(&dirs, &out, Some(st)).unwrap();
        assert!(!rep.complete);
        assert_eq!(rep.failed, ["rusty: failed: scheduler was ejected: stall"]);
        // Its run is not drawn: it ran partly under the kernel's scheduler.
        assert_eq!(rep.figure6.as_ref().unwrap().runs.len(), 2);
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(md.contains("INCOMPLETE") && md.contains("broken: recorded data unreadable") && md.contains("starvation-batch/kernel: not run"), "{md}");
        assert!(md.contains("1 run(s) failed") && md.contains("| scx_battle cfs |"), "{md}");

        // Spin runs of different machines are one error, not a figure.
        let mut m = rundata::Meta::parse(&std::fs::read_to_string(out.join("cfs/meta.json")).unwrap()).unwrap();
        m.topology.nodes = vec![vec![0, 1]];
        std::fs::write(out.join("cfs/meta.json"), m.to_json()).unwrap();
        let e = build(&dirs[..2], &out, None).unwrap_err().to_string();
        assert!(e.contains("different experiments"), "{e}");
    }
}
