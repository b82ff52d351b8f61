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
pub mod format;
pub mod torrent;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
mod admission;
#[cfg(feature = "server")]
pub mod dev;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod node;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod web;

pub use bitfield::Bitfield;
