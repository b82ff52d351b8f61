//! The coordinator: starts the cluster and the workers, plays the timeline (the kill of a
//! worker's peers, the kill and restart of the leader), samples the nodes, checks every
//! node at the end and prints the table.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracker::admin::AdminClient;
use tracker::client::TrackerClient;
use tracker::torrent::{FileEntry, Info, InfoHash, Torrent};
use transport::{Endpoint, EndpointConfig, InboundTrust};

use crate::check;
use crate::cluster::{self, Cluster, Health};
use crate::plan::{Plan, WorkerResult};
use crate::report::{self, HealthSample, MetricsSample, NodeSample, Timeline};
use crate::worker::{unix_ms, unix_us};

/// The settings of a run. Defaults are the full-size crowd of the benchmark.
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    /// Peers in all.
    #[arg(long, default_value_t = 20_000)]
    pub peers: usize,
    /// Worker processes for the peers that stay or leave (one more runs the killed ones).
    #[arg(long, default_value_t = 4)]
    pub procs: usize,
    /// Seconds over which the peers join.
    #[arg(long, default_value_t = 30)]
    pub join_window: u64,
    /// Seconds of load after the join window.
    #[arg(long, default_value_t = 60)]
    pub steady: u64,
    /// Pieces of the big torrent.
    #[arg(long, default_value_t = 4096)]
    pub pieces: u32,
    /// Small torrents, each with a few peers (drawn from the crowd).
    #[arg(long, default_value_t = 300)]
    pub small_torrents: usize,
    /// Peers in each small torrent.
    #[arg(long, default_value_t = 5)]
    pub small_peers: usize,
    /// A peer reports its new pieces this often, ms (the real peer: every 2 s).
    #[arg(long, default_value_t = 1000)]
    pub report_every_ms: u64,
    /// New pieces in each report.
    #[arg(long, default_value_t = 8)]
    pub pieces_per_report: u32,
    /// Heartbeat interval, ms (the real peer: 10 s).
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_every_ms: u64,
    /// A peer asks for more neighbours this often, ms (0: never).
    #[arg(long, default_value_t = 30_000)]
    pub more_peers_every_ms: u64,
    /// A peer asks for the holders of a piece this often, ms (0: never).
    #[arg(long, default_value_t = 20_000)]
    pub holders_every_ms: u64,
    /// Share of the peers that leave cleanly before the end.
    #[arg(long, default_value_t = 0.10)]
    pub leave: f64,
    /// Share of the peers that are killed (one worker process, SIGKILL).
    #[arg(long, default_value_t = 0.05)]
    pub kill: f64,
    /// Seconds after the join window at which the killed peers' worker is killed.
    #[arg(long, default_value_t = 5)]
    pub kill_peers_after: u64,
    /// Seconds after the start at which the leader is killed (0: a third into the
    /// steady part).
    #[arg(long, default_value_t = 0)]
    pub kill_leader_at: u64,
    /// Seconds the killed leader stays down.
    #[arg(long, default_value_t = 3)]
    pub restart_after: u64,
    /// The nodes' peer time to live, seconds (the tracker's default: 30).
    #[arg(long, default_value_t = 30)]
    pub peer_ttl_secs: u64,
    /// One in this many acknowledged reports is timed until applied everywhere.
    #[arg(long, default_value_t = 8)]
    pub visibility_every: u32,
    /// Measure the highest sustained piece-report rate instead of playing the crowd's
    /// timeline: every peer sends its next batch of `--pieces-per-report` pieces as soon as
    /// the last one is acknowledged, until it has reported every piece; nobody leaves, is
    /// killed or asks for neighbours, and the leader is not killed. Heartbeats go on.
    #[arg(long)]
    pub closed_loop: bool,
    /// More flags for every `bt-tracker run`, e.g. `--node-arg=--max-requests-in-flight=256`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// The `bt-tracker` binary (default: next to this one).
    #[arg(long)]
    pub bt_tracker: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the figures as one JSON line to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the cluster's directory (logs, data) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

impl Settings {
    /// The settings as played: `--closed-loop` overrides the timeline's settings.
    fn played(mut self) -> Settings {
        if self.closed_loop {
            self.report_every_ms = 0;
            self.more_peers_every_ms = 0;
            self.holders_every_ms = 0;
            self.leave = 0.0;
            self.kill = 0.0;
        }
        self
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.peers == 0 || self.procs == 0 || self.pieces == 0 {
            bail!("--peers, --procs and --pieces must be at least 1");
        }
        if !(0.0..=0.5).contains(&self.leave) || !(0.0..=0.5).contains(&self.kill) {
            bail!("--leave and --kill are shares between 0 and 0.5");
        }
        // The killed peers must have expired on every node when the check runs: time to
        // live, plus the 1 s expiry interval, plus a margin.
        let expired_by = self.kill_peers_after + self.peer_ttl_secs + 5;
        if self.kill > 0.0 && expired_by > self.steady {
            bail!(
                "--steady {} is too short: the killed peers expire only {expired_by} s after \
                 the join window (--kill-peers-after + --peer-ttl-secs + 5 s)",
                self.steady
            );
        }
        if let Some(at) = self.kill_leader_at()
            && at + self.restart_after + 5 > self.join_window + self.steady
        {
            bail!("the leader must be killed and back at least 5 s before the end");
        }
        Ok(())
    }

    /// When the leader is killed, s after the start (never in a closed-loop run).
    pub fn kill_leader_at(&self) -> Option<u64> {
        if self.closed_loop {
            None
        } else if self.kill_leader_at > 0 {
            Some(self.kill_leader_at)
        } else {
            Some(self.join_window + self.steady / 3)
        }
    }
}

/// A worker process and its line reader.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    out: PathBuf,
    victim: bool,
}

impl Worker {
    fn start(exe: &Path, plan: &Plan, dir: &Path, k: usize, victim: bool) -> anyhow::Result<Self> {
        let plan_path = dir.join(format!("plan{k}.msgpack"));
        std::fs::write(&plan_path, rmp_serde::to_vec(plan)?)?;
        let out = dir.join(format!("result{k}.msgpack"));
        let mut child = Command::new(exe)
            .arg("worker")
            .arg("--plan")
            .arg(&plan_path)
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting worker {k}"))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
            out,
            victim,
        })
    }

    async fn expect(&mut self, word: &str, within: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) if line.trim() == word => Ok(()),
            Ok(Some(line)) => bail!("a worker said {line:?} instead of {word:?}"),
            Ok(None) => bail!("a worker exited before saying {word:?}"),
            Err(_) => bail!("a worker did not say {word:?} within {within:?}"),
        }
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        Ok(())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the benchmark; true if every check passed.
pub fn run(settings: Settings) -> anyhow::Result<bool> {
    let settings = settings.played();
    settings.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(coordinate(settings))
}

async fn coordinate(settings: Settings) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    let bt_tracker = match &settings.bt_tracker {
        Some(path) => path.clone(),
        None => exe.with_file_name("bt-tracker"),
    };
    if !bt_tracker.exists() {
        bail!(
            "no bt-tracker binary at {} (build it with `cargo build --release -p tracker`, or \
             name it with --bt-tracker)",
            bt_tracker.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("tracker-crowd-")
        .tempdir()?;
    let mut cluster = Cluster::start(
        &bt_tracker,
        dir.path(),
        3,
        settings.peer_ttl_secs,
        settings.node_args.clone(),
    )?;
    eprintln!(
        "cluster of 3 bt-tracker processes up; publishing 1 + {} torrents",
        settings.small_torrents
    );
    let (main, small) = publish(&cluster, &settings).await?;

    // The peers: `procs` workers share those that stay or leave; one more runs the killed.
    let victims = (settings.peers as f64 * settings.kill).round() as usize;
    let others = settings.peers - victims;
    let mut plans = Vec::new();
    let mut first = 0;
    for k in 0..settings.procs {
        let peers = others / settings.procs + usize::from(k < others % settings.procs);
        plans.push((
            plan_for(
                &settings,
                &cluster,
                main,
                &small,
                first,
                peers,
                settings.leave,
            ),
            false,
        ));
        first += peers;
    }
    if victims > 0 {
        plans.push((
            plan_for(&settings, &cluster, main, &small, first, victims, 0.0),
            true,
        ));
    }
    let mut workers = Vec::new();
    for (k, (plan, victim)) in plans.iter().enumerate() {
        workers.push(Worker::start(&exe, plan, dir.path(), k, *victim)?);
    }
    for worker in &mut workers {
        worker.expect("ready", Duration::from_secs(120)).await?;
    }
    eprintln!(
        "{} peers bound in {} worker processes ({} to be killed); starting",
        settings.peers,
        workers.len(),
        victims
    );

    let start_ms = unix_ms() + 1000;
    for worker in &mut workers {
        worker.say(&format!("go {start_ms}"))?;
    }
    let t0 = Instant::now() + Duration::from_millis(start_ms.saturating_sub(unix_ms()));
    let samplers = Samplers::start(&cluster);
    let at = |s: u64| tokio::time::Instant::from_std(t0 + Duration::from_secs(s));

    // The timeline: kill the victims' worker, kill and restart the leader.
    let kill_peers = settings.join_window + settings.kill_peers_after;
    let kill_leader = settings.kill_leader_at();
    let mut events: Vec<(u64, &str)> = kill_leader.map(|at| (at, "leader")).into_iter().collect();
    if victims > 0 {
        events.push((kill_peers, "peers"));
    }
    events.sort();
    let mut killed_leader = None;
    for (when, what) in events {
        tokio::time::sleep_until(at(when)).await;
        if what == "peers" {
            if let Some(w) = workers.iter_mut().find(|w| w.victim) {
                let _ = w.child.kill();
                let _ = w.child.wait();
                eprintln!("t={when}s: killed the worker of {victims} peers (SIGKILL)");
            }
        } else {
            let leader = current_leader(&cluster)
                .await
                .context("no leader to kill")?;
            cluster.kill(leader);
            killed_leader = Some(leader);
            eprintln!("t={when}s: killed the leader, node {leader} (SIGKILL)");
            tokio::time::sleep(Duration::from_secs(settings.restart_after)).await;
            cluster.spawn(leader)?;
            eprintln!(
                "t={}s: node {leader} restarted",
                when + settings.restart_after
            );
        }
        cluster.sample_costs();
    }

    let end = settings.join_window + settings.steady;
    let mut results: Vec<WorkerResult> = Vec::new();
    for worker in workers.iter_mut().filter(|w| !w.victim) {
        let left = at(end + 120).saturating_duration_since(tokio::time::Instant::now());
        worker.expect("done", left).await?;
        let bytes = std::fs::read(&worker.out)?;
        results.push(rmp_serde::from_slice(&bytes).context("a worker's result")?);
    }
    eprintln!("load over at t={end}s; checking every node");

    let mut victim_peers = Vec::new();
    for worker in workers.iter().filter(|w| w.victim) {
        let bytes = std::fs::read(worker.out.with_extension("peers"))?;
        let peers: Vec<certs::Fingerprint> = rmp_serde::from_slice(&bytes)?;
        victim_peers.extend(peers);
    }
    let admin = AdminClient::new(&cluster.certs(), cluster.cluster_addrs())?;
    let expected = check::Expected {
        plan: &plans[0].0,
        results: &results,
        victims: &victim_peers,
        ttl_ms: settings.peer_ttl_secs * 1000,
    };
    let verdict = check::every_node(&cluster, &admin, &expected).await?;
    for worker in workers.iter_mut().filter(|w| !w.victim) {
        let _ = worker.say("stop");
    }
    cluster.sample_costs();
    let (health, metrics) = samplers.stop().await;
    let timeline = Timeline {
        join_window_ms: settings.join_window * 1000,
        kill_leader_ms: kill_leader.map(|s| s * 1000),
        end_ms: end * 1000,
        t0_unix_us: start_ms * 1000,
        killed_leader,
        peer_ttl_ms: settings.peer_ttl_secs * 1000,
    };
    let figures = report::Figures::compute(&timeline, &results, &health, &metrics, &cluster);
    figures.print(&settings, &verdict);
    if let Some(path) = &settings.json {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{}", figures.json(&settings, &verdict))?;
    }
    if settings.keep {
        let kept = dir.keep();
        eprintln!("kept the cluster's directory: {}", kept.display());
    }
    Ok(verdict.passed())
}

fn plan_for(
    settings: &Settings,
    cluster: &Cluster,
    main: InfoHash,
    small: &[InfoHash],
    first_peer: usize,
    peers: usize,
    leave_fraction: f64,
) -> Plan {
    Plan {
        nodes: cluster.peer_addrs(),
        ca: cluster.ca,
        main,
        main_pieces: settings.pieces,
        small: small.to_vec(),
        small_pieces: SMALL_PIECES,
        small_peers: settings.small_peers,
        join_window_ms: settings.join_window * 1000,
        load_end_ms: (settings.join_window + settings.steady) * 1000,
        report_every_ms: settings.report_every_ms,
        pieces_per_report: settings.pieces_per_report,
        heartbeat_every_ms: settings.heartbeat_every_ms,
        more_peers_every_ms: settings.more_peers_every_ms,
        holders_every_ms: settings.holders_every_ms,
        leave_fraction,
        first_peer,
        peers,
        visibility_every: settings.visibility_every,
        seed: settings.seed,
    }
}

/// Pieces of each small torrent.
const SMALL_PIECES: u32 = 64;

/// Bytes per piece of the crowd's torrents.
const PIECE_LEN: u32 = 256 * 1024;

/// Publishes the big torrent and the small ones through the real client, with a token
/// made through the operator protocol.
async fn publish(
    cluster: &Cluster,
    settings: &Settings,
) -> anyhow::Result<(InfoHash, Vec<InfoHash>)> {
    let mut admin = AdminClient::new(&cluster.certs(), cluster.cluster_addrs())?;
    admin
        .add_user("crowd", "crowd benchmark password".into(), false)
        .await?;
    let token = admin.create_token("crowd", "benchmark").await?;
    let endpoint = Endpoint::bind(
        certs::Identity::generate_self_signed("crowd-publisher")?,
        EndpointConfig::new("127.0.0.1:0".parse()?, InboundTrust::Open, &[]),
    )?;
    let client = TrackerClient::new(endpoint, cluster.peer_addrs(), cluster.ca);
    let main = make_torrent(cluster, "crowd-release.iso", settings.pieces)?;
    let main_hash = client.publish(&token, main.encode()).await?;
    let mut small = Vec::with_capacity(settings.small_torrents);
    for i in 0..settings.small_torrents {
        let torrent = make_torrent(cluster, &format!("small-{i:04}.tar"), SMALL_PIECES)?;
        small.push(client.publish(&token, torrent.encode()).await?);
    }
    Ok((main_hash, small))
}

/// A torrent of `pieces` pieces named `name` for `cluster` (piece hashes derived from
/// the name: no data is ever read).
fn make_torrent(cluster: &Cluster, name: &str, pieces: u32) -> anyhow::Result<Torrent> {
    let mut hashes = Vec::with_capacity(pieces as usize * 32);
    for p in 0..pieces {
        hashes.extend_from_slice(blake3::hash(format!("{name}/{p}").as_bytes()).as_bytes());
    }
    let info = Info {
        name: name.into(),
        piece_length: PIECE_LEN,
        files: vec![FileEntry {
            path: Vec::new(),
            length: u64::from(pieces) * u64::from(PIECE_LEN),
        }],
        pieces: hashes,
    };
    Ok(Torrent::new(
        info,
        cluster.peer_addrs(),
        cluster.ca,
        unix_ms() / 1000,
        None,
    )?)
}

/// The node that says it leads, asked for up to 30 s (an overloaded node may answer
/// `/health` late, or an election may be under way).
async fn current_leader(cluster: &Cluster) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        for (id, addrs) in &cluster.nodes {
            if let Some(Health {
                is_leader: true, ..
            }) = cluster::health(addrs.http).await
            {
                return Some(*id);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Background samplers of the nodes: `/health` every 10 ms, `/metrics` every second.
struct Samplers {
    stop: watch::Sender<bool>,
    health: JoinHandle<Vec<HealthSample>>,
    metrics: JoinHandle<Vec<MetricsSample>>,
}

impl Samplers {
    fn start(cluster: &Cluster) -> Samplers {
        let https: Vec<_> = cluster.nodes.values().map(|a| a.http).collect();
        let (stop, stop_rx) = watch::channel(false);
        Samplers {
            stop,
            health: sample_every(
                https.clone(),
                Duration::from_millis(10),
                stop_rx.clone(),
                cluster::health,
            ),
            metrics: sample_every(https, Duration::from_secs(1), stop_rx, cluster::metrics),
        }
    }

    async fn stop(self) -> (Vec<HealthSample>, Vec<MetricsSample>) {
        let _ = self.stop.send(true);
        (
            self.health.await.unwrap_or_default(),
            self.metrics.await.unwrap_or_default(),
        )
    }
}

/// Reads every node with `read` every `period` (skipping ticks missed while reading)
/// until `stop` says so.
fn sample_every<T, F, Fut>(
    https: Vec<SocketAddr>,
    period: Duration,
    stop: watch::Receiver<bool>,
    read: F,
) -> JoinHandle<Vec<NodeSample<T>>>
where
    T: Send + 'static,
    F: Fn(SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send,
{
    tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !*stop.borrow() {
            tick.tick().await;
            let mut nodes = Vec::with_capacity(https.len());
            for &http in &https {
                nodes.push(read(http).await);
            }
            samples.push(NodeSample {
                at_us: unix_us(),
                nodes,
            });
        }
        samples
    })
}
