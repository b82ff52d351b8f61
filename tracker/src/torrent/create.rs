//! Making a torrent from a file or a directory on disk.

use std::fs::{self, File};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    FileEntry, Fingerprint, Info, MAX_FILES, MAX_PATH_DEPTH, PIECE_HASH_LEN, Torrent, TorrentError,
    validate,
};

/// Bytes read from a file at a time while hashing.
const READ_BUFFER_LEN: usize = 1 << 20;

/// Why a torrent could not be made from a path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A symbolic link was found; torrents hold only regular files.
    #[error(
        "{} is a symbolic link; a torrent holds only regular files and directories \
         (replace the link with a copy of its target, or move it away)",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something that is neither a regular file nor a directory was found.
    #[error(
        "{} is neither a regular file nor a directory (a device, socket or pipe?) and \
         cannot be put in a torrent",
        path.display()
    )]
    NotRegular {
        /// What was found.
        path: PathBuf,
    },
    /// A name is not UTF-8, which torrent files require.
    #[error("the name of {} is not valid UTF-8, which torrent files require", path.display())]
    NonUtf8 {
        /// The file or directory.
        path: PathBuf,
    },
    /// The path has no final component to name the torrent after.
    #[error(
        "cannot name a torrent after {}: give the path of a file or directory with a name",
        path.display()
    )]
    NoName {
        /// The path given.
        path: PathBuf,
    },
    /// A file's length changed while it was hashed.
    #[error(
        "{} changed while it was being hashed; try again once nothing is writing to it",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The directory tree breaks a limit of the format (too many files, too deep, a name
    /// that is not allowed), or the parameters are invalid.
    #[error(transparent)]
    Invalid(#[from] TorrentError),
}

/// Makes a torrent of a single file or of a directory tree, hashing its content.
///
/// The torrent is named after the last component of `path`. A directory is walked in
/// sorted order of names; every regular file below it is included, empty directories are
/// not represented, and a symbolic link or special file anywhere is an error (nothing is
/// skipped silently). Files are read in 1 MiB blocks, never whole; pieces span file
/// boundaries. The creation time is now.
pub fn from_path(
    path: &Path,
    piece_length: u32,
    trackers: Vec<SocketAddr>,
    tracker_ca: Fingerprint,
    comment: Option<String>,
) -> Result<Torrent, CreateError> {
    from_path_with_progress(
        path,
        piece_length,
        trackers,
        tracker_ca,
        comment,
        &mut |_, _| {},
    )
}

/// [`from_path`], calling `progress(bytes_hashed, bytes_total)` after every block read, so
/// a command-line tool can show a progress bar while a large tree is hashed.
pub fn from_path_with_progress(
    path: &Path,
    piece_length: u32,
    trackers: Vec<SocketAddr>,
    tracker_ca: Fingerprint,
    comment: Option<String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Torrent, CreateError> {
    // Fail on bad parameters before reading anything.
    validate::piece_length(piece_length)?;
    validate::trackers(&trackers)?;
    validate::comment(comment.as_deref())?;

    let io_error = |error| CreateError::Io {
        path: path.to_path_buf(),
        error,
    };
    let metadata = fs::symlink_metadata(path).map_err(io_error)?;
    let name = match path.file_name() {
        Some(name) => name.to_os_string(),
        None => fs::canonicalize(path)
            .map_err(io_error)?
            .file_name()
            .ok_or_else(|| CreateError::NoName {
                path: path.to_path_buf(),
            })?
            .to_os_string(),
    };
    let name = name.into_string().map_err(|_| CreateError::NonUtf8 {
        path: path.to_path_buf(),
    })?;
    validate::name(&name)?;

    let mut files = Vec::new();
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Err(CreateError::Symlink {
            path: path.to_path_buf(),
        });
    } else if file_type.is_file() {
        files.push((path.to_path_buf(), Vec::new(), metadata.len()));
    } else if file_type.is_dir() {
        walk(path, &mut Vec::new(), &mut files)?;
    } else {
        return Err(CreateError::NotRegular {
            path: path.to_path_buf(),
        });
    }

    let mut hasher = PieceHasher::new(piece_length);
    let mut buffer = vec![0u8; READ_BUFFER_LEN];
    let total: u64 = files.iter().map(|(_, _, length)| *length).sum();
    let mut done = 0u64;
    progress(0, total);
    for (file_path, _, length) in &files {
        hash_file(file_path, *length, &mut buffer, &mut hasher, &mut |read| {
            done += read;
            progress(done, total);
        })?;
    }
    let info = Info {
        name,
        piece_length,
        files: files
            .into_iter()
            .map(|(_, path, length)| FileEntry { path, length })
            .collect(),
        pieces: hasher.finish(),
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    Ok(Torrent::new(info, trackers, tracker_ca, created, comment)?)
}

/// Adds the regular files below `dir` (whose path below the torrent's root is
/// `relative`) to `files`, in sorted order.
fn walk(
    dir: &Path,
    relative: &mut Vec<String>,
    files: &mut Vec<(PathBuf, Vec<String>, u64)>,
) -> Result<(), CreateError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| CreateError::Io { path, error }
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io_error(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(dir))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::NonUtf8 { path: path.clone() })?;
        let file_type = entry.file_type().map_err(io_error(&path))?;
        relative.push(name);
        if file_type.is_symlink() {
            return Err(CreateError::Symlink { path });
        } else if file_type.is_dir() {
            if relative.len() >= MAX_PATH_DEPTH {
                return Err(TorrentError::UnsafePath {
                    path: path.display().to_string(),
                    reason: format!(
                        "the directory tree is deeper than the limit of {MAX_PATH_DEPTH} levels"
                    ),
                }
                .into());
            }
            walk(&path, relative, files)?;
        } else if file_type.is_file() {
            if files.len() >= MAX_FILES {
                return Err(TorrentError::TooManyFiles {
                    count: files.len() + 1,
                    max: MAX_FILES,
                }
                .into());
            }
            let length = entry.metadata().map_err(io_error(&path))?.len();
            files.push((path, relative.clone(), length));
        } else {
            return Err(CreateError::NotRegular { path });
        }
        relative.pop();
    }
    Ok(())
}

/// Feeds exactly `length` bytes of a file to the hasher; fails if the file is shorter or
/// longer now.
fn hash_file(
    path: &Path,
    length: u64,
    buffer: &mut [u8],
    hasher: &mut PieceHasher,
    read_progress: &mut dyn FnMut(u64),
) -> Result<(), CreateError> {
    let io_error = |error| CreateError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut left = length;
    loop {
        let want = usize::try_from(left).map_or(buffer.len(), |left| left.min(buffer.len()));
        // With `left == 0`, read one more byte to see whether the file grew.
        let want = want.max(1);
        let read = match file.read(&mut buffer[..want]) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        match (left, read) {
            (0, 0) => return Ok(()),
            (0, _) | (_, 0) => {
                return Err(CreateError::Changed {
                    path: path.to_path_buf(),
                });
            }
            _ => {
                hasher.update(&buffer[..read]);
                left -= read as u64;
                read_progress(read as u64);
            }
        }
    }
}

/// Hashes a stream of bytes piece by piece.
struct PieceHasher {
    piece_length: u64,
    hasher: blake3::Hasher,
    /// Bytes of the current piece hashed so far.
    in_piece: u64,
    /// The hashes of the finished pieces.
    pieces: Vec<u8>,
}

impl PieceHasher {
    fn new(piece_length: u32) -> Self {
        PieceHasher {
            piece_length: u64::from(piece_length),
            hasher: blake3::Hasher::new(),
            in_piece: 0,
            pieces: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.piece_length - self.in_piece;
            let take = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            let (now, later) = data.split_at(take);
            self.hasher.update(now);
            self.in_piece += take as u64;
            data = later;
            if self.in_piece == self.piece_length {
                self.end_piece();
            }
        }
    }

    fn end_piece(&mut self) {
        self.pieces
            .extend_from_slice(self.hasher.finalize().as_bytes());
        self.hasher.reset();
        self.in_piece = 0;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.in_piece > 0 {
            self.end_piece();
        }
        debug_assert!(self.pieces.len().is_multiple_of(PIECE_HASH_LEN));
        self.pieces
    }
}
