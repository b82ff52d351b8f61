//! The replicated key-value example service, built on `paxos` (with its `runtime`
//! feature) and `transport` (with its `paxos` feature).
//!
//! Three `kv-server` processes replicate a [`Kv`] store through Multi-Paxos over QUIC
//! with mutual TLS; `kv-load` drives them as a client and measures throughput and
//! latency. The multi-process tests in `tests/tests/` and the benchmarks use the same
//! binaries.
//!
//! # Layout
//!
//! * `state_machine.rs`: [`Kv`], the replicated state machine, and its commands,
//!   queries and outputs.
//! * `protocol.rs`: the client wire protocol ([`ALPN_KV`], [`KvRequest`],
//!   [`KvResponse`]).
//! * `server.rs`: [`serve_clients`], which turns client requests into proposals and
//!   reads on the local Paxos node.
//! * `client.rs`: [`KvClient`], with fail-over between servers and exactly-once puts.
//! * `admin.rs`: the operator protocol ([`ALPN_KV_ADMIN`]): membership changes and
//!   leadership transfer, served on the paxos endpoint, and its client [`KvAdmin`].
//! * `admin_protocol.rs`: that protocol's messages ([`KvAdminRequest`],
//!   [`KvAdminResponse`]), apart so that the fuzz targets can compile them alone.
//! * The binaries are `src/bin/kv-server.rs` and `src/bin/kv-load.rs`.

mod admin;
mod admin_protocol;
mod client;
mod protocol;
mod server;
mod state_machine;

pub use admin::{
    ADMIN_NAME, ALPN_KV_ADMIN, KvAdmin, KvAdminError, KvAdminRequest, KvAdminResponse, is_operator,
    serve_admin_connection,
};
pub use client::{KvClient, KvClientError, ca_fingerprint, client_endpoint, client_endpoint_at};
pub use protocol::{ALPN_KV, KvRequest, KvResponse};
pub use server::serve_clients;
pub use state_machine::{Kv, KvCommand, KvOutput, KvQuery};
