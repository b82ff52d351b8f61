//! Record framing: `[len u32 LE][crc u32 LE][index u64 LE][payload]`.
//!
//! The checksum is CRC-32 (IEEE, as computed by `crc32fast`) over the
//! little-endian `len`, the little-endian `index` and the payload, so a damaged
//! length or index is caught as surely as a damaged payload. An all-zero header
//! never verifies (the CRC of twelve zero bytes is not zero, and index 0 is
//! never used), so zero-filled space reads as "no record".

/// Bytes in a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 16;

/// The checksum of one record.
pub(crate) fn checksum(len: u32, index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the framed record to `out`. The caller has checked that the payload
/// fits in a `u32`.
pub(crate) fn encode(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    debug_assert_eq!(len as usize, payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(len, index, payload).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record read back from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    /// The record's index.
    pub(crate) index: u64,
    /// The payload.
    pub(crate) payload: &'a [u8],
    /// Offset just past the record.
    pub(crate) end: usize,
}

/// Why no valid record starts at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// Fewer than [`RECORD_HEADER_LEN`] bytes remain.
    ShortHeader,
    /// The length field points past the end of the data.
    LengthPastEnd,
    /// The checksum does not match.
    Checksum,
}

impl Defect {
    /// A human-readable description.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Defect::ShortHeader => "incomplete record header",
            Defect::LengthPastEnd => "record length runs past the end of the segment",
            Defect::Checksum => "record checksum mismatch",
        }
    }
}

fn u32_at(buf: &[u8], pos: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], pos: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    u64::from_le_bytes(b)
}

/// Decodes and verifies the record starting at `pos` (which must be
/// `<= buf.len()`). Never allocates: a damaged length can at most point past
/// the end of `buf`, which is reported as [`Defect::LengthPastEnd`].
pub(crate) fn decode_at(buf: &[u8], pos: usize) -> Result<Decoded<'_>, Defect> {
    let rest = buf.len() - pos;
    if rest < RECORD_HEADER_LEN {
        return Err(Defect::ShortHeader);
    }
    let len = u32_at(buf, pos);
    let crc = u32_at(buf, pos + 4);
    let index = u64_at(buf, pos + 8);
    let body = pos + RECORD_HEADER_LEN;
    if len as usize > buf.len() - body {
        return Err(Defect::LengthPastEnd);
    }
    let end = body + len as usize;
    let payload = &buf[body..end];
    if checksum(len, index, payload) != crc {
        return Err(Defect::Checksum);
    }
    Ok(Decoded {
        index,
        payload,
        end,
    })
}

/// Looks for any valid record starting at an offset in `from..` whose index is
/// at least `min_index`: the evidence that a defect is in the middle of the log
/// rather than at its torn tail. Returns the first one's offset and index.
///
/// Every byte offset is tried. A candidate must have an index in
/// `min_index..=min_index + remaining/16` (records are at least 16 bytes, so a
/// later record cannot have a larger index) and a length that fits, before its
/// checksum is computed, so the scan is linear in practice.
pub(crate) fn find_valid_after(buf: &[u8], from: usize, min_index: u64) -> Option<(usize, u64)> {
    let mut pos = from;
    while pos + RECORD_HEADER_LEN <= buf.len() {
        let rest = buf.len() - pos;
        let index = u64_at(buf, pos + 8);
        let max_index = min_index.saturating_add((rest / RECORD_HEADER_LEN) as u64);
        if (min_index..=max_index).contains(&index)
            && u32_at(buf, pos) as usize <= rest - RECORD_HEADER_LEN
            && decode_at(buf, pos).is_ok()
        {
            return Some((pos, index));
        }
        pos += 1;
    }
    None
}
