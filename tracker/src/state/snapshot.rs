//! Snapshots: the whole state as bytes, and back.
//!
//! Format: one version byte ([`SNAPSHOT_VERSION`]), then one MessagePack value, an
//! [`Image`], with structs as arrays (no field names). Torrent files, hashes, fingerprints
//! and addresses are `bin`; bitfields are `[len, bin]`, one bit per piece, so a swarm of
//! 10,000 peers of a 4,000-piece torrent takes ~5 MB, not a list of indices per peer.
//!
//! Only facts are stored; every index and derived number (search names, per-piece
//! availability, seeder counts, the peer-to-swarms map) is rebuilt on restore. Members keep
//! their order, which neighbour selection depends on, so a restored replica chooses as the
//! others do and its next snapshot is byte for byte the same as theirs.
//!
//! Version 2 appends the web sessions (hash, user, expiry) to the image; a version 1
//! snapshot, which has none, is still read, with no sessions. Version 3 appends to each
//! peer the neighbours its latest join was handed, and to each torrent the in-degrees of
//! absent peers, so that in-degrees count live handouts only; older snapshots are read
//! with none (their in-degrees are kept as they were). Caution: replicas that restore
//! version 2 snapshots taken at different slots replay different stretches of log under
//! the new rule, so their in-degrees, and the neighbours their joins hand out, can differ
//! (membership, pieces, users and tokens do not). Switching the rule at one replicated
//! slot would remove that; it is not built.
//!
//! A snapshot may come from another replica or a disk, so decoding checks everything it
//! relies on and answers a [`RestoreError`], never a panic, for bytes that are not a valid
//! snapshot.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use certs::Fingerprint;
use paxos::RestoreError;
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf, Bytes};

use crate::bitfield::Bitfield;
use crate::torrent::{InfoHash, MAX_TORRENT_FILE_LEN, PIECE_HASH_LEN};

use super::machine::TrackerState;
use super::sessions::Sessions;
use super::swarms::{Member, Swarm};
use super::torrents::{TorrentEntry, Torrents};
use super::users::{TokenEntry, UserEntry, Users, validate_user_name};
use super::{StateConfig, TokenHash, TokenRecord, UserRecord};

/// The format version, the first byte of every snapshot. Raise it when the snapshot layout
/// changes, and keep reading the old one.
pub const SNAPSHOT_VERSION: u8 = 3;

/// The oldest format version still read.
const OLDEST_READ_VERSION: u8 = 1;

/// The state as encoded (borrowing it, so that torrent files are not copied).
#[derive(Serialize)]
struct ImageRef<'a> {
    torrents: Vec<TorrentRef<'a>>,
    users: Vec<&'a UserRecord>,
    tokens: Vec<TokenRef<'a>>,
    piece_reports: u64,
    expired: u64,
    sessions: Vec<SessionRef<'a>>,
}

#[derive(Serialize)]
struct SessionRef<'a> {
    session_hash: ByteArray<32>,
    user: &'a str,
    expires_ms: u64,
}

#[derive(Serialize)]
struct TorrentRef<'a> {
    info_hash: InfoHash,
    file: &'a Bytes,
    name: &'a str,
    size: u64,
    piece_count: u32,
    uploader: &'a str,
    added_ms: u64,
    completed: u64,
    peers: Vec<PeerRef<'a>>,
    absent_in_degree: Vec<(ByteArray<32>, u32)>,
}

#[derive(Serialize)]
struct PeerRef<'a> {
    fingerprint: ByteArray<32>,
    addr: ByteBuf,
    have: &'a Bitfield,
    last_heard_ms: u64,
    in_degree: u32,
    completion_counted: bool,
    handed: Vec<ByteArray<32>>,
}

#[derive(Serialize)]
struct TokenRef<'a> {
    token_hash: ByteArray<32>,
    owner: &'a str,
    label: &'a str,
    created_ms: u64,
}

/// The state as decoded: the same layout as [`ImageRef`], owned.
#[derive(Deserialize)]
struct Image {
    torrents: Vec<TorrentImage>,
    users: Vec<UserRecord>,
    tokens: Vec<TokenImage>,
    piece_reports: u64,
    expired: u64,
    /// Absent in version 1.
    #[serde(default)]
    sessions: Vec<SessionImage>,
}

#[derive(Deserialize)]
struct SessionImage {
    session_hash: ByteArray<32>,
    user: String,
    expires_ms: u64,
}

#[derive(Deserialize)]
struct TorrentImage {
    info_hash: InfoHash,
    file: ByteBuf,
    name: String,
    size: u64,
    piece_count: u32,
    uploader: String,
    added_ms: u64,
    completed: u64,
    peers: Vec<PeerImage>,
    /// Absent before version 3.
    #[serde(default)]
    absent_in_degree: Vec<(ByteArray<32>, u32)>,
}

#[derive(Deserialize)]
struct PeerImage {
    fingerprint: ByteArray<32>,
    addr: ByteBuf,
    have: Bitfield,
    last_heard_ms: u64,
    in_degree: u32,
    completion_counted: bool,
    /// Absent before version 3.
    #[serde(default)]
    handed: Vec<ByteArray<32>>,
}

#[derive(Deserialize)]
struct TokenImage {
    token_hash: ByteArray<32>,
    owner: String,
    label: String,
    created_ms: u64,
}

/// An address as bytes: 4 address bytes and the port for IPv4; 16 address bytes, the port,
/// the flow info and the scope id for IPv6 (all big-endian), so that nothing a peer
/// announced is lost.
fn addr_bytes(addr: &SocketAddr) -> ByteBuf {
    let mut out = Vec::with_capacity(26);
    match addr {
        SocketAddr::V4(a) => {
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        SocketAddr::V6(a) => {
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.flowinfo().to_be_bytes());
            out.extend_from_slice(&a.scope_id().to_be_bytes());
        }
    }
    ByteBuf::from(out)
}

fn addr_from_bytes(b: &[u8]) -> Result<SocketAddr, String> {
    let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    match b.len() {
        6 => Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(b[0], b[1], b[2], b[3]),
            be16(4),
        ))),
        26 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                be16(16),
                be32(18),
                be32(22),
            )))
        }
        n => Err(format!("a peer address of {n} bytes (expected 6 or 26)")),
    }
}

/// Encodes the state.
pub(crate) fn encode(state: &TrackerState) -> Vec<u8> {
    let torrents = state
        .torrents
        .iter_newest()
        .map(|(info_hash, t)| TorrentRef {
            info_hash,
            file: Bytes::new(&t.file),
            name: &t.name,
            size: t.size,
            piece_count: t.piece_count,
            uploader: &t.uploader,
            added_ms: t.added_ms,
            completed: t.completed,
            peers: t
                .swarm
                .iter()
                .flat_map(|s| s.members())
                .map(|m| PeerRef {
                    fingerprint: ByteArray::new(*m.fingerprint.as_bytes()),
                    addr: addr_bytes(&m.addr),
                    have: &m.have,
                    last_heard_ms: m.last_heard_ms,
                    in_degree: m.in_degree,
                    completion_counted: m.completion_counted,
                    handed: m
                        .handed
                        .iter()
                        .map(|f| ByteArray::new(*f.as_bytes()))
                        .collect(),
                })
                .collect(),
            absent_in_degree: t
                .swarm
                .iter()
                .flat_map(|s| s.absent_in_degrees())
                .map(|(f, d)| (ByteArray::new(*f.as_bytes()), d))
                .collect(),
        })
        .collect();
    let image = ImageRef {
        torrents,
        users: state.users.users.values().map(|u| &u.record).collect(),
        tokens: state
            .users
            .tokens
            .values()
            .map(|t| TokenRef {
                token_hash: ByteArray::new(t.record.token_hash.0),
                owner: &t.owner,
                label: &t.record.label,
                created_ms: t.record.created_ms,
            })
            .collect(),
        piece_reports: state.piece_reports,
        expired: state.expired,
        sessions: state
            .sessions
            .by_hash
            .iter()
            .map(|(hash, s)| SessionRef {
                session_hash: ByteArray::new(hash.0),
                user: &s.user,
                expires_ms: s.expires_ms,
            })
            .collect(),
    };
    let mut out = vec![SNAPSHOT_VERSION];
    // Writing to a vector cannot fail, and every value here has a MessagePack form.
    rmp_serde::encode::write(&mut out, &image)
        .expect("the tracker state always encodes as MessagePack");
    out
}

fn bad(what: impl Into<String>) -> RestoreError {
    RestoreError(what.into())
}

/// Decodes a snapshot into a state with `config`.
pub(crate) fn decode(bytes: &[u8], config: StateConfig) -> Result<TrackerState, RestoreError> {
    let (&version, mut body) = bytes
        .split_first()
        .ok_or_else(|| bad("the tracker snapshot is empty"))?;
    if !(OLDEST_READ_VERSION..=SNAPSHOT_VERSION).contains(&version) {
        return Err(bad(format!(
            "tracker snapshot version {version} is not supported (this node reads \
             versions {OLDEST_READ_VERSION} to {SNAPSHOT_VERSION}); upgrade this node"
        )));
    }
    // A reader, not a borrowed slice: it never allocates more than the bytes present,
    // whatever lengths a corrupt snapshot claims, and shows what is left at the end.
    let image: Image = Deserialize::deserialize(&mut rmp_serde::Deserializer::new(&mut body))
        .map_err(|e| bad(format!("the tracker snapshot does not decode: {e}")))?;
    if !body.is_empty() {
        return Err(bad(format!(
            "the tracker snapshot has {} bytes after its end",
            body.len()
        )));
    }

    let mut users = Users::default();
    for record in image.users {
        validate_user_name(&record.name)
            .map_err(|e| bad(format!("a user in the snapshot: {e}")))?;
        let name = record.name.clone();
        let entry = UserEntry {
            record,
            tokens: BTreeSet::new(),
        };
        if users.users.insert(name.clone(), entry).is_some() {
            return Err(bad(format!("user {name:?} is in the snapshot twice")));
        }
    }
    for t in image.tokens {
        let token_hash = TokenHash(t.token_hash.into_array());
        let owner = users
            .users
            .get_mut(&t.owner)
            .ok_or_else(|| bad(format!("a token of unknown user {:?}", t.owner)))?;
        owner.tokens.insert(token_hash);
        let entry = TokenEntry {
            owner: t.owner,
            record: TokenRecord {
                token_hash,
                label: t.label,
                created_ms: t.created_ms,
            },
        };
        if users.tokens.insert(token_hash, entry).is_some() {
            return Err(bad("a token is in the snapshot twice"));
        }
    }

    let mut sessions = Sessions::default();
    for s in image.sessions {
        if !users.users.contains_key(&s.user) {
            return Err(bad(format!("a session of unknown user {:?}", s.user)));
        }
        let hash = TokenHash(s.session_hash.into_array());
        if sessions.by_hash.contains_key(&hash) {
            return Err(bad("a session is in the snapshot twice"));
        }
        sessions.insert(hash, s.user, s.expires_ms);
    }

    let mut torrents = Torrents::default();
    let mut by_peer: HashMap<Fingerprint, Vec<InfoHash>> = HashMap::new();
    for t in image.torrents {
        if torrents.get(&t.info_hash).is_some() {
            return Err(bad(format!(
                "torrent {} is in the snapshot twice",
                t.info_hash
            )));
        }
        if t.piece_count as usize > MAX_TORRENT_FILE_LEN / PIECE_HASH_LEN {
            return Err(bad(format!(
                "torrent {} claims {} pieces, more than any torrent file can hold",
                t.info_hash, t.piece_count
            )));
        }
        let mut members = Vec::with_capacity(t.peers.len());
        for p in t.peers {
            let fingerprint = Fingerprint::from_bytes(p.fingerprint.into_array());
            let addr = addr_from_bytes(&p.addr).map_err(|e| {
                bad(format!(
                    "peer {fingerprint} of torrent {}: {e}",
                    t.info_hash
                ))
            })?;
            members.push(Member {
                fingerprint,
                addr,
                have: p.have,
                count: 0,
                last_heard_ms: p.last_heard_ms,
                in_degree: p.in_degree,
                handed: p
                    .handed
                    .into_iter()
                    .map(|f| Fingerprint::from_bytes(f.into_array()))
                    .collect(),
                completion_counted: p.completion_counted,
            });
        }
        let swarm = if members.is_empty() {
            None
        } else {
            let absent = t
                .absent_in_degree
                .into_iter()
                .map(|(f, d)| (Fingerprint::from_bytes(f.into_array()), d))
                .collect();
            let swarm = Swarm::from_members(t.piece_count, members, absent)
                .map_err(|e| bad(format!("the swarm of torrent {}: {e}", t.info_hash)))?;
            for m in swarm.members() {
                by_peer.entry(m.fingerprint).or_default().push(t.info_hash);
            }
            Some(swarm)
        };
        let entry = TorrentEntry {
            file: t.file.into_vec(),
            name: t.name,
            size: t.size,
            piece_count: t.piece_count,
            uploader: t.uploader,
            added_ms: t.added_ms,
            completed: t.completed,
            swarm,
        };
        torrents.insert(t.info_hash, entry);
    }

    Ok(TrackerState {
        config,
        torrents,
        users,
        sessions,
        by_peer,
        piece_reports: image.piece_reports,
        expired: image.expired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torrent of a version 2 snapshot: no absent in-degrees after its peers, and no
    /// handed neighbours after each peer's fields. Decodes with none of either.
    #[test]
    fn version_2_torrents_and_peers_decode_with_no_handouts() {
        let peer = (
            ByteArray::new([7u8; 32]),
            addr_bytes(&"127.0.0.1:7000".parse().unwrap()),
            Bitfield::full(4),
            1_000u64,
            3u32,
            true,
        );
        let torrent = (
            InfoHash::from_bytes([1u8; 32]),
            ByteBuf::from(vec![0u8; 4]),
            "name",
            4u64,
            4u32,
            "bob",
            5u64,
            1u64,
            vec![peer],
        );
        let bytes = rmp_serde::to_vec(&torrent).unwrap();
        let decoded: TorrentImage = rmp_serde::from_slice(&bytes).unwrap();
        assert!(decoded.absent_in_degree.is_empty());
        assert_eq!(decoded.peers.len(), 1);
        assert_eq!(decoded.peers[0].in_degree, 3);
        assert!(decoded.peers[0].handed.is_empty());
    }
}
