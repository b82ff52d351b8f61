//! The integration tests of the QUIC transport, one module per area in one test binary:
//! compiling and linking a binary per file was most of the time a fresh `./test` took.
//!
//! One area: `cargo test --release -p transport --test integration <area>::`.

mod channel;
mod quic;
mod restart;
