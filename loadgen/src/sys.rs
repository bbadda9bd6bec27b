// SPDX-License-Identifier: GPL-2.0-only
//! Thin wrappers over the OS facilities the workloads and the recorder use.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use perf_event::events::Software;
use perf_event::{Builder, Counter};

/// Flags set by SIGINT/SIGTERM/SIGHUP: (stop, interrupted). A workload
/// polls `stop` and ends early with what it has; `interrupted` says why.
pub fn stop_on_signal() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    let (s, i) = (stop.clone(), interrupted.clone());
    ctrlc::set_handler(move || {
        i.store(true, Ordering::Relaxed);
        s.store(true, Ordering::Relaxed);
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    Ok((stop, interrupted))
}

/// Burn CPU in small units until `stop`; returns the units done.
pub fn spin(stop: &AtomicBool) -> u64 {
    let mut rounds = 0u64;
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        rounds += 1;
    }
    rounds
}

/// A one-shot start gate: threads sleep in `wait` until `open` wakes them
/// all at once. Unlike std's Barrier (a mutex and a condvar), a woken
/// thread takes no lock on its way out: behind a barrier's mutex, 512
/// threads on one CPU form a convoy, and a scheduler that leaves the
/// holder waiting (ULE, whose interactive spinners starve a batch one)
/// keeps the rest asleep for seconds, so they are not the runnable threads
/// the experiment means them to be.
pub struct Gate(AtomicU32);

impl Gate {
    pub fn new() -> Self {
        Gate(AtomicU32::new(0))
    }

    pub fn wait(&self) {
        while self.0.load(Ordering::Acquire) == 0 {
            // Sleeps only while the word is still 0; EINTR and EAGAIN loop.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    0u32,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
    }

    pub fn open(&self) {
        self.0.store(1, Ordering::Release);
        unsafe {
            libc::syscall(libc::SYS_futex, self.0.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

pub fn gettid() -> u32 {
    unsafe { libc::gettid() as u32 }
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Allow the thread `tid` on exactly `cpus`.
/// Pin the calling thread to one CPU (core_affinity, the portable way a
/// thread pins itself).
pub fn pin_self(cpu: usize) -> Result<()> {
    // core_affinity indexes a fixed cpu_set_t: beyond it, it would abort.
    if cpu >= libc::CPU_SETSIZE as usize {
        bail!("CPU {cpu} does not fit in a cpu set ({} CPUs)", libc::CPU_SETSIZE);
    }
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        bail!("pinning this thread to CPU {cpu} failed");
    }
    Ok(())
}

/// Set another thread's (or this one's) CPUs: the release moves every worker.
pub fn pin_to(tid: u32, cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).with_context(|| format!("CPU {c} does not fit in a cpu set"))?;
    }
    sched_setaffinity(Pid::from_raw(tid as i32), &set)
        .with_context(|| format!("sched_setaffinity({tid}, {cpus:?})"))?;
    Ok(())
}

/// Nice level of one thread (Linux nice is per thread).
pub fn set_nice(tid: u32, nice: i32) -> Result<()> {
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setpriority({tid}, {nice})"));
    }
    Ok(())
}

/// SCHED_FIFO at `prio` for one thread.
pub fn set_fifo(tid: u32, prio: i32) -> Result<()> {
    let p = libc::sched_param { sched_priority: prio };
    let r = unsafe { libc::sched_setscheduler(tid as i32, libc::SCHED_FIFO, &p) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_setscheduler(SCHED_FIFO)");
    }
    Ok(())
}

/// The CPUs the calling thread may run on.
pub fn affinity_of_self() -> Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    Ok((0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
}

/// Back to SCHED_OTHER (from set_fifo): the benchmarks that follow run as any thread.
pub fn set_normal(tid: u32) -> Result<()> {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall on a thread of ours.
    let r = unsafe { libc::sched_setscheduler(tid as i32, libc::SCHED_OTHER, &p) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_setscheduler(SCHED_OTHER)");
    }
    Ok(())
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time thread `tid` (of any process we may look at) has used, from its
/// per-thread CPU clock (the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)):
/// a clock_gettime, no /proc parsing. None once the thread is gone.
pub fn other_thread_cpu_ns(tid: u32) -> Option<u64> {
    const CPUCLOCK_SCHED: libc::clockid_t = 2;
    const CPUCLOCK_PERTHREAD_MASK: libc::clockid_t = 4;
    let clock = (!(tid as libc::clockid_t) << 3) | CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD_MASK;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a plain syscall filling ts.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Sleep until CLOCK_MONOTONIC reads `ns` (a voluntary sleep, as a server
/// waiting for its next request).
pub fn sleep_until(ns: u64) {
    let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
    // SAFETY: plain syscall; EINTR just ends the sleep early, and callers re-check the time.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
}

/// Use `ns` of this thread's CPU time (a request's work): however long the
/// scheduler makes it wait, the work is the same.
pub fn burn_cpu_ns(ns: u64) {
    let end = thread_cpu_ns() + ns;
    let mut x = 1u64;
    while thread_cpu_ns() < end {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// CPUs online now (at least 1).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

pub fn threads_max() -> u64 {
    std::fs::read_to_string("/proc/sys/kernel/threads-max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string()
}

/// The scheduler in charge: a sched_ext one if enabled, else the kernel's own.
pub fn scheduler() -> rundata::SchedulerInfo {
    let read = |f: &str| std::fs::read_to_string(format!("/sys/kernel/sched_ext/{f}")).ok().map(|s| s.trim().to_string());
    match read("state") {
        Some(state) if state == "enabled" => rundata::SchedulerInfo {
            name: read("root/ops").unwrap_or_default(),
            sched_ext_state: state,
            switch_all: read("switch_all").map(|s| s == "1"),
        },
        state => rundata::SchedulerInfo {
            name: "kernel (fair class)".into(),
            sched_ext_state: state.unwrap_or_else(|| "absent".into()),
            switch_all: None,
        },
    }
}

/// From /proc/<pid>/task/<tid>/stat: field 39, the CPU the thread belongs
/// to, and field 3, its state ('R' runnable or running, 'S' asleep, ...).
pub fn proc_task_cpu(pid: u32, tid: u32) -> Option<(usize, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat_cpu(&s)
}

fn parse_stat_cpu(stat: &str) -> Option<(usize, char)> {
    // The command name (field 2) may hold spaces; count fields after its ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((rest.nth(35)?.parse().ok()?, state))
}

/// kernel.bpf_stats_enabled on for as long as this lives (BPF run times).
pub struct BpfStats(Option<std::fs::File>);

impl BpfStats {
    pub fn enable() -> Self {
        // The kernel keeps stats on while this fd is open.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, 32 /* BPF_ENABLE_STATS */, &[0u32; 4], 16) };
        if fd < 0 {
            return BpfStats(None);
        }
        use std::os::fd::FromRawFd;
        BpfStats(Some(unsafe { std::fs::File::from_raw_fd(fd as i32) }))
    }
    pub fn active(&self) -> bool {
        self.0.is_some()
    }
}

/// Context switches and migrations on each CPU, all tasks (perf software events).
pub struct PerCpuCounters {
    counters: Vec<(usize, Counter, Counter)>,
}

impl PerCpuCounters {
    pub fn open(cpus: &[usize]) -> Result<Self> {
        let mut counters = Vec::new();
        for &cpu in cpus {
            let open = |kind| -> Result<Counter> {
                // Switches and migrations happen in the kernel: count kernel mode too.
                let mut b = Builder::new().kind(kind).one_cpu(cpu).any_pid();
                b.include_kernel();
                let mut c = b.build().with_context(|| format!("opening a perf counter on CPU {cpu}"))?;
                c.enable()?;
                Ok(c)
            };
            counters.push((cpu, open(Software::CONTEXT_SWITCHES)?, open(Software::CPU_MIGRATIONS)?));
        }
        Ok(PerCpuCounters { counters })
    }

    /// (cpu, context switches, migrations) since open.
    pub fn read(&mut self) -> Result<Vec<(usize, u64, u64)>> {
        self.counters
            .iter_mut()
            .map(|(cpu, cs, mg)| Ok((*cpu, cs.read()?, mg.read()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_field() {
        let stat = "1234 (my prog (x)) R 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 \
                    100 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 5 0 0 0 0 0";
        assert_eq!(parse_stat_cpu(stat), Some((5, 'R')));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn gate_releases_every_waiter_at_once() {
        let gate = Arc::new(Gate::new());
        let passed = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, p) = (gate.clone(), passed.clone());
                std::thread::spawn(move || {
                    g.wait();
                    p.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(passed.load(Ordering::SeqCst), 0, "a waiter passed a closed gate");
        gate.open();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(passed.load(Ordering::SeqCst), 8);
        gate.wait(); // an open gate does not block
    }

    #[test]
    fn other_threads_cpu_clock() {
        let me = super::gettid();
        let a = super::other_thread_cpu_ns(me).expect("own thread's clock");
        super::burn_cpu_ns(2_000_000);
        let b = super::other_thread_cpu_ns(me).unwrap();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
        // join() returns when the thread has cleared its tid, a moment before
        // the kernel releases it: its clock may be readable for that moment.
        let child = std::thread::spawn(|| super::gettid()).join().unwrap();
        let gone = (0..200).any(|_| {
            let none = super::other_thread_cpu_ns(child).is_none();
            std::thread::sleep(std::time::Duration::from_millis(10));
            none
        });
        assert!(gone, "an exited thread still has a clock after 2 s");
    }

    #[test]
    fn a_thread_pins_itself() {
        let cpus = std::thread::spawn(|| {
            super::pin_self(0).unwrap();
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
            (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert_eq!(cpus, vec![0]);
        let e = std::thread::spawn(|| super::pin_self(100_000).unwrap_err().to_string()).join().unwrap();
        assert!(e.contains("CPU 100000"), "{e}");
    }

    #[test]
    fn own_thread_is_readable() {
        let (cpu, state) = proc_task_cpu(std::process::id(), gettid()).expect("reading our own stat");
        assert!(cpu < 4096);
        assert_eq!(state, 'R', "a thread reading its own stat is running");
        assert!(thread_cpu_ns() > 0);
    }
}

/// A thread created with pthread attributes std cannot set: its CPU
/// affinity from its first instruction (`pthread_attr_setaffinity_np`), as a
/// C program that starts a pinned thread pool does. glibc applies the
/// affinity before the thread runs any of its own code.
pub struct PinnedThread<T> {
    handle: libc::pthread_t,
    _result: std::marker::PhantomData<T>,
}

type ThreadBody<T> = Box<dyn FnOnce() -> T + Send>;

extern "C" fn pinned_thread_start<T>(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the Box that spawn_pinned leaked for this thread alone.
    let body = unsafe { Box::from_raw(arg as *mut ThreadBody<T>) };
    // A panic must not unwind into C: keep it for join.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    Box::into_raw(Box::new(result)) as *mut libc::c_void
}

impl<T: Send + 'static> PinnedThread<T> {
    /// Start `body` on a new thread allowed on `cpu` only, named `name`
    /// (at most 15 bytes), with a stack of `stack` bytes.
    pub fn spawn(cpu: usize, name: &str, stack: usize, body: impl FnOnce() -> T + Send + 'static) -> Result<Self> {
        if cpu >= libc::CPU_SETSIZE as usize {
            bail!("CPU {cpu} does not fit in a cpu set ({} CPUs)", libc::CPU_SETSIZE);
        }
        let name = std::ffi::CString::new(name).context("a thread name with a NUL byte")?;
        let arg = Box::into_raw(Box::new(Box::new(body) as ThreadBody<T>)) as *mut libc::c_void;
        // SAFETY: plain libc calls on an attribute object and a cpu set that
        // live on this stack; `arg` goes to the thread or is freed below.
        unsafe {
            let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
            let check = |r: libc::c_int, what: &str| -> Result<()> {
                if r != 0 {
                    return Err(std::io::Error::from_raw_os_error(r)).with_context(|| what.to_string());
                }
                Ok(())
            };
            check(libc::pthread_attr_init(attr.as_mut_ptr()), "pthread_attr_init")?;
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            let mut handle: libc::pthread_t = 0;
            let r = check(
                libc::pthread_attr_setaffinity_np(attr.as_mut_ptr(), std::mem::size_of::<libc::cpu_set_t>(), &set),
                "pthread_attr_setaffinity_np",
            )
            .and_then(|_| check(libc::pthread_attr_setstacksize(attr.as_mut_ptr(), stack), "pthread_attr_setstacksize"))
            // A normal thread whatever the creator is: by default a thread
            // inherits its creator's policy, and a SCHED_FIFO creator would
            // make FIFO spinners that never let each other run.
            .and_then(|_| {
                check(
                    libc::pthread_attr_setinheritsched(attr.as_mut_ptr(), libc::PTHREAD_EXPLICIT_SCHED),
                    "pthread_attr_setinheritsched",
                )
            })
            .and_then(|_| check(libc::pthread_attr_setschedpolicy(attr.as_mut_ptr(), libc::SCHED_OTHER), "pthread_attr_setschedpolicy"))
            .and_then(|_| {
                let param = libc::sched_param { sched_priority: 0 };
                check(libc::pthread_attr_setschedparam(attr.as_mut_ptr(), &param), "pthread_attr_setschedparam")
            })
            .and_then(|_| {
                check(
                    libc::pthread_create(&mut handle, attr.as_ptr(), pinned_thread_start::<T>, arg),
                    "pthread_create",
                )
            });
            libc::pthread_attr_destroy(attr.as_mut_ptr());
            if let Err(e) = r {
                drop(Box::from_raw(arg as *mut ThreadBody<T>));
                return Err(e);
            }
            // Naming another thread writes its comm through /proc: done by the
            // creator, so the thread's first instructions are its own.
            libc::pthread_setname_np(handle, name.as_ptr());
            Ok(PinnedThread { handle, _result: std::marker::PhantomData })
        }
    }

    /// Wait for the thread; its result, or an error if it panicked.
    pub fn join(self) -> Result<T> {
        let mut ret: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: the handle is joined once (join takes self).
        let r = unsafe { libc::pthread_join(self.handle, &mut ret) };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r)).context("pthread_join");
        }
        // SAFETY: pinned_thread_start returned this Box for this T.
        let result = unsafe { Box::from_raw(ret as *mut std::thread::Result<T>) };
        result.map_err(|_| anyhow::anyhow!("a workload thread panicked"))
    }
}
