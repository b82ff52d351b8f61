//! One nemesis run, inside the hub namespace: starts the `kv-server` or `bt-tracker`
//! nodes in their namespaces, runs the clients and the fault schedule side by side, heals
//! everything, reads every key (or piece) once more and checks the history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::faults::{self, Family, Fault, PartitionKind, Target};
use super::net::{Topology, run};
use super::tracker::{self, SetHistory, TrackerWorkload};
use super::workload::{Counts, History, Workload};
use crate::kv::{KvClient, KvResponse};
use ::tracker::client::{ClientConfig, TrackerClient};
use paxos::runtime::ClockSetting;

/// The paxos port of every node (each node has an address of its own).
const PAXOS_PORT: u16 = 7000;
/// The client port of every node.
const CLIENT_PORT: u16 = 8000;
/// Snapshots every this many slots: often, so that restarts and full disks meet them.
const SNAPSHOT_LOG_LEN: u64 = 500;

/// The system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// `kv-server` nodes; clients put and get a few keys (registers).
    Kv,
    /// `bt-tracker run` nodes; peers report pieces and clients ask who holds them
    /// (grow-only sets).
    Tracker,
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The system under test.
    pub system: System,
    /// The run's directory: `certs/`, `disk<N>/` (a tmpfs when the disk family runs),
    /// the nodes' logs and clock-control files.
    pub dir: PathBuf,
    /// The names of the run's namespaces.
    pub tag: String,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Seed of the schedule and of the clients.
    pub seed: u64,
    /// How long faults and clients run (healing and the final reads come after).
    pub duration: Duration,
    /// The fault families drawn from.
    pub families: Vec<Family>,
    /// How far clock rates are set (beyond the drift bound only to show it matters).
    pub clock: faults::ClockRange,
    /// A planted bug passed to every node (`--planted-bug`), if any.
    pub planted_bug: Option<String>,
    /// The server binary: `kv-server` or `bt-tracker`.
    pub server: PathBuf,
    /// Concurrent clients.
    pub clients: u64,
    /// Keys.
    pub keys: u64,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// What the nemesis did (faults and heals), one line each, with the time.
    pub log: Vec<String>,
    /// How many faults were applied.
    pub applied: usize,
    /// The operations by kind and outcome.
    pub counts: Counts,
    /// `Ok` when the history is linearizable; else why not.
    pub verdict: Result<(), String>,
}

/// One `kv-server` process in its namespace.
struct NodeProcess {
    id: u64,
    namespace: String,
    args: Vec<String>,
    clock_file: PathBuf,
    disk: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    clock: ClockSetting,
}

impl NodeProcess {
    async fn start(&mut self, binary: &Path) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting node {}: {e}", self.id))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        let read = stdout.read_line(&mut line);
        match tokio::time::timeout(Duration::from_secs(20), read).await {
            // kv-server prints `ready`, bt-tracker `node N ready: ...`.
            Ok(Ok(_)) if line.contains("ready") => {
                self.child = Some(child);
                self.paused = false;
                Ok(())
            }
            _ => {
                let _ = child.start_kill();
                Err(format!(
                    "node {} did not start (printed {line:?}); its log is {}",
                    self.id,
                    self.log.display()
                ))
            }
        }
    }

    fn pid(&self) -> Option<String> {
        self.child.as_ref()?.id().map(|p| p.to_string())
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.paused = false;
    }

    fn signal(&mut self, signal: &str) -> Result<(), String> {
        match self.pid() {
            Some(pid) => {
                run("kill", &[signal, &pid])?;
                self.paused = signal == "-STOP";
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Whether the process has exited on its own (a full disk stops a node).
    fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    fn set_clock(&mut self, setting: ClockSetting) -> Result<(), String> {
        self.clock = setting;
        setting
            .write(&self.clock_file)
            .map_err(|e| format!("{}: {e}", self.clock_file.display()))
    }
}

/// The cluster and the nemesis acting on it.
/// How the nemesis asks a node whether it leads.
enum Probe {
    Kv(Box<KvClient>),
    /// One client per node, bound to it.
    Tracker(BTreeMap<u64, TrackerClient>),
}

struct Nemesis {
    config: RunConfig,
    topology: Topology,
    nodes: BTreeMap<u64, NodeProcess>,
    status: Probe,
    log: Vec<String>,
    applied: usize,
    start: Instant,
}

impl Nemesis {
    fn say(&mut self, what: String) {
        let line = format!("{:>6.2} s  {what}", self.start.elapsed().as_secs_f64());
        println!("{line}");
        self.log.push(line);
    }

    /// The node that says it leads, among those that answer within 300 ms.
    async fn leader(&self) -> Option<u64> {
        let asks = self
            .nodes
            .values()
            .filter(|n| n.child.is_some() && !n.paused)
            .map(|n| {
                let addr = SocketAddr::new(self.topology.node_ip(n.id), CLIENT_PORT);
                let id = n.id;
                async move {
                    let ask = async {
                        match &self.status {
                            Probe::Kv(client) => matches!(
                                client.status(addr).await,
                                Ok(KvResponse::Status {
                                    is_leader: true,
                                    ..
                                })
                            ),
                            Probe::Tracker(clients) => match clients.get(&id) {
                                Some(client) => client.status().await.is_ok_and(|s| s.is_leader),
                                None => false,
                            },
                        }
                    };
                    let leads = tokio::time::timeout(Duration::from_millis(300), ask).await;
                    leads.unwrap_or(false).then_some(id)
                }
            });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .next()
    }

    /// The node `target` names, and how it was chosen (for the log).
    async fn resolve(&self, target: Target, rng: &mut ChaCha8Rng) -> (u64, &'static str) {
        match target {
            Target::Node(id) => (id, ""),
            Target::Leader => match self.leader().await {
                Some(id) => (id, " (the leader)"),
                None => (
                    rng.random_range(1..=self.config.nodes),
                    " (no leader known)",
                ),
            },
        }
    }

    fn isolate(&self, victim: u64) -> Result<(), String> {
        let all: Vec<u64> = (1..=self.config.nodes).collect();
        self.topology
            .set_cuts(&faults::cuts(PartitionKind::IsolateLeader, &all, victim))
    }

    /// Applies `fault`; returns what to log.
    async fn apply(&mut self, fault: &Fault, rng: &mut ChaCha8Rng) -> Result<String, String> {
        Ok(match fault {
            Fault::Partition {
                kind,
                shuffle,
                victim,
            } => {
                let (victim, who) = self.resolve(*victim, rng).await;
                let cuts = faults::cuts(*kind, shuffle, victim);
                self.topology.set_cuts(&cuts)?;
                let described: Vec<String> = cuts
                    .iter()
                    .map(|(node, from)| format!("{node} hears nothing from {from:?}"))
                    .collect();
                let victim = match kind {
                    PartitionKind::IsolateLeader
                    | PartitionKind::DeafVictim
                    | PartitionKind::MuteVictim => format!(" of node {victim}{who}"),
                    _ => String::new(),
                };
                format!("partition {kind:?}{victim}: {}", described.join("; "))
            }
            Fault::Kill(target) => {
                let (id, who) = self.resolve(*target, rng).await;
                self.node(id).kill().await;
                format!("kill -9 node {id}{who}")
            }
            Fault::Pause(target) => {
                let (id, who) = self.resolve(*target, rng).await;
                self.node(id).signal("-STOP")?;
                format!("SIGSTOP node {id}{who}")
            }
            Fault::Skew(target, rate) => {
                let (id, who) = self.resolve(*target, rng).await;
                let node = self.node(id);
                let setting = ClockSetting {
                    rate: *rate,
                    ..node.clock
                };
                node.set_clock(setting)?;
                self.isolate(id)?;
                format!("clock of node {id}{who} at rate {rate:.3}, node cut off")
            }
            Fault::Jump(target, ms) => {
                let (id, who) = self.resolve(*target, rng).await;
                let node = self.node(id);
                let setting = ClockSetting {
                    jump_ms: node.clock.jump_ms + ms,
                    ..node.clock
                };
                node.set_clock(setting)?;
                self.isolate(id)?;
                format!("time of day of node {id}{who} set {ms:+} ms, node cut off")
            }
            Fault::FillDisk(target) => {
                let (id, who) = self.resolve(*target, rng).await;
                let filler = self.node(id).disk.join("filler");
                let written = tokio::task::spawn_blocking(move || fill(&filler))
                    .await
                    .map_err(|e| e.to_string())?;
                format!(
                    "disk of node {id}{who} filled ({} MiB written)",
                    written >> 20
                )
            }
        })
    }

    fn node(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.get_mut(&id).expect("node ids are 1..=nodes")
    }

    /// Undoes every fault: no cuts, no pauses, real-rate clocks, free disks, and every
    /// node running. Steps of the time of day stay, as a set clock would.
    async fn heal(&mut self) -> Result<(), String> {
        self.topology.set_cuts(&BTreeMap::new())?;
        let binary = self.config.server.clone();
        let mut restarted = Vec::new();
        for node in self.nodes.values_mut() {
            if node.paused {
                node.signal("-CONT")?;
            }
            if node.clock.rate != 1.0 {
                let setting = ClockSetting {
                    rate: 1.0,
                    ..node.clock
                };
                node.set_clock(setting)?;
            }
            let filler = node.disk.join("filler");
            if filler.exists() {
                std::fs::remove_file(&filler).map_err(|e| format!("{}: {e}", filler.display()))?;
            }
            if node.exited() {
                node.kill().await;
                node.start(&binary).await?;
                restarted.push(node.id);
            }
        }
        let line = match restarted.is_empty() {
            true => "healed".to_string(),
            false => format!("healed; restarted nodes {restarted:?}"),
        };
        self.say(line);
        Ok(())
    }
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let Ok(mut file) = std::fs::File::create(path) else {
        return 0;
    };
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while let Ok(n) = file.write(&chunk) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = file.sync_all();
    written
}

/// Runs the cluster, the clients and the schedule; returns what was found. Errors are
/// failures of the harness (a node that will not start), not of the system under test.
pub async fn run_inside(config: RunConfig) -> Result<Outcome, String> {
    let topology = Topology::attach(&config.tag, config.nodes);
    let certs = config.dir.join("certs");
    let peers: Vec<String> = (1..=config.nodes)
        .map(|id| format!("{id}={}", SocketAddr::new(topology.node_ip(id), PAXOS_PORT)))
        .collect();
    let ips: BTreeMap<u64, std::net::IpAddr> = (1..=config.nodes)
        .map(|id| (id, topology.node_ip(id)))
        .collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=config.nodes {
        let disk = config.dir.join(format!("disk{id}"));
        let clock_file = config.dir.join(format!("clock{id}"));
        ClockSetting::default()
            .write(&clock_file)
            .map_err(|e| format!("{}: {e}", clock_file.display()))?;
        let kv_args = vec![
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--certs".into(),
            certs.display().to_string(),
            "--data".into(),
            disk.join("data").display().to_string(),
            "--peers".into(),
            peers.join(","),
            "--listen".into(),
            SocketAddr::new(topology.node_ip(id), CLIENT_PORT).to_string(),
            "--snapshot-log-len".into(),
            SNAPSHOT_LOG_LEN.to_string(),
            "--clock-control".into(),
            clock_file.display().to_string(),
        ];
        let mut args: Vec<String> = match config.system {
            System::Kv => kv_args,
            System::Tracker => tracker::node_args(id, &ips, &certs, &disk, &clock_file),
        };
        if let Some(bug) = &config.planted_bug {
            args.extend(["--planted-bug".into(), bug.clone()]);
        }
        nodes.insert(
            id,
            NodeProcess {
                id,
                namespace: topology.node_namespace(id),
                args,
                clock_file,
                disk,
                log: config.dir.join(format!("node{id}.log")),
                child: None,
                paused: false,
                clock: ClockSetting::default(),
            },
        );
    }
    for node in nodes.values_mut() {
        node.start(&config.server).await?;
    }
    let ca = crate::kv::ca_fingerprint(&certs.join("ca.crt")).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let (load, status) = match config.system {
        System::Kv => {
            let servers: Vec<SocketAddr> = ips
                .values()
                .map(|&ip| SocketAddr::new(ip, CLIENT_PORT))
                .collect();
            let workload = Workload {
                servers: servers.clone(),
                ca,
                clients: config.clients,
                keys: config.keys,
                seed: config.seed,
                start,
            };
            let status = KvClient::with_endpoint(
                super::workload::endpoint("nemesis-status").map_err(|e| e.to_string())?,
                servers,
                ca,
            );
            (
                Load::Kv(workload, Arc::default()),
                Probe::Kv(Box::new(status)),
            )
        }
        System::Tracker => {
            let peer_addrs: Vec<SocketAddr> = ips
                .values()
                .map(|&ip| SocketAddr::new(ip, tracker::PEER_PORT))
                .collect();
            let cluster: Vec<SocketAddr> = ips
                .values()
                .map(|&ip| SocketAddr::new(ip, tracker::CLUSTER_PORT))
                .collect();
            let info_hash =
                tracker::publish(&config.server, &certs, &cluster, &peer_addrs, ca).await?;
            let mut probes = BTreeMap::new();
            for (&id, &ip) in &ips {
                let endpoint =
                    super::workload::endpoint("nemesis-status").map_err(|e| e.to_string())?;
                let config = ClientConfig {
                    attempt_timeout: Duration::from_millis(300),
                    deadline: Duration::from_millis(300),
                    ..ClientConfig::default()
                };
                let node = vec![SocketAddr::new(ip, tracker::PEER_PORT)];
                probes.insert(id, TrackerClient::with_config(endpoint, node, ca, config));
            }
            let workload = TrackerWorkload {
                peers: peer_addrs,
                ca,
                info_hash,
                seed: config.seed,
                start,
            };
            (
                Load::Tracker(workload, Arc::default()),
                Probe::Tracker(probes),
            )
        }
    };
    let mut nemesis = Nemesis {
        config: config.clone(),
        topology,
        nodes,
        status,
        log: Vec::new(),
        applied: 0,
        start,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let clients = {
        let (load, stop) = (load.clone(), stop.clone());
        tokio::spawn(async move {
            match load {
                Load::Kv(workload, history) => workload.run(history, stop).await.map(|()| None),
                Load::Tracker(workload, history) => workload.run(history, stop).await.map(Some),
            }
        })
    };
    let result = schedule(&mut nemesis, &config).await;
    stop.store(true, Ordering::Relaxed);
    // Heal whatever the schedule left, even after a harness error.
    let healed = nemesis.heal().await;
    let peers = clients.await.map_err(|e| e.to_string())??;
    result?;
    healed?;
    let (counts, verdict) = match (&load, peers) {
        (Load::Kv(workload, history), _) => {
            let recovered = workload.final_reads(history, Duration::from_secs(20)).await;
            let verdict = recovered
                .and_then(|()| linearizability::check_kv_linearizable(&history.operations()));
            (history.counts(), verdict)
        }
        (Load::Tracker(workload, history), Some(peers)) => {
            let recovered = workload.final_reads(history, &peers).await;
            (history.counts(), recovered.and_then(|()| history.check()))
        }
        (Load::Tracker(..), None) => return Err("the tracker's clients named no peers".into()),
    };
    for node in nemesis.nodes.values_mut() {
        node.kill().await;
    }
    Ok(Outcome {
        log: nemesis.log,
        applied: nemesis.applied,
        counts,
        verdict,
    })
}

/// The clients of a run and their history.
#[derive(Clone)]
enum Load {
    Kv(Workload, Arc<History>),
    Tracker(TrackerWorkload, Arc<SetHistory>),
}

/// Draws and applies faults until the run's time is up.
async fn schedule(nemesis: &mut Nemesis, config: &RunConfig) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // Let the clients reach every node before the first fault.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let end = nemesis.start + config.duration;
    while Instant::now() + Duration::from_secs(1) < end {
        let (fault, hold) = faults::draw(&mut rng, &config.families, config.nodes, config.clock);
        let line = nemesis.apply(&fault, &mut rng).await?;
        nemesis.applied += 1;
        nemesis.say(format!("{line} for {:.1} s", hold.as_secs_f64()));
        tokio::time::sleep(hold.min(end.saturating_duration_since(Instant::now()))).await;
        nemesis.heal().await?;
        let rest = Duration::from_millis(rng.random_range(500..=2_000));
        tokio::time::sleep(rest.min(end.saturating_duration_since(Instant::now()))).await;
    }
    Ok(())
}
