//! Load generator and probes for the key-value cluster.
//!
//! * `put`: closed-loop writers, one JSON line with writes/s and latency percentiles;
//! * `failover`: kills the leader's process and times the first acknowledged write after;
//! * `leader`: which node leads;
//! * `timeline`: the `put` load kept running while a node is replaced, acknowledged puts per
//!   100 ms (the counterpart of `etcdload timeline`, for `bench/membership-vs-etcd.sh`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certs::Fingerprint;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::json;
use tests::kv::{KvClient, KvClientError, KvResponse, client_endpoint};
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
    /// Put load while the membership changes; one JSON line with acks per 100 ms bucket.
    Timeline(Timeline),
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
        Cmd::Timeline(args) => timeline(args).await,
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

// ---------------------------------------------------------------- timeline ------------------
//
// The counterpart of `etcdload timeline` (bench/etcdload/src/main.rs): the same load, the same
// measurements and the same JSON line, so that bench/membership_analysis.py reads both alike.

/// Number of distinct keys the put workload draws from (as etcdload).
const KEYSPACE: u32 = 100_000;
/// Per-attempt timeout and overall deadline of one put in `timeline`: 2 s, etcdload's per-put
/// timeout in its timeline mode. etcdload abandons a put after 2 s, counts it as an error and
/// sends its next put to the next member. With our attempt timeout at 2 s a server that does
/// not answer is given up on after the same time, and with our deadline at 2 s a put our
/// client could not get acknowledged within 2 s (fail-over included) is reported as an
/// error the same way; the client's next put then starts on the next server. (Our client
/// checks its deadline between attempts, so a put whose last attempt began just before 2 s
/// can take up to 4 s; its acknowledgement is recorded when it really came.)
const TIMELINE_PUT_TIMEOUT: Duration = Duration::from_secs(2);
/// Width of one timeline bucket.
const BUCKET_MS: u64 = 100;
/// How often `timeline` re-reads the endpoints file.
const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// Arguments of `kv-load timeline`.
#[derive(clap::Args)]
struct Timeline {
    /// The initial servers.
    #[command(flatten)]
    target: Target,
    /// File with the current client addresses (`IP:PORT`), one per line, re-read every
    /// 200 ms; while it is missing or lists no address the last known list stays in use.
    #[arg(long)]
    endpoints_file: Option<PathBuf>,
    /// File of `<unix ms> <step> <detail>` lines appended by the caller; reported as
    /// events.
    #[arg(long)]
    marks_file: Option<PathBuf>,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds the load runs.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    val_size: usize,
}

/// The servers the load goes to right now, in the order the caller listed them. Unlike
/// etcdload's pool it holds no connections: the shared dialers connect to a server on first
/// use and keep the connection, so a new list is all a client needs. Clients look at the
/// newest one before every put.
type Pool = Arc<Vec<SocketAddr>>;

/// What one timeline client observed.
#[derive(Default)]
struct Trace {
    /// (issued, acknowledged) in microseconds since the load started, for every acked put.
    acks: Vec<(u64, u64)>,
    /// When each failed or timed-out put ended, in microseconds since the load started.
    errors: Vec<u64>,
    timeouts: u64,
}

/// The client addresses in an endpoints file, one `IP:PORT` per line (blank lines and `#`
/// comments skipped, repeats dropped), and the lines that are not addresses.
fn parse_endpoints(text: &str) -> (Vec<SocketAddr>, Vec<&str>) {
    let (mut servers, mut bad) = (Vec::new(), Vec::new());
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.parse::<SocketAddr>() {
            Ok(addr) if !servers.contains(&addr) => servers.push(addr),
            Ok(_) => {}
            Err(_) => bad.push(line),
        }
    }
    (servers, bad)
}

/// The caller's marks, `<unix ms> <step> <detail>` per line, as (ms since `start_unix_ms`,
/// `<step> <detail>`), and the lines that do not start with a time.
fn parse_marks(text: &str, start_unix_ms: i64) -> (Vec<(i64, String)>, Vec<&str>) {
    let (mut marks, mut bad) = (Vec::new(), Vec::new());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (ts, label) = line.split_once(' ').unwrap_or((line, ""));
        match ts.parse::<i64>() {
            Ok(ms) => marks.push((ms - start_unix_ms, label.trim().to_string())),
            Err(_) => bad.push(line),
        }
    }
    (marks, bad)
}

/// The marks in `path` (see [`parse_marks`]); none if it cannot be read.
fn read_marks(path: &std::path::Path, start_unix_ms: i64) -> Vec<(i64, String)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "kv-load timeline: cannot read marks file {}: {e}",
                path.display()
            );
            return Vec::new();
        }
    };
    let (marks, bad) = parse_marks(&text, start_unix_ms);
    for line in bad {
        eprintln!("kv-load timeline: ignoring mark line {line:?}");
    }
    marks
}

/// Re-reads `path` every 200 ms until `end` and publishes the list in it whenever it differs
/// from the current one. A missing or unreadable file, or one without any address, keeps the
/// last list (a caller rewriting it never empties the pool). Returns when and to what the
/// list changed, for the events.
async fn follow_endpoints(
    path: PathBuf,
    tx: tokio::sync::watch::Sender<Pool>,
    end: Instant,
) -> Vec<(Instant, String)> {
    let mut changes = Vec::new();
    let mut ticker = tokio::time::interval(REFRESH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Bad lines are reported once per version of the file, not every 200 ms.
    let mut last_text = None;
    loop {
        ticker.tick().await;
        if Instant::now() >= end {
            return changes;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if last_text.as_ref() == Some(&text) {
            continue;
        }
        let (servers, bad) = parse_endpoints(&text);
        for line in bad {
            eprintln!("kv-load timeline: ignoring endpoints line {line:?}");
        }
        last_text = Some(text);
        if servers.is_empty() || **tx.borrow() == servers {
            continue;
        }
        let what = format!(
            "kv-load: endpoints {}",
            servers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        eprintln!("{what}");
        changes.push((Instant::now(), what));
        tx.send_replace(Arc::new(servers));
    }
}

/// What the JSON line reports about a run of `run_us` microseconds, computed as etcdload
/// does.
#[derive(Debug, PartialEq)]
struct Summary {
    /// Puts acknowledged per bucket (by acknowledgement time).
    buckets: Vec<u64>,
    /// Puts failed per bucket (by failure time).
    error_buckets: Vec<u64>,
    /// Longest stretch without any acknowledgement, and where it began (µs since start).
    gap_us: u64,
    gap_from_us: u64,
    /// Slowest acknowledged put (issue to acknowledgement), if any.
    max_put_us: Option<u64>,
}

/// Buckets of [`BUCKET_MS`] and the longest gap, from every client's (issued, acknowledged)
/// pairs and failure instants. Instants past the run's end count in the last bucket.
fn summarize(acks: &[(u64, u64)], errors: &[u64], run_us: u64) -> Summary {
    let nbuckets = run_us.div_ceil(BUCKET_MS * 1000).max(1) as usize;
    let bucket = |t_us: u64| ((t_us / (BUCKET_MS * 1000)) as usize).min(nbuckets - 1);
    let mut buckets = vec![0u64; nbuckets];
    let mut error_buckets = vec![0u64; nbuckets];
    for &(_, done) in acks {
        buckets[bucket(done)] += 1;
    }
    for &t in errors {
        error_buckets[bucket(t)] += 1;
    }
    // Longest stretch with no acknowledgement at all, counting from the start of the load
    // and up to its end, so that a stall at either edge counts too.
    let mut done_at: Vec<u64> = acks.iter().map(|&(_, d)| d).collect();
    done_at.sort_unstable();
    let (mut gap_us, mut gap_from_us, mut prev) = (0u64, 0u64, 0u64);
    for &t in done_at.iter().chain(std::iter::once(&run_us)) {
        if t.saturating_sub(prev) > gap_us {
            gap_us = t - prev;
            gap_from_us = prev;
        }
        prev = t;
    }
    Summary {
        buckets,
        error_buckets,
        gap_us,
        gap_from_us,
        max_put_us: acks.iter().map(|&(i, d)| d - i).max(),
    }
}

/// Microseconds as milliseconds with one decimal, as etcdload rounds them.
fn ms_1(us: u64) -> f64 {
    (us as f64 / 100.0).round() / 10.0
}

/// The JSON line of `etcdload timeline`, field for field, with `"system":"ours"`.
#[allow(clippy::too_many_arguments)]
fn timeline_json(
    clients: usize,
    duration: f64,
    start_unix_ms: i64,
    summary: &Summary,
    events: &[(i64, String)],
    writes: usize,
    errors: usize,
    timeouts: u64,
) -> String {
    // A whole number of seconds prints without a fraction, as etcdload prints it.
    let duration = if duration.fract() == 0.0 {
        json!(duration as u64)
    } else {
        json!(duration)
    };
    json!({
        "tool": "kv-load",
        "mode": "timeline",
        "system": "ours",
        "clients": clients,
        "duration_s": duration,
        "start_unix_ms": start_unix_ms,
        "bucket_ms": BUCKET_MS,
        "buckets": summary.buckets,
        "error_buckets": summary.error_buckets,
        "events": events.iter().map(|(t, what)| json!({"t_ms": t, "what": what})).collect::<Vec<_>>(),
        "writes": writes,
        "errors": errors,
        "timeouts": timeouts,
        "longest_gap_ms": ms_1(summary.gap_us),
        "longest_gap_from_ms": ms_1(summary.gap_from_us),
        "max_put_ms": summary.max_put_us.map(ms_1),
    })
    .to_string()
}

/// `kv-load timeline`: `clients` closed-loop writers for `duration` seconds, following the
/// server list in the endpoints file; prints one JSON line (see [`timeline_json`]).
async fn timeline(args: Timeline) -> anyhow::Result<()> {
    let Timeline {
        target,
        endpoints_file,
        marks_file,
        clients,
        duration,
        val_size,
    } = args;
    if clients == 0 {
        bail!("--clients must be at least 1");
    }
    let run_for = Duration::try_from_secs_f64(duration)
        .map_err(|_| anyhow::anyhow!("--duration must be a non-negative number of seconds"))?;
    let ca = ca_fingerprint(&target.ca)?;
    // Clients are set up as in `put`: they start on the leader and share min(C, 4) dialers
    // (sockets, each with its connections), like a real client library's connection pool.
    let leader = leader_index(&target).await;
    let dialers: Vec<Dialer> = (0..clients.clamp(1, 4))
        .map(|_| dialer())
        .collect::<Result<_, _>>()?;
    let servers: Pool = Arc::new(target.servers.clone());
    let new_client = |dialer: &Dialer, servers: Vec<SocketAddr>| {
        let mut client = KvClient::with_dialer(dialer.clone(), servers, ca);
        client.attempt_timeout = TIMELINE_PUT_TIMEOUT;
        client.deadline = TIMELINE_PUT_TIMEOUT;
        client.prefer(leader);
        client
    };
    // Every dialer connects to every server first, and writes once through the leader, so
    // that connection set-up does not show up as a dip in the first buckets (etcdload puts
    // once through each of its connections).
    for dialer in &dialers {
        let mut check = new_client(dialer, servers.to_vec());
        for addr in servers.iter() {
            if let Err(e) = check.status(*addr).await {
                eprintln!("kv-load timeline: status of {addr} failed: {e}");
            }
        }
        if let Err(e) = check
            .put("kv-load/timeline/check".to_string(), b"ok".to_vec())
            .await
        {
            eprintln!("kv-load timeline: check put failed: {e}");
        }
    }
    eprintln!(
        "kv-load timeline: {clients} clients over {} dialer(s), initially {} (leader {}); {duration} s, {val_size}-byte values",
        dialers.len(),
        servers
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(","),
        servers
            .get(leader)
            .map_or("?".to_string(), |a| a.to_string())
    );
    let (tx, rx) = tokio::sync::watch::channel(servers.clone());

    let t0 = Instant::now();
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_millis() as i64;
    let end = t0 + run_for;
    let follower = endpoints_file.map(|path| tokio::spawn(follow_endpoints(path, tx, end)));

    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let rx = rx.clone();
        let mut known = servers.clone();
        let mut client = new_client(&dialers[c % dialers.len()], known.to_vec());
        tasks.spawn(async move {
            let mut trace = Trace::default();
            let value = vec![b'v'; val_size];
            let us = |t: Instant| (t - t0).as_micros() as u64;
            let mut failed_in_row = 0usize;
            loop {
                let issued = Instant::now();
                if issued >= end {
                    break;
                }
                // The newest list, taken between puts (a put keeps the list it began with).
                let latest = rx.borrow().clone();
                if !Arc::ptr_eq(&latest, &known) {
                    client.set_servers(latest.to_vec());
                    known = latest;
                }
                // 8-byte keys drawn at random from 100,000, as etcdload does.
                let key = format!("{:08}", rand::random_range(0..KEYSPACE));
                let Ok(result) =
                    tokio::time::timeout_at(end.into(), client.put(key, value.clone())).await
                else {
                    // The run ended while the put was in flight: neither ack nor error.
                    break;
                };
                let done = Instant::now();
                match result {
                    Ok(_) => {
                        trace.acks.push((us(issued), us(done)));
                        failed_in_row = 0;
                    }
                    Err(e) => {
                        trace.errors.push(us(done));
                        if matches!(e, KvClientError::Timeout(..)) {
                            trace.timeouts += 1;
                        }
                        failed_in_row += 1;
                        // As many failures in a row as there are servers (no quorum, say):
                        // back off a little rather than spin on errors that come back at
                        // once, as etcdload does.
                        if failed_in_row >= known.len() {
                            failed_in_row = 0;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
            trace
        });
    }

    let mut acks: Vec<(u64, u64)> = Vec::new();
    let mut error_at: Vec<u64> = Vec::new();
    let mut timeouts = 0u64;
    while let Some(trace) = tasks.join_next().await {
        let trace = trace.context("client task")?;
        acks.extend(trace.acks);
        error_at.extend(trace.errors);
        timeouts += trace.timeouts;
    }
    let changes = match follower {
        Some(f) => f.await.context("endpoints task")?,
        None => Vec::new(),
    };

    let summary = summarize(&acks, &error_at, run_for.as_micros() as u64);
    let mut events: Vec<(i64, String)> = changes
        .into_iter()
        .map(|(t, what)| ((t - t0).as_millis() as i64, what))
        .collect();
    if let Some(path) = &marks_file {
        events.extend(read_marks(path, start_unix_ms));
    }
    events.sort_by_key(|e| e.0);

    println!(
        "{}",
        timeline_json(
            clients,
            duration,
            start_unix_ms,
            &summary,
            &events,
            acks.len(),
            error_at.len(),
            timeouts
        )
    );
    eprintln!(
        "kv-load timeline: {} puts acknowledged, {} errors ({timeouts} timeouts), longest gap {} ms from {} ms",
        acks.len(),
        error_at.len(),
        ms_1(summary.gap_us),
        ms_1(summary.gap_from_us)
    );
    if acks.is_empty() {
        bail!("no put was acknowledged");
    }
    Ok(())
}

#[cfg(test)]
mod timeline_tests {
    use super::*;

    #[test]
    fn endpoints_skip_comments_blanks_repeats_and_bad_lines() {
        let text =
            "# members\n127.0.0.1:24101\n\n  127.0.0.1:24102  \n127.0.0.1:24101\nnot-an-address\n";
        let (servers, bad) = parse_endpoints(text);
        assert_eq!(
            servers,
            vec![
                "127.0.0.1:24101".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:24102".parse().unwrap()
            ]
        );
        assert_eq!(bad, vec!["not-an-address"]);
        assert!(parse_endpoints("\n# nothing\n").0.is_empty());
    }

    #[test]
    fn marks_are_relative_to_the_start() {
        let text = "1000500 kill n3 (pid 42)\n\n999000 before\n1002000 done\noops\n";
        let (marks, bad) = parse_marks(text, 1_000_000);
        assert_eq!(
            marks,
            vec![
                (500, "kill n3 (pid 42)".to_string()),
                (-1000, "before".to_string()),
                (2000, "done".to_string())
            ]
        );
        assert_eq!(bad, vec!["oops"]);
    }

    #[test]
    fn summary_counts_buckets_and_gaps_at_the_edges() {
        // Run of 1 s: acks at 150 ms and 160 ms, one late ack counted in the last bucket.
        let acks = [(100_000, 150_000), (120_000, 160_000), (900_000, 1_200_000)];
        let s = summarize(&acks, &[50_000, 999_999], 1_000_000);
        assert_eq!(s.buckets, vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(s.error_buckets, vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        // From 160 ms to the late ack at 1.2 s; the edge at 1 s is then already passed.
        assert_eq!((s.gap_us, s.gap_from_us), (1_040_000, 160_000));
        assert_eq!(s.max_put_us, Some(300_000));
        // Nothing acknowledged: the whole run is one gap.
        let s = summarize(&[], &[], 250_000);
        assert_eq!(s.buckets, vec![0, 0, 0]);
        assert_eq!((s.gap_us, s.gap_from_us, s.max_put_us), (250_000, 0, None));
    }
}
