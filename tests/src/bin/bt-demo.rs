//! `bt-demo`: the whole ByteTorrent system on loopback, in one process. A 3-node tracker
//! cluster, a seeder and several peers share a generated file; the tracker's leader is
//! stopped half-way; every copy is compared byte for byte with the original.
//!
//! ```text
//! cargo run --release --bin bt-demo -- [--size-mib 256] [--peers 8] [--dir DIR]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The whole system on loopback: a 3-node tracker cluster, a seeder and several peers
/// share a generated file; the tracker leader is stopped half-way; every copy is verified.
#[derive(Parser)]
#[command(name = "bt-demo", version)]
struct Cli {
    /// Size of the file in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Number of downloading peers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    peers: u64,
    /// Work directory (a temporary one, removed afterwards, if absent).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracker::cli::init_logging();
    demo(cli.size_mib, cli.peers as usize, cli.dir).await
}

async fn demo(size_mib: u64, peers: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (dir, _temp) =
        tracker::dev::dir_or_temp(dir, "bt-demo-").context("creating a temporary directory")?;
    let options = tests::demo::DemoOptions {
        size_mib,
        leechers: peers,
        bars: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..tests::demo::DemoOptions::default()
    };
    let report = tests::demo::run(&dir, options).await?;
    let secs = report.elapsed.as_secs_f64();
    let delivered = report.file_len * report.leechers as u64;
    println!();
    println!("summary");
    println!(
        "  {} copies of {} delivered in {:.1} s: {}/s in all, {}/s per peer",
        report.leechers,
        tracker::format::size(report.file_len),
        secs,
        tracker::format::size((delivered as f64 / secs) as u64),
        tracker::format::size((report.file_len as f64 / secs) as u64),
    );
    match (report.killed_leader, report.new_leader) {
        (Some((old, at)), Some((new, gap))) => println!(
            "  tracker leader node {old} stopped at {:.0} %; node {new} took over after {} ms; \
             {} tracker requests failed over",
            at * 100.0,
            gap.as_millis(),
            report.tracker_failovers
        ),
        (Some((old, _)), None) => {
            println!("  tracker leader node {old} stopped; no new leader seen")
        }
        _ => println!("  the tracker leader was not stopped"),
    }
    println!(
        "  {} of {} copies are byte-for-byte identical to the original",
        report.verified_copies, report.leechers
    );
    Ok(())
}
