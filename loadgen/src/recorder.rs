// SPDX-License-Identifier: GPL-2.0-only
//! The BPF recorder (bpf/recorder/recorder.bpf.c) seen from userspace: load and
//! attach it for this process, read exact per-CPU thread counts from its
//! mmap'd .bss, and drain migration / latency events from its ring buffer.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBufferBuilder};
use rundata::MoveCause;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/recorder_skel.rs"));
}
#[allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code)]
pub mod intf {
    include!(concat!(env!("OUT_DIR"), "/recorder_intf.rs"));
}

pub use skel::RecorderSkel;
use skel::*;

pub const MAX_CPUS: usize = intf::recorder_consts_REC_MAX_CPUS as usize;
pub const MAX_THREADS: usize = intf::recorder_consts_REC_MAX_THREADS as usize;
// The limits the study's tools publish (rundata) are these tables' sizes.
const _: () = assert!(MAX_CPUS == rundata::RECORDER_MAX_CPUS && MAX_THREADS == rundata::RECORDER_MAX_THREADS);

/// One event from the ring buffer, times in ns of CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `cause`: as the scheduler noted it; MoveCause::Unknown when it left no
    /// note (Recorder::causes_attributed says whether one could).
    Migrate { ts: u64, tid: u32, from: i32, to: i32, cause: MoveCause },
    WakeLatency { ts: u64, tid: u32, cpu: i32, ns: u64 },
}

impl Event {
    fn parse(data: &[u8]) -> Option<Event> {
        if data.len() < std::mem::size_of::<intf::rec_event>() {
            return None;
        }
        // SAFETY: the size was checked; the ring buffer may not align records.
        let e: intf::rec_event = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
        match e.kind {
            intf::rec_event_kind_REC_EV_MIGRATE => {
                Some(Event::Migrate { ts: e.ts, tid: e.tid, from: e.from_cpu, to: e.to_cpu, cause: move_cause(e.value) })
            }
            intf::rec_event_kind_REC_EV_WAKE_LATENCY => {
                Some(Event::WakeLatency { ts: e.ts, tid: e.tid, cpu: e.to_cpu, ns: e.value })
            }
            _ => None,
        }
    }
}

/// The cause of move_note.h's number (a number it does not have: Unknown).
pub fn move_cause(v: u64) -> MoveCause {
    let Ok(v) = u32::try_from(v) else { return MoveCause::Unknown };
    match v {
        intf::move_cause_MOVE_WAKEUP => MoveCause::Wakeup,
        intf::move_cause_MOVE_BALANCE => MoveCause::Balance,
        intf::move_cause_MOVE_NEWIDLE => MoveCause::NewIdle,
        intf::move_cause_MOVE_NOHZ => MoveCause::Nohz,
        intf::move_cause_MOVE_STEAL => MoveCause::Steal,
        intf::move_cause_MOVE_AFFINITY => MoveCause::Affinity,
        _ => MoveCause::Unknown,
    }
}

/// The scheduler's name of the note map (shared.bpf.h), as the kernel keeps it.
const MOVE_NOTES_MAP: &str = "battle_moves";
/// How scx_battle's sched_ext ops name starts ("scx_battle_<policy>_<version>",
/// sched-ext's main.rs names it so).
const BATTLE_OPS_PREFIX: &str = "scx_battle_";

/// scx_battle's note map, when scx_battle is the attached sched_ext
/// scheduler: a map of that name, type and value size that one of the
/// scheduler's struct_ops programs uses (another recorder's own map has the
/// same name: libbpf's reuse_fd needs it to), the newest if several.
fn scheduler_move_notes() -> Option<libbpf_rs::MapHandle> {
    use libbpf_rs::query::{MapInfoIter, ProgInfoIter, ProgInfoQueryOptions};
    let ops = std::fs::read_to_string("/sys/kernel/sched_ext/root/ops").ok()?;
    if !ops.trim().starts_with(BATTLE_OPS_PREFIX) {
        return None;
    }
    let candidates: Vec<u32> = MapInfoIter::default()
        .filter(|m| {
            m.name.to_str() == Some(MOVE_NOTES_MAP)
                && m.ty == libbpf_rs::MapType::TaskStorage
                && m.value_size as usize == std::mem::size_of::<intf::move_note>()
        })
        .map(|m| m.id)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let used_by_scheduler: Vec<u32> = ProgInfoIter::with_query_opts(ProgInfoQueryOptions::default().include_map_ids(true))
        .filter(|p| p.ty == libbpf_rs::ProgramType::StructOps)
        .flat_map(|p| p.map_ids)
        .filter(|id| candidates.contains(id))
        .collect();
    let id = used_by_scheduler.into_iter().max()?;
    libbpf_rs::MapHandle::from_map_id(id).ok()
}

/// A thread's waits for a CPU: runnable, not running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    pub total_ns: u64,
    pub max_ns: u64,
    /// The longest wait since time 0 (Counts::set_t0), the part after it.
    pub max_after_t0_ns: u64,
    pub count: u64,
    /// The wait under way when read (0 if the thread was running or asleep).
    pub open_ns: u64,
}

/// Read-only view of the recorder's counters, shareable with a sampler thread.
#[derive(Clone, Copy)]
pub struct Counts {
    bss: *mut types::bss,
}

// SAFETY: the pointer is into the skeleton's .bss mmap, which lives as long as
// the Recorder; every access is a volatile read or write of a plain integer.
unsafe impl Send for Counts {}
unsafe impl Sync for Counts {}

impl Counts {
    fn seq(&self) -> u64 {
        unsafe { std::ptr::read_volatile(&(*self.bss).seq) }
    }
    fn in_flight(&self) -> i64 {
        unsafe { std::ptr::read_volatile(&(*self.bss).in_flight) }
    }

    /// An exact copy of the per-CPU counts into `out`; returns the number of
    /// live tracked threads, or None if updates never paused long enough.
    pub fn snapshot(&self, out: &mut [u32]) -> Option<u32> {
        let n = out.len().min(MAX_CPUS);
        for _ in 0..10_000 {
            let seq = self.seq();
            fence(Ordering::SeqCst);
            if self.in_flight() != 0 {
                std::hint::spin_loop();
                continue;
            }
            let live = unsafe { std::ptr::read_volatile(&(*self.bss).live) };
            for (i, v) in out.iter_mut().enumerate().take(n) {
                *v = unsafe { std::ptr::read_volatile(&(*self.bss).cpu_threads[i]) };
            }
            fence(Ordering::SeqCst);
            if self.in_flight() == 0 && self.seq() == seq {
                return Some(live);
            }
        }
        None
    }

    /// Time 0 of the run (CLOCK_MONOTONIC ns): waits after it are kept apart.
    pub fn set_t0(&self, ns: u64) {
        unsafe { std::ptr::write_volatile(&mut (*self.bss).t0_ns, ns) };
    }

    pub fn set_tracking(&self, on: bool) {
        unsafe { std::ptr::write_volatile(&mut (*self.bss).tracking, on as u32) };
        fence(Ordering::SeqCst);
    }

    pub fn lost_events(&self) -> u64 {
        unsafe { std::ptr::read_volatile(&(*self.bss).lost_events) }
    }

    pub fn untracked_cpu(&self) -> u64 {
        unsafe { std::ptr::read_volatile(&(*self.bss).untracked_cpu) }
    }
}

pub struct Recorder<'obj> {
    skel: RecorderSkel<'obj>,
    causes_attributed: bool,
}

impl<'obj> Recorder<'obj> {
    /// Load the recorder for the threads of process `tgid` and attach it.
    pub fn start(tgid: u32, open_object: &'obj mut MaybeUninit<OpenObject>) -> Result<Self> {
        let mut open = RecorderSkelBuilder::default()
            .open(open_object)
            .context("opening the BPF recorder")?;
        open.maps.rodata_data.as_mut().unwrap().target_tgid = tgid;
        // Under scx_battle, share its notes of why threads move (move_note.h).
        let notes = scheduler_move_notes();
        if let Some(h) = &notes {
            use std::os::fd::AsFd;
            open.maps.battle_moves.reuse_fd(h.as_fd()).context("sharing scx_battle's map of move causes")?;
        }
        let mut skel = open.load().context(
            "loading the BPF recorder (needs root and a kernel with BTF and tp_btf support)",
        )?;
        skel.attach().context("attaching the recorder to the sched tracepoints")?;
        Ok(Recorder { skel, causes_attributed: notes.is_some() })
    }

    /// Whether migrations carry scx_battle's causes (it was the scheduler
    /// when the recorder started); if not, every cause is NotAttributed.
    pub fn causes_attributed(&self) -> bool {
        self.causes_attributed
    }

    pub fn counts(&mut self) -> Counts {
        let bss = self.skel.maps.bss_data.as_deref_mut().expect("recorder .bss is mmap'd");
        Counts { bss: bss as *mut types::bss }
    }

    /// Mark a tracked thread so its wake-to-run latency is recorded.
    pub fn track_latency(&self, tid: u32) -> Result<()> {
        let key = tid.to_ne_bytes();
        let map = &self.skel.maps.threads;
        let Some(mut val) = map.lookup(&key, MapFlags::ANY)? else {
            bail!("thread {tid} is not tracked by the recorder");
        };
        let off = std::mem::offset_of!(intf::rec_thread, track_latency);
        val[off..off + 4].copy_from_slice(&1u32.to_ne_bytes());
        map.update(&key, &val, MapFlags::EXIST)?;
        Ok(())
    }

    /// The CPU the recorder has a thread on (-1 once it exited), if tracked.
    pub fn thread_cpu(&self, tid: u32) -> Option<i32> {
        let val = self.skel.maps.threads.lookup(&tid.to_ne_bytes(), MapFlags::ANY).ok()??;
        let off = std::mem::offset_of!(intf::rec_thread, cpu);
        Some(i32::from_ne_bytes(val[off..off + 4].try_into().unwrap()))
    }

    /// Migrations of every thread the recorder has seen, by tid.
    pub fn thread_migrations(&self) -> Result<Vec<(u32, u32)>> {
        let map = &self.skel.maps.threads;
        let off = std::mem::offset_of!(intf::rec_thread, migrations);
        let mut out = Vec::new();
        for key in map.keys() {
            if let Some(val) = map.lookup(&key, MapFlags::ANY)? {
                let tid = u32::from_ne_bytes(key[..4].try_into().unwrap());
                out.push((tid, u32::from_ne_bytes(val[off..off + 4].try_into().unwrap())));
            }
        }
        Ok(out)
    }

    /// Every tracked thread's waits for a CPU so far, by tid. A wait still
    /// under way at `now_ns` (CLOCK_MONOTONIC) counts up to then; `t0_ns`
    /// is the time 0 given to Counts::set_t0 (0: none yet).
    pub fn thread_waits(&self, now_ns: u64, t0_ns: u64) -> Result<BTreeMap<u32, Waits>> {
        let map = &self.skel.maps.threads;
        let mut out = BTreeMap::new();
        for key in map.keys() {
            let Some(val) = map.lookup(&key, MapFlags::ANY)? else { continue };
            if val.len() < std::mem::size_of::<intf::rec_thread>() {
                bail!("recorder thread entry of {} bytes", val.len());
            }
            // SAFETY: the size was checked; map values are not aligned for us.
            let t: intf::rec_thread = unsafe { std::ptr::read_unaligned(val.as_ptr().cast()) };
            let tid = u32::from_ne_bytes(key[..4].try_into().unwrap());
            let open = if t.runnable_at != 0 && now_ns > t.runnable_at { now_ns - t.runnable_at } else { 0 };
            let open_after_t0 =
                if open > 0 && t0_ns != 0 && now_ns > t0_ns { now_ns - t.runnable_at.max(t0_ns) } else { 0 };
            out.insert(
                tid,
                Waits {
                    total_ns: t.wait_total_ns + open,
                    max_ns: t.wait_max_ns.max(open),
                    max_after_t0_ns: t.wait_max_t0_ns.max(open_after_t0),
                    count: t.waits as u64 + (open > 0) as u64,
                    open_ns: open,
                },
            );
        }
        Ok(out)
    }

    /// Total ns the recorder's BPF programs ran (needs BPF run-time stats on).
    pub fn bpf_run_ns(&self) -> u64 {
        use std::os::fd::{AsFd, AsRawFd};
        let mut total = 0;
        for prog in self.skel.object().progs() {
            let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of_val(&info) as u32;
            let fd = prog.as_fd().as_raw_fd();
            // SAFETY: info is a plain struct of the size passed.
            let r = unsafe {
                libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len)
            };
            if r == 0 {
                total += info.run_time_ns;
            }
        }
        total
    }

    /// A poller that hands every ring-buffer event to `sink`.
    pub fn events<'a, F>(&'a self, sink: F) -> Result<EventPoller<'a>>
    where
        F: FnMut(Event) + 'a,
    {
        let sink = Rc::new(RefCell::new(sink));
        let mut builder = RingBufferBuilder::new();
        builder.add(&self.skel.maps.events, move |data: &[u8]| {
            if let Some(e) = Event::parse(data) {
                (sink.borrow_mut())(e);
            }
            0
        })?;
        Ok(EventPoller { rb: builder.build()? })
    }
}

pub struct EventPoller<'a> {
    rb: libbpf_rs::RingBuffer<'a>,
}

impl EventPoller<'_> {
    /// Handle everything already in the buffer, without waiting. Only when
    /// nothing adds events any more: while they come faster than they are
    /// handled (a scheduler that migrates thousands of threads a second, in
    /// a slow guest), this does not return.
    pub fn drain(&self) -> Result<()> {
        self.rb.consume().context("draining the recorder's ring buffer")?;
        Ok(())
    }

    /// Handle at most `n` events; how many were handled. Events the buffer
    /// could not hold meanwhile are counted by the BPF side (lost_events).
    pub fn drain_at_most(&self, n: usize) -> Result<usize> {
        let got = self.rb.consume_raw_n(n);
        if got < 0 {
            return Err(std::io::Error::from_raw_os_error(-got)).context("draining the recorder's ring buffer");
        }
        Ok(got as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: u32, tid: u32, from: i32, to: i32, ts: u64, value: u64) -> Vec<u8> {
        let e = intf::rec_event { ts, value, kind, tid, from_cpu: from, to_cpu: to };
        let p = &e as *const intf::rec_event as *const u8;
        unsafe { std::slice::from_raw_parts(p, std::mem::size_of_val(&e)) }.to_vec()
    }

    #[test]
    fn parses_events() {
        let m = raw(intf::rec_event_kind_REC_EV_MIGRATE, 42, 0, 3, 1000, intf::move_cause_MOVE_STEAL as u64);
        assert_eq!(
            Event::parse(&m),
            Some(Event::Migrate { ts: 1000, tid: 42, from: 0, to: 3, cause: MoveCause::Steal })
        );
        let l = raw(intf::rec_event_kind_REC_EV_WAKE_LATENCY, 7, -1, 2, 5, 1234);
        assert_eq!(Event::parse(&l), Some(Event::WakeLatency { ts: 5, tid: 7, cpu: 2, ns: 1234 }));
        assert_eq!(Event::parse(&m[..10]), None);
        assert_eq!(Event::parse(&raw(99, 1, 1, 1, 1, 1)), None);
    }

    /// Every number move_note.h defines has its own cause; none is left Unknown
    /// but MOVE_NONE, and numbers past MOVE_NR are Unknown.
    #[test]
    fn every_noted_cause_has_a_name() {
        let mut seen = std::collections::BTreeSet::new();
        for v in 1..intf::move_cause_MOVE_NR {
            let c = move_cause(v as u64);
            assert_ne!(c, MoveCause::Unknown, "move_note.h's cause {v} has no MoveCause");
            assert!(seen.insert(c), "two numbers map to {c:?}");
        }
        assert_eq!(move_cause(intf::move_cause_MOVE_NONE as u64), MoveCause::Unknown);
        assert_eq!(move_cause(intf::move_cause_MOVE_NR as u64), MoveCause::Unknown);
        assert_eq!(move_cause(u64::MAX), MoveCause::Unknown);
    }
}
