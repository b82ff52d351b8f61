//! Real `kv-server` processes for the multi-process tests: start, kill -9, restart, and
//! a UDP relay per direction between nodes that can cut the network.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

/// A UDP relay from one node to another: `listen` receives datagrams from the source node
/// and forwards them to `target`; answers come back through the same relay. While cut,
/// every datagram is dropped in both directions, which to QUIC looks like a broken link.
#[derive(Debug, Clone)]
pub struct UdpRelay {
    /// The address the source node dials instead of the target.
    pub listen: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl UdpRelay {
    /// Starts a relay to `target` on a free loopback port.
    pub async fn start(target: SocketAddr) -> std::io::Result<UdpRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(target).await?;
        let listen = front.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let source: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        {
            let (front, back, cut, source) =
                (front.clone(), back.clone(), cut.clone(), source.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    // Errors are ICMP reports about earlier datagrams (a node is down): the
                    // relay keeps going, as a network would.
                    let Ok((n, from)) = front.recv_from(&mut buf).await else {
                        continue;
                    };
                    *source.lock().unwrap_or_else(|p| p.into_inner()) = Some(from);
                    if !cut.load(Ordering::Relaxed) {
                        let _ = back.send(&buf[..n]).await;
                    }
                }
            });
        }
        {
            let cut = cut.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    // A connected UDP socket reports "connection refused" while the target
                    // node is down; that must not end the relay.
                    let Ok(n) = back.recv(&mut buf).await else {
                        continue;
                    };
                    let to = *source.lock().unwrap_or_else(|p| p.into_inner());
                    if let (Some(to), false) = (to, cut.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&buf[..n], to).await;
                    }
                }
            });
        }
        Ok(UdpRelay { listen, cut })
    }

    /// Drops all traffic (`true`) or lets it through again (`false`).
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

/// One `kv-server` process.
#[derive(Debug)]
pub struct ServerProcess {
    /// Node id.
    pub id: u64,
    /// Client address.
    pub client_addr: SocketAddr,
    data: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl ServerProcess {
    /// Node `id`, not started: `kv-server run` with its data directory in `dir`, the
    /// certificates in `certs_dir`, the `--peers` entries `peers` and a fresh client port.
    fn new(id: u64, dir: &Path, certs_dir: &Path, peers: &[String]) -> std::io::Result<Self> {
        let client_addr = free_port()?;
        let data = dir.join(format!("data{id}"));
        let args = vec![
            "run".to_string(),
            "--id".into(),
            id.to_string(),
            "--certs".into(),
            certs_dir.display().to_string(),
            "--data".into(),
            data.display().to_string(),
            "--peers".into(),
            peers.join(","),
            "--listen".into(),
            client_addr.to_string(),
        ];
        Ok(ServerProcess {
            id,
            client_addr,
            data,
            args,
            child: None,
        })
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Deletes the data directory (the process must be stopped).
    pub fn wipe_data(&self) -> std::io::Result<()> {
        assert!(self.child.is_none(), "wipe the data of a stopped node only");
        std::fs::remove_dir_all(&self.data)
    }

    /// Starts the process and waits until it prints `ready`.
    pub fn start(&mut self, binary: &Path) -> std::io::Result<()> {
        let mut child = Command::new(binary)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            return Err(std::io::Error::other(format!(
                "kv-server {} did not start: {line:?}",
                self.id
            )));
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port for a server to bind right after, out of reach of port-0 binds.
fn free_port() -> std::io::Result<SocketAddr> {
    transport::ports::unused_loopback_addr()
}

/// A 3-node cluster of `kv-server` processes, every node-to-node direction through a
/// [`UdpRelay`].
#[derive(Debug)]
pub struct Cluster {
    /// The servers, by node id - 1.
    pub servers: Vec<ServerProcess>,
    /// The relay carrying node `from`'s traffic to node `to`, as `relays[(from, to)]`.
    pub relays: BTreeMap<(u64, u64), UdpRelay>,
    /// The CA certificate file.
    pub ca: PathBuf,
    /// The directory of the CA, the nodes' and the operator's certificates.
    pub certs_dir: PathBuf,
    /// Each node's own paxos address (the relays forward to these), by node id - 1.
    pub paxos: Vec<SocketAddr>,
    binary: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Creates certificates and starts three nodes.
    pub async fn start(binary: &Path, snapshot_log_len: u64) -> std::io::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let certs_dir = dir.path().join("certs");
        let status = Command::new(binary)
            .args(["certs", "--dir"])
            .arg(&certs_dir)
            .args(["--nodes", "3"])
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other("kv-server certs failed"));
        }
        let paxos: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        let mut relays = BTreeMap::new();
        for from in 1..=3u64 {
            for to in (1..=3u64).filter(|t| *t != from) {
                relays.insert((from, to), UdpRelay::start(paxos[to as usize - 1]).await?);
            }
        }
        let mut servers = Vec::new();
        for id in 1..=3u64 {
            let peers: Vec<String> = (1..=3u64)
                .map(|j| {
                    let addr = if j == id {
                        paxos[id as usize - 1]
                    } else {
                        relays[&(id, j)].listen
                    };
                    format!("{j}={addr}")
                })
                .collect();
            let mut server = ServerProcess::new(id, dir.path(), &certs_dir, &peers)?;
            server
                .args
                .extend(["--snapshot-log-len".into(), snapshot_log_len.to_string()]);
            server.start(binary)?;
            servers.push(server);
        }
        Ok(Cluster {
            servers,
            relays,
            ca: certs_dir.join("ca.crt"),
            certs_dir,
            paxos,
            binary: binary.to_owned(),
            _dir: dir,
        })
    }

    /// Restarts node `id` (1-based) on its data directory.
    pub fn restart(&mut self, id: u64) -> std::io::Result<()> {
        let binary = self.binary.clone();
        self.servers[id as usize - 1].start(&binary)
    }

    /// Starts a new, empty node `id` (the next id after the last node) with `run --join`,
    /// its certificate issued by the cluster CA, talking to the others directly (not
    /// through relays). It catches up once an operator adds it (`member add`).
    pub fn join_node(&mut self) -> std::io::Result<u64> {
        let id = self.servers.len() as u64 + 1;
        let status = Command::new(&self.binary)
            .args(["issue", "--dir"])
            .arg(&self.certs_dir)
            .args(["--id", &id.to_string()])
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other("kv-server issue failed"));
        }
        let own = free_port()?;
        self.paxos.push(own);
        let peers: Vec<String> = self
            .paxos
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{}={addr}", i + 1))
            .collect();
        let mut server = ServerProcess::new(id, self._dir.path(), &self.certs_dir, &peers)?;
        server.args.push("--join".into());
        server.start(&self.binary)?;
        self.servers.push(server);
        Ok(id)
    }

    /// Runs an operator command (`member ...`, `leader ...`) of `kv-server` against the
    /// running nodes' paxos addresses; returns its standard output, or an error with its
    /// standard error.
    pub fn operator(&self, args: &[&str]) -> std::io::Result<String> {
        let servers: Vec<String> = self
            .servers
            .iter()
            .filter(|s| s.is_running())
            .map(|s| self.paxos[s.id as usize - 1].to_string())
            .collect();
        let out = Command::new(&self.binary)
            .args(args)
            .arg("--certs")
            .arg(&self.certs_dir)
            .args(["--servers", &servers.join(",")])
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "kv-server {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Client addresses of all nodes, by id.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.client_addr).collect()
    }

    /// Cuts (or heals) every link to and from node `id`.
    pub fn isolate(&self, id: u64, cut: bool) {
        for ((from, to), relay) in &self.relays {
            if *from == id || *to == id {
                relay.set_cut(cut);
            }
        }
    }

    /// How long to wait for anything in these tests before failing.
    pub const PATIENCE: Duration = Duration::from_secs(30);
}
