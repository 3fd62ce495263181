//! `loadtest`: a restaurant's rush hour against the rail engine, over its public protocol only
//! (REST and websockets), with a report a person reads at a glance.
//!
//! - `loadtest run` plays waiters, counter tills, kitchen screens, expo and tablets at a
//!   seeded, open-loop order rate (with one-call counter orders, voids, recalls and 86s),
//!   measures latencies and throughput, and verifies that every ticket, void and recall
//!   reached every screen of its station exactly once, that the screens' acknowledgements left
//!   no ticket escalated unseen, and that every ready notice reached its table.
//! - `loadtest soak` plays the same run for an hour at a moderate rate while screens and
//!   tablets hang up and dial again at random, reads the engine's `/metrics` every minute
//!   (memory, websockets, writer tasks) and fails when memory keeps growing after the warm-up or
//!   sockets and writers do not come back to the count expected.
//! - `loadtest connections` opens many idle screens and tablets and reports the server's RSS.
//!
//! Exit code: 0 passed, 1 the run failed its checks, 2 the run could not be carried out.

mod auth;
mod charts;
mod connections;
mod menu;
mod metrics;
mod plan;
mod proto;
mod report;
mod run;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "A restaurant's rush against the rail engine, over its public protocol only"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a rush (waiters, screens, expo, tablets) and write a report.
    Run(run::RunArgs),
    /// A long run that finds leaks: an hour at a moderate rate, devices redialing at random,
    /// the engine's memory, websockets and writer tasks read every minute.
    Soak(run::soak::SoakArgs),
    /// Hold many idle screens and tablets open on one replica and report its memory.
    Connections(connections::ConnArgs),
}

/// Thousands of sockets' frames decoded on a few threads: mimalloc keeps the load test's own
/// allocations cheap, so the machine's CPU goes to the engine under test.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Raises this process's soft open-files limit to its hard limit (10,000 sockets need more
/// than the usual 1,024); a server spawned from here inherits it. Returns the limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Where reports go by default: `target/loadtest-reports` when this binary runs from a cargo
/// build folder (`target/release/loadtest`), else `./loadtest-reports`.
pub fn reports_dir() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .filter(|target| target.file_name().is_some_and(|n| n == "target"))
        .map(|target| target.join("loadtest-reports"))
        .unwrap_or_else(|| std::path::PathBuf::from("loadtest-reports"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Soak(args) => run::soak::run(args).await,
            Command::Connections(args) => connections::run(args).await,
        }
    });
    // Orders still waiting when a run gives up are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
