//! Shared by the tracker's multi-process tests: `bt-tracker` processes, a UDP relay that
//! can lose a node's answers, and small helpers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certs::{Fingerprint, Identity};
use tokio::net::UdpSocket;
use tracker::client::{ClientConfig, TrackerClient};
use transport::{Backoff, Endpoint, EndpointConfig, InboundTrust};

/// The `bt-tracker` binary of this build.
pub fn bt_tracker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bt-tracker"))
}

/// Runs `bt-tracker ARGS` to completion; returns stdout, or panics with stderr.
pub fn run_cli(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = bt_tracker()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bt-tracker");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "bt-tracker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback port, free for UDP and TCP, for a node to bind later.
pub fn free_port() -> SocketAddr {
    transport::ports::unused_loopback_addr().expect("a free loopback port")
}

/// One node's addresses.
#[derive(Clone, Copy, Debug)]
pub struct NodeAddrs {
    /// Paxos and operators.
    pub cluster: SocketAddr,
    /// Peers.
    pub peer: SocketAddr,
    /// HTTP.
    pub http: SocketAddr,
}

/// A cluster of `bt-tracker run` processes.
pub struct ProcessCluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeAddrs>,
    pub children: BTreeMap<u64, Child>,
    pub ca: Fingerprint,
    pub peer_ttl_secs: u64,
}

impl ProcessCluster {
    /// Makes certificates with the CLI and starts `n` nodes.
    pub fn start(n: u64, peer_ttl_secs: u64) -> ProcessCluster {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let out = run_cli(&["certs", "ca", "--dir", certs.to_str().unwrap()], None);
        let ca: Fingerprint = out
            .lines()
            .find_map(|l| l.strip_prefix("CA fingerprint: "))
            .expect("the CLI prints the CA fingerprint")
            .parse()
            .unwrap();
        let mut cluster = ProcessCluster {
            dir,
            nodes: BTreeMap::new(),
            children: BTreeMap::new(),
            ca,
            peer_ttl_secs,
        };
        for id in 1..=n {
            cluster.new_node(id);
        }
        for id in 1..=n {
            cluster.spawn(id);
        }
        cluster
    }

    /// Makes the certificate of node `id` (name `node{id}`) with the CLI and picks its
    /// addresses.
    fn new_node(&mut self, id: u64) {
        let certs = self.certs();
        run_cli(
            &[
                "certs",
                "node",
                &format!("node{id}"),
                "--dir",
                certs.to_str().unwrap(),
            ],
            None,
        );
        self.nodes.insert(
            id,
            NodeAddrs {
                cluster: free_port(),
                peer: free_port(),
                http: free_port(),
            },
        );
    }

    /// Starts node `id` and waits for its "ready" line.
    pub fn spawn(&mut self, id: u64) {
        self.spawn_with(id, false)
    }

    /// Makes a certificate for a new node `id` (name `node{id}`) with the CLI, picks
    /// its addresses, and starts it with `run --join` and an empty data directory.
    pub fn spawn_joiner(&mut self, id: u64) {
        self.new_node(id);
        self.spawn_with(id, true);
    }

    /// The `--member` value of node `id`.
    pub fn member_arg(&self, id: u64) -> String {
        let a = &self.nodes[&id];
        format!("{id}=node{id},{},{}", a.cluster, a.peer)
    }

    /// `--certs DIR --tracker A --tracker B ...` for the operator commands.
    pub fn operator_args(&self) -> Vec<String> {
        let mut args = vec!["--certs".to_string(), self.certs().display().to_string()];
        for a in self.cluster_addrs() {
            args.push("--tracker".into());
            args.push(a.to_string());
        }
        args
    }

    fn spawn_with(&mut self, id: u64, join: bool) {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--data".into(),
            self.dir
                .path()
                .join(format!("data{id}"))
                .display()
                .to_string(),
            "--certs".into(),
            self.dir.path().join("certs").display().to_string(),
            "--http".into(),
            self.nodes[&id].http.to_string(),
            "--peer-ttl-secs".into(),
            self.peer_ttl_secs.to_string(),
        ];
        for i in self.nodes.keys() {
            args.push("--member".into());
            args.push(self.member_arg(*i));
        }
        if join {
            args.push("--join".into());
        }
        let mut child = bt_tracker()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(line.contains("ready"), "node {id} printed {line:?}");
        self.children.insert(id, child);
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The node that reports itself the leader in its metrics, waiting up to 5 s for one.
    pub async fn leader(&self) -> u64 {
        eventually(Duration::from_secs(5), || async {
            for (id, a) in &self.nodes {
                if metric(a.http, "is_leader").await == Some(1.0) {
                    return Some(*id);
                }
            }
            None
        })
        .await
        .expect("a leader")
    }

    /// Sends `signal` ("STOP", "CONT", ...) to node `id` with kill(1).
    pub fn signal(&self, id: u64, signal: &str) {
        let pid = self.children[&id].id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
        if signal == "STOP" {
            // kill(1) returns once the signal is sent; each thread stops at its next
            // scheduling point. Return only when every thread is stopped, so that the
            // node cannot answer or acknowledge anything sent after this.
            let tasks = format!("/proc/{pid}/task");
            let all_stopped = || {
                std::fs::read_dir(&tasks).unwrap().all(|task| {
                    let stat = std::fs::read_to_string(task.unwrap().path().join("stat"))
                        .unwrap_or_default();
                    // The state follows the parenthesised command name.
                    stat.rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('T'))
                })
            };
            while !all_stopped() {
                std::thread::yield_now();
            }
        }
    }

    /// The peer-facing addresses, in id order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|a| a.peer).collect()
    }

    /// The cluster addresses, in id order.
    pub fn cluster_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|a| a.cluster).collect()
    }

    /// The certificate directory.
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// Creates a user and an API token with the CLI; returns the token.
    pub fn create_token(&self, user: &str) -> String {
        let certs = self.certs();
        let mut args = vec![
            "user".to_string(),
            "add".into(),
            user.into(),
            "--certs".into(),
            certs.display().to_string(),
        ];
        for a in self.cluster_addrs() {
            args.push("--tracker".into());
            args.push(a.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&refs, Some("correct horse battery\n"));
        args[0] = "token".into();
        args[1] = "create".into();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let token = run_cli(&refs, None).trim().to_string();
        assert_eq!(token.len(), 52, "token {token:?}");
        token
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An endpoint with a fresh self-signed identity, as a peer has.
pub fn peer_endpoint() -> Endpoint {
    Endpoint::bind(
        Identity::generate_self_signed("peer").unwrap(),
        EndpointConfig::new("127.0.0.1:0".parse().unwrap(), InboundTrust::Open, &[]),
    )
    .unwrap()
}

/// A tracker client with short timeouts, so fail-over tests run quickly.
pub fn quick_client(endpoint: Endpoint, nodes: Vec<SocketAddr>, ca: Fingerprint) -> TrackerClient {
    TrackerClient::with_config(
        endpoint,
        nodes,
        ca,
        ClientConfig {
            attempt_timeout: Duration::from_millis(2500),
            deadline: Duration::from_secs(30),
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
            ..ClientConfig::default()
        },
    )
}

/// Writes a file of `len` pseudo-random bytes and makes a torrent of it for `trackers`.
pub fn make_torrent(
    dir: &Path,
    name: &str,
    len: usize,
    trackers: Vec<SocketAddr>,
    ca: Fingerprint,
) -> tracker::torrent::Torrent {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len)
        .map(|i| (i * 31 % 251) as u8 ^ name.len() as u8)
        .collect();
    std::fs::write(&path, data).unwrap();
    tracker::torrent::create::from_path(&path, 16 * 1024, trackers, ca, None).unwrap()
}

/// Reads a gauge from a node's `/metrics` (None if the node is down or lacks it).
pub async fn metric(http: SocketAddr, name: &str) -> Option<f64> {
    let body = http_get(http, "/metrics").await.ok()?.1;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("bt_tracker_{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// A tiny HTTP/1.1 GET over a TCP stream: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A UDP relay in front of a node that can lose the node's answers while still
/// delivering requests: to a client, the node received the request and then died.
pub struct LossyRelay {
    pub listen: SocketAddr,
    drop_replies: Arc<AtomicBool>,
}

impl LossyRelay {
    pub async fn start(target: SocketAddr) -> LossyRelay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(target).await.unwrap();
        let listen = front.local_addr().unwrap();
        let drop_replies = Arc::new(AtomicBool::new(false));
        let source: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        {
            let (front, back, source) = (front.clone(), back.clone(), source.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let Ok((n, from)) = front.recv_from(&mut buf).await else {
                        continue;
                    };
                    *source.lock().unwrap() = Some(from);
                    let _ = back.send(&buf[..n]).await;
                }
            });
        }
        {
            let drop_replies = drop_replies.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let Ok(n) = back.recv(&mut buf).await else {
                        continue;
                    };
                    let to = *source.lock().unwrap();
                    if let (Some(to), false) = (to, drop_replies.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&buf[..n], to).await;
                    }
                }
            });
        }
        LossyRelay {
            listen,
            drop_replies,
        }
    }

    pub fn drop_replies(&self, on: bool) {
        self.drop_replies.store(on, Ordering::Relaxed);
    }
}

/// Polls `check` every 20 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
