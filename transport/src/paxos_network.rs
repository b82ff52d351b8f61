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
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use paxos::runtime::{Node, RuntimeConfig, start};
//! use paxos::{Config, FileStorage, StateMachine};
//! use transport::paxos_network::{ClusterMember, QuicNetwork, cluster_endpoint_config, serve};
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
//!     let config = cluster_endpoint_config(members[&1].addr, ca.certificate().clone(), &members);
//!     let endpoint = transport::Endpoint::bind(ca.issue("node1")?, config)?;
//!     let network = QuicNetwork::new(1, endpoint.clone(), &members);
//!     let storage = FileStorage::open(std::path::Path::new("data1"))?;
//!     let paxos_config = Config { id: 1, members: vec![1, 2, 3], ..Config::default() };
//!     let node = start(paxos_config, machine, storage, network, RuntimeConfig::default())?;
//!     tokio::spawn(serve(endpoint, node.clone(), members));
//!     Ok(node)
//! }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certs::CertificateDer;
use paxos::StateMachine;
use paxos::replica::MessageOf;
use paxos::runtime::{Network, Node};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::{
    ALPN_PAXOS, Backoff, ChannelReceiver, ChannelSender, Connection, Dialer, Endpoint,
    EndpointConfig, Expect, InboundTrust, Received, StreamKind,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterMember {
    /// The DNS name in the node's certificate (issued by the cluster CA).
    pub name: String,
    /// The UDP address its paxos endpoint listens on.
    pub addr: SocketAddr,
}

/// The endpoint configuration of a paxos node: cluster trust (CA + member names), the
/// paxos ALPN, and frames large enough for snapshots.
pub fn cluster_endpoint_config(
    bind: SocketAddr,
    ca: CertificateDer<'static>,
    members: &BTreeMap<u64, ClusterMember>,
) -> EndpointConfig {
    let inbound = InboundTrust::Cluster {
        ca,
        members: members.values().map(|m| m.name.clone()).collect(),
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
    queues: Arc<HashMap<u64, mpsc::Sender<M>>>,
}

impl<M> Clone for QuicNetwork<M> {
    fn clone(&self) -> Self {
        QuicNetwork {
            queues: self.queues.clone(),
        }
    }
}

impl<M> std::fmt::Debug for QuicNetwork<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicNetwork")
            .field("remotes", &self.queues.len())
            .finish()
    }
}

impl<M: Serialize + Send + Sync + 'static> QuicNetwork<M> {
    /// Starts one sending task per member other than `me`. Must be called inside a tokio
    /// runtime. Back-off from an unreachable member is short (50 ms doubling to 1 s) so a
    /// restarted replica is reached again within about a second.
    pub fn new(me: u64, endpoint: Endpoint, members: &BTreeMap<u64, ClusterMember>) -> Self {
        let dialer = Dialer::new(
            endpoint,
            Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
        );
        let mut queues = HashMap::new();
        for (&id, member) in members.iter().filter(|(id, _)| **id != me) {
            let (tx, rx) = mpsc::channel(QUEUE_LEN);
            queues.insert(id, tx);
            tokio::spawn(send_loop(dialer.clone(), member.clone(), rx));
        }
        QuicNetwork {
            queues: Arc::new(queues),
        }
    }
}

impl<M: Serialize + Send + Sync + 'static> Network<M> for QuicNetwork<M> {
    fn send(&self, to: u64, message: M) {
        if let Some(queue) = self.queues.get(&to) {
            let _ = queue.try_send(message);
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

/// Accepts connections from the other members on `endpoint` and delivers their messages
/// to `node`. Runs until the endpoint is closed.
pub async fn serve<S>(endpoint: Endpoint, node: Node<S>, members: BTreeMap<u64, ClusterMember>)
where
    S: StateMachine + Send + 'static,
    S::Command: Send + DeserializeOwned,
    S::Output: Send + DeserializeOwned,
    S::Query: Send,
{
    serve_with(endpoint, node, members, |connection: Connection| {
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
    members: BTreeMap<u64, ClusterMember>,
    mut other: F,
) where
    S: StateMachine + Send + 'static,
    S::Command: Send + DeserializeOwned,
    S::Output: Send + DeserializeOwned,
    S::Query: Send,
    F: FnMut(Connection),
{
    let ids: Arc<HashMap<String, u64>> = Arc::new(
        members
            .iter()
            .map(|(id, m)| (m.name.clone(), *id))
            .collect(),
    );
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
            .find_map(|n| ids.get(n).copied())
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
