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
//!
//! # Layout
//!
//! * `events.rs`: the vocabulary between the parts: the `Input`s the driver task
//!   consumes and the channel an answer travels back on. The other files depend on it,
//!   not on each other.
//! * `node.rs`: [`start`] and the [`Node`] handle (deliver messages, server-side
//!   proposals and reads, metrics).
//! * `driver.rs`: the driver task that owns the replica: handles inputs, ticks, and
//!   carries out the replica's outputs.
//! * `storage_thread.rs`: the thread that appends persist batches (group commit).
//! * `membership.rs`: what membership requests through a [`Node`] answer
//!   ([`ClusterView`], [`ChangeError`]).
//! * `client.rs`: [`Client`] sessions with retries and deadlines.
//! * `network.rs`: the [`Network`] trait a transport implements.
//! * `config.rs`: [`RuntimeConfig`]. `metrics.rs`: [`Metrics`].
//! * `clock.rs`: the [`Clock`] the replica's time comes from ([`MonotonicClock`]);
//!   `controlled_clock.rs`: a clock tests skew and step ([`ControlledClock`]).

mod client;
mod clock;
mod config;
mod controlled_clock;
mod driver;
mod events;
mod membership;
mod metrics;
mod network;
mod node;
mod storage_thread;

pub use client::{Client, ClientConfig, RequestError};
pub use clock::{Clock, MonotonicClock};
pub use config::RuntimeConfig;
pub use controlled_clock::{ClockBug, ClockSetting, ControlledClock};
pub use membership::{ChangeError, ClusterView};
pub use metrics::{LatencySummary, Metrics};
pub use network::Network;
pub use node::{Node, StartError, start};
