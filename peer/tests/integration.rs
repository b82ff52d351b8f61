//! The integration tests of the peer library and the `bt` CLI, one module per area in one test
//! binary: compiling and linking a binary per file was most of the time a fresh `./test` took.
//!
//! One area: `cargo test --release -p peer --test integration <area>::`.

mod cli;
mod common;
mod dashboard_browser;
mod exclusive;
mod faults;
mod resume;
mod storage;
mod swarm;
mod swarm_sim;
mod wire;
