//! A tokio runtime that drives a [`Replica`](crate::Replica): timers, storage on its own thread, a
//! [`Network`] to reach the other replicas, and client handles with timeouts.
//!
//! Enabled by the `runtime` feature. The replica stays sans-IO; this module is the only
//! place with clocks, tasks and threads.
//!
//! ```text
//!   network ──deliver()──►┐                     ┌──► Network::send
//!   Client::propose ─────►│  driver task        │
//!   Client::read ────────►│  (owns the Replica) ├──► storage thread ──persisted──┐
//!   tick every 10 ms ────►│                     │   (group commit)              │
//!                         └◄────────────────────┴───────────────────────────────┘
//! ```

mod client;
mod driver;
mod metrics;

pub use client::{Client, ClientConfig, RequestError};
pub use driver::{Node, RuntimeConfig, StartError, start};
pub use metrics::{LatencySummary, Metrics};

use crate::ballot::NodeId;

/// How the runtime reaches the other replicas.
///
/// `send` must not block: queue the message or drop it. Paxos tolerates loss,
/// duplication and reordering, so a best-effort transport is correct; a fast one is what
/// makes it quick. Messages arriving from other replicas are handed to
/// [`Node::deliver`].
pub trait Network<M>: Send + Sync + 'static {
    /// Sends `message` to replica `to`, best effort.
    fn send(&self, to: NodeId, message: M);
}
