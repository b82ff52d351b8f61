//! A replicated key-value server: the paxos crate run for real, as one process per node,
//! talking QUIC with mutual TLS.
//!
//! ```sh
//! kv-server certs --dir certs --nodes 3
//! kv-server run --id 1 --certs certs --data data1 \
//!     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --listen 127.0.0.1:8001
//! ```
//!
//! Replacing node 3 by a new node 4 (new id, new name, empty data directory):
//!
//! ```sh
//! kv-server issue --dir certs --id 4
//! kv-server run --id 4 --join --certs certs --data data4 \
//!     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,4=127.0.0.1:7004 --listen 127.0.0.1:8004
//! kv-server member add --id 4 --address 127.0.0.1:7004 --replacing 3 --certs certs \
//!     --servers 127.0.0.1:7001,127.0.0.1:7002
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use certs::{ClusterCa, Identity};
use clap::{Parser, Subcommand};
use paxos::Config;
use paxos::runtime::{ClockBug, ControlledClock};
use paxos::runtime::{RuntimeConfig, start};
use tests::kv::{
    ADMIN_NAME, ALPN_KV, ALPN_KV_ADMIN, Kv, KvAdmin, is_operator, serve_admin_connection,
    serve_clients,
};
use transport::paxos_network::{
    ClusterMember, MemberDirectory, QuicNetwork, cluster_endpoint_config, serve_with,
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
    /// Creates a cluster CA, one certificate per node and the operator's (`admin`) in DIR.
    Certs {
        /// Where to write ca.crt, ca.key, nodeN.crt and nodeN.key.
        #[arg(long)]
        dir: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
    },
    /// Issues the certificate of a new node with the CA in DIR (for `member add`).
    Issue {
        /// The directory written by `certs`.
        #[arg(long)]
        dir: PathBuf,
        /// The new node's id; its certificate names it `node<ID>`.
        #[arg(long)]
        id: u64,
    },
    /// Runs one node.
    Run {
        /// This node's id (1-based, as in --peers).
        #[arg(long)]
        id: u64,
        /// Join a running cluster as a new, empty node: it learns the membership from the
        /// others (--peers lists this node and some members to contact) and waits to be
        /// added with `member add`.
        #[arg(long)]
        join: bool,
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
        /// Tests only: the replica's clock follows the rate and time-of-day steps that
        /// FILE says (`rate=R jump_ms=J`, re-read every 10 ms), for the nemesis.
        #[arg(long, hide = true, value_name = "FILE")]
        clock_control: Option<PathBuf>,
        /// Tests only: plant a bug, to prove the nemesis catches it.
        /// `time-of-day-clock`: the replica measures its lease with the time of day,
        /// which steps, instead of the monotonic clock.
        #[arg(long, hide = true, value_parser = ["time-of-day-clock"], requires = "clock_control")]
        planted_bug: Option<String>,
    },
    /// Lists, adds or removes members (operator protocol).
    Member {
        #[command(subcommand)]
        command: MemberCmd,
    },
    /// Hands the leadership to another voter (operator protocol).
    Leader {
        #[command(subcommand)]
        command: LeaderCmd,
    },
}

/// How an operator reaches the cluster.
#[derive(clap::Args)]
struct Operator {
    /// Directory written by `certs` (its ca.crt, admin.crt and admin.key are used).
    #[arg(long)]
    certs: PathBuf,
    /// Paxos addresses of some members, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<SocketAddr>,
}

#[derive(Subcommand)]
enum MemberCmd {
    /// Prints the members: id, role, address and, from the leader, how far behind each is.
    List {
        #[command(flatten)]
        operator: Operator,
    },
    /// Adds node ID (started with `run --join`) as a learner, waits until it has caught
    /// up and makes it a voter.
    Add {
        #[command(flatten)]
        operator: Operator,
        /// The new node's id (never used in this cluster before).
        #[arg(long)]
        id: u64,
        /// The new node's paxos address.
        #[arg(long)]
        address: SocketAddr,
        /// Leave it a learner.
        #[arg(long, conflicts_with = "replacing")]
        learner: bool,
        /// Make it a voter in place of this (dead) voter, in one change: the number
        /// of voters, and the quorum, stay as they were.
        #[arg(long)]
        replacing: Option<u64>,
    },
    /// Removes node ID for good.
    Remove {
        #[command(flatten)]
        operator: Operator,
        /// The node to remove.
        #[arg(long)]
        id: u64,
    },
}

#[derive(Subcommand)]
enum LeaderCmd {
    /// Asks the leader to hand over to --to (or the most up-to-date voter).
    Transfer {
        #[command(flatten)]
        operator: Operator,
        /// The voter to lead next.
        #[arg(long)]
        to: Option<u64>,
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
        issue(&ca, dir, &node_name(id))?;
    }
    issue(&ca, dir, ADMIN_NAME)
}

fn issue(ca: &ClusterCa, dir: &Path, name: &str) -> anyhow::Result<()> {
    ca.issue(name)?.save(
        &dir.join(format!("{name}.crt")),
        &dir.join(format!("{name}.key")),
    )?;
    Ok(())
}

/// The certificate name of node `id`.
fn node_name(id: u64) -> String {
    format!("node{id}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Certs { dir, nodes } => write_certs(&dir, nodes),
        Cmd::Issue { dir, id } => {
            let ca = ClusterCa::load(&dir.join("ca.crt"), &dir.join("ca.key"))
                .with_context(|| format!("loading the CA in {}", dir.display()))?;
            issue(&ca, &dir, &node_name(id))
        }
        Cmd::Run {
            id,
            join,
            certs,
            data,
            peers,
            listen,
            snapshot_log_len,
            clock_control,
            planted_bug,
        } => {
            let bug = match planted_bug.as_deref() {
                Some("time-of-day-clock") => ClockBug::TimeOfDay,
                _ => ClockBug::None,
            };
            let node = NodeFlags {
                id,
                join,
                peers,
                listen,
                snapshot_log_len,
                clock: clock_control.map(|file| (file, bug)),
            };
            run(node, &certs, &data).await
        }
        Cmd::Member { command } => member(command).await,
        Cmd::Leader {
            command: LeaderCmd::Transfer { operator, to },
        } => {
            operator.client()?.transfer_leader(to).await?;
            println!("leadership handed over");
            Ok(())
        }
    }
}

impl Operator {
    fn client(&self) -> anyhow::Result<KvAdmin> {
        Ok(KvAdmin::new(&self.certs, self.servers.clone())?)
    }
}

async fn member(command: MemberCmd) -> anyhow::Result<()> {
    match command {
        MemberCmd::List { operator } => {
            let view = operator.client()?.cluster_view().await?;
            let leader = view.leader.map_or("none known".into(), |l| l.to_string());
            println!("leader: {leader} (as node {} sees it)", view.id);
            let m = &view.membership;
            let rows = (m.voters.iter().map(|id| (id, "voter")))
                .chain(m.learners.iter().map(|id| (id, "learner")))
                .chain(m.retired.iter().map(|id| (id, "removed")));
            for (id, role) in rows {
                let address = m.addresses.get(id).map_or("-", String::as_str);
                let lag = match view.lag(*id) {
                    Some(lag) if role != "removed" => format!("{lag} behind"),
                    _ => "-".into(),
                };
                println!("{id}\t{role}\t{address}\t{lag}");
            }
        }
        MemberCmd::Add {
            operator,
            id,
            address,
            learner,
            replacing,
        } => {
            let client = operator.client()?;
            let address = ClusterMember {
                name: node_name(id),
                addr: address,
            }
            .to_string();
            if learner {
                let change = paxos::MembershipChange::AddLearner { id, address };
                client.change(change).await?;
                println!("node {id} added as a learner");
            } else {
                client.add_voter(id, address, replacing).await?;
                match replacing {
                    Some(old) => println!("node {id} is a voter in place of node {old}"),
                    None => println!("node {id} is a voter"),
                }
            }
        }
        MemberCmd::Remove { operator, id } => {
            operator.client()?.remove(id).await?;
            println!("node {id} removed");
        }
    }
    Ok(())
}

/// What `run` was told about this node.
struct NodeFlags {
    id: u64,
    join: bool,
    peers: BTreeMap<u64, SocketAddr>,
    listen: SocketAddr,
    snapshot_log_len: u64,
    /// A controlled clock (tests only): its control file and planted bug.
    clock: Option<(PathBuf, ClockBug)>,
}

async fn run(flags: NodeFlags, certs_dir: &Path, data: &Path) -> anyhow::Result<()> {
    let NodeFlags {
        id,
        join,
        peers,
        listen,
        snapshot_log_len,
        clock,
    } = flags;
    let Some(&paxos_addr) = peers.get(&id) else {
        bail!("--id {id} is not in --peers");
    };
    let ca = ClusterCa::load_certificate(&certs_dir.join("ca.crt"))?;
    let name = node_name(id);
    let identity_files = (
        certs_dir.join(format!("{name}.crt")),
        certs_dir.join(format!("{name}.key")),
    );
    let members: BTreeMap<u64, ClusterMember> = peers
        .iter()
        .map(|(&i, &addr)| {
            let name = node_name(i);
            (i, ClusterMember { name, addr })
        })
        .collect();
    let directory = MemberDirectory::new(&members);
    let mut cluster_config = cluster_endpoint_config(paxos_addr, ca, &directory);
    // The operator connects with the CA's certificate named ADMIN_NAME, on its own ALPN.
    if let InboundTrust::Cluster { members, .. } = &mut cluster_config.inbound {
        members.insert(ADMIN_NAME);
    }
    cluster_config.alpns.push(ALPN_KV_ADMIN.to_vec());
    let paxos_endpoint = Endpoint::bind(
        Identity::load(&identity_files.0, &identity_files.1)?,
        cluster_config,
    )?;
    let client_endpoint = Endpoint::bind(
        Identity::load(&identity_files.0, &identity_files.1)?,
        EndpointConfig::new(listen, InboundTrust::Open, &[ALPN_KV]),
    )?;
    let ids = peers.keys().copied();
    // An empty node joining a running cluster learns who the members are from it.
    let (members, contacts) = if join {
        (Vec::new(), ids.filter(|&i| i != id).collect())
    } else {
        (ids.collect(), Vec::new())
    };
    let config = Config {
        id,
        members,
        contacts,
        snapshot_log_len,
        seed: rand::random(),
        ..Config::default()
    };
    let storage = paxos::FileStorage::open(data)
        .with_context(|| format!("opening the data directory {}", data.display()))?;
    let network = QuicNetwork::new(id, paxos_endpoint.clone(), &directory);
    let mut runtime = RuntimeConfig::default();
    if let Some((file, bug)) = clock {
        let clock = Arc::new(ControlledClock::new(bug));
        clock.follow(file);
        runtime.clock = clock;
    }
    let node = start(config, Kv::default(), storage, network, runtime)?;
    let admin_node = node.clone();
    tokio::spawn(serve_with(
        paxos_endpoint.clone(),
        node.clone(),
        directory,
        move |connection| {
            if is_operator(&connection) {
                tokio::spawn(serve_admin_connection(connection, admin_node.clone()));
            } else {
                connection.close(1, "not an operator certificate");
            }
        },
    ));
    tokio::spawn(serve_clients(client_endpoint, node.clone()));
    println!("ready");
    std::io::stdout().flush()?;
    // The replica stops for good once the cluster confirms its removal.
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        () = node.stopped() => {
            // Whoever started the node may no longer read its output: not an error.
            let _ = writeln!(std::io::stdout(), "node {id} was removed from the cluster; stopping");
        }
    }
    // Let the last messages (the removed leader's handover) leave before exiting.
    paxos_endpoint.close();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        paxos_endpoint.wait_idle(),
    )
    .await;
    Ok(())
}
