//! A generic Multi-Paxos library: replicate any deterministic state machine
//! across a cluster, with a sans-IO core and a deterministic fault simulator.
//!
//! # The model
//!
//! You implement [`StateMachine`] (apply a command, answer a query, take and
//! restore a snapshot) over any serde command type. Each cluster member runs a
//! [`Replica`], a pure state machine in the style of quinn-proto and raft-rs:
//! it performs no I/O, reads no clock, spawns no thread and uses randomness
//! only from a seed in its [`Config`].
//!
//! **Inputs** (each carries the caller's current time `now`):
//! [`Replica::handle_message`] (a [`Message`] from another replica),
//! [`Replica::tick`] (time passes), [`Replica::propose`] (a client
//! [`Command`]), [`Replica::read`] (a client query), and
//! [`Replica::persisted`] (a persist batch is durable).
//!
//! **Outputs**, drained with [`Replica::poll_output`]: [`Output::Send`]
//! (a message to deliver, best effort), [`Output::Persist`] (records to append
//! durably, identified by a token), [`Output::Reply`] and
//! [`Output::ReadReply`] (answers to clients). Chosen commands are applied to
//! the state machine inside the replica, in log order.
//!
//! **Durability by construction.** Promises and accept acknowledgements are
//! never returned as `Send` outputs directly: the replica holds them until
//! the driver calls [`Replica::persisted`] with the token of the
//! [`Output::Persist`] batch that contains their records. A driver cannot
//! acknowledge before persisting without bypassing the API. Persist batches
//! must be completed in token order (an append-only log does this naturally;
//! one fsync may cover many batches).
//!
//! Storage is behind the [`Storage`] trait: [`MemStorage`] in memory, or
//! [`FileStorage`] on disk (a checksummed, segmented write-ahead log in
//! [`wal`] with group commit, torn-tail recovery and atomic snapshots).
//!
//! # Running it for real
//!
//! The `runtime` feature adds the `runtime` module: a tokio driver with timers, storage
//! on its own thread (one `fdatasync` for every batch queued meanwhile), a
//! `runtime::Network` trait, client sessions (`propose`, `read`) with
//! timeouts and retries, and metrics. The ByteTorrent `transport` crate
//! implements the network over QUIC with mutual TLS (its `paxos` feature,
//! module `transport::paxos_network`); the workspace's `kv-server` binary is a
//! complete three-process example.
//!
//! # The protocol
//!
//! * **Multi-Paxos with a stable leader.** A candidate runs phase 1 once for
//!   every open slot (from its first unknown slot onwards), adopts the
//!   highest-ballot value of each slot, fills holes with no-ops, then commits
//!   each batch in one round trip (phase 2).
//! * **Elections** use timeouts randomised from the seed, in
//!   `[election_timeout, 2 × election_timeout)`, and start with a
//!   **pre-vote**: a replica raises its ballot only after a quorum said it
//!   would promise it. A replica that cannot win (isolated, or partially
//!   connected) therefore never raises ballots and never disturbs the others.
//! * **Leader stickiness and check-quorum.** A replica that heard from a live
//!   leader within `election_timeout` neither starts an election nor promises
//!   another candidate; a leader that has not heard from a quorum for an
//!   election timeout steps down. A leader that learns of a higher ballot
//!   (e.g. from a replica rejoining after a partition) re-runs phase 1 above
//!   it instead of abdicating. Together these keep the quorum-loss,
//!   constrained-election and chained partial-connectivity scenarios of the
//!   OmniPaxos paper live; the simulator exercises all three.
//! * **Batching and pipelining.** Proposals queue at the leader and are packed
//!   up to `max_batch` per slot, with at most `max_inflight` slots undecided.
//!   [`Replica::propose_batch`] hands over a burst of proposals in one step, so
//!   they share a slot even while the pipeline has room (the runtime passes
//!   each drain of its inbox this way).
//! * **Forwarding.** Any replica accepts proposals and forwards them to the
//!   leader it follows; with no known leader it answers
//!   [`ClientError::NotLeader`] so the client tries another replica. The reply
//!   comes from the replica the client asked, when it applies the command.
//! * **Catch-up.** Followers learn the commit index from Accepts and
//!   heartbeats, and from a Commit message the leader sends when its pipeline
//!   drains (not one per chosen slot); a value they accepted at the committing
//!   leader's ballot is known chosen, other slots are fetched from a peer, or a
//!   snapshot is sent when the slots were truncated.
//! * **Snapshots** are taken about every `snapshot_log_len` applied slots, at
//!   staggered slots on different replicas (a leader waits longer), so a quorum
//!   is never stalled by snapshotting at once; the log (in memory and in
//!   storage) is truncated behind them.
//! * **Exactly-once commands.** Every command carries `(client, seq)`; the
//!   session table (part of the replicated state and of snapshots) remembers
//!   each client's latest sequence number and output, so a retry — through any
//!   replica, across leader changes — is applied once and answered with the
//!   original output. A retry reaching the leader while the original is still
//!   queued or in flight under its ballot is not proposed again: the original's
//!   reply answers it. Clients have one command outstanding at a time. Sessions
//!   expire by log position (`session_expiry_slots`), never by a local clock.
//! * **Linearizable reads.** A leader holding a lease answers a read from its
//!   state once it has applied every slot it had proposed when the read
//!   arrived, without writing the log. Without a lease (or on a follower), a
//!   read marker is committed through the log and the query is evaluated when
//!   the marker is applied.
//!
//! # Guarantees
//!
//! **Safety** (always, under any message loss, duplication, reordering,
//! delay, partition, crash and restart, provided storage honours the persist
//! contract): at most one value is chosen per slot; all replicas apply the
//! same commands in the same order; a command acknowledged to a client is
//! never lost and each `(client, seq)` is applied at most once; reads and
//! writes are linearizable (lease reads additionally need the clock
//! assumption below).
//!
//! **Liveness** under partial synchrony: once a majority is connected and
//! messages are delivered within a bound well below `election_timeout`, a
//! leader is elected and commands commit.
//!
//! # Assumptions
//!
//! * Replicas fail by crashing (no Byzantine behaviour). The membership changes
//!   only through the log ([`Replica::change_membership`]; see the README for the
//!   protocol).
//! * **Clock drift, for lease reads only.** A leader's lease starts when it
//!   *sends* a heartbeat round that a quorum acknowledges, and it uses it for
//!   `lease_duration − max_clock_drift` measured on its own clock. A follower
//!   that acknowledged the round refuses to promise any other candidate for
//!   `election_timeout ≥ lease_duration` on its own clock from when it
//!   *received* it, and a restarted replica refuses all promises for one
//!   election timeout. Lease reads are therefore linearizable provided that,
//!   over one lease interval, no two replicas' clocks disagree about elapsed
//!   time by more than `max_clock_drift` (the default, 40 ms of 400 ms, allows
//!   a 5% rate difference). Clocks need not be synchronised, only rate-bounded.
//!   Reads through the log need no clock assumption.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use paxos::{Command, Config, DurableState, Output, Replica, RestoreError, Slot, StateMachine};
//!
//! /// A counter.
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Output = u64;
//!     type Query = ();
//!     fn apply(&mut self, _slot: Slot, add: &u64) -> u64 { self.0 += add; self.0 }
//!     fn query(&self, _: &()) -> u64 { self.0 }
//!     fn snapshot(&self) -> Vec<u8> { self.0.to_le_bytes().to_vec() }
//!     fn restore(&mut self, b: &[u8]) -> Result<(), RestoreError> {
//!         let b: [u8; 8] = b.try_into().map_err(|_| RestoreError("length".into()))?;
//!         self.0 = u64::from_le_bytes(b);
//!         Ok(())
//!     }
//! }
//!
//! // A one-replica cluster; a real driver also delivers `Output::Send`.
//! let config = Config { id: 1, members: vec![1], ..Config::default() };
//! let mut r = Replica::new(config, Counter::default(), DurableState::default(), Duration::ZERO).unwrap();
//! let mut now = Duration::ZERO;
//! let mut answer = None;
//! for step in 0..200u64 {
//!     now += Duration::from_millis(10);
//!     r.tick(now);
//!     if step == 150 {
//!         r.propose(Command { client: 7, seq: 1, op: 5 }, now);
//!     }
//!     while let Some(out) = r.poll_output() {
//!         match out {
//!             // Make the records durable (e.g. append + fsync), then say so.
//!             Output::Persist { token, .. } => r.persisted(token, now),
//!             Output::Reply { result, .. } => answer = Some(result),
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(answer, Some(Ok(5)));
//! ```
//!
//! See `examples/kv.rs` for a replicated key-value store on three replicas.
//!
//! # Testing
//!
//! `tests/simulation.rs` runs 3- and 5-replica clusters in a deterministic
//! discrete-event simulator (message loss, duplication, reordering and delay;
//! symmetric, asymmetric and partial-connectivity partitions; crashes that
//! lose unpersisted data; bounded clock drift; retrying clients) and checks
//! on every seed that all replicas apply the same commands in the same order,
//! that no acknowledged command is lost or applied twice, that the clients'
//! history is linearizable, and that the cluster commits again within a bound
//! after the faults heal. `PAXOS_SEEDS=N` sets the number of seeds (default
//! 10 000 across the configurations); a failure prints `PAXOS_SEED=n`, and
//! setting that variable replays exactly that seed.
//!
//! The `planted-bugs` feature (tests only) adds `PlantedBugs` switches to
//! [`Config`]; `tests/planted_bugs.rs` proves the simulator catches each one.
//!
//! # Not (yet) included
//!
//! Membership changes through the tokio runtime (the sans-IO [`Replica`] has them).
//!
//! # Layout
//!
//! Each module has one job; its own documentation says more.
//!
//! * [`replica`] (`src/replica/`): the sans-IO core, [`Replica`]. Its inputs and
//!   queries are in `mod.rs`, [`Output`] in `output.rs`, client proposals and reads in
//!   `requests.rs`, the three Paxos roles in `acceptor.rs`, `leader.rs` and
//!   `learner.rs`, and the in-memory slot log in `slot_log.rs`.
//! * [`message`]: the wire types between replicas ([`Message`], [`Command`], log
//!   values, snapshots).
//! * [`session`]: the session table that makes retried commands apply once.
//! * [`state_machine`]: the [`StateMachine`] trait you implement.
//! * [`ballot`]: identifiers (nodes, slots, clients, ballots). [`config`]: [`Config`].
//!   [`error`]: the error types.
//! * [`storage`] (`src/storage/`): durability. The [`Storage`] trait and its failure
//!   contract in `mod.rs`, [`Record`] and [`DurableState`] in `durable_state.rs`,
//!   [`MemStorage`] in `memory.rs`, [`FileStorage`] in `file.rs`, and the write-ahead
//!   log it is built on in `wal/` (re-exported as [`wal`]).
//! * `runtime` (`src/runtime/`, feature `runtime`): the tokio driver. The events
//!   between its parts in `events.rs`; `start` and the `Node` handle in `node.rs`; the
//!   driver task in `driver.rs`; the storage thread in `storage_thread.rs`; client
//!   sessions in `client.rs`; the `Network` trait in `network.rs`; settings and
//!   metrics in `config.rs` and `metrics.rs`.
//! * `tests/` (integration tests): the deterministic simulator (`tests/sim/`,
//!   driven by `simulation.rs` and `planted_bugs.rs`), the linearizability checker
//!   (`tests/common/`) and the write-ahead log crash tests (`wal_crash.rs`).

pub mod ballot;
pub mod config;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod membership;
pub mod message;
pub mod replica;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod session;
pub mod state_machine;
pub mod storage;

pub use ballot::{Ballot, ClientId, NodeId, Slot};
pub use config::Config;
#[cfg(feature = "planted-bugs")]
pub use config::PlantedBugs;
pub use error::{ClientError, ConfigError, RestoreError, StorageError};
pub use membership::{Membership, MembershipChange, MembershipError};
pub use message::{Command, Entry, MAX_ROUND, MAX_SLOT, Message, PromisedEntry, Snapshot, Value};
pub use replica::{
    DurableStateOf, MessageOf, Output, OutputOf, PersistToken, RecordOf, Replica, ReplicaError,
};
pub use session::{Session, SessionCheck, Sessions};
pub use state_machine::StateMachine;
pub use storage::{DurableState, FileStorage, MemStorage, Record, Storage, wal};
