//! Why a torrent file is rejected.

/// Why a torrent cannot be read or built. Every message is meant for a person: it says
/// what is wrong and, where it helps, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentError {
    /// The file is larger than any valid torrent file.
    #[error(
        "the torrent file is {len} bytes, larger than the limit of {max} bytes; \
         it is not a torrent file or it describes too many pieces"
    )]
    TooLarge {
        /// Size of the file.
        len: u64,
        /// The limit, [`MAX_TORRENT_FILE_LEN`](super::MAX_TORRENT_FILE_LEN).
        max: u64,
    },
    /// The file does not start with the magic.
    #[error(
        "not a ByteTorrent torrent file (it does not start with the bytes \"BTTORENT\" \
         that every torrent file starts with)"
    )]
    NotATorrent,
    /// The file ends before its end.
    #[error("the torrent file is truncated: it ends in the middle of the {part}")]
    Truncated {
        /// Which part: "header", "torrent body" or "info part".
        part: &'static str,
    },
    /// A format version this implementation cannot read.
    #[error(
        "unsupported torrent file format version {found}: this program reads version \
         {supported}{}",
        if *found > *supported { " (the file was made by a newer program)" } else { "" }
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The version this implementation reads.
        supported: u16,
    },
    /// The MessagePack structure is wrong: a missing or unknown field, a wrong type.
    #[error("the torrent file is corrupt: its {part} is not valid: {detail}")]
    Corrupt {
        /// Which part: "torrent body" or "info part".
        part: &'static str,
        /// What the decoder found.
        detail: String,
    },
    /// Bytes follow the encoded value.
    #[error("the torrent file is corrupt: {extra} unexpected bytes follow its {part}")]
    TrailingData {
        /// Which part: "torrent body" or "info part".
        part: &'static str,
        /// How many bytes follow.
        extra: usize,
    },
    /// The name is empty.
    #[error("the torrent has an empty name")]
    EmptyName,
    /// The name is not a plain file name.
    #[error("the torrent's name {name:?} cannot be used as a file name: {reason}")]
    UnsafeName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file's path could leave the download directory or is not portable.
    #[error("unsafe file path {path:?} in the torrent: {reason}")]
    UnsafePath {
        /// The path, with the torrent's name first, joined with `/`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two files have the same path.
    #[error("the torrent lists the file {path:?} twice")]
    DuplicatePath {
        /// The path, with the torrent's name first.
        path: String,
    },
    /// A file's path is a directory of another file's path.
    #[error("the torrent has a file {file:?} but also uses it as a directory for {other:?}")]
    PathConflict {
        /// The file, with the torrent's name first.
        file: String,
        /// The file below it.
        other: String,
    },
    /// The torrent has no files.
    #[error("the torrent lists no files")]
    NoFiles,
    /// The torrent has too many files.
    #[error("the torrent lists {count} files, more than the limit of {max}")]
    TooManyFiles {
        /// Number of files.
        count: usize,
        /// The limit, [`MAX_FILES`](super::MAX_FILES).
        max: usize,
    },
    /// The file lengths add up to more than 2^64 - 1 bytes.
    #[error("the torrent's file lengths add up to more than 2^64 - 1 bytes")]
    TotalLengthOverflow,
    /// The piece length is out of range or not a power of two.
    #[error(
        "the torrent's piece length {piece_length} is not valid: it must be a power of two \
         from 16 KiB (16384) to 64 MiB (67108864)"
    )]
    BadPieceLength {
        /// The piece length in the file.
        piece_length: u32,
    },
    /// The piece hashes are not a whole number of 32-byte hashes.
    #[error(
        "the torrent's piece hashes are {len} bytes long, which is not a whole number of \
         32-byte BLAKE3 hashes"
    )]
    BadPieceHashes {
        /// Length of the `pieces` field.
        len: usize,
    },
    /// The number of piece hashes does not match the total length.
    #[error(
        "the torrent is inconsistent: it has {pieces} piece hashes, but its files total \
         {total_length} bytes, which at {piece_length} bytes per piece make {expected} pieces"
    )]
    PieceCountMismatch {
        /// Number of hashes in the file.
        pieces: u64,
        /// Number of pieces the lengths call for.
        expected: u64,
        /// Total length of the files.
        total_length: u64,
        /// The piece length.
        piece_length: u32,
    },
    /// The torrent names no tracker node.
    #[error("the torrent lists no tracker nodes, so peers could not find each other")]
    NoTrackers,
    /// The torrent names too many tracker nodes.
    #[error("the torrent lists {count} tracker nodes, more than the limit of {max}")]
    TooManyTrackers {
        /// Number of tracker nodes.
        count: usize,
        /// The limit, [`MAX_TRACKERS`](super::MAX_TRACKERS).
        max: usize,
    },
    /// A tracker node's address is not usable.
    #[error("the torrent lists a tracker node at {addr:?}, which is not usable: {reason}")]
    BadTrackerAddress {
        /// The address as written.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same tracker node is listed twice.
    #[error("the torrent lists the tracker node {addr} twice")]
    DuplicateTracker {
        /// The address.
        addr: String,
    },
    /// The tracker CA fingerprint is not 32 bytes.
    #[error(
        "the torrent file is corrupt: the tracker CA fingerprint is {len} bytes, \
         but a fingerprint is 32 bytes"
    )]
    BadTrackerCa {
        /// Its length.
        len: usize,
    },
    /// The comment is too long.
    #[error("the torrent's comment is {len} bytes, more than the limit of {max}")]
    CommentTooLong {
        /// Length of the comment.
        len: usize,
        /// The limit, [`MAX_COMMENT_LEN`](super::MAX_COMMENT_LEN).
        max: usize,
    },
    /// The comment contains a control or invisible formatting character.
    #[error("the torrent's comment contains {reason}; remove that character")]
    UnsafeComment {
        /// Which character, and what it is.
        reason: String,
    },
}
