//! The peer-to-peer protocol (`bytetorrent/peer/2`): one definition of every message two
//! peers exchange. PROTOCOL.md section 8 describes it for independent implementations.
//!
//! * **Control channel**, one per torrent per connection (stream kind `0x04`, opened by
//!   the dialler): the dialler sends [`Control::Hello`] with the info hash and its
//!   bitfield; the acceptor answers with its own `Hello`, or [`Control::Refuse`] if it
//!   does not serve that torrent. Afterwards either side sends [`Control::Have`] when it
//!   gains pieces and [`Control::Lost`] when it finds one gone from its disk, and
//!   [`Control::Interested`] when it stops (or starts again) downloading from the other.
//!   Each side starts out taken as interested; a side that is not interested and hears
//!   that the other is not either ends the channel.
//! * **Piece requests** (stream kind `0x03`, either side): a [`PieceRequest`] answered by a
//!   [`PieceHeader`] and, for [`PieceHeader::Data`], exactly `len` raw bytes of the piece.
//!   A peer asked for a piece it lacks answers [`PieceHeader::NotHave`] and the connection
//!   stays up.
//!
//! Everything received is checked: a `Hello` whose bitfield has the wrong length, an empty
//! `Have` or one past the torrent's end, or piece data of the wrong length ends the exchange
//! with that peer; piece data is verified against the torrent's BLAKE3 hash before it is
//! written.

use serde::{Deserialize, Serialize};
use tracker::Bitfield;
use tracker::torrent::InfoHash;

pub use transport::ALPN_PEER;

/// Largest frame body on the peer protocol, in bytes: 1 MiB. The largest frame is a
/// `Hello` whose bitfield covers the most pieces a torrent may have (about 500,000
/// pieces, 62.5 KB), so this leaves ample room while bounding what a remote can make a
/// peer allocate. Frames from tracker nodes have their own maximum
/// ([`tracker::api::MAX_FRAME_LEN`]).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// The stream kinds the peer protocol uses: piece requests and control channels. A
/// stream of any other kind is refused with `UNKNOWN_STREAM_KIND`.
pub const STREAM_KINDS: [transport::StreamKind; 2] =
    [transport::StreamKind::Chunk, transport::StreamKind::Channel];

/// A message on a control channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// The first message each way: which torrent, and the pieces the sender has.
    Hello {
        /// The torrent.
        info_hash: InfoHash,
        /// The sender's pieces.
        bitfield: Bitfield,
    },
    /// The acceptor does not serve this torrent (the reason is for logs).
    Refuse(String),
    /// The sender gained these pieces (ascending; at least one, none past the torrent's
    /// end). Pieces are announced in batches: see `SwarmConfig::announce_interval`.
    Have(Vec<u32>),
    /// The sender lost a piece (found missing or changed on its disk).
    Lost(u32),
    /// Whether the sender downloads from the receiver: `false` when it stops (it will
    /// request nothing more), `true` when it starts again over the same channel. A link
    /// that neither side is interested in is closed, so that a peer does not keep (and
    /// announce every piece to) every peer it ever met.
    Interested(bool),
}

/// A request for one whole piece.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The piece.
    pub piece: u32,
    /// How many pieces the requester holds. The server serves those furthest from
    /// completion first; it cannot count them from announcements, which spare it pieces
    /// it already has. Absent (0) from older peers.
    #[serde(default)]
    pub holds: u32,
}

/// The answer's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PieceHeader {
    /// `len` bytes of the piece follow.
    Data {
        /// The piece's length.
        len: u64,
    },
    /// The server does not have this piece (any more): ask someone else.
    NotHave,
    /// The server does not serve this torrent.
    UnknownTorrent,
    /// The server is too busy now; retry later or elsewhere.
    Busy,
}
