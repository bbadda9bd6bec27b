// SPDX-License-Identifier: GPL-2.0-only
//! Reading, measuring and plotting loadgen run directories.

pub mod ablation;
pub mod apps;
pub mod apps_compare;
pub mod counters;
pub mod metrics;
pub mod overhead;
pub mod paper;
pub mod perfetto;
pub mod plot;
pub mod report;
pub mod run;
pub mod serve;
pub mod starve_plot;
