//! Error types.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ballot::NodeId;

/// The configuration is inconsistent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid paxos config: {0}")]
pub struct ConfigError(pub String);

/// A state machine could not restore a snapshot.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("cannot restore snapshot: {0}")]
pub struct RestoreError(pub String);

/// Why a client request was not executed by this replica.
#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientError {
    /// This replica does not know a leader to forward to; try another replica
    /// (the hint, if any).
    #[error("not the leader (hint: {hint:?})")]
    NotLeader {
        /// The replica believed to be leader, if known.
        hint: Option<NodeId>,
    },
    /// The request's sequence number is older than the session's latest
    /// command: the client has moved on and the original output is gone.
    #[error("stale request: the session has already executed a later command")]
    Stale,
}

/// A storage back-end failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O error.
    #[error("storage I/O error: {0}")]
    Io(std::io::Error),
    /// Stored data could not be decoded.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError::Io(e)
    }
}
