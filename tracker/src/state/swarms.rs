//! A torrent's swarm: who is in it, where they are, and which pieces each one has.
//!
//! Members live in a dense vector, so that neighbour selection can sample them by index,
//! with a hash map from fingerprint to position, so that a piece report costs a lookup
//! and a few bit operations however large the swarm. A removed member's place is taken by
//! the last member; the order is therefore a function of the command history, the same on
//! every replica, and snapshots keep it.
//!
//! Derived numbers (pieces per member, per-piece availability, seeders, and in a large
//! swarm the holders of each piece) are kept up to date with every change, so that no
//! question about a swarm needs a scan of its bitfields.

use std::collections::HashMap;
use std::net::SocketAddr;

use certs::Fingerprint;

use crate::api::{ApiError, MAX_MEMBERS_PER_PAGE, MembersPage, PeerInfo, SwarmMember};
use crate::bitfield::Bitfield;

use super::SwarmPeer;
use super::holders::PieceHolders;
use super::neighbours::CONSIDER_ALL_UP_TO;

/// A peer in a swarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    /// Its identity.
    pub(crate) fingerprint: Fingerprint,
    /// Where it accepts connections.
    pub(crate) addr: SocketAddr,
    /// Pieces it holds.
    pub(crate) have: Bitfield,
    /// `have.count()`, kept so that seeder checks are O(1).
    pub(crate) count: u32,
    /// Last heard, ms since the Unix epoch (the latest proposer clock seen).
    pub(crate) last_heard_ms: u64,
    /// How many present members were given this peer as a neighbour by their latest
    /// join (see `neighbours`): live handouts only, so that the count falls again when
    /// those joiners leave, expire or join again, and does not fall when this peer itself
    /// expires and comes back while they still hold it.
    pub(crate) in_degree: u32,
    /// The neighbours this peer's latest join handed it; released when it joins again,
    /// leaves or expires.
    pub(crate) handed: Vec<Fingerprint>,
    /// Whether this stay in the swarm has already counted as a completed download (or
    /// cannot: the peer joined with every piece).
    pub(crate) completion_counted: bool,
}

impl Member {
    /// The peer as the tracker tells it to others.
    pub(crate) fn info(&self) -> PeerInfo {
        PeerInfo {
            fingerprint: self.fingerprint,
            addr: self.addr,
            pieces: self.count,
        }
    }
}

/// What a command did to a swarm, for the torrent's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    /// The peer was not in the swarm before.
    pub(crate) joined: bool,
    /// The peer completed its download with this command.
    pub(crate) completed: bool,
}

/// The peers of one torrent.
#[derive(Clone, Debug)]
pub(crate) struct Swarm {
    piece_count: u32,
    members: Vec<Member>,
    index: HashMap<Fingerprint, u32>,
    availability: Vec<u32>,
    /// The members holding each piece, once the swarm has outgrown being considered whole
    /// by neighbour selection (smaller swarms are walked whole anyway).
    holders: Option<PieceHolders>,
    seeders: u32,
    /// The in-degrees of peers that are not members (they left or expired) but are among
    /// the neighbours present members were handed; a peer that comes back gets its own
    /// back. Never holds a zero.
    absent_in_degree: HashMap<Fingerprint, u32>,
    /// At most every member's `last_heard_ms`, so that `Expire` skips swarms with nobody
    /// to remove. Refreshes only raise last-heard times, so it stays a lower bound; it is
    /// made exact whenever the swarm is scanned.
    heard_floor_ms: u64,
}

/// Calls `f` with every piece present in `bits`, skipping empty bytes.
fn for_each_one(bits: &Bitfield, mut f: impl FnMut(u32)) {
    for (byte_at, &byte) in bits.as_bytes().iter().enumerate() {
        let mut rest = byte;
        while rest != 0 {
            let bit = rest.leading_zeros();
            rest &= !(0x80u8 >> bit);
            f(byte_at as u32 * 8 + bit);
        }
    }
}

/// Checks that every piece is below `piece_count`, naming the first that is not.
pub(crate) fn check_pieces(pieces: &[u32], piece_count: u32) -> Result<(), ApiError> {
    match pieces.iter().find(|&&p| p >= piece_count) {
        Some(p) => Err(ApiError::BadPieces(format!(
            "piece {p} is out of range: this torrent has {piece_count} pieces (0 to {})",
            piece_count.saturating_sub(1)
        ))),
        None => Ok(()),
    }
}

/// Checks that a bitfield covers exactly the torrent's pieces.
pub(crate) fn check_bitfield(have: &Bitfield, piece_count: u32) -> Result<(), ApiError> {
    if have.len() == piece_count {
        Ok(())
    } else {
        Err(ApiError::BadPieces(format!(
            "the bitfield covers {} pieces, but this torrent has {piece_count}",
            have.len()
        )))
    }
}

impl Swarm {
    /// An empty swarm for a torrent of `piece_count` pieces.
    pub(crate) fn new(piece_count: u32) -> Swarm {
        Swarm {
            piece_count,
            members: Vec::new(),
            index: HashMap::new(),
            availability: vec![0; piece_count as usize],
            holders: None,
            seeders: 0,
            absent_in_degree: HashMap::new(),
            heard_floor_ms: u64::MAX,
        }
    }

    /// A swarm restored from a snapshot: `members` in this order, with every derived
    /// number recomputed, and the in-degrees of absent peers (see
    /// [`Swarm::absent_in_degrees`]). Refuses bitfields of the wrong length, repeated
    /// fingerprints, and absent peers that are members or hold no in-degree.
    pub(crate) fn from_members(
        piece_count: u32,
        members: Vec<Member>,
        absent_in_degree: Vec<(Fingerprint, u32)>,
    ) -> Result<Swarm, String> {
        // Lengths first: the per-piece counts are allocated only once the bitfields, whose
        // bytes are really there, show the piece count is not a corrupt giant.
        if let Some(m) = members.iter().find(|m| m.have.len() != piece_count) {
            return Err(format!(
                "peer {} has a bitfield of {} pieces in a torrent of {piece_count}",
                m.fingerprint,
                m.have.len()
            ));
        }
        let mut swarm = Swarm::new(piece_count);
        for mut m in members {
            if swarm.index.contains_key(&m.fingerprint) {
                return Err(format!("peer {} is in a swarm twice", m.fingerprint));
            }
            m.count = m.have.count();
            swarm.add(m);
        }
        for (fingerprint, in_degree) in absent_in_degree {
            if swarm.index.contains_key(&fingerprint) || in_degree == 0 {
                return Err(format!(
                    "peer {fingerprint} is both a member and absent, or absent with no in-degree"
                ));
            }
            if swarm
                .absent_in_degree
                .insert(fingerprint, in_degree)
                .is_some()
            {
                return Err(format!("absent peer {fingerprint} is in a swarm twice"));
            }
        }
        Ok(swarm)
    }

    fn add(&mut self, mut m: Member) {
        if let Some(in_degree) = self.absent_in_degree.remove(&m.fingerprint) {
            m.in_degree = in_degree;
        }
        for_each_one(&m.have, |p| self.availability[p as usize] += 1);
        if m.count == self.piece_count {
            self.seeders += 1;
        }
        self.heard_floor_ms = self.heard_floor_ms.min(m.last_heard_ms);
        let slot = self.members.len();
        self.index.insert(m.fingerprint, slot as u32);
        match &mut self.holders {
            Some(holders) => holders.set_all(slot, &m.have),
            None if slot >= CONSIDER_ALL_UP_TO => {
                let mut holders = PieceHolders::new(self.piece_count);
                for (at, member) in self.members.iter().enumerate() {
                    holders.set_all(at, &member.have);
                }
                holders.set_all(slot, &m.have);
                self.holders = Some(holders);
            }
            None => {}
        }
        self.members.push(m);
    }

    /// Which members hold each piece, in a swarm large enough to keep that.
    pub(crate) fn holders(&self) -> Option<&PieceHolders> {
        self.holders.as_ref()
    }

    /// The members, in replicated order.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members holding every piece.
    pub(crate) fn seeders(&self) -> u32 {
        self.seeders
    }

    /// Members still downloading.
    pub(crate) fn leechers(&self) -> u32 {
        self.members.len() as u32 - self.seeders
    }

    /// How many members hold each piece.
    pub(crate) fn availability(&self) -> &[u32] {
        &self.availability
    }

    /// A member's position.
    pub(crate) fn position(&self, fingerprint: &Fingerprint) -> Option<usize> {
        self.index.get(fingerprint).map(|&i| i as usize)
    }

    /// The members for a torrent's page, by fingerprint.
    pub(crate) fn peers(&self) -> Vec<SwarmPeer> {
        let mut peers: Vec<SwarmPeer> = self
            .members
            .iter()
            .map(|m| SwarmPeer {
                info: m.info(),
                last_heard_ms: m.last_heard_ms,
            })
            .collect();
        peers.sort_by_key(|p| p.info.fingerprint);
        peers
    }

    /// Members whose fingerprint sorts after `after`, at most `limit` (and at most
    /// [`MAX_MEMBERS_PER_PAGE`]), by fingerprint: a page of an operator's read.
    pub(crate) fn members_page(&self, after: Option<&Fingerprint>, limit: u32) -> MembersPage {
        let mut page: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| after.is_none_or(|a| m.fingerprint > *a))
            .collect();
        page.sort_unstable_by_key(|m| m.fingerprint);
        page.truncate(limit.min(MAX_MEMBERS_PER_PAGE) as usize);
        MembersPage {
            total: self.members.len() as u32,
            members: page
                .into_iter()
                .map(|m| SwarmMember {
                    fingerprint: m.fingerprint,
                    addr: m.addr,
                    have: m.have.clone(),
                })
                .collect(),
        }
    }

    /// Records that the member `joiner` was just handed `neighbours` (members): releases
    /// what its previous join was handed and counts the new handout.
    pub(crate) fn hand_out(&mut self, joiner: &Fingerprint, neighbours: Vec<Fingerprint>) {
        let Some(at) = self.position(joiner) else {
            return;
        };
        let previous = std::mem::take(&mut self.members[at].handed);
        self.release(&previous);
        for fingerprint in &neighbours {
            if let Some(i) = self.position(fingerprint) {
                let m = &mut self.members[i];
                m.in_degree = m.in_degree.saturating_add(1);
            }
        }
        self.members[at].handed = neighbours;
    }

    /// Takes back one handout of each of `neighbours`, members or not.
    fn release(&mut self, neighbours: &[Fingerprint]) {
        for fingerprint in neighbours {
            if let Some(i) = self.position(fingerprint) {
                let m = &mut self.members[i];
                m.in_degree = m.in_degree.saturating_sub(1);
            } else if let Some(d) = self.absent_in_degree.get_mut(fingerprint) {
                *d -= 1;
                if *d == 0 {
                    self.absent_in_degree.remove(fingerprint);
                }
            }
        }
    }

    /// The in-degrees of absent peers, by fingerprint (for snapshots).
    pub(crate) fn absent_in_degrees(&self) -> Vec<(Fingerprint, u32)> {
        let mut out: Vec<_> = self
            .absent_in_degree
            .iter()
            .map(|(f, d)| (*f, *d))
            .collect();
        out.sort_unstable();
        out
    }

    /// Adds a peer, or refreshes it (address, pieces, time) if it is already in. The
    /// caller has checked the bitfield's length.
    pub(crate) fn join(
        &mut self,
        fingerprint: Fingerprint,
        addr: SocketAddr,
        have: &Bitfield,
        now_ms: u64,
    ) -> Change {
        let count = have.count();
        let Some(at) = self.position(&fingerprint) else {
            self.add(Member {
                fingerprint,
                addr,
                have: have.clone(),
                count,
                last_heard_ms: now_ms,
                in_degree: 0,
                handed: Vec::new(),
                completion_counted: count == self.piece_count,
            });
            return Change {
                joined: true,
                completed: false,
            };
        };
        let piece_count = self.piece_count;
        let m = &mut self.members[at];
        for_each_one(&m.have, |p| self.availability[p as usize] -= 1);
        for_each_one(have, |p| self.availability[p as usize] += 1);
        if let Some(holders) = &mut self.holders {
            holders.clear_all(at, &m.have);
            holders.set_all(at, have);
        }
        let was_full = m.count == piece_count;
        m.addr = addr;
        m.have.clone_from(have);
        m.count = count;
        m.last_heard_ms = m.last_heard_ms.max(now_ms);
        let is_full = count == piece_count;
        let completed = self.note_fullness(at, was_full, is_full);
        Change {
            joined: false,
            completed,
        }
    }

    /// Updates the seeder count after a member's pieces changed; returns whether this
    /// is the member's first completion in this stay.
    fn note_fullness(&mut self, at: usize, was_full: bool, is_full: bool) -> bool {
        match (was_full, is_full) {
            (false, true) => {
                self.seeders += 1;
                let m = &mut self.members[at];
                let first = !m.completion_counted;
                m.completion_counted = true;
                first
            }
            (true, false) => {
                self.seeders -= 1;
                false
            }
            _ => false,
        }
    }

    /// Marks pieces present at the member at `at`; returns whether it just completed its
    /// download. Refuses, changing nothing, if any piece is out of range.
    pub(crate) fn have(
        &mut self,
        at: usize,
        pieces: &[u32],
        now_ms: u64,
    ) -> Result<bool, ApiError> {
        check_pieces(pieces, self.piece_count)?;
        let piece_count = self.piece_count;
        let m = &mut self.members[at];
        let was_full = m.count == piece_count;
        for &p in pieces {
            if m.have.set(p) {
                m.count += 1;
                self.availability[p as usize] += 1;
                if let Some(holders) = &mut self.holders {
                    holders.set(at, p);
                }
            }
        }
        m.last_heard_ms = m.last_heard_ms.max(now_ms);
        let is_full = m.count == piece_count;
        Ok(self.note_fullness(at, was_full, is_full))
    }

    /// Marks pieces absent at the member at `at`. Refuses, changing nothing, if any piece
    /// is out of range.
    pub(crate) fn not_have(
        &mut self,
        at: usize,
        pieces: &[u32],
        now_ms: u64,
    ) -> Result<(), ApiError> {
        check_pieces(pieces, self.piece_count)?;
        let piece_count = self.piece_count;
        let m = &mut self.members[at];
        let was_full = m.count == piece_count;
        for &p in pieces {
            if m.have.clear(p) {
                m.count -= 1;
                self.availability[p as usize] -= 1;
                if let Some(holders) = &mut self.holders {
                    holders.clear(at, p);
                }
            }
        }
        m.last_heard_ms = m.last_heard_ms.max(now_ms);
        let is_full = m.count == piece_count;
        self.note_fullness(at, was_full, is_full);
        Ok(())
    }

    /// Refreshes a member's last-heard time.
    pub(crate) fn touch(&mut self, at: usize, now_ms: u64) {
        if let Some(m) = self.members.get_mut(at) {
            m.last_heard_ms = m.last_heard_ms.max(now_ms);
        }
    }

    /// Removes the member at `at`; the last member takes its place.
    pub(crate) fn remove(&mut self, at: usize) -> Member {
        let last = self.members.len() - 1;
        let m = self.members.swap_remove(at);
        self.index.remove(&m.fingerprint);
        if let Some(holders) = &mut self.holders {
            holders.clear_all(at, &m.have);
        }
        if let Some(moved) = self.members.get(at) {
            self.index.insert(moved.fingerprint, at as u32);
            if let Some(holders) = &mut self.holders {
                holders.clear_all(last, &moved.have);
                holders.set_all(at, &moved.have);
            }
        }
        for_each_one(&m.have, |p| self.availability[p as usize] -= 1);
        if m.count == self.piece_count {
            self.seeders -= 1;
        }
        self.release(&m.handed);
        if m.in_degree > 0 {
            self.absent_in_degree.insert(m.fingerprint, m.in_degree);
        }
        m
    }

    /// Removes every member last heard before `cutoff_ms`; calls `removed` with each
    /// one's fingerprint. Skips the scan when nobody can be that old.
    pub(crate) fn expire(&mut self, cutoff_ms: u64, mut removed: impl FnMut(Fingerprint)) {
        if self.heard_floor_ms >= cutoff_ms {
            return;
        }
        let mut at = 0;
        let mut floor = u64::MAX;
        while at < self.members.len() {
            let heard = self.members[at].last_heard_ms;
            if heard < cutoff_ms {
                removed(self.remove(at).fingerprint);
            } else {
                floor = floor.min(heard);
                at += 1;
            }
        }
        self.heard_floor_ms = floor;
    }
}
