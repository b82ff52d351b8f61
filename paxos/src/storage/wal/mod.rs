//! A durable, file-backed write-ahead log of byte records.
//!
//! The log is a sequence of records numbered by a monotonic index starting at
//! 1, stored in segment files in one directory, plus at most one snapshot that
//! stands in for every record up to its index. It knows nothing about what the
//! records mean; the paxos storage adapter serializes its own records on top.
//!
//! # Durability contract
//!
//! [`Wal::append`] only buffers. [`Wal::sync`] writes everything buffered and
//! issues **one** `fdatasync` for all of it (group commit); once `sync` returns
//! `Ok`, every record appended before it survives any crash of the process
//! (`kill -9`) or of the machine. Records appended but not yet synced may or
//! may not survive; if some do, they are a gap-free prefix of what was
//! appended. [`Wal::open`] makes whatever it recovers durable before returning
//! it, so a record seen once after a restart is never lost later.
//!
//! If a write or `fdatasync` fails, the [`Wal`] refuses all further work
//! ([`WalError::Poisoned`]); reopen it, which re-reads what is really on disk.
//! Only one [`Wal`] may have a directory open at a time (not enforced).
//!
//! # On-disk format
//!
//! All integers are little-endian. CRCs are CRC-32 (IEEE) from `crc32fast`.
//!
//! * **Segments** are named after the index of their first record, as 20
//!   decimal digits: `00000000000000000001.wal`. A segment starts with a
//!   24-byte header `[magic "BTWALSEG" 8][version u32 = 1][first index u64]
//!   [crc u32 of the preceding 20 bytes]`, followed by records with
//!   consecutive indexes. A new segment is started when the next record would
//!   take the active one past [`WalOptions::segment_bytes`] (a segment holds
//!   at least one record, so one huge record may make it bigger). Before a new
//!   segment is created the old one is `fdatasync`ed, and the new one's header
//!   is fsynced together with the directory before any record goes into it.
//!   The active segment is kept zero-filled [`WalOptions::preallocate_bytes`]
//!   ahead of its last record, so a file may end in zeros: that is free space,
//!   in any segment (zeros never form a valid record, and a segment's records
//!   must still continue exactly where the previous segment's end).
//! * **A record** is a 16-byte header `[len u32][crc u32][index u64]` followed
//!   by `len` payload bytes; the CRC covers `len`, `index` and the payload.
//!   Payloads are at most [`WalOptions::max_record_bytes`] (at most
//!   [`MAX_RECORD_BYTES_LIMIT`]). Reading never allocates more than the file's
//!   size, whatever a damaged length field says.
//! * **The snapshot** is the file `snapshot`: `[magic "BTWALSNP" 8]
//!   [version u32 = 1][crc u32][last included index u64][len u64][data]`, the CRC
//!   covering index, length and data. It is replaced atomically: written to
//!   `snapshot.tmp`, fsynced, renamed over `snapshot`, directory fsynced.
//!   Afterwards every segment whose records all have indexes `<=` the snapshot's
//!   is deleted.
//!
//! # Recovery: torn tail versus corruption
//!
//! [`Wal::open`] reads every segment and verifies every record. A *defect* at
//! some offset is: fewer than 16 bytes left for a header, a length that runs
//! past the end of the file, or a checksum mismatch; but when every byte from
//! there to the end of the file is zero, that is preallocated free space and
//! the segment simply ends.
//!
//! * In the **last** segment, a defect is a **torn tail** if no *valid record*
//!   starts at any later byte offset of that file, where a valid record is one
//!   whose checksum verifies and whose index is at least the index expected at
//!   the defect. A torn tail is cut: the file is truncated at the defect and
//!   fsynced, and the cut is reported in [`Recovered::cut_tails`]. A crash can
//!   only leave a torn tail behind (a `kill -9` leaves a prefix of what was
//!   written), so acknowledged records are never cut.
//! * A defect that **is followed by a valid record**, or any defect in a
//!   segment that is **not the last**, is corruption: `open` fails with
//!   [`WalError::Corrupt`] naming the file and the defect's offset. Nothing is
//!   ever skipped.
//! * A record whose checksum verifies but whose index is not the expected one,
//!   a segment whose first index does not continue the previous segment, a
//!   first segment that starts after the snapshot's index + 1, a bad segment
//!   header, and a snapshot or segment that names an index of 2^63 or more are
//!   corruption too. The one exception is the header of the
//!   last segment: if it is damaged or missing and no valid record follows
//!   it, the process died while creating that segment, and the file is
//!   removed (also reported in [`Recovered::cut_tails`]).
//!
//! Known limit: after a *power failure* (not a process crash) a disk may have
//! persisted a later page of an unsynced batch but not an earlier one. That
//! leaves a hole followed by valid (never acknowledged) records, which this
//! log reports as corruption rather than guess; no acknowledged record is
//! lost either way.

mod error;
mod options;
pub(crate) mod record;
mod recovery;
pub(crate) mod segment;
mod snapshot;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use error::WalError;
pub use options::{MAX_RECORD_BYTES_LIMIT, WalOptions};
pub use recovery::{CutTail, Recovered};

use error::io_err;
use record::RECORD_HEADER_LEN;

/// Indexes from here on are corruption: a snapshot or a segment that names one is refused
/// when the log is opened. No log gets near it (a record a nanosecond takes 292 years),
/// and it leaves room to count past any index read from disk without overflow.
pub(crate) const MAX_INDEX: u64 = 1 << 63;
use segment::{SEGMENT_HEADER_LEN, SegmentFile};

/// An open write-ahead log. See the [module docs](self).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// Every segment on disk, by first index; the last one is active.
    segments: Vec<SegmentFile>,
    /// The active segment, opened for appending.
    active: File,
    /// Bytes of records in the active segment's file (written, maybe not yet
    /// synced); the file position is kept here.
    active_len: u64,
    /// The active file's length: records, then zero-filled free space.
    allocated_len: u64,
    /// Framed records appended but not yet written to the file.
    buf: Vec<u8>,
    /// The index the next appended record gets.
    next_index: u64,
    /// Every record up to this index is durable.
    durable_index: u64,
    /// Bytes were written to the active file since its last `fdatasync`.
    unsynced: bool,
    /// The current snapshot's last included index (0 if none).
    snapshot_index: u64,
    /// A write or `fdatasync` failed.
    poisoned: bool,
}

impl Wal {
    fn new(
        dir: &Path,
        options: WalOptions,
        segments: Vec<SegmentFile>,
        active: File,
        active_len: u64,
        allocated_len: u64,
        next_index: u64,
    ) -> Wal {
        Wal {
            dir: dir.to_path_buf(),
            options,
            segments,
            active,
            active_len,
            allocated_len,
            buf: Vec::new(),
            next_index,
            durable_index: next_index - 1,
            unsynced: false,
            snapshot_index: 0,
            poisoned: false,
        }
    }

    /// Buffers `record` and returns its index (one more than the previous
    /// record's). The record is durable only after the next [`Wal::sync`].
    pub fn append(&mut self, record: &[u8]) -> Result<u64, WalError> {
        self.check_usable()?;
        if record.len() > self.options.max_record_bytes {
            return Err(WalError::RecordTooLarge {
                len: record.len(),
                max: self.options.max_record_bytes,
            });
        }
        // The last index is kept free, so that the log opens again: its active segment
        // starts at the next index, and one starting at 2^63 is corruption.
        if self.next_index >= MAX_INDEX - 1 {
            return Err(WalError::LogFull {
                index: self.next_index,
            });
        }
        let framed = (RECORD_HEADER_LEN + record.len()) as u64;
        let active_has_records = self.next_index > self.active_first_index();
        if active_has_records
            && self.active_len + self.buf.len() as u64 + framed > self.options.segment_bytes
        {
            let rolled = self.roll();
            self.poison_on_err(rolled)?;
        }
        let index = self.next_index;
        record::encode(&mut self.buf, index, record);
        self.next_index += 1;
        if self.buf.len() >= self.options.write_buffer_bytes {
            let written = self.write_buffered();
            self.poison_on_err(written)?;
        }
        Ok(index)
    }

    /// Writes every buffered record and makes all of them durable with one
    /// `fdatasync` (group commit). When it returns `Ok`, every record appended
    /// so far survives any crash.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        let synced = self.sync_inner();
        self.poison_on_err(synced)
    }

    /// Durably replaces the snapshot with `snapshot`, which stands for every
    /// record up to and including `last_included_index`, then deletes the
    /// segments whose records are all covered by it.
    ///
    /// Syncs the log first. The snapshot file is replaced atomically (temp
    /// file, fsync, rename, directory fsync): after a crash [`Wal::open`] sees
    /// either the old snapshot or the new one. `last_included_index` must not
    /// be below the current snapshot's nor above the last appended index.
    pub fn save_snapshot(
        &mut self,
        last_included_index: u64,
        snapshot: &[u8],
    ) -> Result<(), WalError> {
        self.check_usable()?;
        if last_included_index < self.snapshot_index {
            return Err(WalError::SnapshotRegression {
                index: last_included_index,
                current: self.snapshot_index,
            });
        }
        let last = self.last_index();
        if last_included_index > last {
            return Err(WalError::SnapshotBeyondLog {
                index: last_included_index,
                last,
            });
        }
        self.sync()?;
        snapshot::write_snapshot(&self.dir, last_included_index, snapshot)?;
        self.snapshot_index = last_included_index;
        if last_included_index == last && self.next_index > self.active_first_index() {
            // Everything is covered: start a fresh segment so that the active
            // one can be deleted too.
            let rolled = self.roll();
            self.poison_on_err(rolled)?;
        }
        self.delete_covered()
    }

    /// The index the next appended record will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The index of the last appended record (synced or not), or of the
    /// snapshot if nothing was appended after it; 0 for an empty log.
    pub fn last_index(&self) -> u64 {
        self.next_index - 1
    }

    /// Every record up to this index is durable.
    pub fn durable_index(&self) -> u64 {
        self.durable_index
    }

    /// The current snapshot's last included index, if there is a snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_err<T>(&mut self, result: Result<T, WalError>) -> Result<T, WalError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn active_segment(&self) -> &SegmentFile {
        // Invariant: there is always an active segment.
        &self.segments[self.segments.len() - 1]
    }

    fn active_first_index(&self) -> u64 {
        self.active_segment().first_index
    }

    /// Hands the buffered records to the OS (no `fdatasync`).
    fn write_buffered(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // Mark first: after a failed, partial write the bytes may be on disk.
        self.unsynced = true;
        let path = &self.segments[self.segments.len() - 1].path;
        self.active
            .write_all(&self.buf)
            .map_err(io_err("write", path))?;
        self.active_len += self.buf.len() as u64;
        self.buf.clear();
        if self.active_len >= self.allocated_len && self.options.preallocate_bytes > 0 {
            self.extend_allocation()?;
        }
        Ok(())
    }

    /// The records ran into (or past) the end of the zero-filled space: fill
    /// the next [`WalOptions::preallocate_bytes`] after them. The `fdatasync`
    /// that follows commits the new file size once for all of them.
    fn extend_allocation(&mut self) -> Result<(), WalError> {
        let target = (self.active_len + self.options.preallocate_bytes)
            .min(self.options.segment_bytes)
            .max(self.active_len);
        let path = &self.segments[self.segments.len() - 1].path;
        segment::zero_fill(&mut self.active, path, self.active_len, target)?;
        self.active
            .seek(SeekFrom::Start(self.active_len))
            .map_err(io_err("seek", path))?;
        self.allocated_len = target;
        Ok(())
    }

    fn sync_inner(&mut self) -> Result<(), WalError> {
        self.write_buffered()?;
        if self.unsynced {
            let path = &self.segments[self.segments.len() - 1].path;
            self.active.sync_data().map_err(io_err("fdatasync", path))?;
            self.unsynced = false;
        }
        self.durable_index = self.next_index - 1;
        Ok(())
    }

    /// Syncs the active segment and starts a new one at `next_index`.
    fn roll(&mut self) -> Result<(), WalError> {
        self.sync_inner()?;
        let allocate_to = initial_allocation(&self.options);
        let (file, path) = segment::create_segment(&self.dir, self.next_index, allocate_to)?;
        self.segments.push(SegmentFile {
            first_index: self.next_index,
            path,
        });
        self.active = file;
        self.active_len = SEGMENT_HEADER_LEN as u64;
        self.allocated_len = allocate_to;
        Ok(())
    }

    /// Deletes the segments whose records are all covered by the snapshot.
    fn delete_covered(&mut self) -> Result<(), WalError> {
        let covered = count_covered(&self.segments, self.snapshot_index);
        remove_segments(&self.dir, &mut self.segments, covered)
    }
}

/// How long a new segment's file is made: its header plus the preallocated
/// zeros, within `segment_bytes` (but never shorter than the header).
fn initial_allocation(options: &WalOptions) -> u64 {
    let header = SEGMENT_HEADER_LEN as u64;
    (header + options.preallocate_bytes)
        .min(options.segment_bytes)
        .max(header)
}

/// How many leading segments hold only records `<= snapshot_index`. The last
/// segment never counts: its end is not known from the names alone.
fn count_covered(segments: &[SegmentFile], snapshot_index: u64) -> usize {
    segments
        .windows(2)
        .take_while(|pair| pair[1].first_index <= snapshot_index + 1)
        .count()
}

/// Deletes the first `count` segments and fsyncs the directory.
fn remove_segments(
    dir: &Path,
    segments: &mut Vec<SegmentFile>,
    count: usize,
) -> Result<(), WalError> {
    if count == 0 {
        return Ok(());
    }
    // Oldest first, so that a crash part-way leaves a gap-free suffix.
    for removed in 0..count {
        let path = &segments[removed].path;
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                let err = io_err("remove", path)(e);
                segments.drain(..removed);
                return Err(err);
            }
        }
    }
    segments.drain(..count);
    segment::sync_dir(dir)
}
