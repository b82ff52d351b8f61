//! A replicated key-value server: the paxos crate run for real, as one process per node,
//! talking QUIC with mutual TLS.
//!
//! ```sh
//! kv-server certs --dir certs --nodes 3
//! kv-server run --id 1 --certs certs --data data1 \
//!     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --listen 127.0.0.1:8001
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use certs::{ClusterCa, Identity};
use clap::{Parser, Subcommand};
use paxos::Config;
use paxos::runtime::{RuntimeConfig, start};
use tests::kv::{ALPN_KV, Kv, serve_clients};
use transport::paxos_network::{
    ClusterMember, MemberDirectory, QuicNetwork, cluster_endpoint_config, serve,
};
use transport::{Endpoint, EndpointConfig, InboundTrust};

#[derive(Parser)]
#[command(about = "A replicated key-value server on Multi-Paxos over QUIC")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates a cluster CA and one certificate per node in DIR.
    Certs {
        /// Where to write ca.crt, ca.key, nodeN.crt and nodeN.key.
        #[arg(long)]
        dir: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
    },
    /// Runs one node.
    Run {
        /// This node's id (1-based, as in --peers).
        #[arg(long)]
        id: u64,
        /// Directory written by `certs`.
        #[arg(long)]
        certs: PathBuf,
        /// Data directory (the durable log and snapshots).
        #[arg(long)]
        data: PathBuf,
        /// Every node's paxos address: `1=127.0.0.1:7001,2=...`.
        #[arg(long, value_parser = parse_peers)]
        peers: BTreeMap<u64, SocketAddr>,
        /// UDP address for clients.
        #[arg(long)]
        listen: SocketAddr,
        /// Take a snapshot every this many slots.
        #[arg(long, default_value_t = 10_000)]
        snapshot_log_len: u64,
    },
}

fn parse_peers(text: &str) -> Result<BTreeMap<u64, SocketAddr>, String> {
    text.split(',')
        .map(|item| {
            let (id, addr) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not ID=ADDRESS"))?;
            let id = id.parse().map_err(|e| format!("bad node id {id:?}: {e}"))?;
            let addr = addr
                .parse()
                .map_err(|e| format!("bad address {addr:?}: {e}"))?;
            Ok((id, addr))
        })
        .collect()
}

fn write_certs(dir: &Path, nodes: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = ClusterCa::generate("kv cluster")?;
    ca.save(&dir.join("ca.crt"), &dir.join("ca.key"))?;
    for id in 1..=nodes {
        let name = format!("node{id}");
        ca.issue(&name)?.save(
            &dir.join(format!("{name}.crt")),
            &dir.join(format!("{name}.key")),
        )?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Certs { dir, nodes } => write_certs(&dir, nodes),
        Cmd::Run {
            id,
            certs,
            data,
            peers,
            listen,
            snapshot_log_len,
        } => run(id, &certs, &data, peers, listen, snapshot_log_len).await,
    }
}

async fn run(
    id: u64,
    certs_dir: &Path,
    data: &Path,
    peers: BTreeMap<u64, SocketAddr>,
    listen: SocketAddr,
    snapshot_log_len: u64,
) -> anyhow::Result<()> {
    let Some(&paxos_addr) = peers.get(&id) else {
        bail!("--id {id} is not in --peers");
    };
    let ca = ClusterCa::load_certificate(&certs_dir.join("ca.crt"))?;
    let name = format!("node{id}");
    let identity_files = (
        certs_dir.join(format!("{name}.crt")),
        certs_dir.join(format!("{name}.key")),
    );
    let members: BTreeMap<u64, ClusterMember> = peers
        .iter()
        .map(|(&i, &addr)| {
            let name = format!("node{i}");
            (i, ClusterMember { name, addr })
        })
        .collect();
    let directory = MemberDirectory::new(&members);
    let paxos_endpoint = Endpoint::bind(
        Identity::load(&identity_files.0, &identity_files.1)?,
        cluster_endpoint_config(paxos_addr, ca, &directory),
    )?;
    let client_endpoint = Endpoint::bind(
        Identity::load(&identity_files.0, &identity_files.1)?,
        EndpointConfig::new(listen, InboundTrust::Open, &[ALPN_KV]),
    )?;
    let config = Config {
        id,
        members: peers.keys().copied().collect(),
        snapshot_log_len,
        seed: rand::random(),
        ..Config::default()
    };
    let storage = paxos::FileStorage::open(data)
        .with_context(|| format!("opening the data directory {}", data.display()))?;
    let network = QuicNetwork::new(id, paxos_endpoint.clone(), &directory);
    let node = start(
        config,
        Kv::default(),
        storage,
        network,
        RuntimeConfig::default(),
    )?;
    tokio::spawn(serve(paxos_endpoint, node.clone(), directory));
    tokio::spawn(serve_clients(client_endpoint, node));
    println!("ready");
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
