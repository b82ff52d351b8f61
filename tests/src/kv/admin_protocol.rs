//! The key-value service's operator protocol on the wire: what an operator asks a node
//! ([`KvAdminRequest`]) and what the node answers ([`KvAdminResponse`]), each one frame
//! on a one-request stream.
//!
//! A file of its own, needing only `paxos` and serde, so that the fuzz targets can
//! compile it by path and decode the frames a node and an operator read from each other
//! without building the Paxos runtime's node around them. `admin.rs` serves and sends
//! them and re-exports both.

use paxos::runtime::ClusterView;
use paxos::{MembershipChange, NodeId};
use serde::{Deserialize, Serialize};

/// An operator's request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvAdminRequest {
    /// The answering node's view of the cluster.
    Cluster,
    /// A membership change; only the leader takes it.
    ChangeMembership(MembershipChange),
    /// Hand the leadership to this voter, or to the most up-to-date one.
    TransferLeader(Option<NodeId>),
}

/// A node's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvAdminResponse {
    /// The view asked for.
    Cluster(ClusterView),
    /// The change is in force (or the leadership handed over).
    Done,
    /// Not the leader: ask this one.
    NotLeader(Option<NodeId>),
    /// Not done now (busy, interrupted, timed out, still catching up); ask again.
    Retry(String),
    /// Refused for good.
    Refused(String),
}
