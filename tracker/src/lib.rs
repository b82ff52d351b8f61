//! The ByteTorrent tracker: a cluster of nodes holding the same torrents, swarms and users
//! through Multi-Paxos, serving peers over QUIC and people over HTTP.
//!
//! Layers, by feature:
//! * always: [`torrent`] (the torrent-file format), [`bitfield`] (pieces held) and [`api`]
//!   (the peer-facing protocol's types);
//! * `client`: the tracker client library peers use (fail-over between nodes, exactly-once
//!   writes);
//! * `server` (default): the replicated state machine, the QUIC service, the node runtime,
//!   the HTTP endpoints, the web site ([`web`]) and the `bt-tracker` CLI.
//!
//! A peer depends on this crate with `default-features = false, features = ["client"]`.
//!
//! # Layout
//!
//! Each module has one job:
//!
//! | module | its job |
//! |---|---|
//! | [`torrent`] | the torrent-file format: create, encode, parse, validate |
//! | [`bitfield`] | which pieces a peer holds |
//! | [`api`] | the wire types of the peer-facing and operator protocols, their ALPNs and limits |
//! | `encoding` (private) | the MessagePack form of addresses and digests, shared by every wire type |
//! | `client` | the tracker client peers use: fail-over between nodes, exactly-once writes |
//! | `state` | the replicated state machine: torrents, swarms, users, sessions, snapshots |
//! | `service` | answers each peer and operator request from the replica |
//! | `node` | one node: its configuration, certificates, endpoints and replica, started together |
//! | `admin` | the cluster's certificates and the operator's client |
//! | `cert_files` | the file names of a certificate directory |
//! | `password` (private) | what a password may be; hashing and checking it |
//! | `admission` (private) | whether a torrent may be published to this cluster |
//! | `http`, `web` | `/health` and `/metrics`; the web site and its JSON API |
//! | `dev` | a local cluster in one process, for trying things out and tests |
//! | `cli` | what each `bt-tracker` command does, behind the binary's argument parsing |
//!
//! Where a new peer-facing request goes, in order:
//! 1. its variant in [`api::Request`] and its answer in `api::Response` (`api.rs`);
//! 2. if it reads or changes the replicated state, a `state::Query` or `state::Command`
//!    variant (`state/mod.rs`) with its `state::Output`, applied in `state/machine.rs`
//!    (`TrackerState::query` or `apply`), with unit tests in `state/tests/`;
//! 3. its dispatch in `Service::answer` (`service.rs`): checks, then a read under the
//!    lease or a proposal through the client session;
//! 4. a method on `client::TrackerClient` (`client.rs`) for peers to call;
//! 5. its line in the table of `PROTOCOL.md` section 6, its schema, and a test vector
//!    (`print_vectors` in `tests/tests/protocol_vectors.rs` makes one; that test fails
//!    until it is there). A new variant is a new protocol version (PROTOCOL.md 1.1).
//!
//! An operator request goes the same way through `api::AdminRequest`,
//! `Service::answer_admin` and [`admin::AdminClient`](crate::admin), then `cli::operator`.
//!
//! ```
//! use tracker::torrent::{Torrent, create};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let root = dir.path().join("album");
//! std::fs::create_dir_all(root.join("disc 1")).unwrap();
//! std::fs::write(root.join("cover.jpg"), vec![1u8; 50_000]).unwrap();
//! std::fs::write(root.join("disc 1").join("track.flac"), vec![2u8; 30_000]).unwrap();
//!
//! let ca = certs::Fingerprint::from_bytes([9; 32]);
//! let trackers = vec!["192.0.2.10:7000".parse().unwrap()];
//! let torrent = create::from_path(&root, 16 * 1024, trackers, ca, Some("hi".into())).unwrap();
//! assert_eq!(torrent.total_length(), 80_000);
//! assert_eq!(torrent.piece_count(), 5);
//!
//! let bytes = torrent.encode();
//! let parsed = Torrent::parse(&bytes).unwrap();
//! assert_eq!(parsed.info_hash(), torrent.info_hash());
//! assert_eq!(parsed.display_path(1).unwrap(), "album/disc 1/track.flac");
//! let downloads = std::path::Path::new("/srv/downloads");
//! assert_eq!(
//!     parsed.output_path(downloads, 0).unwrap(),
//!     downloads.join("album").join("cover.jpg"),
//! );
//! ```

pub mod api;
pub mod bitfield;
#[cfg(feature = "client")]
pub mod client;
mod encoding;
pub mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod torrent;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
mod admission;
#[cfg(feature = "server")]
pub mod cert_files;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod dev;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod node;
#[cfg(feature = "server")]
mod password;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod web;

pub use bitfield::Bitfield;
