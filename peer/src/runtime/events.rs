//! The events between the runtime's parts: what dials, links, piece transfers, tracker
//! calls, serving and the torrent's handle tell a torrent's task.

use certs::Fingerprint;
use tracker::Bitfield;
use tracker::api::PeerInfo;

use super::link::Link;

/// What the torrent's helpers and handles tell its task.
pub(crate) enum Event {
    /// A dial asked for by the core succeeded.
    Connected {
        info: PeerInfo,
        link: Link,
        bitfield: Bitfield,
        recv: transport::ChannelReceiver,
    },
    /// A dial failed.
    ConnectFailed { peer: Fingerprint, why: String },
    /// A peer dialled us for this torrent.
    Incoming {
        info: PeerInfo,
        link: Link,
        bitfield: Bitfield,
    },
    /// A neighbour announced a piece.
    Have { peer: Fingerprint, pieces: Vec<u32> },
    /// A neighbour lost a piece.
    Lost { peer: Fingerprint, piece: u32 },
    /// A neighbour said whether it downloads from us, on link `link`.
    Interest {
        peer: Fingerprint,
        link: u64,
        interested: bool,
    },
    /// A neighbour's control channel ended.
    LinkLost { peer: Fingerprint, link: u64 },
    /// A piece transfer ended.
    Fetched {
        peer: Fingerprint,
        piece: u32,
        outcome: Fetch,
    },
    /// The tracker offered peers.
    PeersOffered(Vec<PeerInfo>),
    /// A report to the tracker failed; these pieces are to be reported again, after
    /// joining the swarm again if the tracker said this peer is not in it.
    ReportFailed { have: Vec<u32>, rejoin: bool },
    /// Joining the swarm again succeeded, with these neighbours.
    Rejoined(Vec<PeerInfo>),
    /// Joining the swarm again failed; the next heartbeat tries again.
    RejoinFailed,
    /// A neighbour asks for a piece we hold: the core decides when (and whether) to serve
    /// it; the answer goes to `grant` (true: serve now, false: refuse).
    UploadRequest {
        peer: Fingerprint,
        piece: u32,
        /// How many pieces the requester says it holds.
        requester_holds: u32,
        grant: tokio::sync::oneshot::Sender<bool>,
    },
    /// A granted upload ended, with this many bytes sent (0 if it failed).
    Uploaded {
        peer: Fingerprint,
        piece: u32,
        bytes: u64,
    },
    /// Serving found one of our pieces lost or changed on disk.
    LocalPieceLost(u32),
    /// Saving progress to our own disk failed: the torrent stops with this error.
    StorageFailed(String),
    /// Pause (true) or resume (false).
    Pause(bool),
    /// Leave the swarm and stop.
    Remove,
}

/// How a piece transfer ended.
pub(crate) enum Fetch {
    /// Verified and written.
    Verified(u64),
    /// Failed its BLAKE3 check: the sender is banned.
    Corrupt,
    /// The neighbour does not have it.
    NotHave,
    /// The neighbour's upload queue is full: ask elsewhere for now.
    Busy,
    /// The transfer failed (the neighbour is backed off).
    Failed(String),
    /// Writing to our own disk failed: the torrent stops with this error.
    LocalFailure(String),
}
