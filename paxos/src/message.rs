//! Wire types: commands, log values, snapshots and replica-to-replica messages.
//!
//! Every type here is serde-serialisable (the network layer sends them as
//! MessagePack). Any field of a received message may be arbitrary; the replica
//! ignores messages that make no sense instead of panicking.

use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, ClientId, NodeId, Slot};
use crate::membership::{Membership, MembershipChange};
use crate::session::Session;

/// A client command: the operation plus its exactly-once identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command<C> {
    /// The client's session id.
    pub client: ClientId,
    /// The client's sequence number, starting at 1 and increasing by one per
    /// new command. A retry reuses the sequence number.
    pub seq: u64,
    /// The state machine command.
    pub op: C,
}

/// One element of a slot's batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry<C> {
    /// A client command.
    Command(Command<C>),
    /// A linearizable read marker: when `origin` applies it, it answers the
    /// read `(client, id)` it holds locally.
    Read {
        /// The replica that holds the query.
        origin: NodeId,
        /// The reading client.
        client: ClientId,
        /// The client's read id.
        id: u64,
    },
    /// A membership change, always alone in its slot. It governs the slots after its
    /// own and is checked when applied; `origin` answers the request `id` it holds.
    Reconfigure {
        /// The replica that holds the request.
        origin: NodeId,
        /// The request's id at `origin`.
        id: u64,
        /// The change.
        change: MembershipChange,
    },
}

/// Whether a value holds a membership change.
pub(crate) fn holds_change<C>(value: &[Entry<C>]) -> bool {
    value.iter().any(|e| matches!(e, Entry::Reconfigure { .. }))
}

/// The value of one slot: a batch of entries. An empty batch is a no-op
/// (used by a new leader to fill holes).
pub type Value<C> = Vec<Entry<C>>;

/// A snapshot of the replicated state: the state machine, the session table
/// and the last slot it includes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<O> {
    /// The last slot whose effects are included.
    pub slot: Slot,
    /// The state machine's serialised state. Encoded as MessagePack bin (a copy), not
    /// as an array of integers (a call per byte, for megabytes); an array still decodes.
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
    /// The client sessions at `slot`.
    pub sessions: Vec<(ClientId, Session<O>)>,
    /// The membership in force after `slot`. Empty in snapshots written before
    /// membership changes existed: the bootstrap members apply then.
    #[serde(default)]
    pub membership: Membership,
}

/// An accepted (or known chosen) value reported in a promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromisedEntry<C> {
    /// The slot.
    pub slot: Slot,
    /// The ballot at which the value was accepted.
    pub ballot: Ballot,
    /// The value.
    pub value: Value<C>,
    /// Whether the sender knows the value is chosen.
    pub chosen: bool,
}

/// A message between replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message<C, O> {
    /// Pre-vote: would the receiver promise `ballot` now? Sent before a real
    /// election so that a replica that cannot win (e.g. partially connected)
    /// never raises ballots and disrupts a working leader.
    PreVote {
        /// The ballot the sender would use.
        ballot: Ballot,
    },
    /// The receiver of a [`Message::PreVote`] would promise `ballot`.
    PreVoteGranted {
        /// The pre-vote's ballot.
        ballot: Ballot,
    },
    /// Phase 1a: a candidate asks for a promise for all slots from `from`.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// First slot the candidate does not know to be chosen.
        from: Slot,
        /// Set when the leader of this ballot handed its leadership over to the
        /// candidate: a follower of that leader may promise at once instead of
        /// waiting out the leader's lease (the leader gave the lease up).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handover: Option<Ballot>,
    },
    /// Phase 1b: the acceptor promises `ballot` (sent only once durable).
    Promise {
        /// The promised ballot.
        ballot: Ballot,
        /// Accepted values for slots `>= from`.
        entries: Vec<PromisedEntry<C>>,
        /// The acceptor's snapshot slot: all slots up to it are chosen.
        snapshot_slot: Slot,
    },
    /// The receiver's ballot is stale; the sender has promised `ballot`.
    Nack {
        /// The sender's promised ballot.
        ballot: Ballot,
    },
    /// Phase 2a: accept `value` at `slot`.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The batch.
        value: Value<C>,
        /// All slots up to `commit` are chosen (leader's knowledge).
        commit: Slot,
    },
    /// Phase 2b: the acceptor accepted `slot` at `ballot` (sent only once durable).
    Accepted {
        /// The accepted ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
    },
    /// Leader liveness and lease round; also carries the commit index.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The heartbeat round number.
        round: u64,
        /// All slots up to `commit` are chosen.
        commit: Slot,
    },
    /// A follower acknowledges heartbeat `round` of `ballot`.
    HeartbeatAck {
        /// The leader's ballot.
        ballot: Ballot,
        /// The acknowledged round.
        round: u64,
        /// The follower's decided slot: how far it has caught up (the leader
        /// promotes a learner, or hands its leadership over, only to a node close
        /// to its own log).
        #[serde(default)]
        decided: Slot,
    },
    /// The leader announces its commit index. Sent when the last slot in
    /// flight is chosen; while others are in flight, Accepts carry the index.
    Commit {
        /// The leader's ballot.
        ballot: Ballot,
        /// All slots up to `commit` are chosen.
        commit: Slot,
    },
    /// A follower forwards client entries to the leader.
    Forward {
        /// The entries.
        entries: Vec<Entry<C>>,
    },
    /// Ask for the chosen values from slot `from` on.
    CatchUpRequest {
        /// First slot wanted.
        from: Slot,
    },
    /// Chosen values.
    CatchUp {
        /// `(slot, value)` pairs, all chosen.
        entries: Vec<(Slot, Value<C>)>,
    },
    /// A snapshot, sent when the wanted slots were truncated, or asked for with a
    /// catch-up request from slot 0 by a joining node that knows no membership yet.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot<O>,
    },
    /// The leader of `ballot` hands its leadership to the receiver: start an
    /// election now (leadership transfer, or the leader was removed).
    TimeoutNow {
        /// The sender's leader ballot.
        ballot: Ballot,
    },
    /// The receiver was removed from the cluster (the sender has its id among the
    /// retired ones): it must stop.
    Removed,
}

/// Slots and commit indexes at or above this are treated as malformed.
pub const MAX_SLOT: Slot = 1 << 62;

/// Ballot rounds at or above this are treated as malformed (so that a
/// replica can always pick a higher round without overflow).
pub const MAX_ROUND: u64 = 1 << 62;

impl<C, O> Message<C, O> {
    /// Whether every slot number and ballot round in the message is plausible
    /// (below [`MAX_SLOT`] and [`MAX_ROUND`]). Replicas drop implausible
    /// messages instead of acting on them.
    pub fn is_well_formed(&self) -> bool {
        let ok = |s: Slot| s < MAX_SLOT;
        let b = |b: &Ballot| b.round < MAX_ROUND;
        match self {
            Message::Forward { .. } | Message::Removed => true,
            Message::PreVote { ballot }
            | Message::TimeoutNow { ballot }
            | Message::PreVoteGranted { ballot }
            | Message::Nack { ballot }
            | Message::HeartbeatAck { ballot, .. } => b(ballot),
            Message::Prepare {
                ballot,
                from,
                handover,
            } => b(ballot) && ok(*from) && handover.as_ref().is_none_or(b),
            Message::Promise {
                ballot,
                entries,
                snapshot_slot,
            } => {
                b(ballot)
                    && ok(*snapshot_slot)
                    && entries.iter().all(|e| ok(e.slot) && b(&e.ballot))
            }
            Message::Accept {
                ballot,
                slot,
                commit,
                ..
            } => b(ballot) && ok(*slot) && ok(*commit),
            Message::Accepted { ballot, slot } => b(ballot) && ok(*slot),
            Message::Heartbeat { ballot, commit, .. } | Message::Commit { ballot, commit } => {
                b(ballot) && ok(*commit)
            }
            Message::CatchUpRequest { from } => ok(*from),
            Message::CatchUp { entries } => entries.iter().all(|(s, _)| ok(*s)),
            Message::InstallSnapshot { snapshot } => ok(snapshot.slot),
        }
    }
}
