//! The peer-facing tracker protocol (`bytetorrent/tracker/2`): one definition of every
//! request and response, shared by the tracker's service and its client library.
//!
//! Each request travels on its own request stream (stream kind `0x01`, see PROTOCOL.md
//! section 2) as a MessagePack [`Request`] and is answered with one [`Response`]. The
//! peer's identity is the fingerprint of the key it proved in the TLS handshake; no
//! request names it, so no peer can speak for another.
//!
//! Writes carry the client's session id and a sequence number (`client`, `seq`): a write
//! retried with the same pair, through any tracker node, is applied once and answered with
//! the first answer.

use std::net::SocketAddr;

use certs::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::bitfield::Bitfield;
use crate::torrent::InfoHash;

/// ALPN of the peer-facing protocol.
///
/// Version 2 encodes fingerprints as `bin`, addresses as `"ip:port"` text and adds the
/// search order; a client offering only version 1 fails the handshake with
/// `no_application_protocol`.
pub const ALPN_TRACKER: &[u8] = b"bytetorrent/tracker/2";

/// ALPN of the operator protocol, served on the cluster address to holders of a
/// certificate from the cluster CA.
///
/// Version 2 adds [`AdminRequest::SwarmMembers`]; version 3 adds the membership requests
/// ([`AdminRequest::Cluster`], [`AdminRequest::ChangeMembership`],
/// [`AdminRequest::TransferLeader`]). A client offering only an older version fails the
/// handshake with `no_application_protocol`.
pub const ALPN_TRACKER_ADMIN: &[u8] = b"bytetorrent/tracker-admin/3";

/// Most members in one [`AdminResponse::Members`] page: 1,000 members of a 16,384-piece
/// torrent are about 2.1 MB, well inside [`MAX_FRAME_LEN`].
pub const MAX_MEMBERS_PER_PAGE: u32 = 1000;

/// Largest frame on the peer-facing protocol and on the operator protocol, in bytes: a torrent file of the largest
/// size allowed ([`MAX_TORRENT_FILE_LEN`](crate::torrent::MAX_TORRENT_FILE_LEN), 16 MiB)
/// plus 4 KiB for the MessagePack envelope around it (the request or response variant,
/// the write id, the token). A `Publish` request and a `Torrent` answer each carry one
/// whole torrent file, so both the node's peer endpoint and every endpoint that talks to
/// a tracker accept frames this large.
pub const MAX_FRAME_LEN: usize = crate::torrent::MAX_TORRENT_FILE_LEN + 4096;

/// Neighbours a joining peer is given unless it asks for another number.
pub const DEFAULT_NEIGHBOURS: u32 = 5;

/// Most neighbours or peers returned by one request.
pub const MAX_PEERS_PER_ANSWER: u32 = 50;

/// Shortest API token accepted: 32 characters (the `bt-tracker` CLI makes 43 characters
/// of base64url, 256 random bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// Longest search text accepted, in bytes.
pub const MAX_SEARCH_LEN: usize = 1024;

/// Results per search page.
pub const SEARCH_PAGE_LEN: u32 = 50;

/// A write's exactly-once identity: the client's session id and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteId {
    /// The client's session id, random per client process.
    pub client: u64,
    /// Starts at 1, one more per new write; a retry reuses it.
    pub seq: u64,
}

/// Another peer in a swarm, as the tracker tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The fingerprint to expect when dialling it.
    pub fingerprint: Fingerprint,
    /// Where it accepts connections (`"ip:port"` on the wire).
    #[serde(with = "crate::encoding::socket_addr")]
    pub addr: SocketAddr,
    /// Pieces it holds, as last reported.
    pub pieces: u32,
}

/// A torrent in a list of results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentSummary {
    /// Its name.
    pub info_hash: InfoHash,
    /// The torrent's name.
    pub name: String,
    /// Total bytes.
    pub size: u64,
    /// Pieces.
    pub piece_count: u32,
    /// Peers holding every piece.
    pub seeders: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers that completed a download (each counted once).
    pub completed: u64,
    /// When it was published, milliseconds since the Unix epoch.
    pub added_ms: u64,
    /// Who published it.
    pub uploader: String,
}

/// One page of search results, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    /// Matching torrents in all pages.
    pub total: u64,
    /// This page's torrents.
    pub hits: Vec<TorrentSummary>,
}

/// What a tracker node says about itself and the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub id: u64,
    /// Whether it leads.
    pub is_leader: bool,
    /// The leader it believes in.
    pub leader: Option<u64>,
    /// Highest log slot known chosen here.
    pub decided: u64,
    /// Highest log slot applied here.
    pub applied: u64,
}

/// What search results are ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    /// When the torrent was published.
    #[default]
    Added,
    /// The name, ignoring case.
    Name,
    /// Total size.
    Size,
    /// Peers holding every piece.
    Seeders,
    /// Peers still downloading.
    Leechers,
    /// Completed downloads.
    Completed,
}

/// The order of search results: a key and a direction. Ties are broken by the default
/// order (newest first, then info hash), so every replica pages alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SearchOrder {
    /// The key.
    pub by: SortKey,
    /// Largest, latest or last in the alphabet first.
    pub descending: bool,
}

impl Default for SearchOrder {
    /// Newest first, the order of the index itself (no sorting needed).
    fn default() -> Self {
        SearchOrder {
            by: SortKey::Added,
            descending: true,
        }
    }
}

/// A request from a peer (or a CLI) to any tracker node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Stores a torrent file; needs an API token. Answer: [`Response::Published`].
    Publish {
        /// Exactly-once identity.
        id: WriteId,
        /// The API token, as created by `bt-tracker token create` or on the web site.
        token: String,
        /// The torrent file, byte for byte.
        #[serde(with = "serde_bytes")]
        torrent: Vec<u8>,
    },
    /// The torrent file, byte for byte as uploaded. Answer: [`Response::Torrent`].
    GetTorrent {
        /// Which torrent.
        info_hash: InfoHash,
    },
    /// Torrents whose names contain every word (case-insensitive), newest first.
    /// Answer: [`Response::Search`].
    Search {
        /// Words separated by white space; empty lists everything.
        words: String,
        /// Page number from 0, [`SEARCH_PAGE_LEN`] results per page.
        page: u32,
        /// The order; absent means newest first.
        #[serde(default)]
        order: SearchOrder,
    },
    /// Joins (or re-joins) a swarm. Answer: [`Response::Joined`].
    Join {
        /// Exactly-once identity.
        id: WriteId,
        /// Which swarm.
        info_hash: InfoHash,
        /// Where this peer accepts connections from others: an IP address and port,
        /// `203.0.113.7:7000` or `[2001:db8::1]:7000`. Text, so that a node can answer a
        /// malformed one with [`ApiError::BadRequest`] saying what is wrong.
        addr: String,
        /// Pieces it holds now.
        have: Bitfield,
        /// Neighbours wanted, at most [`MAX_PEERS_PER_ANSWER`].
        want: u32,
    },
    /// Pieces gained since the last report. Answer: [`Response::Done`].
    Have {
        /// Exactly-once identity.
        id: WriteId,
        /// Which swarm.
        info_hash: InfoHash,
        /// The new pieces.
        pieces: Vec<u32>,
    },
    /// Pieces this peer was thought to have but does not (lost, changed on disk).
    /// The record is corrected at once. Answer: [`Response::Done`].
    NotHave {
        /// Exactly-once identity.
        id: WriteId,
        /// Which swarm.
        info_hash: InfoHash,
        /// The pieces it lacks.
        pieces: Vec<u32>,
    },
    /// Leaves a swarm. Answer: [`Response::Done`].
    Leave {
        /// Exactly-once identity.
        id: WriteId,
        /// Which swarm.
        info_hash: InfoHash,
    },
    /// "Still here", for every swarm this peer is in. Answer: [`Response::Done`], or
    /// [`ApiError::NotInSwarm`] when `info_hash` names a swarm this peer is not in (it
    /// was expired, say after a long pause): the peer then joins that swarm again.
    Heartbeat {
        /// Exactly-once identity.
        id: WriteId,
        /// The swarm the sender heartbeats for, to be told if it is no longer in it.
        /// Absent (older clients): no such check.
        #[serde(default)]
        info_hash: Option<InfoHash>,
    },
    /// More neighbours, other than the ones named. Answer: [`Response::Peers`].
    MorePeers {
        /// Which swarm.
        info_hash: InfoHash,
        /// Peers the asker already has or does not want.
        exclude: Vec<Fingerprint>,
        /// How many, at most [`MAX_PEERS_PER_ANSWER`].
        want: u32,
    },
    /// Peers holding `piece`, for when no neighbour has it. Answer: [`Response::Peers`].
    PeersWithPiece {
        /// Which swarm.
        info_hash: InfoHash,
        /// The piece.
        piece: u32,
        /// How many, at most [`MAX_PEERS_PER_ANSWER`].
        want: u32,
    },
    /// The node's view of the cluster. Answer: [`Response::Status`].
    Status,
}

/// A tracker node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The torrent is stored (or already was) under this info hash.
    Published(InfoHash),
    /// The torrent file.
    Torrent(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Search results.
    Search(SearchPage),
    /// Joined: the neighbours to dial, and how often to send heartbeats.
    Joined {
        /// Neighbours, each with its fingerprint.
        neighbours: Vec<PeerInfo>,
        /// A peer not heard from for this long is removed from its swarms.
        ttl_ms: u64,
    },
    /// The write was applied.
    Done,
    /// Peers.
    Peers(Vec<PeerInfo>),
    /// The node's view.
    Status(NodeStatus),
    /// Refused for good: retrying the same request cannot succeed.
    Error(ApiError),
    /// Not done; retry the same request (same [`WriteId`]), here later or at another node.
    Unavailable(String),
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The API token is missing, unknown, revoked, or its user is disabled.
    #[error("the API token is not valid (unknown, revoked, or its user is disabled)")]
    Unauthorized,
    /// The torrent file is not valid.
    #[error("invalid torrent file: {0}")]
    InvalidTorrent(String),
    /// No torrent has this info hash.
    #[error("no torrent {0} on this tracker")]
    UnknownTorrent(InfoHash),
    /// A piece index beyond the torrent's end, or a bitfield of the wrong length.
    #[error("{0}")]
    BadPieces(String),
    /// The request is malformed or out of bounds.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A user with this name exists.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// No user has this name.
    #[error("no user {0:?}")]
    UnknownUser(String),
    /// The write's sequence number is older than one already applied for this client.
    #[error("stale request: a newer write of this client was already applied")]
    Stale,
    /// The peer is not in this torrent's swarm (it never joined, left, or was expired
    /// after its time to live): it must join again.
    #[error(
        "this peer is not in the swarm of torrent {0} (expired or never joined): join it again"
    )]
    NotInSwarm(InfoHash),
}

/// An operator's request, on [`ALPN_TRACKER_ADMIN`] at a node's cluster address, from a
/// client holding a certificate of the cluster CA (`bt-tracker certs ca` writes one named
/// `admin`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Adds a user. Answer: [`AdminResponse::Done`].
    AddUser {
        /// Exactly-once identity.
        id: WriteId,
        /// The name: 1 to 64 characters of letters, digits, `_`, `.` and `-`.
        name: String,
        /// The password (hashed with argon2 by the node; never stored).
        password: String,
        /// Whether the user is an administrator.
        admin: bool,
    },
    /// Disables or enables a user. Answer: [`AdminResponse::Done`].
    SetUserDisabled {
        /// Exactly-once identity.
        id: WriteId,
        /// The user.
        name: String,
        /// Disabled or not.
        disabled: bool,
    },
    /// Stores an API token for a user. Answer: [`AdminResponse::Done`].
    ///
    /// The client makes the token (at least [`MIN_TOKEN_LEN`] random characters) so that a
    /// retry through another node carries the same token and is applied once; the node
    /// stores only its hash.
    CreateToken {
        /// Exactly-once identity.
        id: WriteId,
        /// The owner.
        user: String,
        /// A label to recognise it by.
        label: String,
        /// The token.
        token: String,
    },
    /// The users. Answer: [`AdminResponse::Users`].
    Users,
    /// One page of a swarm's members with the pieces each holds, read from the answering
    /// node's own applied state (no lease, no forwarding): what this node holds, so that
    /// an operator can compare the replicas. Answer: [`AdminResponse::Members`].
    SwarmMembers {
        /// Which swarm.
        info_hash: InfoHash,
        /// Members whose fingerprint sorts after this one (None: from the first).
        after: Option<Fingerprint>,
        /// At most this many (capped at [`MAX_MEMBERS_PER_PAGE`]).
        limit: u32,
    },
    /// The answering node's view of the cluster: voters, learners, removed ids, the
    /// leader, and on the leader each member's progress. Answer:
    /// [`AdminResponse::Cluster`].
    Cluster,
    /// A membership change, taken only by the leader (others answer
    /// [`AdminResponse::Unavailable`], so the client tries the next node). Idempotent:
    /// a change already in force is [`AdminResponse::Done`] at once. Answer:
    /// [`AdminResponse::Done`] once applied.
    ChangeMembership {
        /// The change.
        change: MemberChange,
    },
    /// Asks the leader to hand its leadership to voter `to` (or, with `None`, to the
    /// most up-to-date other voter). Answer: [`AdminResponse::Done`] once another node
    /// leads.
    TransferLeader {
        /// The successor.
        to: Option<u64>,
    },
}

/// A swarm member and the pieces it holds, as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmMember {
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Where it accepts connections (`"ip:port"` on the wire).
    #[serde(with = "crate::encoding::socket_addr")]
    pub addr: SocketAddr,
    /// The pieces it holds, as the node last applied them.
    pub have: Bitfield,
}

/// One page of a swarm's members, sorted by fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersPage {
    /// Members in the swarm on the answering node (all pages together).
    pub total: u32,
    /// This page's members; fewer than the limit asked for means the last page.
    pub members: Vec<SwarmMember>,
}

/// A user as an operator sees it (no password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The name.
    pub name: String,
    /// Whether it is an administrator.
    pub admin: bool,
    /// Whether it is disabled.
    pub disabled: bool,
}

/// A change of the tracker cluster's membership (see the paxos crate's membership
/// changes: a new node joins as a learner, is made a voter once caught up, and a voter
/// left out of a new voter set is removed for good).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// Adds node `id` as a learner; `address` is `NAME@CLUSTER_ADDR/PEER_ADDR`.
    AddLearner {
        /// A node id never used in this cluster.
        id: u64,
        /// How to reach it.
        address: String,
    },
    /// Makes these the voters: current voters or learners; voters left out are removed.
    SetVoters {
        /// The new voter set.
        voters: Vec<u64>,
    },
    /// Removes a learner.
    RemoveLearner {
        /// Its id.
        id: u64,
    },
}

/// One node's view of the cluster's membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub id: u64,
    /// The leader it follows.
    pub leader: Option<u64>,
    /// Its last decided slot.
    pub decided: u64,
    /// The voters.
    pub voters: Vec<u64>,
    /// The learners (catching up, not voting).
    pub learners: Vec<u64>,
    /// Removed ids, never used again.
    pub retired: Vec<u64>,
    /// Addresses of members added at run time (`NAME@CLUSTER_ADDR/PEER_ADDR`), by id.
    pub addresses: Vec<(u64, String)>,
    /// On the leader: each member's last decided slot, by id.
    pub progress: Vec<(u64, u64)>,
}

impl ClusterStatus {
    /// How many slots `member` lags the answering leader, if known.
    pub fn lag(&self, member: u64) -> Option<u64> {
        self.progress
            .iter()
            .find(|(id, _)| *id == member)
            .map(|(_, p)| self.decided.saturating_sub(*p))
    }

    /// The address of a member added at run time.
    pub fn address(&self, member: u64) -> Option<&str> {
        self.addresses
            .iter()
            .find(|(id, _)| *id == member)
            .map(|(_, a)| a.as_str())
    }
}

/// A node's answer to an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResponse {
    /// Applied.
    Done,
    /// The users.
    Users(Vec<UserInfo>),
    /// A page of a swarm's members.
    Members(MembersPage),
    /// A node's view of the cluster.
    Cluster(ClusterStatus),
    /// Refused for good.
    Error(ApiError),
    /// Not done; retry the same request, here later or at another node.
    Unavailable(String),
}
