// SPDX-License-Identifier: GPL-2.0-only
//! The application suite (`study run --apps`): `loadgen app`, every
//! application of rundata::apps::APPS (or those --app names) one after the
//! other under one scheduler. One run per scheduler and round: the
//! scheduler is loaded once for all of them, as for the overhead set.

use super::overhead::Size;

pub const ABOUT: &str = "real applications, one after the other (compressors, an encoder, a renderer, a build, \
                         PostgreSQL, nginx, redis, scheduler stressors; loadgen app --list)";

/// Guest seconds per application at each size (its measured phase and the
/// setting up around it: inputs, servers, tables), averaged over the suite.
/// Measured on `small` under the kernel (2026-12-07): tiny 48 s for the 12,
/// quick about 140 s; full is quick's scaled by the work (x4 for compute,
/// x3 for the timed servers), not yet measured.
fn guest_s_per_app(size: Size) -> f64 {
    match size {
        Size::Tiny => 4.0,
        Size::Quick => 12.0,
        Size::Full => 40.0,
    }
}

/// (run directory, loadgen arguments, guest seconds)
pub fn run(size: Size, apps: &[String], name: String) -> (String, Vec<String>, f64) {
    let list = if apps.is_empty() { "all".to_string() } else { apps.join(",") };
    let n = if apps.is_empty() { rundata::apps::APPS.len() } else { apps.len() };
    let size_arg = match size {
        Size::Tiny => "tiny",
        Size::Quick => "quick",
        Size::Full => "full",
    };
    let args = vec!["app".to_string(), list, "--size".into(), size_arg.into()];
    (format!("apps/{name}"), args, n as f64 * guest_s_per_app(size))
}
