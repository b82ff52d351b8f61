//! Load generator and probes for the key-value cluster.
//!
//! * `put`: closed-loop writers, one JSON line with writes/s and latency percentiles;
//! * `failover`: kills the leader's process and times the first acknowledged write after;
//! * `leader`: which node leads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certs::Fingerprint;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use tests::kv::{KvClient, KvResponse, client_endpoint};
use transport::{Backoff, Dialer};

#[derive(Parser)]
#[command(about = "Load and probes for the replicated key-value server")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// Client addresses of the servers, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<SocketAddr>,
    /// The cluster CA certificate (servers must chain to it).
    #[arg(long)]
    ca: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Closed-loop puts from concurrent clients.
    Put {
        #[command(flatten)]
        target: Target,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Warm-up seconds before measuring.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        val_size: usize,
    },
    /// Kills PID (the leader) and times the first write acknowledged after the kill.
    Failover {
        #[command(flatten)]
        target: Target,
        /// The leader's process id.
        #[arg(long)]
        kill_pid: u32,
        /// Milliseconds between probes.
        #[arg(long, default_value_t = 5)]
        probe_ms: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        max_s: u64,
    },
    /// Prints the id of the node that leads.
    Leader {
        #[command(flatten)]
        target: Target,
    },
    /// Prints every server's status, one JSON line each.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

fn ca_fingerprint(path: &std::path::Path) -> anyhow::Result<Fingerprint> {
    Ok(tests::kv::ca_fingerprint(path)?)
}

fn dialer() -> anyhow::Result<Dialer> {
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    Ok(Dialer::new(client_endpoint("kv-load")?, backoff))
}

/// One thread: the load tool shares the machine with the servers it measures, so it should
/// cost as little CPU as it can (etcdload runs the same way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Put {
            target,
            clients,
            duration,
            warmup,
            val_size,
        } => put(target, clients, duration, warmup, val_size).await,
        Cmd::Failover {
            target,
            kill_pid,
            probe_ms,
            max_s,
        } => failover(target, kill_pid, probe_ms, max_s).await,
        Cmd::Status { target } => {
            let client = KvClient::with_dialer(
                dialer()?,
                target.servers.clone(),
                ca_fingerprint(&target.ca)?,
            );
            for addr in &target.servers {
                match client.status(*addr).await {
                    Ok(KvResponse::Status {
                        id,
                        is_leader,
                        leader,
                        decided,
                        applied,
                        snapshot_slot,
                    }) => println!(
                        "{{\"server\":\"{addr}\",\"id\":{id},\"is_leader\":{is_leader},\"leader\":{},\"decided\":{decided},\"applied\":{applied},\"snapshot_slot\":{snapshot_slot}}}",
                        leader.map_or("null".to_string(), |l| l.to_string())
                    ),
                    other => println!("{{\"server\":\"{addr}\",\"error\":\"{other:?}\"}}"),
                }
            }
            Ok(())
        }
        Cmd::Leader { target } => {
            let leader = find_leader(&target).await?;
            println!("{{\"leader\":{leader}}}");
            Ok(())
        }
    }
}

/// Asks every server for its status until one says it leads (bounded to 10 s).
async fn find_leader(target: &Target) -> anyhow::Result<u64> {
    let client = KvClient::with_dialer(
        dialer()?,
        target.servers.clone(),
        ca_fingerprint(&target.ca)?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for addr in &target.servers {
            if let Ok(KvResponse::Status {
                id,
                is_leader: true,
                ..
            }) = client.status(*addr).await
            {
                return Ok(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("no server reported itself leader within 10 s")
}

/// Index in `servers` of the leader's client address (servers are listed by node id).
async fn leader_index(target: &Target) -> usize {
    find_leader(target)
        .await
        .map(|id| (id as usize).saturating_sub(1))
        .unwrap_or(0)
}

async fn put(
    target: Target,
    clients: usize,
    duration: f64,
    warmup: f64,
    val_size: usize,
) -> anyhow::Result<()> {
    let ca = ca_fingerprint(&target.ca)?;
    let leader = leader_index(&target).await;
    // A few sockets shared by all clients, like a real client library's connection pool.
    let dialers: Vec<Dialer> = (0..clients.clamp(1, 4))
        .map(|_| dialer())
        .collect::<Result<_, _>>()?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    // Lowest and highest slot a measured write was applied at: writes per slot tells how
    // well the servers batch.
    let slots = Arc::new((AtomicU64::new(u64::MAX), AtomicU64::new(0)));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let mut client = KvClient::with_dialer(
            dialers[c % dialers.len()].clone(),
            target.servers.clone(),
            ca,
        );
        client.prefer(leader);
        let (measuring, stop, errors) = (measuring.clone(), stop.clone(), errors.clone());
        let slots = slots.clone();
        tasks.spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("constant bounds");
            let value = vec![b'v'; val_size];
            while !stop.load(Ordering::Relaxed) {
                // Keys drawn at random from 100,000, as the etcd load generator does.
                let key = format!("{:08}", rand::random_range(0..100_000u32));
                let started = Instant::now();
                let result = client.put(key, value.clone()).await;
                if measuring.load(Ordering::Relaxed) {
                    match result {
                        Ok(slot) => {
                            slots.0.fetch_min(slot, Ordering::Relaxed);
                            slots.1.fetch_max(slot, Ordering::Relaxed);
                            let micros = started.elapsed().as_micros() as u64;
                            let _ = histogram.record(micros.clamp(1, 60_000_000));
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            histogram
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("constant bounds");
    while let Some(h) = tasks.join_next().await {
        total.add(h.context("client task")?)?;
    }
    let writes = total.len();
    let (low, high) = (
        slots.0.load(Ordering::Relaxed),
        slots.1.load(Ordering::Relaxed),
    );
    let slot_count = if high >= low { high - low + 1 } else { 0 };
    println!(
        "{{\"system\":\"ours\",\"clients\":{clients},\"duration_s\":{elapsed:.3},\"writes\":{writes},\"writes_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"errors\":{},\"writes_per_slot\":{:.2}}}",
        writes as f64 / elapsed,
        total.value_at_quantile(0.5) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        errors.load(Ordering::Relaxed),
        writes as f64 / slot_count.max(1) as f64
    );
    Ok(())
}

async fn failover(target: Target, pid: u32, probe_ms: u64, max_s: u64) -> anyhow::Result<()> {
    let ca = ca_fingerprint(&target.ca)?;
    // Warm connections to every survivor first: one write through each.
    let shared = dialer()?;
    let mut warm = KvClient::with_dialer(shared.clone(), target.servers.clone(), ca);
    warm.deadline = Duration::from_secs(10);
    for i in 0..target.servers.len() {
        warm.prefer(i);
        warm.put(format!("warm-{i}"), vec![0]).await?;
    }
    // The clock starts before the kill is issued: never in our favour.
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -9 {pid} failed");
    }
    let done = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let deadline = killed + Duration::from_secs(max_s);
    let mut probe = 0u64;
    while Instant::now() < deadline && !done.load(Ordering::Relaxed) {
        for i in 0..target.servers.len() {
            let mut client = KvClient::with_dialer(shared.clone(), target.servers.clone(), ca);
            client.prefer(i);
            client.deadline = Duration::from_secs(max_s);
            let (tx, done) = (tx.clone(), done.clone());
            probe += 1;
            let key = format!("probe-{probe}");
            tokio::spawn(async move {
                if client.put(key, vec![1]).await.is_ok() {
                    done.store(true, Ordering::Relaxed);
                    let _ = tx.send(Instant::now());
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(probe_ms)).await;
    }
    let Some(first) = tokio::time::timeout_at(deadline.into(), rx.recv())
        .await
        .ok()
        .flatten()
    else {
        bail!("no write was acknowledged within {max_s} s of the kill");
    };
    println!(
        "{{\"system\":\"ours\",\"failover_ms\":{:.1}}}",
        (first - killed).as_secs_f64() * 1000.0
    );
    Ok(())
}
