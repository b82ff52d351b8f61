//! `tracker-crowd`: a flash crowd of real tracker clients against a cluster of real
//! `bt-tracker run` processes.
//!
//! `tracker-crowd run` (the coordinator) starts a 3-node cluster (fsync on, default
//! settings), publishes one big torrent and a few hundred small ones, and starts worker
//! processes of itself (`tracker-crowd worker`), each running thousands of peers with
//! their own keys, QUIC endpoints and [`TrackerClient`](tracker::client::TrackerClient)s.
//! The peers join within the join window, then report new pieces about once a second,
//! heartbeat, and ask for more neighbours and for the holders of a piece; some leave
//! cleanly, and one worker holding a share of the peers is killed with SIGKILL (their
//! entries must expire on every node). The leader is killed with SIGKILL once mid-run and
//! restarted a few seconds later. At the end every acknowledged report is checked against
//! every node's own state, and a table is printed: per request kind and phase, count,
//! latency percentiles, retries and errors; per node, CPU seconds, peak RSS and snapshot
//! figures; Paxos slots/s and commands per slot; the delay until a report is applied on
//! every node.
//!
//! See `bench/tracker-crowd.sh` for the full-size run and `--help` for every setting.

mod check;
mod cluster;
mod coordinator;
mod plan;
mod report;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "A flash crowd of real tracker clients against real tracker processes")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Runs the whole benchmark (the coordinator).
    Run(coordinator::Settings),
    /// One worker process (started by `run`; not for people).
    #[command(hide = true)]
    Worker {
        /// The plan file written by the coordinator.
        #[arg(long)]
        plan: PathBuf,
        /// Where to write the result.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Commands::Run(settings) => {
            let passed = coordinator::run(settings)?;
            if !passed {
                std::process::exit(1);
            }
            Ok(())
        }
        Commands::Worker { plan, out } => worker::run(&plan, &out),
    }
}
