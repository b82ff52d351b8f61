//! How the runtime reaches the other replicas: the [`Network`] trait a transport implements.

use crate::ballot::NodeId;
use crate::membership::Membership;

/// How the runtime reaches the other replicas.
///
/// `send` must not block: queue the message or drop it. Paxos tolerates loss,
/// duplication and reordering, so a best-effort transport is correct; a fast one is what
/// makes it quick. Messages arriving from other replicas are handed to
/// [`Node::deliver`](super::Node::deliver).
pub trait Network<M>: Send + Sync + 'static {
    /// Sends `message` to replica `to`, best effort.
    fn send(&self, to: NodeId, message: M);

    /// The membership in force changed (or was loaded at start): a transport that
    /// learns members at run time reads the new members' addresses
    /// ([`Membership::addresses`]) here. Called on the driver task; must not block.
    fn membership_changed(&self, membership: &Membership) {
        let _ = membership;
    }
}
