// SPDX-License-Identifier: GPL-2.0-only
//! loadgen: workloads for the scheduler study.
//!
//! `loadgen stress` is the mixed workload the test bed runs under every
//! scheduler: CPU-bound spinners, threads that sleep and wake on a timer,
//! pipe ping-pong pairs and fork/exec churn, all at once for a fixed time.
//! It prints one JSON object with how far each part got, so a caller can
//! tell a starved part from a working one.

mod stress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about = "Workloads for the scheduler study")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Mixed workload: spinners, sleepers, pipe pairs and fork/exec churn.
    Stress(stress::Opts),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Stress(o) => stress::run(&o),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
