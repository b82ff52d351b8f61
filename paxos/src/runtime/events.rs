//! The runtime's event vocabulary: what the client handles, the network and the storage
//! thread send to the driver task, and how an answer travels back.
//!
//! Every other runtime module depends on these types, not on each other: a [`Client`]
//! and a [`Node`] only produce [`Input`]s, the storage thread reports through them, and
//! the driver consumes them.
//!
//! [`Client`]: super::Client
//! [`Node`]: super::Node

use tokio::sync::oneshot;

use super::membership::ClusterView;
use crate::ballot::{ClientId, NodeId};
use crate::error::{ClientError, StorageError};
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::message::Command;
use crate::replica::{MessageOf, PersistToken};
use crate::state_machine::StateMachine;

/// Where the driver sends the answer to one proposal or read.
pub(crate) type Reply<S> = oneshot::Sender<Result<<S as StateMachine>::Output, ClientError>>;

/// One event for the driver task, which owns the replica.
pub(crate) enum Input<S: StateMachine> {
    /// A message from another replica.
    Message(NodeId, MessageOf<S>),
    /// A client's command, answered through the reply once applied.
    Propose(Command<S::Command>, Reply<S>),
    /// A linearizable read `(client, read id, query)`.
    Read(ClientId, u64, S::Query, Reply<S>),
    /// A read of this replica's applied state, answered at once (possibly stale).
    ReadLocal(S::Query, oneshot::Sender<S::Output>),
    /// A membership change, answered once applied (or refused).
    ChangeMembership(
        MembershipChange,
        oneshot::Sender<Result<Membership, MembershipError>>,
    ),
    /// Hand the leadership to this voter (or, with `None`, the most up-to-date one).
    TransferLeadership(Option<NodeId>, oneshot::Sender<Result<(), MembershipError>>),
    /// What this replica knows of the cluster.
    View(oneshot::Sender<ClusterView>),
    /// The storage thread made every persist batch up to this token durable.
    Persisted(PersistToken),
    /// The storage thread failed; the driver stops.
    StorageFailed(StorageError),
}
