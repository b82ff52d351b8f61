//! Piece storage: a torrent's files on disk, written only with verified pieces, and a
//! record of progress that survives crashes.
//!
//! A [`PieceStore`] owns the data files of one torrent below a download directory (at
//! [`Torrent::output_path`]) and a resume file and a journal in a state directory. It
//!
//! * creates the files (or the whole tree) at their full length when opened, with their
//!   blocks reserved where the file system can (so that a full disk shows at the start;
//!   elsewhere they are sparse, and blocks are allocated as pieces arrive);
//! * writes a piece only after it matched the torrent's BLAKE3 hash
//!   ([`PieceStore::write_piece`]), at its offsets, across files where it spans several;
//! * verifies a piece again when it is read to be served ([`PieceStore::read_piece`]),
//!   unless it was checked a short while ago and its files have changed only by this
//!   store's own writes since, and drops it with [`StorageError::PieceLost`] if its
//!   bytes changed on disk;
//! * saves which pieces are verified at each [`PieceStore::checkpoint`]: data files are
//!   fdatasynced first, then the resume file is replaced atomically. A piece is trusted
//!   after a restart only if a checkpoint recorded it, so a crash, a `kill -9` or a power
//!   cut never makes a piece whose bytes did not reach the disk count as held.
//!
//! Memory stays bounded: a write holds the caller's piece, a read or a re-hash one piece
//! buffer; files are never read whole. At most [`StoreOptions::max_open_files`] files are
//! open at once. File I/O is blocking and positional, so the store is `Send + Sync`:
//! reads, writes and checkpoints may come from several threads (call it from
//! `spawn_blocking` or a dedicated thread in an async runtime).
//!
//! # What is trusted after a restart
//!
//! [`PieceStore::open`] sorts every piece into one of three kinds:
//!
//! * **trusted**: set in a valid resume file, and every file it touches has the length
//!   and modification time recorded there (a modification time that differs is accepted
//!   only when the journal shows this store wrote to that file after the checkpoint).
//!   Not re-hashed: a trusted piece is verified when it is first read.
//! * **uncertain**: its bytes may be on disk (they lie in files that existed before the
//!   open) and either the journal says it was written after the last checkpoint, or the
//!   resume file claimed it but its files changed, or there is no usable resume file at
//!   all. Re-hashed; kept if intact.
//! * **absent**: everything else; downloaded.
//!
//! A resume file that is damaged, of another torrent or of another version is ignored
//! with a warning ([`ResumeStatus::Ignored`]), and everything on disk is re-verified.
//! Every open ends with a checkpoint, so the next open trusts what this one verified.
//!
//! # State files
//!
//! In the state directory, named after the torrent's info hash in hexadecimal and the
//! download directory (`<stem>` is `<info hash>-<16 hexadecimal digits of the BLAKE3
//! hash of the download directory's canonical path>`), so that one directory can hold the
//! state of many torrents, and of one torrent downloaded into several directories:
//!
//! * `<stem>.lock`, held locked (an operating-system lock, `flock`, released when the
//!   process ends however it ends) while the store is open, holding the process id. The
//!   download directory has a lock of its own, `.bytetorrent-<info hash>.lock`, so that
//!   processes with different state directories never write the same files either. A
//!   second open of a locked store fails with [`StorageError::Busy`], naming the process.
//!   Both files are removed when the store is dropped.
//!
//! * `<stem>.resume`, the resume file, replaced atomically through
//!   `<stem>.resume.tmp` (temporary file, fsync, rename, fsync of the directory). A
//!   resume file of older versions, `<info hash>.resume` (with its journal), is renamed
//!   to the new name by the first open that finds none of its own:
//!
//!   | offset | size | content |
//!   |-------:|-----:|---------|
//!   | 0 | 8 | magic [`RESUME_MAGIC`], ASCII `BTRESUME` |
//!   | 8 | 2 | format version, big-endian: [`RESUME_VERSION`] = 1 |
//!   | 10 | 4 | body length `n`, big-endian |
//!   | 14 | `n` | body: a MessagePack map, keys `info_hash` (bin, 32 bytes), `have` (a bitfield: array `[piece count, bin]`, see [`tracker::bitfield`]), `files` (array, one map per file in torrent order: `len` (uint) and `mtime` (nil, or array `[seconds, nanoseconds]` since the Unix epoch)) |
//!   | 14 + `n` | 32 | BLAKE3 of bytes `0 .. 14 + n` |
//!
//!   `have` lists the pieces verified and fdatasynced when it was written; `files` the
//!   data files' lengths and modification times after that sync.
//!
//! * `<stem>.written`, the journal of pieces written since the last checkpoint: one
//!   8-byte record per piece (index, `u32` little-endian, then the first 4 bytes of the
//!   keyed BLAKE3 hash of those 4 bytes, keyed with the info hash), appended before the
//!   piece's bytes are written, not synced, emptied after each checkpoint. It tells the
//!   next open which pieces to re-hash; losing records (in a power cut) costs downloads,
//!   never correctness.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use peer::storage::PieceStore;
//! use tracker::torrent::{FileEntry, Fingerprint, Info, Torrent, MIN_PIECE_LENGTH};
//!
//! let data = vec![9u8; 40_000];
//! let pieces = data
//!     .chunks(MIN_PIECE_LENGTH as usize)
//!     .flat_map(|p| *blake3::hash(p).as_bytes())
//!     .collect();
//! let info = Info {
//!     name: "nines.bin".into(),
//!     piece_length: MIN_PIECE_LENGTH,
//!     files: vec![FileEntry { path: vec![], length: 40_000 }],
//!     pieces,
//! };
//! let ca = Fingerprint::from_bytes([1; 32]);
//! let torrent = Arc::new(
//!     Torrent::new(info, vec!["192.0.2.1:7000".parse().unwrap()], ca, 0, None).unwrap(),
//! );
//! let dir = tempfile::tempdir().unwrap();
//! let (downloads, state) = (dir.path().join("downloads"), dir.path().join("state"));
//!
//! let (store, report) = PieceStore::open(torrent.clone(), &downloads, &state).unwrap();
//! assert_eq!(report.trusted, 0);
//! for (i, piece) in data.chunks(MIN_PIECE_LENGTH as usize).enumerate() {
//!     store.write_piece(i as u32, piece).unwrap();
//! }
//! assert!(store.write_piece(0, &[0; 16_384]).is_err(), "corrupt data is refused");
//! store.checkpoint().unwrap();
//! assert!(store.is_complete());
//! drop(store);
//!
//! let (store, report) = PieceStore::open(torrent, &downloads, &state).unwrap();
//! assert_eq!((report.trusted, report.reverified_ok), (3, 0));
//! assert_eq!(store.read_piece(2).unwrap(), &data[2 * 16_384..]);
//! assert_eq!(std::fs::read(downloads.join("nines.bin")).unwrap(), data);
//! ```

mod checked;
mod error;
mod files;
mod journal;
mod lock;
mod open;
mod policy;
pub(crate) mod resume;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use tracker::Bitfield;
use tracker::torrent::Torrent;

pub use error::StorageError;
pub use open::{HashProgress, OpenReport, ResumeStatus, StoreOptions};
pub use policy::CheckpointPolicy;
pub use resume::{RESUME_MAGIC, RESUME_VERSION};

use checked::Checked;
use files::{Created, DataFiles, ReadFailure};
use journal::Journal;
use resume::{FileStamp, Resume};

/// The data files of one torrent and the record of which pieces they hold verified.
///
/// See the [module docs](self). Open with [`PieceStore::open`] (downloading, or resuming
/// a download) or [`PieceStore::open_existing`] (seeding files that are already
/// complete on disk).
#[derive(Debug)]
pub struct PieceStore {
    torrent: Arc<Torrent>,
    files: DataFiles,
    journal: Journal,
    resume_path: PathBuf,
    /// Piece writes hold it shared; a checkpoint holds it exclusively, so that it sees
    /// no write half done.
    gate: RwLock<()>,
    /// Held by each piece write from the first to the last look at its files' versions,
    /// so that what changed in between is this write alone (see `checked`). It also
    /// keeps the store's writes from contending for a file's lock in the kernel, where
    /// concurrent writers of one file spin (2 % of a downloading peer's CPU).
    writes: Mutex<()>,
    state: Mutex<State>,
    /// Reads that hashed the piece, and reads that trusted an earlier check.
    reads_hashed: AtomicU64,
    reads_trusted: AtomicU64,
    /// Held while the store is open: its state files and its data files are this
    /// process's alone.
    _locks: Vec<lock::FileLock>,
    /// The files and directories the open created.
    created: Created,
}

/// What changes as pieces come and go.
#[derive(Debug)]
struct State {
    /// Pieces verified (and written).
    have: Bitfield,
    /// Files written since the last checkpoint, which it must sync.
    dirty: BTreeSet<usize>,
    /// Every file's stamp as of its last sync (or the open).
    stamps: Vec<FileStamp>,
    /// Changes to `have` since the last checkpoint.
    unsaved: u32,
    /// Which pieces need no hash when read.
    checked: Checked,
}

/// How reads of pieces were verified, since the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadCounts {
    /// Reads that hashed the piece.
    pub hashed: u64,
    /// Reads that trusted an earlier check (see [`PieceStore::read_piece`]).
    pub trusted: u64,
}

impl PieceStore {
    /// Opens the store of `torrent` below `download_root`, with its state in `state_dir`
    /// (both created if missing), with default [`StoreOptions`].
    ///
    /// Creates the torrent's files (and directories) that are missing, sets every file to
    /// its length, trusts the pieces of a valid resume file and re-hashes those that are
    /// uncertain (see the [module docs](self)), then checkpoints. Fails when a path the
    /// torrent needs is a directory, a symbolic link or a special file, or on any
    /// input/output error; then the files and directories it created are removed again,
    /// and nothing that existed before is deleted.
    pub fn open(
        torrent: Arc<Torrent>,
        download_root: &Path,
        state_dir: &Path,
    ) -> Result<(PieceStore, OpenReport), StorageError> {
        Self::open_with(
            torrent,
            download_root,
            state_dir,
            &StoreOptions::default(),
            &mut |_| {},
        )
    }

    /// Opens the store of files that already exist, for seeding: creates and resizes
    /// nothing (a missing file or one of the wrong length is an error, so the user's data
    /// is never altered), ignores any resume file and verifies every piece by hashing it,
    /// calling `progress` after each piece.
    pub fn open_existing(
        torrent: Arc<Torrent>,
        download_root: &Path,
        state_dir: &Path,
        progress: &mut dyn FnMut(HashProgress),
    ) -> Result<(PieceStore, OpenReport), StorageError> {
        let options = StoreOptions {
            verify_all: true,
            must_exist: true,
            ..StoreOptions::default()
        };
        Self::open_with(torrent, download_root, state_dir, &options, progress)
    }

    /// The torrent.
    pub fn torrent(&self) -> &Arc<Torrent> {
        &self.torrent
    }

    /// Where the resume file is (see the [module docs](self)).
    pub fn resume_path(&self) -> &Path {
        &self.resume_path
    }

    /// Where file number `file` of the torrent is; `None` if there is no such file.
    pub fn file_path(&self, file: usize) -> Option<&Path> {
        (file < self.files.len()).then(|| self.files.path(file))
    }

    /// The pieces held: verified when written or at open, and not found lost since.
    pub fn have(&self) -> Bitfield {
        self.state().have.clone()
    }

    /// How many pieces are held.
    pub fn held(&self) -> u32 {
        self.state().have.count()
    }

    /// Whether piece `piece` is held.
    pub fn has(&self, piece: u32) -> bool {
        self.state().have.get(piece)
    }

    /// Whether every piece is held.
    pub fn is_complete(&self) -> bool {
        self.state().have.is_full()
    }

    /// Whether file number `file` is complete: every piece with bytes in it is held (an
    /// empty file is always complete). False if there is no such file.
    pub fn file_complete(&self, file: usize) -> bool {
        let Some(range) = self.torrent.file_range(file) else {
            return false;
        };
        if range.is_empty() {
            return true;
        }
        let piece_length = u64::from(self.torrent.piece_length());
        let first = range.start / piece_length;
        let last = (range.end - 1) / piece_length;
        let state = self.state();
        (first..=last).all(|p| u32::try_from(p).is_ok_and(|p| state.have.get(p)))
    }

    /// Changes to the pieces held (verified or dropped) since the last checkpoint: what
    /// [`CheckpointPolicy::is_due`] weighs.
    pub fn unsaved_changes(&self) -> u32 {
        self.state().unsaved
    }

    /// Verifies `data` as piece `piece` and writes it at its offsets.
    ///
    /// Data of the wrong length or hash is refused before anything is written
    /// ([`StorageError::WrongLength`], [`StorageError::HashMismatch`]). Writing a piece
    /// already held does nothing. The piece counts as held once this returns, and survives
    /// a crash once a later [`PieceStore::checkpoint`] returns. On an input/output error
    /// (a full disk, say) the piece is not held, and may be written again.
    pub fn write_piece(&self, piece: u32, data: &[u8]) -> Result<(), StorageError> {
        self.write_piece_parts(piece, &[data])
    }

    /// [`write_piece`](Self::write_piece) for a piece held in several buffers, in order
    /// (as it arrived from the network), so it need not be copied into one first.
    pub fn write_piece_parts<B: AsRef<[u8]>>(
        &self,
        piece: u32,
        parts: &[B],
    ) -> Result<(), StorageError> {
        let expected = self.piece_len(piece)?;
        let got: u64 = parts.iter().map(|p| p.as_ref().len() as u64).sum();
        if got != expected {
            return Err(StorageError::WrongLength {
                piece,
                expected,
                got,
            });
        }
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part.as_ref());
        }
        let matches = self
            .torrent
            .piece_hash(piece)
            .is_some_and(|hash| hasher.finalize() == blake3::Hash::from_bytes(hash));
        if !matches {
            return Err(StorageError::HashMismatch { piece });
        }
        if self.has(piece) {
            return Ok(());
        }
        let spans = self.torrent.piece_spans(piece).unwrap_or_default();
        let _shared = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        let _alone = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let before = self.files.versions(&spans);
        self.state().checked.writing(&before);
        // Recorded first: if the write is cut short, the next open re-hashes the piece.
        let written = self
            .journal
            .record(piece)
            .and_then(|()| self.files.write_spans_parts(&spans, parts));
        let after = self.files.versions(&spans);
        let mut state = self.state();
        let done = written.is_ok().then_some(piece);
        state
            .checked
            .wrote(done, &before, &after, started, Instant::now());
        written?;
        state.dirty.extend(spans.iter().map(|s| s.file));
        if state.have.set(piece) {
            state.unsaved = state.unsaved.saturating_add(1);
        }
        Ok(())
    }

    /// How reads of pieces were verified so far.
    pub fn read_counts(&self) -> ReadCounts {
        ReadCounts {
            hashed: self.reads_hashed.load(Ordering::Relaxed),
            trusted: self.reads_trusted.load(Ordering::Relaxed),
        }
    }

    /// Reads piece `piece` to serve it, verified.
    ///
    /// It is hashed unless it was checked (written, or hashed when read) less than
    /// [`StoreOptions::reverify_after`] ago and its files have changed only by this
    /// store's writes since (its device, inode, length, and modification and change
    /// times show no other change); [`read_counts`](Self::read_counts) says how often
    /// each happened.
    ///
    /// [`StorageError::NotHave`] if it is not held. [`StorageError::PieceLost`] if its bytes
    /// changed on disk or its file was truncated or removed: the piece is then no longer
    /// held (stop advertising it, tell the tracker) and a checkpoint records that at once.
    /// Holds one piece in memory.
    pub fn read_piece(&self, piece: u32) -> Result<Vec<u8>, StorageError> {
        let len = self.piece_len(piece)?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        self.read_piece_into(piece, &mut buf)?;
        Ok(buf)
    }

    /// [`PieceStore::read_piece`] into `buf`, which must be exactly the piece's length
    /// (so that servers can reuse their buffers).
    pub fn read_piece_into(&self, piece: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let len = self.piece_len(piece)?;
        if buf.len() as u64 != len {
            return Err(StorageError::WrongLength {
                piece,
                expected: len,
                got: buf.len() as u64,
            });
        }
        if !self.has(piece) {
            return Err(StorageError::NotHave { piece });
        }
        let spans = self.torrent.piece_spans(piece).unwrap_or_default();
        let started = Instant::now();
        let before = self.files.versions(&spans);
        let read = self.files.read_spans(&spans, buf);
        let after = self.files.versions(&spans);
        if read.is_ok() && self.state().checked.trusts(piece, &after, Instant::now()) {
            self.reads_trusted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.reads_hashed.fetch_add(1, Ordering::Relaxed);
        let (path, what) = match read {
            Ok(()) if self.torrent.piece_matches(piece, buf) => {
                let now = Instant::now();
                self.state()
                    .checked
                    .read_matched(piece, &before, &after, started, now);
                return Ok(());
            }
            Ok(()) => (
                spans
                    .first()
                    .map(|s| self.files.path(s.file).to_path_buf())
                    .unwrap_or_default(),
                "its bytes no longer match the torrent's hash: the file was changed".to_owned(),
            ),
            Err(ReadFailure::Lost { path, what }) => (path, what),
            Err(ReadFailure::Other(e)) => return Err(e),
        };
        let dropped = {
            let mut state = self.state();
            let dropped = state.have.clear(piece);
            state.checked.forget(piece);
            if dropped {
                state.unsaved = state.unsaved.saturating_add(1);
            }
            dropped
        };
        tracing::warn!(piece, path = %path.display(), %what, "a held piece was lost on disk");
        if dropped && let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "could not record a lost piece in the resume file");
        }
        Err(StorageError::PieceLost { piece, path, what })
    }

    /// Makes the pieces held so far survive a crash: fdatasyncs every data file written
    /// since the last checkpoint, then replaces the resume file atomically and empties the
    /// journal. Waits for writes in progress; writes wait for it.
    ///
    /// When to call it is the caller's choice: see [`CheckpointPolicy`]. On error nothing
    /// is lost: the previous resume file stays, and the next checkpoint retries.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let dirty = std::mem::take(&mut self.state().dirty);
        let mut synced = Vec::with_capacity(dirty.len());
        for &file in &dirty {
            match self.files.sync(file) {
                Ok(stamp) => synced.push((file, stamp)),
                Err(e) => {
                    self.state().dirty.extend(dirty);
                    return Err(e);
                }
            }
        }
        let (resume, unsaved) = {
            let mut state = self.state();
            for (file, stamp) in synced {
                if let Some(slot) = state.stamps.get_mut(file) {
                    *slot = stamp;
                }
            }
            let resume = Resume {
                info_hash: self.torrent.info_hash(),
                have: state.have.clone(),
                files: state.stamps.clone(),
            };
            (resume, state.unsaved)
        };
        resume::store(&self.resume_path, &resume)?;
        // Only now are the journal's records redundant. Should this fail, they only
        // cause extra re-hashing.
        self.journal.reset()?;
        let mut state = self.state();
        state.unsaved = state.unsaved.saturating_sub(unsaved);
        Ok(())
    }

    /// Undoes the open of a download that never held a piece (its swarm could not be
    /// joined, say): removes the data files and directories the open created (nothing
    /// that existed before) and this torrent's state files. Returns false, removing
    /// nothing, if a piece is held. Call it last: the store is unusable afterwards.
    pub fn remove_if_empty(&self) -> bool {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        if self.state().have.count() > 0 {
            return false;
        }
        self.created.remove();
        let _ = std::fs::remove_file(&self.resume_path);
        let _ = std::fs::remove_file(self.resume_path.with_extension("written"));
        true
    }

    fn piece_len(&self, piece: u32) -> Result<u64, StorageError> {
        self.torrent
            .piece_len(piece)
            .ok_or(StorageError::NoSuchPiece {
                piece,
                count: self.torrent.piece_count(),
            })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
