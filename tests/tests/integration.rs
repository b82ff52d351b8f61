//! The integration tests of ByteTorrent across crates and processes, one module per area in one
//! test binary: compiling and linking a binary per file was most of the time a fresh `./test`
//! took.
//!
//! One area: `cargo test --release -p tests --test integration <area>::`.

mod kv_cluster;
mod nemesis;
mod paxos_over_quic;
mod protocol_vectors;
