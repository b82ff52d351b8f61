//! Deterministic discrete-event simulator for paxos clusters.
//!
//! One seed determines everything: the network (loss, duplication, random
//! delays and therefore reordering, rare stragglers delayed by up to 500 ms),
//! the disks (persist latency; a crash loses every batch not yet durable),
//! the clocks (each replica's clock runs at a fixed rate within ±`drift` of
//! real time, inside the configured `max_clock_drift` bound), the faults
//! (symmetric, asymmetric and partial-connectivity partitions, single
//! crashes, majority power failures, restarts) and the clients (sequential
//! puts and gets on a few keys, retried on timeout through random replicas).
//!
//! Checked on every run:
//! * on every apply, by [`kv::Observer`]: every replica's i-th applied
//!   command is the same `(slot, client, seq)` — hence at most one value per
//!   slot and one order everywhere — and no `(client, seq)` is applied twice;
//! * at the end: every acknowledged put is in the log, all replicas converged
//!   to the same state, and the clients' history is linearizable
//!   (the `linearizability` crate);
//! * liveness: after the faults heal (or under a partial-connectivity
//!   scenario) a probe command commits within `recovery_bound_ms`.
#![allow(dead_code)]

pub mod kv;
pub mod world;
