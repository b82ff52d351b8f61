//! The test vectors of PROTOCOL.md, checked against the real wire types.
//!
//! Every fenced block tagged ```` ```vector TAG ```` in PROTOCOL.md holds the MessagePack
//! body of one frame as hex (anything after `#` on a line is a comment). This test decodes
//! each with the Rust type its tag names, encodes the value again and requires the very
//! same bytes, and requires that every variant of every message enum of the peer,
//! tracker, tracker-admin and paxos protocols has a vector: a new variant without one
//! fails here. The variant lists come from serde itself, so they cannot fall behind.
//!
//! To write vectors for new messages, run the ignored test `print_vectors`
//! (`cargo test --release -p tests --test integration protocol_vectors -- --ignored --nocapture`):
//! it prints annotated blocks made from example values, ready to paste.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use certs::Fingerprint;
use paxos::{Ballot, Entry, Message, PromisedEntry, Snapshot};
use peer::wire::{Control, PieceHeader, PieceRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracker::Bitfield;
use tracker::api::{
    AdminRequest, AdminResponse, ApiError, ClusterStatus, MemberChange, MembersPage, NodeStatus,
    PeerInfo, Request, Response, SearchOrder, SearchPage, SortKey, SwarmMember, TorrentSummary,
    UserInfo, WriteId,
};
use tracker::state::{Command, Output, Role, TokenHash, Uploader};
use tracker::torrent::InfoHash;

type PaxosMessage = Message<Command, Output>;

/// The enums whose every variant needs a vector, by tag prefix, with serde's list of
/// their variants.
fn enums() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("peer.Control", variants::<Control>()),
        ("peer.PieceHeader", variants::<PieceHeader>()),
        ("tracker.Request", variants::<Request>()),
        ("tracker.Response", variants::<Response>()),
        ("tracker.ApiError", variants::<ApiError>()),
        ("tracker-admin.AdminRequest", variants::<AdminRequest>()),
        ("tracker-admin.AdminResponse", variants::<AdminResponse>()),
        ("paxos.Message", variants::<PaxosMessage>()),
        ("paxos.Entry", variants::<Entry<Command>>()),
        ("paxos.Command", variants::<Command>()),
    ]
}

/// Decodes `bytes` as the type `tag` names and encodes it again.
fn round_trip(tag: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let ty = tag.rsplit_once('.').map_or(tag, |(head, last)| {
        if last.starts_with(char::is_uppercase) && enums().iter().any(|(t, _)| *t == head) {
            head
        } else {
            tag
        }
    });
    match ty {
        "peer.Control" => again::<Control>(bytes),
        "peer.PieceRequest" => again::<PieceRequest>(bytes),
        "peer.PieceHeader" => again::<PieceHeader>(bytes),
        "tracker.Request" => again::<Request>(bytes),
        "tracker.Response" => again::<Response>(bytes),
        "tracker.ApiError" => again::<ApiError>(bytes),
        "tracker-admin.AdminRequest" => again::<AdminRequest>(bytes),
        "tracker-admin.AdminResponse" => again::<AdminResponse>(bytes),
        "paxos.Message" => again::<PaxosMessage>(bytes),
        "paxos.Batch" => again::<Vec<PaxosMessage>>(bytes),
        "paxos.Entry" => again::<Entry<Command>>(bytes),
        "paxos.Command" => again::<Command>(bytes),
        other => Err(format!("no Rust type for the tag {other:?}")),
    }
}

fn again<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let value: T = rmp_serde::from_slice(bytes).map_err(|e| format!("does not decode: {e}"))?;
    encode(&value)
}

/// The encoding every protocol uses (PROTOCOL.md 2.4): structs as maps with field names.
fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| format!("does not encode: {e}"))
}

#[test]
fn every_vector_in_the_protocol_document_decodes_and_encodes_to_the_same_bytes() {
    let vectors = vectors_of(&document());
    assert!(vectors.len() > 50, "only {} vectors found", vectors.len());
    let mut failures = Vec::new();
    for v in &vectors {
        match round_trip(&v.tag, &v.bytes) {
            Ok(again) if again == v.bytes => {}
            Ok(again) => failures.push(format!(
                "line {} ({}): encodes to {} instead",
                v.line,
                v.tag,
                hex(&again)
            )),
            Err(e) => failures.push(format!("line {} ({}): {e}", v.line, v.tag)),
        }
        if let Some((_, named)) = v.tag.rsplit_once('.')
            && named.starts_with(char::is_uppercase)
            && let Some(found) = variant_of(&v.bytes)
            && enums().iter().any(|(t, _)| v.tag == format!("{t}.{named}"))
            && found != named
        {
            failures.push(format!(
                "line {} ({}): the bytes hold the variant {found}",
                v.line, v.tag
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_message_kind_has_a_vector() {
    let tags: BTreeSet<String> = vectors_of(&document()).into_iter().map(|v| v.tag).collect();
    let mut missing = Vec::new();
    for (prefix, variants) in enums() {
        for variant in variants {
            let tag = format!("{prefix}.{variant}");
            if !tags.contains(&tag) {
                missing.push(tag);
            }
        }
    }
    for tag in ["peer.PieceRequest", "paxos.Batch"] {
        if !tags.contains(tag) {
            missing.push(tag.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "PROTOCOL.md has no vector for: {} (run `print_vectors` to make them)",
        missing.join(", ")
    );
}

#[test]
fn a_fingerprint_in_the_earlier_array_form_decodes_but_is_not_canonical() {
    // Version 1 wrote a fingerprint as an array of 32 integers. It still decodes (tracker
    // state written then is read), but encodes as bin, so a vector holding it would fail
    // the round trip above.
    let mut legacy = vec![0x91, 0xdc, 0x00, 0x20];
    legacy.extend(std::iter::repeat_n(1u8, 32));
    let decoded: Vec<Fingerprint> = rmp_serde::from_slice(&legacy).unwrap();
    assert_eq!(decoded, vec![Fingerprint::from_bytes([1; 32])]);
    let mut canonical = vec![0x91, 0xc4, 0x20];
    canonical.extend(std::iter::repeat_n(1u8, 32));
    assert_eq!(encode(&decoded).unwrap(), canonical);
}

#[test]
fn the_version_1_forms_that_section_9_shows_are_what_version_1_wrote() {
    let addr: std::net::SocketAddr = "127.0.0.1:45001".parse().unwrap();
    assert_eq!(
        hex(&encode(&addr).unwrap()),
        "81a2563492947f000001cdafc9",
        "serde's own form of a socket address"
    );
    assert_eq!(
        hex(&encode("127.0.0.1:45001").unwrap()),
        "af3132372e302e302e313a3435303031"
    );
    let mut array = encode(&[1u8; 32]).unwrap();
    array.truncate(3);
    assert_eq!(hex(&array), "dc0020", "32 bytes as an array of integers");
}

struct Vector {
    tag: String,
    bytes: Vec<u8>,
    line: usize,
}

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Every ```` ```vector TAG ```` block of `text`.
fn vectors_of(text: &str) -> Vec<Vector> {
    let mut vectors = Vec::new();
    let mut current: Option<Vector> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        match &mut current {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```vector ") {
                    current = Some(Vector {
                        tag: tag.trim().to_string(),
                        bytes: Vec::new(),
                        line: number + 1,
                    });
                }
            }
            Some(v) if trimmed == "```" => {
                assert!(!v.bytes.is_empty(), "empty vector at line {}", v.line);
                vectors.extend(current.take());
            }
            Some(v) => {
                let data = trimmed.split('#').next().unwrap_or("");
                for token in data.split_whitespace() {
                    assert!(
                        token.len() % 2 == 0,
                        "line {}: {token:?} is not whole bytes of hex",
                        number + 1
                    );
                    for i in (0..token.len()).step_by(2) {
                        let byte = u8::from_str_radix(&token[i..i + 2], 16).unwrap_or_else(|_| {
                            panic!("line {}: {token:?} is not hex", number + 1)
                        });
                        v.bytes.push(byte);
                    }
                }
            }
        }
    }
    assert!(current.is_none(), "a vector block is not closed");
    vectors
}

/// The variant an externally tagged enum value names: a string (unit variant) or the key
/// of a map of one entry.
fn variant_of(bytes: &[u8]) -> Option<String> {
    let (first, rest) = bytes.split_first()?;
    let rest = if *first == 0x81 { rest } else { bytes };
    let (len, text) = match *rest.first()? {
        b @ 0xa0..=0xbf => (usize::from(b & 0x1f), rest.get(1..)?),
        0xd9 => (usize::from(*rest.get(1)?), rest.get(2..)?),
        _ => return None,
    };
    String::from_utf8(text.get(..len)?.to_vec()).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The variant names serde knows for the enum `T`.
fn variants<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(VariantLister) {
        Err(Listed(variants)) => variants,
        Ok(_) => panic!("{} is not an enum", std::any::type_name::<T>()),
    }
}

/// A deserializer that only records the variants an enum asks for.
struct VariantLister;

#[derive(Debug)]
struct Listed(&'static [&'static str]);

impl std::fmt::Display for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Listed {}

impl serde::de::Error for Listed {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Listed(&[])
    }
}

impl<'de> serde::Deserializer<'de> for VariantLister {
    type Error = Listed;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Listed> {
        Err(Listed(&[]))
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Listed> {
        Err(Listed(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

// ---------------------------------------------------------------------------------------
// Making vectors: example values, and an annotator that explains each MessagePack token.

fn info_hash() -> InfoHash {
    InfoHash::from_bytes(std::array::from_fn(|i| 0xa0 + i as u8 % 16))
}

fn fingerprint(n: u8) -> Fingerprint {
    Fingerprint::from_bytes(std::array::from_fn(|i| n.wrapping_mul(16) + i as u8))
}

fn id(seq: u64) -> WriteId {
    WriteId {
        client: 0x0123_4567_89ab_cdef,
        seq,
    }
}

fn peer_info() -> PeerInfo {
    PeerInfo {
        fingerprint: fingerprint(1),
        addr: "203.0.113.7:45001".parse().unwrap(),
        pieces: 10,
    }
}

fn bitfield() -> Bitfield {
    let mut b = Bitfield::new(10);
    for i in [0, 1, 9] {
        b.set(i);
    }
    b
}

fn summary() -> TorrentSummary {
    TorrentSummary {
        info_hash: info_hash(),
        name: "album".into(),
        size: 80_000,
        piece_count: 5,
        seeders: 1,
        leechers: 2,
        completed: 3,
        added_ms: 1_764_000_000_000,
        uploader: "alice".into(),
    }
}

fn ballot() -> Ballot {
    Ballot {
        round: 7,
        leader: 2,
    }
}

fn leave() -> Command {
    Command::Leave {
        info_hash: info_hash(),
        fingerprint: fingerprint(1),
    }
}

fn entry() -> Entry<Command> {
    Entry::Command(paxos::Command {
        client: 0x0123_4567_89ab_cdef,
        seq: 3,
        op: leave(),
    })
}

/// Example values, each with its tag.
fn examples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |tag: &str, bytes: Result<Vec<u8>, String>| {
        out.push((tag.to_string(), bytes.unwrap()));
    };
    let token = "3q2-7wEXAMPLEtokenOfAtLeast32Characters".to_string();
    let torrent = b"BTTORENT\x00\x01\x80".to_vec();

    add(
        "peer.Control.Hello",
        encode(&Control::Hello {
            info_hash: info_hash(),
            bitfield: bitfield(),
        }),
    );
    add(
        "peer.Control.Refuse",
        encode(&Control::Refuse("paused".into())),
    );
    add("peer.Control.Have", encode(&Control::Have(vec![9, 300])));
    add("peer.Control.Lost", encode(&Control::Lost(300)));
    add(
        "peer.Control.Interested",
        encode(&Control::Interested(false)),
    );
    add(
        "peer.PieceRequest",
        encode(&PieceRequest {
            info_hash: info_hash(),
            piece: 4,
            holds: 17,
        }),
    );
    add(
        "peer.PieceHeader.Data",
        encode(&PieceHeader::Data { len: 262_144 }),
    );
    add("peer.PieceHeader.NotHave", encode(&PieceHeader::NotHave));
    add(
        "peer.PieceHeader.UnknownTorrent",
        encode(&PieceHeader::UnknownTorrent),
    );
    add("peer.PieceHeader.Busy", encode(&PieceHeader::Busy));

    add(
        "tracker.Request.Publish",
        encode(&Request::Publish {
            id: id(1),
            token: token.clone(),
            torrent: torrent.clone(),
        }),
    );
    add(
        "tracker.Request.GetTorrent",
        encode(&Request::GetTorrent {
            info_hash: info_hash(),
        }),
    );
    add(
        "tracker.Request.Search",
        encode(&Request::Search {
            words: "debian iso".into(),
            page: 0,
            order: SearchOrder {
                by: SortKey::Size,
                descending: true,
            },
        }),
    );
    add(
        "tracker.Request.Join",
        encode(&Request::Join {
            id: id(2),
            info_hash: info_hash(),
            addr: "127.0.0.1:45001".into(),
            have: bitfield(),
            want: 5,
        }),
    );
    add(
        "tracker.Request.Have",
        encode(&Request::Have {
            id: id(3),
            info_hash: info_hash(),
            pieces: vec![2, 3, 300],
        }),
    );
    add(
        "tracker.Request.NotHave",
        encode(&Request::NotHave {
            id: id(4),
            info_hash: info_hash(),
            pieces: vec![9],
        }),
    );
    add(
        "tracker.Request.Leave",
        encode(&Request::Leave {
            id: id(5),
            info_hash: info_hash(),
        }),
    );
    add(
        "tracker.Request.Heartbeat",
        encode(&Request::Heartbeat {
            id: id(6),
            info_hash: Some(info_hash()),
        }),
    );
    add(
        "tracker.Request.MorePeers",
        encode(&Request::MorePeers {
            info_hash: info_hash(),
            exclude: vec![fingerprint(1)],
            want: 5,
        }),
    );
    add(
        "tracker.Request.PeersWithPiece",
        encode(&Request::PeersWithPiece {
            info_hash: info_hash(),
            piece: 4,
            want: 3,
        }),
    );
    add("tracker.Request.Status", encode(&Request::Status));

    add(
        "tracker.Response.Published",
        encode(&Response::Published(info_hash())),
    );
    add(
        "tracker.Response.Torrent",
        encode(&Response::Torrent(torrent)),
    );
    add(
        "tracker.Response.Search",
        encode(&Response::Search(SearchPage {
            total: 1,
            hits: vec![summary()],
        })),
    );
    add(
        "tracker.Response.Joined",
        encode(&Response::Joined {
            neighbours: vec![peer_info()],
            ttl_ms: 30_000,
        }),
    );
    add("tracker.Response.Done", encode(&Response::Done));
    add(
        "tracker.Response.Peers",
        encode(&Response::Peers(vec![PeerInfo {
            fingerprint: fingerprint(2),
            addr: "[2001:db8::1]:7000".parse().unwrap(),
            pieces: 0,
        }])),
    );
    add(
        "tracker.Response.Status",
        encode(&Response::Status(NodeStatus {
            id: 1,
            is_leader: false,
            leader: Some(2),
            decided: 1041,
            applied: 1040,
        })),
    );
    add(
        "tracker.Response.Error",
        encode(&Response::Error(ApiError::NotInSwarm(info_hash()))),
    );
    add(
        "tracker.Response.Unavailable",
        encode(&Response::Unavailable(
            "this node knows no leader: it cannot reach a majority".into(),
        )),
    );

    add(
        "tracker.ApiError.Unauthorized",
        encode(&ApiError::Unauthorized),
    );
    add(
        "tracker.ApiError.InvalidTorrent",
        encode(&ApiError::InvalidTorrent("not a torrent file".into())),
    );
    add(
        "tracker.ApiError.UnknownTorrent",
        encode(&ApiError::UnknownTorrent(info_hash())),
    );
    add(
        "tracker.ApiError.BadPieces",
        encode(&ApiError::BadPieces("piece 300 of 5".into())),
    );
    add(
        "tracker.ApiError.BadRequest",
        encode(&ApiError::BadRequest(
            "addr \"x\" is not an IP address".into(),
        )),
    );
    add(
        "tracker.ApiError.UserExists",
        encode(&ApiError::UserExists("alice".into())),
    );
    add(
        "tracker.ApiError.UnknownUser",
        encode(&ApiError::UnknownUser("bob".into())),
    );
    add("tracker.ApiError.Stale", encode(&ApiError::Stale));
    add(
        "tracker.ApiError.NotInSwarm",
        encode(&ApiError::NotInSwarm(info_hash())),
    );

    add(
        "tracker-admin.AdminRequest.AddUser",
        encode(&AdminRequest::AddUser {
            id: id(1),
            name: "alice".into(),
            password: "correct horse".into(),
            admin: false,
        }),
    );
    add(
        "tracker-admin.AdminRequest.SetUserDisabled",
        encode(&AdminRequest::SetUserDisabled {
            id: id(2),
            name: "alice".into(),
            disabled: true,
        }),
    );
    add(
        "tracker-admin.AdminRequest.CreateToken",
        encode(&AdminRequest::CreateToken {
            id: id(3),
            user: "alice".into(),
            label: "ci".into(),
            token,
        }),
    );
    add(
        "tracker-admin.AdminRequest.Users",
        encode(&AdminRequest::Users),
    );
    add(
        "tracker-admin.AdminRequest.SwarmMembers",
        encode(&AdminRequest::SwarmMembers {
            info_hash: info_hash(),
            after: None,
            limit: 1000,
        }),
    );
    add(
        "tracker-admin.AdminRequest.Cluster",
        encode(&AdminRequest::Cluster),
    );
    add(
        "tracker-admin.AdminRequest.ChangeMembership",
        encode(&AdminRequest::ChangeMembership {
            change: MemberChange::AddLearner {
                id: 4,
                address: "node4@10.0.0.4:7000/10.0.0.4:7100".into(),
            },
        }),
    );
    add(
        "tracker-admin.AdminRequest.TransferLeader",
        encode(&AdminRequest::TransferLeader { to: Some(2) }),
    );
    add(
        "tracker-admin.AdminResponse.Cluster",
        encode(&AdminResponse::Cluster(ClusterStatus {
            id: 1,
            leader: Some(1),
            decided: 812,
            voters: vec![1, 2, 4],
            learners: vec![],
            retired: vec![3],
            addresses: vec![(4, "node4@10.0.0.4:7000/10.0.0.4:7100".to_string())],
            progress: vec![(1, 812), (2, 812), (4, 810)],
        })),
    );
    add(
        "tracker-admin.AdminResponse.Members",
        encode(&AdminResponse::Members(MembersPage {
            total: 1,
            members: vec![SwarmMember {
                fingerprint: fingerprint(2),
                addr: "203.0.113.8:45001".parse().unwrap(),
                have: bitfield(),
            }],
        })),
    );
    add(
        "tracker-admin.AdminResponse.Done",
        encode(&AdminResponse::Done),
    );
    add(
        "tracker-admin.AdminResponse.Users",
        encode(&AdminResponse::Users(vec![UserInfo {
            name: "alice".into(),
            admin: true,
            disabled: false,
        }])),
    );
    add(
        "tracker-admin.AdminResponse.Error",
        encode(&AdminResponse::Error(ApiError::UserExists("alice".into()))),
    );
    add(
        "tracker-admin.AdminResponse.Unavailable",
        encode(&AdminResponse::Unavailable(
            "no decision within 1.5s".into(),
        )),
    );

    let b = ballot();
    let messages: Vec<(&str, PaxosMessage)> = vec![
        ("PreVote", Message::PreVote { ballot: b }),
        ("PreVoteGranted", Message::PreVoteGranted { ballot: b }),
        (
            "Prepare",
            Message::Prepare {
                ballot: b,
                from: 12,
                handover: None,
            },
        ),
        (
            "Promise",
            Message::Promise {
                ballot: b,
                entries: vec![PromisedEntry {
                    slot: 12,
                    ballot: Ballot {
                        round: 6,
                        leader: 1,
                    },
                    value: vec![entry()],
                    chosen: false,
                }],
                snapshot_slot: 10,
            },
        ),
        ("Nack", Message::Nack { ballot: b }),
        (
            "Accept",
            Message::Accept {
                ballot: b,
                slot: 13,
                value: vec![entry()],
                commit: 12,
            },
        ),
        (
            "Accepted",
            Message::Accepted {
                ballot: b,
                slot: 13,
            },
        ),
        (
            "Heartbeat",
            Message::Heartbeat {
                ballot: b,
                round: 40,
                commit: 13,
            },
        ),
        (
            "HeartbeatAck",
            Message::HeartbeatAck {
                ballot: b,
                round: 40,
                decided: 13,
            },
        ),
        (
            "Commit",
            Message::Commit {
                ballot: b,
                commit: 13,
            },
        ),
        (
            "Forward",
            Message::Forward {
                entries: vec![entry()],
            },
        ),
        ("CatchUpRequest", Message::CatchUpRequest { from: 11 }),
        (
            "CatchUp",
            Message::CatchUp {
                entries: vec![(11, vec![])],
            },
        ),
        (
            "InstallSnapshot",
            Message::InstallSnapshot {
                snapshot: Snapshot {
                    slot: 10,
                    state: vec![0x93, 0x01, 0x02, 0x03],
                    sessions: vec![(
                        0x0123_4567_89ab_cdef,
                        paxos::Session {
                            seq: 2,
                            output: Output::Done,
                            slot: 9,
                        },
                    )],
                    membership: paxos::Membership::with_voters([1, 2, 3]),
                },
            },
        ),
        ("TimeoutNow", Message::TimeoutNow { ballot: b }),
        ("Removed", Message::Removed),
    ];
    for (name, message) in &messages {
        add(&format!("paxos.Message.{name}"), encode(message));
    }
    add(
        "paxos.Batch",
        encode(&vec![
            Message::<Command, Output>::HeartbeatAck {
                ballot: b,
                round: 40,
                decided: 13,
            },
            Message::Accepted {
                ballot: b,
                slot: 13,
            },
        ]),
    );
    add("paxos.Entry.Command", encode(&entry()));
    add(
        "paxos.Entry.Read",
        encode(&Entry::<Command>::Read {
            origin: 1,
            client: 0x0123_4567_89ab_cdef,
            id: 5,
        }),
    );
    add(
        "paxos.Entry.Reconfigure",
        encode(&Entry::<Command>::Reconfigure {
            origin: 1,
            id: 6,
            change: paxos::MembershipChange::AddLearner {
                id: 4,
                address: "10.0.0.4:7000".into(),
            },
        }),
    );

    let now_ms = 1_764_000_000_000u64;
    let token_hash = TokenHash(std::array::from_fn(|i| 0xc0 + i as u8 % 16));
    let commands: Vec<(&str, Command)> = vec![
        (
            "Publish",
            Command::Publish {
                torrent: b"BTTORENT\x00\x01\x80".to_vec(),
                by: Uploader::Token(token_hash),
                now_ms,
            },
        ),
        (
            "Join",
            Command::Join {
                info_hash: info_hash(),
                fingerprint: fingerprint(1),
                addr: "127.0.0.1:45001".parse().unwrap(),
                have: bitfield(),
                want: 5,
                now_ms,
            },
        ),
        (
            "Have",
            Command::Have {
                info_hash: info_hash(),
                fingerprint: fingerprint(1),
                pieces: vec![2],
                now_ms,
            },
        ),
        (
            "NotHave",
            Command::NotHave {
                info_hash: info_hash(),
                fingerprint: fingerprint(1),
                pieces: vec![9],
                now_ms,
            },
        ),
        ("Leave", leave()),
        (
            "Heartbeat",
            Command::Heartbeat {
                fingerprint: fingerprint(1),
                now_ms,
                info_hash: None,
            },
        ),
        ("Expire", Command::Expire { now_ms }),
        (
            "AddUser",
            Command::AddUser {
                name: "alice".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                role: Role::User,
                now_ms,
            },
        ),
        (
            "SetUserDisabled",
            Command::SetUserDisabled {
                name: "alice".into(),
                disabled: true,
            },
        ),
        (
            "CreateToken",
            Command::CreateToken {
                user: "alice".into(),
                token_hash,
                label: "ci".into(),
                now_ms,
            },
        ),
        (
            "RevokeToken",
            Command::RevokeToken {
                user: "alice".into(),
                token_hash,
            },
        ),
        (
            "CreateSession",
            Command::CreateSession {
                session_hash: token_hash,
                user: "alice".into(),
                expires_ms: now_ms + 604_800_000,
                now_ms,
            },
        ),
        (
            "EndSession",
            Command::EndSession {
                session_hash: token_hash,
            },
        ),
    ];
    for (name, command) in &commands {
        add(&format!("paxos.Command.{name}"), encode(command));
    }
    out
}

#[test]
#[ignore = "prints vectors to paste into PROTOCOL.md"]
fn print_vectors() {
    let mut seen = BTreeMap::new();
    for (tag, bytes) in examples() {
        assert_eq!(round_trip(&tag, &bytes).unwrap(), bytes, "{tag}");
        assert!(seen.insert(tag.clone(), ()).is_none(), "{tag} twice");
        println!("```vector {tag}\n{}```\n", annotate(&bytes));
    }
}

/// One line per MessagePack token (a map key and a plain value share a line), with what it
/// means after `#`, indented by depth.
fn annotate(bytes: &[u8]) -> String {
    let mut lines = Vec::new();
    let mut at = 0;
    value(bytes, &mut at, 0, "", &mut lines);
    assert_eq!(at, bytes.len(), "trailing bytes");
    let width = lines
        .iter()
        .map(|(h, _)| h.len())
        .max()
        .unwrap_or(0)
        .min(40);
    let mut out = String::new();
    for (hex, comment) in lines {
        let _ = writeln!(out, "{hex:<width$}  # {comment}");
    }
    out
}

fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| n << 8 | u64::from(*b))
}

/// Annotates the value at `*at`; `key` is the name of the map key before it, if any.
fn value(bytes: &[u8], at: &mut usize, depth: usize, key: &str, lines: &mut Vec<(String, String)>) {
    let start = *at;
    let pad = "  ".repeat(depth);
    let b = bytes[start];
    let (head, len, what): (usize, usize, &str) = match b {
        0x00..=0x7f => (1, 0, "uint"),
        0x80..=0x8f => (1, usize::from(b & 0x0f), "map"),
        0x90..=0x9f => (1, usize::from(b & 0x0f), "array"),
        0xa0..=0xbf => (1, usize::from(b & 0x1f), "str"),
        0xc0 => (1, 0, "nil"),
        0xc2 => (1, 0, "false"),
        0xc3 => (1, 0, "true"),
        0xc4 => (2, be(&bytes[start + 1..start + 2]) as usize, "bin"),
        0xc5 => (3, be(&bytes[start + 1..start + 3]) as usize, "bin"),
        0xcc => (2, 0, "uint"),
        0xcd => (3, 0, "uint"),
        0xce => (5, 0, "uint"),
        0xcf => (9, 0, "uint"),
        0xd9 => (2, be(&bytes[start + 1..start + 2]) as usize, "str"),
        0xda => (3, be(&bytes[start + 1..start + 3]) as usize, "str"),
        0xdc => (3, be(&bytes[start + 1..start + 3]) as usize, "array"),
        0xde => (3, be(&bytes[start + 1..start + 3]) as usize, "map"),
        other => panic!("annotator does not know {other:#04x}"),
    };
    *at += head;
    let key_text = if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    };
    let key_hex = |rest: String| -> String {
        if key.is_empty() {
            rest
        } else {
            let k = key.as_bytes();
            let mut h = spaced(&[0xa0 | k.len() as u8]);
            h.push(' ');
            h.push_str(&hex(k));
            h.push(' ');
            h + &rest
        }
    };
    match what {
        "uint" => {
            let n = if head == 1 {
                u64::from(b)
            } else {
                be(&bytes[start + 1..start + head])
            };
            let h = key_hex(hex_token(&bytes[start..*at], 1));
            let shown = if n > 0xffff {
                format!("{n} ({n:#x})")
            } else {
                n.to_string()
            };
            lines.push((h, format!("{pad}{key_text}{shown}")));
        }
        "nil" | "false" | "true" => {
            let h = key_hex(hex_token(&bytes[start..*at], 1));
            lines.push((h, format!("{pad}{key_text}{what}")));
        }
        "str" | "bin" => {
            let payload = &bytes[*at..*at + len];
            *at += len;
            let shown = if what == "str" {
                format!("{:?}", String::from_utf8_lossy(payload))
            } else {
                format!("bin({len})")
            };
            if len <= 16 {
                let h = key_hex(hex_token(&bytes[start..*at], head));
                lines.push((h, format!("{pad}{key_text}{shown}")));
            } else {
                let h = key_hex(hex(&bytes[start..start + head]));
                let shown = if what == "str" {
                    format!("str of {len} bytes: {shown}")
                } else {
                    format!("bin of {len} bytes:")
                };
                lines.push((h, format!("{pad}{key_text}{shown}")));
                for chunk in payload.chunks(16) {
                    lines.push((hex(chunk), format!("{pad}  ...")));
                }
            }
        }
        "array" => {
            lines.push((
                key_hex(hex_token(&bytes[start..*at], 1)),
                format!("{pad}{key_text}array({len})"),
            ));
            for _ in 0..len {
                value(bytes, at, depth + 1, "", lines);
            }
        }
        "map" => {
            lines.push((
                key_hex(hex_token(&bytes[start..*at], 1)),
                format!("{pad}{key_text}map({len})"),
            ));
            for _ in 0..len {
                // Keys are short strings in every protocol here.
                let kb = bytes[*at];
                assert!((0xa0..=0xbf).contains(&kb), "map key is not a short string");
                let klen = usize::from(kb & 0x1f);
                let name = String::from_utf8_lossy(&bytes[*at + 1..*at + 1 + klen]).into_owned();
                *at += 1 + klen;
                value(bytes, at, depth + 1, &name, lines);
            }
        }
        _ => unreachable!(),
    }
}

/// A token as hex: its first `head` bytes (type and length), a space, the rest.
fn hex_token(bytes: &[u8], head: usize) -> String {
    if bytes.len() <= head {
        hex(bytes)
    } else {
        format!("{} {}", hex(&bytes[..head]), hex(&bytes[head..]))
    }
}
