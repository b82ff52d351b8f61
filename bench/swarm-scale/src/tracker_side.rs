//! The tracker as the simulated peers see it: the tracker crate's own replicated state
//! machine ([`TrackerState`]), fed the same commands and queries a tracker node would
//! apply for them. Neighbour choice (in-degree balancing, preferring peers that can help)
//! and "who has this piece" are therefore the real code, not a model of it. Consensus is
//! left out: one replica applies every command at once, which is what all replicas agree
//! on in the end.

use std::net::SocketAddr;

use certs::Fingerprint;
use paxos::StateMachine;
use tracker::Bitfield;
use tracker::api::PeerInfo;
use tracker::state::{
    Command, Output, Query, Role, StateConfig, TokenHash, TrackerState, Uploader,
};
use tracker::torrent::{FileEntry, Info, InfoHash, Torrent};

/// One torrent's tracker.
pub struct TrackerSide {
    state: TrackerState,
    slot: u64,
    info_hash: InfoHash,
}

impl TrackerSide {
    /// A tracker holding one published torrent of `pieces` pieces of `piece_len` bytes
    /// (the last one `total_len` makes shorter), forgetting peers silent for `ttl_ms`.
    pub fn new(piece_len: u32, total_len: u64, pieces: u32, ttl_ms: u64) -> TrackerSide {
        let mut side = TrackerSide {
            state: TrackerState::new(StateConfig {
                peer_ttl_ms: ttl_ms,
            }),
            slot: 0,
            info_hash: InfoHash::from_bytes([0; 32]),
        };
        let token = TokenHash::of("simulation");
        side.apply(Command::AddUser {
            name: "sim".into(),
            password_hash: "$argon2id$unused".into(),
            role: Role::User,
            now_ms: 0,
        });
        side.apply(Command::CreateToken {
            user: "sim".into(),
            token_hash: token,
            label: "simulation".into(),
            now_ms: 0,
        });
        let info = Info {
            name: "payload".into(),
            piece_length: piece_len,
            files: vec![FileEntry {
                path: Vec::new(),
                length: total_len,
            }],
            // The simulation never hashes data: a corrupt piece is flagged as such.
            pieces: vec![0; 32 * pieces as usize],
        };
        let tracker: SocketAddr = "10.255.0.1:7100".parse().expect("constant address");
        let torrent = Torrent::new(
            info,
            vec![tracker],
            Fingerprint::from_bytes([9; 32]),
            0,
            None,
        )
        .expect("the simulated torrent is valid");
        match side.apply(Command::Publish {
            torrent: torrent.encode(),
            by: Uploader::Token(token),
            now_ms: 0,
        }) {
            Output::Published(hash) => side.info_hash = hash,
            other => panic!("publishing the simulated torrent failed: {other:?}"),
        }
        side
    }

    fn apply(&mut self, command: Command) -> Output {
        self.slot += 1;
        self.state.apply(self.slot, &command)
    }

    /// A peer joins (or rejoins) with `have`; the answer is its first neighbours.
    pub fn join(
        &mut self,
        fingerprint: Fingerprint,
        addr: SocketAddr,
        have: &Bitfield,
        want: u32,
        now_ms: u64,
    ) -> Vec<PeerInfo> {
        match self.apply(Command::Join {
            info_hash: self.info_hash,
            fingerprint,
            addr,
            have: have.clone(),
            want,
            now_ms,
        }) {
            Output::Joined(peers) => peers,
            other => panic!("join refused: {other:?}"),
        }
    }

    /// A peer reports new pieces (`present`) or pieces it does not have after all.
    pub fn report(
        &mut self,
        fingerprint: Fingerprint,
        pieces: Vec<u32>,
        present: bool,
        now_ms: u64,
    ) {
        let info_hash = self.info_hash;
        self.apply(if present {
            Command::Have {
                info_hash,
                fingerprint,
                pieces,
                now_ms,
            }
        } else {
            Command::NotHave {
                info_hash,
                fingerprint,
                pieces,
                now_ms,
            }
        });
    }

    /// A peer says it is alive.
    pub fn heartbeat(&mut self, fingerprint: Fingerprint, now_ms: u64) {
        self.apply(Command::Heartbeat {
            fingerprint,
            now_ms,
            info_hash: Some(self.info_hash),
        });
    }

    /// A peer leaves the swarm.
    pub fn leave(&mut self, fingerprint: Fingerprint) {
        self.apply(Command::Leave {
            info_hash: self.info_hash,
            fingerprint,
        });
    }

    /// The leader's periodic expiry of silent peers.
    pub fn expire(&mut self, now_ms: u64) {
        self.apply(Command::Expire { now_ms });
    }

    /// More neighbours for `asker`.
    pub fn more_peers(
        &self,
        asker: Fingerprint,
        exclude: Vec<Fingerprint>,
        want: u32,
        seed: u64,
    ) -> Vec<PeerInfo> {
        self.peers(Query::MorePeers {
            info_hash: self.info_hash,
            asker,
            exclude,
            want,
            seed,
        })
    }

    /// Holders of `piece`, for `asker`.
    pub fn peers_with_piece(
        &self,
        asker: Fingerprint,
        piece: u32,
        want: u32,
        seed: u64,
    ) -> Vec<PeerInfo> {
        self.peers(Query::PeersWithPiece {
            info_hash: self.info_hash,
            asker,
            piece,
            want,
            seed,
        })
    }

    fn peers(&self, query: Query) -> Vec<PeerInfo> {
        match self.state.query(&query) {
            Output::Peers(peers) => peers,
            _ => Vec::new(),
        }
    }
}
