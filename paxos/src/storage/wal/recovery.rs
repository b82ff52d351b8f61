//! Opening a log: [`Wal::open`] reads every segment, cuts a torn tail, refuses
//! corruption and reports what it found ([`Recovered`]). The rules are in the
//! [module docs](super#recovery-torn-tail-versus-corruption).

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::segment::{self, LastHeader, SEGMENT_HEADER_LEN, SegmentFile};
use super::{
    MAX_INDEX, Wal, WalError, WalOptions, count_covered, initial_allocation, remove_segments,
    snapshot,
};

/// A damaged tail that [`Wal::open`] removed (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutTail {
    /// The segment file.
    pub file: PathBuf,
    /// Where the cut started (0 if the whole file was removed).
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes_removed: u64,
    /// Whether the whole file was removed (its header was torn while it was
    /// being created).
    pub segment_removed: bool,
    /// Why the data at `offset` was not a valid record.
    pub reason: &'static str,
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The latest snapshot: its last included index and its data.
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// Every record after the snapshot's index, in index order, gap-free.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Torn tails that were cut; empty after a clean shutdown.
    pub cut_tails: Vec<CutTail>,
}

impl Wal {
    /// Opens the log in `dir`, creating the directory and an empty log if
    /// needed, and recovers: verifies every record, cuts a torn tail of the
    /// last segment, fails with [`WalError::Corrupt`] (naming file and offset)
    /// on any other damage, deletes segments left behind a snapshot, and makes
    /// everything it returns durable.
    ///
    /// Returns the log, ready to append after the last surviving record, and
    /// the snapshot plus every surviving record after it.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, Recovered), WalError> {
        options.validate()?;
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                segment::sync_dir(parent)?;
            }
        }
        snapshot::remove_stale_tmp(dir)?;
        // Make the previous run's renames and file creations durable before
        // trusting (and returning) what they contain.
        segment::sync_dir(dir)?;
        let snapshot = snapshot::read_snapshot(dir)?;
        let snapshot_index = snapshot.as_ref().map_or(0, |(index, _)| *index);
        let mut segments = segment::list_segments(dir)?;
        let mut cut_tails = Vec::new();

        // A last segment whose header never made it to disk.
        if let Some(last) = segments.last()
            && let LastHeader::TornCreation = segment::check_last_header(last)?
        {
            let len = fs::metadata(&last.path)
                .map_err(io_err("stat", &last.path))?
                .len();
            fs::remove_file(&last.path).map_err(io_err("remove", &last.path))?;
            cut_tails.push(CutTail {
                file: last.path.clone(),
                offset: 0,
                bytes_removed: len,
                segment_removed: true,
                reason: "segment header torn while the segment was being created",
            });
            segments.pop();
            segment::sync_dir(dir)?;
        }

        // Segments wholly behind the snapshot (a cleanup a crash interrupted)
        // are deleted unread.
        let covered = count_covered(&segments, snapshot_index);
        remove_segments(dir, &mut segments, covered)?;

        if let Some(first) = segments.first() {
            if first.first_index == 0 {
                return Err(WalError::Corrupt {
                    file: first.path.clone(),
                    offset: 0,
                    reason: "segment named after index 0; indexes start at 1".to_owned(),
                });
            }
            if first.first_index > snapshot_index + 1 {
                return Err(WalError::Corrupt {
                    file: first.path.clone(),
                    offset: 0,
                    reason: format!(
                        "the log starts at record {} but the snapshot only covers records \
                         through {snapshot_index}: records {}..={} are missing",
                        first.first_index,
                        snapshot_index + 1,
                        first.first_index - 1
                    ),
                });
            }
        }

        let mut records = Vec::new();
        let mut log_next: Option<u64> = None;
        let mut last_scan = None;
        for (i, seg) in segments.iter().enumerate() {
            if let Some(expected) = log_next
                && seg.first_index != expected
            {
                return Err(WalError::Corrupt {
                    file: seg.path.clone(),
                    offset: 0,
                    reason: format!(
                        "segment starts at record {} but the previous segment ends before record {expected}",
                        seg.first_index
                    ),
                });
            }
            let is_last = i + 1 == segments.len();
            let scan = segment::scan_segment(seg, is_last, snapshot_index)?;
            log_next = Some(scan.next_index);
            records.extend(scan.records);
            if is_last {
                last_scan = Some((scan.valid_len, scan.file_len, scan.torn));
            }
        }

        let next_index = log_next.unwrap_or(1).max(snapshot_index + 1);
        // Its active segment would start at 2^63, which the next open refuses.
        if next_index >= MAX_INDEX {
            return Err(WalError::LogFull { index: next_index });
        }
        let mut wal = match (segments.last(), last_scan) {
            (Some(last), Some((valid_len, file_len, torn))) if log_next == Some(next_index) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&last.path)
                    .map_err(io_err("open", &last.path))?;
                let mut allocated_len = file_len;
                if let Some((offset, defect)) = torn {
                    file.set_len(valid_len)
                        .map_err(io_err("truncate", &last.path))?;
                    allocated_len = valid_len;
                    cut_tails.push(CutTail {
                        file: last.path.clone(),
                        offset,
                        bytes_removed: file_len - valid_len,
                        segment_removed: false,
                        reason: defect.describe(),
                    });
                }
                // Records that were written but not synced before the crash
                // are returned below; make them durable first.
                file.sync_all().map_err(io_err("fsync", &last.path))?;
                file.seek(SeekFrom::Start(valid_len))
                    .map_err(io_err("seek", &last.path))?;
                Wal::new(
                    dir,
                    options,
                    segments,
                    file,
                    valid_len,
                    allocated_len,
                    next_index,
                )
            }
            _ => {
                // No segment, or the log ends before the snapshot's index: start
                // a fresh segment after the snapshot. Older segments are then
                // wholly covered and deleted below.
                let allocate_to = initial_allocation(&options);
                let (file, path) = segment::create_segment(dir, next_index, allocate_to)?;
                segments.push(SegmentFile {
                    first_index: next_index,
                    path,
                });
                Wal::new(
                    dir,
                    options,
                    segments,
                    file,
                    SEGMENT_HEADER_LEN as u64,
                    allocate_to,
                    next_index,
                )
            }
        };
        wal.snapshot_index = snapshot_index;
        wal.delete_covered()?;
        Ok((
            wal,
            Recovered {
                snapshot,
                records,
                cut_tails,
            },
        ))
    }
}
