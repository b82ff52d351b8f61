//! One tracker node: a Paxos replica of [`TrackerState`] on durable storage, talking to the
//! other nodes over QUIC with mutual TLS, serving peers over QUIC, operators on the cluster
//! address, and `/health` and `/metrics` over HTTP.
//!
//! [`NodeConfig`] is what `bt-tracker run` reads from flags or a TOML file; [`start`]
//! brings the node up on the current tokio runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certs::{ClusterCa, Identity};
use paxos::runtime::{ClientConfig, ClockBug, ControlledClock, Node, RuntimeConfig};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use transport::paxos_network::{
    ClusterMember, MemberDirectory, QuicNetwork, cluster_endpoint_config, serve_with,
};
use transport::{Endpoint, EndpointConfig, InboundTrust};

use crate::api::{ALPN_TRACKER, ALPN_TRACKER_ADMIN, MAX_FRAME_LEN};
use crate::cert_files::{ADMIN_NAME, CertDir};
use crate::service::{DEFAULT_MAX_IN_FLIGHT, Service, ServiceConfig, now_ms};
use crate::state::{Command, StateConfig, TrackerState};

/// A member of the cluster, as every node's configuration lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberConfig {
    /// The DNS name in its certificate (issued by the cluster CA).
    pub name: String,
    /// Its cluster (Paxos and operator) address.
    pub cluster_addr: SocketAddr,
    /// Its peer-facing address (what torrent files list).
    pub peer_addr: SocketAddr,
}

impl MemberConfig {
    /// The member's address as the replicated membership keeps it:
    /// `NAME@CLUSTER_ADDR/PEER_ADDR`.
    pub fn to_address(&self) -> String {
        format!("{}@{}/{}", self.name, self.cluster_addr, self.peer_addr)
    }

    /// Reads [`MemberConfig::to_address`]'s form.
    pub fn from_address(text: &str) -> Result<Self, String> {
        let shape = "expected NAME@CLUSTER_ADDR/PEER_ADDR";
        let (name, addrs) = text.split_once('@').ok_or(shape)?;
        let (cluster, peer) = addrs.split_once('/').ok_or(shape)?;
        if name.is_empty() {
            return Err(shape.into());
        }
        let addr = |a: &str| {
            a.parse::<SocketAddr>()
                .map_err(|e| format!("bad address {a:?}: {e}; {shape}"))
        };
        Ok(MemberConfig {
            name: name.to_string(),
            cluster_addr: addr(cluster)?,
            peer_addr: addr(peer)?,
        })
    }
}

/// Where a node's certificates are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertPaths {
    /// The cluster CA's certificate.
    pub ca_cert: PathBuf,
    /// This node's certificate (issued by the CA, naming this node).
    pub node_cert: PathBuf,
    /// This node's private key.
    pub node_key: PathBuf,
}

impl CertPaths {
    /// The files `bt-tracker certs` writes in `dir` for node `name`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        let files = CertDir::new(dir);
        CertPaths {
            ca_cert: files.ca_cert(),
            node_cert: files.cert(name),
            node_key: files.key(name),
        }
    }
}

/// Everything a node needs to run.
///
/// In TOML (`bt-tracker run --config`), the peers' time to live is `peer_ttl_secs`, in
/// seconds like the `--peer-ttl-secs` flag; the older key `peer_ttl_ms` is still read,
/// with a warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NodeConfigFile", into = "NodeConfigFile")]
pub struct NodeConfig {
    /// This node's id, a key of `members`.
    pub id: u64,
    /// Every member of the cluster, this one included. For a joining node: itself and
    /// the current members it may ask for the log.
    pub members: BTreeMap<u64, MemberConfig>,
    /// This node joins a running cluster (it was added with `bt-tracker member add`):
    /// it starts knowing no membership and fetches a snapshot and the log from the
    /// other `members`. Without it, `members` are the cluster's first voters.
    pub join: bool,
    /// Where to bind the cluster address (defaults to this member's `cluster_addr`).
    pub cluster_listen: Option<SocketAddr>,
    /// Where to bind the peer-facing address (defaults to this member's `peer_addr`).
    pub peer_listen: Option<SocketAddr>,
    /// Where to serve HTTP (the web site, `/health`, `/metrics`); none if absent.
    pub http_listen: Option<SocketAddr>,
    /// The durable log and snapshots.
    pub data_dir: PathBuf,
    /// The certificates.
    pub certs: CertPaths,
    /// A peer not heard from for this long leaves its swarms, in ms; it becomes the
    /// replicated [`StateConfig::peer_ttl_ms`], whose default it takes.
    pub peer_ttl_ms: u64,
    /// How often the leader proposes the removal of expired peers, in ms. 1,000 by
    /// default: a dead peer is gone at most one second after its time to live.
    pub expire_interval_ms: u64,
    /// Peer requests this node answers at once; more are answered "busy"
    /// ([`ServiceConfig::max_in_flight`]).
    pub max_requests_in_flight: usize,
    /// Tests only: the replica's clock follows the rate and time-of-day steps written to
    /// this file ([`paxos::runtime::ControlledClock`]), so that a fault-injection harness
    /// can skew this node's clock. Not part of the configuration file.
    pub clock_control: Option<PathBuf>,
}

impl NodeConfig {
    /// Node `id` of `members`, keeping its log in `data_dir`, with the certificates
    /// `certs`: listening on its member addresses, without HTTP, and with the default
    /// time to live ([`StateConfig::default`]) and expiry interval.
    pub fn new(
        id: u64,
        members: BTreeMap<u64, MemberConfig>,
        data_dir: PathBuf,
        certs: CertPaths,
    ) -> Self {
        NodeConfig {
            id,
            members,
            join: false,
            cluster_listen: None,
            peer_listen: None,
            http_listen: None,
            data_dir,
            certs,
            peer_ttl_ms: StateConfig::default().peer_ttl_ms,
            expire_interval_ms: default_expire_interval_ms(),
            max_requests_in_flight: DEFAULT_MAX_IN_FLIGHT,
            clock_control: None,
        }
    }
}

/// [`NodeConfig`] as written in TOML.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfigFile {
    id: u64,
    members: BTreeMap<u64, MemberConfig>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    join: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_listen: Option<SocketAddr>,
    data_dir: PathBuf,
    certs: CertPaths,
    /// The peers' time to live in seconds, like `--peer-ttl-secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_ttl_secs: Option<u64>,
    /// The same in milliseconds: the older key, still read (and written when the time to
    /// live is not a whole number of seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_ttl_ms: Option<u64>,
    #[serde(default = "default_expire_interval_ms")]
    expire_interval_ms: u64,
    #[serde(default = "default_max_requests_in_flight")]
    max_requests_in_flight: usize,
}

impl TryFrom<NodeConfigFile> for NodeConfig {
    type Error = String;

    fn try_from(file: NodeConfigFile) -> Result<Self, String> {
        let peer_ttl_ms = match (file.peer_ttl_secs, file.peer_ttl_ms) {
            (Some(_), Some(_)) => {
                return Err("give the peers' time to live once, as peer_ttl_secs \
                            (peer_ttl_ms is its older name, in milliseconds)"
                    .into());
            }
            (Some(secs), None) => secs.checked_mul(1000).ok_or("peer_ttl_secs is too large")?,
            (None, Some(ms)) => {
                tracing::warn!(
                    "the configuration key peer_ttl_ms is deprecated: write peer_ttl_secs = {} \
                     (seconds, like the --peer-ttl-secs flag)",
                    ms.div_ceil(1000)
                );
                ms
            }
            (None, None) => StateConfig::default().peer_ttl_ms,
        };
        Ok(NodeConfig {
            id: file.id,
            members: file.members,
            join: file.join,
            cluster_listen: file.cluster_listen,
            peer_listen: file.peer_listen,
            http_listen: file.http_listen,
            data_dir: file.data_dir,
            certs: file.certs,
            peer_ttl_ms,
            expire_interval_ms: file.expire_interval_ms,
            max_requests_in_flight: file.max_requests_in_flight,
            clock_control: None,
        })
    }
}

impl From<NodeConfig> for NodeConfigFile {
    fn from(c: NodeConfig) -> Self {
        let whole_secs = c.peer_ttl_ms.is_multiple_of(1000);
        NodeConfigFile {
            id: c.id,
            members: c.members,
            join: c.join,
            cluster_listen: c.cluster_listen,
            peer_listen: c.peer_listen,
            http_listen: c.http_listen,
            data_dir: c.data_dir,
            certs: c.certs,
            peer_ttl_secs: whole_secs.then_some(c.peer_ttl_ms / 1000),
            peer_ttl_ms: (!whole_secs).then_some(c.peer_ttl_ms),
            expire_interval_ms: c.expire_interval_ms,
            max_requests_in_flight: c.max_requests_in_flight,
        }
    }
}

fn default_expire_interval_ms() -> u64 {
    1_000
}

fn default_max_requests_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

/// Why a node could not start.
///
/// Each message includes what went wrong underneath, so none of these reports a separate
/// `source()`: printing the chain of causes would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// A certificate or key could not be loaded.
    #[error("certificates: {0}")]
    Certs(certs::CertError),
    /// A socket could not be bound.
    #[error("network: {0}")]
    Transport(transport::TransportError),
    /// The data directory could not be opened.
    #[error("data directory {path}: {error}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: paxos::StorageError,
    },
    /// The replica could not start.
    #[error("replica: {0}")]
    Start(paxos::runtime::StartError),
    /// The consensus runtime's thread could not start.
    #[error("consensus thread: {0}")]
    Runtime(std::io::Error),
    /// The HTTP address could not be bound.
    #[error("HTTP address {addr}: {error}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        error: std::io::Error,
    },
}

impl From<certs::CertError> for NodeError {
    fn from(e: certs::CertError) -> Self {
        NodeError::Certs(e)
    }
}

impl From<transport::TransportError> for NodeError {
    fn from(e: transport::TransportError) -> Self {
        NodeError::Transport(e)
    }
}

impl From<paxos::runtime::StartError> for NodeError {
    fn from(e: paxos::runtime::StartError) -> Self {
        NodeError::Start(e)
    }
}

/// A running node. Dropping it does not stop it; call [`RunningNode::shutdown`].
pub struct RunningNode {
    service: Service,
    peer_endpoint: Endpoint,
    cluster_endpoint: Endpoint,
    http_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    consensus: ConsensusRuntime,
}

/// The consensus plane's own runtime: one thread that runs the replica's driver, the
/// cluster endpoint and the messages between the nodes.
///
/// On the runtime that serves the peers, the replica's driver was one task among
/// thousands of peer connections. When a leader died under a crowd of 5,000 peers,
/// their reconnection handshakes kept the driver waiting in the run queue for longer
/// than the election timeout: every new leader stepped down again, and the cluster made
/// almost no progress for 10 s (measured with `bench/tracker-crowd.sh`). On its own
/// thread the driver competes with the peer-serving threads only for the CPU, where
/// the operating system's scheduler serves a thread that needs little promptly.
struct ConsensusRuntime {
    handle: tokio::runtime::Handle,
    /// Dropped to stop the runtime (its thread then drops every task left on it).
    stop: tokio::sync::oneshot::Sender<()>,
}

impl ConsensusRuntime {
    fn start(id: u64) -> Result<Self, NodeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NodeError::Runtime)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("consensus-{id}"))
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(NodeError::Runtime)?;
        Ok(ConsensusRuntime { handle, stop })
    }
}

impl RunningNode {
    /// The service (and through it the replica).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The bound peer-facing address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_endpoint.local_addr()
    }

    /// The bound cluster address.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.cluster_endpoint.local_addr()
    }

    /// The bound HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Stops serving: closes the endpoints, stops the node's tasks and ends the consensus
    /// thread, whose runtime drops the replica's driver.
    pub fn shutdown(self) {
        drop(self.close());
    }

    /// Closes the endpoints and stops the tasks; gives back the consensus runtime, which
    /// keeps running until dropped.
    fn close(self) -> ConsensusRuntime {
        self.peer_endpoint.close();
        self.cluster_endpoint.close();
        for task in self.tasks {
            task.abort();
        }
        self.consensus
    }

    /// Like [`RunningNode::shutdown`], and waits (up to a second) until the peers and
    /// nodes connected here have been told that the connection is closed, so that they
    /// turn to another node at once instead of waiting out a timeout.
    pub async fn shutdown_and_notify(self) {
        let endpoints = [self.peer_endpoint.clone(), self.cluster_endpoint.clone()];
        // The cluster endpoint's driver runs on the consensus runtime: keep it until
        // the endpoint is idle.
        let consensus = self.close();
        for endpoint in endpoints {
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
        drop(consensus.stop);
    }
}

/// Starts a node on the current tokio runtime.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let me = config.members.get(&config.id).ok_or_else(|| {
        NodeError::Config(format!("node id {} is not among the members", config.id))
    })?;
    let ca = ClusterCa::load_certificate(&config.certs.ca_cert)?;
    // The web site's cluster page dials the other members as a peer would.
    let ca_fingerprint = certs::Fingerprint::of_certificate(&ca)?;
    let identity = || Identity::load(&config.certs.node_cert, &config.certs.node_key);

    let members: BTreeMap<u64, ClusterMember> = config
        .members
        .iter()
        .map(|(&id, m)| {
            let member = ClusterMember {
                name: m.name.clone(),
                addr: m.cluster_addr,
            };
            (id, member)
        })
        .collect();
    // Members added at run time are learnt from the replicated membership.
    let directory = MemberDirectory::new(&members).with_parser(|text| {
        MemberConfig::from_address(text)
            .ok()
            .map(|m| ClusterMember {
                name: m.name,
                addr: m.cluster_addr,
            })
    });
    let mut cluster_config = cluster_endpoint_config(
        config.cluster_listen.unwrap_or(me.cluster_addr),
        ca,
        &directory,
    );
    // Operators (`bt-tracker user add`, ...) connect with a CA certificate named ADMIN_NAME.
    if let InboundTrust::Cluster { members, .. } = &mut cluster_config.inbound {
        members.insert(ADMIN_NAME);
    }
    cluster_config.alpns.push(ALPN_TRACKER_ADMIN.to_vec());
    // The operator protocol has the peer-facing protocol's frame maximum, not paxos's.
    cluster_config
        .alpn_max_frames
        .push((ALPN_TRACKER_ADMIN.to_vec(), MAX_FRAME_LEN));
    let consensus = ConsensusRuntime::start(config.id)?;
    // The cluster endpoint's driver runs where it is bound.
    let cluster_endpoint = {
        let _on = consensus.handle.enter();
        Endpoint::bind(identity()?, cluster_config)?
    };

    let mut peer_config = EndpointConfig::new(
        config.peer_listen.unwrap_or(me.peer_addr),
        InboundTrust::Open,
        &[ALPN_TRACKER],
    );
    // A publish request carries a whole torrent file.
    peer_config.max_frame = MAX_FRAME_LEN;
    peer_config.tuning.max_concurrent_bidi_streams = PEER_STREAMS_PER_CONNECTION;
    // Peers send small requests: a send buffer of one packet per connection is enough,
    // where segmentation offload keeps one of ten (15 KiB of every peer's memory).
    peer_config.tuning.segmentation_offload = false;
    let peer_endpoint = Endpoint::bind(identity()?, peer_config)?;

    let ids = config.members.keys().copied();
    // A joining node knows no membership yet: it asks the other members for it.
    let (members, contacts) = if config.join {
        (Vec::new(), ids.filter(|&i| i != config.id).collect())
    } else {
        (ids.collect(), Vec::new())
    };
    let paxos_config = paxos::Config {
        id: config.id,
        members,
        contacts,
        seed: rand::random(),
        ..paxos::Config::default()
    };
    let storage =
        paxos::FileStorage::open(&config.data_dir).map_err(|error| NodeError::Storage {
            path: config.data_dir.clone(),
            error,
        })?;
    let state_config = StateConfig {
        peer_ttl_ms: config.peer_ttl_ms,
    };
    let state = TrackerState::new(state_config.clone());
    let node = {
        let _on = consensus.handle.enter();
        let network = QuicNetwork::new(config.id, cluster_endpoint.clone(), &directory);
        let mut runtime = RuntimeConfig::default();
        if let Some(file) = &config.clock_control {
            let clock = Arc::new(ControlledClock::new(ClockBug::None));
            clock.follow(file.clone());
            runtime.clock = clock;
        }
        paxos::runtime::start(paxos_config, state, storage, network, runtime)?
    };
    let service = Service::new(
        node.clone(),
        ServiceConfig {
            state: state_config,
            cluster_ca: Some(ca_fingerprint),
            max_in_flight: config.max_requests_in_flight,
            ..ServiceConfig::default()
        },
    );

    let mut tasks = Vec::new();
    let admin_service = service.clone();
    tasks.push(consensus.handle.spawn(serve_with(
        cluster_endpoint.clone(),
        node.clone(),
        directory,
        move |connection| {
            if connection.alpn() == ALPN_TRACKER_ADMIN
                && connection.remote_names().iter().any(|n| n == ADMIN_NAME)
            {
                tokio::spawn(admin_service.clone().serve_admin_connection(connection));
            } else {
                connection.close(1, "not an operator certificate");
            }
        },
    )));
    tasks.push(tokio::spawn(
        service.clone().serve_peers(peer_endpoint.clone()),
    ));
    tasks.push(tokio::spawn(expire_peers(
        node,
        Duration::from_millis(config.expire_interval_ms),
    )));
    let http_addr = match config.http_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| NodeError::Http { addr, error })?;
            let bound = listener
                .local_addr()
                .map_err(|error| NodeError::Http { addr, error })?;
            let site = crate::web::Site::new(
                service.clone(),
                crate::web::SiteConfig::new(
                    config.id,
                    config.members.clone(),
                    ca_fingerprint,
                    peer_endpoint.clone(),
                ),
            );
            tasks.push(tokio::spawn(crate::http::serve(
                listener,
                Arc::new(service.clone()),
                site,
            )));
            Some(bound)
        }
        None => None,
    };
    Ok(RunningNode {
        service,
        peer_endpoint,
        cluster_endpoint,
        http_addr,
        tasks,
        consensus,
    })
}

/// Requests one peer may have open at once on its connection to a node. A peer sends its
/// writes one at a time and a few reads beside them, so 16 leaves room (a request beyond
/// it waits for a stream to close rather than failing). quinn sets up the state of every
/// stream the remote may open when the connection opens: the transport's default of
/// 1,024 (sized for chunk streams between peers) cost every connection about 150 KiB,
/// which at 20,000 peers was 1.2-2 GiB per node and half of its CPU time spent zeroing
/// fresh pages (measured with `bench/tracker-crowd.sh`); 64 cost 7.3 KiB, 16 costs 1.8.
const PEER_STREAMS_PER_CONNECTION: u32 = 16;

/// While this node leads, proposes an [`Command::Expire`] every `interval`, so peers that
/// stopped heartbeating leave their swarms on every node through the log.
async fn expire_peers(node: Node<TrackerState>, interval: Duration) {
    let mut client = node.client(ClientConfig {
        attempt_timeout: interval.max(Duration::from_millis(500)),
        deadline: interval.max(Duration::from_millis(500)) * 2,
    });
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if node.is_stopped() {
            return;
        }
        if !node.metrics().is_leader {
            continue;
        }
        match client.propose(Command::Expire { now_ms: now_ms() }).await {
            Ok(out) => tracing::trace!("expiry: {out:?}"),
            Err(e) => tracing::debug!("expiry proposal failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_configuration_reads_from_toml_with_defaults() {
        let text = r#"
            id = 2
            data_dir = "/var/lib/bt-tracker"
            http_listen = "10.0.0.2:8080"

            [certs]
            ca_cert = "/etc/bt/ca.crt"
            node_cert = "/etc/bt/node2.crt"
            node_key = "/etc/bt/node2.key"

            [members.1]
            name = "node1"
            cluster_addr = "10.0.0.1:7000"
            peer_addr = "10.0.0.1:7100"

            [members.2]
            name = "node2"
            cluster_addr = "10.0.0.2:7000"
            peer_addr = "10.0.0.2:7100"
        "#;
        let config: NodeConfig = toml::from_str(text).unwrap();
        assert_eq!(config.id, 2);
        assert_eq!(config.members.len(), 2);
        assert_eq!(
            config.members[&1].peer_addr,
            "10.0.0.1:7100".parse().unwrap()
        );
        assert_eq!(config.peer_ttl_ms, 30_000);
        assert_eq!(config.expire_interval_ms, 1_000);
        assert_eq!(config.http_listen, Some("10.0.0.2:8080".parse().unwrap()));

        let typo = text.replace("data_dir", "data_directory");
        let err = toml::from_str::<NodeConfig>(&typo).unwrap_err().to_string();
        assert!(err.contains("data_directory"), "{err}");
    }

    #[test]
    fn the_readme_configuration_reads_with_peer_ttl_in_seconds_like_the_flag() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```toml\n")
            .expect("a TOML example in the README")
            + 8;
        let text = &readme[start..];
        let text = &text[..text.find("```").expect("the end of the TOML example")];
        let config: NodeConfig = toml::from_str(text).unwrap();
        assert_eq!(config.id, 1);
        assert_eq!(config.members.len(), 3);
        assert_eq!(config.peer_ttl_ms, 30_000);

        let ten = text.replace("peer_ttl_secs = 30", "peer_ttl_secs = 10");
        let config: NodeConfig = toml::from_str(&ten).unwrap();
        assert_eq!(config.peer_ttl_ms, 10_000);
        // The older key in milliseconds is still read.
        let old = text.replace("peer_ttl_secs = 30", "peer_ttl_ms = 2500");
        let config: NodeConfig = toml::from_str(&old).unwrap();
        assert_eq!(config.peer_ttl_ms, 2_500);
        // Both at once is ambiguous.
        let both = text.replace(
            "peer_ttl_secs = 30",
            "peer_ttl_secs = 3\npeer_ttl_ms = 2500",
        );
        let err = toml::from_str::<NodeConfig>(&both).unwrap_err().to_string();
        assert!(err.contains("peer_ttl_secs"), "{err}");
        // Written back, the configuration reads the same.
        let written = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&written).unwrap(), config);
    }
}
