//! What the swarm core asks its runtime to do.

use certs::Fingerprint;
use tracker::api::PeerInfo;

/// One output of the swarm core, drained with [`Swarm::poll_output`](super::Swarm::poll_output).
///
/// The core never performs IO itself: the runtime carries out each action and reports
/// what came of it through the core's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dial this peer, expecting its fingerprint; report [`handle_connected`] or
    /// [`handle_connect_failed`].
    ///
    /// [`handle_connected`]: super::Swarm::handle_connected
    /// [`handle_connect_failed`]: super::Swarm::handle_connect_failed
    Connect(PeerInfo),
    /// Stop downloading from this peer and close the connection if nothing else uses it.
    Disconnect {
        /// Which neighbour.
        peer: Fingerprint,
        /// Whether it sent a piece that failed verification: the core never asks it again,
        /// and the runtime should refuse its connections too.
        banned: bool,
    },
    /// Ask this neighbour for a piece; report [`handle_piece_verified`],
    /// [`handle_piece_corrupt`], [`handle_not_have`] or [`handle_request_failed`].
    ///
    /// [`handle_piece_verified`]: super::Swarm::handle_piece_verified
    /// [`handle_piece_corrupt`]: super::Swarm::handle_piece_corrupt
    /// [`handle_not_have`]: super::Swarm::handle_not_have
    /// [`handle_request_failed`]: super::Swarm::handle_request_failed
    Request {
        /// Which neighbour.
        peer: Fingerprint,
        /// Which piece.
        piece: u32,
    },
    /// Serve this neighbour's request now: read the piece and send it, then report
    /// [`handle_upload_done`](super::Swarm::handle_upload_done).
    Upload {
        /// Which neighbour.
        peer: Fingerprint,
        /// Which piece.
        piece: u32,
    },
    /// Do not serve this request: answer "busy" (the upload queue is full and it is the
    /// least urgent), or "not have" if the piece is not held.
    RefuseUpload {
        /// Which neighbour.
        peer: Fingerprint,
        /// Which piece.
        piece: u32,
    },
    /// Withdraw a request: another neighbour delivered the piece first (endgame).
    Cancel {
        /// Which neighbour.
        peer: Fingerprint,
        /// Which piece.
        piece: u32,
    },
    /// Ask the tracker for more neighbours; hand the answer to
    /// [`handle_peers_offered`](super::Swarm::handle_peers_offered).
    AskTrackerForPeers {
        /// Peers the core already knows, has banned, or is: the tracker should not offer
        /// them.
        exclude: Vec<Fingerprint>,
        /// How many are wanted.
        want: u32,
    },
    /// Ask the tracker who holds this piece, which no neighbour has; hand the answer to
    /// [`handle_peers_offered`](super::Swarm::handle_peers_offered).
    AskTrackerForPiece(u32),
    /// Tell the tracker about these newly verified pieces (ascending).
    ReportHave(Vec<u32>),
    /// Tell the tracker that this peer no longer has these pieces.
    ReportNotHave(Vec<u32>),
    /// Tell the tracker this peer is still here.
    Heartbeat,
    /// Tell the peers connected to this one that it now has these pieces (ascending).
    /// Pieces are announced in batches at most once per
    /// [`SwarmConfig::announce_interval`](super::SwarmConfig::announce_interval), the first
    /// after a quiet spell at once.
    Advertise {
        /// The pieces gained since the last announcement.
        pieces: Vec<u32>,
        /// Neighbours that announced every one of these pieces themselves: the news is
        /// of no use to them, so they are not sent it. (The batch that completes the
        /// download goes to every link: a complete neighbour lets go of a complete peer.)
        known_to: Vec<Fingerprint>,
    },
    /// Every piece is verified: the download is complete and the peer now only seeds.
    /// Emitted each time the download becomes complete (again after a lost piece is
    /// fetched anew), and at construction when every piece is already present.
    Complete,
}
