//! The tracker cluster under test: real `bt-tracker run` processes with their own
//! certificates, data directories (fsync on, default settings) and HTTP ports; killed with
//! SIGKILL and restarted like any crashed node; and what the operating system says they
//! cost (CPU seconds, peak resident memory).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use certs::Fingerprint;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One node's addresses.
#[derive(Clone, Copy, Debug)]
pub struct NodeAddrs {
    /// Consensus and operators.
    pub cluster: SocketAddr,
    /// Peers.
    pub peer: SocketAddr,
    /// `/health`, `/metrics` and the web site.
    pub http: SocketAddr,
}

/// What the operating system reports of one node, summed over its incarnations.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeCost {
    /// CPU seconds (user + system) of the incarnations that ended.
    pub cpu_done: f64,
    /// CPU seconds of the running incarnation, as last read.
    pub cpu_now: f64,
    /// Highest peak resident set of any incarnation, bytes.
    pub peak_rss: u64,
}

impl NodeCost {
    /// CPU seconds in all.
    pub fn cpu(&self) -> f64 {
        self.cpu_done + self.cpu_now
    }
}

/// A cluster of `bt-tracker run` processes.
pub struct Cluster {
    binary: PathBuf,
    dir: PathBuf,
    /// Addresses by node id.
    pub nodes: BTreeMap<u64, NodeAddrs>,
    children: BTreeMap<u64, Child>,
    /// The CA fingerprint.
    pub ca: Fingerprint,
    peer_ttl_secs: u64,
    /// More flags for `bt-tracker run`.
    node_args: Vec<String>,
    /// Costs by node id.
    pub costs: BTreeMap<u64, NodeCost>,
}

impl Cluster {
    /// Makes certificates with the CLI and starts `n` nodes in `dir`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        n: u64,
        peer_ttl_secs: u64,
        node_args: Vec<String>,
    ) -> anyhow::Result<Self> {
        let certs = dir.join("certs");
        let out = run_cli(binary, &["certs", "ca", "--dir", path_str(&certs)?])?;
        let ca: Fingerprint = out
            .lines()
            .find_map(|l| l.strip_prefix("CA fingerprint: "))
            .context("`bt-tracker certs ca` printed no CA fingerprint")?
            .parse()
            .map_err(|e| anyhow::anyhow!("the CA fingerprint: {e}"))?;
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            run_cli(
                binary,
                &[
                    "certs",
                    "node",
                    &format!("node{id}"),
                    "--dir",
                    path_str(&certs)?,
                ],
            )?;
            nodes.insert(
                id,
                NodeAddrs {
                    cluster: free_port()?,
                    peer: free_port()?,
                    http: free_port()?,
                },
            );
        }
        let mut cluster = Cluster {
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            nodes,
            children: BTreeMap::new(),
            ca,
            peer_ttl_secs,
            node_args,
            costs: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// The certificate directory (the operator's certificate is in it).
    pub fn certs(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// Peer addresses in id order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|a| a.peer).collect()
    }

    /// Cluster addresses in id order.
    pub fn cluster_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|a| a.cluster).collect()
    }

    /// Starts node `id` on its data directory and waits for its `ready` line.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--data".into(),
            self.dir.join(format!("data{id}")).display().to_string(),
            "--certs".into(),
            self.certs().display().to_string(),
            "--http".into(),
            self.nodes[&id].http.to_string(),
            "--peer-ttl-secs".into(),
            self.peer_ttl_secs.to_string(),
        ];
        for (i, a) in &self.nodes {
            args.push("--member".into());
            args.push(format!("{i}=node{i},{},{}", a.cluster, a.peer));
        }
        args.extend(self.node_args.iter().cloned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{id}.log")))?;
        let mut child = Command::new(&self.binary)
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.contains("ready") {
            let _ = child.kill();
            bail!(
                "tracker node {id} did not start (it printed {line:?}); see {}",
                self.dir.join(format!("node{id}.log")).display()
            );
        }
        self.children.insert(id, child);
        Ok(())
    }

    /// SIGKILLs node `id` and reaps it, keeping what it cost.
    pub fn kill(&mut self, id: u64) {
        self.sample_costs();
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
            let cost = self.costs.entry(id).or_default();
            cost.cpu_done += cost.cpu_now;
            cost.cpu_now = 0.0;
        }
    }

    /// Reads every running node's CPU time and peak memory from `/proc`.
    pub fn sample_costs(&mut self) {
        for (id, child) in &self.children {
            if let Some((cpu, peak)) = proc_cost(child.id()) {
                let cost = self.costs.entry(*id).or_default();
                cost.cpu_now = cpu;
                cost.peak_rss = cost.peak_rss.max(peak);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process's CPU seconds (user + system) and peak resident set in bytes.
pub fn proc_cost(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here; in clock
    // ticks of 1/100 s (USER_HZ, fixed at 100 in Linux's ABI).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some((ticks as f64 / 100.0, peak_kib * 1024))
}

/// Runs `bt-tracker ARGS` to completion; returns its stdout.
fn run_cli(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "bt-tracker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// A loopback port out of reach of the port-0 binds of the crowd's thousands of peers.
fn free_port() -> std::io::Result<SocketAddr> {
    transport::ports::unused_loopback_addr()
}

/// A node's `/health` answer.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Health {
    /// Whether it leads.
    pub is_leader: bool,
    /// Highest slot known chosen.
    pub decided: u64,
    /// Highest slot applied.
    pub applied: u64,
}

/// Reads a node's `/health` (None if it is down or has no leader).
pub async fn health(http: SocketAddr) -> Option<Health> {
    let (status, body) = http_get(http, "/health").await.ok()?;
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// Reads a node's `/metrics` gauges (`bt_tracker_NAME VALUE` lines) by name.
pub async fn metrics(http: SocketAddr) -> Option<BTreeMap<String, f64>> {
    let (status, body) = http_get(http, "/metrics").await.ok()?;
    if status != 200 {
        return None;
    }
    Some(
        body.lines()
            .filter_map(|l| l.strip_prefix("bt_tracker_"))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// A small HTTP/1.1 GET with a 2 s limit: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
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
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .map_err(|_| std::io::Error::other("no HTTP answer within 2 s"))?
}
