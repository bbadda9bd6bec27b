//! A run directory, as loadgen writes it and every tool reads it.
//!
//! `meta.json` is [`Meta`]: what ran (experiment and options), where (kernel,
//! scheduler, topology) and what came out of it (counts, latencies, requests).
//! Loadgen writes it twice: at start, with `complete: false` and nothing
//! measured, so a run that dies early still says what it was; and at the end.
//! Beside it are the CSV files whose columns are the `*_HEADER` constants
//! below; long runs keep them gzipped (`NAME.csv.gz`).
//!
//! [`FORMAT_VERSION`] changes when a field changes meaning or goes away (not
//! when an optional one is added). Readers call [`Meta::parse`], which refuses
//! versions newer than they know. Runs written before the field existed are
//! version 1; version 2 has the same fields plus `format_version`.

use serde::{Deserialize, Serialize};

pub mod apps;
pub mod bench;
pub mod policy;

/// The version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

/// The limits of the study's tools, in one place: scripts and tests ask
/// `study limits` for them. The BPF headers size the tables (bpf/scheduler/intf.h
/// MAX_CPUS, bpf/recorder/recorder_intf.h REC_MAX_CPUS and REC_MAX_THREADS); scx_battle
/// and loadgen refuse to build when these disagree with them.
///
/// CPU ids scx_battle's per-CPU tables hold.
pub const SCHED_MAX_CPUS: usize = 1024;
/// CPU ids the recorder (loadgen spin, mixed, serve) counts threads on.
pub const RECORDER_MAX_CPUS: usize = 1024;

/// The study's directory of the starvation runs under ULE with its
/// starvation guard off (the batch experiment, below the watchdog's limit);
/// the report shows them as their own experiment.
pub const UNGUARDED_STARVATION_DIR: &str = "starvation-unguarded";
/// Threads the recorder tracks at once.
pub const RECORDER_MAX_THREADS: usize = 65536;
/// Workload threads loadgen starts at most: what the recorder tracks, less
/// room for loadgen's own threads.
pub const MAX_THREADS: usize = RECORDER_MAX_THREADS - 64;

/// `timeline.csv`: every CPU's count of the run's threads at each sample.
pub const TIMELINE_HEADER: &str = "time_ms,cpu,node,threads";
/// `migrations.csv`: every migration of a tracked thread, with its cause
/// (MoveCause::name).
pub const MIGRATIONS_HEADER: &str = "time_ms,thread,from,to,cause";
/// `migrations.csv` of runs from before the recorder read causes.
pub const MIGRATIONS_HEADER_V1: &str = "time_ms,thread,from,to";

/// Why a thread changed CPU: the cause scx_battle notes for loadgen's
/// recorder just before it moves a task (bpf/recorder/move_note.h holds the
/// numbers the BPF side uses; loadgen maps them here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveCause {
    /// Wakeup placement: ops.select_cpu chose another CPU.
    Wakeup,
    /// The periodic balancer: CFS's load_balance at its interval, ULE's sched_balance.
    Balance,
    /// CFS's newly-idle pull.
    NewIdle,
    /// CFS's NOHZ idle balance: an idle CPU woken to balance.
    Nohz,
    /// ULE's idle steal (tdq_idled, or a CPU kicked to steal).
    Steal,
    /// The thread's CPU left its allowed CPUs.
    Affinity,
    /// scx_battle left no note for this move (the goal is none).
    Unknown,
    /// Another scheduler (or scx_battle's notes not found): nothing notes causes.
    NotAttributed,
}

impl MoveCause {
    pub const ALL: [MoveCause; 8] = [
        MoveCause::Wakeup,
        MoveCause::Balance,
        MoveCause::NewIdle,
        MoveCause::Nohz,
        MoveCause::Steal,
        MoveCause::Affinity,
        MoveCause::Unknown,
        MoveCause::NotAttributed,
    ];

    /// The word in migrations.csv's cause column.
    pub fn name(self) -> &'static str {
        match self {
            MoveCause::Wakeup => "wakeup",
            MoveCause::Balance => "balance",
            MoveCause::NewIdle => "newidle",
            MoveCause::Nohz => "nohz",
            MoveCause::Steal => "steal",
            MoveCause::Affinity => "affinity",
            MoveCause::Unknown => "unknown",
            MoveCause::NotAttributed => "unattributed",
        }
    }

    /// For tables: what the cause is.
    pub fn describe(self) -> &'static str {
        match self {
            MoveCause::Wakeup => "wakeup placement",
            MoveCause::Balance => "periodic balancer",
            MoveCause::NewIdle => "newly-idle pull",
            MoveCause::Nohz => "NOHZ idle balance",
            MoveCause::Steal => "idle steal",
            MoveCause::Affinity => "affinity change",
            MoveCause::Unknown => "unknown",
            MoveCause::NotAttributed => "not attributed (the scheduler notes no causes)",
        }
    }

    pub fn from_name(s: &str) -> Option<MoveCause> {
        MoveCause::ALL.into_iter().find(|c| c.name() == s)
    }
}
/// `thread_time.csv`: every worker's CPU time (its own CPU clock) over time.
pub const THREAD_TIME_HEADER: &str = "time_ms,thread,cpu_time_ms";
/// `cpus.csv`: per-CPU perf counters over the whole run.
pub const CPUS_HEADER: &str = "cpu,node,context_switches,migrations";
/// `threads.csv`: one line per worker at the end; `served` and `backlog` are
/// empty for threads that are not servers.
pub const THREADS_HEADER: &str =
    "thread,kind,nice,cpu_time_ms,migrations,wait_total_ms,wait_max_ms,waits,served,backlog";
/// `threads.csv` of runs from before the recorder measured waits.
pub const THREADS_HEADER_V1: &str = "thread,kind,nice,cpu_time_ms,migrations";
/// `ule_tasks.csv` (scx_battle --tasks-csv): each matching thread's ULE
/// classification every interval, `mono_ns` on CLOCK_MONOTONIC (the run's
/// time 0 is `Meta::t0_monotonic_ns`).
pub const ULE_TASKS_HEADER: &str = "mono_ns,tid,comm,score,pri,nice,queue,run_ms,sleep_ms,starved";
/// `sched_stats.csv` (scx_battle --stats-csv): the scheduler's counters over
/// time, one line per interval, `mono_ns` on CLOCK_MONOTONIC; the columns
/// after `mono_ns` are the counters' names, cumulative since load.
pub const SCHED_STATS_TIME_COLUMN: &str = "mono_ns";

/// meta.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// Absent in runs from before versioning: version 1.
    #[serde(default = "format_v1")]
    pub format_version: u32,
    /// "loadgen <version>".
    pub tool: String,
    /// The experiment and its options.
    #[serde(flatten)]
    pub workload: Workload,
    /// /proc/sys/kernel/osrelease.
    pub kernel_release: String,
    pub scheduler: SchedulerInfo,
    /// A name for the scheduler given by whoever ran loadgen (`loadgen
    /// --label`, e.g. scripts/reproduce's `--scheduler NAME=...`), shown
    /// instead of the name sched_ext reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub topology: Topology,
    /// Wall clock at start (UNIX time, s).
    pub start_unix_s: f64,
    /// The run went to its planned end (false while it runs and after a stop).
    pub complete: bool,
    /// A signal stopped it early.
    #[serde(default)]
    pub interrupted: bool,

    // What the run measured: absent (null) in a run that did not get to write them.
    /// Workers started.
    #[serde(default)]
    pub threads: Option<u64>,
    /// Time 0 of every *_ms column, on CLOCK_MONOTONIC.
    #[serde(default)]
    pub t0_monotonic_ns: Option<u64>,
    /// Time to create the workers (started spinning: until every one had run).
    #[serde(default)]
    pub spawn_ms: Option<f64>,
    /// The longest wait for a CPU of any worker, before and after time 0.
    #[serde(default)]
    pub wait_max_ms: Option<WaitMax>,
    /// The release (affinity reset) began, on the run's clock; none without one.
    #[serde(default)]
    pub release_ms: Option<f64>,
    /// From the first to the last affinity reset of the release.
    #[serde(default)]
    pub release_spread_ms: Option<f64>,
    /// The last sample.
    #[serde(default)]
    pub end_ms: Option<f64>,
    #[serde(default)]
    pub samples: Option<u64>,
    /// Samples whose per-CPU counts did not add up to the thread count.
    #[serde(default)]
    pub inconsistent_samples: Option<u64>,
    #[serde(default)]
    pub migrations: Option<u64>,
    /// Recorder events lost (ring buffer full).
    #[serde(default)]
    pub lost_events: Option<u64>,
    /// Events on a CPU outside the topology (e.g. hot-added).
    #[serde(default)]
    pub untracked_cpu_events: Option<u64>,
    /// The recorder against /proc at a few moments.
    #[serde(default)]
    pub proc_checks: Vec<ProcCheck>,
    #[serde(default)]
    pub recorder_cpu: Option<RecorderCpu>,
    /// Wake-to-run latency of the interactive threads (mixed runs).
    #[serde(default)]
    pub wake_latency_us: Option<WakeLatency>,
    /// The servers' requests (serve runs).
    #[serde(default)]
    pub requests: Option<Requests>,
}

fn format_v1() -> u32 {
    1
}

fn one() -> u32 {
    1
}

/// The experiment (meta.json's `experiment`) with its `options`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "experiment", content = "options", rename_all = "lowercase")]
pub enum Workload {
    Spin(SpinOptions),
    Mixed(MixedOptions),
    Serve(ServeOptions),
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Spin(_) => "spin",
            Workload::Mixed(_) => "mixed",
            Workload::Serve(_) => "serve",
        }
    }
    /// Seconds pinned before a release, where the experiment has one.
    pub fn pin_secs(&self) -> Option<f64> {
        match self {
            Workload::Spin(o) => Some(o.pin_secs),
            _ => None,
        }
    }
}

/// `loadgen spin`: figure 6.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpinOptions {
    pub threads: u64,
    pub pin_cpu: usize,
    pub pin_secs: f64,
    pub run_secs: f64,
    /// Nice values given round-robin.
    pub nice: Vec<i32>,
    pub no_release: bool,
    pub interval_ms: u64,
    /// How the threads start (absent in runs from before the option: gate).
    #[serde(default)]
    pub start: SpinStart,
    /// Started spinning: the creator's pause after each thread, ms.
    #[serde(default)]
    pub create_every_ms: f64,
}

/// How `loadgen spin`'s threads start on the pinned CPU.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpinStart {
    /// Each thread pins itself and sleeps at a start gate until all exist:
    /// the queue fills at once, with threads that have no history.
    #[default]
    Gate,
    /// Each thread is created pinned (pthread attributes) by a SCHED_FIFO
    /// thread on another CPU and spins from its first instruction, as a
    /// thread pool started under `taskset` does: every new thread joins a
    /// queue of spinners already running.
    Spinning,
}

impl SpinStart {
    pub fn name(self) -> &'static str {
        match self {
            SpinStart::Gate => "gate",
            SpinStart::Spinning => "spinning",
        }
    }
}

/// The longest wait for a CPU of any worker (threads.csv has each one's over the whole run).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct WaitMax {
    /// Before time 0: while the workers were created (started spinning, the
    /// wait for a first turn among threads already spinning).
    pub before_t0: f64,
    /// From time 0 on (a wait under way at time 0 counts from then).
    pub after_t0: f64,
}

/// `loadgen mixed`: spinners beside interactive threads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MixedOptions {
    pub spinners: u64,
    pub interactive: u64,
    pub sleep_ms: u64,
    pub run_us: u64,
    pub nice: Vec<i32>,
    pub pin_cpu: Option<usize>,
    pub secs: f64,
    pub interval_ms: u64,
}

/// `loadgen serve`: server threads beside batch threads on one CPU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServeOptions {
    pub servers: u64,
    pub batch: u64,
    pub request_us: u64,
    /// Each server's offered load, % of the CPU.
    pub load_percent: f64,
    /// All servers' together.
    pub offered_percent: f64,
    /// "closed" or "open".
    pub arrivals: String,
    pub cpu: usize,
    pub secs: f64,
    pub interval_ms: u64,
    pub thread_interval_ms: u64,
}

/// The scheduler in charge during the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchedulerInfo {
    /// sched_ext's root ops name, or "kernel (fair class)".
    pub name: String,
    /// /sys/kernel/sched_ext/state ("enabled", "disabled", "absent", ...).
    pub sched_ext_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_all: Option<bool>,
}

impl SchedulerInfo {
    pub fn is_sched_ext(&self) -> bool {
        self.sched_ext_state == "enabled"
    }

    /// A short readable name: "kernel (EEVDF)", "scx_battle cfs", "scx_rusty".
    pub fn label(&self) -> String {
        if !self.is_sched_ext() {
            return "kernel (EEVDF)".into();
        }
        // scx_battle names its ops "scx_battle_<policy>_<version>", a mix
        // of components as "<queue>.<place>.<balance>" (cfs.ule.cfs): its
        // policy name is "cfs-ule-cfs".
        if let Some(rest) = self.name.strip_prefix("scx_battle_") {
            let name = rest.split('_').next().unwrap_or("").replace('.', "-");
            return match name.parse::<policy::Policy>() {
                Ok(p) => format!("scx_battle {p}"),
                Err(_) => "scx_battle".into(),
            };
        }
        // Others name theirs "<name>_<version>_<target>" (scx_utils) or just
        // "<name>": keep the words before the first that starts with a digit.
        let words: Vec<&str> =
            self.name.split('_').take_while(|w| !w.starts_with(|c: char| c.is_ascii_digit())).collect();
        if words.is_empty() {
            self.name.clone()
        } else {
            words.join("_")
        }
    }
}

/// The machine as the run saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Topology {
    /// Online CPUs.
    pub cpus: Vec<usize>,
    /// CPUs of each NUMA node, by node id; a memory-only node is empty.
    pub nodes: Vec<Vec<usize>>,
    /// CPUs of each last-level cache (absent in the oldest runs).
    #[serde(default)]
    pub llcs: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcCheck {
    pub time_ms: f64,
    pub threads: u64,
    pub unreadable: u64,
    /// Threads /proc placed on neither the CPU the recorder had before nor after.
    pub placed_differently: u64,
    /// Threads /proc did not show runnable ('R'): a worker asleep where it
    /// should spin (None: a run from before this was counted).
    #[serde(default)]
    pub not_runnable: Option<u64>,
}

/// What recording cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecorderCpu {
    pub sampler_ms: f64,
    pub events_ms: f64,
    /// The recorder's BPF programs (needs kernel.bpf_stats_enabled).
    pub bpf_ms: Option<f64>,
    pub percent_of_machine: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WakeLatency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Requests {
    pub served: u64,
    pub per_second: f64,
    /// Requests that had arrived and were not served at the end (open arrivals).
    pub backlog_at_end: u64,
    /// Arrival to reply.
    pub latency_us: RequestLatency,
    pub servers: Vec<ServerRequests>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestLatency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerRequests {
    pub thread: u32,
    pub served: u64,
    pub backlog: u64,
    pub p50_us: f64,
    pub max_us: f64,
}

impl Meta {
    /// What a run knows when it starts: nothing measured, not complete.
    pub fn start(
        tool: String,
        workload: Workload,
        kernel_release: String,
        scheduler: SchedulerInfo,
        topology: Topology,
        start_unix_s: f64,
    ) -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            tool,
            workload,
            kernel_release,
            scheduler,
            label: None,
            topology,
            start_unix_s,
            complete: false,
            interrupted: false,
            threads: None,
            t0_monotonic_ns: None,
            spawn_ms: None,
            wait_max_ms: None,
            release_ms: None,
            release_spread_ms: None,
            end_ms: None,
            samples: None,
            inconsistent_samples: None,
            migrations: None,
            lost_events: None,
            untracked_cpu_events: None,
            proc_checks: Vec::new(),
            recorder_cpu: None,
            wake_latency_us: None,
            requests: None,
        }
    }

    /// A spin run's meta.json for tests of the tools that read runs.
    pub fn example_spin(topology: Topology, threads: u64, scheduler_name: &str) -> Meta {
        let mut m = Meta::start(
            "loadgen test".into(),
            Workload::Spin(SpinOptions {
                threads,
                pin_cpu: topology.cpus[0],
                pin_secs: 1.0,
                run_secs: 2.0,
                nice: vec![0],
                no_release: false,
                interval_ms: 10,
                start: SpinStart::Gate,
                create_every_ms: 0.0,
            }),
            "test".into(),
            SchedulerInfo { name: scheduler_name.into(), sched_ext_state: "enabled".into(), switch_all: Some(true) },
            topology,
            0.0,
        );
        m.threads = Some(threads);
        m.release_ms = Some(1000.0);
        m.complete = true;
        m
    }

    /// A serve run's meta.json for tests: 2 servers asking 50 % each beside
    /// `batch` batch threads on CPU 0, 10 s.
    pub fn example_serve(batch: u64, scheduler_name: &str) -> Meta {
        let mut m = Meta::example_spin(Topology { cpus: vec![0], nodes: vec![vec![0]], llcs: vec![vec![0]] }, 2 + batch, scheduler_name);
        m.workload = Workload::Serve(ServeOptions {
            servers: 2,
            batch,
            request_us: 1000,
            load_percent: 50.0,
            offered_percent: 100.0,
            arrivals: "closed".into(),
            cpu: 0,
            secs: 10.0,
            interval_ms: 10,
            thread_interval_ms: 100,
        });
        m.release_ms = None;
        m.end_ms = Some(10_000.0);
        m
    }

    /// Reads meta.json's text: the error says what is wrong (a field, a type,
    /// a version from a newer loadgen).
    pub fn parse(text: &str) -> Result<Meta, String> {
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let version = match raw.get("format_version") {
            None => 1,
            Some(v) => v.as_u64().ok_or("format_version is not a number")? as u32,
        };
        if version > FORMAT_VERSION {
            return Err(format!(
                "format version {version}, newer than this build reads ({FORMAT_VERSION}): update the tools"
            ));
        }
        serde_json::from_value(raw).map_err(|e| format!("not a run's meta.json: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("meta.json serializes") + "\n"
    }

    /// The scheduler's name for figures and tables: the run's label, or the
    /// one sched_ext reported.
    pub fn scheduler_label(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.scheduler.label())
    }

    /// The number of workers: measured, or planned where the run did not get
    /// to count them.
    pub fn thread_count(&self) -> Option<u64> {
        self.threads.or(match &self.workload {
            Workload::Spin(o) => Some(o.threads),
            Workload::Mixed(o) => Some(o.spinners + o.interactive),
            Workload::Serve(o) => Some(o.servers + o.batch),
        })
    }
}

/// study.json's layout version (0: written before it had one).
pub const STUDY_FORMAT_VERSION: u32 = 1;

/// `study.json`: what the study engine (`study run`, behind
/// scripts/reproduce) ran, for `analysis report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Study {
    #[serde(default)]
    pub format_version: u32,
    /// The command line, e.g. "scripts/reproduce --mode vm --quick".
    pub command: String,
    /// The git commit of the tree the binaries were built from, and whether
    /// it had changes not committed (None: not a git checkout).
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub dirty: Option<bool>,
    /// A fingerprint of the binaries the study ran (scx_battle, loadgen,
    /// analysis, study): slices run from different checkouts with the same
    /// frozen binaries (SCX_BATTLE_BIN) are one build. None in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binaries: Option<String>,
    /// The machine the runs saw, and its kernel.
    #[serde(default)]
    pub machine: Option<StudyMachine>,
    #[serde(default)]
    pub kernel: Option<String>,
    /// How the machine was provided: natively, or emulated and how.
    #[serde(default)]
    pub emulation: Option<Emulation>,
    /// The engine's estimate of the wall time, seconds (compare wall_s).
    #[serde(default)]
    pub estimate_s: Option<f64>,
    /// UTC day the study ran.
    pub date: String,
    pub wall_s: u64,
    /// "paper", "small", or "native-<host>".
    pub place: String,
    /// The experiments' parameters.
    #[serde(flatten)]
    pub params: StudyParams,
    /// The schedulers, in the study's order: "kernel", "cfs", "ule", then
    /// any --scheduler NAME=COMMAND.
    pub schedulers: Vec<StudyScheduler>,
    /// Every run the study meant to make and how it ended.
    pub runs: Vec<StudyRun>,
    /// What went wrong outside any run (interrupted, time limit).
    #[serde(default)]
    pub problems: Vec<String>,
    /// A study merged from the slices of a sharded one (`study report`):
    /// each slice's directory, command and times. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<StudySlice>,
}

/// One slice of a sharded study (`study run --shard K/N`), as merged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StudySlice {
    /// "K/N".
    pub shard: String,
    /// The slice's own study directory, as given to `study report`.
    pub dir: String,
    pub command: String,
    pub wall_s: u64,
    #[serde(default)]
    pub estimate_s: Option<f64>,
    #[serde(default)]
    pub emulation: Option<Emulation>,
    /// The checkout's commit when the slice started (slices with the same
    /// binaries may have been started from different checkouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The fingerprint of the binaries the slice ran (slices may run
    /// binaries rebuilt from one clean commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binaries: Option<String>,
}

/// A study's parameters: what the engine plans with and study.json records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StudyParams {
    /// Figure 6: threads, seconds pinned, seconds recorded after the release
    /// (ULE's runs last `ule_run_s`).
    pub threads: u64,
    pub pin_s: f64,
    pub run_s: f64,
    pub ule_run_s: f64,
    /// ULE's rule: the balancer passes core 0 needs to reach its fair share
    /// (threads - (CPUs - 1) - threads / CPUs).
    pub ule_rule_passes: u64,
    /// Seconds of each starvation run.
    pub starve_s: f64,
    /// Runs of every experiment under every scheduler (--repeat).
    #[serde(default = "one")]
    pub repeat: u32,
}

/// The machine of a study's runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StudyMachine {
    pub cpus: usize,
    /// Nodes with CPUs, and memory-only nodes.
    pub nodes: usize,
    pub memory_only_nodes: usize,
    pub llcs: usize,
    pub smt: bool,
}

/// How a study's machine was provided.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Emulation {
    /// "native", or "vm".
    pub kind: String,
    /// The VM's clock and accelerator as scripts/vm reported them, e.g.
    /// "icount (shift 0), TCG" (none natively).
    #[serde(default)]
    pub vm: Option<String>,
    /// The host's CPUs, and its 1-minute load average at the start and the end.
    pub host_cpus: usize,
    pub host_load_start: f64,
    pub host_load_end: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StudyScheduler {
    pub name: String,
    /// The command that loads it; none for the kernel's own.
    pub command: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StudyRun {
    /// The run directory, relative to the study's: "cfs", "starvation-batch/ule".
    pub dir: String,
    /// "complete", "failed: why", "not run", "started, did not finish".
    pub status: String,
    /// Wall-clock seconds the run took (on the host's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
}

impl StudyRun {
    pub fn complete(&self) -> bool {
        self.status == "complete"
    }
    /// The scheduler failed (did not load, was ejected, exited with an
    /// error): the study went on without it.
    pub fn scheduler_failed(&self) -> bool {
        self.status.starts_with("failed: scheduler")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_cause_names_round_trip_and_are_distinct() {
        let mut names: Vec<_> = MoveCause::ALL.iter().map(|c| c.name()).collect();
        for c in MoveCause::ALL {
            assert_eq!(MoveCause::from_name(c.name()), Some(c));
            // One CSV field: no separator inside.
            assert!(!c.name().contains(',') && !c.name().is_empty());
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MoveCause::ALL.len());
        assert_eq!(MoveCause::from_name("nope"), None);
    }

    fn spin_meta() -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            tool: "loadgen 0.1.0".into(),
            workload: Workload::Spin(SpinOptions {
                threads: 128,
                pin_cpu: 0,
                pin_secs: 3.0,
                run_secs: 10.0,
                nice: vec![0],
                no_release: false,
                interval_ms: 10,
                start: SpinStart::Gate,
                create_every_ms: 0.0,
            }),
            kernel_release: "7.3.4".into(),
            scheduler: SchedulerInfo { name: "scx_battle_ule_0.1.0_x86_64".into(), sched_ext_state: "enabled".into(), switch_all: Some(true) },
            label: None,
            topology: Topology { cpus: vec![0, 1], nodes: vec![vec![0], vec![1], vec![]], llcs: vec![vec![0], vec![1]] },
            start_unix_s: 1.0,
            complete: true,
            interrupted: false,
            threads: Some(128),
            t0_monotonic_ns: Some(5),
            spawn_ms: Some(2.0),
            wait_max_ms: None,
            release_ms: Some(3000.0),
            release_spread_ms: Some(3.0),
            end_ms: Some(13000.0),
            samples: Some(1300),
            inconsistent_samples: Some(0),
            migrations: Some(100),
            lost_events: Some(0),
            untracked_cpu_events: Some(0),
            proc_checks: vec![ProcCheck { time_ms: 1.0, threads: 128, unreadable: 0, placed_differently: 0, not_runnable: Some(0) }],
            recorder_cpu: Some(RecorderCpu { sampler_ms: 1.0, events_ms: 1.0, bpf_ms: None, percent_of_machine: 0.5 }),
            wake_latency_us: None,
            requests: None,
        }
    }

    #[test]
    fn round_trips_with_experiment_and_options_at_the_top() {
        let m = spin_meta();
        let text = m.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["experiment"], "spin");
        assert_eq!(v["options"]["pin_secs"], 3.0);
        assert_eq!(v["format_version"], FORMAT_VERSION);
        assert_eq!(Meta::parse(&text).unwrap(), m);
    }

    #[test]
    fn reads_version_1_and_refuses_newer_ones() {
        let mut v: serde_json::Value = serde_json::from_str(&spin_meta().to_json()).unwrap();
        v.as_object_mut().unwrap().remove("format_version");
        let m = Meta::parse(&v.to_string()).unwrap();
        assert_eq!(m.format_version, 1);
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        let e = Meta::parse(&v.to_string()).unwrap_err();
        assert!(e.contains("newer than this build reads"), "{e}");
    }

    #[test]
    fn a_run_cut_short_reads_with_nothing_measured() {
        // What loadgen writes at start.
        let text = r#"{"tool":"loadgen 0.1.0","experiment":"serve","kernel_release":"6.19",
            "scheduler":{"name":"kernel (fair class)","sched_ext_state":"absent"},
            "topology":{"cpus":[0],"nodes":[[0]],"llcs":[[0]]},
            "options":{"servers":8,"batch":1,"request_us":1000,"load_percent":12.5,"offered_percent":100.0,
                       "arrivals":"closed","cpu":0,"secs":40.0,"interval_ms":10,"thread_interval_ms":100},
            "start_unix_s":1.0,"complete":false}"#;
        let m = Meta::parse(text).unwrap();
        assert_eq!(m.workload.name(), "serve");
        assert_eq!((m.end_ms, m.thread_count()), (None, Some(9)));
        assert_eq!(m.scheduler.label(), "kernel (EEVDF)");
    }

    #[test]
    fn bad_meta_says_what_is_wrong() {
        let e = Meta::parse("{").unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(&spin_meta().to_json()).unwrap();
        v["experiment"] = serde_json::json!("juggle");
        let e = Meta::parse(&v.to_string()).unwrap_err();
        assert!(e.contains("juggle"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(&spin_meta().to_json()).unwrap();
        v["options"]["pin_secs"] = serde_json::json!("three");
        let e = Meta::parse(&v.to_string()).unwrap_err();
        assert!(e.contains("not a run's meta.json"), "{e}");
    }

    #[test]
    fn scheduler_labels() {
        let s = |name: &str, state: &str| SchedulerInfo { name: name.into(), sched_ext_state: state.into(), switch_all: None };
        assert_eq!(s("scx_battle_cfs_0.1.0_x86_64_unknown_linux_gnu", "enabled").label(), "scx_battle cfs");
        assert_eq!(s("scx_battle_ule.cfs.cfs_0.1.0_x86_64_unknown_linux_gnu", "enabled").label(), "scx_battle ule-cfs-cfs");
        assert_eq!(s("scx_battle_ule_0.1.0", "enabled").label(), "scx_battle ule");
        assert_eq!(s("rusty_1.0.20_x86_64_unknown_linux_gnu", "enabled").label(), "rusty");
        assert_eq!(s("scx_lavd", "enabled").label(), "scx_lavd");
        assert_eq!(s("kernel (fair class)", "absent").label(), "kernel (EEVDF)");
    }

    #[test]
    fn the_committed_reference_runs_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        let mut n = 0;
        for day in std::fs::read_dir(&root).unwrap().flatten() {
            for sub in ["kernel", "cfs", "ule", "starvation-batch/ule", "starvation-identical/cfs"] {
                let p = day.path().join(sub).join("meta.json");
                if let Ok(text) = std::fs::read_to_string(&p) {
                    Meta::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    n += 1;
                }
            }
        }
        assert!(n >= 6, "only {n} reference runs found under {}", root.display());
    }
}
