//! `etcdload`: a closed-loop etcd v3 load generator and leader-failover probe, used by
//! `bench/paxos-vs-etcd.sh` to put etcd side by side with ByteTorrent's Paxos KV cluster.
//!
//! * `etcdload put`: C concurrent clients share min(C, 4) gRPC (HTTP/2) connections; each
//!   client issues `Put` of an 8-byte key (one of 100,000) with a `val-size`-byte value,
//!   waits for the answer, and issues the next one (closed loop). After `warmup` seconds the
//!   puts that complete during the next `duration` seconds are counted and their latency goes
//!   into an HDR histogram (microsecond precision). Prints one JSON line on stdout.
//! * `etcdload failover`: checks that a put succeeds on each survivor, SIGKILLs the leader's
//!   PID itself (so the kill instant is known exactly), then every `probe-ms` issues a `Put`
//!   on every survivor at once, and reports the time from the kill to the first acknowledged
//!   put (all probes are issued after the kill). Prints one JSON line on stdout.
//!
//! Diagnostics go to stderr; stdout carries only the JSON result.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use etcd_client::{Client, ConnectOptions, KvClient};
use hdrhistogram::Histogram;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// Number of distinct keys the put workload draws from.
const KEYSPACE: u64 = 100_000;
/// A put that takes longer than this is abandoned and counted as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest latency the histogram can hold, in microseconds (60 s).
const HIST_MAX_US: u64 = 60_000_000;

#[derive(Parser)]
#[command(name = "etcdload", about = "Closed-loop etcd v3 put load and leader-failover probe")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Closed-loop put workload; prints one JSON line with throughput and latency.
    Put {
        /// Comma-separated client URLs (connection i goes to endpoint i mod n).
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// Concurrent closed-loop clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Measured seconds (after the warm-up).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Warm-up seconds (load runs, nothing is recorded).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        val_size: usize,
    },
    /// Kill the leader and time until the first put issued after the kill is acknowledged.
    Failover {
        /// Comma-separated client URLs of the surviving members.
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// PID of the leader process to SIGKILL.
        #[arg(long)]
        kill_pid: i32,
        /// Probe interval in milliseconds.
        #[arg(long, default_value_t = 5)]
        probe_ms: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30.0)]
        max_s: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread, like kv-load: the load tools should cost the machine (which the servers
    // share) as little as they can, and both should do it the same way.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcdload: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Put { endpoints, clients, duration, warmup, val_size } => {
                run_put(endpoints, clients, duration, warmup, val_size).await
            }
            Cmd::Failover { endpoints, kill_pid, probe_ms, max_s } => {
                run_failover(endpoints, kill_pid, probe_ms, max_s).await
            }
        }
    });
    // Do not wait for abandoned in-flight requests: the answer is already printed.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("etcdload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `v` as one line on stdout and flushes it.
fn emit(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what} must be a non-negative number of seconds"))
}

/// One gRPC connection (HTTP/2 channel) to a single endpoint.
async fn connect(endpoint: &str, request_timeout: Option<Duration>) -> Result<Client, String> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    if let Some(t) = request_timeout {
        opts = opts.with_timeout(t);
    }
    tokio::time::timeout(Duration::from_secs(10), Client::connect([endpoint], Some(opts)))
        .await
        .map_err(|_| format!("connecting to {endpoint} timed out"))?
        .map_err(|e| format!("connecting to {endpoint}: {e}"))
}

/// splitmix64: a tiny, good-enough PRNG for picking keys without another dependency.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What one closed-loop client observed during the measured window.
struct Tally {
    hist: Histogram<u64>,
    writes: u64,
    errors: u64,
}

async fn run_put(
    endpoints: Vec<String>,
    clients: usize,
    duration: f64,
    warmup: f64,
    val_size: usize,
) -> Result<ExitCode, String> {
    if clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let measure = secs(duration, "duration")?;
    let warm = secs(warmup, "warmup")?;
    let conns = clients.min(4);
    let mut kvs: Vec<KvClient> = Vec::with_capacity(conns);
    for i in 0..conns {
        let ep = &endpoints[i % endpoints.len()];
        kvs.push(connect(ep, None).await?.kv_client());
    }
    eprintln!(
        "etcdload put: {clients} clients over {conns} connections to {}; warm-up {warmup} s, measure {duration} s, {val_size}-byte values",
        endpoints.join(",")
    );

    let t0 = Instant::now();
    let start = t0 + warm;
    let end = start + measure;
    let value = vec![b'v'; val_size];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5EED);

    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut kv = kvs[c % conns].clone();
        let value = value.clone();
        let mut rng = SplitMix(seed ^ (c as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally {
                hist: Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds"),
                writes: 0,
                errors: 0,
            };
            loop {
                let issued = Instant::now();
                if issued >= end {
                    break;
                }
                let key = format!("{:08}", rng.next() % KEYSPACE); // 8 bytes
                let deadline = (issued + OP_TIMEOUT).min(end);
                let res = tokio::time::timeout_at(deadline, kv.put(key, value.clone(), None)).await;
                let done = Instant::now();
                let in_window = done >= start && done <= end;
                match res {
                    Ok(Ok(_)) => {
                        if in_window {
                            let us = (done - issued).as_micros().max(1) as u64;
                            tally.hist.saturating_record(us);
                            tally.writes += 1;
                        }
                    }
                    // The window closed while the put was still in flight: not counted.
                    Err(_) if deadline == end => break,
                    Ok(Err(_)) | Err(_) => {
                        if in_window {
                            tally.errors += 1;
                        }
                        // Do not spin on a dead connection.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            tally
        }));
    }

    let mut hist: Histogram<u64> =
        Histogram::new_with_bounds(1, HIST_MAX_US, 3).map_err(|e| e.to_string())?;
    let (mut writes, mut errors) = (0u64, 0u64);
    for t in tasks {
        let tally = t.await.map_err(|e| format!("client task failed: {e}"))?;
        hist.add(&tally.hist).map_err(|e| e.to_string())?;
        writes += tally.writes;
        errors += tally.errors;
    }
    let q = |p: f64| {
        if hist.is_empty() { serde_json::Value::Null } else { json!(round(hist.value_at_quantile(p) as f64 / 1000.0, 3)) }
    };
    emit(&json!({
        "system": "etcd",
        "clients": clients,
        "duration_s": if duration.fract() == 0.0 { json!(duration as u64) } else { json!(duration) },
        "writes": writes,
        "writes_per_s": round(writes as f64 / measure.as_secs_f64().max(1e-9), 1),
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "errors": errors,
    }));
    eprintln!(
        "etcdload put: mean {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        hist.mean() / 1000.0,
        hist.value_at_quantile(0.90) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    Ok(if writes > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_failover(
    endpoints: Vec<String>,
    kill_pid: i32,
    probe_ms: u64,
    max_s: f64,
) -> Result<ExitCode, String> {
    if kill_pid <= 1 {
        return Err(format!("refusing to kill pid {kill_pid}"));
    }
    let max = secs(max_s, "max-s")?;
    let probe = Duration::from_millis(probe_ms.max(1));

    // One connection per survivor, so we know which one answered; the per-request timeout
    // keeps abandoned probes from living longer than the whole measurement.
    let mut kvs = Vec::with_capacity(endpoints.len());
    for ep in &endpoints {
        let mut kv = connect(ep, Some(max)).await?.kv_client();
        tokio::time::timeout(Duration::from_secs(5), kv.put("etcdload/failover/check", "ok", None))
            .await
            .map_err(|_| format!("check put on {ep} timed out"))?
            .map_err(|e| format!("check put on {ep} failed: {e}"))?;
        kvs.push(kv);
    }
    eprintln!("etcdload failover: one put acknowledged on each of {}", endpoints.join(","));

    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Instant, usize)>();
    let t_kill = Instant::now();
    kill(Pid::from_raw(kill_pid), Signal::SIGKILL).map_err(|e| format!("kill -9 {kill_pid}: {e}"))?;

    let give_up = t_kill + max;
    let mut ticker = tokio::time::interval(probe);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            Some((acked, issued, i)) = rx.recv() => {
                let ms = (acked - t_kill).as_secs_f64() * 1000.0;
                eprintln!(
                    "etcdload failover: first ack from {} for a probe issued {:.1} ms after the kill; {} probes issued",
                    endpoints[i], (issued - t_kill).as_secs_f64() * 1000.0, seq
                );
                emit(&json!({"system": "etcd", "failover_ms": round(ms, 1)}));
                return Ok(ExitCode::SUCCESS);
            }
            _ = tokio::time::sleep_until(give_up) => {
                eprintln!("etcdload failover: no put acknowledged within {max_s} s of the kill");
                emit(&json!({"system": "etcd", "failover_ms": null, "error": "timeout"}));
                return Ok(ExitCode::from(2));
            }
            _ = ticker.tick() => {
                for (i, kv) in kvs.iter().enumerate() {
                    let mut kv = kv.clone();
                    let tx = tx.clone();
                    seq += 1;
                    let key = format!("etcdload/failover/{seq}");
                    tokio::spawn(async move {
                        let issued = Instant::now();
                        if kv.put(key, "probe", None).await.is_ok() {
                            let _ = tx.send((Instant::now(), issued, i));
                        }
                    });
                }
            }
        }
    }
}
