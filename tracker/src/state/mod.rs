//! The tracker's replicated state: one [`paxos::StateMachine`] holding the torrents, the
//! swarms and the users. Every tracker node applies the same commands in the same order,
//! so every node answers the same.
//!
//! Commands are deterministic: the node that proposes a command stamps it with its clock
//! (`now_ms`) and any randomness a command needs is derived from its content and slot, so
//! applying it gives the same result on every replica.
//!
//! [`TrackerState`] is the machine. Its parts, one module each: the stored torrents and
//! their search index (`torrents`, `search`), the swarms with their per-piece counts
//! (`swarms`), the choice of neighbours (`neighbours`), users and tokens (`users`), and the
//! snapshot format (`snapshot`). Hot paths cost what they touch: a piece report is two
//! hash-map lookups and one bit per piece, a join samples a bounded number of candidates
//! however large the swarm, and a heartbeat visits only the swarms of its peer.

mod holders;
mod machine;
mod neighbours;
mod search;
mod sessions;
mod snapshot;
mod swarms;
mod torrents;
mod users;

#[cfg(test)]
mod tests;

pub use machine::TrackerState;
pub use search::{MAX_SEARCH_PER_PAGE, MAX_SEARCH_WORDS, SearchOrder, SortKey};
pub use sessions::MAX_SESSIONS_PER_USER;
pub use snapshot::SNAPSHOT_VERSION;
pub(crate) use users::validate_user_name;

use std::net::SocketAddr;

use certs::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, PeerInfo, SearchPage, TorrentSummary};
use crate::bitfield::Bitfield;
use crate::torrent::InfoHash;

/// The BLAKE3 hash of an API token. Tokens are long random secrets, so a fast hash is
/// enough; only hashes enter the log and snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenHash(#[serde(with = "crate::encoding::digest")] pub [u8; 32]);

impl TokenHash {
    /// The hash of a token's text.
    pub fn of(token: &str) -> Self {
        TokenHash(*blake3::hash(token.as_bytes()).as_bytes())
    }
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Manages users.
    Admin,
    /// Publishes torrents and manages their own tokens.
    User,
}

/// Who publishes a torrent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Uploader {
    /// A peer holding an API token.
    Token(TokenHash),
    /// A user signed in on the web site (the node checked the session).
    User(String),
}

/// A command: a change to the state, replicated through the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Stores a torrent file byte for byte. Output: [`Output::Published`].
    Publish {
        /// The file.
        #[serde(with = "serde_bytes")]
        torrent: Vec<u8>,
        /// Who publishes it; must be a valid token or an enabled user.
        by: Uploader,
        /// The proposer's clock, ms since the Unix epoch.
        now_ms: u64,
    },
    /// Adds or refreshes a peer in a swarm. Output: [`Output::Joined`].
    Join {
        /// Which swarm.
        info_hash: InfoHash,
        /// The peer's fingerprint (from its TLS handshake).
        fingerprint: Fingerprint,
        /// Where it accepts connections (`"ip:port"`; the form of earlier versions is
        /// still read).
        #[serde(with = "crate::encoding::socket_addr")]
        addr: SocketAddr,
        /// Pieces it holds.
        have: Bitfield,
        /// Neighbours wanted.
        want: u32,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Pieces gained. Output: [`Output::Done`].
    Have {
        /// Which swarm.
        info_hash: InfoHash,
        /// The peer.
        fingerprint: Fingerprint,
        /// The pieces.
        pieces: Vec<u32>,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Pieces the peer does not have after all. Output: [`Output::Done`].
    NotHave {
        /// Which swarm.
        info_hash: InfoHash,
        /// The peer.
        fingerprint: Fingerprint,
        /// The pieces.
        pieces: Vec<u32>,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Removes the peer from a swarm. Output: [`Output::Done`].
    Leave {
        /// Which swarm.
        info_hash: InfoHash,
        /// The peer.
        fingerprint: Fingerprint,
    },
    /// The peer is alive: refreshes its last-heard time in every swarm. Output:
    /// [`Output::Done`], or [`ApiError::NotInSwarm`] if `info_hash` names a swarm the
    /// peer is not in (its other swarms are refreshed all the same).
    Heartbeat {
        /// The peer.
        fingerprint: Fingerprint,
        /// The proposer's clock.
        now_ms: u64,
        /// The swarm the peer heartbeats for, if it named one. Last, and defaulted, so
        /// that log records written before it existed still decode.
        #[serde(default)]
        info_hash: Option<InfoHash>,
    },
    /// Removes every peer not heard from since `now_ms - ttl`. Proposed by the leader
    /// periodically. Output: [`Output::Expired`].
    Expire {
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Adds a user. Output: [`Output::Done`] or [`ApiError::UserExists`].
    AddUser {
        /// Unique name.
        name: String,
        /// Argon2 hash in PHC string form (hashed by the node, never the password).
        password_hash: String,
        /// Its role.
        role: Role,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Enables or disables a user (a disabled user's tokens stop working).
    SetUserDisabled {
        /// The user.
        name: String,
        /// Disabled or not.
        disabled: bool,
    },
    /// Stores a new API token's hash for a user. Output: [`Output::Done`].
    CreateToken {
        /// The owner.
        user: String,
        /// The token's hash.
        token_hash: TokenHash,
        /// A label to recognise it by.
        label: String,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Revokes a token. Output: [`Output::Done`].
    RevokeToken {
        /// The owner.
        user: String,
        /// The token's hash.
        token_hash: TokenHash,
    },
    /// Signs a user in on the web site: stores the hash of a random session id (made by
    /// the node, sent to the browser in a cookie) until `expires_ms`, and first removes
    /// every session expired at `now_ms`. Refused with [`ApiError::Unauthorized`] for an
    /// unknown or disabled user. Output: [`Output::Done`].
    CreateSession {
        /// The hash of the session id.
        session_hash: TokenHash,
        /// Who signed in (the node checked the password).
        user: String,
        /// When the session ends, ms since the Unix epoch.
        expires_ms: u64,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Signs a session out (nothing happens if it does not exist). Output:
    /// [`Output::Done`].
    EndSession {
        /// The hash of the session id.
        session_hash: TokenHash,
    },
}

/// A read-only question, answered from the local state under the leader's lease.
#[derive(Clone, Debug)]
pub enum Query {
    /// The torrent file. Output: [`Output::TorrentFile`].
    TorrentFile(InfoHash),
    /// Search by name. Output: [`Output::Search`].
    Search {
        /// Words; every one must occur in the name (case-insensitive).
        words: String,
        /// Page from 0.
        page: u32,
        /// Results per page.
        per_page: u32,
        /// The order (newest first by default).
        order: SearchOrder,
    },
    /// A torrent's details with its swarm. Output: [`Output::Details`].
    Details(InfoHash),
    /// More neighbours for a peer. Output: [`Output::Peers`].
    MorePeers {
        /// Which swarm.
        info_hash: InfoHash,
        /// Who asks (never returned to itself).
        asker: Fingerprint,
        /// Peers not to return.
        exclude: Vec<Fingerprint>,
        /// How many.
        want: u32,
        /// Randomness for the choice (queries are not replicated, so any will do).
        seed: u64,
    },
    /// Peers holding a piece. Output: [`Output::Peers`].
    PeersWithPiece {
        /// Which swarm.
        info_hash: InfoHash,
        /// Who asks.
        asker: Fingerprint,
        /// The piece.
        piece: u32,
        /// How many.
        want: u32,
        /// Randomness for the choice.
        seed: u64,
    },
    /// A user, for signing in. Output: [`Output::User`].
    User(String),
    /// The enabled user owning a token. Output: [`Output::TokenOwner`].
    TokenOwner(TokenHash),
    /// A user's tokens. Output: [`Output::Tokens`].
    Tokens(String),
    /// All users. Output: [`Output::Users`].
    Users,
    /// The enabled user of a web session that has not expired at `now_ms`. Output:
    /// [`Output::Session`].
    Session {
        /// The hash of the session id.
        session_hash: TokenHash,
        /// The asking node's clock.
        now_ms: u64,
    },
    /// Totals. Output: [`Output::Stats`].
    Stats,
    /// One page of a swarm's members with their pieces, by fingerprint. Output:
    /// [`Output::Members`].
    SwarmMembers {
        /// Which swarm.
        info_hash: InfoHash,
        /// Members whose fingerprint sorts after this one.
        after: Option<Fingerprint>,
        /// At most this many.
        limit: u32,
    },
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Unique name.
    pub name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Its role.
    pub role: Role,
    /// Whether it is disabled.
    pub disabled: bool,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
}

/// An API token as stored (its hash, never the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The hash.
    pub token_hash: TokenHash,
    /// Its label.
    pub label: String,
    /// When it was created.
    pub created_ms: u64,
}

/// A peer in a swarm, as shown on a torrent's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmPeer {
    /// Fingerprint and address.
    pub info: PeerInfo,
    /// Last heard, ms since the Unix epoch.
    pub last_heard_ms: u64,
}

/// A torrent with its swarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentDetails {
    /// Name, size, counts.
    pub summary: TorrentSummary,
    /// How many peers hold each piece.
    pub availability: Vec<u32>,
    /// The peers.
    pub peers: Vec<SwarmPeer>,
}

/// Totals for metrics and the web site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Torrents stored.
    pub torrents: u64,
    /// Swarms with at least one peer.
    pub swarms: u64,
    /// Peer memberships over all swarms.
    pub peers: u64,
    /// Of which seeders.
    pub seeders: u64,
    /// Users.
    pub users: u64,
    /// Piece reports applied (pieces named in `Have` and `Join` commands).
    pub piece_reports: u64,
    /// Peers removed by expiry.
    pub expired: u64,
    /// Web sessions stored (some may have expired since the last pruning).
    pub sessions: u64,
}

/// The result of a command or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// Stored under this info hash.
    Published(InfoHash),
    /// Joined, with these neighbours.
    Joined(Vec<PeerInfo>),
    /// The command was applied.
    Done,
    /// Peers removed by an expiry.
    Expired(u64),
    /// A torrent file, if known.
    TorrentFile(Option<Vec<u8>>),
    /// Search results.
    Search(SearchPage),
    /// A torrent's details, if known.
    Details(Option<Box<TorrentDetails>>),
    /// Peers.
    Peers(Vec<PeerInfo>),
    /// A user, if known.
    User(Option<UserRecord>),
    /// A token's owner, if the token is valid and the user enabled.
    TokenOwner(Option<String>),
    /// Tokens.
    Tokens(Vec<TokenRecord>),
    /// Users.
    Users(Vec<UserRecord>),
    /// Totals.
    Stats(Stats),
    /// A page of a swarm's members.
    Members(crate::api::MembersPage),
    /// A session's user, if the session is live and its user enabled.
    Session(Option<UserRecord>),
    /// The command or query was refused.
    Error(ApiError),
    /// The torrent was already stored under this info hash (by an earlier publish, whose
    /// uploader and date stay).
    AlreadyPublished(InfoHash),
}

/// Settings that every replica must share (part of the replicated behaviour).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateConfig {
    /// A peer not heard from for this long is removed by the next `Expire`. 30 s: three
    /// missed heartbeats at the peer's default 10 s interval.
    pub peer_ttl_ms: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            peer_ttl_ms: 30_000,
        }
    }
}
