//! The write-ahead log's and the file storage's decoders, callable on plain bytes by the
//! fuzz targets in `fuzz/` (the `fuzzing` feature). Not part of the crate's API: nothing
//! else may use it.
//!
//! Each wrapper runs the code [`FileStorage::open`](crate::FileStorage::open) runs on what
//! it reads from disk: record framing, segment scanning (torn tail against corruption),
//! the last segment's header check, and the decoding of the recovered snapshot and
//! records into a [`DurableState`].

use std::ops::Range;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::error::StorageError;
use crate::storage::DurableState;
use crate::storage::file;
use crate::storage::wal::record;
use crate::storage::wal::segment::{self, LastHeader, SegmentFile};
use crate::storage::wal::{Recovered, WalError};

/// Bytes in a record header.
pub const RECORD_HEADER_LEN: usize = record::RECORD_HEADER_LEN;

/// Bytes in a segment header.
pub const SEGMENT_HEADER_LEN: usize = segment::SEGMENT_HEADER_LEN;

/// Appends the framed record (header with checksum, then payload) to `out`.
pub fn encode_record(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    record::encode(out, index, payload);
}

/// A record that decoded and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Its index.
    pub index: u64,
    /// Where its payload is in the buffer.
    pub payload: Range<usize>,
    /// The offset just past it.
    pub end: usize,
}

/// Decodes the record at `pos` (at most `buf.len()`), or says why none is there.
pub fn decode_record(buf: &[u8], pos: usize) -> Result<DecodedRecord, &'static str> {
    match record::decode_at(buf, pos) {
        Ok(rec) => Ok(DecodedRecord {
            index: rec.index,
            payload: rec.end - rec.payload.len()..rec.end,
            end: rec.end,
        }),
        Err(defect) => Err(defect.describe()),
    }
}

/// The first valid record at an offset in `from..` with an index of at least `min_index`,
/// as recovery looks for one after a defect: its offset and index.
pub fn find_valid_record_after(buf: &[u8], from: usize, min_index: u64) -> Option<(usize, u64)> {
    record::find_valid_after(buf, from, min_index)
}

/// The header of a segment whose first record has index `first_index`.
pub fn segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_LEN] {
    segment::encode_header(first_index)
}

/// What recovery made of one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// The last segment's header was torn while it was being created (no valid record
    /// follows it): recovery removes the file.
    TornCreation,
    /// The segment was read.
    Scanned {
        /// Its records after `skip_through`, with their indexes.
        records: Vec<(u64, Vec<u8>)>,
        /// The index after its last valid record.
        next_index: u64,
        /// The offset just past its last valid record.
        valid_len: u64,
        /// The torn tail recovery would cut, if any: where it starts and why.
        torn: Option<(u64, &'static str)>,
    },
}

/// Reads a segment file's bytes as recovery does: when it is the last segment, its
/// header is first checked for a torn creation; then every record is verified.
/// `first_index` is the index the file's name promises. An error is the corruption
/// recovery refuses to open.
pub fn scan_segment(
    bytes: &[u8],
    first_index: u64,
    is_last: bool,
    skip_through: u64,
) -> Result<SegmentOutcome, WalError> {
    let seg = SegmentFile {
        first_index,
        path: PathBuf::from(segment::segment_name(first_index)),
    };
    if is_last && let LastHeader::TornCreation = segment::classify_last_header(&seg, bytes)? {
        return Ok(SegmentOutcome::TornCreation);
    }
    let scan = segment::scan_segment_bytes(&seg, bytes, is_last, skip_through)?;
    debug_assert_eq!(scan.file_len, bytes.len() as u64);
    Ok(SegmentOutcome::Scanned {
        records: scan.records,
        next_index: scan.next_index,
        valid_len: scan.valid_len,
        torn: scan.torn.map(|(at, defect)| (at, defect.describe())),
    })
}

/// The durable state that a recovered snapshot and records decode to, as
/// [`FileStorage::open`](crate::FileStorage::open) builds it.
pub fn durable_state<C, O>(
    snapshot: Option<(u64, Vec<u8>)>,
    records: Vec<(u64, Vec<u8>)>,
) -> Result<DurableState<C, O>, StorageError>
where
    C: DeserializeOwned,
    O: DeserializeOwned,
{
    file::durable_state(&Recovered {
        snapshot,
        records,
        cut_tails: Vec::new(),
    })
}
