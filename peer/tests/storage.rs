//! Piece storage on real files: round trips, verification, resuming after a clean stop
//! and after `kill -9`, damage on disk, and errors a person can act on.
//!
//! The crash test re-executes this test binary to run the ignored test
//! `storage_writer_process`, which writes pieces in random order and checkpoints now and
//! then, printing `@@WROTE <piece>` after each write and `@@CHECKPOINTED` after each
//! checkpoint. The parent SIGKILLs it at random moments (at start-up, between writes,
//! right as a checkpoint starts, a little after one), reopens the store in-process and
//! checks that every piece covered by a reported checkpoint is trusted without being
//! re-hashed, that every reported write survived (a killed process loses no page cache),
//! that only pieces written since the last checkpoint were re-hashed, and that every held
//! piece has exactly the right bytes in the files. `STORAGE_CRASH_ITERS=N` sets the number
//! of kills (default 30); `STORAGE_CRASH_SEED=n` replays a run (the seed is printed).
//!
//! The memory test likewise re-executes the binary to download, re-verify and serve a
//! 128 MiB file in a fresh process and checks its peak resident memory stays under 64 MiB.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use peer::storage::{OpenReport, PieceStore, ResumeStatus, StorageError};
use tracker::torrent::{FileEntry, Fingerprint, Info, MIN_PIECE_LENGTH, Torrent};

/// SplitMix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Content of `len` bytes derived from `seed`.
fn content(seed: u64, len: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// A torrent named `name` of files `(path, length)` (a single-file torrent when the only
/// path is empty), with content derived from `seed`.
fn torrent(
    name: &str,
    files: &[(&[&str], u64)],
    piece_length: u32,
    seed: u64,
) -> (Arc<Torrent>, Vec<u8>) {
    let total = files.iter().map(|f| f.1).sum();
    let data = content(seed, total);
    let info = Info {
        name: name.into(),
        piece_length,
        files: files
            .iter()
            .map(|(path, length)| FileEntry {
                path: path.iter().map(|c| c.to_string()).collect(),
                length: *length,
            })
            .collect(),
        pieces: data
            .chunks(piece_length as usize)
            .flat_map(|p| *blake3::hash(p).as_bytes())
            .collect(),
    };
    let t = Torrent::new(
        info,
        vec!["192.0.2.1:7000".parse().unwrap()],
        Fingerprint::from_bytes([1; 32]),
        0,
        None,
    )
    .unwrap();
    (Arc::new(t), data)
}

fn piece<'a>(t: &Torrent, data: &'a [u8], i: u32) -> &'a [u8] {
    let r = t.piece_range(i).unwrap();
    &data[r.start as usize..r.end as usize]
}

/// The bytes of piece `i` read straight from the files, not through the store.
fn on_disk(t: &Torrent, root: &Path, i: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for span in t.piece_spans(i).unwrap() {
        let mut buf = vec![0; span.len as usize];
        let f = fs::File::open(t.output_path(root, span.file).unwrap()).unwrap();
        match f.read_exact_at(&mut buf, span.offset) {
            Ok(()) => out.extend_from_slice(&buf),
            Err(_) => return Vec::new(),
        }
    }
    out
}

/// The concatenated content of all files.
fn all_files(t: &Torrent, root: &Path) -> Vec<u8> {
    (0..t.files().len())
        .flat_map(|f| fs::read(t.output_path(root, f).unwrap()).unwrap())
        .collect()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    Dirs {
        root: tmp.path().join("downloads"),
        state: tmp.path().join("state"),
        _tmp: tmp,
    }
}

fn open(t: &Arc<Torrent>, d: &Dirs) -> (PieceStore, OpenReport) {
    PieceStore::open(t.clone(), &d.root, &d.state).unwrap()
}

fn write_all(store: &PieceStore, t: &Torrent, data: &[u8], pieces: impl IntoIterator<Item = u32>) {
    for i in pieces {
        store.write_piece(i, piece(t, data, i)).unwrap();
    }
}

/// A directory torrent whose piece 2 spans three files and an empty one.
fn tree() -> (Arc<Torrent>, Vec<u8>) {
    torrent(
        "holiday",
        &[
            (&["a", "x.bin"], 40_000),
            (&["a", "empty"], 0),
            (&["b", "c", "y.bin"], 5),
            (&["b", "z.bin"], 70_000),
        ],
        MIN_PIECE_LENGTH,
        11,
    )
}

#[test]
fn single_file_round_trips_byte_for_byte() {
    let (t, data) = torrent("one.bin", &[(&[], 100_000)], MIN_PIECE_LENGTH, 1);
    let d = dirs();
    let (store, report) = open(&t, &d);
    assert_eq!(report.resume, ResumeStatus::Missing);
    assert_eq!(
        fs::metadata(d.root.join("one.bin")).unwrap().len(),
        100_000,
        "preallocated"
    );
    assert!(!store.is_complete() && !store.file_complete(0));
    write_all(&store, &t, &data, (0..t.piece_count()).rev());
    assert!(store.is_complete() && store.file_complete(0));
    for i in 0..t.piece_count() {
        assert_eq!(store.read_piece(i).unwrap(), piece(&t, &data, i));
    }
    store.checkpoint().unwrap();
    assert_eq!(fs::read(d.root.join("one.bin")).unwrap(), data);
}

#[test]
fn a_new_files_blocks_are_reserved_at_the_open() {
    use std::os::unix::fs::MetadataExt;
    let d = dirs();
    // Only where the file system can reserve blocks at all.
    fs::create_dir_all(&d.state).unwrap();
    let probe = fs::File::create(d.state.join("probe")).unwrap();
    let flags = rustix::fs::FallocateFlags::empty();
    if rustix::fs::fallocate(&probe, flags, 0, 1 << 20).is_err() {
        eprintln!("skipped: this file system cannot reserve blocks (fallocate)");
        return;
    }
    let (t, _) = torrent("big.bin", &[(&[], 3 << 20)], MIN_PIECE_LENGTH, 1);
    let _store = open(&t, &d);
    let metadata = fs::metadata(d.root.join("big.bin")).unwrap();
    assert_eq!(metadata.len(), 3 << 20);
    assert!(
        metadata.blocks() * 512 >= 3 << 20,
        "{} bytes allocated for a file of 3 MiB",
        metadata.blocks() * 512
    );
}

#[test]
fn directory_tree_round_trips_byte_for_byte_with_a_piece_spanning_files() {
    let (t, data) = tree();
    let spans = t.piece_spans(2).unwrap();
    assert_eq!(
        spans.iter().map(|s| s.file).collect::<Vec<_>>(),
        vec![0, 2, 3]
    );
    let d = dirs();
    let (store, _) = open(&t, &d);
    store.write_piece(2, piece(&t, &data, 2)).unwrap();
    assert!(store.file_complete(2), "y.bin lies entirely in piece 2");
    assert_eq!(store.read_piece(2).unwrap(), piece(&t, &data, 2));
    write_all(&store, &t, &data, [0, 1, 3, 4, 5, 6]);
    assert!(store.is_complete());
    assert_eq!(all_files(&t, &d.root), data);
    assert_eq!(
        fs::metadata(d.root.join("holiday/a/empty")).unwrap().len(),
        0
    );
    assert_eq!(
        fs::read(d.root.join("holiday/b/c/y.bin")).unwrap(),
        &data[40_000..40_005]
    );
}

#[test]
fn a_piece_in_many_small_buffers_is_written_across_file_boundaries_byte_for_byte() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    for i in 0..t.piece_count() {
        // Odd-sized buffers, as a piece arrives from the network, misaligned with the files.
        let bytes = piece(&t, &data, i);
        let parts: Vec<&[u8]> = bytes.chunks(1_237).collect();
        store.write_piece_parts(i, &parts).unwrap();
    }
    assert!(store.is_complete());
    assert_eq!(all_files(&t, &d.root), data);
    // A wrong byte in one buffer is caught before anything is written.
    let (t2, data2) = tree();
    let d2 = dirs();
    let (store2, _) = open(&t2, &d2);
    let mut bad = piece(&t2, &data2, 2).to_vec();
    bad[3_000] ^= 1;
    let parts: Vec<&[u8]> = bad.chunks(999).collect();
    assert!(matches!(
        store2.write_piece_parts(2, &parts),
        Err(StorageError::HashMismatch { piece: 2 })
    ));
    assert!(!store2.has(2));
}

#[test]
fn a_corrupt_piece_is_refused_and_nothing_is_written() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    let mut bad = piece(&t, &data, 2).to_vec();
    bad[100] ^= 1;
    let err = store.write_piece(2, &bad).unwrap_err();
    assert!(
        matches!(err, StorageError::HashMismatch { piece: 2 }),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(!store.has(2));
    assert!(
        all_files(&t, &d.root).iter().all(|&b| b == 0),
        "no byte was written"
    );
    drop(store);
    // Not even recorded as possibly written: nothing to re-hash.
    let (store, report) = open(&t, &d);
    assert_eq!(report.rehashed.count(), 0);
    assert_eq!(store.have().count(), 0);
}

#[test]
fn reopening_after_a_checkpoint_trusts_without_rehashing() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, [0, 2, 5]);
    store.checkpoint().unwrap();
    drop(store);
    let (store, report) = open(&t, &d);
    assert_eq!(report.resume, ResumeStatus::Loaded);
    assert_eq!((report.trusted, report.rehashed.count()), (3, 0));
    assert_eq!(store.have().ones().collect::<Vec<_>>(), vec![0, 2, 5]);
    // And again, with nothing new: still nothing re-hashed.
    drop(store);
    let (_, report) = open(&t, &d);
    assert_eq!((report.trusted, report.rehashed.count()), (3, 0));
}

#[test]
fn pieces_written_after_the_last_checkpoint_are_reverified_and_kept_if_intact() {
    let (t, data) = torrent("one.bin", &[(&[], 10 * 16_384)], MIN_PIECE_LENGTH, 2);
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, [0, 1]);
    store.checkpoint().unwrap();
    write_all(&store, &t, &data, [4, 7, 9]);
    // The process stops without a checkpoint; then one of the unsaved pieces is torn.
    drop(store);
    fs::OpenOptions::new()
        .write(true)
        .open(d.root.join("one.bin"))
        .unwrap()
        .write_all_at(&[0xEE; 100], 7 * 16_384 + 50)
        .unwrap();
    let (store, report) = open(&t, &d);
    assert_eq!(report.trusted, 2, "the checkpointed pieces");
    assert_eq!(
        report.rehashed.ones().collect::<Vec<_>>(),
        vec![4, 7, 9],
        "only those"
    );
    assert_eq!((report.reverified_ok, report.reverified_bad), (2, 1));
    assert_eq!(store.have().ones().collect::<Vec<_>>(), vec![0, 1, 4, 9]);
    // What the open verified is checkpointed by it.
    drop(store);
    let (_, report) = open(&t, &d);
    assert_eq!((report.trusted, report.rehashed.count()), (4, 0));
}

#[test]
fn a_truncated_file_invalidates_trust_in_its_pieces() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, 0..t.piece_count());
    store.checkpoint().unwrap();
    drop(store);
    // z.bin (bytes 40_005..110_005, pieces 2..=6) loses its tail: only its first 30_000
    // bytes remain, which hold its parts of pieces 2 and 3.
    let z = d.root.join("holiday/b/z.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(&z)
        .unwrap()
        .set_len(30_000)
        .unwrap();
    let (store, report) = open(&t, &d);
    assert_eq!(report.trusted, 2, "pieces 0 and 1 lie in x.bin only");
    assert_eq!(report.rehashed.ones().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(report.reverified_ok, 2);
    assert_eq!(store.have().ones().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(
        fs::metadata(&z).unwrap().len(),
        70_000,
        "the file has its length again"
    );
    assert!(store.file_complete(0) && !store.file_complete(3));
}

#[test]
fn a_file_changed_behind_the_stores_back_is_reverified() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, 0..t.piece_count());
    store.checkpoint().unwrap();
    drop(store);
    // Someone edits x.bin in place (piece 1); its modification time changes.
    std::thread::sleep(Duration::from_millis(20));
    let x = d.root.join("holiday/a/x.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(&x)
        .unwrap()
        .write_all_at(b"edited", 20_000)
        .unwrap();
    let (store, report) = open(&t, &d);
    assert_eq!(report.rehashed.ones().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!((report.reverified_ok, report.reverified_bad), (2, 1));
    assert!(!store.has(1) && store.has(0) && store.has(2));
}

#[test]
fn reading_a_piece_whose_bytes_changed_is_piece_lost_and_drops_it() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, 0..t.piece_count());
    store.checkpoint().unwrap();
    // Changed in place, with the modification time put back: only reading can tell.
    let x = d.root.join("holiday/a/x.bin");
    let mtime = fs::metadata(&x).unwrap().modified().unwrap();
    let f = fs::OpenOptions::new().write(true).open(&x).unwrap();
    f.write_all_at(b"bit rot", 100).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let err = store.read_piece(0).unwrap_err();
    assert!(
        matches!(err, StorageError::PieceLost { piece: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("x.bin"), "{err}");
    assert!(!store.has(0));
    assert!(matches!(
        store.read_piece(0),
        Err(StorageError::NotHave { piece: 0 })
    ));
    // The loss was checkpointed at once: a restart does not trust piece 0 again.
    drop(store);
    let (store, report) = open(&t, &d);
    assert!(!store.has(0) && store.has(1));
    assert_eq!(report.trusted, t.piece_count() - 1);

    // A truncated file loses the pieces past its new end.
    let z = d.root.join("holiday/b/z.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(&z)
        .unwrap()
        .set_len(1_000)
        .unwrap();
    let err = store.read_piece(6).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // Removed altogether.
    fs::remove_file(d.root.join("holiday/b/c/y.bin")).unwrap();
    drop(store);
    let (store, _) = open(&t, &d);
    assert!(!store.has(2), "piece 2 has bytes in the removed file");
}

#[test]
fn a_piece_read_again_is_trusted_until_someone_else_changes_its_file() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, 0..t.piece_count());
    let counts = |s: &PieceStore| {
        let c = s.read_counts();
        (c.hashed, c.trusted)
    };
    // Written (and so checked) by this store, its file changed by nobody else since.
    assert_eq!(store.read_piece(0).unwrap(), piece(&t, &data, 0));
    assert_eq!(store.read_piece(0).unwrap(), piece(&t, &data, 0));
    assert_eq!(counts(&store), (0, 2));
    // Piece 1's bytes (in the same file) changed in place, the modification time put
    // back: the change time still moves, so piece 0 is hashed again (and is intact).
    let x = d.root.join("holiday/a/x.bin");
    let mtime = fs::metadata(&x).unwrap().modified().unwrap();
    let f = fs::OpenOptions::new().write(true).open(&x).unwrap();
    f.write_all_at(b"bit rot", t.piece_range(1).unwrap().start + 10)
        .unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(store.read_piece(0).unwrap(), piece(&t, &data, 0));
    assert_eq!(counts(&store), (1, 2));
    // Hashed once in the file's new state, it is trusted again; piece 1 is found lost.
    assert_eq!(store.read_piece(0).unwrap(), piece(&t, &data, 0));
    assert_eq!(counts(&store), (1, 3));
    assert!(matches!(
        store.read_piece(1),
        Err(StorageError::PieceLost { piece: 1, .. })
    ));
    assert_eq!(counts(&store), (2, 3));
    // Piece 2 spans x.bin and others: hashed once, as x.bin changed, then trusted.
    for _ in 0..2 {
        assert_eq!(store.read_piece(2).unwrap(), piece(&t, &data, 2));
    }
    assert_eq!(counts(&store), (3, 4));
}

#[test]
fn with_no_time_to_trust_a_check_every_read_hashes() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = PieceStore::open_with(
        t.clone(),
        &d.root,
        &d.state,
        &peer::storage::StoreOptions {
            reverify_after: Duration::ZERO,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    write_all(&store, &t, &data, 0..t.piece_count());
    for _ in 0..3 {
        assert_eq!(store.read_piece(0).unwrap(), piece(&t, &data, 0));
    }
    let c = store.read_counts();
    assert_eq!((c.hashed, c.trusted), (3, 0));
}

#[test]
fn a_damaged_resume_file_is_ignored_and_the_disk_reverified() {
    let (t, data) = tree();
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, [0, 1, 2, 3]);
    store.checkpoint().unwrap();
    let resume = store.resume_path().to_path_buf();
    drop(store);
    let mut bytes = fs::read(&resume).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    fs::write(&resume, &bytes).unwrap();
    let (store, report) = open(&t, &d);
    let ResumeStatus::Ignored { reason } = &report.resume else {
        panic!("{:?}", report.resume);
    };
    assert!(reason.contains("checksum"), "{reason}");
    assert_eq!(report.trusted, 0);
    assert_eq!(
        report.rehashed.count(),
        t.piece_count(),
        "everything on disk"
    );
    assert_eq!(report.reverified_ok, 4);
    assert_eq!(store.have().ones().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    drop(store);
    // The open wrote a good one.
    let (_, report) = open(&t, &d);
    assert_eq!((report.resume, report.trusted), (ResumeStatus::Loaded, 4));
}

#[test]
fn another_torrents_resume_file_is_ignored() {
    let (t, data) = tree();
    let (other, _) = torrent("holiday", &[(&["a"], 9)], MIN_PIECE_LENGTH, 12);
    let d = dirs();
    let (store, _) = open(&t, &d);
    write_all(&store, &t, &data, [0]);
    store.checkpoint().unwrap();
    let resume = store.resume_path().to_path_buf();
    drop(store);
    // The other torrent's valid resume file, put in this one's place.
    let d2 = dirs();
    let (other_store, _) = open(&other, &d2);
    let other_resume = other_store.resume_path().to_path_buf();
    drop(other_store);
    fs::copy(other_resume, resume).unwrap();
    let (_, report) = open(&t, &d);
    assert!(
        matches!(&report.resume, ResumeStatus::Ignored { reason } if reason.contains("another torrent")),
        "{:?}",
        report.resume
    );
    assert_eq!((report.trusted, report.reverified_ok), (0, 1));
}

#[test]
fn seeding_existing_files_hashes_everything_and_alters_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("share");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("one"), content(5, 50_000)).unwrap();
    fs::write(src.join("sub/two"), content(6, 30_001)).unwrap();
    let t = Arc::new(
        tracker::torrent::create::from_path(
            &src,
            MIN_PIECE_LENGTH,
            vec!["192.0.2.1:7000".parse().unwrap()],
            Fingerprint::from_bytes([1; 32]),
            None,
        )
        .unwrap(),
    );
    let state = tmp.path().join("state");
    let mut seen = Vec::new();
    let (store, report) =
        PieceStore::open_existing(t.clone(), tmp.path(), &state, &mut |p| seen.push(p)).unwrap();
    assert_eq!(report.resume, ResumeStatus::NotUsed);
    assert_eq!(report.reverified_ok, t.piece_count());
    assert!(store.is_complete());
    assert_eq!(seen.len(), t.piece_count() as usize);
    let last = seen.last().unwrap();
    assert_eq!(
        (last.pieces_done, last.bytes_done),
        (last.pieces_total, t.total_length())
    );
    drop(store);

    // A file that changed length is an error, and stays as it is.
    fs::write(src.join("sub/two"), b"short").unwrap();
    let err = PieceStore::open_existing(t.clone(), tmp.path(), &state, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, StorageError::ExistingFileMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("has 5 bytes"), "{err}");
    assert_eq!(fs::read(src.join("sub/two")).unwrap(), b"short");
    // So is a missing directory, and nothing is created in its place.
    fs::remove_dir_all(src.join("sub")).unwrap();
    let err = PieceStore::open_existing(t.clone(), tmp.path(), &state, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("sub/two is missing"), "{err}");
    assert!(!src.join("sub").exists());
}

#[test]
fn paths_that_are_not_plain_files_are_refused_with_the_path() {
    let (t, _) = tree();
    // A directory where a file goes.
    let d = dirs();
    fs::create_dir_all(d.root.join("holiday/b/z.bin")).unwrap();
    let err = PieceStore::open(t.clone(), &d.root, &d.state).unwrap_err();
    assert!(matches!(err, StorageError::IsDirectory { .. }), "{err}");
    assert!(
        err.to_string().contains("holiday/b/z.bin is a directory"),
        "{err}"
    );
    // A file where a directory goes.
    let d = dirs();
    fs::create_dir_all(d.root.join("holiday")).unwrap();
    fs::write(d.root.join("holiday/b"), b"").unwrap();
    let err = PieceStore::open(t.clone(), &d.root, &d.state).unwrap_err();
    assert!(matches!(err, StorageError::NotDirectory { .. }), "{err}");
    // A symbolic link below the root, even to a harmless place, is not followed.
    let d = dirs();
    let elsewhere = d._tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(d.root.join("holiday")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.root.join("holiday/a")).unwrap();
    let err = PieceStore::open(t.clone(), &d.root, &d.state).unwrap_err();
    assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written through it"
    );
}

#[test]
fn permission_denied_names_the_path() {
    let (t, _) = tree();
    let d = dirs();
    fs::create_dir_all(d.root.join("holiday")).unwrap();
    fs::set_permissions(d.root.join("holiday"), fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(d.root.join("holiday/probe"), b"").is_ok() {
        eprintln!("skipped: this user ignores file permissions");
        return;
    }
    let err = PieceStore::open(t, &d.root, &d.state).unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("holiday/a"), "{err}");
}

// ---------------------------------------------------------------------------------------
// kill -9

/// Tells the writer process where to work: the torrent file, the download root and the
/// state directory, separated by newlines.
const DIRS_ENV: &str = "STORAGE_CRASH_WRITER_DIRS";
/// Seeds the writer process's choices.
const SEED_ENV: &str = "STORAGE_CRASH_WRITER_SEED";
const OPENED: &str = "@@OPENED";
const WROTE: &str = "@@WROTE ";
const CHECKPOINTING: &str = "@@CHECKPOINTING";
const CHECKPOINTED: &str = "@@CHECKPOINTED";
const DONE: &str = "@@DONE";

/// The crash test's torrent: 48 pieces of 256 KiB over files of awkward sizes, so that
/// pieces span files and a kill can land in the middle of a piece's writes.
fn crash_torrent() -> (Arc<Torrent>, Vec<u8>) {
    torrent(
        "crash",
        &[
            (&["a.bin"], 3_000_001),
            (&["empty"], 0),
            (&["d", "tiny"], 3),
            (&["d", "b.bin"], 4 << 20),
            (
                &["d", "e", "c.bin"],
                (12 << 20) - 3_000_004 - (4 << 20) - 77,
            ),
        ],
        256 << 10,
        99,
    )
}

/// The writer process. Does nothing unless started by the crash test.
#[test]
#[ignore = "the writer process of kill_9_never_loses_a_checkpointed_piece_nor_trusts_a_wrong_one"]
fn storage_writer_process() {
    use std::io::Write;
    let Ok(dirs) = std::env::var(DIRS_ENV) else {
        return;
    };
    let dirs: Vec<&str> = dirs.lines().collect();
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let mut rng = Rng(seed);
    let t = Arc::new(Torrent::parse(&fs::read(dirs[0]).unwrap()).unwrap());
    let (_, data) = crash_torrent();
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    };
    let (store, _) = PieceStore::open(t.clone(), Path::new(dirs[1]), Path::new(dirs[2])).unwrap();
    say(OPENED.to_owned());
    let mut missing: Vec<u32> = store.have().zeros().collect();
    while !missing.is_empty() {
        let i = missing.swap_remove(rng.below(missing.len() as u64) as usize);
        if rng.below(8) == 0 {
            let mut bad = piece(&t, &data, i).to_vec();
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 0x80;
            assert!(matches!(
                store.write_piece(i, &bad),
                Err(StorageError::HashMismatch { .. })
            ));
        }
        store.write_piece(i, piece(&t, &data, i)).unwrap();
        say(format!("{WROTE}{i}"));
        if rng.below(3) == 0 {
            say(CHECKPOINTING.to_owned());
            store.checkpoint().unwrap();
            say(CHECKPOINTED.to_owned());
        }
    }
    say(DONE.to_owned());
    // Wait to be killed, like a seeder.
    std::thread::sleep(Duration::from_secs(60));
}

/// Kills the child if the test fails while it runs.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the writer reported.
#[derive(Default)]
struct Reported {
    /// Pieces covered by a reported checkpoint (or by an open in this process).
    durable: BTreeSet<u32>,
    /// Pieces reported written since the last reported checkpoint.
    unsaved: BTreeSet<u32>,
    done: bool,
}

impl Reported {
    /// Takes note of a line; true for the event `want`.
    fn note(&mut self, line: &str, want: &str) -> bool {
        if let Some(i) = line.find(WROTE) {
            let piece = line[i + WROTE.len()..].trim().parse().expect("bad line");
            self.unsaved.insert(piece);
        } else if line.contains(CHECKPOINTED) {
            self.durable.append(&mut self.unsaved);
        } else if line.contains(DONE) {
            self.done = true;
        }
        line.contains(want.trim())
    }
}

#[test]
fn kill_9_never_loses_a_checkpointed_piece_nor_trusts_a_wrong_one() {
    let iters: u64 = std::env::var("STORAGE_CRASH_ITERS")
        .map(|v| v.parse().expect("STORAGE_CRASH_ITERS"))
        .unwrap_or(30);
    let seed: u64 = std::env::var("STORAGE_CRASH_SEED")
        .map(|v| v.parse().expect("STORAGE_CRASH_SEED"))
        .unwrap_or_else(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("storage crash: seed {seed} (STORAGE_CRASH_SEED={seed} replays), {iters} kills");
    let mut rng = Rng(seed);
    let (t, data) = crash_torrent();
    let tmp = tempfile::tempdir().unwrap();
    let torrent_file = tmp.path().join("crash.torrent");
    fs::write(&torrent_file, t.encode()).unwrap();
    let (root, state) = (tmp.path().join("downloads"), tmp.path().join("state"));
    let exe = std::env::current_exe().unwrap();
    let mut reported = Reported::default();
    let (mut rehashed, mut rehashed_bad, mut completions) = (0u32, 0u32, 0u32);

    for iter in 0..iters {
        let context = format!("seed {seed}, kill {iter}");
        // 0: during start-up; 1: after some writes; 2: as a checkpoint starts;
        // 3: a little after a checkpoint.
        let mode = rng.below(4);
        let (want, count) = match mode {
            0 => (OPENED, 1),
            1 => (WROTE, 1 + rng.below(6)),
            2 => (CHECKPOINTING, 1 + rng.below(3)),
            _ => (CHECKPOINTED, 1 + rng.below(3)),
        };
        let delay = Duration::from_micros(match mode {
            0 => rng.below(20_000),
            2 => rng.below(3_000),
            _ => rng.below(500),
        });
        let child = Command::new(&exe)
            .args([
                "storage::storage_writer_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                DIRS_ENV,
                format!(
                    "{}\n{}\n{}",
                    torrent_file.display(),
                    root.display(),
                    state.display()
                ),
            )
            .env(SEED_ENV, rng.next().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the writer");
        let mut writer = Writer(child);
        let mut lines = BufReader::new(writer.0.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < count && !reported.done {
            match lines.next() {
                Some(Ok(line)) => seen += u64::from(reported.note(&line, want)),
                _ => {
                    let _ = writer.0.wait();
                    let mut err = String::new();
                    let _ = writer.0.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("{context}: the writer exited early:\n{err}");
                }
            }
        }
        std::thread::sleep(delay);
        writer.0.kill().expect("SIGKILL the writer");
        writer.0.wait().unwrap();
        // Lines printed before the kill landed count too.
        for line in lines.map_while(Result::ok) {
            reported.note(&line, want);
        }
        drop(writer);

        let (store, report) = PieceStore::open(t.clone(), &root, &state)
            .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
        let have = store.have();
        for &p in &reported.durable {
            assert!(
                have.get(p) && !report.rehashed.get(p),
                "{context}: checkpointed piece {p} not trusted as is"
            );
        }
        for &p in &reported.unsaved {
            assert!(have.get(p), "{context}: written piece {p} lost by a kill");
        }
        // Only pieces written since the last checkpoint (reported or not: one more may
        // have been in flight, and a checkpoint may have finished unreported) were
        // re-hashed.
        let unreported = report
            .rehashed
            .ones()
            .filter(|p| !reported.unsaved.contains(p))
            .count();
        assert!(
            unreported <= 1,
            "{context}: re-hashed {:?}, but only {:?} were written since the last checkpoint",
            report.rehashed.ones().collect::<Vec<_>>(),
            reported.unsaved
        );
        for p in have.ones() {
            assert!(
                on_disk(&t, &root, p) == piece(&t, &data, p),
                "{context}: piece {p} is held but its bytes on disk are wrong"
            );
        }
        rehashed += report.rehashed.count();
        rehashed_bad += report.reverified_bad;
        drop(store);

        // The open checkpointed everything it holds: a second open re-hashes nothing.
        let (store, again) = PieceStore::open(t.clone(), &root, &state).unwrap();
        assert_eq!(again.rehashed.count(), 0, "{context}");
        assert_eq!(store.have(), have, "{context}");
        drop(store);
        reported.durable = have.ones().collect();
        reported.unsaved.clear();

        if have.is_full() {
            assert_eq!(all_files(&t, &root), data, "{context}");
            completions += 1;
            fs::remove_dir_all(&root).unwrap();
            fs::remove_dir_all(&state).unwrap();
            reported = Reported::default();
        }
    }
    eprintln!(
        "storage crash: {iters} kills, {rehashed} pieces re-hashed ({rehashed_bad} torn), \
         {completions} complete downloads"
    );
}

// ---------------------------------------------------------------------------------------
// Bounded memory

/// Tells the memory process where to work.
const MEMORY_ENV: &str = "STORAGE_MEMORY_DIR";
/// Size of the memory test's file: twice the memory limit, so a whole-file buffer shows.
const MEMORY_FILE_LEN: u64 = 128 << 20;
/// The peak resident memory allowed.
const MEMORY_LIMIT_KIB: u64 = 64 << 10;

/// A single-file torrent of [`MEMORY_FILE_LEN`] bytes in 1 MiB pieces, each piece derived
/// from its index, built without holding the content.
fn memory_torrent() -> Arc<Torrent> {
    let piece_length = 1u32 << 20;
    let count = MEMORY_FILE_LEN / u64::from(piece_length);
    let info = Info {
        name: "big.bin".into(),
        piece_length,
        files: vec![FileEntry {
            path: vec![],
            length: MEMORY_FILE_LEN,
        }],
        pieces: (0..count)
            .flat_map(|i| *blake3::hash(&content(i, u64::from(piece_length))).as_bytes())
            .collect(),
    };
    Arc::new(
        Torrent::new(
            info,
            vec!["192.0.2.1:7000".parse().unwrap()],
            Fingerprint::from_bytes([1; 32]),
            0,
            None,
        )
        .unwrap(),
    )
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The memory process: downloads, checkpoints, re-verifies and serves the whole file,
/// then prints its peak resident memory. Does nothing unless started by the memory test.
#[test]
#[ignore = "the process of memory_stays_bounded_for_a_file_twice_the_limit"]
fn storage_memory_process() {
    let Ok(dir) = std::env::var(MEMORY_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let t = memory_torrent();
    let (root, state) = (dir.join("downloads"), dir.join("state"));
    let (store, _) = PieceStore::open(t.clone(), &root, &state).unwrap();
    for i in 0..t.piece_count() {
        store
            .write_piece(i, &content(u64::from(i), t.piece_len(i).unwrap()))
            .unwrap();
        if i % 16 == 15 {
            store.checkpoint().unwrap();
        }
    }
    drop(store);
    let (store, report) = PieceStore::open_with(
        t.clone(),
        &root,
        &state,
        &peer::storage::StoreOptions {
            verify_all: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.reverified_ok, t.piece_count());
    for i in 0..t.piece_count() {
        assert_eq!(store.read_piece(i).unwrap().len(), 1 << 20);
    }
    println!("@@PEAK_KIB {}", peak_rss_kib());
}

#[test]
fn memory_stays_bounded_for_a_file_twice_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "storage::storage_memory_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_ENV, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("@@PEAK_KIB ").map(|(_, n)| n))
        .unwrap_or_else(|| {
            panic!(
                "the memory process failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .trim()
        .parse()
        .unwrap();
    eprintln!("storage memory: peak RSS {peak} KiB for a {MEMORY_FILE_LEN}-byte file");
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB is over {MEMORY_LIMIT_KIB} KiB"
    );
}
