//! Tests of the replicated state, by area, with a small harness that numbers slots like
//! the log does.

mod neighbours;
mod publish;
mod sessions;
mod snapshot;
mod swarm;
mod users;

use std::net::SocketAddr;

use certs::Fingerprint;
use paxos::StateMachine;

use crate::api::{ApiError, PeerInfo, SearchPage, TorrentSummary};
use crate::bitfield::Bitfield;
use crate::torrent::{FileEntry, Info, InfoHash, MIN_PIECE_LENGTH, Torrent};

use super::{Command, Output, Query, Role, StateConfig, TokenHash, TrackerState, Uploader};

/// The TTL the harness uses.
const TTL: u64 = 30_000;

/// A state with an admin `alice`, a user `bob`, and a token of bob's (`BOB_TOKEN`).
struct Harness {
    state: TrackerState,
    slot: u64,
}

const BOB_TOKEN: &str = "bob-token-0123456789abcdef0123456789abcdef";

fn bob_token() -> TokenHash {
    TokenHash::of(BOB_TOKEN)
}

/// A torrent file named `name` with `pieces` pieces (piece hashes made up: the state
/// never checks data), distinct per `(name, pieces)`.
fn torrent_file(name: &str, pieces: u32) -> Vec<u8> {
    let info = Info {
        name: name.to_owned(),
        piece_length: MIN_PIECE_LENGTH,
        files: vec![FileEntry {
            path: vec![],
            length: u64::from(pieces) * u64::from(MIN_PIECE_LENGTH),
        }],
        pieces: (0..pieces)
            .flat_map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect(),
    };
    let ca = Fingerprint::from_bytes([7; 32]);
    Torrent::new(info, vec!["192.0.2.1:7000".parse().unwrap()], ca, 1, None)
        .unwrap()
        .encode()
}

fn info_hash_of(file: &[u8]) -> InfoHash {
    Torrent::parse(file).unwrap().info_hash()
}

fn fp(n: u32) -> Fingerprint {
    Fingerprint::from_bytes(*blake3::hash(&n.to_le_bytes()).as_bytes())
}

fn addr(n: u32) -> SocketAddr {
    SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 7000))
}

pub(crate) fn bits(len: u32, ones: impl IntoIterator<Item = u32>) -> Bitfield {
    let mut b = Bitfield::new(len);
    for i in ones {
        b.set(i);
    }
    b
}

impl Harness {
    fn new() -> Self {
        let mut h = Harness {
            state: TrackerState::new(StateConfig { peer_ttl_ms: TTL }),
            slot: 0,
        };
        h.ok(Command::AddUser {
            name: "alice".into(),
            password_hash: "$argon2id$alice".into(),
            role: Role::Admin,
            now_ms: 1,
        });
        h.ok(Command::AddUser {
            name: "bob".into(),
            password_hash: "$argon2id$bob".into(),
            role: Role::User,
            now_ms: 2,
        });
        h.ok(Command::CreateToken {
            user: "bob".into(),
            token_hash: bob_token(),
            label: "laptop".into(),
            now_ms: 3,
        });
        h
    }

    fn apply(&mut self, command: Command) -> Output {
        self.slot += 1;
        self.state.apply(self.slot, &command)
    }

    fn ok(&mut self, command: Command) {
        assert_eq!(self.apply(command), Output::Done);
    }

    fn err(&mut self, command: Command) -> ApiError {
        match self.apply(command) {
            Output::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn query(&self, query: Query) -> Output {
        self.state.query(&query)
    }

    /// Publishes as bob's token at `now_ms`.
    fn publish(&mut self, name: &str, pieces: u32, now_ms: u64) -> InfoHash {
        let file = torrent_file(name, pieces);
        match self.apply(Command::Publish {
            torrent: file,
            by: Uploader::Token(bob_token()),
            now_ms,
        }) {
            Output::Published(h) => h,
            other => panic!("publish failed: {other:?}"),
        }
    }

    fn join(
        &mut self,
        h: InfoHash,
        peer: u32,
        have: Bitfield,
        want: u32,
        now_ms: u64,
    ) -> Vec<PeerInfo> {
        match self.apply(Command::Join {
            info_hash: h,
            fingerprint: fp(peer),
            addr: addr(peer),
            have,
            want,
            now_ms,
        }) {
            Output::Joined(peers) => peers,
            other => panic!("join failed: {other:?}"),
        }
    }

    fn have(&mut self, h: InfoHash, peer: u32, pieces: Vec<u32>, now_ms: u64) -> Output {
        self.apply(Command::Have {
            info_hash: h,
            fingerprint: fp(peer),
            pieces,
            now_ms,
        })
    }

    fn not_have(&mut self, h: InfoHash, peer: u32, pieces: Vec<u32>, now_ms: u64) -> Output {
        self.apply(Command::NotHave {
            info_hash: h,
            fingerprint: fp(peer),
            pieces,
            now_ms,
        })
    }

    fn summary(&self, h: InfoHash) -> TorrentSummary {
        match self.query(Query::Details(h)) {
            Output::Details(Some(d)) => d.summary,
            other => panic!("no details: {other:?}"),
        }
    }

    fn search(&self, words: &str, page: u32, per_page: u32) -> SearchPage {
        match self.query(Query::Search {
            words: words.into(),
            page,
            per_page,
            order: Default::default(),
        }) {
            Output::Search(p) => p,
            other => panic!("search failed: {other:?}"),
        }
    }
}
