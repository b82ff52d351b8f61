//! The integration tests of the tracker (API, CLI, cluster, membership, torrent files, web site), one
//! module per area in one test binary: compiling and linking a binary per file was most of the
//! time a fresh `./test` took.
//!
//! One area: `cargo test --release -p tracker --test integration <area>::`.

mod api;
mod browser;
mod cli;
mod cluster;
mod common;
mod membership;
mod torrent;
mod web;
mod web_browser;
