//! The ByteTorrent peer: the swarm engine that trades pieces with a few neighbours, the
//! piece storage that writes only verified pieces and resumes after a crash, the runtime
//! that drives both over QUIC, and the `bt` CLI.
//!
//! # Layout
//!
//! * [`swarm`]: the sans-IO swarm core: which neighbours to keep, which pieces to ask whom
//!   for, when to tell the tracker. Pure state (it imports no transport, tokio or runtime);
//!   inputs are method calls with the time, outputs are [`swarm::Action`]s. **A new
//!   download or neighbour policy goes here**, with a unit test and, for swarm-wide
//!   behaviour, a case in `tests/swarm_sim.rs`.
//! * [`storage`]: the piece store: verified writes, crash-safe resume, the file lock, and
//!   when to checkpoint ([`storage::CheckpointPolicy`]). **A new on-disk concern goes
//!   here.**
//! * [`runtime`]: the running peer: one QUIC endpoint, one task per torrent driving the
//!   swarm core (`runtime/torrent/`, one file per concern: events, dialing, downloading,
//!   tracker calls, checkpoints, status), serving pieces to neighbours. **A new effect of
//!   a core action, or a new event from the network, goes here.**
//! * [`wire`]: the peer-to-peer messages (`bytetorrent/peer/2`). **A new message goes
//!   here and in PROTOCOL.md.**
//! * [`dashboard`]: the local web page of a running peer.
//! * [`status_file`]: how `bt status` sees other `bt` processes.
//! * [`cli`]: what each `bt` command does, after `src/bin/bt.rs` has parsed its arguments
//!   (feature `cli`). **A new subcommand goes here**, with its flags in `bt.rs`.
//!
//! # Example
//!
//! Make a torrent of a file and open its piece store, as a seeder does:
//!
//! ```
//! use std::sync::Arc;
//!
//! use certs::Fingerprint;
//! use peer::storage::PieceStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("hello.txt");
//! std::fs::write(&file, b"hello, swarm")?;
//! let torrent = tracker::torrent::create::from_path(
//!     &file,
//!     16 << 10,
//!     vec!["127.0.0.1:7070".parse()?],
//!     Fingerprint::from_bytes([7; 32]),
//!     None,
//! )?;
//! let state = dir.path().join("state");
//! std::fs::create_dir(&state)?;
//! let (store, _report) =
//!     PieceStore::open_existing(Arc::new(torrent), dir.path(), &state, &mut |_| {})?;
//! assert!(store.is_complete());
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "cli")]
pub mod cli;
pub mod dashboard;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod runtime;
pub mod status_file;
pub mod storage;
pub mod swarm;
pub mod wire;
