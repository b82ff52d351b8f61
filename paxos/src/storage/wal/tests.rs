//! Unit tests of the write-ahead log's recovery rules.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::record::{self, RECORD_HEADER_LEN};
use super::segment::{SEGMENT_HEADER_LEN, encode_header, segment_name};
use super::snapshot::{SNAPSHOT_FILE, SNAPSHOT_TMP, write_snapshot};
use super::{MAX_RECORD_BYTES_LIMIT, Recovered, Wal, WalError, WalOptions};

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "bytetorrent-wal-unit-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Small segments so that tests roll over quickly. Without preallocation, so
/// that a segment file ends with its last record and tests can damage it at
/// exact offsets (preallocated files have tests of their own).
fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 1024,
        ..exact()
    }
}

/// The default options without preallocation: files end with their last record.
fn exact() -> WalOptions {
    WalOptions {
        preallocate_bytes: 0,
        ..WalOptions::default()
    }
}

/// The payload of record `index`: 1 to 200 bytes derived from the index.
fn payload(index: u64) -> Vec<u8> {
    let len = 1 + (index * 37 % 200) as usize;
    (0..len)
        .map(|k| (index as u8).wrapping_mul(31).wrapping_add(k as u8))
        .collect()
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    range.map(|i| (i, payload(i))).collect()
}

fn open(dir: &Path, options: &WalOptions) -> Result<(Wal, Recovered), WalError> {
    Wal::open(dir, options.clone())
}

/// Opens the log in `dir`, appends records up to `last` (continuing where it
/// is), syncs and closes it.
fn fill(dir: &Path, options: &WalOptions, last: u64) {
    let (mut wal, _) = open(dir, options).unwrap();
    while wal.next_index() <= last {
        let i = wal.next_index();
        assert_eq!(wal.append(&payload(i)).unwrap(), i);
    }
    wal.sync().unwrap();
}

/// The segment files in `dir`, sorted by name.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Offsets of the records in a segment file, from its bytes.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < bytes.len() {
        let rec = record::decode_at(bytes, pos).unwrap();
        offsets.push(pos);
        pos = rec.end;
    }
    offsets
}

fn flip_bit(path: &Path, offset: usize, bit: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

fn expect_corrupt(result: Result<(Wal, Recovered), WalError>, file: &Path, offset: u64) {
    match result {
        Err(err @ WalError::Corrupt { .. }) => {
            let WalError::Corrupt {
                file: f, offset: o, ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!((f.as_path(), *o), (file, offset), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&file.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("offset {offset}")), "{msg}");
        }
        Err(other) => panic!(
            "expected Corrupt at {} offset {offset}, got {other}",
            file.display()
        ),
        Ok((_, rec)) => panic!(
            "expected Corrupt at {} offset {offset}, got {} records",
            file.display(),
            rec.records.len()
        ),
    }
}

#[test]
fn empty_log_opens_and_reopens() {
    let dir = Scratch::new("empty");
    let (wal, rec) = open(dir.path(), &small()).unwrap();
    assert_eq!(rec, Recovered::default());
    assert_eq!(
        (wal.next_index(), wal.last_index(), wal.durable_index()),
        (1, 0, 0)
    );
    drop(wal);
    let (wal, rec) = open(dir.path(), &small()).unwrap();
    assert_eq!(rec, Recovered::default());
    assert_eq!(wal.next_index(), 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
}

#[test]
fn group_commit_and_index_continuity_across_reopen() {
    let dir = Scratch::new("continuity");
    let opts = WalOptions::default();
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    for i in 1..=10 {
        assert_eq!(wal.append(&payload(i)).unwrap(), i);
    }
    assert_eq!(wal.durable_index(), 0);
    wal.sync().unwrap();
    assert_eq!(wal.durable_index(), 10);
    drop(wal);
    let (mut wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=10));
    assert!(rec.cut_tails.is_empty());
    for i in 11..=15 {
        assert_eq!(wal.append(&payload(i)).unwrap(), i);
    }
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=15));
    assert_eq!(wal.next_index(), 16);
}

#[test]
fn segments_roll_over() {
    let dir = Scratch::new("roll");
    let opts = small();
    fill(dir.path(), &opts, 200);
    let files = segment_files(dir.path());
    assert!(files.len() > 10, "{} segments", files.len());
    let mut next = 1;
    for file in &files {
        assert_eq!(
            file.file_name().unwrap().to_str().unwrap(),
            segment_name(next)
        );
        let bytes = fs::read(file).unwrap();
        assert!(bytes.len() as u64 <= opts.segment_bytes);
        next += record_offsets(&bytes).len() as u64;
    }
    assert_eq!(next, 201);
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=200));
    assert_eq!(wal.next_index(), 201);
}

#[test]
fn record_larger_than_a_segment_gets_its_own() {
    let dir = Scratch::new("big");
    let opts = small();
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    let big = vec![7u8; 5000];
    wal.append(&payload(1)).unwrap();
    wal.append(&big).unwrap();
    wal.append(&payload(3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(segment_files(dir.path()).len(), 3);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(
        rec.records,
        vec![(1, payload(1)), (2, big), (3, payload(3))]
    );
}

#[test]
fn torn_tail_cut_at_every_offset_of_the_last_record() {
    let dir = Scratch::new("torn");
    let opts = exact();
    fill(dir.path(), &opts, 6);
    let file = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&file).unwrap();
    let last_start = *record_offsets(&original).last().unwrap();
    for cut in last_start..original.len() {
        fs::write(&file, &original[..cut]).unwrap();
        let (wal, rec) = open(dir.path(), &opts).unwrap();
        assert_eq!(rec.records, expected(1..=5), "cut at {cut}");
        assert_eq!(wal.next_index(), 6);
        if cut == last_start {
            assert!(rec.cut_tails.is_empty());
        } else {
            assert_eq!(rec.cut_tails.len(), 1, "cut at {cut}");
            assert_eq!(rec.cut_tails[0].offset, last_start as u64);
            assert_eq!(rec.cut_tails[0].bytes_removed, (cut - last_start) as u64);
        }
        drop(wal);
        // The cut was made durable: the file ends at the last good record.
        assert_eq!(fs::metadata(&file).unwrap().len(), last_start as u64);
    }
    // And the log goes on from there.
    fill(dir.path(), &opts, 8);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=8));
}

#[test]
fn torn_tail_cut_in_a_later_segment() {
    let dir = Scratch::new("torn-seg");
    let opts = small();
    fill(dir.path(), &opts, 50);
    let files = segment_files(dir.path());
    let file = files.last().unwrap();
    let original = fs::read(file).unwrap();
    let offsets = record_offsets(&original);
    let first_in_last = 51 - offsets.len() as u64;
    // Cut at a sample of offsets all through the last segment, header included.
    for cut in (0..original.len()).step_by(7).chain(0..=SEGMENT_HEADER_LEN) {
        fs::write(file, &original[..cut]).unwrap();
        let (wal, rec) = open(dir.path(), &opts).unwrap();
        // Records wholly before the cut survive (none if the header is torn).
        let ends = offsets.iter().skip(1).copied().chain([original.len()]);
        let survivors = if cut < SEGMENT_HEADER_LEN {
            0
        } else {
            ends.filter(|&end| end <= cut).count() as u64
        };
        let last = first_in_last - 1 + survivors;
        assert_eq!(rec.records, expected(1..=last), "cut at {cut}");
        assert_eq!(wal.next_index(), last + 1);
        if cut < SEGMENT_HEADER_LEN {
            assert!(rec.cut_tails[0].segment_removed, "cut at {cut}");
        }
        drop(wal);
        // Restore the full segment (a removed one is recreated by the write).
        fs::write(file, &original).unwrap();
    }
}

#[test]
fn zero_filled_tail_is_free_space_not_a_torn_tail() {
    let dir = Scratch::new("zeros");
    let opts = exact();
    fill(dir.path(), &opts, 4);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let good = bytes.len();
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    fs::write(&file, &bytes).unwrap();
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=4));
    assert!(rec.cut_tails.is_empty(), "{:?}", rec.cut_tails);
    assert_eq!(fs::metadata(&file).unwrap().len(), (good + 4096) as u64);
    drop(wal);
    // New records go right after the old ones, over the zeros.
    fill(dir.path(), &opts, 8);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=8));
    assert!(rec.cut_tails.is_empty());
    let bytes = fs::read(&file).unwrap();
    assert_eq!(bytes.len(), good + 4096, "the new records overwrote zeros");
    assert_eq!(record_offsets_before_zeros(&bytes).0.len(), 8);
}

/// Preallocation on, with segments of 4 KiB zero-filled 1 KiB ahead.
fn preallocated() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
        preallocate_bytes: 1024,
        ..WalOptions::default()
    }
}

#[test]
fn preallocated_segments_grow_in_steps_and_reopen_without_cuts() {
    let dir = Scratch::new("prealloc");
    let opts = preallocated();
    let (mut wal, rec) = open(dir.path(), &opts).unwrap();
    assert!(rec.records.is_empty());
    let first = segment_files(dir.path()).pop().unwrap();
    assert_eq!(
        fs::metadata(&first).unwrap().len(),
        SEGMENT_HEADER_LEN as u64 + 1024,
        "a new segment is created zero-filled"
    );
    let mut lengths = Vec::new();
    for i in 1..=150 {
        wal.append(&payload(i)).unwrap();
        wal.sync().unwrap();
        let active = segment_files(dir.path()).pop().unwrap();
        lengths.push(fs::metadata(&active).unwrap().len());
    }
    drop(wal);
    // Most syncs write over zeros instead of growing the file.
    let grown = lengths.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(grown < 150 / 4, "the file grew at {grown} of 150 syncs");
    let files = segment_files(dir.path());
    assert!(files.len() > 3, "{} segments", files.len());
    for file in &files {
        assert!(fs::metadata(file).unwrap().len() <= opts.segment_bytes);
    }
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=150));
    assert!(rec.cut_tails.is_empty(), "{:?}", rec.cut_tails);
    fill(dir.path(), &opts, 200);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=200));
    assert!(rec.cut_tails.is_empty());
}

#[test]
fn torn_record_in_preallocated_space_is_cut() {
    let dir = Scratch::new("prealloc-torn");
    let opts = WalOptions::default();
    fill(dir.path(), &opts, 4);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let allocated = bytes.len();
    let good = SEGMENT_HEADER_LEN + record_offsets_before_zeros(&bytes).1;
    // The first 10 bytes of a record 5 that never finished.
    bytes[good..good + 10].copy_from_slice(&[7; 10]);
    fs::write(&file, &bytes).unwrap();
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=4));
    assert_eq!(rec.cut_tails.len(), 1);
    assert_eq!(rec.cut_tails[0].offset, good as u64);
    assert_eq!(rec.cut_tails[0].bytes_removed, (allocated - good) as u64);
    drop(wal);
    fill(dir.path(), &opts, 9);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=9));
    assert!(rec.cut_tails.is_empty());
}

#[test]
fn zeroed_record_followed_by_a_record_is_corruption() {
    let dir = Scratch::new("prealloc-hole");
    let opts = WalOptions::default();
    fill(dir.path(), &opts, 5);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let (offsets, _) = record_offsets_before_zeros(&bytes);
    bytes[offsets[3]..offsets[4]].fill(0);
    fs::write(&file, &bytes).unwrap();
    expect_corrupt(open(dir.path(), &opts), &file, offsets[3] as u64);
}

/// Offsets of the records in a preallocated segment file, and the length of
/// the records after the header.
fn record_offsets_before_zeros(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while let Ok(rec) = record::decode_at(bytes, pos) {
        offsets.push(pos);
        pos = rec.end;
    }
    assert!(bytes[pos..].iter().all(|&b| b == 0));
    (offsets, pos - SEGMENT_HEADER_LEN)
}

#[test]
fn flipped_bit_in_the_middle_is_an_error_naming_file_and_offset() {
    let dir = Scratch::new("middle");
    let opts = exact();
    fill(dir.path(), &opts, 10);
    let file = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&file).unwrap();
    let offsets = record_offsets(&original);
    // Record 5: a payload bit, a length bit, a checksum bit, an index bit.
    let at = offsets[4];
    for (offset, bit) in [
        (at + RECORD_HEADER_LEN + 3, 2),
        (at, 0),
        (at + 1, 7),
        (at + 5, 1),
        (at + 8, 0),
        (at + 14, 6),
    ] {
        fs::write(&file, &original).unwrap();
        flip_bit(&file, offset, bit);
        expect_corrupt(open(dir.path(), &opts), &file, at as u64);
    }
    // Record 1, right after the segment header.
    fs::write(&file, &original).unwrap();
    flip_bit(&file, offsets[0] + RECORD_HEADER_LEN, 0);
    expect_corrupt(open(dir.path(), &opts), &file, offsets[0] as u64);
    // Nothing was repaired or skipped: the file is as the damage left it.
    let mut damaged = original.clone();
    damaged[offsets[0] + RECORD_HEADER_LEN] ^= 1;
    assert_eq!(fs::read(&file).unwrap(), damaged);
}

#[test]
fn flipped_bit_in_the_last_record_is_cut() {
    let dir = Scratch::new("last");
    let opts = exact();
    fill(dir.path(), &opts, 10);
    let file = segment_files(dir.path()).pop().unwrap();
    let offsets = record_offsets(&fs::read(&file).unwrap());
    flip_bit(&file, offsets[9] + RECORD_HEADER_LEN, 4);
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=9));
    assert_eq!(rec.cut_tails[0].offset, offsets[9] as u64);
    assert_eq!(rec.cut_tails[0].reason, "record checksum mismatch");
    assert_eq!(wal.next_index(), 10);
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_an_error() {
    let dir = Scratch::new("not-last");
    let opts = small();
    fill(dir.path(), &opts, 50);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let victim = &files[1];
    let original = fs::read(victim).unwrap();
    let offsets = record_offsets(&original);
    let last = *offsets.last().unwrap();
    // A flipped bit in its last record.
    flip_bit(victim, last + RECORD_HEADER_LEN, 0);
    expect_corrupt(open(dir.path(), &opts), victim, last as u64);
    // A truncated last record.
    fs::write(victim, &original[..original.len() - 1]).unwrap();
    expect_corrupt(open(dir.path(), &opts), victim, last as u64);
    // Trailing garbage (trailing zeros would be free space).
    let mut longer = original.clone();
    longer.extend_from_slice(&[0xEE; 20]);
    fs::write(victim, &longer).unwrap();
    expect_corrupt(open(dir.path(), &opts), victim, original.len() as u64);
    // A damaged header.
    fs::write(victim, &original).unwrap();
    flip_bit(victim, 3, 3);
    expect_corrupt(open(dir.path(), &opts), victim, 0);
    fs::write(victim, &original).unwrap();
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=50));
}

#[test]
fn missing_segment_or_misplaced_record_is_an_error() {
    let dir = Scratch::new("gap");
    let opts = small();
    fill(dir.path(), &opts, 50);
    let files = segment_files(dir.path());
    // A segment gone from the middle.
    let saved = fs::read(&files[1]).unwrap();
    fs::remove_file(&files[1]).unwrap();
    expect_corrupt(open(dir.path(), &opts), &files[2], 0);
    fs::write(&files[1], &saved).unwrap();
    // The first segment gone, and no snapshot covers it.
    let saved = fs::read(&files[0]).unwrap();
    fs::remove_file(&files[0]).unwrap();
    expect_corrupt(open(dir.path(), &opts), &files[1], 0);
    fs::write(&files[0], &saved).unwrap();
    // A record with a valid checksum but the wrong index at the tail.
    let last = files.last().unwrap();
    let original = fs::read(last).unwrap();
    let mut bytes = original.clone();
    record::encode(&mut bytes, 99, b"stray");
    fs::write(last, &bytes).unwrap();
    expect_corrupt(open(dir.path(), &opts), last, original.len() as u64);
    fs::write(last, &original).unwrap();
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=50));
}

#[test]
fn torn_segment_creation_is_removed_but_not_a_damaged_header_with_records() {
    let dir = Scratch::new("creation");
    let opts = small();
    fill(dir.path(), &opts, 20);
    let next = dir.path().join(segment_name(21));
    let header = encode_header(21);
    for torn in [&[][..], &header[..10], &[0u8; 24][..], &[0u8; 100][..]] {
        fs::write(&next, torn).unwrap();
        let (wal, rec) = open(dir.path(), &opts).unwrap();
        assert_eq!(rec.records, expected(1..=20));
        assert!(rec.cut_tails[0].segment_removed);
        assert_eq!(wal.next_index(), 21);
        assert!(!next.exists());
    }
    // A header that was fsynced and then damaged, with a record after it.
    let mut bytes = header.to_vec();
    record::encode(&mut bytes, 21, &payload(21));
    bytes[0] ^= 1;
    fs::write(&next, &bytes).unwrap();
    expect_corrupt(open(dir.path(), &opts), &next, 0);
    fs::remove_file(&next).unwrap();
    fill(dir.path(), &opts, 25);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=25));
}

#[test]
fn snapshot_replaces_atomically_and_deletes_covered_segments() {
    let dir = Scratch::new("snapshot");
    let opts = small();
    fill(dir.path(), &opts, 100);
    let before = segment_files(dir.path()).len();
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    wal.save_snapshot(60, b"state through 60").unwrap();
    assert_eq!(wal.snapshot_index(), 60);
    let after = segment_files(dir.path());
    assert!(after.len() < before);
    // The oldest remaining segment holds record 61 or starts right after 60.
    let first: u64 = after[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let second: u64 = after[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first <= 61 && second > 61, "{first} {second}");
    drop(wal);
    let (mut wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.snapshot, Some((60, b"state through 60".to_vec())));
    assert_eq!(rec.records, expected(61..=100));

    // Bad requests.
    assert!(matches!(
        wal.save_snapshot(59, b"old"),
        Err(WalError::SnapshotRegression {
            index: 59,
            current: 60
        })
    ));
    assert!(matches!(
        wal.save_snapshot(101, b"future"),
        Err(WalError::SnapshotBeyondLog {
            index: 101,
            last: 100
        })
    ));

    // A snapshot of everything, including unsynced records: every old segment
    // goes, and the log continues in a fresh one.
    wal.append(&payload(101)).unwrap();
    wal.save_snapshot(101, b"everything").unwrap();
    assert_eq!(
        segment_files(dir.path()),
        vec![dir.path().join(segment_name(102))]
    );
    drop(wal);
    // A crash while writing the next snapshot leaves only a temp file.
    fs::write(dir.path().join(SNAPSHOT_TMP), b"half a snapsh").unwrap();
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.snapshot, Some((101, b"everything".to_vec())));
    assert!(rec.records.is_empty());
    assert_eq!(wal.next_index(), 102);
    assert!(!dir.path().join(SNAPSHOT_TMP).exists());
    drop(wal);
    fill(dir.path(), &opts, 105);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(102..=105));
}

#[test]
fn open_finishes_an_interrupted_segment_cleanup() {
    let dir = Scratch::new("cleanup");
    let opts = small();
    fill(dir.path(), &opts, 100);
    // A crash right after the snapshot's rename, before any segment was deleted.
    write_snapshot(dir.path(), 70, b"s70").unwrap();
    let before = segment_files(dir.path()).len();
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.snapshot, Some((70, b"s70".to_vec())));
    assert_eq!(rec.records, expected(71..=100));
    assert!(segment_files(dir.path()).len() < before);
    // A snapshot past the end of the log (its records were never synced):
    // the log continues after the snapshot.
    write_snapshot(dir.path(), 130, b"s130").unwrap();
    let (wal, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.snapshot, Some((130, b"s130".to_vec())));
    assert!(rec.records.is_empty());
    assert_eq!(wal.next_index(), 131);
    drop(wal);
    assert_eq!(
        segment_files(dir.path()),
        vec![dir.path().join(segment_name(131))]
    );
}

#[test]
fn corrupt_snapshot_is_an_error() {
    let dir = Scratch::new("bad-snapshot");
    let opts = small();
    fill(dir.path(), &opts, 10);
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    wal.save_snapshot(5, b"five").unwrap();
    drop(wal);
    flip_bit(&dir.path().join(SNAPSHOT_FILE), 33, 0);
    match open(dir.path(), &opts) {
        Err(WalError::CorruptSnapshot { file, .. }) => {
            assert_eq!(file, dir.path().join(SNAPSHOT_FILE));
        }
        other => panic!("expected CorruptSnapshot, got {other:?}"),
    }
}

/// Found by the `wal_open` fuzz target: a snapshot file whose checksum verifies but whose
/// index is `u64::MAX` made `open` overflow computing the index after it (a panic where
/// overflow is checked, a wrapped index where it is not). Such a snapshot is corruption.
#[test]
fn a_snapshot_at_the_largest_u64_is_corruption() {
    let dir = Scratch::new("max-snapshot");
    fs::create_dir_all(dir.path()).unwrap();
    write_snapshot(dir.path(), u64::MAX, b"state").unwrap();
    let mut segment = encode_header(4).to_vec();
    record::encode(&mut segment, 4, &payload(4));
    fs::write(dir.path().join(segment_name(4)), segment).unwrap();
    match open(dir.path(), &exact()) {
        Err(WalError::CorruptSnapshot { reason, .. }) => {
            assert!(reason.contains("largest index"), "{reason}");
        }
        other => panic!("expected CorruptSnapshot, got {other:?}"),
    }
}

/// Records up to `u64::MAX` would overflow the index after the last one: a segment whose
/// first index is 2^63 or more is corruption, whatever the snapshot below it.
#[test]
fn a_segment_past_the_largest_index_is_corruption() {
    let dir = Scratch::new("max-segment");
    fs::create_dir_all(dir.path()).unwrap();
    let first = super::MAX_INDEX;
    write_snapshot(dir.path(), first - 1, b"state").unwrap();
    let mut segment = encode_header(first).to_vec();
    record::encode(&mut segment, first, &payload(1));
    fs::write(dir.path().join(segment_name(first)), segment).unwrap();
    match open(dir.path(), &exact()) {
        Err(WalError::Corrupt { reason, .. }) => {
            assert!(reason.contains("largest index"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A log keeps its last index free so that it always opens again: on a snapshot at
/// 2^63 - 2 it opens but takes no record, and on one at 2^63 - 1 (its active segment
/// would start at 2^63, which is corruption) it does not open. Found by the `wal_open`
/// fuzz target: such a log opened, took a record, and did not open again.
#[test]
fn a_log_at_the_largest_index_refuses_the_next_record() {
    let dir = Scratch::new("max-append");
    fs::create_dir_all(dir.path()).unwrap();
    write_snapshot(dir.path(), super::MAX_INDEX - 2, b"state").unwrap();
    let (mut wal, _) = open(dir.path(), &exact()).unwrap();
    assert!(matches!(
        wal.append(&payload(1)),
        Err(WalError::LogFull { index }) if index == super::MAX_INDEX - 1
    ));
    wal.sync().unwrap();
    drop(wal);
    let (_, again) = open(dir.path(), &exact()).expect("the log opens again as it was");
    assert!(again.cut_tails.is_empty() && again.records.is_empty());

    let full = Scratch::new("max-open");
    fs::create_dir_all(full.path()).unwrap();
    write_snapshot(full.path(), super::MAX_INDEX - 1, b"state").unwrap();
    assert!(matches!(
        open(full.path(), &exact()),
        Err(WalError::LogFull { index }) if index == super::MAX_INDEX
    ));
}

#[test]
fn oversized_records_and_bad_options_are_rejected() {
    let dir = Scratch::new("max");
    let opts = WalOptions {
        max_record_bytes: 100,
        ..small()
    };
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    assert!(matches!(
        wal.append(&[0; 101]),
        Err(WalError::RecordTooLarge { len: 101, max: 100 })
    ));
    // The log is still usable, and the rejected record took no index.
    assert_eq!(wal.append(&[1; 100]).unwrap(), 1);
    assert_eq!(wal.append(&[]).unwrap(), 2);
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, vec![(1, vec![1; 100]), (2, vec![])]);

    let too_big = WalOptions {
        max_record_bytes: MAX_RECORD_BYTES_LIMIT + 1,
        ..small()
    };
    assert!(matches!(
        open(dir.path(), &too_big),
        Err(WalError::InvalidOptions(_))
    ));
    let no_segments = WalOptions {
        segment_bytes: 0,
        ..small()
    };
    assert!(matches!(
        open(dir.path(), &no_segments),
        Err(WalError::InvalidOptions(_))
    ));
}

#[test]
fn a_huge_length_field_does_not_allocate() {
    let dir = Scratch::new("huge-len");
    let opts = exact();
    fill(dir.path(), &opts, 3);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let good = bytes.len();
    // A header claiming a 4 GiB record.
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0xAB; 12]);
    fs::write(&file, &bytes).unwrap();
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=3));
    assert_eq!(rec.cut_tails[0].offset, good as u64);
}

#[test]
fn write_buffer_spills_before_sync() {
    let dir = Scratch::new("spill");
    let opts = WalOptions {
        write_buffer_bytes: 256,
        ..WalOptions::default()
    };
    let (mut wal, _) = open(dir.path(), &opts).unwrap();
    for i in 1..=20 {
        wal.append(&payload(i)).unwrap();
    }
    // Written to the OS but not yet synced.
    let file = segment_files(dir.path()).pop().unwrap();
    assert!(fs::metadata(&file).unwrap().len() > SEGMENT_HEADER_LEN as u64);
    assert_eq!(wal.durable_index(), 0);
    wal.sync().unwrap();
    assert_eq!(wal.durable_index(), 20);
    drop(wal);
    let (_, rec) = open(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, expected(1..=20));
}
