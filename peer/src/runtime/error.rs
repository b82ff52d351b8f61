//! Why a peer or a torrent could not start.

use std::path::PathBuf;

use tracker::client::TrackerError;
use tracker::torrent::InfoHash;

use crate::storage::StorageError;

/// Why a peer or a torrent could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The identity could not be loaded or made.
    #[error("peer identity in {dir}: {error}")]
    Identity {
        /// The state directory.
        dir: PathBuf,
        /// What failed.
        error: certs::CertError,
    },
    /// The endpoint could not be bound.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The torrent's files could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No tracker node answered, or one refused.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// The torrent is already added.
    #[error("torrent {0} is already being downloaded or seeded by this peer")]
    Duplicate(InfoHash),
    /// A state directory problem.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}
