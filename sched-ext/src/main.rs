// SPDX-License-Identifier: GPL-2.0-only
//! scx_battle: loader for the sched_ext scheduler in bpf/.
//!
//! Checks that the machine can take a sched_ext scheduler, loads the BPF
//! program with the chosen policy, attaches it (every task is then scheduled
//! by it), and runs until SIGINT/SIGTERM or until the kernel ends it. When the
//! kernel asks for a restart (CPU hotplug) it loads the scheduler again.

mod bpf_intf;
// The CPU limit the study's tools publish (rundata) is these tables' size.
const _: () = assert!(bpf_intf::consts_MAX_CPUS as usize == rundata::SCHED_MAX_CPUS);
mod bpf_skel;
mod policy;
mod stats;
mod topo;

use std::mem::MaybeUninit;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use libbpf_rs::OpenObject;
use scx_utils::{scx_ops_attach, scx_ops_load, scx_ops_open, uei_exited, uei_report, ScxExitKind};

use bpf_skel::*;
use policy::{Comp, Part, Policy};
use stats::Counters;

const SCHED_EXT_DIR: &str = "/sys/kernel/sched_ext";

/// sched_ext scheduler for the ULE vs CFS study.
#[derive(Debug, Parser)]
#[command(name = "scx_battle", version)]
struct Opts {
    /// Scheduling policy: vtime (one weighted-vtime queue), cfs (Linux CFS), ule (FreeBSD ULE),
    /// or QUEUE-PLACE-BALANCE, each cfs or ule: the run queue, the placement of waking and new
    /// tasks, and the balancer of one and the other (cfs-cfs-ule: CFS with ULE's balancer).
    /// --list-policies prints them all.
    #[arg(long, default_value = "vtime", value_parser = parse_policy)]
    policy: Policy,

    /// vtime policy: longest time slice, in microseconds.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    slice_us: u64,

    /// vtime policy: shortest time slice when many tasks wait, in microseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=1_000_000))]
    slice_min_us: u64,

    /// Print the scheduler's event counters every SECS seconds (0.1 to 3600).
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    stats: Option<f64>,

    /// Stall limit: the kernel ends the scheduler if a runnable task waits this long, in ms
    /// [default: 30000, the kernel's maximum: the policies' own rules let 512 threads on one core
    /// wait longer than 10 s (ULE's ~16 ms slice floor; CFS's START_DEBIT of up to sched_latency
    /// for a thread forked by another class, which the crowded queue covers at 1/512 of real time)].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1000..=WATCHDOG_MAX_MS as i64))]
    watchdog_ms: Option<u32>,

    /// Bytes of kernel debug dump to keep when the scheduler exits with an error (0: kernel default).
    #[arg(long, default_value_t = 0)]
    exit_dump_len: u32,

    /// Print libbpf's messages while loading.
    #[arg(short, long)]
    verbose: bool,

    /// Under ULE, the threads whose name starts with PREFIX: with --stats, print their
    /// classification; with --tasks-csv, record it.
    #[arg(long, value_name = "PREFIX")]
    stats_tasks: Option<String>,

    /// Under ULE, append the classification of the --stats-tasks threads to FILE every 100 ms:
    /// mono_ns,tid,comm,score,pri,nice,queue,run_ms,sleep_ms,starved (mono_ns on
    /// CLOCK_MONOTONIC, the clock of loadgen's t0_monotonic_ns; starved counts the
    /// starvation guard's rescues of the thread).
    #[arg(long, value_name = "FILE", requires = "stats_tasks")]
    tasks_csv: Option<PathBuf>,

    /// Load nothing: print the counters of the scx_battle that is running every SECS
    /// seconds, read over its scx_stats socket (/var/run/scx/root/stats), as --stats does.
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    monitor: Option<f64>,

    /// Describe every counter (of --stats, --stats-csv, --monitor and the scx_stats JSON)
    /// and exit.
    #[arg(long)]
    help_stats: bool,

    /// Append the event counters (as --stats names them, cumulative since the load) to FILE
    /// every 100 ms: mono_ns, then one column per counter (mono_ns on CLOCK_MONOTONIC, the
    /// clock of loadgen's t0_monotonic_ns, so the counters line up with a run's timeline).
    #[arg(long, value_name = "FILE")]
    stats_csv: Option<PathBuf>,

    /// Print the policies, one per line, and exit.
    #[arg(long)]
    list_policies: bool,

    /// Count what each hot callback looks at (CPUs, groups, queued tasks), printed with
    /// --stats as a `stats cost total` line at exit (scripts/bench-cost). Off by default:
    /// the counting costs a few map lookups in every select_cpu, enqueue and dispatch.
    #[arg(long)]
    costs: bool,

    #[command(flatten)]
    cfs: CfsOpts,

    #[command(flatten)]
    ule: UleOpts,

    /// The options given on the command line (their clap ids), for Opts::check.
    #[arg(skip)]
    given: Vec<String>,
}

/// The vtime policy's own options (the others' are UleOpts and CfsOpts).
const VTIME_KNOBS: [&str; 2] = ["slice_us", "slice_min_us"];

/// The clap ids of a group of options.
#[cfg(test)]
fn arg_ids<T: clap::Args>() -> Vec<String> {
    T::augment_args(clap::Command::new("ids")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

impl Opts {
    /// Parse a command line, remembering which options it gave.
    fn parse_from<I, T>(args: I) -> std::result::Result<Opts, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Opts::command().try_get_matches_from(args)?;
        let mut opts = Opts::from_arg_matches(&matches)?;
        opts.given = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| id.to_string())
            .collect();
        Ok(opts)
    }

    /// A knob of a component that is not selected does nothing: refuse it.
    fn check_knobs(&self) -> Result<()> {
        for id in &self.given {
            let flag = id.replace('_', "-");
            if VTIME_KNOBS.contains(&id.as_str()) && self.policy != Policy::Vtime {
                bail!("--{flag} is an option of the vtime policy: it does nothing under --policy {}", self.policy);
            }
            let Some(owners) = knob_owners(id) else { continue };
            if !owners.iter().any(|&(c, part)| self.policy.comp(part) == Some(c)) {
                let of: Vec<String> = owners.iter().map(|(c, part)| format!("{}'s {}", c.name().to_uppercase(), part.name())).collect();
                bail!(
                    "--{flag} is an option of {}: it does nothing under --policy {} ({})",
                    of.join(" and "),
                    self.policy,
                    self.policy.describe()
                );
            }
        }
        Ok(())
    }
}

/// Which components read a knob of CfsOpts or UleOpts (the BPF side's
/// split, components.bpf.h); None for an option of no component.
fn knob_owners(id: &str) -> Option<&'static [(Comp, Part)]> {
    use Comp::*;
    use Part::*;
    Some(match id {
        "sched_latency_us" | "sched_min_granularity_us" | "sched_wakeup_granularity_us" => &[(Cfs, Queue)],
        // wake_affine reads them too.
        "imbalance_pct_smt" | "imbalance_pct_llc" | "imbalance_pct_numa" => &[(Cfs, Place), (Cfs, Balance)],
        "sched_migration_cost_us" | "sched_nr_migrate" | "busy_factor" => &[(Cfs, Balance)],
        "affinity_us" => &[(Ule, Place)],
        "interact" | "preempt_thresh" | "quantum_us" | "starve_ms" | "static_boost" => &[(Ule, Queue)],
        "balance" | "balance_interval_ms" | "steal_idle" | "steal_thresh" => &[(Ule, Balance)],
        _ => return None,
    })
}

fn parse_policy(s: &str) -> std::result::Result<Policy, String> {
    s.parse()
}

/// static_boost is 0 (off) or a timeshare priority. FreeBSD's 1 ("the
/// priority the sleep asked for") has no counterpart: sched_ext does not
/// see the sleep's priority.
fn parse_static_boost(s: &str) -> std::result::Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    // PRI_MIN_TIMESHARE and PRI_MAX_TIMESHARE (sys/sys/priority.h; ule_arith.h).
    let (lo, hi) = (120, 223);
    if v == 0 || (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is neither 0 (off) nor a timeshare priority ({lo}..={hi})"))
    }
}

/// The ULE policy's knobs, named after FreeBSD's kern.sched sysctls. FreeBSD
/// counts some in clock ticks; here they are in us or ms, as named.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "ULE policy")]
struct UleOpts {
    /// kern.sched.interact: a thread is interactive while its score + nice is below this.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100))]
    interact: u32,
    /// kern.sched.preempt_thresh: a waking thread of this priority or better always preempts (0: never).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u32).range(0..=255))]
    preempt_thresh: u32,
    /// kern.sched.quantum: the slice of a CPU with at most 2 threads, in us (12 ticks of stathz 127);
    /// the shortest slice is a sixth of it.
    #[arg(long, default_value_t = 94_488, value_parser = clap::value_parser!(u64).range(1_000..=1_000_000))]
    quantum_us: u64,
    /// kern.sched.affinity: how long a thread stays cache-warm on its CPU, per cache level, in us.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    affinity_us: u64,
    /// kern.sched.balance: run CPU 0's periodic balancer (1) or not (0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    balance: u32,
    /// kern.sched.balance_interval: mean period of the balancer, in ms (each wait is 0.5x..1.5x).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(2..=60_000))]
    balance_interval_ms: u32,
    /// kern.sched.steal_idle: a CPU with nothing to run steals a queued thread (1) or not (0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    steal_idle: u32,
    /// kern.sched.steal_thresh: threads a CPU must hold before an idle CPU steals from it.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    steal_thresh: u32,
    /// kern.sched.static_boost: a batch thread waking from a sleep is queued at this priority
    /// (152, PRI_MIN_BATCH: the best batch priority) until it runs (0: off; 120..=223).
    #[arg(long, default_value_t = 152, value_parser = parse_static_boost)]
    static_boost: u32,
    /// sched_ext only: a queued thread that has waited this long runs next, in ms, so ULE's
    /// starvation of batch threads stays under the watchdog's limit (0: no limit, and the
    /// watchdog ends the scheduler instead) [default: half of --watchdog-ms].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=30_000))]
    starve_ms: Option<u32>,
}

/// The CFS policy's knobs, with Linux's names. The first three default to
/// Linux's base value x (1 + ilog2(min(CPUs, 8))), as Linux scales them.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "CFS policy")]
struct CfsOpts {
    /// sched_latency: the period every runnable task gets a turn in, in us [default: 6000 x factor].
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    sched_latency_us: Option<u64>,
    /// sched_min_granularity: the shortest slice, in us [default: 750 x factor].
    #[arg(long, value_parser = clap::value_parser!(u64).range(50..=1_000_000))]
    sched_min_granularity_us: Option<u64>,
    /// sched_wakeup_granularity: vruntime lead a waking task needs to preempt, in us [default: 1000 x factor].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    sched_wakeup_granularity_us: Option<u64>,
    /// sched_migration_cost: a task that ran this recently is cache-hot, in us.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    sched_migration_cost_us: u64,
    /// sched_nr_migrate: most tasks one balance pass moves.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    sched_nr_migrate: u32,
    /// busy_factor: balance intervals are this many times longer on a busy CPU.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    busy_factor: u32,
    /// imbalance_pct of SMT domains: balance only above this percent of the local load.
    #[arg(long, default_value_t = 110, value_parser = clap::value_parser!(u32).range(100..=1000))]
    imbalance_pct_smt: u32,
    /// imbalance_pct of LLC (MC) domains.
    #[arg(long, default_value_t = 117, value_parser = clap::value_parser!(u32).range(100..=1000))]
    imbalance_pct_llc: u32,
    /// imbalance_pct of NUMA node and machine domains (the 25% rule).
    #[arg(long, default_value_t = 125, value_parser = clap::value_parser!(u32).range(100..=1000))]
    imbalance_pct_numa: u32,
}

/// The kernel's longest watchdog limit (SCX_WATCHDOG_MAX_TIMEOUT), in ms.
const WATCHDOG_MAX_MS: u32 = 30_000;

/// Linux's scaling of its latency knobs with the CPU count.
fn cfs_factor(nr_cpus: usize) -> u64 {
    1 + (nr_cpus.clamp(1, 8) as u64).ilog2() as u64
}

fn parse_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{v} s is outside 0.1..=3600"));
    }
    Ok(v)
}

impl Opts {
    fn check(&self) -> Result<()> {
        self.check_knobs()?;
        if self.slice_min_us > self.slice_us {
            bail!(
                "--slice-min-us ({}) must not exceed --slice-us ({})",
                self.slice_min_us,
                self.slice_us
            );
        }
        if self.stats_tasks.is_some() && self.stats.is_none() && self.tasks_csv.is_none() {
            bail!("--stats-tasks needs --stats or --tasks-csv");
        }
        if (self.stats_tasks.is_some() || self.tasks_csv.is_some()) && self.policy.comp(Part::Queue) != Some(Comp::Ule) {
            bail!("--stats-tasks and --tasks-csv show ULE's classification: use them with ULE's run queue (--policy ule, or ule-*-*)");
        }
        if self.starve_ms() >= self.watchdog_ms() {
            bail!("--starve-ms ({}) must be below --watchdog-ms ({})", self.starve_ms(), self.watchdog_ms());
        }
        Ok(())
    }

    /// The watchdog's limit, in ms: --watchdog-ms, or the policy's default.
    fn watchdog_ms(&self) -> u32 {
        self.watchdog_ms.unwrap_or(WATCHDOG_MAX_MS)
    }

    /// ULE's starvation guard, in ms: --starve-ms, or half the watchdog's limit.
    fn starve_ms(&self) -> u32 {
        self.ule.starve_ms.unwrap_or(self.watchdog_ms() / 2)
    }
}

/// Refuse early, with a clear reason, where loading cannot work.
fn preflight(sched_ext_dir: &Path) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("must run as root: loading a sched_ext scheduler needs CAP_SYS_ADMIN and CAP_BPF");
    }
    if !sched_ext_dir.is_dir() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        bail!(
            "the running kernel ({}) has no sched_ext: {} is missing (CONFIG_SCHED_CLASS_EXT is off). \
             Boot a kernel with sched_ext, or use scripts/vm to run in a VM that has one",
            release.trim(),
            sched_ext_dir.display()
        );
    }
    // A kernel older than the sched_ext kfuncs we call would fail in the
    // verifier with a dump; name what is missing instead.
    // (Only a kernel that has sched_ext at all: tests stand a fake sysfs dir in.)
    if let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux").map(|b| b).and_then(|b| {
        let has_scx = b.windows(15).any(|w| w == b"\0sched_ext_ops\0".as_slice());
        Ok(if has_scx { b } else { Vec::new() })
    }) {
        let missing = if btf.is_empty() { Vec::new() } else { missing_kfuncs(&btf) };
        if !missing.is_empty() {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            bail!(
                "the running kernel ({}) lacks the sched_ext kfuncs {} (added in Linux 6.13); scx_battle needs \
                 6.13 or newer and is tested on 6.19 and 7.3. Boot a newer kernel, or use scripts/vm",
                release.trim(),
                missing.join(", ")
            );
        }
    }
    let state = std::fs::read_to_string(sched_ext_dir.join("state"))
        .with_context(|| format!("reading {}/state", sched_ext_dir.display()))?;
    if state.trim() != "disabled" {
        let ops = std::fs::read_to_string(sched_ext_dir.join("root/ops")).unwrap_or_default();
        bail!(
            "another sched_ext scheduler is already running (state '{}', ops '{}'); stop it first",
            state.trim(),
            ops.trim()
        );
    }
    Ok(())
}

/// The sched_ext kfuncs scx_battle calls that older kernels named otherwise
/// (before 6.13: scx_bpf_dispatch*, scx_bpf_consume), absent from `btf` (the
/// kernel's BTF, whose string table holds every function name).
fn missing_kfuncs(btf: &[u8]) -> Vec<&'static str> {
    const NEEDED: [&str; 5] =
        ["scx_bpf_dsq_insert", "scx_bpf_dsq_insert_vtime", "scx_bpf_dsq_move_to_local", "scx_bpf_dsq_move", "scx_bpf_dsq_move_vtime"];
    NEEDED
        .into_iter()
        .filter(|name| {
            let pat: Vec<u8> = [&[0u8][..], name.as_bytes(), &[0u8][..]].concat();
            !btf.windows(pat.len()).any(|w| w == pat.as_slice())
        })
        .collect()
}

/// How often --tasks-csv records the classification.
/// How often --tasks-csv and --stats-csv get a record.
const TASKS_CSV_EVERY: Duration = Duration::from_millis(100);

/// CLOCK_MONOTONIC in ns: the clock of loadgen's t0_monotonic_ns.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A CSV file for a record, created with its header.
fn csv_file(path: &std::path::Path, header: &str) -> Result<std::io::BufWriter<std::fs::File>> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    writeln!(w, "{header}").with_context(|| format!("writing {}", path.display()))?;
    Ok(w)
}

/// One thread's ULE classification, as ule_note_task last published it.
struct UleTask {
    tid: u32,
    comm: String,
    info: bpf_intf::ule_task_info,
}

impl UleTask {
    fn queue(&self) -> &'static str {
        ["interactive", "batch", "idle"].get(self.info.queue as usize).copied().unwrap_or("?")
    }
}

/*
 * What outlives one load of the scheduler: the kernel may end it and ask for
 * a restart (CPU hotplug), and the records go on across restarts. Created
 * once, so a restart neither truncates a CSV nor binds the stats socket again.
 */
struct Outputs {
    tasks_csv: Option<std::io::BufWriter<std::fs::File>>,
    stats_csv: Option<std::io::BufWriter<std::fs::File>>,
    /// scx_stats' socket server (--monitor and other clients); none if it could not start.
    stats_server: Option<scx_stats::prelude::StatsServer<(), stats::Metrics>>,
    /// The counters of the loads before this one: --stats-csv and --monitor
    /// count from the first load, so a restart does not set them back.
    earlier: Counters,
    /// When the first load began (--monitor's uptime).
    start: Instant,
}

impl Outputs {
    fn open(opts: &Opts) -> Result<Self> {
        Ok(Outputs {
            tasks_csv: opts.tasks_csv.as_deref().map(|p| csv_file(p, rundata::ULE_TASKS_HEADER)).transpose()?,
            stats_csv: opts
                .stats_csv
                .as_deref()
                .map(|p| csv_file(p, &format!("{},{}", rundata::SCHED_STATS_TIME_COLUMN, stats::NAMES.join(","))))
                .transpose()?,
            stats_server: match scx_stats::prelude::StatsServer::new(stats::server_data()).launch() {
                Ok(server) => Some(server),
                Err(e) => {
                    eprintln!("scx_battle: warning: no scx_stats socket (--monitor will not reach us): {e:#}");
                    None
                }
            },
            earlier: Counters::default(),
            start: Instant::now(),
        })
    }
}

struct Scheduler<'a> {
    skel: BpfSkel<'a>,
    link: Option<libbpf_rs::Link>,
    stats_every: Option<Duration>,
    /// --costs: the BPF side counts, and the exit prints, the work per call.
    costs: bool,
    stats_tasks: Option<String>,
    out: Outputs,
    policy: Policy,
    nr_cpu_ids: usize,
}

impl<'a> Scheduler<'a> {
    /// Open the BPF program, fill in the machine and the policy's knobs,
    /// load and attach it.
    fn init(opts: &Opts, open_object: &'a mut MaybeUninit<OpenObject>, out: Outputs) -> Result<Self> {
        let machine = topo::Machine::detect()?;
        machine.check_fits(bpf_intf::consts_MAX_CPUS as usize)?;
        eprintln!("scx_battle: policy {} ({}) on {}", opts.policy, opts.policy.describe(), machine.summary());
        // The domains both policies build from it: CFS balances level by level
        // over the real ones; ULE's sched_pickcpu/sched_lowest walk the same
        // tree (machine -> node -> LLC -> core -> SMT thread).
        let doms = topo::domains(&machine.cpus);
        for line in topo::describe_domains(&machine.cpus, &doms) {
            eprintln!("scx_battle: domain {line}");
        }

        let mut builder = BpfSkelBuilder::default();
        builder.obj_builder.debug(opts.verbose);
        let mut skel = scx_ops_open!(
            builder,
            open_object,
            battle_ops,
            None::<libbpf_rs::libbpf_sys::bpf_object_open_opts>
        )?;
        name_ops(&mut skel, opts.policy);

        let rodata = skel.maps.rodata_data.as_mut().unwrap();
        (rodata.queue_comp, rodata.place_comp, rodata.balance_comp) = policy::bpf_values(opts.policy);
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.slice_min_ns = opts.slice_min_us * 1000;
        rodata.nr_cpus = machine.nr_cpus as u32;
        rodata.track_costs = opts.costs as u32;
        if opts.policy == Policy::Vtime {
            eprintln!("scx_battle: vtime: slice {} us (min {} us)", opts.slice_us, opts.slice_min_us);
        }
        set_topology(rodata, &machine, &doms)?;
        set_cfs_knobs(rodata, opts, &machine, &doms);
        set_ule_knobs(rodata, opts, &machine, &doms);
        skel.maps.data_data.as_mut().unwrap().sched_nr_migrate = opts.cfs.sched_nr_migrate;

        let ops = skel.struct_ops.battle_ops_mut();
        ops.timeout_ms = opts.watchdog_ms();
        ops.exit_dump_len = opts.exit_dump_len;
        if opts.policy != Policy::Vtime {
            // Run ops.dispatch at every slice end, so a CPU with one task balances too
            // (CFS) and CPU 0 reaches its balancer (ULE).
            ops.flags |= *scx_utils::compat::SCX_OPS_ENQ_LAST;
        }

        // SCX_BATTLE_VERIFIER_LOG=N (with --verbose): the verifier's log at
        // level N for every program (4: its statistics), to see which one
        // costs a kernel's verifier the most.
        if let Ok(level) = std::env::var("SCX_BATTLE_VERIFIER_LOG") {
            let level = level.parse().context("SCX_BATTLE_VERIFIER_LOG must be a number")?;
            for mut prog in libbpf_rs::skel::OpenSkel::open_object_mut(&mut skel).progs_mut() {
                prog.set_log_level(level);
            }
        }
        let mut skel = scx_ops_load!(skel, battle_ops, uei)?;
        let link = scx_ops_attach!(skel, battle_ops)?;
        eprintln!("scx_battle: attached");

        Ok(Scheduler {
            skel,
            link: Some(link),
            stats_every: opts.stats.map(Duration::from_secs_f64),
            costs: opts.costs,
            stats_tasks: opts.stats_tasks.clone(),
            out,
            policy: opts.policy,
            nr_cpu_ids: machine.cpus.iter().map(|c| c.cpu + 1).max().unwrap_or(1),
        })
    }

    /// This load's counters.
    fn counters(&self) -> Result<Counters> {
        Counters::read(&self.skel.maps.stats)
    }

    /// The counters since the first load (this one's plus the earlier loads').
    fn counters_since_start(&self) -> Result<Counters> {
        let mut c = self.counters()?;
        c.add(&self.out.earlier);
        Ok(c)
    }

    /// "cpus nr=[..] load=[..]": tasks and load (sum of weights) per CPU.
    fn cpu_line(&self) -> Result<String> {
        use libbpf_rs::{MapCore, MapFlags};
        let (mut nr, mut load) = (Vec::new(), Vec::new());
        for cpu in 0..self.nr_cpu_ids {
            let v = self
                .skel
                .maps
                .cpu_ctxs
                .lookup(&(cpu as u32).to_ne_bytes(), MapFlags::ANY)?
                .context("cpu_ctxs entry")?;
            let off_load = std::mem::offset_of!(bpf_intf::cpu_ctx, load);
            let off_nr = std::mem::offset_of!(bpf_intf::cpu_ctx, nr_running);
            load.push(u64::from_ne_bytes(v[off_load..off_load + 8].try_into().unwrap()));
            nr.push(u32::from_ne_bytes(v[off_nr..off_nr + 4].try_into().unwrap()));
        }
        let join = |v: Vec<String>| v.join(",");
        Ok(format!(
            "stats cpus nr={} load={}",
            join(nr.iter().map(|n| n.to_string()).collect()),
            join(load.iter().map(|l| l.to_string()).collect())
        ))
    }

    /// "ule queues rt=[..] ts=[..] idle=[..]": threads waiting in each ULE queue, per CPU.
    fn ule_queue_line(&self) -> Result<String> {
        use libbpf_rs::{MapCore, MapFlags};
        let mut cols: [Vec<String>; 3] = Default::default();
        let off = std::mem::offset_of!(bpf_intf::ule_tdq, nr_queued);
        for cpu in 0..self.nr_cpu_ids {
            let v = self
                .skel
                .maps
                .ule_tdqs
                .lookup(&(cpu as u32).to_ne_bytes(), MapFlags::ANY)?
                .context("ule_tdqs entry")?;
            for (q, col) in cols.iter_mut().enumerate() {
                let o = off + 4 * q;
                col.push(i32::from_ne_bytes(v[o..o + 4].try_into().unwrap()).to_string());
            }
        }
        Ok(format!("stats ule queues rt={} ts={} idle={}", cols[0].join(","), cols[1].join(","), cols[2].join(",")))
    }

    /// "ule task tid=.. comm=.. score=.. pri=.. queue=..": ULE's view of matching threads.
    /// The threads whose name starts with `prefix`, by tid.
    fn ule_tasks(&self, prefix: &str) -> Result<Vec<UleTask>> {
        use libbpf_rs::{MapCore, MapFlags};
        let map = &self.skel.maps.ule_tasks;
        let mut out = Vec::new();
        for key in map.keys() {
            let Some(v) = map.lookup(&key, MapFlags::ANY)? else { continue };
            if v.len() < std::mem::size_of::<bpf_intf::ule_task_info>() || key.len() < 4 {
                continue;
            }
            // SAFETY: the value has the C layout of ule_task_info (bpf/scheduler/intf.h), checked by size.
            let info: bpf_intf::ule_task_info = unsafe { std::ptr::read_unaligned(v.as_ptr().cast()) };
            let comm: Vec<u8> = info.comm.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
            let comm = String::from_utf8_lossy(&comm).into_owned();
            if comm.starts_with(prefix) {
                out.push(UleTask { tid: u32::from_ne_bytes(key[..4].try_into().unwrap()), comm, info });
            }
        }
        out.sort_by_key(|t| t.tid);
        Ok(out)
    }

    fn ule_task_lines(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .ule_tasks(prefix)?
            .iter()
            .map(|t| {
                format!(
                    "stats ule task tid={} comm={} score={} pri={} nice={} queue={} run_ms={} sleep_ms={} starved={}",
                    t.tid,
                    t.comm,
                    t.info.score,
                    t.info.pri,
                    t.info.nice,
                    t.queue(),
                    t.info.runtime_ns / 1_000_000,
                    t.info.slptime_ns / 1_000_000,
                    t.info.starved
                )
            })
            .collect())
    }

    /// One --stats-csv line: every counter, summed over CPUs, since the first load.
    fn record_counters(&mut self) -> Result<()> {
        if self.out.stats_csv.is_none() {
            return Ok(());
        }
        let now = self.counters_since_start()?;
        let w = self.out.stats_csv.as_mut().unwrap();
        let cols: Vec<String> = now.0.iter().map(|v| v.to_string()).collect();
        writeln!(w, "{},{}", mono_ns(), cols.join(","))?;
        w.flush().context("writing --stats-csv")?;
        Ok(())
    }

    /// One --tasks-csv record of every chosen thread.
    fn record_tasks(&mut self) -> Result<()> {
        let (Some(prefix), Some(_)) = (&self.stats_tasks, &self.out.tasks_csv) else { return Ok(()) };
        let tasks = self.ule_tasks(prefix)?;
        let mono_ns = mono_ns();
        let w = self.out.tasks_csv.as_mut().unwrap();
        for t in &tasks {
            writeln!(
                w,
                "{mono_ns},{},{},{},{},{},{},{:.3},{:.3},{}",
                t.tid,
                t.comm.replace(',', "_"),
                t.info.score,
                t.info.pri,
                t.info.nice,
                t.queue(),
                t.info.runtime_ns as f64 / 1e6,
                t.info.slptime_ns as f64 / 1e6,
                t.info.starved
            )?;
        }
        // Whole records on disk, whatever ends the scheduler.
        w.flush().context("writing --tasks-csv")?;
        Ok(())
    }

    /// Run until asked to stop or ended by the kernel; detach; report the exit.
    fn run(&mut self, shutdown: &AtomicBool, totals: &mut Counters) -> Result<Exit> {
        let start = Instant::now();
        let mut last = Counters::default();
        let mut next_stats = self.stats_every.map(|d| start + d);
        let mut next_tasks = start;

        let stats_chs = self.out.stats_server.as_ref().map(|server| server.channels());
        while !shutdown.load(Ordering::Relaxed) && !uei_exited!(&self.skel, uei) {
            std::thread::sleep(Duration::from_millis(50));
            if let Some((res, req)) = &stats_chs {
                while req.try_recv().is_ok() {
                    let policy = self.policy.to_string();
                    res.send(stats::Metrics::new(&policy, self.out.start.elapsed().as_secs_f64(), &self.counters_since_start()?))?;
                }
            }
            if (self.out.tasks_csv.is_some() || self.out.stats_csv.is_some()) && Instant::now() >= next_tasks {
                self.record_tasks()?;
                self.record_counters()?;
                next_tasks += TASKS_CSV_EVERY;
            }
            if let (Some(due), Some(every)) = (next_stats, self.stats_every) {
                if Instant::now() >= due {
                    let now = self.counters()?;
                    let label = format!("t={:.1}s", start.elapsed().as_secs_f64());
                    println!("{}", now.since(&last).line(&label));
                    if self.policy != Policy::Vtime {
                        println!("{}", self.cpu_line()?);
                    }
                    if self.policy.comp(Part::Queue) == Some(Comp::Ule) {
                        println!("{}", self.ule_queue_line()?);
                        if let Some(prefix) = &self.stats_tasks {
                            for line in self.ule_task_lines(prefix)? {
                                println!("{line}");
                            }
                        }
                    }
                    last = now;
                    next_stats = Some(due + every);
                }
            }
        }

        // Final counters before detaching: the maps go away with the skeleton.
        totals.add(&self.counters()?);
        // The last line: what happened since the last 100 ms tick.
        self.record_counters()?;
        if let Some(w) = self.out.tasks_csv.as_mut() {
            w.flush().context("writing --tasks-csv")?;
        }
        if self.stats_every.is_some() && self.costs {
            println!("{}", stats::Costs::read(&self.skel.maps.costs)?.line("total"));
        }
        self.link.take();
        let uei = &self.skel.maps.data_data.as_ref().context("the scheduler's .data")?.uei;
        let (kind, msg) = (uei.kind, c_chars(&uei.msg));
        let info = uei_report!(&self.skel, uei)?;
        Ok(Exit { kind, should_restart: info.should_restart(), code: info.exit_code().unwrap_or(0), msg })
    }
}

/// How one load of the scheduler ended (an error exit is an Err instead).
struct Exit {
    /// The kernel's scx_exit_kind.
    kind: i32,
    should_restart: bool,
    code: i64,
    msg: String,
}

/// A C string in a fixed array.
fn c_chars(a: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = a.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What to do after a load ended without an error.
#[derive(Debug, PartialEq)]
enum AfterExit {
    /// We asked (SIGINT, SIGTERM): done.
    Stop,
    /// The kernel unloaded us for a CPU hotplug: load again.
    Restart,
    /// Unloaded without being asked and without a restart request: the
    /// machine would go on under the kernel's scheduler with nobody told.
    Lost,
}

/// The kernel ends a scheduler when a CPU comes or goes and asks for a
/// restart (SCX_ECODE_ACT_RESTART). It does the same when a hotplug happened
/// while the scheduler was loading ("expected hotplug seq N did not match
/// actual M"), which a restart right after a hotplug can meet. An exit of
/// the kernel's (SCX_EXIT_UNREG_KERN) that names a hotplug restarts too,
/// whatever its code says.
fn after_exit(requested: bool, e: &Exit) -> AfterExit {
    if requested {
        AfterExit::Stop
    } else if e.should_restart || (e.kind == ScxExitKind::UnregKern as i32 && e.msg.contains("hotplug")) {
        AfterExit::Restart
    } else {
        AfterExit::Lost
    }
}

/// More restarts than this within RESTART_WINDOW end scx_battle with an
/// error: a machine hot-plugging CPUs without pause, or a scheduler that
/// cannot come back.
const MAX_RESTARTS: usize = 10;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Route scx_utils' log::warn!/info! to stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("scx_battle: {}: {}", r.level().as_str().to_lowercase(), r.args());
        }
    }
    fn flush(&self) {}
}

/// Name the policy in the ops name (root/ops, and loadgen's meta.json):
/// "scx_battle_<policy>_<version>", a mix's dashes as dots (Policy::ops_name).
fn name_ops(skel: &mut OpenBpfSkel, policy: Policy) {
    {
        let name = &mut skel.struct_ops.battle_ops_mut().name;
        let cur: String = name.iter().take_while(|&&c| c != 0).map(|&c| c as u8 as char).collect();
        let new = cur.replacen("scx_battle", &format!("scx_battle_{}", policy.ops_name()), 1);
        let bytes = new.as_bytes();
        let n = bytes.len().min(name.len() - 1);
        for (dst, &b) in name.iter_mut().zip(&bytes[..n]) {
            *dst = b as _;
        }
        name[n] = 0;
    }

}

/// The machine's topology as the BPF side reads it (shared.bpf.h): per-CPU
/// ids, domain weights, and the tree that walks use instead of every CPU.
fn set_topology(rodata: &mut types::rodata, machine: &topo::Machine, doms: &topo::Domains) -> Result<()> {
    rodata.nr_cpu_ids = machine.cpus.iter().map(|c| c.cpu + 1).max().unwrap_or(1) as u32;
    for c in &machine.cpus {
        if c.cpu >= bpf_intf::consts_MAX_CPUS as usize {
            bail!("CPU {} is beyond the {} CPUs scx_battle supports", c.cpu, bpf_intf::consts_MAX_CPUS);
        }
        rodata.cpu_online[c.cpu] = 1;
        rodata.cpu_core_id[c.cpu] = c.core as u32;
        rodata.cpu_llc_id[c.cpu] = c.llc as u32;
        rodata.cpu_node_id[c.cpu] = c.node as u32;
        for level in 0..topo::NR_DOM_LEVELS {
            rodata.dom_weight[level][c.cpu] = doms.weight[level][&c.cpu] as u32;
        }
    }
    for level in 0..topo::NR_DOM_LEVELS {
        rodata.dom_active[level] = doms.active[level] as u8;
    }
    // The same as a tree, for walks that do not visit every CPU.
    let tree = machine.tree();
    for (pos, &cpu) in tree.cpus.iter().enumerate() {
        rodata.topo_cpus[pos] = cpu as u32;
        rodata.core_first[cpu] = tree.core_first[&cpu] as u32;
        rodata.core_nr[cpu] = tree.core_nr[&cpu] as u32;
    }
    for c in &machine.cpus {
        rodata.cpu_node_idx[c.cpu] = tree.node_idx[&c.node] as u32;
    }
    for (l, (&first, &nr)) in tree.llc_first.iter().zip(&tree.llc_nr).enumerate() {
        rodata.llc_first[l] = first as u32;
        rodata.llc_nr[l] = nr as u32;
    }
    for (n, (&first, &nr)) in tree.node_first_llc.iter().zip(&tree.node_nr_llcs).enumerate() {
        rodata.node_first_llc[n] = first as u32;
        rodata.node_nr_llcs[n] = nr as u32;
    }
    rodata.nr_llcs = tree.llc_nr.len() as u32;
    rodata.nr_nodes = tree.node_first_llc.len() as u32;
    rodata.max_llc_cpus = tree.llc_nr.iter().copied().max().unwrap_or(1) as u32;
    rodata.max_node_llcs = tree.node_nr_llcs.iter().copied().max().unwrap_or(1) as u32;
    rodata.max_core_cpus = tree.core_nr.values().copied().max().unwrap_or(1) as u32;
    rodata.ule_balancer_cpu = tree.cpus.iter().copied().min().unwrap_or(0) as u32;

    Ok(())
}

/// CFS's knobs (cfs.bpf.h), scaled as Linux scales them with the CPU count.
fn set_cfs_knobs(rodata: &mut types::rodata, opts: &Opts, machine: &topo::Machine, doms: &topo::Domains) {
    let factor = cfs_factor(machine.nr_cpus);
    let c = &opts.cfs;
    rodata.sched_latency_ns = c.sched_latency_us.unwrap_or(6000 * factor) * 1000;
    rodata.sched_min_granularity_ns = c.sched_min_granularity_us.unwrap_or(750 * factor) * 1000;
    rodata.sched_wakeup_granularity_ns = c.sched_wakeup_granularity_us.unwrap_or(1000 * factor) * 1000;
    rodata.sched_migration_cost_ns = c.sched_migration_cost_us * 1000;
    rodata.busy_factor = c.busy_factor;
    rodata.imbalance_pct = [c.imbalance_pct_smt, c.imbalance_pct_llc, c.imbalance_pct_numa, c.imbalance_pct_numa];
    if opts.policy.uses(Comp::Cfs) {
        let names = ["smt", "llc", "node", "machine"];
        let active: Vec<&str> = (0..topo::NR_DOM_LEVELS).filter(|&l| doms.active[l]).map(|l| names[l]).collect();
        eprintln!(
            "scx_battle: cfs: sched_latency {} us, min_granularity {} us, wakeup_granularity {} us, domains {:?}",
            rodata.sched_latency_ns / 1000,
            rodata.sched_min_granularity_ns / 1000,
            rodata.sched_wakeup_granularity_ns / 1000,
            active
        );
        let pct: Vec<String> = (0..topo::NR_DOM_LEVELS)
            .filter(|&l| doms.active[l])
            .map(|l| format!("{} (imbalance_pct {})", names[l], rodata.imbalance_pct[l]))
            .collect();
        eprintln!(
            "scx_battle: cfs: balances over {}; each level every 1-2 ms per CPU it spans, x busy_factor {} on a busy CPU, at most {} ms",
            pct.join(", "),
            rodata.busy_factor,
            machine.nr_cpus * 100
        );
    }

}

/// ULE's knobs (ule.bpf.h) and, under ULE, what its placement walks.
fn set_ule_knobs(rodata: &mut types::rodata, opts: &Opts, machine: &topo::Machine, doms: &topo::Domains) {
    let u = &opts.ule;
    rodata.sched_interact = u.interact;
    rodata.preempt_thresh = u.preempt_thresh;
    rodata.sched_slice_ns = u.quantum_us * 1000;
    rodata.sched_slice_min_ns = u.quantum_us * 1000 / 6;
    rodata.affinity_ns = u.affinity_us * 1000;
    rodata.rebalance = u.balance;
    rodata.balance_interval_ms = u.balance_interval_ms;
    rodata.steal_idle = u.steal_idle;
    rodata.steal_thresh = u.steal_thresh;
    rodata.static_boost = u.static_boost;
    rodata.ule_track_tasks = opts.stats_tasks.is_some() as u32;
    let starve_ms = opts.starve_ms();
    rodata.ule_starve_ns = u64::from(starve_ms) * 1_000_000;
    if opts.policy.uses(Comp::Ule) {
        // sched_lowest descends the tree from the machine to a core, then
        // picks the thread of that core: every level, degenerate or not,
        // only groups CPUs (a level with one child costs a step, no choice).
        let mut tree = vec!["machine".to_string()];
        if doms.active[2] {
            tree.push(format!("{} nodes", machine.nodes.len()));
        }
        tree.push(format!("{} LLCs", machine.llcs.len()));
        tree.push(format!("{} cores", machine.cpus.iter().map(|c| c.core).collect::<std::collections::BTreeSet<_>>().len()));
        if doms.active[0] {
            tree.push(format!("SMT threads (prev CPU kept only if its whole core is idle)"));
        }
        eprintln!("scx_battle: ule: sched_pickcpu walks {}", tree.join(" -> "));
        eprintln!(
            "scx_battle: ule: quantum {} us (min {} us), interact {}, preempt_thresh {}, balance {} every ~{} ms, steal_idle {} steal_thresh {}, static_boost {}, starve limit {} ms (a look every {} ms, at up to {} realtime threads)",
            u.quantum_us,
            u.quantum_us / 6,
            u.interact,
            u.preempt_thresh,
            u.balance,
            u.balance_interval_ms,
            u.steal_idle,
            u.steal_thresh,
            u.static_boost,
            starve_ms,
            bpf_intf::consts_ULE_STARVE_SCAN_MS,
            bpf_intf::consts_ULE_STARVE_SCAN
        );
    }

}

fn run(opts: &Opts) -> Result<()> {
    if opts.list_policies {
        for p in Policy::all() {
            println!("{p}");
        }
        return Ok(());
    }
    opts.check()?;
    if opts.help_stats {
        stats::server_data().describe_meta(&mut std::io::stdout(), None)?;
        return Ok(());
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    if let Some(secs) = opts.monitor {
        let flag = shutdown.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
            .context("installing the SIGINT/SIGTERM handler")?;
        return stats::monitor(Duration::from_secs_f64(secs), &shutdown);
    }
    preflight(Path::new(SCHED_EXT_DIR))?;

    let flag = shutdown.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the SIGINT/SIGTERM handler")?;

    let mut totals = Counters::default();
    let mut open_object = MaybeUninit::uninit();
    let mut out = Outputs::open(opts)?;
    let mut restarts: Vec<Instant> = Vec::new();
    let exit = loop {
        out.earlier = Counters(totals.0);
        let mut sched = Scheduler::init(opts, &mut open_object, out)?;
        let exit = sched.run(&shutdown, &mut totals);
        out = sched.out;
        let exit = match exit {
            Ok(e) => e,
            Err(e) => break Err(e),
        };
        match after_exit(shutdown.load(Ordering::Relaxed), &exit) {
            AfterExit::Stop => break Ok(()),
            AfterExit::Lost => {
                break Err(anyhow::anyhow!(
                    "the kernel unloaded the scheduler without a restart request (exit kind {}, code {:#x}: {}); \
                     the machine runs on the kernel's own scheduler now",
                    exit.kind,
                    exit.code,
                    exit.msg
                ))
            }
            AfterExit::Restart => {
                let now = Instant::now();
                restarts.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
                restarts.push(now);
                if restarts.len() > MAX_RESTARTS {
                    break Err(anyhow::anyhow!(
                        "the kernel asked for {} restarts within {} s (last: {}); giving up",
                        restarts.len(),
                        RESTART_WINDOW.as_secs(),
                        exit.msg
                    ));
                }
                eprintln!("scx_battle: the kernel asked for a restart ({}); loading again", exit.msg);
            }
        }
    };
    if opts.stats.is_some() {
        println!("{}", totals.line("total"));
    }
    exit.context("the kernel ended the scheduler")?;
    eprintln!("scx_battle: detached cleanly");
    Ok(())
}

fn main() -> ExitCode {
    let opts = Opts::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    log::set_max_level(if opts.verbose { log::LevelFilter::Info } else { log::LevelFilter::Warn });
    let _ = log::set_logger(&StderrLog);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scx_battle: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Opts, clap::Error> {
        Opts::parse_from(std::iter::once("scx_battle").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.policy, Policy::Vtime);
        assert_eq!(o.slice_us, 20_000);
        assert!(o.stats.is_none());
        o.check().unwrap();
    }

    #[test]
    fn cfs_knobs_scale_like_linux() {
        assert_eq!(cfs_factor(1), 1);
        assert_eq!(cfs_factor(2), 2);
        assert_eq!(cfs_factor(4), 3);
        assert_eq!(cfs_factor(8), 4);
        assert_eq!(cfs_factor(32), 4);
        let o = parse(&["--policy", "cfs", "--imbalance-pct-numa", "150"]).unwrap();
        assert_eq!(o.policy, policy::CFS);
        assert_eq!(o.cfs.imbalance_pct_numa, 150);
        assert!(parse(&["--imbalance-pct-llc", "99"]).is_err());
        assert!(parse(&["--busy-factor", "0"]).is_err());
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--policy", "fifo"][..],
            &["--slice-us", "0"],
            &["--slice-us", "abc"],
            &["--stats", "0"],
            &["--stats", "-1"],
            &["--stats", "nan"],
            &["--watchdog-ms", "50000"],
            &["--no-such-flag"],
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn task_classification_options_need_ule_and_a_prefix() {
        let check = |args: &[&str]| parse(args).map_err(|e| e.to_string()).and_then(|o| o.check().map_err(|e| e.to_string()));
        check(&["--policy", "ule", "--stats-tasks", "lg-", "--tasks-csv", "t.csv"]).unwrap();
        check(&["--policy", "ule", "--stats", "1", "--stats-tasks", "lg-"]).unwrap();
        let e = check(&["--policy", "ule", "--stats-tasks", "lg-"]).unwrap_err();
        assert!(e.contains("--stats or --tasks-csv"), "{e}");
        let e = check(&["--policy", "cfs", "--stats-tasks", "lg-", "--tasks-csv", "t.csv"]).unwrap_err();
        assert!(e.contains("--policy ule"), "{e}");
        check(&["--policy", "ule-cfs-cfs", "--stats-tasks", "lg-", "--tasks-csv", "t.csv"]).unwrap();
        assert!(check(&["--policy", "cfs-ule-ule", "--stats-tasks", "lg-", "--tasks-csv", "t.csv"]).is_err());
        assert!(check(&["--policy", "ule", "--tasks-csv", "t.csv"]).is_err(), "--tasks-csv without a prefix");
    }

    #[test]
    fn slice_min_above_slice_is_an_error() {
        let o = parse(&["--slice-us", "1000", "--slice-min-us", "2000"]).unwrap();
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("--slice-min-us"), "{e}");
    }

    #[test]
    fn starve_limit_defaults_to_half_the_watchdog_and_stays_below_it() {
        let o = parse(&["--policy", "ule", "--watchdog-ms", "20000"]).unwrap();
        assert_eq!(o.starve_ms(), 10_000);
        let o = parse(&["--policy", "ule"]).unwrap();
        assert_eq!((o.watchdog_ms(), o.starve_ms()), (30_000, 15_000));
        assert_eq!(parse(&["--policy", "cfs"]).unwrap().watchdog_ms(), 30_000);
        assert_eq!(parse(&["--policy", "ule", "--starve-ms", "0"]).unwrap().starve_ms(), 0);
        let e = parse(&["--policy", "ule", "--starve-ms", "10000", "--watchdog-ms", "10000"]).unwrap().check().unwrap_err().to_string();
        assert!(e.contains("--starve-ms") && e.contains("--watchdog-ms"), "{e}");
        assert!(parse(&["--starve-ms", "40000"]).is_err());
    }

    #[test]
    fn preflight_without_sched_ext_names_the_problem() {
        // Only meaningful as root on a kernel without sched_ext (the CI host);
        // elsewhere the first check (root) must fire instead.
        let e = preflight(Path::new("/nonexistent/sched_ext")).unwrap_err().to_string();
        if unsafe { libc::geteuid() } == 0 {
            assert!(e.contains("has no sched_ext"), "{e}");
        } else {
            assert!(e.contains("must run as root"), "{e}");
        }
    }

    #[test]
    fn old_kernels_named_by_their_missing_kfuncs() {
        let new = b"\0scx_bpf_dsq_insert\0scx_bpf_dsq_insert_vtime\0scx_bpf_dsq_move_to_local\0scx_bpf_dsq_move\0scx_bpf_dsq_move_vtime\0";
        assert!(missing_kfuncs(new).is_empty());
        // 6.12 had scx_bpf_dispatch and scx_bpf_consume.
        let old = b"\0scx_bpf_dispatch\0scx_bpf_dispatch_vtime\0scx_bpf_consume\0scx_bpf_dsq_move_vtimex\0";
        assert_eq!(missing_kfuncs(old).len(), 5);
    }

    #[test]
    fn a_knob_of_a_component_not_selected_is_refused() {
        let err = |args: &[&str]| parse(args).unwrap().check().unwrap_err().to_string();
        let e = err(&["--policy", "cfs", "--quantum-us", "1000"]);
        assert!(e.contains("--quantum-us") && e.contains("ULE's run queue") && e.contains("--policy cfs"), "{e}");
        let e = err(&["--policy", "ule", "--sched-latency-us", "1000"]);
        assert!(e.contains("--sched-latency-us") && e.contains("CFS's run queue"), "{e}");
        let e = err(&["--policy", "ule", "--slice-us", "1000"]);
        assert!(e.contains("--slice-us") && e.contains("vtime policy"), "{e}");
        let e = err(&["--quantum-us", "1000"]);
        assert!(e.contains("--policy vtime"), "{e}");
        // In a mix, a knob of a part taken from the other scheduler is refused, naming the parts.
        let e = err(&["--policy", "cfs-cfs-ule", "--busy-factor", "8"]);
        assert!(e.contains("CFS's balancer") && e.contains("balancer ule"), "{e}");
        let e = err(&["--policy", "ule-cfs-ule", "--affinity-us", "10"]);
        assert!(e.contains("ULE's placement") && e.contains("placement cfs"), "{e}");
        // imbalance_pct is read by CFS's placement and its balancer: either will do.
        parse(&["--policy", "ule-cfs-ule", "--imbalance-pct-llc", "150"]).unwrap().check().unwrap();
        parse(&["--policy", "ule-ule-cfs", "--imbalance-pct-llc", "150"]).unwrap().check().unwrap();
        assert!(err(&["--policy", "cfs-ule-ule", "--imbalance-pct-llc", "150"]).contains("CFS's placement and CFS's balancer"));
        parse(&["--policy", "cfs-ule-ule", "--sched-latency-us", "1000", "--steal-thresh", "3", "--affinity-us", "0"])
            .unwrap()
            .check()
            .unwrap();
        // A knob of the selected policy, and options of no policy, are fine.
        parse(&["--policy", "ule", "--quantum-us", "1000", "--stats", "1", "--watchdog-ms", "20000"]).unwrap().check().unwrap();
        parse(&["--policy", "cfs", "--imbalance-pct-numa", "150"]).unwrap().check().unwrap();
        parse(&["--slice-us", "1000", "--slice-min-us", "100"]).unwrap().check().unwrap();
    }

    #[test]
    fn every_knob_of_cfs_and_ule_has_an_owner() {
        for id in arg_ids::<CfsOpts>().into_iter().chain(arg_ids::<UleOpts>()) {
            assert!(knob_owners(&id).is_some(), "--{id} belongs to no component (knob_owners)");
        }
    }

    #[test]
    fn only_a_requested_stop_or_a_hotplug_restart_is_not_an_error() {
        let exit = |kind: ScxExitKind, should_restart: bool, msg: &str| Exit {
            kind: kind as i32,
            should_restart,
            code: 0,
            msg: msg.into(),
        };
        let unreg_kern = |restart, msg| exit(ScxExitKind::UnregKern, restart, msg);
        // Ctrl-C: whatever the exit says.
        assert_eq!(after_exit(true, &unreg_kern(true, "cpu 3 going online")), AfterExit::Stop);
        assert_eq!(after_exit(true, &exit(ScxExitKind::Unreg, false, "")), AfterExit::Stop);
        // The kernel's hotplug exit, with its restart code.
        assert_eq!(after_exit(false, &unreg_kern(true, "cpu 3 going online, exiting scheduler")), AfterExit::Restart);
        // A hotplug during the load (6.19: "expected hotplug seq 8 did not match actual 9"), even without the code.
        assert_eq!(
            after_exit(false, &unreg_kern(false, "expected hotplug seq 8 did not match actual 9")),
            AfterExit::Restart
        );
        // Unloaded by someone else, or by the kernel for another reason: lost, not clean.
        assert_eq!(after_exit(false, &exit(ScxExitKind::Unreg, false, "")), AfterExit::Lost);
        assert_eq!(after_exit(false, &unreg_kern(false, "something else")), AfterExit::Lost);
    }

    #[test]
    fn preflight_sees_a_running_scheduler() {
        if unsafe { libc::geteuid() } != 0 {
            return assert!(preflight(Path::new("/")).is_err());
        }
        let dir = std::env::temp_dir().join(format!("scx_battle_test_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::write(dir.join("state"), "enabled\n").unwrap();
        std::fs::write(dir.join("root/ops"), "scx_other\n").unwrap();
        let e = preflight(&dir).unwrap_err().to_string();
        assert!(e.contains("already running") && e.contains("scx_other"), "{e}");
        std::fs::write(dir.join("state"), "disabled\n").unwrap();
        preflight(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
