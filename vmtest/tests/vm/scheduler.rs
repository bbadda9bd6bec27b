// SPDX-License-Identifier: GPL-2.0-only
//! The scheduler checks (scripts/check-scheduler, once per policy through
//! scripts/check-policies): load, bad options, the mixed workload, hotplug,
//! clean exit, ejection, the kernel log; on `small` and `paper` with the
//! newest kernel and on `flat` (one node) with the oldest. The same boots
//! then run the crowded start (crate::crowded).

use super::*;

/// How long the mixed workload runs under each policy, in guest seconds
/// (10 s of it cost 60-110 s of wall time on `small`, 2026-12-06).
const STRESS_SECS: u32 = 5;

/// Every policy on `small` (newest kernel), then the crowded start with 16
/// threads per CPU under the kernel's scheduler and every policy.
pub static SMALL: Job<PolicyBoot> = Job::new("small", || {
    run_policies("small", "small", "newest", &["vtime", "cfs", "ule"], Some((crowded::SMALL_THREADS, &["kernel", "vtime", "cfs", "ule"])))
});

/// vtime on `paper`, then the crowded start with the paper's 512 threads
/// under CFS and ULE (the policies with a bound of their own rules), then
/// CFS's balancing cadence on a released figure-6 load (crate::cfs).
pub static PAPER: Job<PolicyBoot> = Job::new("paper", || {
    run_policies_with(
        "paper",
        "paper",
        "newest",
        &["vtime"],
        "",
        Some((crowded::PAPER_THREADS, &["cfs", "ule"])),
        Some(&format!("scripts/check-cadence --secs {}", crate::cfs::CADENCE_SECS)),
    )
});

/// The oldest kernel series on one node (`flat`): CFS's checks (hotplug
/// included: the 6.19 restart that meets a second hotplug event), then the
/// crowded start under ULE and vtime. Every load takes 2.6-3.3 min on this
/// kernel's verifier under emulation (7.3: 10-40 s), and CFS's checks are
/// six loads: ULE's checks and CFS's crowded start here would add 40 % to
/// the longest job of the suite (2026-12-06: 2400 s and cut, with both).
/// ULE still loads and runs 128 spinners on this kernel, and both policies'
/// checks run on the newest.
pub static OLDEST: Job<PolicyBoot> = Job::new("oldest", || {
    run_policies("oldest", "flat", "oldest", &["cfs"], Some((crowded::SMALL_THREADS, &["vtime", "ule"])))
});

/// The ablation's six mixes of CFS's and ULE's run queue, placement and
/// balancer (rundata::policy, as scx_battle --list-policies prints them), on
/// `small` with the newest kernel: each policy's own checks (load, mixed
/// workload, never ejected, hotplug, clean exit, kernel log), the loader's
/// having run under cfs and ule in SMALL. The oldest kernel's loads of them
/// are measured by hand (docs/testing.md): 3 min of emulated verifier each.
pub static MIXES: Job<PolicyBoot> = Job::new("mixes", || {
    let names: Vec<String> = mixes().iter().map(|p| p.to_string()).collect();
    let names: Vec<&'static str> = names.into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect();
    run_policies_with("mixes", "small", "newest", &names, "--policy-only", None, None)
});

/// The six combinations that are neither cfs nor ule.
pub fn mixes() -> Vec<rundata::policy::Policy> {
    use rundata::policy::{Policy, CFS, ULE};
    Policy::all().into_iter().filter(|p| !matches!(*p, Policy::Vtime) && *p != CFS && *p != ULE).collect()
}

/// The scheduler checks of one boot, per policy (in the order given), and the boot.
pub struct PolicyBoot {
    pub runs: Vec<Run>,
    pub vm: VmRun,
}

pub struct Run {
    pub preset: &'static str,
    pub status: Option<i32>,
    pub wall_secs: f64,
    pub out: PathBuf,
    pub stderr: String,
    /// check name -> (passed, detail)
    pub checks: BTreeMap<String, (bool, String)>,
}

/// scripts/check-scheduler for each policy in one boot (scripts/check-policies),
/// then, in the same boot, scripts/check-crowded-start for CROWDED's schedulers
/// with `threads` threads (none: skipped). Returns the checks per policy and the VM run.
fn run_policies(
    name: &'static str,
    preset: &'static str,
    kernel: &str,
    policies: &[&str],
    crowded: Option<(usize, &[&str])>,
) -> PolicyBoot {
    run_policies_with(name, preset, kernel, policies, "", crowded, None)
}

/// run_policies with more options for scripts/check-policies, and a last
/// command for the same boot.
fn run_policies_with(
    name: &'static str,
    preset: &'static str,
    kernel: &str,
    policies: &[&str],
    options: &str,
    crowded: Option<(usize, &[&str])>,
    last: Option<&str>,
) -> PolicyBoot {
    let mut script = format!("scripts/check-policies --stress-secs {STRESS_SECS} {options} {}; rc=$?", policies.join(" "));
    if let Some((threads, scheds)) = crowded {
        script += &format!("; scripts/check-crowded-start --threads {threads} --pin-secs {} {} || rc=1", crowded::PIN_SECS, scheds.join(" "));
    }
    if let Some(cmd) = last {
        script += &format!("; {cmd} || rc=1");
    }
    script += "; exit $rc";
    let vm = run_vm(name, preset, kernel, &["bash", "-c", &script]);
    let runs = policies
        .iter()
        .map(|spec| spec.split(':').next().unwrap())
        .map(|p| Run {
            preset: Box::leak(format!("{name}/{p}").into_boxed_str()),
            status: vm.status,
            wall_secs: vm.wall_secs,
            out: vm.out.join(p),
            stderr: vm.stderr.clone(),
            checks: read_checks(&vm.out.join(p).join("checks.txt")),
        })
        .collect();
    PolicyBoot { runs, vm }
}

/// The run directories scripts/check-recorder leaves: spin and mixed, under
/// the kernel's scheduler and under scx_battle.

fn assert_check(run: &Run, name: &str) {
    match run.checks.get(name) {
        Some((true, detail)) => eprintln!("[{}] {name}: {detail}", run.preset),
        Some((false, detail)) => panic!(
            "[{}] check {name} failed: {detail}\n(results in {})",
            run.preset,
            run.out.display()
        ),
        None => panic!(
            "[{}] check {name} never ran: scripts/vm exited {:?} after {:.0} s; results in {}\n{}",
            run.preset,
            run.status,
            run.wall_secs,
            run.out.display(),
            run.stderr
        ),
    }
}

macro_rules! checks {
    ($($test:ident => $job:ident $index:literal $name:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_check(&$job.get().runs[$index], $name); })*
    };
}

checks! {
    small_topology => SMALL 0 "topology",
    small_bad_options => SMALL 0 "bad_options",
    small_not_root_refused => SMALL 0 "not_root_refused",
    small_load => SMALL 0 "load",
    small_ops_name => SMALL 0 "ops_name",
    small_second_instance_refused => SMALL 0 "second_instance_refused",
    small_mixed_workload => SMALL 0 "mixed_workload",
    small_never_ejected => SMALL 0 "never_ejected",
    small_stats_printed => SMALL 0 "stats_printed",
    small_monitor => SMALL 0 "monitor",
    small_monitor_without_scheduler => SMALL 0 "monitor_without_scheduler",
    small_hotplug_restart => SMALL 0 "hotplug_restart",
    small_clean_exit => SMALL 0 "clean_exit",
    small_ejection_reported => SMALL 0 "ejection_reported",
    small_kernel_log_clean => SMALL 0 "kernel_log_clean",
    cfs_small_load => SMALL 1 "load",
    cfs_small_mixed_workload => SMALL 1 "mixed_workload",
    cfs_small_never_ejected => SMALL 1 "never_ejected",
    cfs_small_stats_printed => SMALL 1 "stats_printed",
    cfs_small_monitor => SMALL 1 "monitor",
    cfs_small_hotplug_restart => SMALL 1 "hotplug_restart",
    cfs_small_clean_exit => SMALL 1 "clean_exit",
    cfs_small_ejection_reported => SMALL 1 "ejection_reported",
    cfs_small_kernel_log_clean => SMALL 1 "kernel_log_clean",
    ule_small_load => SMALL 2 "load",
    ule_small_mixed_workload => SMALL 2 "mixed_workload",
    ule_small_never_ejected => SMALL 2 "never_ejected",
    ule_small_stats_printed => SMALL 2 "stats_printed",
    ule_small_monitor => SMALL 2 "monitor",
    ule_small_hotplug_restart => SMALL 2 "hotplug_restart",
    ule_small_clean_exit => SMALL 2 "clean_exit",
    ule_small_ejection_reported => SMALL 2 "ejection_reported",
    ule_small_kernel_log_clean => SMALL 2 "kernel_log_clean",
    paper_topology => PAPER 0 "topology",
    paper_load => PAPER 0 "load",
    paper_ops_name => PAPER 0 "ops_name",
    paper_mixed_workload => PAPER 0 "mixed_workload",
    paper_never_ejected => PAPER 0 "never_ejected",
    paper_hotplug_restart => PAPER 0 "hotplug_restart",
    paper_clean_exit => PAPER 0 "clean_exit",
    paper_ejection_reported => PAPER 0 "ejection_reported",
    paper_kernel_log_clean => PAPER 0 "kernel_log_clean",
    oldest_kernel_cfs_load => OLDEST 0 "load",
    oldest_kernel_cfs_mixed_workload => OLDEST 0 "mixed_workload",
    oldest_kernel_cfs_never_ejected => OLDEST 0 "never_ejected",
    oldest_kernel_cfs_hotplug_restart => OLDEST 0 "hotplug_restart",
    oldest_kernel_cfs_clean_exit => OLDEST 0 "clean_exit",
    oldest_kernel_cfs_kernel_log_clean => OLDEST 0 "kernel_log_clean",
}

#[test]
fn every_check_passed_and_vm_exit_status_agrees() {
    for run in [&SMALL, &PAPER, &OLDEST].iter().flat_map(|job| &job.get().runs) {
        let failed: Vec<_> = run.checks.iter().filter(|(_, (ok, _))| !ok).map(|(n, _)| n).collect();
        assert!(run.checks.len() >= 13, "[{}] only {} checks ran", run.preset, run.checks.len());
        assert!(failed.is_empty(), "[{}] failed checks: {failed:?}", run.preset);
        assert_eq!(run.status, Some(0), "[{}] scripts/vm exit status", run.preset);
    }
}


#[test]
fn oldest_and_newest_kernels_both_ran() {
    let kernel_of = |r: &Run| r.checks.get("topology").map(|(_, d)| d.clone()).unwrap_or_default();
    let (old, new) = (kernel_of(&OLDEST.get().runs[0]), kernel_of(&SMALL.get().runs[1]));
    eprintln!("oldest: {old}\nnewest: {new}");
    let release = |d: &str| d.split("kernel ").nth(1).unwrap_or("").to_string();
    assert!(!release(&old).is_empty() && !release(&new).is_empty(), "no kernel named");
    assert_ne!(release(&old), release(&new), "the same kernel ran twice");
}


/// The checks every mix must pass (check-scheduler --policy-only).
const MIX_CHECKS: [&str; 9] = [
    "load",
    "ops_name",
    "mixed_workload",
    "never_ejected",
    "stats_printed",
    "monitor",
    "hotplug_restart",
    "clean_exit",
    "kernel_log_clean",
];

macro_rules! mix_checks {
    ($($test:ident => $index:literal),* $(,)?) => {
        $(#[test] fn $test() {
            let run = &MIXES.get().runs[$index];
            for name in MIX_CHECKS {
                assert_check(run, name);
            }
            // The ops name says which combination runs: scx_battle_<queue>.<place>.<balance>_...
            let want = format!("scx_battle_{}", mixes()[$index].ops_name());
            let (_, detail) = &run.checks["ops_name"];
            assert!(detail.contains(&want), "[{}] ops name {detail}, want {want}", run.preset);
        })*
    };
}

mix_checks! {
    mix_cfs_cfs_ule => 0,
    mix_cfs_ule_cfs => 1,
    mix_cfs_ule_ule => 2,
    mix_ule_cfs_cfs => 3,
    mix_ule_cfs_ule => 4,
    mix_ule_ule_cfs => 5,
}

#[test]
fn the_mixes_are_the_six_of_list_policies() {
    let names: Vec<String> = mixes().iter().map(|p| p.to_string()).collect();
    assert_eq!(names, ["cfs-cfs-ule", "cfs-ule-cfs", "cfs-ule-ule", "ule-cfs-cfs", "ule-cfs-ule", "ule-ule-cfs"]);
    let out = std::process::Command::new(bin_dir().join("scx_battle")).arg("--list-policies").output().expect("scx_battle --list-policies");
    let listed = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect::<Vec<_>>();
    for n in &names {
        assert!(listed.contains(n), "scx_battle --list-policies does not list {n}: {listed:?}");
    }
}
