//! The user's replicated state machine.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ballot::Slot;
use crate::error::RestoreError;

/// A deterministic state machine replicated by Paxos.
///
/// `apply` must be deterministic: the same sequence of commands must produce
/// the same outputs and state on every replica. The replica applies each
/// chosen command exactly once per client sequence number (duplicates are
/// filtered by the session table before `apply` is called).
pub trait StateMachine {
    /// A command that changes the state (replicated through the log).
    type Command: Clone + Debug + Serialize + DeserializeOwned;
    /// The result of a command or query.
    type Output: Clone + Debug + Serialize + DeserializeOwned;
    /// A read-only query. Queries never travel between replicas, so they
    /// need not be serialisable.
    type Query: Clone + Debug;

    /// Applies a chosen command at log position `slot` and returns its output.
    fn apply(&mut self, slot: Slot, command: &Self::Command) -> Self::Output;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &Self::Query) -> Self::Output;
    /// Serialises the whole state.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state by a snapshot produced by [`snapshot`](Self::snapshot).
    /// The bytes may come from another replica; they must not cause a panic.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;
}
