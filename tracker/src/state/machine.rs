//! [`TrackerState`]: the torrents, swarms and users, and how each command and query is
//! applied to them.

use std::collections::{HashMap, HashSet};

use certs::Fingerprint;
use paxos::{RestoreError, StateMachine};

use crate::api::{ApiError, MAX_PEERS_PER_ANSWER, MembersPage, PeerInfo};
use crate::bitfield::Bitfield;
use crate::torrent::InfoHash;

use super::neighbours::{self, Asker};
use super::search;
use super::sessions::Sessions;
use super::swarms::{Member, Swarm, check_bitfield};
use super::torrents::Torrents;
use super::users::Users;
use super::{Command, Output, Query, StateConfig, Stats, TorrentDetails, Uploader};

/// The tracker's replicated state: torrents, swarms and users.
///
/// Every tracker node holds one and applies the same commands in the same order (see
/// [`paxos::StateMachine`]); outputs, snapshots and neighbour choices depend only on the
/// commands, never on clocks, hash-map order or unseeded randomness.
#[derive(Clone, Debug)]
pub struct TrackerState {
    pub(super) config: StateConfig,
    pub(super) torrents: Torrents,
    pub(super) users: Users,
    pub(super) sessions: Sessions,
    /// The swarms each peer is in, so that a heartbeat touches only those. A vector: a
    /// peer is usually in one or a few swarms, and a one-element vector is far smaller
    /// than a one-element set. Its order is never observed.
    pub(super) by_peer: HashMap<Fingerprint, Vec<InfoHash>>,
    pub(super) piece_reports: u64,
    pub(super) expired: u64,
}

/// The fields of a `Join` command.
struct Join<'a> {
    info_hash: InfoHash,
    fingerprint: Fingerprint,
    addr: std::net::SocketAddr,
    have: &'a Bitfield,
    want: u32,
    now_ms: u64,
}

impl TrackerState {
    /// An empty state with these settings, which every replica must share.
    pub fn new(config: StateConfig) -> Self {
        TrackerState {
            config,
            torrents: Torrents::default(),
            users: Users::default(),
            sessions: Sessions::default(),
            by_peer: HashMap::new(),
            piece_reports: 0,
            expired: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    fn index_peer(&mut self, fingerprint: Fingerprint, info_hash: InfoHash) {
        self.by_peer.entry(fingerprint).or_default().push(info_hash);
    }

    fn unindex_peer(&mut self, fingerprint: &Fingerprint, info_hash: &InfoHash) {
        if let Some(swarms) = self.by_peer.get_mut(fingerprint) {
            swarms.retain(|h| h != info_hash);
            if swarms.is_empty() {
                self.by_peer.remove(fingerprint);
            }
        }
    }

    fn publish(&mut self, file: &[u8], by: &Uploader, now_ms: u64) -> Result<Output, ApiError> {
        let uploader = match by {
            Uploader::Token(hash) => self.users.token_owner(hash),
            Uploader::User(name) => self.users.enabled_user(name),
        }
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
        self.torrents.publish(file, &uploader, now_ms)
    }

    fn join(&mut self, slot: u64, join: Join<'_>) -> Result<Vec<PeerInfo>, ApiError> {
        let Join {
            info_hash,
            fingerprint,
            addr,
            have,
            want,
            now_ms,
        } = join;
        let entry = self.torrents.known_mut(&info_hash)?;
        check_bitfield(have, entry.piece_count)?;
        let swarm = entry
            .swarm
            .get_or_insert_with(|| Swarm::new(entry.piece_count));
        let me = swarm.position(&fingerprint);
        let want = want.min(MAX_PEERS_PER_ANSWER) as usize;
        let mut rng = neighbours::join_rng(slot, &fingerprint);
        let chosen = neighbours::choose(
            swarm.members(),
            Some(Asker::new(have)),
            want,
            &mut rng,
            |i, _| Some(i) != me,
        );
        let answer = chosen.iter().map(|&i| swarm.members()[i].info()).collect();
        let handed = chosen
            .iter()
            .map(|&i| swarm.members()[i].fingerprint)
            .collect();
        let change = swarm.join(fingerprint, addr, have, now_ms);
        swarm.hand_out(&fingerprint, handed);
        if change.completed {
            entry.completed += 1;
        }
        self.piece_reports += u64::from(have.count());
        if change.joined {
            self.index_peer(fingerprint, info_hash);
        }
        Ok(answer)
    }

    /// Applies `Have` (`present`) or `NotHave`.
    fn report(
        &mut self,
        info_hash: &InfoHash,
        fingerprint: &Fingerprint,
        pieces: &[u32],
        present: bool,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        let not_in_swarm = || ApiError::NotInSwarm(*info_hash);
        let entry = self.torrents.known_mut(info_hash)?;
        let swarm = entry.swarm.as_mut().ok_or_else(not_in_swarm)?;
        let at = swarm.position(fingerprint).ok_or_else(not_in_swarm)?;
        if present {
            if swarm.have(at, pieces, now_ms)? {
                entry.completed += 1;
            }
            self.piece_reports += pieces.len() as u64;
        } else {
            swarm.not_have(at, pieces, now_ms)?;
        }
        Ok(())
    }

    fn leave(&mut self, info_hash: &InfoHash, fingerprint: &Fingerprint) -> Result<(), ApiError> {
        let entry = self.torrents.known_mut(info_hash)?;
        let Some(swarm) = entry.swarm.as_mut() else {
            return Ok(());
        };
        let Some(at) = swarm.position(fingerprint) else {
            return Ok(());
        };
        swarm.remove(at);
        if swarm.is_empty() {
            entry.swarm = None;
        }
        self.unindex_peer(fingerprint, info_hash);
        Ok(())
    }

    /// Refreshes the peer in every swarm it is in; refuses with
    /// [`ApiError::NotInSwarm`] if `named` is a swarm it is not in, so that a peer the
    /// tracker expired learns it must join again.
    fn heartbeat(
        &mut self,
        fingerprint: &Fingerprint,
        named: Option<&InfoHash>,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        let swarms = self.by_peer.get(fingerprint);
        for info_hash in swarms.into_iter().flatten() {
            if let Some(swarm) = self
                .torrents
                .get_mut(info_hash)
                .and_then(|e| e.swarm.as_mut())
                && let Some(at) = swarm.position(fingerprint)
            {
                swarm.touch(at, now_ms);
            }
        }
        let Some(named) = named else {
            return Ok(());
        };
        self.torrents.known(named)?;
        if swarms.is_some_and(|s| s.contains(named)) {
            Ok(())
        } else {
            Err(ApiError::NotInSwarm(*named))
        }
    }

    /// Removes every peer with `last_heard + ttl < now`. Each swarm is handled on its
    /// own, so the hash map's visiting order changes nothing.
    fn expire(&mut self, now_ms: u64) -> u64 {
        let cutoff = now_ms.saturating_sub(self.config.peer_ttl_ms);
        let mut removed = Vec::new();
        for (info_hash, entry) in self.torrents.by_hash.iter_mut() {
            let Some(swarm) = entry.swarm.as_mut() else {
                continue;
            };
            swarm.expire(cutoff, |fp| removed.push((fp, *info_hash)));
            if swarm.is_empty() {
                entry.swarm = None;
            }
        }
        for (fp, info_hash) in &removed {
            self.unindex_peer(fp, info_hash);
        }
        let n = removed.len() as u64;
        self.expired += n;
        n
    }

    fn details(&self, info_hash: &InfoHash) -> Option<Box<TorrentDetails>> {
        let entry = self.torrents.get(info_hash)?;
        let (availability, peers) = match &entry.swarm {
            Some(swarm) => (swarm.availability().to_vec(), swarm.peers()),
            None => (vec![0; entry.piece_count as usize], Vec::new()),
        };
        Some(Box::new(TorrentDetails {
            summary: entry.summary(*info_hash),
            availability,
            peers,
        }))
    }

    fn more_peers(
        &self,
        info_hash: &InfoHash,
        asker: &Fingerprint,
        exclude: &[Fingerprint],
        want: u32,
        seed: u64,
    ) -> Result<Vec<PeerInfo>, ApiError> {
        let entry = self.torrents.known(info_hash)?;
        let Some(swarm) = &entry.swarm else {
            return Ok(Vec::new());
        };
        let exclude: HashSet<&Fingerprint> = exclude.iter().collect();
        let asker_have = swarm
            .position(asker)
            .map(|at| Asker::for_query(&swarm.members()[at].have));
        let mut rng = neighbours::query_rng(seed, asker);
        let want = want.min(MAX_PEERS_PER_ANSWER) as usize;
        let chosen = neighbours::choose(swarm.members(), asker_have, want, &mut rng, |_, m| {
            m.fingerprint != *asker && !exclude.contains(&m.fingerprint)
        });
        Ok(chosen.iter().map(|&i| swarm.members()[i].info()).collect())
    }

    fn peers_with_piece(
        &self,
        info_hash: &InfoHash,
        asker: &Fingerprint,
        piece: u32,
        want: u32,
        seed: u64,
    ) -> Result<Vec<PeerInfo>, ApiError> {
        let entry = self.torrents.known(info_hash)?;
        super::swarms::check_pieces(&[piece], entry.piece_count)?;
        let Some(swarm) = &entry.swarm else {
            return Ok(Vec::new());
        };
        if swarm.availability()[piece as usize] == 0 {
            return Ok(Vec::new());
        }
        let mut rng = neighbours::query_rng(seed, asker);
        let want = want.min(MAX_PEERS_PER_ANSWER) as usize;
        let eligible = |_: usize, m: &Member| m.fingerprint != *asker && m.have.get(piece);
        // A random walk over the members finds holders of a common piece at once; for a
        // piece fewer than one in eight members hold, the index of holders gives the same
        // answer without visiting every member.
        let chosen = match swarm.holders() {
            Some(holders) if (swarm.availability()[piece as usize] as usize) * 8 < swarm.len() => {
                neighbours::choose_holders(
                    swarm.members(),
                    holders,
                    piece,
                    want,
                    &mut rng,
                    eligible,
                )
            }
            _ => neighbours::choose(swarm.members(), None, want, &mut rng, eligible),
        };
        Ok(chosen.iter().map(|&i| swarm.members()[i].info()).collect())
    }

    fn create_session(
        &mut self,
        session_hash: super::TokenHash,
        user: &str,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        if self.users.enabled_user(user).is_none() {
            // Prune anyway: the command's clock is as good here as in any other.
            self.sessions.prune(now_ms);
            return Err(ApiError::Unauthorized);
        }
        self.sessions.create(session_hash, user, expires_ms, now_ms)
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats {
            torrents: self.torrents.len() as u64,
            users: self.users.len() as u64,
            sessions: self.sessions.len() as u64,
            piece_reports: self.piece_reports,
            expired: self.expired,
            ..Stats::default()
        };
        for swarm in self
            .torrents
            .by_hash
            .values()
            .filter_map(|e| e.swarm.as_ref())
        {
            stats.swarms += 1;
            stats.peers += swarm.len() as u64;
            stats.seeders += u64::from(swarm.seeders());
        }
        stats
    }
}

fn done(result: Result<(), ApiError>) -> Output {
    match result {
        Ok(()) => Output::Done,
        Err(e) => Output::Error(e),
    }
}

impl StateMachine for TrackerState {
    type Command = Command;
    type Output = Output;
    type Query = Query;

    fn apply(&mut self, slot: paxos::Slot, command: &Command) -> Output {
        match command {
            Command::Publish {
                torrent,
                by,
                now_ms,
            } => match self.publish(torrent, by, *now_ms) {
                Ok(out) => out,
                Err(e) => Output::Error(e),
            },
            Command::Join {
                info_hash,
                fingerprint,
                addr,
                have,
                want,
                now_ms,
            } => match self.join(
                slot,
                Join {
                    info_hash: *info_hash,
                    fingerprint: *fingerprint,
                    addr: *addr,
                    have,
                    want: *want,
                    now_ms: *now_ms,
                },
            ) {
                Ok(peers) => Output::Joined(peers),
                Err(e) => Output::Error(e),
            },
            Command::Have {
                info_hash,
                fingerprint,
                pieces,
                now_ms,
            } => done(self.report(info_hash, fingerprint, pieces, true, *now_ms)),
            Command::NotHave {
                info_hash,
                fingerprint,
                pieces,
                now_ms,
            } => done(self.report(info_hash, fingerprint, pieces, false, *now_ms)),
            Command::Leave {
                info_hash,
                fingerprint,
            } => done(self.leave(info_hash, fingerprint)),
            Command::Heartbeat {
                fingerprint,
                now_ms,
                info_hash,
            } => done(self.heartbeat(fingerprint, info_hash.as_ref(), *now_ms)),
            Command::Expire { now_ms } => {
                self.sessions.prune(*now_ms);
                Output::Expired(self.expire(*now_ms))
            }
            Command::AddUser {
                name,
                password_hash,
                role,
                now_ms,
            } => done(self.users.add(name, password_hash, *role, *now_ms)),
            Command::SetUserDisabled { name, disabled } => {
                done(self.users.set_disabled(name, *disabled))
            }
            Command::CreateToken {
                user,
                token_hash,
                label,
                now_ms,
            } => done(self.users.create_token(user, *token_hash, label, *now_ms)),
            Command::RevokeToken { user, token_hash } => {
                done(self.users.revoke_token(user, *token_hash))
            }
            Command::CreateSession {
                session_hash,
                user,
                expires_ms,
                now_ms,
            } => done(self.create_session(*session_hash, user, *expires_ms, *now_ms)),
            Command::EndSession { session_hash } => {
                self.sessions.end(*session_hash);
                Output::Done
            }
        }
    }

    fn query(&self, query: &Query) -> Output {
        match query {
            Query::TorrentFile(h) => {
                Output::TorrentFile(self.torrents.get(h).map(|e| e.file.clone()))
            }
            Query::Search {
                words,
                page,
                per_page,
                order,
            } => match search::search(&self.torrents, words, *page, *per_page, *order) {
                Ok(page) => Output::Search(page),
                Err(e) => Output::Error(e),
            },
            Query::Details(h) => Output::Details(self.details(h)),
            Query::MorePeers {
                info_hash,
                asker,
                exclude,
                want,
                seed,
            } => match self.more_peers(info_hash, asker, exclude, *want, *seed) {
                Ok(peers) => Output::Peers(peers),
                Err(e) => Output::Error(e),
            },
            Query::PeersWithPiece {
                info_hash,
                asker,
                piece,
                want,
                seed,
            } => match self.peers_with_piece(info_hash, asker, *piece, *want, *seed) {
                Ok(peers) => Output::Peers(peers),
                Err(e) => Output::Error(e),
            },
            Query::User(name) => Output::User(self.users.user(name).cloned()),
            Query::TokenOwner(h) => {
                Output::TokenOwner(self.users.token_owner(h).map(str::to_owned))
            }
            Query::Tokens(name) => Output::Tokens(self.users.tokens_of(name)),
            Query::Users => Output::Users(self.users.all()),
            Query::Stats => Output::Stats(self.stats()),
            Query::SwarmMembers {
                info_hash,
                after,
                limit,
            } => match self.torrents.get(info_hash) {
                Some(entry) => Output::Members(match &entry.swarm {
                    Some(swarm) => swarm.members_page(after.as_ref(), *limit),
                    None => MembersPage {
                        total: 0,
                        members: Vec::new(),
                    },
                }),
                None => Output::Error(ApiError::UnknownTorrent(*info_hash)),
            },
            Query::Session {
                session_hash,
                now_ms,
            } => Output::Session(
                self.sessions
                    .user(session_hash, *now_ms)
                    .and_then(|name| self.users.enabled_user(name))
                    .and_then(|name| self.users.user(name))
                    .cloned(),
            ),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        super::snapshot::encode(self)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        *self = super::snapshot::decode(snapshot, self.config.clone())?;
        Ok(())
    }
}
