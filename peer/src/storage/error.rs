//! What can go wrong in piece storage, said so that a person knows which file, what failed
//! and what to do.

use std::io;
use std::path::{Path, PathBuf};

/// Why a piece-storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A piece index past the end of the torrent.
    #[error("there is no piece {piece}: the torrent has {count} pieces")]
    NoSuchPiece {
        /// The index asked for.
        piece: u32,
        /// Pieces in the torrent.
        count: u32,
    },
    /// Data offered for a piece has the wrong length; nothing was written.
    #[error(
        "data for piece {piece} is {got} bytes but the piece is {expected} bytes; nothing was \
         written"
    )]
    WrongLength {
        /// The piece.
        piece: u32,
        /// The piece's length.
        expected: u64,
        /// The length offered.
        got: u64,
    },
    /// Data offered for a piece does not match the torrent's BLAKE3 hash; nothing was
    /// written. Whoever sent it sent bad data.
    #[error(
        "data for piece {piece} does not match the torrent's hash; nothing was written \
         (the sender gave corrupt or forged data)"
    )]
    HashMismatch {
        /// The piece.
        piece: u32,
    },
    /// A piece that is not held was asked for.
    #[error("piece {piece} is not held here")]
    NotHave {
        /// The piece.
        piece: u32,
    },
    /// A piece that was verified is no longer intact on disk: its bytes were changed, the
    /// file was truncated or removed. The piece is no longer counted as held; stop
    /// advertising it and tell the tracker.
    #[error(
        "piece {piece} is no longer intact on disk ({}: {what}); it is no longer counted as \
         held and will have to be downloaded again",
        path.display()
    )]
    PieceLost {
        /// The piece.
        piece: u32,
        /// The file where the damage was found (the piece's first file when the hash
        /// alone says it changed).
        path: PathBuf,
        /// What was found, for people.
        what: String,
    },
    /// The disk (or the user's quota) is full.
    #[error("disk full {action} {}: free some space and try again", path.display())]
    DiskFull {
        /// What was being done ("writing", "creating", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The operating system refused access.
    #[error(
        "permission denied {action} {}: check the owner and mode of the file and of its \
         directory",
        path.display()
    )]
    PermissionDenied {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// A directory is where the torrent needs a file.
    #[error(
        "{} is a directory, but the torrent needs a file there: move it away or choose \
         another download directory",
        path.display()
    )]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file (or something else) is where the torrent needs a directory.
    #[error(
        "{} is not a directory, but the torrent needs a directory there: move it away or \
         choose another download directory",
        path.display()
    )]
    NotDirectory {
        /// The path.
        path: PathBuf,
    },
    /// A symbolic link was found below the download directory. Links are never followed,
    /// so that a torrent cannot be made to write outside its directory.
    #[error(
        "{} is a symbolic link; links below the download directory are not followed: \
         replace it with a real file or directory",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something that is neither a regular file nor a directory (a device, socket or
    /// pipe) is where the torrent needs a file.
    #[error(
        "{} is not a regular file (a device, socket or pipe?); move it away or choose \
         another download directory",
        path.display()
    )]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// A file that must already exist (when seeding existing files) is missing or has the
    /// wrong length.
    #[error(
        "{} {found}, but the torrent says {expected} bytes: is this the data the torrent \
         was made from, and was it changed since?",
        path.display()
    )]
    ExistingFileMismatch {
        /// The file.
        path: PathBuf,
        /// What was found, for people ("is missing", "has 10 bytes").
        found: String,
        /// The length the torrent gives.
        expected: u64,
    },
    /// Another process is downloading or seeding the same torrent with the same state or
    /// into the same files: it holds the lock file `lock`.
    #[error(
        "{torrent} is already being downloaded by {} (it holds {}): wait for it to finish, \
         or stop it, before starting another",
        match pid { Some(pid) => format!("process {pid}"), None => "another process".to_owned() },
        lock.display()
    )]
    Busy {
        /// The torrent, for people.
        torrent: String,
        /// The process holding the lock, if it could be read.
        pid: Option<u32>,
        /// The lock file.
        lock: PathBuf,
    },
    /// Any other input/output error.
    #[error("{action} {} failed: {error}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        error: io::Error,
    },
}

impl StorageError {
    /// Classifies an input/output error on `path` during `action` ("writing", "reading",
    /// "creating", ...), so that common causes get a message a person understands.
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> StorageError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StorageError::DiskFull { action, path }
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StorageError::PermissionDenied { action, path }
            }
            io::ErrorKind::IsADirectory => StorageError::IsDirectory { path },
            io::ErrorKind::NotADirectory => StorageError::NotDirectory { path },
            _ => StorageError::Io {
                action,
                path,
                error: source,
            },
        }
    }

    /// A closure for `map_err` that classifies with [`StorageError::io`].
    pub(crate) fn io_with(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        move |source| StorageError::io(action, path, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_io_errors_get_plain_messages() {
        let path = Path::new("/data/big.iso");
        let full = StorageError::io("writing", path, io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(
            full.to_string(),
            "disk full writing /data/big.iso: free some space and try again"
        );
        let denied = StorageError::io(
            "creating",
            path,
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(
            denied
                .to_string()
                .starts_with("permission denied creating /data/big.iso")
        );
        let dir = StorageError::io(
            "opening",
            path,
            io::Error::from(io::ErrorKind::IsADirectory),
        );
        assert!(dir.to_string().contains("/data/big.iso is a directory"));
        let other = StorageError::io("reading", path, io::Error::other("bad sector"));
        assert_eq!(
            other.to_string(),
            "reading /data/big.iso failed: bad sector"
        );
    }
}
