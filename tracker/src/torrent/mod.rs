//! Torrent files: what is shared, how it is cut into pieces, and where the trackers are.
//!
//! This module needs none of the tracker's server parts: build the crate with
//! `default-features = false` to use it alone.
//!
//! # Format (version 1)
//!
//! A torrent file is, byte for byte:
//!
//! | offset | size | content |
//! |-------:|-----:|---------|
//! | 0 | 8 | the magic [`MAGIC`], ASCII `BTTORENT` (`42 54 54 4f 52 45 4e 54`) |
//! | 8 | 2 | the format version, unsigned big-endian: [`FORMAT_VERSION`] = 1 |
//! | 10 | rest | the *body*: exactly one MessagePack value, nothing after it |
//!
//! The body is a MessagePack **map** with string keys, exactly these five (any order,
//! none repeated, no others):
//!
//! | key | MessagePack type | meaning |
//! |-----|------------------|---------|
//! | `info` | bin | the *info part*: the MessagePack encoding of the info map below |
//! | `trackers` | array of maps | the tracker nodes; each is a map with exactly one key, `addr`: str, an IP address and port, `203.0.113.7:7000` or `[2001:db8::1]:7000` (no host names) |
//! | `tracker_ca` | bin, 32 bytes | the fingerprint of the tracker cluster's CA: BLAKE3 of its SubjectPublicKeyInfo DER (see `certs::Fingerprint`); a tracker node is trusted when its chain ends in a CA with this fingerprint |
//! | `created` | uint | creation time, seconds since the Unix epoch (UTC) |
//! | `comment` | str or nil | free text for people; nil when there is none |
//!
//! The info part (the content of the `info` bin) is itself exactly one MessagePack
//! **map**, with exactly these keys:
//!
//! | key | MessagePack type | meaning |
//! |-----|------------------|---------|
//! | `name` | str | the torrent's name: the file name of a single-file torrent, the top-level directory of a directory torrent |
//! | `piece_length` | uint (32-bit) | bytes per piece; every piece but the last has this length |
//! | `files` | array of maps | the files, in the order their bytes are concatenated; each is a map with exactly the keys `path` (array of str: the path components below `name`) and `length` (uint, 64-bit: bytes) |
//! | `pieces` | bin | the BLAKE3 hash (32 bytes) of every piece, concatenated in piece order |
//!
//! The **info hash**, which names the torrent everywhere else ([`InfoHash`]), is the
//! BLAKE3 hash of the info part's bytes exactly as they stand in the `info` bin. An
//! implementation never re-encodes a parsed info part: it keeps and hashes its bytes. The
//! trackers, the CA, the time and the comment are outside the info part, so they can change
//! without changing the info hash. (This implementation writes maps with the
//! smallest MessagePack encodings, keys in the order listed above.)
//!
//! ## Files and where they go
//!
//! The content is the concatenation of all files, in `files` order, cut into pieces of
//! `piece_length` bytes; the last piece holds the remainder (it is shorter unless the total
//! length is a multiple of the piece length). A piece may span several files. Empty files
//! are allowed and take no bytes. If the total length is 0 there are no pieces.
//!
//! A file is stored at `<download directory>/<name>/<path components...>`:
//!
//! * A **single-file** torrent has exactly one file, whose `path` is **empty** (`[]`):
//!   the file itself is `<download directory>/<name>`.
//! * A **directory** torrent has files whose paths have at least one component: the file
//!   `["photos", "a.jpg"]` of the torrent `holiday` goes to
//!   `<download directory>/holiday/photos/a.jpg`. (A directory holding one file is a
//!   directory torrent with one file whose path is not empty.)
//!
//! `name` and every path component must be a plain file name: not empty, not `.` or `..`,
//! at most [`MAX_COMPONENT_LEN`] bytes of UTF-8, no `/`, `\`, NUL or other control
//! character (U+0000 to U+001F, U+007F), and not starting with a Windows drive prefix (an
//! ASCII letter followed by `:`). No two files may have the same path, and no file's path
//! may be a directory of another file (`a` and `a/b`). Empty directories are not
//! represented.
//!
//! ## Limits
//!
//! A reader rejects a file that breaks any of these; a writer never produces one:
//!
//! | what | limit | constant |
//! |------|-------|----------|
//! | size of the torrent file | 16 MiB | [`MAX_TORRENT_FILE_LEN`] |
//! | piece length | a power of two from 16 KiB to 64 MiB | [`MIN_PIECE_LENGTH`], [`MAX_PIECE_LENGTH`] |
//! | number of pieces | exactly ⌈total length / piece length⌉ (and so at most ~500,000) | |
//! | number of files | 1 to 100,000 | [`MAX_FILES`] |
//! | total length | the sum of the file lengths fits in 64 bits | |
//! | path components per file | 64 | [`MAX_PATH_DEPTH`] |
//! | bytes per name or component | 255 | [`MAX_COMPONENT_LEN`] |
//! | tracker nodes | 1 to 64, no duplicates, no port 0, no unspecified address (`0.0.0.0`, `::`) | [`MAX_TRACKERS`] |
//! | comment | 64 KiB | [`MAX_COMMENT_LEN`] |
//!
//! # Example
//!
//! ```
//! use tracker::torrent::{FileEntry, Info, Torrent, MIN_PIECE_LENGTH};
//!
//! let data = vec![7u8; 40_000];
//! let pieces: Vec<u8> = data
//!     .chunks(MIN_PIECE_LENGTH as usize)
//!     .flat_map(|piece| *blake3::hash(piece).as_bytes())
//!     .collect();
//! let info = Info {
//!     name: "sevens.bin".into(),
//!     piece_length: MIN_PIECE_LENGTH,
//!     files: vec![FileEntry { path: vec![], length: 40_000 }],
//!     pieces,
//! };
//! let ca = certs::Fingerprint::from_bytes([1; 32]);
//! let torrent = Torrent::new(info, vec!["192.0.2.1:7000".parse().unwrap()], ca, 0, None)
//!     .unwrap();
//! assert_eq!(torrent.piece_count(), 3);
//! assert_eq!(torrent.piece_len(2), Some(40_000 - 2 * 16_384));
//!
//! let bytes = torrent.encode();
//! let parsed = Torrent::parse(&bytes).unwrap();
//! assert_eq!(parsed.info_hash(), torrent.info_hash());
//! assert!(Torrent::parse(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("truncated"));
//! ```

mod chars;
mod codec;
pub mod create;
mod error;
mod info_hash;
mod paths;
mod validate;

use std::net::SocketAddr;
use std::ops::Range;

pub use certs::Fingerprint;
pub use create::CreateError;
pub use error::TorrentError;
pub use info_hash::{InfoHash, InfoHashParseError};

/// The first 8 bytes of every torrent file: ASCII `BTTORENT`.
pub const MAGIC: [u8; 8] = *b"BTTORENT";

/// The format version this implementation reads and writes (bytes 8 and 9, big-endian).
pub const FORMAT_VERSION: u16 = 1;

/// Bytes before the MessagePack body: the magic and the version.
pub const HEADER_LEN: usize = MAGIC.len() + 2;

/// Largest torrent file accepted: 16 MiB.
///
/// Torrent files are read whole into memory and often come from strangers; this bounds the
/// memory a hostile file can claim. Piece hashes dominate the size (32 bytes each), so it
/// allows about 500,000 pieces: 32 TiB at the largest piece length, 8 GiB at the smallest.
pub const MAX_TORRENT_FILE_LEN: usize = 16 << 20;

/// Smallest piece length: 16 KiB. Smaller pieces make the piece list and the per-piece
/// bookkeeping of peers larger than the data is worth.
pub const MIN_PIECE_LENGTH: u32 = 16 << 10;

/// Largest piece length: 64 MiB. A peer holds a whole piece in memory to verify it before
/// writing it, and a corrupt piece is downloaded again whole.
pub const MAX_PIECE_LENGTH: u32 = 64 << 20;

/// Most files in one torrent: 100,000. Bounds the work of validating paths and the number
/// of files a download can create.
pub const MAX_FILES: usize = 100_000;

/// Longest name or path component, in bytes of UTF-8: 255, the limit of common file
/// systems (ext4, NTFS in UTF-16 units, APFS).
pub const MAX_COMPONENT_LEN: usize = 255;

/// Most components in one file's path (below the torrent's name): 64. Deeper trees are
/// unusual and strain path-length limits of operating systems.
pub const MAX_PATH_DEPTH: usize = 64;

/// Most tracker nodes in one torrent: 64. A tracker cluster is a handful of nodes.
pub const MAX_TRACKERS: usize = 64;

/// Longest comment, in bytes of UTF-8: 64 KiB. It is shown to people; it is not a payload.
pub const MAX_COMMENT_LEN: usize = 64 << 10;

/// Bytes in one piece hash (BLAKE3).
pub const PIECE_HASH_LEN: usize = 32;

/// The info part: what is shared and how it is cut into pieces.
///
/// This is plain data; [`Torrent::new`] checks it. See the [module docs](self) for the
/// meaning of each field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Info {
    /// The file name of a single-file torrent, or the top-level directory of a directory
    /// torrent.
    pub name: String,
    /// Bytes per piece (a power of two); the last piece may be shorter.
    pub piece_length: u32,
    /// The files, in the order their bytes are concatenated.
    pub files: Vec<FileEntry>,
    /// The BLAKE3 hash of every piece, 32 bytes each, concatenated.
    #[serde(with = "serde_bytes")]
    pub pieces: Vec<u8>,
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path components below the torrent's name; empty for the one file of a single-file
    /// torrent.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
}

/// A part of a piece that lies in one file: see [`Torrent::piece_spans`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    /// Index of the file in [`Torrent::files`].
    pub file: usize,
    /// Offset of the span in the file.
    pub offset: u64,
    /// Length of the span, never 0.
    pub len: u64,
}

/// A checked torrent: every value of this type satisfies all the rules and limits of the
/// [format](self).
///
/// Make one with [`Torrent::parse`], [`Torrent::new`] or [`create::from_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torrent {
    info: Info,
    /// The info part's bytes exactly as hashed and written.
    info_bytes: Vec<u8>,
    info_hash: InfoHash,
    trackers: Vec<SocketAddr>,
    tracker_ca: Fingerprint,
    created: u64,
    comment: Option<String>,
    /// The offset of each file in the concatenated content.
    offsets: Vec<u64>,
    total_length: u64,
}

impl Torrent {
    /// Checks the parts of a torrent and puts them together; the info part is encoded here
    /// and its hash computed.
    ///
    /// `created` is in seconds since the Unix epoch. Fails with the same errors as
    /// [`Torrent::parse`] when a rule or limit is broken, including when the whole file
    /// would be larger than [`MAX_TORRENT_FILE_LEN`].
    pub fn new(
        info: Info,
        trackers: Vec<SocketAddr>,
        tracker_ca: Fingerprint,
        created: u64,
        comment: Option<String>,
    ) -> Result<Torrent, TorrentError> {
        let info_bytes = codec::encode_info(&info)?;
        let torrent = Torrent::assemble(info, info_bytes, trackers, tracker_ca, created, comment)?;
        let len = codec::try_encode(&torrent)?.len();
        if len > MAX_TORRENT_FILE_LEN {
            return Err(TorrentError::TooLarge {
                len: len as u64,
                max: MAX_TORRENT_FILE_LEN as u64,
            });
        }
        Ok(torrent)
    }

    /// Validates everything and computes the derived values.
    fn assemble(
        info: Info,
        info_bytes: Vec<u8>,
        trackers: Vec<SocketAddr>,
        tracker_ca: Fingerprint,
        created: u64,
        comment: Option<String>,
    ) -> Result<Torrent, TorrentError> {
        let (offsets, total_length) = validate::info(&info)?;
        validate::trackers(&trackers)?;
        validate::comment(comment.as_deref())?;
        let info_hash = InfoHash::of_info_bytes(&info_bytes);
        Ok(Torrent {
            info,
            info_bytes,
            info_hash,
            trackers,
            tracker_ca,
            created,
            comment,
            offsets,
            total_length,
        })
    }

    /// The info part.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The info part's bytes, exactly as hashed into the info hash.
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// The info hash: BLAKE3 of [`Torrent::info_bytes`].
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The torrent's name (a file name for a single-file torrent, else a directory name).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The files, in content order.
    pub fn files(&self) -> &[FileEntry] {
        &self.info.files
    }

    /// Whether this is a single-file torrent (one file with an empty path).
    pub fn is_single_file(&self) -> bool {
        matches!(self.info.files.as_slice(), [only] if only.path.is_empty())
    }

    /// Bytes per piece (all pieces but the last).
    pub fn piece_length(&self) -> u32 {
        self.info.piece_length
    }

    /// The tracker nodes' addresses.
    pub fn trackers(&self) -> &[SocketAddr] {
        &self.trackers
    }

    /// The fingerprint of the tracker cluster's CA, which authenticates the tracker nodes.
    pub fn tracker_ca(&self) -> Fingerprint {
        self.tracker_ca
    }

    /// Creation time, in seconds since the Unix epoch.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The comment, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Total length of all files, in bytes.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        // Validation guarantees the count fits (it is bounded by the file size limit).
        u32::try_from(self.info.pieces.len() / PIECE_HASH_LEN).unwrap_or(u32::MAX)
    }

    /// The BLAKE3 hash of a piece, or `None` if there is no such piece.
    pub fn piece_hash(&self, piece: u32) -> Option<[u8; 32]> {
        let start = usize::try_from(piece).ok()?.checked_mul(PIECE_HASH_LEN)?;
        let bytes = self.info.pieces.get(start..start + PIECE_HASH_LEN)?;
        bytes.try_into().ok()
    }

    /// Whether `data` is piece number `piece` (its length and hash), compared in constant
    /// time. False if there is no such piece.
    pub fn piece_matches(&self, piece: u32, data: &[u8]) -> bool {
        match (self.piece_len(piece), self.piece_hash(piece)) {
            (Some(len), Some(hash)) => {
                data.len() as u64 == len && blake3::hash(data) == blake3::Hash::from_bytes(hash)
            }
            _ => false,
        }
    }

    /// The length of a piece: the piece length, less for the last piece; `None` if there is
    /// no such piece.
    pub fn piece_len(&self, piece: u32) -> Option<u64> {
        let range = self.piece_range(piece)?;
        Some(range.end - range.start)
    }

    /// The bytes of the concatenated content that a piece covers; `None` if there is no
    /// such piece.
    pub fn piece_range(&self, piece: u32) -> Option<Range<u64>> {
        if piece >= self.piece_count() {
            return None;
        }
        let start = u64::from(piece) * u64::from(self.info.piece_length);
        let end = (start + u64::from(self.info.piece_length)).min(self.total_length);
        Some(start..end)
    }

    /// The bytes of the concatenated content that a file covers; `None` if there is no such
    /// file.
    pub fn file_range(&self, file: usize) -> Option<Range<u64>> {
        let start = *self.offsets.get(file)?;
        Some(start..start + self.info.files[file].length)
    }

    /// Where the bytes of a piece are: one span per file it touches, in order, skipping
    /// empty files. The spans' lengths add up to [`Torrent::piece_len`]. `None` if there is
    /// no such piece.
    pub fn piece_spans(&self, piece: u32) -> Option<Vec<FileSpan>> {
        let range = self.piece_range(piece)?;
        // The last file that starts at or before the piece.
        let first = self
            .offsets
            .partition_point(|&offset| offset <= range.start)
            .saturating_sub(1);
        let mut spans = Vec::new();
        for (file, (&offset, entry)) in self
            .offsets
            .iter()
            .zip(&self.info.files)
            .enumerate()
            .skip(first)
        {
            if offset >= range.end {
                break;
            }
            let start = range.start.max(offset);
            let end = range.end.min(offset + entry.length);
            if start < end {
                spans.push(FileSpan {
                    file,
                    offset: start - offset,
                    len: end - start,
                });
            }
        }
        Some(spans)
    }
}
