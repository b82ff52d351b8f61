//! Running `paxos` over QUIC: the way to replicate a state machine across machines.
//!
//! Enabled by the `paxos` feature. Each node has an [`Endpoint`] with
//! [`InboundTrust::Cluster`] serving [`ALPN_PAXOS`]: every connection is mutual TLS with
//! certificates from the cluster CA, and a replica's identity is the node name in its
//! certificate, so a message's sender is proven by the handshake and not claimed by the
//! message.
//!
//! * [`QuicNetwork`] implements [`paxos::runtime::Network`]: one queue and one sending
//!   task per remote replica. The task keeps a connection (through the [`Dialer`], so a
//!   dead replica is backed off) and one long-lived channel on it, drains everything
//!   queued and sends it as one frame in one write. A full queue drops messages, which
//!   Paxos tolerates.
//! * [`serve`] accepts connections from the other replicas and hands their messages to
//!   the local [`paxos::runtime::Node`].
//! * [`MemberDirectory`] maps ids to certificate names and addresses. It learns members
//!   added to the replicated membership, so the network dials them and the endpoint
//!   accepts them without a restart.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use paxos::runtime::{Node, RuntimeConfig, start};
//! use paxos::{Config, FileStorage, StateMachine};
//! use transport::paxos_network::{
//!     ClusterMember, MemberDirectory, QuicNetwork, cluster_endpoint_config, serve,
//! };
//!
//! /// Runs node 1 of a three-node cluster replicating `machine`.
//! async fn run_node_1<S>(ca: certs::ClusterCa, machine: S) -> Result<Node<S>, Box<dyn std::error::Error>>
//! where
//!     S: StateMachine + Send + 'static,
//!     S::Command: Send + Sync,
//!     S::Output: Send + Sync,
//!     S::Query: Send,
//! {
//!     let members: BTreeMap<u64, ClusterMember> = (1..=3)
//!         .map(|i| {
//!             let addr = format!("127.0.0.1:700{i}").parse().unwrap();
//!             (i, ClusterMember { name: format!("node{i}"), addr })
//!         })
//!         .collect();
//!     let directory = MemberDirectory::new(&members);
//!     let config = cluster_endpoint_config(members[&1].addr, ca.certificate().clone(), &directory);
//!     let endpoint = transport::Endpoint::bind(ca.issue("node1")?, config)?;
//!     let network = QuicNetwork::new(1, endpoint.clone(), &directory);
//!     let storage = FileStorage::open(std::path::Path::new("data1"))?;
//!     let paxos_config = Config { id: 1, members: vec![1, 2, 3], ..Config::default() };
//!     let node = start(paxos_config, machine, storage, network, RuntimeConfig::default())?;
//!     tokio::spawn(serve(endpoint, node.clone(), directory));
//!     Ok(node)
//! }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use certs::CertificateDer;
use paxos::StateMachine;
use paxos::replica::MessageOf;
use paxos::runtime::{Network, Node};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::{
    ALPN_PAXOS, Backoff, ChannelReceiver, ChannelSender, ClusterNames, Connection, Dialer,
    Endpoint, EndpointConfig, Expect, InboundTrust, Received, StreamKind,
};

/// Largest paxos frame: 256 MiB, because a snapshot sent to a lagging replica travels as
/// one message. Only authenticated cluster members can send to this endpoint.
pub const PAXOS_MAX_FRAME: usize = 256 << 20;

/// Messages queued per remote replica before new ones are dropped: 65,536.
const QUEUE_LEN: usize = 65_536;

/// How long one batch may take to hand to QUIC. A connection that cannot take a batch in
/// this time (its remote stopped granting stream credit: it died or restarted) is closed
/// and redialled; paxos messages that old are worthless anyway.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// A replica of the cluster: the name in its certificate and its paxos address.
///
/// As a membership address ([`paxos::Membership::addresses`]) it reads and writes as
/// `name@address`, for example `node4@10.0.0.4:7000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterMember {
    /// The DNS name in the node's certificate (issued by the cluster CA).
    pub name: String,
    /// The UDP address its paxos endpoint listens on.
    pub addr: SocketAddr,
}

impl std::fmt::Display for ClusterMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

impl std::str::FromStr for ClusterMember {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, addr) = text
            .split_once('@')
            .ok_or_else(|| format!("{text:?} is not NAME@ADDRESS"))?;
        if name.is_empty() {
            return Err(format!("{text:?} has no certificate name before '@'"));
        }
        let addr = addr
            .parse()
            .map_err(|e| format!("bad address {addr:?} in {text:?}: {e}"))?;
        Ok(ClusterMember {
            name: name.to_string(),
            addr,
        })
    }
}

/// Reads a member's address string from the replicated membership.
pub type ParseAddress = Arc<dyn Fn(&str) -> Option<ClusterMember> + Send + Sync>;

/// The members a node knows: id, certificate name and address of each. It starts with
/// the members a node is configured with and learns the others from the replicated
/// membership as they are added, so a node added at run time is reached and accepted
/// without restarting anybody. Cheap to clone; clones share one directory.
#[derive(Clone)]
pub struct MemberDirectory {
    known: Arc<RwLock<Known>>,
    names: ClusterNames,
    parse: ParseAddress,
}

#[derive(Default)]
struct Known {
    by_id: BTreeMap<u64, ClusterMember>,
    by_name: HashMap<String, u64>,
}

impl std::fmt::Debug for MemberDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberDirectory")
            .field("members", &self.members())
            .finish_non_exhaustive()
    }
}

impl MemberDirectory {
    /// A directory of `members`, reading added members' addresses as `name@address`
    /// ([`ClusterMember`]'s form).
    pub fn new(members: &BTreeMap<u64, ClusterMember>) -> Self {
        let directory = MemberDirectory {
            known: Arc::default(),
            names: ClusterNames::default(),
            parse: Arc::new(|text: &str| text.parse().ok()),
        };
        for (&id, member) in members {
            directory.insert(id, member.clone());
        }
        directory
    }

    /// Reads added members' address strings with `parse` instead (for an application
    /// whose addresses carry more than the paxos address).
    pub fn with_parser(
        mut self,
        parse: impl Fn(&str) -> Option<ClusterMember> + Send + Sync + 'static,
    ) -> Self {
        self.parse = Arc::new(parse);
        self
    }

    /// The certificate names to accept, for [`InboundTrust::Cluster`]: it grows with
    /// the directory.
    pub fn names(&self) -> ClusterNames {
        self.names.clone()
    }

    /// Every member known, by id.
    pub fn members(&self) -> BTreeMap<u64, ClusterMember> {
        self.read().by_id.clone()
    }

    /// The member with this id, if known.
    pub fn get(&self, id: u64) -> Option<ClusterMember> {
        self.read().by_id.get(&id).cloned()
    }

    /// The id of the member whose certificate names `name`.
    pub fn id_of(&self, name: &str) -> Option<u64> {
        self.read().by_name.get(name).copied()
    }

    /// Learns the members of `membership` not known yet; returns them.
    pub fn learn(&self, membership: &paxos::Membership) -> Vec<(u64, ClusterMember)> {
        let mut added = Vec::new();
        for (&id, text) in &membership.addresses {
            if self.read().by_id.contains_key(&id) {
                continue;
            }
            match (self.parse)(text) {
                Some(member) => {
                    self.insert(id, member.clone());
                    added.push((id, member));
                }
                None => tracing::warn!(id, "unreadable member address {text:?}; ignored"),
            }
        }
        added
    }

    fn insert(&self, id: u64, member: ClusterMember) {
        self.names.insert(member.name.clone());
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.by_name.insert(member.name.clone(), id);
        known.by_id.insert(id, member);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.known.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The endpoint configuration of a paxos node: cluster trust (CA + the directory's
/// member names), the paxos ALPN, and frames large enough for snapshots.
pub fn cluster_endpoint_config(
    bind: SocketAddr,
    ca: CertificateDer<'static>,
    directory: &MemberDirectory,
) -> EndpointConfig {
    let inbound = InboundTrust::Cluster {
        ca,
        members: directory.names(),
    };
    let mut config = EndpointConfig::new(bind, inbound, &[ALPN_PAXOS]);
    config.max_frame = PAXOS_MAX_FRAME;
    // A replica that does not answer within 1 s is as good as dead for an election.
    config.connect_timeout = Duration::from_secs(1);
    // Notice a vanished replica within seconds, not the default 30 s: its connection is
    // dropped and redialled, which is what lets a restarted replica be reached again.
    config.tuning.keep_alive_interval = Duration::from_millis(500);
    config.tuning.idle_timeout = Duration::from_secs(3);
    config
}

/// [`Network`] over QUIC. Cheap to clone.
pub struct QuicNetwork<M> {
    me: u64,
    queues: Arc<RwLock<HashMap<u64, mpsc::Sender<M>>>>,
    dialer: Dialer,
    directory: MemberDirectory,
}

impl<M> Clone for QuicNetwork<M> {
    fn clone(&self) -> Self {
        QuicNetwork {
            me: self.me,
            queues: self.queues.clone(),
            dialer: self.dialer.clone(),
            directory: self.directory.clone(),
        }
    }
}

impl<M> std::fmt::Debug for QuicNetwork<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remotes = self.queues.read().map(|q| q.len()).unwrap_or(0);
        f.debug_struct("QuicNetwork")
            .field("remotes", &remotes)
            .finish()
    }
}

impl<M: Serialize + Send + Sync + 'static> QuicNetwork<M> {
    /// Starts one sending task per member of `directory` other than `me`, and one more
    /// for each member the replicated membership adds later. Must be called inside a
    /// tokio runtime. Back-off from an unreachable member is short (50 ms doubling to
    /// 1 s) so a restarted replica is reached again within about a second.
    pub fn new(me: u64, endpoint: Endpoint, directory: &MemberDirectory) -> Self {
        let dialer = Dialer::new(
            endpoint,
            Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
        );
        let network = QuicNetwork {
            me,
            queues: Arc::default(),
            dialer,
            directory: directory.clone(),
        };
        for (id, member) in directory.members() {
            network.start_sending(id, member);
        }
        network
    }

    fn start_sending(&self, id: u64, member: ClusterMember) {
        if id == self.me {
            return;
        }
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        if queues.contains_key(&id) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        queues.insert(id, tx);
        tokio::spawn(send_loop(self.dialer.clone(), member, rx));
    }
}

impl<M: Serialize + Send + Sync + 'static> Network<M> for QuicNetwork<M> {
    fn send(&self, to: u64, message: M) {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = queues.get(&to) {
            let _ = queue.try_send(message);
        }
    }

    fn membership_changed(&self, membership: &paxos::Membership) {
        for (id, member) in self.directory.learn(membership) {
            tracing::info!(id, %member, "a new cluster member");
            self.start_sending(id, member);
        }
    }
}

/// Sends everything queued for one member, batch by batch, on one long-lived channel
/// (stream kind 0x04) of one connection: each batch is one frame and one write, with no
/// stream to open per batch and no task for the receiver to spawn.
async fn send_loop<M: Serialize>(
    dialer: Dialer,
    member: ClusterMember,
    mut queue: mpsc::Receiver<M>,
) {
    let expect = Expect::ClusterNode(member.name.clone());
    let mut batch = Vec::new();
    let mut channel: Option<(Connection, ChannelSender, ChannelReceiver)> = None;
    while queue.recv_many(&mut batch, 4096).await > 0 {
        let connection = match dialer.dial(member.addr, &expect, ALPN_PAXOS).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(to = %member.name, "paxos messages dropped: {e}");
                batch.clear();
                continue;
            }
        };
        let current = channel.as_ref().is_some_and(|(c, _, _)| {
            !c.is_closed() && c.quinn().stable_id() == connection.quinn().stable_id()
        });
        if !current {
            channel = None;
        }
        let result = tokio::time::timeout(SEND_TIMEOUT, async {
            if channel.is_none() {
                let (send, recv) = connection.open_channel().await?;
                channel = Some((connection.clone(), send, recv));
            }
            let (_, send, _) = channel.as_mut().expect("opened above");
            send.push(&batch)?;
            send.flush().await
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(to = %member.name, "paxos send failed: {e}");
                channel = None;
                if e.is_remote_failure() {
                    dialer.report_failure(member.addr);
                }
            }
            Err(_) => {
                tracing::debug!(to = %member.name, "paxos send stalled; redialling");
                channel = None;
                connection.close(2, "send stalled");
                dialer.report_failure(member.addr);
            }
        }
        batch.clear();
    }
}

/// Accepts connections from the members of `directory` on `endpoint` and delivers their
/// messages to `node`. Runs until the endpoint is closed.
pub async fn serve<S>(endpoint: Endpoint, node: Node<S>, directory: MemberDirectory)
where
    S: StateMachine + Send + 'static,
    S::Command: Send + DeserializeOwned,
    S::Output: Send + DeserializeOwned,
    S::Query: Send,
{
    serve_with(endpoint, node, directory, |connection: Connection| {
        connection.close(1, "this endpoint serves only the paxos protocol");
    })
    .await
}

/// Like [`serve`], for an endpoint that serves other protocols besides paxos (for example
/// an operator protocol for holders of a cluster certificate): every connection whose
/// ALPN is not [`ALPN_PAXOS`] is handed to `other`.
pub async fn serve_with<S, F>(
    endpoint: Endpoint,
    node: Node<S>,
    directory: MemberDirectory,
    mut other: F,
) where
    S: StateMachine + Send + 'static,
    S::Command: Send + DeserializeOwned,
    S::Output: Send + DeserializeOwned,
    S::Query: Send,
    F: FnMut(Connection),
{
    while let Some(incoming) = endpoint.accept().await {
        let connection = match incoming {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("refused a paxos connection: {e}");
                continue;
            }
        };
        if connection.alpn() != ALPN_PAXOS {
            other(connection);
            continue;
        }
        // The name was verified against the CA and the member list in the handshake.
        let Some(from) = connection
            .remote_names()
            .iter()
            .find_map(|n| directory.id_of(n))
        else {
            connection.close(1, "not a cluster member");
            continue;
        };
        tokio::spawn(receive_loop(connection, from, node.clone()));
    }
}

async fn receive_loop<S>(connection: Connection, from: u64, node: Node<S>)
where
    S: StateMachine + Send + 'static,
    S::Command: Send + DeserializeOwned,
    S::Output: Send + DeserializeOwned,
    S::Query: Send,
{
    while let Ok(stream) = connection.accept().await {
        let node = node.clone();
        tokio::spawn(async move {
            match stream
                .read_kinds::<Vec<MessageOf<S>>>(&[StreamKind::Channel, StreamKind::Message])
                .await
            {
                Ok(Received::Channel(_send, mut recv)) => loop {
                    match recv.recv::<Vec<MessageOf<S>>>().await {
                        Ok(Some(batch)) => {
                            for message in batch {
                                node.deliver(from, message);
                            }
                        }
                        Ok(None) => break,
                        // `_send` resets itself with the frame's code when dropped.
                        Err(crate::TransportError::BadFrame { detail, .. }) => {
                            tracing::warn!(from, "bad paxos frame: {detail}");
                            break;
                        }
                        // The peer node stopped or the connection was lost: nothing
                        // was malformed, and the dialer connects again.
                        Err(e) => {
                            tracing::debug!(from, "paxos channel ended: {e}");
                            break;
                        }
                    }
                },
                Ok(Received::Message(batch)) => {
                    for message in batch {
                        node.deliver(from, message);
                    }
                }
                // Other kinds were refused with UNKNOWN_STREAM_KIND by the transport.
                Ok(_) => {}
                Err(e @ crate::TransportError::BadFrame { .. }) => {
                    tracing::warn!(from, "bad paxos frame: {e}")
                }
                Err(e) => tracing::debug!(from, "paxos stream ended: {e}"),
            }
        });
    }
}
