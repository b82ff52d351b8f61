//! The write-ahead log's error type.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a write-ahead log operation failed.
#[derive(Debug, Error)]
pub enum WalError {
    /// An I/O call failed. After a failed write or `fdatasync` the [`Wal`]
    /// refuses further work ([`WalError::Poisoned`]): the kernel may have
    /// dropped the dirty pages, so the only safe way on is to reopen the log,
    /// which re-verifies what is really on disk.
    ///
    /// [`Wal`]: super::Wal
    #[error("wal I/O error: cannot {op} {}: {error}", path.display())]
    Io {
        /// What was being done ("open", "write", "fdatasync", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error (in the message; not a `source()`, so that a chain of
        /// causes names it once).
        error: io::Error,
    },
    /// Stored log data is damaged in a way that a crash cannot explain: a bad
    /// record followed by valid data, a bad record in a segment that is not the
    /// last one, a bad segment header, or a gap in the record indexes. The log
    /// is not opened; nothing is skipped or repaired.
    #[error("corrupt wal segment {} at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset in `file` where the damage starts (the start of the bad
        /// record, or 0 for a bad segment header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The snapshot file is damaged. Snapshots are replaced by an atomic
    /// rename, so a crash never leaves a partial one: this is real corruption.
    #[error("corrupt wal snapshot {}: {reason}", file.display())]
    CorruptSnapshot {
        /// The snapshot file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// [`Wal::append`](super::Wal::append) was given a record larger than
    /// [`WalOptions::max_record_bytes`](super::WalOptions::max_record_bytes).
    #[error("wal record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// [`Wal::save_snapshot`](super::Wal::save_snapshot) was asked to cover a
    /// record index that was never appended.
    #[error("snapshot index {index} is beyond the last appended index {last}")]
    SnapshotBeyondLog {
        /// The requested `last_included_index`.
        index: u64,
        /// The last appended index.
        last: u64,
    },
    /// [`Wal::save_snapshot`](super::Wal::save_snapshot) was asked to save a
    /// snapshot older than the current one.
    #[error("snapshot index {index} is below the current snapshot's index {current}")]
    SnapshotRegression {
        /// The requested `last_included_index`.
        index: u64,
        /// The current snapshot's index.
        current: u64,
    },
    /// No index is left: [`Wal::append`](super::Wal::append) refuses a record with the
    /// index 2^63 - 1 or more, and opening refuses a log whose next record would have
    /// 2^63 (its active segment would start there, which is corruption). No real log
    /// gets near: a record a nanosecond takes 292 years.
    #[error("wal is full: record index {index} is past the largest index a log can have")]
    LogFull {
        /// The index the record would have had.
        index: u64,
    },
    /// The [`WalOptions`](super::WalOptions) are unusable.
    #[error("invalid wal options: {0}")]
    InvalidOptions(&'static str),
    /// An earlier write or `fdatasync` failed; reopen the log to go on.
    #[error("wal is unusable after an earlier I/O failure; reopen it")]
    Poisoned,
}

/// Maps an `io::Error` to [`WalError::Io`] for `op` on `path`.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError {
    move |source| WalError::Io {
        op,
        path: path.to_path_buf(),
        error: source,
    }
}
