// SPDX-License-Identifier: GPL-2.0-only
//! `loadgen app NAMES|all`: real applications under whatever scheduler is
//! loaded, one after the other (rundata::apps::APPS says what each runs and
//! measures). Each writes DIR/<app>/bench.json (rundata::bench::Bench, its
//! primary metric first) with, over its measured phase, the scheduler's CPU
//! share, the context switches and migrations of the whole machine, and the
//! loaded scheduler's own counters (read from its scx_stats socket), so
//! that a difference between schedulers can be explained.
//!
//! The inputs are generated here (a text corpus, a raw video clip, a
//! POV-Ray scene), deterministically, into the run directory; servers run
//! on loopback with their configuration, data and logs there too, and stop
//! with the run. A missing program fails naming its Debian package, a
//! server that does not start fails with its log, and output we cannot
//! parse fails with the program's last lines: nothing is recorded as zero.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rundata::apps::{App, APPS};
use rundata::bench::{Bench, BenchMetric, BENCH_FORMAT_VERSION};

use crate::bench::{last_lines, metric, parse_hackbench, run_tool, tool, Phase};
use crate::sys;

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// The applications, comma-separated, or all (--list names them).
    #[arg(value_parser = app_name, value_delimiter = ',', required_unless_present_any = ["list", "packages"])]
    apps: Vec<String>,
    /// Print the applications, one per line (name, category, metric, what it runs), and exit.
    #[arg(long)]
    list: bool,
    /// Print the Debian packages the suite needs, one per line, and exit (scripts/setup --apps).
    #[arg(long, conflicts_with = "list")]
    packages: bool,
    /// How much work each does: full (the reference's), quick (a quarter), or tiny (a smoke
    /// run: every application runs, its numbers too short to compare).
    #[arg(long, value_enum, default_value = "full")]
    size: Size,
    /// The first loopback port the servers listen on (one per server, upward).
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// build: the C source tree built with make [default: libbpf's sources in cargo's
    /// registry ($CARGO_HOME, else ~/.cargo), which the project's build fetched].
    #[arg(long, value_name = "DIR")]
    build_src: Option<PathBuf>,
    /// Where each application writes: DIR/<app>/bench.json, and its programs' output there.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "packages"])]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    Tiny,
    Quick,
    Full,
}

impl Size {
    /// Units of work: every application's size is a multiple of this.
    fn units(self) -> u64 {
        match self {
            Size::Tiny => 1,
            Size::Quick => 4,
            Size::Full => 16,
        }
    }
}

fn app_name(s: &str) -> Result<String, String> {
    if s == "all" || rundata::apps::by_name(s).is_some() {
        Ok(s.to_string())
    } else {
        Err(format!("no application '{s}' (there are {}, or all)", rundata::apps::names().join(", ")))
    }
}

pub fn run(o: &Opts) -> Result<()> {
    if o.list {
        for a in &APPS {
            let dir = if a.higher_is_better { "higher is better" } else { "lower is better" };
            println!("{:<15} {:<9} {} ({}, {dir}): {}", a.name, a.category.name(), a.metric, a.unit, a.about);
        }
        return Ok(());
    }
    if o.packages {
        for p in rundata::apps::packages() {
            println!("{p}");
        }
        return Ok(());
    }
    let out = o.out.as_ref().context("--out DIR is needed")?;
    let apps: Vec<&App> = if o.apps.iter().any(|a| a == "all") {
        APPS.iter().collect()
    } else {
        o.apps.iter().filter_map(|a| rundata::apps::by_name(a)).collect()
    };
    // Every program first: a missing package fails the run before anything ran.
    tool("perf", "linux-perf").context("every application counts its migrations with perf stat")?;
    for a in &apps {
        for program in a.programs {
            if let Err(e) = tool(program, &a.packages.join(" ")) {
                bail!("{}: {e:#} (scripts/setup --apps installs the suite's packages)", a.name);
            }
        }
        match a.name {
            "build" => drop(build_tree(o)?),
            "pgbench" => drop((pg_bin()?, pg_ids()?)),
            _ => {}
        }
    }
    let m = crate::experiment::Machine::detect()?;
    let stats = sys::BpfStats::enable();
    if !stats.active() {
        eprintln!("loadgen app: warning: BPF run-time stats could not be enabled (not root?): no scheduler share");
    }
    let (stop, interrupted) = sys::stop_on_signal()?;
    // The generated inputs go with the run, however it ends.
    let _inputs = Inputs(out.clone());
    let mut port = o.port;
    for a in apps {
        let dir = out.join(a.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ctx = Ctx { o, cpus: m.cpus.len(), dir: &dir, out, stop: &stop, port };
        if a.category == rundata::apps::Category::Server || a.category == rundata::apps::Category::Database {
            port = port.checked_add(1).context("out of ports")?;
        }
        let t0 = Instant::now();
        let r = one(a, &ctx, &m, stats.active());
        if interrupted.load(Ordering::Relaxed) {
            bail!("interrupted during {}: it is not recorded", a.name);
        }
        let b = r.with_context(|| format!("application {}", a.name))?;
        let json = serde_json::to_string_pretty(&b)?;
        std::fs::write(dir.join("bench.json"), format!("{json}\n")).context("writing bench.json")?;
        let first = &b.metrics[0];
        let share = b.sched_share_pct.map(|s| format!("; scheduler share {s:.2} %")).unwrap_or_default();
        eprintln!(
            "loadgen app {}: {} {:.1} {} in {:.1} s; {} migrations, {} switches{share}",
            a.name,
            first.name,
            first.value,
            first.unit,
            t0.elapsed().as_secs_f64(),
            b.migrations.map_or("?".into(), |n| n.to_string()),
            b.context_switches.map_or("?".into(), |n| n.to_string()),
        );
    }
    Ok(())
}

/// The generated inputs (a corpus, a clip) in the output directory:
/// removed when the run ends, so that no result keeps them.
struct Inputs(PathBuf);

impl Drop for Inputs {
    fn drop(&mut self) {
        for e in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(".corpus-") || name.starts_with(".clip-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// What an application's run needs to know.
struct Ctx<'a> {
    o: &'a Opts,
    cpus: usize,
    dir: &'a Path,
    out: &'a Path,
    stop: &'a Arc<AtomicBool>,
    port: u16,
}

impl Ctx<'_> {
    fn units(&self) -> u64 {
        self.o.size.units()
    }
    fn cpus_s(&self) -> String {
        self.cpus.to_string()
    }
}

/// Around the measured phase: the scheduler's cost (Phase), migrations
/// (perf stat, machine-wide) and the scheduler's counters.
struct Watch {
    phase: Option<Phase>,
    perf: Option<(Child, PathBuf)>,
    counters: Option<BTreeMap<String, u64>>,
}

impl Watch {
    fn start(dir: &Path) -> Result<Watch> {
        let file = dir.join("perf-stat.txt");
        let mut cmd = tool("perf", "linux-perf")?;
        cmd.args(["stat", "-a", "-x,", "-e", "cpu-migrations", "-o"]).arg(&file);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        die_with_parent(&mut cmd);
        let perf = cmd.spawn().context("starting perf stat")?;
        // perf opens its counters after it starts: give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        Ok(Watch { perf: Some((perf, file)), counters: sched_counters(), phase: Some(Phase::start()) })
    }

    fn end(mut self, cpus: usize, stats_on: bool) -> (crate::bench::Cost, Option<u64>, BTreeMap<String, u64>) {
        let cost = self.phase.take().expect("a watch ends once").end(cpus, stats_on);
        let after = sched_counters();
        let counters = match (self.counters.take(), after) {
            (Some(a), Some(b)) => b
                .into_iter()
                .filter_map(|(k, v)| {
                    let d = v.saturating_sub(*a.get(&k).unwrap_or(&0));
                    (d > 0).then_some((k, d))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let migrations = self.perf.take().and_then(|(child, file)| stop_perf(child, &file));
        (cost, migrations, counters)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.perf.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The child dies with loadgen, however loadgen ends (a SIGKILL too): a
/// perf stat or a server must not outlive the run and hold its port. (Only
/// the child: nginx's workers outlive a master killed this way, and hold
/// the port until killed; the next run then fails naming the port. A
/// SIGINT or SIGTERM to loadgen stops every server properly.)
pub(crate) fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; it runs in the child before exec
    // (after any uid change, which would clear it).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// SIGINT makes perf stat print its counts: the migrations, or none (with a warning).
fn stop_perf(mut child: Child, file: &Path) -> Option<u64> {
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let n = parse_perf_stat(&text, "cpu-migrations");
    if n.is_none() {
        eprintln!("loadgen app: warning: perf stat counted no migrations: {}", last_lines(&text, 2));
    }
    n
}

/// `perf stat -x,` lines: "COUNT,,EVENT,...".
fn parse_perf_stat(text: &str, event: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.len() > 2 && f[2] == event).then(|| f[0].parse().ok()).flatten()
    })
}

/// The loaded scheduler's counters from its scx_stats socket (scx_battle and
/// the scx schedulers serve one): every numeric field of its "top" answer.
/// None without a sched_ext scheduler or a socket.
fn sched_counters() -> Option<BTreeMap<String, u64>> {
    if !sys::scheduler().is_sched_ext() {
        return None;
    }
    let sock = std::os::unix::net::UnixStream::connect("/var/run/scx/root/stats").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    (&sock).write_all(b"{\"req\":\"stats\",\"args\":{}}\n").ok()?;
    let mut line = String::new();
    std::io::BufReader::new(&sock).read_line(&mut line).ok()?;
    parse_stats_answer(&line)
}

fn parse_stats_answer(line: &str) -> Option<BTreeMap<String, u64>> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["errno"].as_i64() != Some(0) {
        return None;
    }
    let obj = v["args"]["resp"].as_object()?;
    Some(obj.iter().filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n))).collect())
}

/// One application, its output into ctx.dir.
fn one(a: &App, ctx: &Ctx, m: &crate::experiment::Machine, stats_on: bool) -> Result<Bench> {
    let (command, metrics, watched) = match a.name {
        "7zip" | "pigz" | "xz" | "zstd" => compress(a.name, ctx, stats_on)?,
        "x264" => x264(ctx, stats_on)?,
        "povray" => povray(ctx, stats_on)?,
        "build" => build(ctx, stats_on)?,
        "pgbench" => pgbench(ctx, stats_on)?,
        "sysbench" => sysbench(ctx, stats_on, false)?,
        "sysbench-fibo" => sysbench(ctx, stats_on, true)?,
        "nginx" => nginx(ctx, stats_on)?,
        "redis" => redis(ctx, stats_on)?,
        "memcached" => memcached(ctx, stats_on)?,
        "hackbench" => {
            let (g, l) = (((ctx.cpus / 4).max(1)).to_string(), (50 * ctx.units()).to_string());
            let args = ["-T", "-g", &g, "-l", &l];
            let mut cmd = tool("hackbench", "rt-tests")?;
            cmd.args(args);
            let (text, _, w) = measured(cmd, ctx, stats_on)?;
            (format!("hackbench {}", args.join(" ")), parse_hackbench(&text)?, w)
        }
        "perf-messaging" => {
            let (g, l) = (((ctx.cpus / 4).max(1)).to_string(), (25 * ctx.units()).to_string());
            let args = ["bench", "sched", "messaging", "-g", &g, "-l", &l];
            let mut cmd = tool("perf", "linux-perf")?;
            cmd.args(args);
            let (text, _, w) = measured(cmd, ctx, stats_on)?;
            (format!("perf {}", args.join(" ")), parse_perf_messaging(&text)?, w)
        }
        other => bail!("no application '{other}'"),
    };
    if metrics.first().map(|x| x.name.as_str()) != Some(a.metric) {
        bail!("{}: its primary metric {} was not measured", a.name, a.metric);
    }
    let (cost, migrations, counters) = watched;
    Ok(Bench {
        format_version: BENCH_FORMAT_VERSION,
        kind: a.name.to_string(),
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        command: Some(command),
        topology: rundata::Topology { cpus: m.cpus.clone(), nodes: m.nodes.clone(), llcs: m.llcs.clone() },
        kernel_release: sys::kernel_release(),
        scheduler: sys::scheduler(),
        elapsed_s: cost.elapsed_s,
        metrics,
        sched_share_pct: cost.share_pct,
        sched_calls: cost.calls,
        sched_ns_per_call: cost.ns_per_call,
        context_switches: cost.context_switches,
        sched_programs: cost.programs,
        migrations,
        sched_counters: counters,
    })
}

type Watched = (crate::bench::Cost, Option<u64>, BTreeMap<String, u64>);

/// Run CMD to its end inside a watched phase: its standard output, its
/// seconds (the program's alone), and what the phase cost.
fn measured(cmd: Command, ctx: &Ctx, stats_on: bool) -> Result<(String, f64, Watched)> {
    let w = Watch::start(ctx.dir)?;
    let t0 = Instant::now();
    let text = run_tool(cmd, false, ctx.dir, ctx.stop)?;
    let secs = t0.elapsed().as_secs_f64();
    Ok((text, secs, w.end(ctx.cpus, stats_on)))
}

/// What the program wrote to its standard error (run_tool keeps it in tool.txt).
fn tool_log(ctx: &Ctx) -> String {
    std::fs::read_to_string(ctx.dir.join("tool.txt")).unwrap_or_default()
}

/// A deterministic generator (xorshift64*): the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The text corpus the compressors read: MB megabytes of words drawn with
/// a skewed distribution (compressible as prose is), made once per run
/// directory and kept beside the applications' directories.
fn corpus(ctx: &Ctx) -> Result<(PathBuf, u64)> {
    let mb = 4 * ctx.units();
    let path = ctx.out.join(format!(".corpus-{mb}mb.txt"));
    let bytes = mb << 20;
    if std::fs::metadata(&path).map(|m| m.len() == bytes).unwrap_or(false) {
        return Ok((path, bytes));
    }
    const WORDS: &[&str] = &[
        "the", "scheduler", "thread", "runs", "on", "a", "core", "of", "queue", "and", "its", "load", "balance", "moves",
        "one", "to", "idle", "every", "tick", "slice", "priority", "sleep", "wakes", "interactive", "batch", "node",
        "cache", "memory", "lock", "time", "is", "in", "for", "when", "than", "more", "less", "steal", "period",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?);
    let mut written = 0u64;
    let mut line = String::new();
    while written < bytes {
        line.clear();
        for _ in 0..12 {
            let r = rng.next();
            // Skewed: the first words come most often.
            let i = ((r % 1000) * (r % 1000) / 1000 * WORDS.len() as u64 / 1000) as usize;
            line.push_str(WORDS[i.min(WORDS.len() - 1)]);
            line.push(if r >> 60 == 0 { ',' } else { ' ' });
        }
        line.push_str(&format!("{}\n", rng.next() % 100_000));
        let take = line.len().min((bytes - written) as usize);
        w.write_all(&line.as_bytes()[..take])?;
        written += take as u64;
    }
    w.flush()?;
    Ok((path, bytes))
}

/// 7zip, pigz, xz, zstd: compress the corpus with every CPU; input MB/s.
fn compress(name: &str, ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let (input, bytes) = corpus(ctx)?;
    let n = ctx.cpus_s();
    let archive = ctx.dir.join("out.7z");
    let _ = std::fs::remove_file(&archive);
    let mut cmd;
    let args: Vec<String> = match name {
        "7zip" => {
            cmd = tool("7zz", "7zip")?;
            // A 256 KiB dictionary makes LZMA2's blocks 1 MiB: enough of them for every CPU.
            ["a", "-t7z", "-mx=5", "-md=256k", &format!("-mmt={n}"), "-bd", "-y"].iter().map(|s| s.to_string())
                .chain([archive.display().to_string(), input.display().to_string()])
                .collect()
        }
        "pigz" => {
            cmd = tool("pigz", "pigz")?;
            vec!["-6".into(), "-p".into(), n.clone(), "-c".into(), input.display().to_string()]
        }
        "xz" => {
            cmd = tool("xz", "xz-utils")?;
            // Blocks of 1 MiB so that even the smallest corpus keeps every CPU busy.
            vec!["-3".into(), format!("-T{n}"), "--block-size=1MiB".into(), "-c".into(), input.display().to_string()]
        }
        _ => {
            cmd = tool("zstd", "zstd")?;
            // Jobs of 1 MiB (zstd's default at -12 is several MiB): enough of them for every CPU.
            vec!["-12".into(), format!("-T{n}"), "-B1MiB".into(), "-c".into(), input.display().to_string()]
        }
    };
    cmd.args(&args);
    // The compressed stream goes nowhere (7zz writes its archive).
    let w = Watch::start(ctx.dir)?;
    let t0 = Instant::now();
    run_tool_to_null(cmd, ctx)?;
    let secs = t0.elapsed().as_secs_f64();
    let watched = w.end(ctx.cpus, stats_on);
    let _ = std::fs::remove_file(&archive);
    let program = if name == "7zip" { "7zz" } else { name };
    Ok((
        format!("{program} {}", args.join(" ")),
        vec![metric("mb_per_s", "MB/s", bytes as f64 / (1 << 20) as f64 / secs, true), metric("time_s", "s", secs, false)],
        watched,
    ))
}

/// Run CMD to its end with its standard output thrown away (a compressor's
/// stream), its messages in tool.txt; killed if we are stopped.
fn run_tool_to_null(mut cmd: Command, ctx: &Ctx) -> Result<()> {
    let log = ctx.dir.join("tool.txt");
    let err = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let status = wait_or_stop(&mut child, ctx.stop, &what)?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", last_lines(&tool_log(ctx), 3));
    }
    Ok(())
}

fn wait_or_stop(child: &mut Child, stop: &AtomicBool, what: &str) -> Result<std::process::ExitStatus> {
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if stop.load(Ordering::Relaxed) {
            // SAFETY: kill(2) on the process group we made for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            bail!("interrupted while {what} ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// x264: a generated 640x360 clip (moving gradients and noise) encoded
/// with one thread per CPU; frames/s as x264 reports it.
fn x264(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    const W: usize = 640;
    const H: usize = 360;
    let frames = 8 * ctx.units() as usize;
    let clip = ctx.out.join(format!(".clip-{W}x{H}-{frames}.yuv"));
    let frame_bytes = W * H * 3 / 2;
    if std::fs::metadata(&clip).map(|m| m.len() as usize != frame_bytes * frames).unwrap_or(true) {
        let mut rng = Rng(42);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&clip).with_context(|| format!("creating {}", clip.display()))?);
        let mut buf = vec![0u8; frame_bytes];
        for f in 0..frames {
            for y in 0..H {
                for x in 0..W {
                    let noise = (rng.next() % 16) as usize;
                    buf[y * W + x] = ((x + 3 * f + (y * y) / 64) % 224 + noise) as u8;
                }
            }
            for (i, v) in buf[W * H..].iter_mut().enumerate() {
                *v = (128 + ((i / 7 + 2 * f) % 64)) as u8;
            }
            w.write_all(&buf)?;
        }
        w.flush()?;
    }
    let n = ctx.cpus_s();
    let args = ["--preset", "medium", "--threads", &n, "--input-res", "640x360", "--fps", "25", "-o", "/dev/null"];
    let mut cmd = tool("x264", "x264")?;
    cmd.args(args).arg(&clip);
    let (_, _, w) = measured(cmd, ctx, stats_on)?;
    let fps = parse_x264(&tool_log(ctx))?;
    Ok((format!("x264 {} <{frames} frames of {W}x{H}>", args.join(" ")), vec![metric("fps", "frames/s", fps, true)], w))
}

/// x264's summary: "encoded 32 frames, 12.34 fps, 567.89 kb/s".
fn parse_x264(text: &str) -> Result<f64> {
    text.lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("encoded ")?;
            let fps = rest.split(", ").find_map(|p| p.strip_suffix(" fps"))?;
            fps.trim().parse().ok()
        })
        .with_context(|| format!("x264 printed no 'encoded N frames, F fps': {}", last_lines(text, 3)))
}

/// The POV-Ray scene: a grid of reflective and refractive spheres on a
/// checkered plane under an area light (its cost grows with the image).
const SCENE: &str = r#"#version 3.7;
global_settings { assumed_gamma 1.0 max_trace_level 6 }
camera { location <0, 6, -14> look_at <0, 0.5, 0> angle 50 }
light_source { <-8, 14, -10> color rgb 1 area_light <4, 0, 0>, <0, 0, 4>, 3, 3 adaptive 1 jitter }
light_source { <10, 8, -6> color rgb 0.4 }
plane { y, 0 pigment { checker color rgb 0.9 color rgb 0.2 scale 1.5 } finish { reflection 0.15 } }
#declare I = -3;
#while (I <= 3)
  #declare J = -2;
  #while (J <= 3)
    sphere { <I * 1.6, 0.7, J * 1.6>, 0.7
      #if (mod(I + J + 6, 2) = 0)
        pigment { color rgb <0.8, 0.3 + 0.1 * J, 0.2> } finish { reflection 0.35 specular 0.6 }
      #else
        pigment { color rgbf <0.9, 0.95, 1, 0.85> } finish { specular 0.8 } interior { ior 1.5 }
      #end
    }
    #declare J = J + 1;
  #end
  #declare I = I + 1;
#end
"#;

/// povray: the scene rendered at a size that grows with --size, one thread
/// per CPU; the render's seconds.
fn povray(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let scene = ctx.dir.join("scene.pov");
    std::fs::write(&scene, SCENE)?;
    let (w, h) = match ctx.o.size {
        Size::Tiny => (96, 72),
        Size::Quick => (192, 144),
        Size::Full => (384, 288),
    };
    let args = vec![
        "-D".to_string(),
        "-V".into(),
        "+A0.3".into(),
        // Blocks of 8x8 pixels: even the smallest image has work for every CPU.
        "+BS8".into(),
        format!("+WT{}", ctx.cpus),
        format!("+W{w}"),
        format!("+H{h}"),
        "+Iscene.pov".into(),
        "+Oscene.png".into(),
    ];
    let mut cmd = tool("povray", "povray")?;
    // In the run directory, which POV-Ray's I/O restrictions let it read and write.
    cmd.args(&args).current_dir(ctx.dir).env("HOME", ctx.dir);
    let (_, secs, watched) = measured(cmd, ctx, stats_on)?;
    if !ctx.dir.join("scene.png").is_file() {
        bail!("povray wrote no image: {}", last_lines(&tool_log(ctx), 3));
    }
    Ok((format!("povray {} ({w}x{h})", args.join(" ")), vec![metric("render_s", "s", secs, false)], watched))
}

/// The C tree `build` compiles: --build-src, or libbpf's sources in cargo's registry.
fn build_tree(o: &Opts) -> Result<PathBuf> {
    if let Some(d) = &o.build_src {
        if !d.join("Makefile").is_file() {
            bail!("--build-src {}: no Makefile there", d.display());
        }
        return Ok(d.clone());
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    let mut found: Vec<PathBuf> = Vec::new();
    for reg in std::fs::read_dir(home.join("registry/src")).into_iter().flatten().flatten() {
        for krate in std::fs::read_dir(reg.path()).into_iter().flatten().flatten() {
            let name = krate.file_name().to_string_lossy().to_string();
            let src = krate.path().join("libbpf/src");
            if name.starts_with("libbpf-sys-") && src.join("Makefile").is_file() {
                found.push(src);
            }
        }
    }
    found.sort();
    found.pop().with_context(|| {
        format!("build: no libbpf sources under {} (cargo build fetches them; or give --build-src DIR)", home.join("registry/src").display())
    })
}

/// build: make -j<CPUs> of the tree into the run directory (its objects
/// there, the tree untouched); seconds. libbpf's static library only.
fn build(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let src = build_tree(ctx.o)?;
    let obj = ctx.dir.join("obj");
    let _ = std::fs::remove_dir_all(&obj);
    std::fs::create_dir_all(&obj)?;
    let targets = build_targets(&src, &obj, ctx.o.size)?;
    let mut args = vec![
        "-C".to_string(),
        src.display().to_string(),
        format!("-j{}", ctx.cpus),
        format!("OBJDIR={}", obj.display()),
        "BUILD_STATIC_ONLY=y".into(),
    ];
    args.extend(targets.iter().map(|t| t.display().to_string()));
    let mut cmd = tool("make", "make")?;
    cmd.args(&args);
    let (_, secs, watched) = measured(cmd, ctx, stats_on)?;
    if let Some(t) = targets.iter().find(|t| !t.is_file()) {
        bail!("make built no {}: {}", t.display(), last_lines(&tool_log(ctx), 3));
    }
    let _ = std::fs::remove_dir_all(&obj);
    let what = if ctx.o.size == Size::Full { "libbpf.a".to_string() } else { format!("{} objects", targets.len()) };
    Ok((format!("make -C <libbpf/src> -j{} BUILD_STATIC_ONLY=y ({what})", ctx.cpus), vec![metric("build_s", "s", secs, false)], watched))
}

/// What make builds: the whole static library (full), or the objects of
/// the smallest sources up to 128 KiB (tiny) or 512 KiB (quick) of C.
fn build_targets(src: &Path, obj: &Path, size: Size) -> Result<Vec<PathBuf>> {
    let budget: u64 = match size {
        Size::Full => return Ok(vec![obj.join("libbpf.a")]),
        Size::Tiny => 128 << 10,
        Size::Quick => 512 << 10,
    };
    let mut sources: Vec<(u64, String)> = std::fs::read_dir(src)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = name.strip_suffix(".c")?.to_string();
            Some((e.metadata().ok()?.len(), stem))
        })
        .collect();
    sources.sort();
    let mut total = 0;
    let mut out = Vec::new();
    for (len, stem) in sources {
        if total + len > budget && !out.is_empty() {
            break;
        }
        total += len;
        out.push(obj.join("staticobjs").join(format!("{stem}.o")));
    }
    if out.is_empty() {
        bail!("build: no C sources in {}", src.display());
    }
    Ok(out)
}

/// A server started for one application: its own process group, stopped
/// (and its children) when dropped.
struct Server {
    child: Child,
    what: String,
    log: PathBuf,
    /// What asks it to stop (SIGTERM; PostgreSQL's fast shutdown is SIGINT).
    stop_signal: i32,
}

impl Server {
    /// Start CMD with its output into LOG; fail if PORT is taken already.
    fn start(mut cmd: Command, port: Option<u16>, log: PathBuf) -> Result<Server> {
        if let Some(p) = port {
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
                bail!("port {p} on 127.0.0.1 is in use (--port sets the first one loadgen uses)");
            }
        }
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        die_with_parent(&mut cmd);
        let what = format!("{cmd:?}");
        let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        Ok(Server { child, what, log, stop_signal: libc::SIGTERM })
    }

    /// Wait until READY says so, failing with the server's log if it exits or takes a minute.
    fn wait_ready(&mut self, stop: &AtomicBool, mut ready: impl FnMut() -> bool) -> Result<()> {
        let t0 = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(st) = self.child.try_wait()? {
                bail!("{} exited ({st}) before it served: {}", self.what, self.log_tail());
            }
            if stop.load(Ordering::Relaxed) {
                bail!("interrupted while {} started", self.what);
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("{} did not answer within 60 s: {}", self.what, self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        last_lines(&std::fs::read_to_string(&self.log).unwrap_or_default(), 4)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pg = -(self.child.id() as i32);
        // SAFETY: kill(2) on the server, then its process group.
        unsafe { libc::kill(self.child.id() as i32, self.stop_signal) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe { libc::kill(pg, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// nginx (one worker per CPU) serving a 4 KiB page to wrk over loopback.
fn nginx(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let wrk = tool("wrk", "wrk")?;
    let nginx = tool("nginx", "nginx")?;
    let d = ctx.dir;
    let www = d.join("www");
    std::fs::create_dir_all(&www)?;
    for t in ["client", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(d.join("tmp").join(t))?;
    }
    let page: String = (0..4096).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    std::fs::write(www.join("index.html"), page)?;
    let p = d.display();
    let conf = format!(
        "worker_processes {cpus};\ndaemon off;\nuser root;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  keepalive_requests 100000;\n\
           client_body_temp_path {p}/tmp/client;\n  proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fastcgi;\n\
           uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n\
           server {{ listen 127.0.0.1:{port}; root {p}/www; }}\n}}\n",
        cpus = ctx.cpus,
        port = ctx.port
    );
    std::fs::write(d.join("nginx.conf"), conf)?;
    let mut cmd = nginx;
    cmd.arg("-e").arg(d.join("error.log")).arg("-p").arg(d).arg("-c").arg(d.join("nginx.conf"));
    let mut server = Server::start(cmd, Some(ctx.port), d.join("server.log"))?;
    server.wait_ready(ctx.stop, || port_open(ctx.port))?;
    let threads = (ctx.cpus / 4).max(1);
    let secs = match ctx.o.size {
        Size::Tiny => 2,
        Size::Quick => 5,
        Size::Full => 15,
    };
    let args = vec![
        format!("-t{threads}"),
        format!("-c{}", 4 * ctx.cpus.max(threads)),
        format!("-d{secs}s"),
        "--latency".into(),
        format!("http://127.0.0.1:{}/index.html", ctx.port),
    ];
    let mut cmd = wrk;
    cmd.args(&args);
    let (text, _, watched) = measured(cmd, ctx, stats_on)?;
    drop(server);
    Ok((format!("wrk {} (nginx, {} workers)", args.join(" "), ctx.cpus), parse_wrk(&text)?, watched))
}

/// wrk --latency: "Requests/sec: N", the latency distribution's "99% T"
/// (T with a unit: us, ms, s); no error response, socket errors under 1 %.
fn parse_wrk(text: &str) -> Result<Vec<BenchMetric>> {
    let rps = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:").and_then(|v| v.trim().parse::<f64>().ok()));
    let p99 = text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("99%")).then(|| w.next().and_then(duration_ms)).flatten()
    });
    let (Some(rps), Some(p99)) = (rps, p99) else {
        bail!("wrk printed no Requests/sec and 99% latency: {}", last_lines(text, 3));
    };
    if rps <= 0.0 {
        bail!("wrk measured no requests: {}", last_lines(text, 3));
    }
    // Errors are not throughput: no error response, and socket errors
    // (connect, read, write, timeout) under 1 % of the requests.
    let requests = text.lines().find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse::<f64>().ok()));
    let bad_status = text.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:").and_then(|v| v.trim().parse::<f64>().ok()));
    if let Some(n) = bad_status.filter(|n| *n > 0.0) {
        bail!("wrk: {n} responses were errors (non-2xx/3xx): the server did not serve the page");
    }
    let socket_errors: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|v| v.split(',').filter_map(|f| f.split_whitespace().last()?.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    if socket_errors > 0.01 * requests.unwrap_or(0.0) {
        bail!("wrk: {socket_errors} socket errors in {} requests: {}", requests.unwrap_or(0.0), last_lines(text, 3));
    }
    Ok(vec![metric("requests_per_s", "requests/s", rps, true), metric("latency_ms_p99", "ms", p99, false)])
}

/// "1.23ms", "456.78us", "2.01s" in ms.
fn duration_ms(s: &str) -> Option<f64> {
    for (suffix, scale) in [("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 60e3)] {
        if let Some(v) = s.strip_suffix(suffix) {
            return v.parse::<f64>().ok().map(|v| v * scale);
        }
    }
    None
}

/// redis-server answering redis-benchmark's SET and GET over loopback.
fn redis(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let bench = tool("redis-benchmark", "redis-tools")?;
    let mut cmd = tool("redis-server", "redis-server")?;
    let port = ctx.port.to_string();
    cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir"])
        .arg(ctx.dir);
    let mut server = Server::start(cmd, Some(ctx.port), ctx.dir.join("server.log"))?;
    server.wait_ready(ctx.stop, || port_open(ctx.port))?;
    let n = (25_000 * ctx.units()).to_string();
    let args = ["-h", "127.0.0.1", "-p", &port, "-t", "set,get", "-n", &n, "-c", "50", "-q", "--csv"];
    let mut cmd = bench;
    cmd.args(args);
    let (text, _, watched) = measured(cmd, ctx, stats_on)?;
    drop(server);
    Ok((format!("redis-benchmark {}", args.join(" ")), parse_redis_csv(&text)?, watched))
}

/// memcached answering memcaslap (libmemcached's load generator: 90 % gets,
/// 10 % sets of its generated keys) over loopback.
fn memcached(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let slap = tool("memcaslap", "libmemcached-tools")?;
    let mut cmd = tool("memcached", "memcached")?;
    let (port, threads) = (ctx.port.to_string(), ctx.cpus.to_string());
    // -U 0: no UDP port; -u root: memcached refuses to run as root unless told to.
    cmd.args(["-p", &port, "-l", "127.0.0.1", "-U", "0", "-t", &threads, "-c", "4096", "-u", "root"]);
    let mut server = Server::start(cmd, Some(ctx.port), ctx.dir.join("server.log"))?;
    server.wait_ready(ctx.stop, || port_open(ctx.port))?;
    let secs = match ctx.o.size {
        Size::Tiny => 2,
        Size::Quick => 5,
        Size::Full => 15,
    };
    let (servers, clients, conns, time) = (
        format!("--servers=127.0.0.1:{port}"),
        format!("--threads={}", (ctx.cpus / 2).max(1)),
        format!("--concurrency={}", 4 * ctx.cpus),
        format!("--time={secs}s"),
    );
    // Without --cfg_cmd memcaslap writes its default configuration into the
    // user's home directory first, which the guest mounts read-only: ours,
    // spelled out, lives in the run directory. Keys of 64 bytes, values of
    // 1 KiB; command 0 (set) 10 %, command 1 (get) 90 %.
    let cfg = ctx.dir.join("memcaslap.cnf");
    std::fs::write(&cfg, "key\n64 64 1\nvalue\n1024 1024 1\ncmd\n0 0.1\n1 0.9\n")
        .with_context(|| format!("writing {}", cfg.display()))?;
    let cfg_arg = format!("--cfg_cmd={}", cfg.display());
    let args = [servers.as_str(), &clients, &conns, &time, &cfg_arg];
    let mut cmd = slap;
    cmd.args(args);
    let (text, _, watched) = measured(cmd, ctx, stats_on)?;
    drop(server);
    Ok((format!("memcaslap {}", args.join(" ")), parse_memcaslap(&text)?, watched))
}

/// memcaslap's last line: "Run time: 3.0s Ops: 364157 TPS: 121376 Net_rate: 135.8M/s".
fn parse_memcaslap(text: &str) -> Result<Vec<BenchMetric>> {
    let field = |line: &str, key: &str| -> Option<f64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()?.parse::<f64>().ok()
    };
    let Some(line) = text.lines().rev().find(|l| l.trim_start().starts_with("Run time:")) else {
        bail!("memcaslap printed no summary line: {}", last_lines(text, 3));
    };
    let (Some(ops), Some(tps)) = (field(line, "Ops:"), field(line, "TPS:")) else {
        bail!("memcaslap's summary has no Ops and TPS: {line}");
    };
    if ops <= 0.0 || tps <= 0.0 {
        bail!("memcaslap made no operations: {line}");
    }
    Ok(vec![metric("ops_per_s", "operations/s", tps, true), metric("ops", "operations", ops, true)])
}

/// redis-benchmark --csv: a header, then "\"SET\",\"49751.24\",..." per test.
fn parse_redis_csv(text: &str) -> Result<Vec<BenchMetric>> {
    let rps = |test: &str| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(',').map(|x| x.trim().trim_matches('"')).collect();
            (f.len() > 1 && f[0] == test).then(|| f[1].parse::<f64>().ok()).flatten()
        })
    };
    let (Some(set), Some(get)) = (rps("SET"), rps("GET")) else {
        bail!("redis-benchmark printed no SET and GET rates: {}", last_lines(text, 3));
    };
    Ok(vec![
        metric("requests_per_s", "requests/s", (set + get) / 2.0, true),
        metric("set_per_s", "requests/s", set, true),
        metric("get_per_s", "requests/s", get, true),
    ])
}

/// The unprivileged user PostgreSQL runs as (it refuses root).
const PG_USER: &str = "postgres";

/// The directory of PostgreSQL's server programs (initdb, postgres): Debian
/// keeps them in /usr/lib/postgresql/<version>/bin, off PATH.
fn pg_bin() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("postgres").is_file())
        .collect();
    found.sort();
    found.pop().context("PostgreSQL's server is not installed (Debian package postgresql; scripts/setup --apps installs it)")
}

/// PG_USER's uid and gid, from /etc/passwd.
fn pg_ids() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == PG_USER).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
        })
        .with_context(|| format!("no user {PG_USER} (the postgresql package creates it; scripts/setup --apps)"))
}

/// A command that runs as PG_USER (PostgreSQL refuses root).
fn as_pg(program: &Path, ids: (u32, u32)) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.uid(ids.0).gid(ids.1).env("HOME", "/tmp");
    cmd
}

/// A PostgreSQL set up for one run: its data directory and socket in the
/// run directory, which PG_USER owns meanwhile. However the run ends, the
/// server stops (fast shutdown, waited for), the data directory goes and
/// the run directory goes back to its owner.
struct Pg {
    server: Option<Server>,
    data: PathBuf,
    dir: PathBuf,
    owner: String,
}

impl Drop for Pg {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = Command::new("chown").args(["-R", &self.owner]).arg(&self.dir).status();
    }
}

/// postmaster.pid's eighth line says "ready" once the server accepts connections.
fn pg_ready(data: &Path) -> bool {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .map(|t| t.lines().nth(7).map(str::trim) == Some("ready"))
        .unwrap_or(false)
}

/// pgbench against a PostgreSQL started here: its data directory and
/// socket in the run directory (owned by the postgres user meanwhile),
/// scale 1 x units, one client per CPU for a few seconds; transactions/s.
fn pgbench(ctx: &Ctx, stats_on: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    let bin = pg_bin()?;
    tool("pgbench", "postgresql-client")?;
    let ids = pg_ids()?;
    let d = ctx.dir;
    let owner = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(d)?;
        format!("{}:{}", m.uid(), m.gid())
    };
    let mut pg = Pg { server: None, data: d.join("pgdata"), dir: d.to_path_buf(), owner };
    let _ = std::fs::remove_dir_all(&pg.data);
    std::fs::create_dir_all(&pg.data)?;
    let st = Command::new("chown").args(["-R", &format!("{}:{}", ids.0, ids.1)]).arg(d).status()?;
    if !st.success() {
        bail!("chown {PG_USER} {} failed: the postgres user must own its data directory", d.display());
    }
    let log = d.join("initdb.log");
    let out = std::fs::File::create(&log)?;
    let mut initdb = as_pg(&bin.join("initdb"), ids);
    initdb.arg("-D").arg(&pg.data).args(["-A", "trust", "--no-sync"]).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    let st = initdb.status().context("running initdb")?;
    if !st.success() {
        bail!("initdb failed ({st}): {}", last_lines(&std::fs::read_to_string(&log).unwrap_or_default(), 3));
    }
    let mut cmd = as_pg(&bin.join("postgres"), ids);
    cmd.arg("-D").arg(&pg.data).args([
        "-c",
        "listen_addresses=",
        "-c",
        &format!("unix_socket_directories={}", d.display()),
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        &format!("max_connections={}", 2 * ctx.cpus + 10),
        "-p",
        &ctx.port.to_string(),
    ]);
    let mut server = Server::start(cmd, None, d.join("server.log"))?;
    server.stop_signal = libc::SIGINT;
    let data = pg.data.clone();
    server.wait_ready(ctx.stop, || pg_ready(&data))?;
    pg.server = Some(server);
    let (host, port, scale) = (d.display().to_string(), ctx.port.to_string(), ctx.units().to_string());
    let common = ["-h", &host, "-p", &port, "-U", PG_USER];
    let mut init = Command::new("pgbench");
    init.args(["-i", "-q", "-s", &scale]).args(common).arg("postgres");
    run_tool(init, false, d, ctx.stop).context("pgbench -i (loading the tables)")?;
    let secs = match ctx.o.size {
        Size::Tiny => 2,
        Size::Quick => 5,
        Size::Full => 15,
    };
    let (clients, threads) = (ctx.cpus.to_string(), (ctx.cpus / 4).max(1).to_string());
    let args = ["-c", &clients, "-j", &threads, "-T", &secs.to_string(), "-n"];
    let mut cmd = Command::new("pgbench");
    cmd.args(args).args(common).arg("postgres");
    let (text, _, watched) = measured(cmd, ctx, stats_on)?;
    drop(pg);
    Ok((format!("pgbench {} (scale {scale})", args.join(" ")), parse_pgbench(&text)?, watched))
}

/// sysbench's OLTP read-write transactions against a MariaDB started here,
/// as root, with its data directory and socket in the run directory and no
/// network: one table of 10,000 x units rows, one client thread per CPU for
/// a few seconds; transactions/s. However the run ends, the server stops
/// and its data directory goes. With `fibo`, the paper's multi-application
/// case: as many CPU-bound threads as CPUs (Fibonacci::spin) run beside it
/// for exactly the measured phase, and their rate is a metric too.
fn sysbench(ctx: &Ctx, stats_on: bool, fibo: bool) -> Result<(String, Vec<BenchMetric>, Watched)> {
    struct Maria {
        server: Option<Server>,
        data: PathBuf,
    }
    impl Drop for Maria {
        fn drop(&mut self) {
            drop(self.server.take());
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
    tool("sysbench", "sysbench")?;
    let mut install = tool("mariadb-install-db", "mariadb-server")?;
    let mut server_cmd = tool("mariadbd", "mariadb-server")?;
    let mut client = tool("mariadb", "mariadb-client")?;
    // MariaDB reads relative paths against its base directory (/usr), not ours.
    let d = &std::path::absolute(ctx.dir)?;
    let mut maria = Maria { server: None, data: d.join("mariadb") };
    let _ = std::fs::remove_dir_all(&maria.data);
    let sock = d.join("mariadb.sock");
    let _ = std::fs::remove_file(&sock);
    let log = d.join("install.log");
    let out = std::fs::File::create(&log)?;
    install
        .arg("--no-defaults")
        .arg(format!("--datadir={}", maria.data.display()))
        .args(["--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let st = install.status().context("running mariadb-install-db")?;
    if !st.success() {
        // Its last lines are advice; the cause is the line that says ERROR.
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let cause = text.lines().find(|l| l.contains("[ERROR]")).map(str::to_string).unwrap_or_else(|| last_lines(&text, 3));
        bail!("mariadb-install-db failed ({st}): {cause} (its log: {})", log.display());
    }
    server_cmd
        .arg("--no-defaults")
        .arg(format!("--datadir={}", maria.data.display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--pid-file={}", d.join("mariadb.pid").display()))
        .arg(format!("--max-connections={}", 2 * ctx.cpus + 10))
        .args(["--skip-networking", "--user=root", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=128M"]);
    let mut server = Server::start(server_cmd, None, d.join("server.log"))?;
    let sock_ready = sock.clone();
    server.wait_ready(ctx.stop, || std::os::unix::net::UnixStream::connect(&sock_ready).is_ok())?;
    maria.server = Some(server);
    client.arg(format!("--socket={}", sock.display())).args(["--user=root", "-e", "CREATE DATABASE sbtest"]);
    run_tool(client, false, d, ctx.stop).context("creating sysbench's database")?;
    let (socket_arg, rows) = (format!("--mysql-socket={}", sock.display()), format!("--table-size={}", 10_000 * ctx.units()));
    let common = ["oltp_read_write", "--db-driver=mysql", &socket_arg, "--mysql-user=root", "--tables=1", &rows, "--rand-seed=1"];
    let mut prepare = Command::new("sysbench");
    prepare.args(common).arg("prepare");
    run_tool(prepare, false, d, ctx.stop).context("sysbench prepare (loading the table)")?;
    let secs = match ctx.o.size {
        Size::Tiny => 2,
        Size::Quick => 5,
        Size::Full => 15,
    };
    let (threads, time) = (format!("--threads={}", ctx.cpus), format!("--time={secs}"));
    let mut cmd = Command::new("sysbench");
    cmd.args(common).args([&threads, &time]).arg("run");
    let fib = fibo.then(|| Fibonacci::spin(ctx.cpus));
    let (text, _, watched) = measured(cmd, ctx, stats_on)?;
    let fib_rate = fib.map(Fibonacci::stop);
    drop(maria);
    let mut metrics = parse_sysbench(&text)?;
    let mut what = format!("sysbench {} {threads} {time} run", common.join(" "));
    if let Some(rate) = fib_rate {
        if rate <= 0.0 {
            bail!("fibo's threads computed nothing beside sysbench");
        }
        metrics.push(metric("fibo_per_s", "computations/s", rate, true));
        what += &format!(" beside fibo ({} threads, fib({FIB_N}) each time)", ctx.cpus);
    }
    Ok((what, metrics, watched))
}

/// fibo's unit of work: one recursive fib(FIB_N), about a million calls.
const FIB_N: u64 = 27;

fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(std::hint::black_box(n - 2))
    }
}

/// The paper's fibo: CPU-bound threads computing Fibonacci numbers, counted.
struct Fibonacci {
    stop: Arc<AtomicBool>,
    done: Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
    t0: Instant,
}

impl Fibonacci {
    fn spin(n: usize) -> Fibonacci {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::black_box(fib(std::hint::black_box(FIB_N)));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Fibonacci { stop, done, threads, t0: Instant::now() }
    }

    /// Stop the threads; fib(FIB_N) computations per second while they ran.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self.t0.elapsed().as_secs_f64();
        let n = self.done.load(Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        n as f64 / secs.max(1e-9)
    }
}

/// sysbench's report: "transactions: 8666 (2887.46 per sec.)", "queries:
/// ... (57749.28 per sec.)" and, under "Latency (ms):", "avg: 0.69" and
/// "95th percentile: 0.77"; the deadlocks it retried ("ignored errors") per second.
fn parse_sysbench(text: &str) -> Result<Vec<BenchMetric>> {
    let per_sec = |key: &str| {
        text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix(key)?;
            let inside = rest.split('(').nth(1)?.split_whitespace().next()?;
            inside.parse::<f64>().ok()
        })
    };
    let value = |key: &str| text.lines().find_map(|l| l.trim().strip_prefix(key)?.trim().parse::<f64>().ok());
    let (Some(tps), Some(qps), Some(avg)) = (per_sec("transactions:"), per_sec("queries:"), value("avg:")) else {
        bail!("sysbench printed no transactions, queries and average latency: {}", last_lines(text, 3));
    };
    let mut m = vec![
        metric("tps", "transactions/s", tps, true),
        metric("queries_per_s", "queries/s", qps, true),
        metric("latency_ms_mean", "ms", avg, false),
    ];
    // Deadlocks sysbench retried (its "ignored errors"): normal under
    // contention, and not counted as transactions; recorded, not fatal.
    if let Some(errors) = per_sec("ignored errors:") {
        m.push(metric("ignored_errors_per_s", "errors/s", errors, false));
    }
    if let Some(p95) = value("95th percentile:") {
        m.push(metric("latency_ms_p95", "ms", p95, false));
    }
    Ok(m)
}

/// pgbench: "tps = 1234.5 (without initial connection time)" and
/// "latency average = 1.234 ms".
fn parse_pgbench(text: &str) -> Result<Vec<BenchMetric>> {
    let tps = text.lines().find_map(|l| l.trim().strip_prefix("tps = ").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()));
    let lat = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("latency average = ").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()));
    let (Some(tps), Some(lat)) = (tps, lat) else {
        bail!("pgbench printed no tps and latency average: {}", last_lines(text, 3));
    };
    Ok(vec![metric("tps", "transactions/s", tps, true), metric("latency_ms_mean", "ms", lat, false)])
}

/// perf bench sched messaging: "Total time: 0.053 [sec]".
fn parse_perf_messaging(text: &str) -> Result<Vec<BenchMetric>> {
    let t = text.lines().find_map(|l| {
        l.trim().strip_prefix("Total time:").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    });
    match t {
        Some(t) if t > 0.0 => Ok(vec![metric("time_s", "s", t, false)]),
        Some(t) => bail!("perf bench sched messaging took {t} s: too short to measure"),
        None => bail!("perf bench sched messaging printed no Total time: {}", last_lines(text, 3)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(ms: &[BenchMetric], name: &str) -> f64 {
        ms.iter().find(|m| m.name == name).unwrap().value
    }

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 2s test @ http://127.0.0.1:18080/index.html\n  2 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   612.33us    1.02ms  21.20ms   93.11%\n    Req/Sec    28.12k     2.01k   31.55k    70.00%\n  Latency Distribution\n     50%  412.00us\n     75%  601.00us\n     90%    1.01ms\n     99%    5.55ms\n  112001 requests in 2.00s, 466.33MB read\nRequests/sec:  55923.41\nTransfer/sec:    232.85MB\n";
        let m = parse_wrk(text).unwrap();
        assert_eq!(value(&m, "requests_per_s"), 55923.41);
        assert_eq!(value(&m, "latency_ms_p99"), 5.55);
        assert_eq!(m[0].name, "requests_per_s");
        assert!(parse_wrk("Running 2s test\n").is_err());
        let errs = text.replace("Requests/sec", "  Socket errors: connect 0, read 2000, write 0, timeout 0\nRequests/sec");
        assert!(parse_wrk(&errs).unwrap_err().to_string().contains("2000 socket errors"));
        let few = text.replace("Requests/sec", "  Socket errors: connect 0, read 3, write 0, timeout 1\nRequests/sec");
        assert!(parse_wrk(&few).is_ok());
        let non2xx = text.replace("Requests/sec", "  Non-2xx or 3xx responses: 12\nRequests/sec");
        assert!(parse_wrk(&non2xx).is_err());
        assert!((duration_ms("456.5us").unwrap() - 0.4565).abs() < 1e-9 && duration_ms("2.00s") == Some(2000.0));
    }

    #[test]
    fn sysbench_report_is_read() {
        let text = "SQL statistics:\n    queries performed:\n        read:                            121324\n        total:                           173320\n    transactions:                        8666   (2887.46 per sec.)\n    queries:                             173320 (57749.28 per sec.)\n    ignored errors:                      0      (0.00 per sec.)\n    reconnects:                          0      (0.00 per sec.)\n\nLatency (ms):\n         min:                                    0.63\n         avg:                                    0.69\n         max:                                    4.27\n         95th percentile:                        0.77\n";
        let m = parse_sysbench(text).unwrap();
        assert_eq!(m[0].name, "tps");
        assert_eq!((value(&m, "tps"), value(&m, "queries_per_s")), (2887.46, 57749.28));
        assert_eq!((value(&m, "latency_ms_mean"), value(&m, "latency_ms_p95")), (0.69, 0.77));
        assert!(parse_sysbench("FATAL: unable to connect to MySQL server on socket\n").is_err());
        let errs = text.replace("ignored errors:                      0      (0.00 per sec.)", "ignored errors:                      12     (4.00 per sec.)");
        assert_eq!(value(&parse_sysbench(&errs).unwrap(), "ignored_errors_per_s"), 4.0);
    }

    #[test]
    fn memcaslap_summary_is_read() {
        let text = "servers: 127.0.0.1:18199\nthreads count: 2\ncmd_get: 327735\n\nRun time: 3.0s Ops: 364157 TPS: 121376 Net_rate: 135.8M/s\n";
        let m = parse_memcaslap(text).unwrap();
        assert_eq!((value(&m, "ops_per_s"), value(&m, "ops")), (121376.0, 364157.0));
        assert!(parse_memcaslap("servers: 127.0.0.1:18199\nmemcached server connection failed\n").is_err());
        assert!(parse_memcaslap("Run time: 3.0s Ops: 0 TPS: 0 Net_rate: 0.0M/s\n").is_err());
    }

    #[test]
    fn redis_benchmark_csv_is_read() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"40000.00\",\"0.700\",\"0.100\",\"0.600\",\"1.100\",\"2.000\",\"5.000\"\n\"GET\",\"60000.00\",\"0.500\",\"0.100\",\"0.400\",\"0.900\",\"1.500\",\"4.000\"\n";
        let m = parse_redis_csv(text).unwrap();
        assert_eq!(value(&m, "requests_per_s"), 50000.0);
        assert_eq!(value(&m, "get_per_s"), 60000.0);
        assert!(parse_redis_csv("\"test\",\"rps\"\n\"SET\",\"1.0\"\n").is_err());
    }

    #[test]
    fn x264_pgbench_perf_and_stats_outputs_are_read() {
        assert_eq!(parse_x264("x264 [info]: kb/s:1234.5\nencoded 32 frames, 12.34 fps, 567.89 kb/s\n").unwrap(), 12.34);
        assert!(parse_x264("x264 [error]: could not open input file\n").is_err());
        let pg = "transaction type: <builtin: TPC-B (sort of)>\nnumber of clients: 8\nlatency average = 3.210 ms\ninitial connection time = 12.3 ms\ntps = 2491.9 (without initial connection time)\n";
        let m = parse_pgbench(pg).unwrap();
        assert_eq!((value(&m, "tps"), value(&m, "latency_ms_mean")), (2491.9, 3.21));
        assert!(parse_pgbench("pgbench: error: connection to server failed\n").is_err());
        assert_eq!(value(&parse_perf_messaging("# 1 groups == 40 processes run\n\n     Total time: 0.053 [sec]\n").unwrap(), "time_s"), 0.053);
        assert!(parse_perf_messaging("     Total time: 0.000 [sec]\n").is_err());
        assert_eq!(parse_perf_stat("# started on Mon\n\n9,,cpu-migrations,1958473206,100.00,,\n", "cpu-migrations"), Some(9));
        assert_eq!(parse_perf_stat("<not counted>,,cpu-migrations,0,0.00,,\n", "cpu-migrations"), None);
        let c = parse_stats_answer("{\"errno\":0,\"args\":{\"resp\":{\"policy\":\"cfs\",\"uptime_s\":1.5,\"enqueue\":12,\"lb_attempt\":3}}}").unwrap();
        assert_eq!((c["enqueue"], c["lb_attempt"], c.len()), (12, 3, 2));
        assert!(parse_stats_answer("{\"errno\":2,\"args\":{}}").is_none());
    }

    #[test]
    fn the_generator_is_deterministic() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        assert!((0..100).all(|_| a.next() == b.next()));
    }
}
