//! The ByteTorrent peer: the swarm engine that trades pieces with a few neighbours, the
//! piece storage that writes only verified pieces and resumes after a crash, and (in later
//! modules) the runtime and the `bt` CLI.

pub mod dashboard;
#[cfg(feature = "cli")]
pub mod demo;
pub mod runtime;
pub mod status_file;
pub mod storage;
pub mod swarm;
pub mod wire;
