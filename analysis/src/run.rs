// SPDX-License-Identifier: GPL-2.0-only
//! One run directory of `loadgen spin` (or `mixed`), read and checked.
//!
//! A run directory holds meta.json, timeline.csv (time_ms,cpu,node,threads:
//! one row per CPU per sample), and usually threads.csv and migrations.csv.
//! Everything is validated on load: a missing file, a wrong header, a row
//! that does not parse or a sample that misses a CPU is an error naming the
//! file (and line), never a silently wrong plot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Per-CPU thread counts at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the experiment's time 0.
    pub t: f64,
    /// Threads per CPU, in the order of `Run::cpus`.
    pub counts: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Migration {
    pub t: f64,
    pub thread: u32,
    pub from: usize,
    pub to: usize,
    /// Why (None: a run recorded before causes were).
    pub cause: Option<rundata::MoveCause>,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    /// Who scheduled the run, for titles and tables: "kernel (EEVDF)", "scx_battle cfs", ...
    pub scheduler: String,
    pub kernel: String,
    pub experiment: String,
    pub threads: usize,
    pub pin_secs: Option<f64>,
    /// CPU ids in ascending order, and the NUMA node of each: a dense index
    /// into `node_ids`, which lists the nodes that have CPUs.
    pub cpus: Vec<usize>,
    pub node_of: Vec<usize>,
    pub nr_nodes: usize,
    /// The node number (its place in meta.json's list) of each node with CPUs.
    pub node_ids: Vec<usize>,
    /// Nodes with memory and no CPU (CXL): listed in meta.json, never counted.
    pub mem_only_nodes: usize,
    /// The LLC of each CPU (dense index), where meta.json lists LLCs.
    pub llc_of: Option<Vec<usize>>,
    pub nr_llcs: usize,
    /// When the threads were let go, in seconds (spin runs).
    pub release: Option<f64>,
    pub complete: bool,
    pub samples: Vec<Sample>,
    pub migrations: Option<Vec<Migration>>,
    /// CPU time of every worker thread, in ms (threads.csv).
    pub thread_cpu_ms: Option<Vec<f64>>,
    /// meta.json, whole.
    pub meta: rundata::Meta,
    /// wake_latency_us from meta.json: count, p50, p99, p999, max.
    pub wake_latency_us: Option<BTreeMap<String, f64>>,
}

/// A run file by name, or its gzipped copy (`NAME.gz`) when only that exists.
pub(crate) fn data_file(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if !plain.exists() && gz.exists() {
        gz
    } else {
        plain
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {}: not a gzipped text file", path.display()))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub use rundata::{THREADS_HEADER, THREADS_HEADER_V1};

/// thread_time.csv, if the run has one: (seconds, CPU ms used so far) per
/// thread, by tid.
pub fn load_thread_time(dir: &Path) -> Result<Option<BTreeMap<u32, Vec<(f64, f64)>>>> {
    let path = data_file(dir, "thread_time.csv");
    if !path.exists() {
        return Ok(None);
    }
    let mut out: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for (line, c) in csv_rows(&path, rundata::THREAD_TIME_HEADER)? {
        let t: f64 = field(&path, line, "time_ms", &c[0])?;
        let tid: u32 = field(&path, line, "thread", &c[1])?;
        let ms: f64 = field(&path, line, "cpu_time_ms", &c[2])?;
        out.entry(tid).or_default().push((t / 1e3, ms));
    }
    Ok(Some(out))
}

/// Rows of a CSV file whose header must be exactly `header`.
pub(crate) fn csv_rows(path: &Path, header: &str) -> Result<Vec<(usize, Vec<String>)>> {
    csv_rows_any(path, &[header])
}

/// The rows of a CSV file whose header is one of `headers` (each row has as
/// many fields as the header it has).
pub(crate) fn csv_rows_any(path: &Path, headers: &[&str]) -> Result<Vec<(usize, Vec<String>)>> {
    let text = read(path)?;
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, h)) => match headers.iter().find(|&&want| h.trim() == want) {
            Some(want) => *want,
            None => bail!("{}: columns are '{}', expected '{}'", path.display(), h.trim(), headers.join("' or '")),
        },
        None => bail!("{}: empty file", path.display()),
    };
    let n = header.split(',').count();
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<String> = line.split(',').map(|s| s.trim().to_string()).collect();
        if cols.len() != n {
            bail!("{}:{}: {} fields, expected {n}", path.display(), i + 1, cols.len());
        }
        rows.push((i + 1, cols));
    }
    Ok(rows)
}

pub(crate) fn field<T: std::str::FromStr>(path: &Path, line: usize, name: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| anyhow::anyhow!("{}:{line}: {name} '{s}' is not a valid number", path.display()))
}

/// A run's meta.json, parsed into the one type loadgen writes; any problem
/// (not JSON, a field missing or of the wrong type, a newer format) is an
/// error naming the file.
pub fn load_meta(dir: &Path) -> Result<rundata::Meta> {
    if !dir.is_dir() {
        bail!("{}: not a run directory", dir.display());
    }
    let path = dir.join("meta.json");
    rundata::Meta::parse(&read(&path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl Run {
    pub fn load(dir: &Path) -> Result<Run> {
        let meta = load_meta(dir)?;
        let meta_path = dir.join("meta.json");
        let bad = |what: &str| anyhow::anyhow!("{}: {what}", meta_path.display());
        let topo = &meta.topology;
        let cpus = topo.cpus.clone();
        if cpus.is_empty() {
            bail!(bad("topology.cpus is empty"));
        }
        let mut node_of = vec![usize::MAX; cpus.len()];
        let (mut node_ids, mut mem_only_nodes) = (Vec::new(), 0);
        for (n, list) in topo.nodes.iter().enumerate() {
            if list.is_empty() {
                // A memory-only node: no CPU can hold a thread there.
                mem_only_nodes += 1;
                continue;
            }
            for &c in list {
                let i = cpus.iter().position(|&x| x == c).ok_or_else(|| bad("a node lists an unknown CPU"))?;
                if node_of[i] != usize::MAX {
                    bail!(bad(&format!("CPU {c} is in two nodes")));
                }
                node_of[i] = node_ids.len();
            }
            node_ids.push(n);
        }
        if node_of.contains(&usize::MAX) {
            bail!(bad("a CPU is in no node"));
        }
        // LLCs are optional (older runs); a CPU in none, or in two, is an error.
        let llc_of = if topo.llcs.is_empty() {
            None
        } else {
            let mut of = vec![usize::MAX; cpus.len()];
            for (l, members) in topo.llcs.iter().enumerate() {
                for &c in members {
                    let i = cpus.iter().position(|&x| x == c).ok_or_else(|| bad("an LLC lists an unknown CPU"))?;
                    if of[i] != usize::MAX {
                        bail!(bad(&format!("CPU {c} is in two LLCs")));
                    }
                    of[i] = l;
                }
            }
            if of.contains(&usize::MAX) {
                bail!(bad("a CPU is in no LLC"));
            }
            Some(of)
        };
        let threads = meta.thread_count().ok_or_else(|| bad("no thread count"))? as usize;
        let wake_latency_us = meta.wake_latency_us.as_ref().map(|l| {
            [("count", l.count as f64), ("p50", l.p50), ("p99", l.p99), ("p999", l.p999), ("max", l.max)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>()
        });

        let samples = Self::load_timeline(&data_file(dir, "timeline.csv"), &cpus)?;
        let mig_path = data_file(dir, "migrations.csv");
        let migrations = if mig_path.exists() {
            let rows = csv_rows_any(&mig_path, &[rundata::MIGRATIONS_HEADER, rundata::MIGRATIONS_HEADER_V1])?;
            let mut v = Vec::with_capacity(rows.len());
            for (line, c) in rows {
                let cause = match c.get(4) {
                    Some(name) => Some(rundata::MoveCause::from_name(name).ok_or_else(|| {
                        anyhow::anyhow!("{}:{line}: unknown migration cause '{name}'", mig_path.display())
                    })?),
                    None => None,
                };
                let (from, to): (usize, usize) =
                    (field(&mig_path, line, "from", &c[2])?, field(&mig_path, line, "to", &c[3])?);
                if !cpus.contains(&from) || !cpus.contains(&to) {
                    bail!("{}:{line}: CPU {from} or {to} is not in meta.json's topology", mig_path.display());
                }
                v.push(Migration {
                    t: field::<f64>(&mig_path, line, "time_ms", &c[0])? / 1e3,
                    thread: field(&mig_path, line, "thread", &c[1])?,
                    from,
                    to,
                    cause,
                });
            }
            Some(v)
        } else {
            None
        };
        let thr_path = data_file(dir, "threads.csv");
        let thread_cpu_ms = if thr_path.exists() {
            let rows = csv_rows_any(&thr_path, &[THREADS_HEADER, THREADS_HEADER_V1])?;
            Some(
                rows.iter()
                    .map(|(line, c)| field::<f64>(&thr_path, *line, "cpu_time_ms", &c[3]))
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };

        Ok(Run {
            dir: dir.to_path_buf(),
            scheduler: meta.scheduler_label(),
            kernel: meta.kernel_release.clone(),
            experiment: meta.workload.name().to_string(),
            threads,
            pin_secs: meta.workload.pin_secs(),
            nr_nodes: node_ids.len(),
            node_ids,
            mem_only_nodes,
            llc_of,
            nr_llcs: topo.llcs.len(),
            cpus,
            node_of,
            release: meta.release_ms.map(|ms| ms / 1e3),
            complete: meta.complete,
            samples,
            migrations,
            thread_cpu_ms,
            wake_latency_us,
            meta,
        })
    }

    /// timeline.csv: rows of one sample share time_ms and cover every CPU once.
    fn load_timeline(path: &Path, cpus: &[usize]) -> Result<Vec<Sample>> {
        let rows = csv_rows(path, rundata::TIMELINE_HEADER)?;
        let mut samples: Vec<Sample> = Vec::new();
        let mut seen = vec![false; cpus.len()];
        let mut cur: Option<(f64, usize)> = None; // (time, first line)
        let flush = |samples: &mut Vec<Sample>, seen: &mut Vec<bool>, cur: Option<(f64, usize)>| -> Result<()> {
            if let Some((_, line)) = cur {
                if let Some(i) = seen.iter().position(|s| !s) {
                    bail!("{}:{line}: the sample starting here has no row for CPU {}", path.display(), cpus[i]);
                }
            }
            seen.iter_mut().for_each(|s| *s = false);
            let _ = samples;
            Ok(())
        };
        for (line, c) in rows {
            let t: f64 = field(path, line, "time_ms", &c[0])?;
            let cpu: usize = field(path, line, "cpu", &c[1])?;
            let n: u32 = field(path, line, "threads", &c[3])?;
            if !t.is_finite() || t < 0.0 {
                bail!("{}:{line}: time_ms {t} is not a time", path.display());
            }
            let i = cpus
                .iter()
                .position(|&x| x == cpu)
                .ok_or_else(|| anyhow::anyhow!("{}:{line}: CPU {cpu} is not in meta.json's topology", path.display()))?;
            if cur.map(|(ct, _)| ct != t).unwrap_or(true) {
                if let Some((ct, _)) = cur {
                    if t < ct {
                        bail!("{}:{line}: time goes backwards ({t} after {ct})", path.display());
                    }
                }
                flush(&mut samples, &mut seen, cur)?;
                cur = Some((t, line));
                samples.push(Sample { t: t / 1e3, counts: vec![0; cpus.len()] });
            }
            if seen[i] {
                bail!("{}:{line}: CPU {cpu} appears twice in one sample", path.display());
            }
            seen[i] = true;
            samples.last_mut().unwrap().counts[i] = n;
        }
        flush(&mut samples, &mut seen, cur)?;
        if samples.is_empty() {
            bail!("{}: no samples", path.display());
        }
        Ok(samples)
    }

    /// "8 CPUs, 2 nodes, 2 LLCs", plus memory-only nodes where there are any.
    pub fn topology(&self) -> String {
        let mem = match self.mem_only_nodes {
            0 => String::new(),
            n => format!(" (+{n} memory-only)"),
        };
        format!("{} CPUs, {} nodes{mem}, {} LLCs", self.cpus.len(), self.nr_nodes, self.nr_llcs)
    }

    /// The order in which figures draw the CPUs: by node, then LLC, then id,
    /// so every node (and LLC) is one block even where the ids interleave.
    pub fn display_order(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.cpus.len()).collect();
        rows.sort_by_key(|&i| (self.node_of[i], self.llc_of.as_ref().map(|l| l[i]).unwrap_or(0), self.cpus[i]));
        rows
    }

    /// Threads per node in one sample.
    pub fn node_totals(&self, s: &Sample) -> Vec<u32> {
        let mut v = vec![0; self.nr_nodes];
        for (i, &n) in s.counts.iter().enumerate() {
            v[self.node_of[i]] += n;
        }
        v
    }

    /// What must match for two runs to be compared: the experiment, its
    /// shape and the machine's topology. How long each ran after the release
    /// may differ (the study runs ULE longer, as its balancer needs): the
    /// figures draw each run to its end and say where it ends.
    pub fn experiment_key(&self) -> String {
        format!(
            "{} with {} threads{} on {}",
            self.experiment,
            self.threads,
            self.pin_secs.map(|p| format!(", pinned {p} s")).unwrap_or_default(),
            self.topology()
        )
    }
}

/// Load runs to be shown together; refuse runs of different experiments.
pub fn load_comparable(dirs: &[PathBuf]) -> Result<Vec<Run>> {
    if dirs.is_empty() {
        bail!("no run directories given");
    }
    let runs = dirs.iter().map(|d| Run::load(d)).collect::<Result<Vec<_>>>()?;
    for r in &runs[1..] {
        if r.experiment_key() != runs[0].experiment_key() {
            bail!(
                "runs of different experiments: {} is {}, {} is {}",
                runs[0].dir.display(),
                runs[0].experiment_key(),
                r.dir.display(),
                r.experiment_key()
            );
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"format_version":2,"tool":"loadgen 0.1.0","experiment":"spin","threads":4,
        "kernel_release":"k","complete":true,"start_unix_s":0.0,
        "scheduler":{"name":"scx_battle_ule_0.1.0","sched_ext_state":"enabled"},
        "options":{"threads":4,"pin_cpu":0,"pin_secs":1.0,"run_secs":2.0,"nice":[0],"no_release":false,"interval_ms":10},
        "release_ms":1000.0,"topology":{"cpus":[0,1],"nodes":[[0],[1]],"llcs":[[0],[1]]}}"#;
    const TIMELINE: &str = "time_ms,cpu,node,threads\n0.5,0,0,4\n0.5,1,1,0\n1500.0,0,0,2\n1500.0,1,1,2\n";

    fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("analysis-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in files {
            std::fs::write(d.join(f), text).unwrap();
        }
        d
    }

    #[test]
    fn reads_a_run() {
        let r = Run::load(&dir("good", &[("meta.json", META), ("timeline.csv", TIMELINE)])).unwrap();
        assert_eq!(r.scheduler, "scx_battle ule");
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.samples[1].counts, vec![2, 2]);
        assert_eq!(r.node_of, vec![0, 1]);
        assert_eq!(r.release, Some(1.0));
    }

    #[test]
    fn bad_runs_name_the_file() {
        let newer = META.replace(r#""format_version":2"#, r#""format_version":99"#);
        let cases: [(&str, Vec<(&str, &str)>, &str); 8] = [
            ("nometa", vec![("timeline.csv", TIMELINE)], "meta.json"),
            ("badjson", vec![("meta.json", "{"), ("timeline.csv", TIMELINE)], "not valid JSON"),
            ("newer", vec![("meta.json", &newer), ("timeline.csv", TIMELINE)], "newer than this build reads"),
            ("notmeta", vec![("meta.json", r#"{"experiment":"spin"}"#), ("timeline.csv", TIMELINE)], "not a run's meta.json"),
            ("notimeline", vec![("meta.json", META)], "timeline.csv"),
            ("wrongcols", vec![("meta.json", META), ("timeline.csv", "t,cpu\n1,0\n")], "columns are"),
            ("missingcpu", vec![("meta.json", META), ("timeline.csv", "time_ms,cpu,node,threads\n1,0,0,4\n2,0,0,4\n2,1,1,0\n")], "no row for CPU 1"),
            ("badnumber", vec![("meta.json", META), ("timeline.csv", "time_ms,cpu,node,threads\n1,0,0,x\n1,1,1,0\n")], "not a valid number"),
        ];
        for (name, files, want) in cases {
            let d = dir(name, &files);
            let e = format!("{:#}", Run::load(&d).unwrap_err());
            assert!(e.contains(want), "{name}: {e}");
            assert!(e.contains(&d.display().to_string()), "{name} does not name the file: {e}");
        }
        assert!(Run::load(Path::new("/nonexistent")).unwrap_err().to_string().contains("not a run directory"));
    }

    #[test]
    fn reads_a_gzipped_timeline_and_rejects_a_corrupt_one() {
        use std::io::Write;
        let d = dir("gz", &[("meta.json", META)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TIMELINE.as_bytes()).unwrap();
        std::fs::write(d.join("timeline.csv.gz"), gz.finish().unwrap()).unwrap();
        let r = Run::load(&d).unwrap();
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.samples[1].counts, vec![2, 2]);

        std::fs::write(d.join("timeline.csv.gz"), b"not gzip at all").unwrap();
        let e = format!("{:#}", Run::load(&d).unwrap_err());
        assert!(e.contains("timeline.csv.gz") && e.contains("not a gzipped text file"), "{e}");
    }

    #[test]
    fn different_experiments_are_not_compared() {
        let a = dir("exp-a", &[("meta.json", META), ("timeline.csv", TIMELINE)]);
        let b = dir("exp-b", &[("meta.json", &META.replace(r#""spin","threads":4,"#, r#""spin","threads":8,"#)), ("timeline.csv", TIMELINE)]);
        let e = load_comparable(&[a.clone(), b]).unwrap_err().to_string();
        assert!(e.contains("different experiments"), "{e}");
        assert_eq!(load_comparable(&[a.clone(), a.clone()]).unwrap().len(), 2);
        // The same experiment on another machine (one node instead of two).
        let c = dir("exp-c", &[("meta.json", &META.replace(r#""nodes":[[0],[1]]"#, r#""nodes":[[0,1]]"#)), ("timeline.csv", TIMELINE)]);
        let e = load_comparable(&[a.clone(), c]).unwrap_err().to_string();
        assert!(e.contains("different experiments") && e.contains("1 nodes"), "{e}");
        // A run that went on longer after the release is the same experiment
        // (the study runs ULE longer): drawn to its own end.
        let longer = format!("{TIMELINE}9000.0,0,0,2\n9000.0,1,1,2\n");
        let d = dir("exp-d", &[("meta.json", META), ("timeline.csv", &longer)]);
        let runs = load_comparable(&[a, d]).unwrap();
        assert_eq!((runs[0].samples.len(), runs[1].samples.len()), (2, 3));
    }

    #[test]
    fn incomplete_runs_say_so_in_the_summary() {
        let d = dir("incomplete", &[("meta.json", &META.replace("\"complete\":true", "\"complete\":false")), ("timeline.csv", TIMELINE)]);
        let r = Run::load(&d).unwrap();
        assert!(!r.complete);
        let md = crate::metrics::markdown(&[crate::metrics::summarize(&r)]);
        assert!(md.contains("| scx_battle ule (incomplete) |"), "{md}");
    }

    /// A PNG's (width, height), from its IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn the_comparison_draws_the_schedulers_moves_when_recorded() {
        let d = dir("moves", &[("meta.json", META), ("timeline.csv", TIMELINE)]);
        let out = d.join("f.png");
        crate::plot::plot(&[Run::load(&d).unwrap()], &out, None, true).unwrap();
        let (_, without) = png_size(&out);
        // t0_monotonic_ns is needed to place the counters: META has none.
        std::fs::write(d.join("sched_stats.csv"), "mono_ns,ule_steal,ule_bal_pass\n0,0,0\n1000000000,7,2\n2000000000,7,4\n").unwrap();
        std::fs::write(
            d.join("migrations.csv"),
            format!("{}\n1100,5,0,1,balance\n1200,6,0,1,steal\n1300,5,1,0,balance\n", rundata::MIGRATIONS_HEADER),
        )
        .unwrap();
        crate::plot::plot(&[Run::load(&d).unwrap()], &out, None, true).unwrap();
        assert_eq!(png_size(&out).1, without, "counters that cannot be placed are left out");
        let mut m = rundata::Meta::parse(META).unwrap();
        m.t0_monotonic_ns = Some(0);
        std::fs::write(d.join("meta.json"), m.to_json()).unwrap();
        let r = Run::load(&d).unwrap();
        crate::plot::plot(std::slice::from_ref(&r), &out, None, true).unwrap();
        let (_, with) = png_size(&out);
        assert!(with > without, "no moves panel: {with} px high, {without} without");
        let c = crate::counters::SchedCounters::load(&d, Some(0)).unwrap().unwrap();
        // One balancer move off the pinned core in 4 passes, the window closed by the last sample (1 s after the release).
        assert_eq!(crate::plot::leaving_per_pass(&r, &c), [(1.0, 0.25)]);
        // Two balancer moves from 1 s before the release to the run's end 0.5 s after it.
        let rate = crate::plot::cause_rate(&r, Some(rundata::MoveCause::Balance));
        assert_eq!(rate.len(), 1);
        assert!((rate[0].0 - 0.5).abs() < 1e-9 && (rate[0].1 - 2.0 / 1.5).abs() < 1e-9, "{rate:?}");
    }
}

/// Runs shaped like real machines: big, SMT ids interleaved across nodes,
/// memory-only nodes, offline CPUs (ids missing from the topology).
#[cfg(test)]
mod real_machines {
    use super::*;
    use crate::{metrics, plot};

    /// 2 sockets x 256 cores x 2 threads = 1024 CPUs, Linux's x86 numbering:
    /// CPU c and c + 512 are SMT siblings; node 0 holds 0-255 and 512-767.
    /// Every LLC is 16 cores (32 CPUs); node 2 has memory only; CPU 1023 is
    /// offline (absent). `per_cpu` threads end up on every CPU.
    fn big_run(name: &str, per_cpu: u32) -> PathBuf {
        let cpus: Vec<usize> = (0..1023).collect();
        let node = |c: usize| (c % 512) / 256;
        let llc = |c: usize| node(c) * 16 + (c % 256) / 16;
        let nodes: Vec<Vec<usize>> =
            vec![cpus.iter().copied().filter(|&c| node(c) == 0).collect(), cpus.iter().copied().filter(|&c| node(c) == 1).collect(), vec![]];
        let mut llcs: Vec<Vec<usize>> = vec![Vec::new(); 32];
        for &c in &cpus {
            llcs[llc(c)].push(c);
        }
        let threads = per_cpu as usize * cpus.len();
        let meta = rundata::Meta::example_spin(
            rundata::Topology { cpus: cpus.clone(), nodes: nodes.clone(), llcs: llcs.clone() },
            threads as u64,
            "scx_battle_cfs_0.1.0",
        )
        .to_json();
        let mut tl = String::from("time_ms,cpu,node,threads\n");
        for t in [500.0, 1500.0, 2500.0] {
            for &c in &cpus {
                let n = if t < 1000.0 { if c == 0 { threads as u32 } else { 0 } } else { per_cpu };
                tl += &format!("{t},{c},{},{n}\n", node(c));
            }
        }
        let d = std::env::temp_dir().join(format!("analysis-big-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("meta.json"), meta).unwrap();
        std::fs::write(d.join("timeline.csv"), tl).unwrap();
        d
    }

    #[test]
    fn memory_only_node_is_not_a_node_with_no_threads() {
        let r = Run::load(&big_run("meta", 2)).unwrap();
        assert_eq!((r.nr_nodes, r.mem_only_nodes, r.node_ids.clone()), (2, 1, vec![0, 1]));
        assert_eq!(r.topology(), "1023 CPUs, 2 nodes (+1 memory-only), 32 LLCs");
        let s = metrics::summarize(&r);
        // Balanced at once after the release: a third, empty node would have
        // made this "never".
        assert_eq!(s.cfs_thresholds_s, Some(0.5));
        assert_eq!(s.final_node_totals.len(), 2);
    }

    #[test]
    fn figure_rows_group_nodes_and_llcs() {
        let r = Run::load(&big_run("order", 1)).unwrap();
        let rows = r.display_order();
        // Node 0's 512 CPUs first, including the siblings numbered from 512.
        assert!(rows[..512].iter().all(|&i| r.node_of[i] == 0));
        // LLC 0 is cores 0-15 and their siblings 512-527.
        let first: Vec<usize> = rows[..32].iter().map(|&i| r.cpus[i]).collect();
        assert_eq!(first[..16], (0..16).collect::<Vec<_>>()[..]);
        assert_eq!(first[16..], (512..528).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn a_1024_cpu_figure_draws() {
        let d = big_run("plot", 2);
        let runs = load_comparable(&[d.clone()]).unwrap();
        let out = d.join("figure.png");
        plot::plot(&runs, &out, None, true).unwrap();
        let size = std::fs::metadata(&out).unwrap().len();
        assert!(size > 10_000, "figure of {size} bytes");
    }
}
