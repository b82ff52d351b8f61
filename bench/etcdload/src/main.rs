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
//! * `etcdload timeline`: the `put` load (no warm-up) kept running while members are
//!   replaced, used by `bench/membership-vs-etcd.sh`. It counts acknowledged puts per 100 ms
//!   bucket and keeps every put's issue/acknowledge instant, from which it reports the
//!   longest interval in which no client got any put acknowledged. A failed or timed-out put
//!   (2 s) is counted as an error and the client retries on the next member. The member list
//!   is `--endpoints` at first, then whatever `--endpoints-file` (one URL per line, rewritten
//!   by the script) says, re-read every 200 ms. The script appends `<unix ms> <label>` lines
//!   to `--marks-file` as it acts; at the end they are reported as events in ms since the
//!   load started (both sides read the wall clock, so no other channel is needed).
//!
//! Diagnostics go to stderr; stdout carries only the JSON result.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use etcd_client::{Client, ConnectOptions, KvClient};
use hdrhistogram::Histogram;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// Number of distinct keys the put workload draws from.
const KEYSPACE: u64 = 100_000;
/// A put that takes longer than this is abandoned and counted as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest latency the histogram can hold, in microseconds (60 s).
const HIST_MAX_US: u64 = 60_000_000;
/// Per-put timeout in timeline mode: far above a healthy put's latency, yet short enough that
/// a client whose member hangs moves on to another one instead of stalling for long.
const TIMELINE_OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Width of one timeline bucket.
const BUCKET_MS: u64 = 100;
/// How often timeline mode re-reads the endpoints file.
const REFRESH_EVERY: Duration = Duration::from_millis(200);

#[derive(Parser)]
#[command(
    name = "etcdload",
    about = "Closed-loop etcd v3 put load and leader-failover probe"
)]
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
    /// Put load while members change; prints one JSON line with acks per 100 ms bucket.
    Timeline {
        /// Comma-separated client URLs of the initial members.
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// File with the current client URLs, one per line, re-read every 200 ms; while it is
        /// missing or empty the last known list stays in use.
        #[arg(long)]
        endpoints_file: Option<PathBuf>,
        /// File of `<unix ms> <label>` lines appended by the caller; reported as events.
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread, like kv-load: the load tools should cost the machine (which the servers
    // share) as little as they can, and both should do it the same way.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcdload: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Put {
                endpoints,
                clients,
                duration,
                warmup,
                val_size,
            } => run_put(endpoints, clients, duration, warmup, val_size).await,
            Cmd::Failover {
                endpoints,
                kill_pid,
                probe_ms,
                max_s,
            } => run_failover(endpoints, kill_pid, probe_ms, max_s).await,
            Cmd::Timeline {
                endpoints,
                endpoints_file,
                marks_file,
                clients,
                duration,
                val_size,
            } => {
                let t = Timeline {
                    endpoints,
                    endpoints_file,
                    marks_file,
                    clients,
                    duration,
                    val_size,
                };
                run_timeline(t).await
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
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("--{what} must be a non-negative number of seconds"))
}

/// One gRPC connection (HTTP/2 channel) to a single endpoint.
async fn connect(endpoint: &str, request_timeout: Option<Duration>) -> Result<Client, String> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    if let Some(t) = request_timeout {
        opts = opts.with_timeout(t);
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect([endpoint], Some(opts)),
    )
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
                hist: Histogram::new_with_bounds(1, HIST_MAX_US, 3)
                    .expect("valid histogram bounds"),
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
        if hist.is_empty() {
            serde_json::Value::Null
        } else {
            json!(round(hist.value_at_quantile(p) as f64 / 1000.0, 3))
        }
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
    Ok(if writes > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        tokio::time::timeout(
            Duration::from_secs(5),
            kv.put("etcdload/failover/check", "ok", None),
        )
        .await
        .map_err(|_| format!("check put on {ep} timed out"))?
        .map_err(|e| format!("check put on {ep} failed: {e}"))?;
        kvs.push(kv);
    }
    eprintln!(
        "etcdload failover: one put acknowledged on each of {}",
        endpoints.join(",")
    );

    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Instant, usize)>();
    let t_kill = Instant::now();
    kill(Pid::from_raw(kill_pid), Signal::SIGKILL)
        .map_err(|e| format!("kill -9 {kill_pid}: {e}"))?;

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

/// Arguments of `etcdload timeline`.
struct Timeline {
    endpoints: Vec<String>,
    endpoints_file: Option<PathBuf>,
    marks_file: Option<PathBuf>,
    clients: usize,
    duration: f64,
    val_size: usize,
}

/// The members the load goes to right now, in the order the caller listed them, each with
/// its connections. Clients pick from the newest one before every put.
struct Pool {
    eps: Vec<String>,
    conns: Vec<Vec<KvClient>>,
}

/// What one timeline client observed.
#[derive(Default)]
struct Trace {
    /// (issued, acknowledged) in microseconds since the load started, for every acked put.
    acks: Vec<(u64, u64)>,
    /// When each failed or timed-out put ended, in microseconds since the load started.
    errors: Vec<u64>,
    timeouts: u64,
}

/// Client URLs in `path`, one per line (blank lines and `#` comments skipped); `None` while
/// the file is missing, unreadable or empty, so a half-written file never empties the pool.
fn read_endpoints(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let eps: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if eps.is_empty() { None } else { Some(eps) }
}

/// A pool for `eps`, reusing the connections of `old` for members it already had. etcd's
/// client connects lazily and reconnects by itself, so a connection to a member that is down
/// (or not up yet) only makes the puts sent through it fail fast; it is dropped once the
/// member leaves the list. Members whose client cannot be built are left out (and retried at
/// the next refresh, because the pool then differs from the list).
async fn build_pool(eps: &[String], per_ep: usize, old: &Pool) -> Pool {
    let mut reuse: HashMap<&str, &Vec<KvClient>> = HashMap::new();
    for (ep, conns) in old.eps.iter().zip(&old.conns) {
        reuse.insert(ep, conns);
    }
    let mut pool = Pool {
        eps: Vec::new(),
        conns: Vec::new(),
    };
    for ep in eps {
        if pool.eps.contains(ep) {
            continue;
        }
        let conns = match reuse.get(ep.as_str()) {
            Some(c) => (*c).clone(),
            None => {
                let mut c = Vec::with_capacity(per_ep);
                for _ in 0..per_ep {
                    match connect(ep, None).await {
                        Ok(client) => c.push(client.kv_client()),
                        Err(e) => {
                            eprintln!("etcdload timeline: {e}");
                            break;
                        }
                    }
                }
                if c.len() < per_ep {
                    continue;
                }
                c
            }
        };
        pool.eps.push(ep.clone());
        pool.conns.push(conns);
    }
    pool
}

/// Re-reads `path` every 200 ms until `end` and publishes a new pool whenever the list in it
/// differs from the pool's. Returns when and to what the pool changed, for the events.
async fn follow_endpoints(
    path: PathBuf,
    per_ep: usize,
    tx: watch::Sender<Arc<Pool>>,
    end: Instant,
) -> Vec<(Instant, String)> {
    let mut changes = Vec::new();
    let mut ticker = tokio::time::interval(REFRESH_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if Instant::now() >= end {
            return changes;
        }
        let Some(eps) = read_endpoints(&path) else {
            continue;
        };
        let old = tx.borrow().clone();
        if old.eps == eps {
            continue;
        }
        let pool = build_pool(&eps, per_ep, &old).await;
        if pool.eps.is_empty() || pool.eps == old.eps {
            continue;
        }
        let what = format!("etcdload: endpoints {}", pool.eps.join(","));
        eprintln!("{what}");
        changes.push((Instant::now(), what));
        tx.send_replace(Arc::new(pool));
    }
}

/// The caller's marks, `<unix ms> <label>` per line, as (ms since `start_unix_ms`, label).
fn read_marks(path: &Path, start_unix_ms: i64) -> Vec<(i64, String)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "etcdload timeline: cannot read marks file {}: {e}",
                path.display()
            );
            return Vec::new();
        }
    };
    let mut marks = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (ts, label) = line.split_once(' ').unwrap_or((line, ""));
        match ts.parse::<i64>() {
            Ok(ms) => marks.push((ms - start_unix_ms, label.trim().to_string())),
            Err(_) => eprintln!("etcdload timeline: ignoring mark line {line:?}"),
        }
    }
    marks
}

async fn run_timeline(args: Timeline) -> Result<ExitCode, String> {
    let Timeline {
        endpoints,
        endpoints_file,
        marks_file,
        clients,
        duration,
        val_size,
    } = args;
    if clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let run_for = secs(duration, "duration")?;
    // Connection sharing as in `put` (clients share min(C, 4) connections), spread over the
    // members and rounded up to a whole number per member (2 each for 3 members); a member
    // added later gets as many as the first ones had.
    let per_ep = clients.min(4).div_ceil(endpoints.len()).max(1);
    let empty = Pool {
        eps: Vec::new(),
        conns: Vec::new(),
    };
    let pool = build_pool(&endpoints, per_ep, &empty).await;
    if pool.eps.is_empty() {
        return Err("no usable endpoint in --endpoints".into());
    }
    // One put through every connection first, so that connection set-up does not show up as
    // a dip in the first buckets.
    for (ep, conns) in pool.eps.iter().zip(&pool.conns) {
        for kv in conns {
            let mut kv = kv.clone();
            match tokio::time::timeout(
                TIMELINE_OP_TIMEOUT,
                kv.put("etcdload/timeline/check", "ok", None),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("etcdload timeline: check put on {ep} failed: {e}"),
                Err(_) => eprintln!("etcdload timeline: check put on {ep} timed out"),
            }
        }
    }
    eprintln!(
        "etcdload timeline: {clients} clients, {per_ep} connection(s) per member, initially {}; {duration} s, {val_size}-byte values",
        pool.eps.join(",")
    );
    let (tx, rx) = watch::channel(Arc::new(pool));

    let t0 = Instant::now();
    let start_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| format!("clock before 1970: {e}"))?;
    let end = t0 + run_for;
    let follower = endpoints_file.map(|path| tokio::spawn(follow_endpoints(path, per_ep, tx, end)));

    let value = vec![b'v'; val_size];
    let seed = (start_unix_ms as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let rx = rx.clone();
        let value = value.clone();
        let mut rng = SplitMix(seed ^ (c as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        tasks.push(tokio::spawn(async move {
            let mut trace = Trace::default();
            // Client c starts on member c mod n and moves to the next member after every
            // failed put, so clients leave a dead member after one error each.
            let mut shift = 0usize;
            let mut failed_in_row = 0usize;
            let us = |t: Instant| (t - t0).as_micros() as u64;
            loop {
                let issued = Instant::now();
                if issued >= end {
                    break;
                }
                let (mut kv, members) = {
                    let pool = rx.borrow();
                    let n = pool.conns.len();
                    let conns = &pool.conns[(c + shift) % n];
                    (conns[(c / n) % conns.len()].clone(), n)
                };
                let key = format!("{:08}", rng.next() % KEYSPACE); // 8 bytes
                let deadline = (issued + TIMELINE_OP_TIMEOUT).min(end);
                let res = tokio::time::timeout_at(deadline, kv.put(key, value.clone(), None)).await;
                let done = Instant::now();
                match res {
                    Ok(Ok(_)) => {
                        trace.acks.push((us(issued), us(done)));
                        failed_in_row = 0;
                    }
                    // The run ended while the put was still in flight: neither ack nor error.
                    Err(_) if deadline == end => break,
                    Ok(Err(_)) | Err(_) => {
                        trace.errors.push(us(done));
                        if res.is_err() {
                            trace.timeouts += 1;
                        }
                        shift += 1;
                        failed_in_row += 1;
                        // Every member failed in a row (no quorum, say): back off a little
                        // rather than spin on errors that come back at once.
                        if failed_in_row >= members {
                            failed_in_row = 0;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
            trace
        }));
    }

    let mut acks: Vec<(u64, u64)> = Vec::new();
    let mut error_at: Vec<u64> = Vec::new();
    let mut timeouts = 0u64;
    for t in tasks {
        let trace = t.await.map_err(|e| format!("client task failed: {e}"))?;
        acks.extend(trace.acks);
        error_at.extend(trace.errors);
        timeouts += trace.timeouts;
    }
    let changes = match follower {
        Some(f) => f.await.map_err(|e| format!("endpoints task failed: {e}"))?,
        None => Vec::new(),
    };

    let run_us = run_for.as_micros() as u64;
    let nbuckets = run_us.div_ceil(BUCKET_MS * 1000).max(1) as usize;
    let bucket = |t_us: u64| ((t_us / (BUCKET_MS * 1000)) as usize).min(nbuckets - 1);
    let mut buckets = vec![0u64; nbuckets];
    let mut error_buckets = vec![0u64; nbuckets];
    for &(_, done) in &acks {
        buckets[bucket(done)] += 1;
    }
    for &t in &error_at {
        error_buckets[bucket(t)] += 1;
    }
    // Longest stretch with no acknowledgement at all, counting from the start of the load
    // and up to its end, so that a stall at either edge counts too.
    let mut done_at: Vec<u64> = acks.iter().map(|&(_, d)| d).collect();
    done_at.sort_unstable();
    let (mut gap, mut gap_from, mut prev) = (0u64, 0u64, 0u64);
    for &t in done_at.iter().chain(std::iter::once(&run_us)) {
        if t.saturating_sub(prev) > gap {
            gap = t - prev;
            gap_from = prev;
        }
        prev = t;
    }
    let max_put_us = acks.iter().map(|&(i, d)| d - i).max();

    let mut events: Vec<(i64, String)> = changes
        .into_iter()
        .map(|(t, what)| ((t - t0).as_millis() as i64, what))
        .collect();
    if let Some(path) = &marks_file {
        events.extend(read_marks(path, start_unix_ms));
    }
    events.sort_by_key(|e| e.0);

    let ms = |us: u64| round(us as f64 / 1000.0, 1);
    emit(&json!({
        "tool": "etcdload",
        "mode": "timeline",
        "system": "etcd",
        "clients": clients,
        "duration_s": if duration.fract() == 0.0 { json!(duration as u64) } else { json!(duration) },
        "start_unix_ms": start_unix_ms,
        "bucket_ms": BUCKET_MS,
        "buckets": buckets,
        "error_buckets": error_buckets,
        "events": events.iter().map(|(t, w)| json!({"t_ms": t, "what": w})).collect::<Vec<_>>(),
        "writes": acks.len(),
        "errors": error_at.len(),
        "timeouts": timeouts,
        "longest_gap_ms": ms(gap),
        "longest_gap_from_ms": ms(gap_from),
        "max_put_ms": max_put_us.map(ms),
    }));
    eprintln!(
        "etcdload timeline: {} puts acknowledged, {} errors ({timeouts} timeouts), longest gap {:.1} ms from {:.1} ms",
        acks.len(),
        error_at.len(),
        gap as f64 / 1000.0,
        gap_from as f64 / 1000.0
    );
    Ok(if acks.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
