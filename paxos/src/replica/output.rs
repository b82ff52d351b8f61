//! What the replica asks its driver to do: [`Output`], and shorthands for the generic
//! types of one state machine.

use crate::ballot::{ClientId, NodeId};
use crate::error::ClientError;
use crate::membership::{Membership, MembershipError};
use crate::message::Message;
use crate::state_machine::StateMachine;
use crate::storage::{DurableState, Record};

#[cfg(doc)]
use super::Replica;

/// Identifies one [`Output::Persist`] batch. Tokens increase by one per batch.
pub type PersistToken = u64;

/// Shorthand for the message type of a state machine.
pub type MessageOf<S> = Message<<S as StateMachine>::Command, <S as StateMachine>::Output>;
/// Shorthand for the output type of a state machine.
pub type OutputOf<S> = Output<<S as StateMachine>::Command, <S as StateMachine>::Output>;
/// Shorthand for the record type of a state machine.
pub type RecordOf<S> = Record<<S as StateMachine>::Command, <S as StateMachine>::Output>;
/// Shorthand for the durable state type of a state machine.
pub type DurableStateOf<S> =
    DurableState<<S as StateMachine>::Command, <S as StateMachine>::Output>;

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<C, O> {
    /// Send `message` to replica `to` (best effort; loss is tolerated).
    Send {
        /// Destination replica.
        to: NodeId,
        /// The message.
        message: Message<C, O>,
    },
    /// Durably append `records`, in order, then call
    /// [`Replica::persisted`] with `token`. Persist batches must complete in
    /// token order (an append-only log does this naturally). Messages that
    /// depend on these records are withheld until then.
    Persist {
        /// The batch's token.
        token: PersistToken,
        /// The records.
        records: Vec<Record<C, O>>,
    },
    /// The answer to [`Replica::propose`].
    Reply {
        /// The client.
        client: ClientId,
        /// The command's sequence number.
        seq: u64,
        /// The command's output (the original output for a retry).
        result: Result<O, ClientError>,
    },
    /// The answer to [`Replica::read`].
    ReadReply {
        /// The client.
        client: ClientId,
        /// The read's id.
        id: u64,
        /// The query's output.
        result: Result<O, ClientError>,
    },
    /// The answer to [`Replica::change_membership`]: the membership in force
    /// once the change was applied (it governs every later slot), or why not.
    MembershipReply {
        /// The request's id.
        id: u64,
        /// The membership after the change.
        result: Result<Membership, MembershipError>,
    },
}
