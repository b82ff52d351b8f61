//! Real processes for fault tests, so that a kill is a real `kill -9`: the test binary runs
//! itself again with an environment variable that turns one of its ignored tests into a
//! peer or a tracker node. A child prints what it does on stdout, one line per event, and
//! exits when its standard input closes (the test that started it is gone).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use certs::Fingerprint;
use peer::runtime::{AddOptions, Peer, PeerConfig};
use tokio::sync::mpsc;
use tracker::admin::{self, AdminClient};
use tracker::api::{AdminRequest, AdminResponse};
use tracker::node::{CertPaths, MemberConfig, NodeConfig};
use tracker::torrent::Torrent;

/// The environment variable that makes the test binary a peer process.
pub const PEER_ENV: &str = "BT_FAULTS_PEER";
/// The environment variable that makes the test binary a tracker node process.
pub const TRACKER_ENV: &str = "BT_FAULTS_TRACKER_NODE";
/// Every line a child prints for the parent starts with this.
const PREFIX: &str = "bt-fault ";

/// A child process of the test binary.
pub struct ChildProc {
    child: Child,
    /// Closing it tells the child to exit.
    _stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl ChildProc {
    /// Runs the ignored test `test` of this binary with `env` set.
    pub fn spawn(test: &str, env: &[(&str, String)]) -> ChildProc {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn a child of the test binary");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness's "test NAME ... " may precede the first line.
                if let Some(at) = line.find(PREFIX)
                    && tx.send(line[at + PREFIX.len()..].to_string()).is_err()
                {
                    break;
                }
            }
        });
        ChildProc {
            child,
            _stdin: stdin,
            lines,
        }
    }

    /// Waits for a line for which `check` returns Some; panics if the child ends first or
    /// `limit` passes.
    pub async fn line_where<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let wait = async {
            loop {
                match self.lines.recv().await {
                    Some(line) => {
                        if let Some(found) = check(&line) {
                            return found;
                        }
                    }
                    None => panic!("the child ended while waiting for: {what}"),
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .unwrap_or_else(|_| panic!("the child did not report within {limit:?}: {what}"))
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Prints a line for the parent; exits if the parent is gone.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{PREFIX}{line}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Exits once standard input closes: the parent died or dropped its handle.
fn exit_with_parent() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Peer processes.

/// What a peer process does.
pub struct PeerSpec {
    /// The torrent file.
    pub torrent: PathBuf,
    /// Where its data goes (or is, for a seeder).
    pub data: PathBuf,
    /// Its state directory (identity and resume file).
    pub state: PathBuf,
    /// The data is already complete.
    pub existing: bool,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The address it tells the tracker, if not the one it listens on.
    pub advertise: Option<SocketAddr>,
}

impl PeerSpec {
    fn encode(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.torrent.display(),
            self.data.display(),
            self.state.display(),
            self.existing,
            self.listen,
            self.advertise.map(|a| a.to_string()).unwrap_or_default()
        )
    }

    fn decode(text: &str) -> PeerSpec {
        let lines: Vec<&str> = text.lines().collect();
        PeerSpec {
            torrent: lines[0].into(),
            data: lines[1].into(),
            state: lines[2].into(),
            existing: lines[3] == "true",
            listen: lines[4].parse().unwrap(),
            advertise: lines.get(5).and_then(|a| a.parse().ok()),
        }
    }
}

/// A peer's progress as its process reported it.
#[derive(Clone, Debug)]
pub struct PeerLine {
    /// Pieces verified.
    pub have: u32,
    /// Pieces in all.
    pub total: u32,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// One character per piece: `#` held, `.` missing.
    pub map: String,
}

impl PeerLine {
    fn parse(line: &str) -> Option<PeerLine> {
        let mut words = line.strip_prefix("status ")?.split(' ');
        Some(PeerLine {
            have: words.next()?.parse().ok()?,
            total: words.next()?.parse().ok()?,
            downloaded: words.next()?.parse().ok()?,
            uploaded: words.next()?.parse().ok()?,
            map: words.next().unwrap_or("").to_string(),
        })
    }

    /// The pieces it held.
    pub fn held(&self) -> Vec<u32> {
        self.map
            .chars()
            .enumerate()
            .filter(|&(_, c)| c == '#')
            .map(|(i, _)| i as u32)
            .collect()
    }
}

/// A peer in a process of its own.
pub struct PeerProc {
    /// The process.
    pub proc: ChildProc,
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Its address.
    pub addr: SocketAddr,
}

impl PeerProc {
    /// Starts a peer process (the ignored test `test` must call [`peer_process_main`]) and
    /// waits until it has joined the swarm.
    pub async fn start(test: &str, spec: &PeerSpec) -> PeerProc {
        let mut proc = ChildProc::spawn(test, &[(PEER_ENV, spec.encode())]);
        let (fingerprint, addr) = proc
            .line_where(
                Duration::from_secs(20),
                "the peer process is ready",
                |line| {
                    let mut words = line.strip_prefix("ready ")?.split(' ');
                    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
                },
            )
            .await;
        PeerProc {
            proc,
            fingerprint,
            addr,
        }
    }

    /// Waits for a progress report that satisfies `check`.
    pub async fn progress_where(
        &mut self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut(&PeerLine) -> bool,
    ) -> PeerLine {
        self.proc
            .line_where(limit, what, |line| {
                PeerLine::parse(line).filter(|status| check(status))
            })
            .await
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}

/// The body of a peer process: does nothing unless [`PEER_ENV`] is set.
pub fn peer_process_main() {
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return;
    };
    let spec = PeerSpec::decode(&spec);
    exit_with_parent();
    runtime().block_on(async move {
        let torrent = Torrent::parse(&std::fs::read(&spec.torrent).unwrap()).unwrap();
        let mut config = PeerConfig::new(spec.listen, spec.state.clone());
        config.advertise = spec.advertise;
        super::quick(&mut config);
        let peer = Peer::start(config).await.expect("peer starts");
        let client = super::tracker_client(&peer, &torrent);
        let handle = peer
            .add(
                torrent,
                &spec.data,
                client,
                AddOptions {
                    existing: spec.existing,
                    seed: true,
                },
                |_| {},
            )
            .await
            .expect("the peer process adds its torrent");
        say(&format!("ready {} {}", peer.fingerprint(), peer.addr()));
        let mut watch = handle.watch();
        loop {
            let line = {
                let s = watch.borrow_and_update();
                format!(
                    "status {} {} {} {} {}",
                    s.pieces_have, s.pieces_total, s.downloaded, s.uploaded, s.piece_map
                )
            };
            say(&line);
            if watch.changed().await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    });
}

// ---------------------------------------------------------------------------------------
// Tracker node processes.

/// A tracker cluster of node processes, each running the node runtime exactly as
/// `bt-tracker run` does, with certificates made by the operator functions behind
/// `bt-tracker certs` and a user with an API token made through the operator protocol.
pub struct ProcessTrackers {
    dir: PathBuf,
    members: BTreeMap<u64, MemberConfig>,
    children: BTreeMap<u64, ChildProc>,
    ca: Fingerprint,
    token: String,
    peer_ttl_ms: u64,
}

impl ProcessTrackers {
    /// Starts `n` node processes (the ignored test `test` must call
    /// [`tracker_node_process_main`]) with state below `dir`, and makes a user with a token.
    pub async fn start(dir: &Path, test: &str, n: u64) -> ProcessTrackers {
        let default_ttl = tracker::state::StateConfig::default().peer_ttl_ms;
        Self::start_with_ttl(dir, test, n, default_ttl).await
    }

    /// [`ProcessTrackers::start`] with peers expiring after `peer_ttl_ms`.
    pub async fn start_with_ttl(
        dir: &Path,
        test: &str,
        n: u64,
        peer_ttl_ms: u64,
    ) -> ProcessTrackers {
        let certs = dir.join("certs");
        let ca = admin::create_ca(&certs).unwrap();
        let mut members = BTreeMap::new();
        for id in 1..=n {
            let name = format!("node{id}");
            admin::create_node_cert(&certs, &name).unwrap();
            members.insert(
                id,
                MemberConfig {
                    name,
                    cluster_addr: free_udp(),
                    peer_addr: free_udp(),
                },
            );
        }
        let mut trackers = ProcessTrackers {
            dir: dir.to_path_buf(),
            members,
            children: BTreeMap::new(),
            ca,
            token: admin::new_token(),
            peer_ttl_ms,
        };
        for id in 1..=n {
            trackers.spawn(test, id).await;
        }
        trackers.create_user().await;
        trackers
    }

    async fn spawn(&mut self, test: &str, id: u64) {
        let name = &self.members[&id].name;
        let mut config = NodeConfig::new(
            id,
            self.members.clone(),
            self.dir.join(format!("data-{name}")),
            CertPaths::in_dir(&self.dir.join("certs"), name),
        );
        config.peer_ttl_ms = self.peer_ttl_ms;
        let path = self.dir.join(format!("{name}.config"));
        std::fs::write(&path, rmp_serde::to_vec_named(&config).unwrap()).unwrap();
        let mut child = ChildProc::spawn(test, &[(TRACKER_ENV, path.display().to_string())]);
        child
            .line_where(Duration::from_secs(20), "the tracker node is ready", |l| {
                l.starts_with("ready").then_some(())
            })
            .await;
        self.children.insert(id, child);
    }

    async fn create_user(&self) {
        let cluster: Vec<SocketAddr> = self.members.values().map(|m| m.cluster_addr).collect();
        let mut client = AdminClient::new(&self.dir.join("certs"), cluster).unwrap();
        let add = AdminRequest::AddUser {
            id: client.next_id(),
            name: "faults".into(),
            password: admin::new_token(),
            admin: false,
        };
        let token = AdminRequest::CreateToken {
            id: client.next_id(),
            user: "faults".into(),
            label: "fault tests".into(),
            token: self.token.clone(),
        };
        for request in [add, token] {
            match client.call(&request).await {
                Ok(AdminResponse::Done) => {}
                other => panic!("{request:?}: {other:?}"),
            }
        }
    }

    /// The peer-facing addresses, in id order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.members.values().map(|m| m.peer_addr).collect()
    }

    /// The cluster CA's fingerprint.
    pub fn ca(&self) -> Fingerprint {
        self.ca
    }

    /// The API token to publish with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `kill -9` of the node whose peer-facing address is `addr`; returns its id.
    pub fn kill_node_at(&mut self, addr: SocketAddr) -> u64 {
        let id = self
            .members
            .iter()
            .find(|(_, m)| m.peer_addr == addr)
            .map(|(&id, _)| id)
            .unwrap_or_else(|| panic!("no tracker node at {addr}"));
        if let Some(mut child) = self.children.remove(&id) {
            child.kill();
        }
        id
    }
}

/// A free loopback port for a node to bind later (UDP).
pub fn free_udp() -> SocketAddr {
    transport::ports::unused_loopback_addr().expect("a free loopback port")
}

/// The body of a tracker node process: does nothing unless [`TRACKER_ENV`] is set.
pub fn tracker_node_process_main() {
    let Ok(path) = std::env::var(TRACKER_ENV) else {
        return;
    };
    let config: NodeConfig = rmp_serde::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    exit_with_parent();
    runtime().block_on(async move {
        let node = tracker::node::start(config).await.expect("the node starts");
        say(&format!("ready {}", node.peer_addr()));
        std::future::pending::<()>().await;
    });
}
