//! Opening a store: preparing the files, deciding what to trust, re-hashing what is
//! uncertain.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tracker::Bitfield;
use tracker::torrent::Torrent;

use super::checked::Checked;
use super::files::{Created, DataFiles, Prepared, ReadFailure, create_root};
use super::journal::Journal;
use super::lock::FileLock;
use super::resume::{self, Loaded};
use super::{PieceStore, State, StorageError};

/// How to open a [`PieceStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Ignore any resume file and re-hash every piece whose bytes are on disk.
    ///
    /// Default false: a valid resume file is trusted, which makes restarting a large
    /// download take no time. Set it to check data that may have been altered.
    pub verify_all: bool,
    /// Use the files as they are: create, extend or truncate nothing, and fail if one is
    /// missing or has the wrong length.
    ///
    /// Default false: a download creates its files. Seeding sets it, so that the user's
    /// own files are never altered by a torrent that does not match them.
    pub must_exist: bool,
    /// Most data files kept open at once.
    ///
    /// Default 64: enough that a piece spanning many small files and the few pieces in
    /// flight rarely reopen a file, far below the common limit of 1024 descriptors per
    /// process (which the network also needs), whatever the number of files.
    pub max_open_files: usize,
    /// How long a check of a piece against its hash counts when the piece is read to be
    /// served, if its files have changed only by this store's writes since.
    ///
    /// Default 10 minutes: a piece served many times is hashed about once, and a fault
    /// of the disk under an unchanged file is still found within minutes. Zero hashes
    /// every read.
    pub reverify_after: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            verify_all: false,
            must_exist: false,
            max_open_files: 64,
            reverify_after: std::time::Duration::from_secs(600),
        }
    }
}

/// Progress of the hashing done while opening, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashProgress {
    /// Pieces hashed so far.
    pub pieces_done: u32,
    /// Pieces to hash in all.
    pub pieces_total: u32,
    /// Bytes hashed so far.
    pub bytes_done: u64,
    /// Bytes to hash in all.
    pub bytes_total: u64,
}

/// What opening a store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Pieces taken from the resume file without re-hashing.
    pub trusted: u32,
    /// Uncertain pieces that were re-hashed and found intact (now held).
    pub reverified_ok: u32,
    /// Uncertain pieces that were re-hashed and found wrong or incomplete (to download).
    pub reverified_bad: u32,
    /// Which pieces were re-hashed (the uncertain ones, intact or not).
    pub rehashed: Bitfield,
    /// What became of the resume file.
    pub resume: ResumeStatus,
}

/// What became of the resume file when a store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumeStatus {
    /// There was none (a new download, or state that was removed).
    Missing,
    /// It was valid and used.
    Loaded,
    /// It was damaged, of another torrent or version: ignored, and everything on disk
    /// was re-verified.
    Ignored {
        /// Why, for people.
        reason: String,
    },
    /// Not read: [`StoreOptions::verify_all`] was set.
    NotUsed,
}

impl PieceStore {
    /// Opens a store with `options`, calling `progress` after each piece re-hashed.
    ///
    /// See [`PieceStore::open`] and [`PieceStore::open_existing`].
    pub fn open_with(
        torrent: Arc<Torrent>,
        download_root: &Path,
        state_dir: &Path,
        options: &StoreOptions,
        progress: &mut dyn FnMut(HashProgress),
    ) -> Result<(PieceStore, OpenReport), StorageError> {
        fs::create_dir_all(state_dir).map_err(StorageError::io_with("creating", state_dir))?;
        let described = format!("torrent {} ({})", torrent.name(), torrent.info_hash());
        // The state is kept per torrent and download directory, and locked first: another
        // process with this state must not see, let alone remove, our files.
        let stem = state_stem(&torrent, download_root);
        let state_lock = FileLock::acquire(&state_dir.join(format!("{stem}.lock")), &described)?;
        // What this open creates, from the download directory on, so that a download that
        // never held a piece (or an open that fails) removes exactly that again. The
        // output lock's file is in it: it must go before the directory can.
        let mut created = Created::default();
        if !options.must_exist {
            create_root(download_root, &mut created)?;
        }
        let output_lock = lock_output(&torrent, download_root, options, &described)
            .inspect_err(|_| created.remove())?;
        if let Some(lock) = &output_lock {
            created.record_file(lock.path().to_path_buf());
        }
        let resume_path = state_dir.join(format!("{stem}.resume"));
        let journal_path = state_dir.join(format!("{stem}.written"));
        adopt_legacy_state(&torrent, state_dir, &resume_path, &journal_path);
        // A temporary file left by a crash in the middle of a checkpoint.
        let _ = fs::remove_file(resume::tmp_path(&resume_path));
        let (loaded, status) = if options.verify_all {
            (None, ResumeStatus::NotUsed)
        } else {
            match resume::load(&resume_path, &torrent) {
                Loaded::Missing => (None, ResumeStatus::Missing),
                Loaded::Valid(r) => (Some(r), ResumeStatus::Loaded),
                Loaded::Invalid(reason) => {
                    tracing::warn!(
                        path = %resume_path.display(),
                        %reason,
                        "ignoring the resume file; everything on disk will be verified again"
                    );
                    (None, ResumeStatus::Ignored { reason })
                }
            }
        };
        let (journal, written) =
            Journal::open(&journal_path, torrent.info_hash(), torrent.piece_count())
                .inspect_err(|_| created.remove())?;
        let files = DataFiles::new(&torrent, download_root, options.max_open_files)
            .inspect_err(|_| created.remove())?;
        let (prepared, data_created) = files
            .prepare(&torrent, download_root, options.must_exist)
            .inspect_err(|_| created.remove())?;
        created.append(data_created);

        let plan = plan(
            &torrent,
            &prepared,
            loaded.as_ref().map(|r| (&r.have, &r.files[..])),
            &written,
        );
        let mut state = State {
            have: plan.trusted.clone(),
            dirty: prepared
                .iter()
                .enumerate()
                .filter(|(_, p)| p.changed)
                .map(|(file, _)| file)
                .collect(),
            stamps: prepared.iter().map(|p| p.stamp).collect(),
            unsaved: 0,
            checked: Checked::new(
                prepared.len(),
                torrent.piece_count(),
                options.reverify_after,
            ),
        };
        let (ok, bad) = match rehash(&torrent, &files, &plan.uncertain, &mut state, progress) {
            Ok(counts) => counts,
            Err(e) => {
                created.remove();
                return Err(e);
            }
        };
        let report = OpenReport {
            trusted: plan.trusted.count(),
            reverified_ok: ok,
            reverified_bad: bad,
            rehashed: plan.uncertain,
            resume: status,
        };
        let store = PieceStore {
            torrent,
            files,
            journal,
            resume_path,
            gate: RwLock::new(()),
            writes: Mutex::new(()),
            state: Mutex::new(state),
            reads_hashed: AtomicU64::new(0),
            reads_trusted: AtomicU64::new(0),
            _locks: [Some(state_lock), output_lock]
                .into_iter()
                .flatten()
                .collect(),
            created,
        };
        // What was verified now is trusted next time; the journal's records are used up.
        if let Err(e) = store.checkpoint() {
            store.created.remove();
            return Err(e);
        }
        tracing::info!(
            torrent = %store.torrent.name(),
            trusted = report.trusted,
            reverified_ok = report.reverified_ok,
            reverified_bad = report.reverified_bad,
            resume = ?report.resume,
            "piece store opened"
        );
        Ok((store, report))
    }
}

/// The name of a torrent's state files for one download directory: the info hash, then
/// 16 hexadecimal digits of the BLAKE3 hash of the directory's canonical path, so that
/// one state directory can hold downloads of one torrent into several directories.
fn state_stem(torrent: &Torrent, download_root: &Path) -> String {
    let root = download_root
        .canonicalize()
        .or_else(|_| std::path::absolute(download_root))
        .unwrap_or_else(|_| download_root.to_path_buf());
    let digest = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
    format!("{}-{}", torrent.info_hash(), &digest[..16])
}

/// Locks the torrent's files in `download_root` against other processes, whatever their
/// state directory, with `.bytetorrent-<info hash>.lock` there. When seeding files that
/// exist, a directory this process may not write in is used without the lock.
fn lock_output(
    torrent: &Torrent,
    download_root: &Path,
    options: &StoreOptions,
    described: &str,
) -> Result<Option<FileLock>, StorageError> {
    let path = download_root.join(format!(".bytetorrent-{}.lock", torrent.info_hash()));
    match FileLock::acquire(&path, described) {
        Ok(lock) => Ok(Some(lock)),
        Err(StorageError::PermissionDenied { .. }) if options.must_exist => {
            tracing::debug!(path = %path.display(), "cannot lock the files to seed: read-only");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Takes over the state files of older versions, named by the info hash alone, if this
/// download directory has none yet. They may be of another download directory: that is
/// safe, since a piece is trusted only if its files have the length and modification
/// time the resume file recorded; anything else is re-hashed.
fn adopt_legacy_state(torrent: &Torrent, state_dir: &Path, resume_path: &Path, journal: &Path) {
    let legacy = state_dir.join(format!("{}.resume", torrent.info_hash()));
    if resume_path.exists() || !legacy.exists() {
        return;
    }
    // A rename: if two processes race for it, one gets it and the other starts afresh.
    if fs::rename(&legacy, resume_path).is_ok() {
        let _ = fs::rename(
            state_dir.join(format!("{}.written", torrent.info_hash())),
            journal,
        );
        tracing::info!(from = %legacy.display(), to = %resume_path.display(), "resume file renamed");
    }
}

/// Which pieces to trust and which to re-hash.
#[derive(Debug)]
struct Plan {
    trusted: Bitfield,
    uncertain: Bitfield,
}

/// Sorts the pieces (see the module docs): `resume` is the valid resume file's pieces and
/// file stamps, if any; `written` the journal's pieces.
fn plan(
    torrent: &Torrent,
    prepared: &[Prepared],
    resume: Option<(&Bitfield, &[resume::FileStamp])>,
    written: &Bitfield,
) -> Plan {
    let count = torrent.piece_count();
    // Files the journal says this store wrote to after the checkpoint: a changed
    // modification time is explained for them.
    let mut touched = vec![false; prepared.len()];
    for piece in written.ones() {
        for span in torrent.piece_spans(piece).unwrap_or_default() {
            if let Some(t) = touched.get_mut(span.file) {
                *t = true;
            }
        }
    }
    let file_trusted: Vec<bool> = match resume {
        Some((_, stamps)) => torrent
            .files()
            .iter()
            .zip(prepared)
            .zip(stamps)
            .zip(&touched)
            .map(|(((entry, now), then), &touched)| {
                now.existed_len == Some(entry.length)
                    && then.len == entry.length
                    && (then.mtime == now.stamp.mtime || touched)
            })
            .collect(),
        None => vec![false; prepared.len()],
    };
    let mut trusted = Bitfield::new(count);
    let mut uncertain = Bitfield::new(count);
    for piece in 0..count {
        let spans = torrent.piece_spans(piece).unwrap_or_default();
        let claimed = resume.is_some_and(|(have, _)| have.get(piece));
        if claimed
            && spans
                .iter()
                .all(|s| file_trusted.get(s.file) == Some(&true))
        {
            trusted.set(piece);
            continue;
        }
        let on_disk = !spans.is_empty()
            && spans.iter().all(|s| {
                prepared
                    .get(s.file)
                    .and_then(|p| p.existed_len)
                    .is_some_and(|len| s.offset.saturating_add(s.len) <= len)
            });
        if on_disk && (resume.is_none() || claimed || written.get(piece)) {
            uncertain.set(piece);
        }
    }
    Plan { trusted, uncertain }
}

/// Re-hashes the `uncertain` pieces, one buffer at a time, adding the intact ones to
/// `state` (their files to be synced by the next checkpoint); returns how many were intact
/// and how many not.
fn rehash(
    torrent: &Torrent,
    files: &DataFiles,
    uncertain: &Bitfield,
    state: &mut State,
    progress: &mut dyn FnMut(HashProgress),
) -> Result<(u32, u32), StorageError> {
    let mut done = HashProgress {
        pieces_done: 0,
        pieces_total: uncertain.count(),
        bytes_done: 0,
        bytes_total: uncertain
            .ones()
            .map(|p| torrent.piece_len(p).unwrap_or(0))
            .sum(),
    };
    let (mut ok, mut bad) = (0, 0);
    let mut buf = Vec::new();
    for piece in uncertain.ones() {
        let len = torrent.piece_len(piece).unwrap_or(0);
        buf.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
        let spans = torrent.piece_spans(piece).unwrap_or_default();
        let started = Instant::now();
        let before = files.versions(&spans);
        let intact = match files.read_spans(&spans, &mut buf) {
            Ok(()) => torrent.piece_matches(piece, &buf),
            Err(ReadFailure::Lost { .. }) => false,
            Err(ReadFailure::Other(e)) => return Err(e),
        };
        if intact {
            // Checked now, like a read: serving it soon needs no second hash.
            let after = files.versions(&spans);
            state
                .checked
                .read_matched(piece, &before, &after, started, Instant::now());
            state.have.set(piece);
            state.dirty.extend(spans.iter().map(|s| s.file));
            ok += 1;
        } else {
            bad += 1;
        }
        done.pieces_done += 1;
        done.bytes_done += len;
        progress(done);
    }
    Ok((ok, bad))
}
