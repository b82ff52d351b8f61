//! How the runtime reaches the other replicas: the [`Network`] trait a transport implements.

use crate::ballot::NodeId;

/// How the runtime reaches the other replicas.
///
/// `send` must not block: queue the message or drop it. Paxos tolerates loss,
/// duplication and reordering, so a best-effort transport is correct; a fast one is what
/// makes it quick. Messages arriving from other replicas are handed to
/// [`Node::deliver`](super::Node::deliver).
pub trait Network<M>: Send + Sync + 'static {
    /// Sends `message` to replica `to`, best effort.
    fn send(&self, to: NodeId, message: M);
}
