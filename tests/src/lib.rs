//! The workspace's cross-crate and multi-process tests, and the replicated key-value
//! example service they run.
//!
//! # Layout
//!
//! * `tests/*.rs` (the folder `tests/tests/`): the tests themselves. **A new
//!   multi-process or cross-crate test goes there**, as a new file or beside the
//!   tests of the same subject; it starts real processes through [`cluster`].
//!   `kv_cluster.rs` runs three `kv-server` processes (kill -9, restart, partitions);
//!   `paxos_over_quic.rs` runs Paxos replicas over real QUIC inside one process.
//! * [`kv`] (`src/kv/`): **the replicated key-value example**, a complete service on
//!   `paxos` and `transport`: the state machine, its client protocol, server and
//!   client. Its binaries are `src/bin/kv-server.rs` and `src/bin/kv-load.rs`, which
//!   the benchmarks use as well.
//! * [`cluster`] (`src/cluster.rs`): test support: starts, kills and restarts
//!   `kv-server` processes, with a relay between nodes that can cut the network.
//! * [`nemesis`] (`src/nemesis/`): the Jepsen-style fault harness on real `kv-server`
//!   processes in network namespaces; its binary is `src/bin/nemesis.rs`.
//! * [`demo`] (`src/demo.rs`): **the whole system in one process**: a tracker cluster, a
//!   seeder and leechers on loopback; its binary is `src/bin/bt-demo.rs`
//!   (`cargo run --release --bin bt-demo`). It needs the tracker's server parts and the
//!   peer together, which is why it lives here and not in the peer crate.

pub mod cluster;
pub mod demo;
pub mod kv;
pub mod nemesis;
