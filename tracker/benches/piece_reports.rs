//! Piece reports committed per second through a three-node tracker cluster on loopback,
//! and how long a report takes to be visible on every node.
//!
//! Each run starts a fresh [`DevCluster`] in this process (real Paxos over real QUIC
//! between the nodes, fsync'd write-ahead logs in a temporary directory), publishes
//! torrents (enough pieces that no peer runs out, see `Settings::torrents_for`), and has
//! simulated peers join every swarm, spread over the three nodes. Every peer then reports
//! `BATCH` new pieces per `Have` request, one request at a time under its own write
//! session, for `WARMUP` + `DURATION` seconds; only the last `DURATION` seconds are
//! measured. A request answered `Unavailable` is sent again with the same write id after
//! a back-off, as the tracker client does; its latency counts from the first send.
//!
//! Modes:
//! - `direct`: a peer's request goes straight to a node's `Service::answer`, as if it had
//!   just come off the node's peer endpoint (peer `i` always uses node `i % 3`, so two in
//!   three requests are forwarded by a follower to the leader).
//! - `quic`: each peer is a real QUIC endpoint with its own self-signed key, speaking to
//!   the cluster with `TrackerClient` (peer `i` prefers node `i % 3`), so the peer-to-node
//!   hop (TLS, framing, one stream per request) is included. Each peer needs its own
//!   endpoint (its key is its identity), so this mode runs fewer peers; a `direct` run
//!   with the same number of peers is added beside it so the cost of the hop shows.
//!
//! Visibility: a sampler thread reads every node's `decided` and `applied` slots about
//! every millisecond. For a report acknowledged at time `a`, `S` is the highest `decided`
//! of any node in the first sample taken after `a`: the report's slot is at most `S`
//! (some node applied it before answering). The report is visible everywhere by the end
//! of the first sample in which every node's `applied` is at least `S`. Its visibility
//! delay is that time minus the time it was sent: an upper bound, by the sampling period
//! and by the slots decided between the acknowledgement and the sample.
//!
//! Knobs (environment): `DURATION` (s, default 10), `WARMUP` (s, default 2), `PEERS`
//! (direct-mode peer counts, default "1000 10000"), `QUIC_PEERS` (default "200"),
//! `BATCH` (pieces per report, default 16), `PIECES` and `TORRENTS` (pieces per torrent
//! and torrents per run; sized per run by default), `INTERVAL_MS` (pause between a peer's
//! reports; default 0, a closed loop), `MODES` (default "direct quic"). Run under `cargo
//! test` (without `--bench`), it does a short smoke run instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use certs::{Fingerprint, Identity};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tracker::Bitfield;
use tracker::api::{DEFAULT_NEIGHBOURS, Request, Response, WriteId};
use tracker::client::{ClientConfig, TrackerClient};
use tracker::dev::{DevCluster, DevOptions};
use tracker::service::Service;
use tracker::state::{Output, Query};
use tracker::torrent::InfoHash;
use transport::{Endpoint, EndpointConfig, InboundTrust};

/// The goal of the issue: piece reports committed per second.
const GOAL_PIECES_PER_SEC: f64 = 100_000.0;

/// Bytes per piece of the benchmark torrent (the smallest usual piece size).
const PIECE_LEN: u32 = 16 * 1024;

/// Requests per second that default-sized torrents leave room for (about twice the
/// best seen on a 2-core machine), so that no peer runs out of new pieces to report.
const HEADROOM_REQUESTS_PER_SEC: f64 = 100_000.0;

/// Most pieces in one benchmark torrent: 16,384 (a 512 KiB torrent file, 2 KiB of
/// bitfield per peer). Larger needs are met with more torrents: one multi-megabyte
/// publish is a different benchmark.
const MAX_TORRENT_PIECES: u32 = 16_384;

/// How often the sampler reads the nodes' slots.
const SAMPLE_EVERY: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Direct,
    Quic,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Quic => "quic",
        }
    }
}

#[derive(Clone, Debug)]
struct Settings {
    duration: Duration,
    warmup: Duration,
    peers: Vec<usize>,
    quic_peers: Vec<usize>,
    batch: u32,
    /// Pieces in each torrent; by default sized per run (see `torrents_for`).
    pieces: Option<u32>,
    /// Torrents per run; by default sized per run.
    torrents: Option<usize>,
    interval: Duration,
    modes: Vec<Mode>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {text:?}")),
        _ => default,
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn counts(name: &str, default: &str) -> Vec<usize> {
    env_list(name, default)
        .iter()
        .map(|c| match c.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must list positive whole numbers, got {c:?}"),
        })
        .collect()
}

impl Settings {
    fn from_env(smoke: bool) -> Settings {
        let (duration, warmup, peers, quic_peers) = if smoke {
            (1.0, 0.3, "30", "6")
        } else {
            (10.0, 2.0, "1000 10000", "200")
        };
        let modes = env_list("MODES", "direct quic")
            .iter()
            .map(|m| match m.as_str() {
                "direct" => Mode::Direct,
                "quic" => Mode::Quic,
                other => panic!("MODES: unknown mode {other:?} (use direct and/or quic)"),
            })
            .collect();
        let settings = Settings {
            duration: Duration::from_secs_f64(env_or("DURATION", duration)),
            warmup: Duration::from_secs_f64(env_or("WARMUP", warmup)),
            peers: counts("PEERS", peers),
            quic_peers: counts("QUIC_PEERS", quic_peers),
            batch: env_or("BATCH", 16u32),
            pieces: match env_or("PIECES", 0u32) {
                0 => None,
                n => Some(n),
            },
            torrents: match env_or("TORRENTS", 0usize) {
                0 => None,
                n => Some(n),
            },
            interval: Duration::from_millis(env_or("INTERVAL_MS", 0u64)),
            modes,
        };
        assert!(settings.batch > 0, "BATCH must be positive");
        assert!(
            settings.pieces.is_none_or(|p| p >= settings.batch),
            "PIECES must be at least BATCH"
        );
        assert!(!settings.duration.is_zero(), "DURATION must be positive");
        settings
    }

    /// A run's torrents: how many, and pieces in each. Every peer joins all of them and
    /// reports their pieces one torrent after the other. By default, torrents of
    /// [`MAX_TORRENT_PIECES`], enough that no peer runs out at
    /// [`HEADROOM_REQUESTS_PER_SEC`] (some peers are served much faster than the
    /// average). `PIECES` sets the pieces of a torrent; then there is one torrent unless
    /// `TORRENTS` says.
    fn torrents_for(&self, peers: usize) -> (usize, u32) {
        if let Some(pieces) = self.pieces {
            return (self.torrents.unwrap_or(1), pieces);
        }
        let seconds = (self.warmup + self.duration).as_secs_f64();
        let per_peer =
            HEADROOM_REQUESTS_PER_SEC * seconds * f64::from(self.batch) / peers.max(1) as f64;
        let torrents = (per_peer / f64::from(MAX_TORRENT_PIECES)).ceil().max(1.0) as usize;
        (self.torrents.unwrap_or(torrents), MAX_TORRENT_PIECES)
    }

    /// The runs, in order: direct mode at each `PEERS` count, then for each `QUIC_PEERS`
    /// count a direct run (unless already done) and a quic run.
    fn runs(&self) -> Vec<(Mode, usize)> {
        let mut runs = Vec::new();
        let direct = self.modes.contains(&Mode::Direct);
        if direct {
            runs.extend(self.peers.iter().map(|&n| (Mode::Direct, n)));
        }
        if self.modes.contains(&Mode::Quic) {
            for &n in &self.quic_peers {
                if direct && !self.peers.contains(&n) {
                    runs.push((Mode::Direct, n));
                }
                runs.push((Mode::Quic, n));
            }
        }
        runs
    }
}

/// One reading of every node, times in µs since the run's start.
#[derive(Clone, Debug)]
struct Sample {
    before_us: u64,
    after_us: u64,
    decided: Vec<u64>,
    applied: Vec<u64>,
    syncs: Vec<u64>,
    leader_changes: Vec<u64>,
}

impl Sample {
    fn max_decided(&self) -> u64 {
        self.decided.iter().copied().max().unwrap_or(0)
    }

    fn min_applied(&self) -> u64 {
        self.applied.iter().copied().min().unwrap_or(0)
    }
}

/// Reads every node's slots until `stop` is set, on a thread of its own so that a busy
/// async runtime does not delay the readings.
fn spawn_sampler(
    services: Vec<Service>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            let mut samples = Vec::with_capacity(64 * 1024);
            while !stop.load(Ordering::Relaxed) {
                let before_us = start.elapsed().as_micros() as u64;
                let metrics: Vec<_> = services.iter().map(|s| s.node().metrics()).collect();
                let after_us = start.elapsed().as_micros() as u64;
                samples.push(Sample {
                    before_us,
                    after_us,
                    decided: metrics.iter().map(|m| m.decided).collect(),
                    applied: metrics.iter().map(|m| m.applied).collect(),
                    syncs: metrics.iter().map(|m| m.storage_syncs).collect(),
                    leader_changes: metrics.iter().map(|m| m.leader_changes).collect(),
                });
                std::thread::sleep(SAMPLE_EVERY);
            }
            samples
        })
        .expect("spawn the sampler thread")
}

/// What one simulated peer did.
#[derive(Debug, Default)]
struct PeerResult {
    /// (sent, acknowledged) in µs since the start, for reports acknowledged in the
    /// measured window.
    measured: Vec<(u64, u64)>,
    /// Pieces acknowledged over the whole run (warm-up included).
    pieces_acked: u64,
    /// Requests answered `Unavailable` and sent again.
    retries: u64,
    /// The error that stopped this peer, if any.
    error: Option<String>,
    /// Whether it reported every piece before the end.
    exhausted: bool,
}

/// The pieces of a peer's `k`-th report: `batch` consecutive pieces from an offset of
/// its own, wrapping; none once every piece was reported.
fn batch_pieces(peer: usize, k: u64, batch: u32, pieces: u32) -> Option<Vec<u32>> {
    let first = k.checked_mul(u64::from(batch))?;
    if first + u64::from(batch) > u64::from(pieces) {
        return None;
    }
    let offset = (peer as u64).wrapping_mul(2_654_435_761) % u64::from(pieces);
    Some(
        (0..u64::from(batch))
            .map(|j| ((offset + first + j) % u64::from(pieces)) as u32)
            .collect(),
    )
}

/// The swarm and pieces of a peer's `k`-th report: its reports go through the torrents in
/// order, `piece_count / batch` reports each; none once every piece of every torrent was
/// reported.
fn next_report(
    peer: usize,
    k: u64,
    clock: &Clock,
    swarms: &[InfoHash],
) -> Option<(InfoHash, Vec<u32>)> {
    let per_torrent = u64::from(clock.piece_count / clock.batch);
    let swarm = swarms.get(usize::try_from(k / per_torrent).ok()?)?;
    let pieces = batch_pieces(peer, k % per_torrent, clock.batch, clock.piece_count)?;
    Some((*swarm, pieces))
}

/// When a run's load starts, its measured window opens and closes.
#[derive(Clone, Copy, Debug)]
struct Clock {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    interval: Duration,
    /// Pieces per report.
    batch: u32,
    /// Pieces in each torrent.
    piece_count: u32,
}

impl Clock {
    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_micros() as u64
    }

    fn in_window(&self, acked: Instant) -> bool {
        acked >= self.measure_from && acked <= self.end
    }

    /// Waits before the next report if peers pause between reports.
    async fn pause(&self, sent: Instant) {
        if !self.interval.is_zero() {
            tokio::time::sleep_until((sent + self.interval).into()).await;
        }
    }
}

/// A simulated peer of `direct` mode: a fingerprint and a write session, no socket.
#[derive(Clone, Copy, Debug)]
struct SimPeer {
    fingerprint: Fingerprint,
    session: u64,
}

/// Sends `request` to `service` until it is answered with something other than
/// `Unavailable` (the same write id each time, so it applies once), backing off as the
/// tracker client does: 100 ms, doubling, at most 1 s.
async fn answer_retrying(
    service: &Service,
    fingerprint: Fingerprint,
    request: Request,
    retries: &mut u64,
) -> Response {
    let mut backoff = Duration::from_millis(100);
    loop {
        match service.answer(fingerprint, request.clone()).await {
            Response::Unavailable(_) => {
                *retries += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

async fn direct_peer(
    index: usize,
    peer: SimPeer,
    service: Service,
    swarms: Arc<Vec<InfoHash>>,
    clock: Clock,
) -> PeerResult {
    let mut result = PeerResult::default();
    // The joins took 1 to `swarms.len()`.
    let mut seq = swarms.len() as u64;
    let mut k = 0;
    while Instant::now() < clock.end {
        let Some((info_hash, pieces)) = next_report(index, k, &clock, &swarms) else {
            result.exhausted = true;
            break;
        };
        k += 1;
        seq += 1;
        let count = pieces.len() as u64;
        let request = Request::Have {
            id: WriteId {
                client: peer.session,
                seq,
            },
            info_hash,
            pieces,
        };
        let sent = Instant::now();
        let response =
            answer_retrying(&service, peer.fingerprint, request, &mut result.retries).await;
        let acked = Instant::now();
        match response {
            Response::Done => {
                result.pieces_acked += count;
                if clock.in_window(acked) {
                    result.measured.push((clock.us(sent), clock.us(acked)));
                }
            }
            other => {
                result.error = Some(format!("{other:?}"));
                break;
            }
        }
        clock.pause(sent).await;
    }
    result
}

async fn quic_peer(
    index: usize,
    client: Arc<TrackerClient>,
    swarms: Arc<Vec<InfoHash>>,
    clock: Clock,
) -> PeerResult {
    let mut result = PeerResult::default();
    let mut k = 0;
    while Instant::now() < clock.end {
        let Some((info_hash, pieces)) = next_report(index, k, &clock, &swarms) else {
            result.exhausted = true;
            break;
        };
        k += 1;
        let count = pieces.len() as u64;
        let sent = Instant::now();
        let answer = client.have(info_hash, pieces).await;
        let acked = Instant::now();
        match answer {
            Ok(()) => {
                result.pieces_acked += count;
                if clock.in_window(acked) {
                    result.measured.push((clock.us(sent), clock.us(acked)));
                }
            }
            Err(e) => {
                result.error = Some(e.to_string());
                break;
            }
        }
        clock.pause(sent).await;
    }
    result
}

/// What a run measured.
#[derive(Debug)]
struct Report {
    mode: Mode,
    peers: usize,
    batch: u32,
    torrents: usize,
    torrent_pieces: u32,
    pieces_per_sec: f64,
    requests_per_sec: f64,
    latency_p50: Duration,
    latency_p99: Duration,
    visibility_p50: Duration,
    visibility_p99: Duration,
    unresolved: usize,
    requests_per_slot: f64,
    requests_per_sync: f64,
    /// Cores this process kept busy in the measured window (the cluster, the load and
    /// the sampler together), if known.
    cores_used: Option<f64>,
    /// Process CPU time per acknowledged request, if known.
    cpu_per_request: Option<Duration>,
    sample_period: Duration,
    retries: u64,
    errors: usize,
    first_error: Option<String>,
    exhausted: usize,
    leader_changes: u64,
    replicas_agree: bool,
    setup: Duration,
    /// The machine's 1-minute load average at the end of the run (other work competes
    /// for the same cores), if known.
    load_average: Option<f64>,
}

impl Report {
    fn passes(&self) -> bool {
        self.pieces_per_sec >= GOAL_PIECES_PER_SEC && self.errors == 0 && self.replicas_agree
    }

    fn json(&self) -> String {
        format!(
            concat!(
                "{{\"bench\":\"tracker-piece-reports\",\"mode\":\"{}\",\"peers\":{},",
                "\"batch\":{},\"torrents\":{},\"torrent_pieces\":{},\"pieces_per_sec\":{:.0},\"requests_per_sec\":{:.0},",
                "\"latency_p50_ms\":{:.3},\"latency_p99_ms\":{:.3},",
                "\"visibility_p50_ms\":{:.3},\"visibility_p99_ms\":{:.3},",
                "\"visibility_unresolved\":{},\"requests_per_slot\":{:.1},",
                "\"requests_per_fsync\":{:.1},\"cores_used\":{},\"cpu_us_per_request\":{},\"sample_period_ms\":{:.3},\"retries\":{},",
                "\"errors\":{},\"exhausted_peers\":{},\"leader_changes\":{},",
                "\"replicas_agree\":{},\"setup_s\":{:.2},\"load_average\":{},\"pass\":{}}}"
            ),
            self.mode.name(),
            self.peers,
            self.batch,
            self.torrents,
            self.torrent_pieces,
            self.pieces_per_sec,
            self.requests_per_sec,
            ms(self.latency_p50),
            ms(self.latency_p99),
            ms(self.visibility_p50),
            ms(self.visibility_p99),
            self.unresolved,
            self.requests_per_slot,
            self.requests_per_sync,
            self.cores_used
                .map_or_else(|| "null".to_string(), |c| format!("{c:.2}")),
            self.cpu_per_request.map_or_else(
                || "null".to_string(),
                |c| format!("{:.1}", c.as_secs_f64() * 1e6)
            ),
            ms(self.sample_period),
            self.retries,
            self.errors,
            self.exhausted,
            self.leader_changes,
            self.replicas_agree,
            self.setup.as_secs_f64(),
            self.load_average
                .map_or_else(|| "null".to_string(), |l| format!("{l:.2}")),
            self.passes(),
        )
    }
}

/// CPU time this process has used (user and system), where the system tells it.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name, in
    // ticks of 1/100 s on Linux.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The 1-minute load average, where the system tells it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Thousands separated by commas.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant bounds are valid")
}

fn quantile(h: &Histogram<u64>, q: f64) -> Duration {
    if h.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_micros(h.value_at_quantile(q))
    }
}

/// Visibility delay of each measured report (µs), and how many could not be resolved
/// (no sample late enough).
fn visibility(measured: &[(u64, u64)], samples: &[Sample]) -> (Histogram<u64>, usize) {
    let mut h = histogram();
    let mut unresolved = 0;
    for &(sent, acked) in measured {
        let first = samples.partition_point(|s| s.before_us < acked);
        let Some(after_ack) = samples.get(first) else {
            unresolved += 1;
            continue;
        };
        let slot = after_ack.max_decided();
        // Every node's `applied` only grows, so the samples where all reached `slot` are
        // a suffix.
        let visible = first + samples[first..].partition_point(|s| s.min_applied() < slot);
        match samples.get(visible) {
            Some(s) => {
                let _ = h.record(s.after_us.saturating_sub(sent).max(1));
            }
            None => unresolved += 1,
        }
    }
    (h, unresolved)
}

/// The torrent of a file of `pieces` zero pieces, made for `cluster` (every piece has
/// the same hash, so nothing needs reading).
fn make_torrent(name: &str, pieces: u32, cluster: &DevCluster) -> tracker::torrent::Torrent {
    let zero_piece = blake3::hash(&vec![0u8; PIECE_LEN as usize]);
    let info = tracker::torrent::Info {
        name: name.into(),
        piece_length: PIECE_LEN,
        files: vec![tracker::torrent::FileEntry {
            path: Vec::new(),
            length: u64::from(pieces) * u64::from(PIECE_LEN),
        }],
        pieces: zero_piece.as_bytes().repeat(pieces as usize),
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    tracker::torrent::Torrent::new(
        info,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        created,
        None,
    )
    .expect("make the benchmark torrent")
}

fn random_fingerprint() -> Fingerprint {
    Fingerprint::from_bytes(rand::random())
}

/// Joins `peers` simulated peers to every swarm (peer `i` through node `i % n`).
async fn join_direct(
    services: &[Service],
    peers: &[SimPeer],
    swarms: &[InfoHash],
    piece_count: u32,
) {
    let limit = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(peers.len());
    for (i, &peer) in peers.iter().enumerate() {
        let service = services[i % services.len()].clone();
        let limit = limit.clone();
        let swarms = swarms.to_vec();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            for (seq, info_hash) in (1..).zip(swarms) {
                let request = Request::Join {
                    id: WriteId {
                        client: peer.session,
                        seq,
                    },
                    info_hash,
                    addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + (i % 50_000) as u16))
                        .to_string(),
                    have: Bitfield::new(piece_count),
                    want: DEFAULT_NEIGHBOURS,
                };
                let mut retries = 0;
                match answer_retrying(&service, peer.fingerprint, request, &mut retries).await {
                    Response::Joined { .. } => {}
                    other => panic!("peer {i} could not join: {other:?}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("join task");
    }
}

/// Binds `n` peer endpoints, each with its own key, and joins each to every swarm with
/// a tracker client that prefers node `i % 3`.
async fn join_quic(
    n: usize,
    cluster: &DevCluster,
    swarms: &[InfoHash],
    piece_count: u32,
) -> (Vec<Endpoint>, Vec<Arc<TrackerClient>>) {
    let addrs = cluster.peer_addrs();
    let mut endpoints = Vec::with_capacity(n);
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let identity = Identity::generate_self_signed("peer").expect("make a peer identity");
        let config = EndpointConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            InboundTrust::Open,
            &[],
        );
        let endpoint = Endpoint::bind(identity, config).expect("bind a peer endpoint");
        let mut nodes = addrs.clone();
        nodes.rotate_left(i % addrs.len());
        let client = TrackerClient::with_config(
            endpoint.clone(),
            nodes,
            cluster.ca_fingerprint(),
            ClientConfig::default(),
        );
        endpoints.push(endpoint);
        clients.push(Arc::new(client));
    }
    let limit = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let addr = endpoints[i].local_addr();
        let limit = limit.clone();
        let swarms = swarms.to_vec();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            for info_hash in swarms {
                client
                    .join(
                        info_hash,
                        addr,
                        Bitfield::new(piece_count),
                        DEFAULT_NEIGHBOURS,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("quic peer {i} could not join: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("join task");
    }
    (endpoints, clients)
}

/// Publishes the torrent through node 1 as the user `dev`.
async fn publish(service: &Service, cluster: &DevCluster, torrent: Vec<u8>) -> InfoHash {
    let request = Request::Publish {
        id: WriteId {
            client: rand::random(),
            seq: 1,
        },
        token: cluster.token().to_string(),
        torrent,
    };
    let mut retries = 0;
    match answer_retrying(service, random_fingerprint(), request, &mut retries).await {
        Response::Published(hash) => hash,
        other => panic!("publishing the benchmark torrent failed: {other:?}"),
    }
}

/// Waits until every node has applied all that any node decided (or `timeout`).
async fn wait_caught_up(services: &[Service], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let metrics: Vec<_> = services.iter().map(|s| s.node().metrics()).collect();
        let decided = metrics.iter().map(|m| m.decided).max().unwrap_or(0);
        if metrics.iter().all(|m| m.applied >= decided) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every node's count of applied piece reports.
async fn piece_reports_per_node(services: &[Service]) -> Vec<u64> {
    let mut counts = Vec::new();
    for service in services {
        match service.node().read_local(Query::Stats).await {
            Ok(Output::Stats(stats)) => counts.push(stats.piece_reports),
            other => panic!("reading a node's stats failed: {other:?}"),
        }
    }
    counts
}

/// The sample nearest to `us`.
fn sample_at(samples: &[Sample], us: u64) -> Option<&Sample> {
    let i = samples.partition_point(|s| s.before_us < us);
    samples.get(i).or_else(|| samples.last())
}

async fn run(settings: Arc<Settings>, mode: Mode, peers: usize) -> Report {
    let setup_started = Instant::now();
    let dir = tempfile::tempdir().expect("make a temporary directory");
    let cluster = DevCluster::start(
        dir.path(),
        DevOptions {
            nodes: 3,
            http: false,
            // Long enough that nobody expires during a run.
            peer_ttl_ms: 600_000,
            // No admission limit: this benchmark measures the consensus path's ceiling
            // with every peer's request in flight.
            max_requests_in_flight: 1 << 20,
        },
    )
    .await
    .expect("start the dev cluster");
    let services: Vec<Service> = cluster
        .ids()
        .iter()
        .map(|&id| {
            cluster
                .node(id)
                .expect("every node of a fresh dev cluster runs")
                .service()
                .clone()
        })
        .collect();
    let (torrents, piece_count) = settings.torrents_for(peers);
    let mut swarms = Vec::with_capacity(torrents);
    for t in 0..torrents {
        let torrent = make_torrent(&format!("reports-{t}.bin"), piece_count, &cluster);
        swarms.push(publish(&services[0], &cluster, torrent.encode()).await);
    }
    let swarms = Arc::new(swarms);

    let sim_peers: Vec<SimPeer> = (0..peers)
        .map(|_| SimPeer {
            fingerprint: random_fingerprint(),
            session: rand::random(),
        })
        .collect();
    let mut endpoints = Vec::new();
    let mut clients = Vec::new();
    match mode {
        Mode::Direct => join_direct(&services, &sim_peers, &swarms, piece_count).await,
        Mode::Quic => {
            (endpoints, clients) = join_quic(peers, &cluster, &swarms, piece_count).await;
        }
    }
    wait_caught_up(&services, Duration::from_secs(10)).await;
    let setup = setup_started.elapsed();

    let start = Instant::now();
    let clock = Clock {
        start,
        measure_from: start + settings.warmup,
        end: start + settings.warmup + settings.duration,
        interval: settings.interval,
        batch: settings.batch,
        piece_count,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(services.clone(), start, stop.clone());
    let cpu_in_window = tokio::spawn(async move {
        tokio::time::sleep_until(clock.measure_from.into()).await;
        let (at_start, from) = (process_cpu(), Instant::now());
        tokio::time::sleep_until(clock.end.into()).await;
        let (at_end, to) = (process_cpu(), Instant::now());
        Some((at_end?.saturating_sub(at_start?), to - from))
    });
    let mut tasks = Vec::with_capacity(peers);
    for i in 0..peers {
        tasks.push(match mode {
            Mode::Direct => tokio::spawn(direct_peer(
                i,
                sim_peers[i],
                services[i % services.len()].clone(),
                swarms.clone(),
                clock,
            )),
            Mode::Quic => tokio::spawn(quic_peer(i, clients[i].clone(), swarms.clone(), clock)),
        });
    }
    let mut results = Vec::with_capacity(peers);
    for task in tasks {
        results.push(task.await.expect("peer task"));
    }
    let cpu = cpu_in_window.await.expect("cpu task");
    wait_caught_up(&services, Duration::from_secs(10)).await;
    tokio::time::sleep(SAMPLE_EVERY * 5).await;
    stop.store(true, Ordering::Relaxed);
    let samples = tokio::task::spawn_blocking(move || sampler.join())
        .await
        .expect("sampler task")
        .expect("sampler thread");

    let applied = piece_reports_per_node(&services).await;
    let acked: u64 = results.iter().map(|r| r.pieces_acked).sum();
    let replicas_agree = applied.iter().all(|&n| n == acked);
    if !replicas_agree {
        eprintln!("  pieces acknowledged {acked}, applied per node {applied:?}");
    }

    let mut measured: Vec<(u64, u64)> = results
        .iter()
        .flat_map(|r| r.measured.iter().copied())
        .collect();
    measured.sort_unstable_by_key(|&(_, acked)| acked);
    let mut latency = histogram();
    for &(sent, acked) in &measured {
        let _ = latency.record(acked.saturating_sub(sent).max(1));
    }
    let (visible, unresolved) = visibility(&measured, &samples);
    let window = settings.duration.as_secs_f64();
    let requests = measured.len() as f64;
    let leader = cluster
        .leader()
        .and_then(|id| cluster.ids().iter().position(|&i| i == id))
        .unwrap_or(0);
    let (from, to) = (clock.us(clock.measure_from), clock.us(clock.end));
    let (slots, syncs, leader_changes) = match (sample_at(&samples, from), sample_at(&samples, to))
    {
        (Some(a), Some(b)) => (
            b.decided[leader].saturating_sub(a.decided[leader]),
            b.syncs[leader].saturating_sub(a.syncs[leader]),
            b.leader_changes
                .iter()
                .zip(&a.leader_changes)
                .map(|(b, a)| b - a)
                .max()
                .unwrap_or(0),
        ),
        _ => (0, 0, 0),
    };
    let sample_period = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if samples.len() > 1 => {
            Duration::from_micros((b.before_us - a.before_us) / (samples.len() as u64 - 1))
        }
        _ => Duration::ZERO,
    };
    let errors: Vec<&String> = results.iter().filter_map(|r| r.error.as_ref()).collect();
    let report = Report {
        mode,
        peers,
        batch: settings.batch,
        torrents,
        torrent_pieces: piece_count,
        pieces_per_sec: measured.len() as f64 * f64::from(settings.batch) / window,
        requests_per_sec: requests / window,
        latency_p50: quantile(&latency, 0.5),
        latency_p99: quantile(&latency, 0.99),
        visibility_p50: quantile(&visible, 0.5),
        visibility_p99: quantile(&visible, 0.99),
        unresolved,
        requests_per_slot: requests / (slots.max(1) as f64),
        requests_per_sync: requests / (syncs.max(1) as f64),
        cores_used: cpu.map(|(cpu, wall)| cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)),
        cpu_per_request: cpu.and_then(|(cpu, wall)| {
            let acked = requests * wall.as_secs_f64() / window;
            (acked >= 1.0).then(|| cpu.div_f64(acked))
        }),
        sample_period,
        retries: results.iter().map(|r| r.retries).sum(),
        errors: errors.len(),
        first_error: errors.first().map(|e| e.to_string()),
        exhausted: results.iter().filter(|r| r.exhausted).count(),
        leader_changes,
        replicas_agree,
        setup,
        load_average: load_average(),
    };

    for endpoint in &endpoints {
        endpoint.close();
    }
    drop(clients);
    drop(services);
    cluster.shutdown();
    report
}

fn print_table(settings: &Settings, reports: &[Report]) {
    println!();
    println!(
        "Piece reports through a 3-node tracker cluster on loopback ({} s measured after {} s warm-up, {}; goal >= {} pieces/s)",
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        if settings.interval.is_zero() {
            "closed loop".to_string()
        } else {
            format!(
                "one report per peer every {} ms",
                settings.interval.as_millis()
            )
        },
        grouped(GOAL_PIECES_PER_SEC),
    );
    println!(
        "{:<7} {:>6} {:>5} {:>12} {:>11} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>6} {:>7}  goal",
        "mode",
        "peers",
        "batch",
        "pieces/s",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "vis p50",
        "vis p99",
        "req/slot",
        "req/sync",
        "cores",
        "µs/req"
    );
    for r in reports {
        println!(
            "{:<7} {:>6} {:>5} {:>12} {:>11} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>9.1} {:>9.1} {:>6} {:>7}  {}",
            r.mode.name(),
            r.peers,
            r.batch,
            grouped(r.pieces_per_sec),
            grouped(r.requests_per_sec),
            ms(r.latency_p50),
            ms(r.latency_p99),
            ms(r.visibility_p50),
            ms(r.visibility_p99),
            r.requests_per_slot,
            r.requests_per_sync,
            r.cores_used
                .map_or_else(|| "?".to_string(), |c| format!("{c:.2}")),
            r.cpu_per_request.map_or_else(
                || "?".to_string(),
                |c| format!("{:.0}", c.as_secs_f64() * 1e6)
            ),
            if r.passes() { "PASS" } else { "FAIL" },
        );
    }
    println!(
        "(vis = send to applied on every node, an upper bound from ~{} ms samples; req/slot and req/sync are the leader's; cores = CPU this process got, µs/req = its CPU time per report)",
        SAMPLE_EVERY.as_millis()
    );
    for r in reports {
        let mut notes = Vec::new();
        if let Some(load) = r.load_average {
            notes.push(format!("load average {load:.1}"));
        }
        if r.retries > 0 {
            notes.push(format!("{} retries after Unavailable", r.retries));
        }
        if r.errors > 0 {
            notes.push(format!(
                "{} peers stopped on an error, first: {}",
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
        if r.exhausted > 0 {
            notes.push(format!(
                "{} peers reported every piece before the end (raise PIECES)",
                r.exhausted
            ));
        }
        if r.unresolved > 0 {
            notes.push(format!(
                "{} reports without a visibility time",
                r.unresolved
            ));
        }
        if r.leader_changes > 0 {
            notes.push(format!("{} leader changes in the window", r.leader_changes));
        }
        if !r.replicas_agree {
            notes.push("replicas' piece-report counts differ from the acknowledged".into());
        }
        if !notes.is_empty() {
            println!("  {} {}: {}", r.mode.name(), r.peers, notes.join("; "));
        }
    }
    println!();
    for r in reports {
        println!("{}", r.json());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let settings = Arc::new(Settings::from_env(smoke));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let mut reports = Vec::new();
    for (mode, peers) in settings.runs() {
        eprintln!(
            "piece_reports: {} mode, {peers} peers, batch {}, {} s + {} s warm-up ...",
            mode.name(),
            settings.batch,
            settings.duration.as_secs_f64(),
            settings.warmup.as_secs_f64()
        );
        let report = runtime.block_on(run(settings.clone(), mode, peers));
        eprintln!(
            "  {} pieces/s, p99 {:.1} ms, visibility p99 {:.1} ms (setup {:.1} s)",
            grouped(report.pieces_per_sec),
            ms(report.latency_p99),
            ms(report.visibility_p99),
            report.setup.as_secs_f64()
        );
        reports.push(report);
    }
    print_table(&settings, &reports);
    runtime.shutdown_timeout(Duration::from_secs(2));
    if smoke {
        assert!(
            reports.iter().all(|r| r.errors == 0 && r.replicas_agree),
            "the smoke run had errors or replicas that disagree"
        );
    }
}
