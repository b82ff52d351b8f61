//! The swarm core: a deterministic state machine that decides which neighbours to use,
//! which pieces to ask each of them for, when to give up on one, and what to tell the
//! tracker.
//!
//! It does no IO and reads no clock: the runtime feeds it inputs with the current time
//! and drains [`Action`]s from [`Swarm::poll_output`]. Its randomness comes from a
//! generator seeded by [`SwarmConfig::seed`], so a simulation replays exactly.
//!
//! The inputs, `handle_*` each, come in families:
//!
//! | family | inputs |
//! |---|---|
//! | time | [`handle_timeout`](Swarm::handle_timeout) (due at [`Swarm::next_timeout`]) |
//! | tracker | [`handle_peers_offered`](Swarm::handle_peers_offered) |
//! | connections | [`handle_connected`](Swarm::handle_connected), [`handle_connect_failed`](Swarm::handle_connect_failed), [`handle_disconnected`](Swarm::handle_disconnected) |
//! | a neighbour's announcements | [`handle_bitfield`](Swarm::handle_bitfield), [`handle_haves`](Swarm::handle_haves) |
//! | answers to requests | [`handle_piece_verified`](Swarm::handle_piece_verified), [`handle_piece_corrupt`](Swarm::handle_piece_corrupt), [`handle_not_have`](Swarm::handle_not_have), [`handle_busy`](Swarm::handle_busy), [`handle_request_failed`](Swarm::handle_request_failed) |
//! | neighbours' requests | [`handle_upload_requested`](Swarm::handle_upload_requested), [`handle_upload_done`](Swarm::handle_upload_done) |
//! | local disk | [`handle_local_piece_lost`](Swarm::handle_local_piece_lost) |
//!
//! * Pieces are picked rarest first among the neighbours' bitfields, random among equals
//!   (`picker`), with enough requests in flight per neighbour to keep
//!   [`SwarmConfig::queue_time`] of data queued at its measured rate (`rate`,
//!   `neighbour`). Near the end, endgame requests missing pieces from several neighbours
//!   and cancels the losers.
//! * A neighbour that times out, fails a request or drops the connection is disengaged
//!   with the project's exponential back-off ([`backoff::Backoff`]) and replaced; one
//!   that sends a piece failing verification is banned for good.
//! * When no neighbour has a needed piece the tracker is asked who does; new pieces are
//!   reported in batches and heartbeats are sent on time (`reports`); neighbours hear of
//!   new pieces in batches too, at once after a quiet spell (`announce`).
//! * Uploads are decided here too (`upload`): neighbours' requests wait for one of a few
//!   slots sized to the measured uplink, the neediest requester first and, among equals,
//!   the piece with the fewest copies sent.
//!
//! Every input is hostile-safe: unknown peers, pieces out of range, duplicated or
//! reordered events are ignored or handled, never a panic.
//!
//! ```
//! use std::time::Instant;
//! use peer::swarm::{Action, PieceLayout, Swarm, SwarmConfig};
//! use tracker::{Bitfield, api::PeerInfo};
//!
//! let now = Instant::now();
//! let me = certs::Fingerprint::from_bytes([1; 32]);
//! let layout = PieceLayout { piece_len: 1 << 20, total_len: 3 << 20 };
//! let mut swarm = Swarm::new(SwarmConfig::default(), me, layout, Bitfield::new(3), now);
//! assert!(matches!(swarm.poll_output(), Some(Action::AskTrackerForPeers { .. })));
//!
//! let seeder = PeerInfo {
//!     fingerprint: certs::Fingerprint::from_bytes([2; 32]),
//!     addr: "192.0.2.1:7000".parse().unwrap(),
//!     pieces: 3,
//! };
//! swarm.handle_peers_offered(vec![seeder.clone()], now);
//! assert_eq!(swarm.poll_output(), Some(Action::Connect(seeder.clone())));
//! swarm.handle_connected(seeder.fingerprint, now);
//! swarm.handle_bitfield(seeder.fingerprint, Bitfield::full(3), now);
//! let mut requested = Vec::new();
//! while let Some(action) = swarm.poll_output() {
//!     if let Action::Request { piece, .. } = action {
//!         requested.push(piece);
//!     }
//! }
//! assert_eq!(requested.len(), 2, "two in flight until the rate is measured");
//! ```

mod action;
mod announce;
mod config;
mod layout;
mod maintain;
mod neighbour;
mod peer_table;
mod picker;
mod rate;
mod reports;
mod upload;
mod view;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use backoff::BackoffState;
use certs::Fingerprint;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracker::Bitfield;
use tracker::api::PeerInfo;

pub use action::Action;
pub use config::SwarmConfig;
pub use layout::PieceLayout;
pub use view::{ContactState, PeerView, Progress, UploadStatus};

use announce::Announcements;
use neighbour::{Contact, KnownPeer, Neighbour};
use peer_table::PeerTable;
use picker::Picker;
use reports::Reports;
use upload::{Queued, UploadLimits, Uploads};

/// The swarm core of one torrent download (and, once complete, of its seeding).
///
/// Laid out in the order written (`repr(C)`), what nearly every input reads first: the
/// clock, the kept deadlines, the outputs, the table of peers and the picker fill the
/// first cache lines, and the settings the pipelines read open the next. With the order
/// left to the compiler they spread over a kilobyte, next to the generator's buffer and
/// the reports, and with thousands of simulated peers each input paid a cache miss for
/// most of them.
#[derive(Debug)]
#[repr(C)]
pub struct Swarm {
    now: Instant,
    complete: bool,
    /// The last [`next_timeout`](Self::next_timeout) computed, while no input since could
    /// have moved it earlier (`None` inside: nothing scheduled). The runtime asks after
    /// every input and the answer scans every known peer, so it is kept.
    deadline: std::cell::Cell<Option<Option<Instant>>>,
    /// The earliest instant a connected neighbour needs attention (its request deadline,
    /// the end of its "busy" or of its tenure), as the last fill of every pipeline left
    /// them (`None` inside: none). Every input that changes a neighbour ends in that fill,
    /// or folds its one neighbour in (`handle_haves`), so the next timeout need not
    /// follow every neighbour's pointer again: with 10,000 simulated peers those 32
    /// cache misses per input were a tenth of the simulation.
    neighbour_wake: std::cell::Cell<Option<Option<Instant>>>,
    /// When the first dial times out and the first back-off ends, and whether a peer may
    /// be dialled, as the last walk found them, until a contact changes (`None`: walk
    /// again). See
    /// [`contact_times`](Self::contact_times).
    contact_times: std::cell::Cell<Option<ContactTimes>>,
    outputs: VecDeque<Action>,
    peers: PeerTable<KnownPeer>,
    picker: Picker,
    layout: PieceLayout,
    config: SwarmConfig,
    uploads: Uploads,
    local: Fingerprint,
    banned: BTreeSet<Fingerprint>,
    next_tracker_ask: Instant,
    last_tracker_ask: Instant,
    tracker_asks: BackoffState,
    reports: Reports,
    announcements: Announcements,
    rng: ChaCha8Rng,
}

/// What the idle and dialled peers will need next, from one walk over the known peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContactTimes {
    /// The earliest instant a dial times out (one already late included).
    dial_timeout: Option<Instant>,
    /// The earliest end of an idle peer's back-off that was still to come at the walk.
    backoff_end: Option<Instant>,
    /// Some known peer may be dialled (see `is_candidate`). Asked after every input,
    /// and it changes only where the rest does, or when the core completes.
    candidate: bool,
}

/// Why a neighbour is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// It failed (timeout, error, lost connection): back off before trying it again.
    Failed,
    /// It has nothing we need and a better candidate waits: back off too, so that it is
    /// not dialled straight back.
    Useless,
    /// The download is complete: no standing changes.
    Done,
}

impl Swarm {
    /// A core for a torrent cut as `layout`, of which the pieces in `have` are already
    /// verified on disk, run by the peer `local` (never dialled, even if offered).
    ///
    /// A `have` of the wrong length is read as far as it fits. The first outputs are
    /// queued at once: [`Action::AskTrackerForPeers`] when pieces are missing, or
    /// [`Action::Complete`] when none is.
    pub fn new(
        config: SwarmConfig,
        local: Fingerprint,
        layout: PieceLayout,
        have: Bitfield,
        now: Instant,
    ) -> Self {
        let count = layout.piece_count();
        let have = if have.len() == count {
            have
        } else {
            let mut fitted = Bitfield::new(count);
            for i in have.ones() {
                fitted.set(i);
            }
            fitted
        };
        let mut swarm = Swarm {
            picker: Picker::new(have, config.endgame_threshold),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            reports: Reports::new(
                config.report_interval,
                config.report_batch_max,
                config.heartbeat_interval,
                now,
            ),
            announcements: Announcements::new(config.announce_interval),
            uploads: Uploads::new(count, now),
            config,
            local,
            layout,
            peers: PeerTable::new(),
            banned: BTreeSet::new(),
            next_tracker_ask: now,
            last_tracker_ask: now,
            tracker_asks: BackoffState::default(),
            complete: false,
            now,
            outputs: VecDeque::new(),
            deadline: std::cell::Cell::new(None),
            neighbour_wake: std::cell::Cell::new(None),
            contact_times: std::cell::Cell::new(None),
        };
        swarm.maintain(now);
        swarm
    }

    /// The next action for the runtime, in the order decided.
    pub fn poll_output(&mut self) -> Option<Action> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if anything is scheduled.
    pub fn next_timeout(&self) -> Option<Instant> {
        if let Some(cached) = self.deadline.get()
            && cached.is_none_or(|d| d > self.now)
        {
            return cached;
        }
        let fresh = self.next_deadline();
        self.deadline.set(Some(fresh));
        fresh
    }

    /// Time passed: timeouts, back-offs, reports and heartbeats that are due fire.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        self.maintain(now);
    }

    /// The tracker offered these peers (at join, or answering an ask). Banned peers, this
    /// peer itself and peers beyond [`SwarmConfig::max_known_peers`] are ignored; a known
    /// peer that is not connected takes the new address. An offer with a new peer starts
    /// the tracker's back-off over.
    pub fn handle_peers_offered(&mut self, peers: Vec<PeerInfo>, now: Instant) {
        let now = self.advance(now);
        let mut learnt = false;
        for info in peers {
            let fp = info.fingerprint;
            if fp == self.local || self.banned.contains(&fp) {
                continue;
            }
            if let Some(peer) = self.peers.get_mut(&fp) {
                if matches!(peer.contact, Contact::Idle) {
                    // Its count of pieces decides whether a complete core dials it.
                    *peer.info = info;
                    self.contact_times.set(None);
                }
            } else if self.peers.len() < self.config.max_known_peers {
                self.peers.insert(fp, KnownPeer::new(info));
                self.contact_times.set(None);
                learnt = true;
            }
        }
        if learnt {
            self.tracker_asks_start_over();
        }
        self.maintain(now);
    }

    /// A connection asked for with [`Action::Connect`] is up. A connection the core did not
    /// ask for (or gave up on) is kept if there is room, else closed again.
    pub fn handle_connected(&mut self, peer: Fingerprint, now: Instant) {
        let now = self.advance(now);
        if self.banned.contains(&peer) {
            self.outputs
                .push_back(Action::Disconnect { peer, banned: true });
            return;
        }
        let room = !self.complete && self.active() < self.config.max_neighbours;
        let count = self.layout.piece_count();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        match p.contact {
            Contact::Connecting(_) => {
                p.contact = Contact::Connected(Box::new(Neighbour::new(count, now)), None);
                self.contact_times.set(None);
            }
            Contact::Connected(..) => {}
            Contact::Idle if room => {
                p.contact = Contact::Connected(Box::new(Neighbour::new(count, now)), None);
                self.peers.set_active(&peer, true);
                self.contact_times.set(None);
            }
            Contact::Idle => self.outputs.push_back(Action::Disconnect {
                peer,
                banned: false,
            }),
        }
        self.maintain(now);
    }

    /// Dialling this peer failed: it is backed off.
    pub fn handle_connect_failed(&mut self, peer: Fingerprint, now: Instant) {
        let now = self.advance(now);
        self.release(peer, Release::Failed, false, now);
        self.maintain(now);
    }

    /// The connection to this peer was lost: its requests go to others, it is backed off,
    /// and its requests waiting for an upload slot are dropped.
    pub fn handle_disconnected(&mut self, peer: Fingerprint, now: Instant) {
        let now = self.advance(now);
        self.uploads.forget(peer, now);
        self.release(peer, Release::Failed, false, now);
        self.maintain(now);
    }

    /// A neighbour sent the bitfield of the pieces it has (replacing any earlier one).
    /// A bitfield of the wrong length is a protocol violation: the neighbour is disengaged.
    pub fn handle_bitfield(&mut self, peer: Fingerprint, bitfield: Bitfield, now: Instant) {
        let now = self.advance(now);
        let count = self.layout.piece_count();
        let Some(n) = self.neighbour_mut(peer) else {
            return;
        };
        if bitfield.len() != count {
            self.release(peer, Release::Failed, true, now);
        } else {
            let old = std::mem::replace(&mut n.bitfield, bitfield);
            let was_announced = std::mem::replace(&mut n.announced, true);
            let new = n.bitfield.clone();
            if was_announced {
                self.picker.remove_holder(&old);
            }
            self.picker.add_holder(&new);
            self.let_go_if_both_complete(peer, now);
        }
        self.maintain(now);
    }

    /// A complete peer keeps a neighbour only to upload to it: once the neighbour is
    /// complete too, it is let go (and the link, which neither side now needs, closes).
    fn let_go_if_both_complete(&mut self, peer: Fingerprint, now: Instant) {
        let count = self.layout.piece_count();
        if self.complete
            && self
                .peers
                .get(&peer)
                .and_then(KnownPeer::neighbour)
                .is_some_and(|n| n.announced && n.bitfield.count() >= count)
        {
            self.release(peer, Release::Done, true, now);
        }
    }

    /// A neighbour announced one new piece: [`handle_haves`](Self::handle_haves) with one.
    pub fn handle_have(&mut self, peer: Fingerprint, piece: u32, now: Instant) {
        self.handle_haves(peer, &[piece], now);
    }

    /// A neighbour announced new pieces (a batch, as [`Action::Advertise`] sends them);
    /// pieces past the torrent's end are ignored.
    ///
    /// The one input that skips the full upkeep after an input: it is by far the
    /// most frequent (every piece anyone gains reaches all its neighbours), and all it can
    /// change is what this neighbour may be asked for. Deadlines, dials and tracker asks
    /// depend on time or on other inputs, and are handled when those come.
    pub fn handle_haves(&mut self, peer: Fingerprint, pieces: &[u32], now: Instant) {
        let now = self.advance(now);
        // One lookup serves the whole input: with thousands of simulated peers, finding
        // the sender's entry is a cache miss or two, and this input is the most frequent.
        let Some(at) = self.peers.position(&peer) else {
            return;
        };
        let Some(n) = self.peers.at_mut(at).1.neighbour_mut() else {
            return;
        };
        let first_news = !std::mem::replace(&mut n.announced, true);
        for &piece in pieces {
            if n.bitfield.set(piece) {
                self.picker.add_piece(piece);
            }
        }
        if self.complete {
            // A complete core has nothing to ask.
            self.let_go_if_both_complete(peer, now);
            self.maintain(now);
        } else if first_news {
            // A neighbour that had not announced anything yet is now filled like any
            // other.
            self.maintain(now);
        } else if let Some(d) = self.fill_at(at, now) {
            // Filling can only add this neighbour's request deadline (or end its "busy",
            // which at worst leaves an early wake-up kept): fold it into both kept times.
            for kept in [&self.deadline, &self.neighbour_wake] {
                if let Some(at) = kept.get() {
                    kept.set(Some(maintain::earliest(at, Some(d))));
                }
            }
        }
    }

    /// A piece arrived from `peer` and matched its torrent's BLAKE3 hash. It is held from
    /// now on, wherever it came from; copies still requested elsewhere are cancelled.
    pub fn handle_piece_verified(&mut self, peer: Fingerprint, piece: u32, now: Instant) {
        let now = self.advance(now);
        if piece >= self.layout.piece_count() {
            return;
        }
        let bytes = self.layout.len_of(piece);
        if let Some(p) = self.peers.get_mut(&peer)
            && let Some(n) = p.neighbour_mut()
            && n.delivered(piece, bytes, now)
        {
            p.backoff.succeed();
            self.picker.released(piece);
        }
        if self.picker.mark_have(piece) {
            self.reports.gained(piece);
            self.announcements.gained(piece);
            // Copies still requested elsewhere (endgame) are cancelled; outside endgame
            // there are none, and the walk over every neighbour is skipped.
            if self.picker.requests(piece) > 0 {
                for k in 0..self.peers.active_len() {
                    let (&fp, p) = self.peers.active_at_mut(k);
                    if let Some(n) = p.neighbour_mut()
                        && n.in_flight.remove(&piece).is_some()
                    {
                        self.picker.released(piece);
                        self.outputs.push_back(Action::Cancel { peer: fp, piece });
                    }
                }
            }
        }
        self.maintain(now);
    }

    /// A piece arrived from `peer` and did not match its hash: the sender is banned for
    /// good (disconnected, never dialled again) and its requests go to others.
    pub fn handle_piece_corrupt(&mut self, peer: Fingerprint, _piece: u32, now: Instant) {
        let now = self.advance(now);
        self.ban(peer, now);
        self.maintain(now);
    }

    /// A neighbour answered that it does not have `piece` after all: it is not asked for
    /// it again (unless it later announces it), and the piece is picked elsewhere. One
    /// that refuses [`SwarmConfig::max_false_claims`] pieces it announced is let go and
    /// backed off.
    pub fn handle_not_have(&mut self, peer: Fingerprint, piece: u32, now: Instant) {
        let now = self.advance(now);
        let max_false_claims = self.config.max_false_claims;
        let mut unreliable = false;
        if let Some(n) = self.neighbour_mut(peer) {
            let was_requested = n.in_flight.remove(&piece).is_some();
            let was_held = n.announced && n.bitfield.clear(piece);
            if was_requested && was_held {
                n.false_claims += 1;
                unreliable = n.false_claims >= max_false_claims;
            }
            if was_requested {
                self.picker.released(piece);
            }
            if was_held {
                self.picker.remove_piece(piece);
            }
        }
        if unreliable {
            // It keeps announcing pieces it cannot serve: asking it piece by piece would
            // cost a round trip per piece, so it is let go and backed off like a failure.
            self.release(peer, Release::Failed, true, now);
        }
        self.maintain(now);
    }

    /// A request to a neighbour failed (stream reset, error answer): the neighbour is
    /// disengaged and backed off. A failure for a request not outstanding is ignored.
    pub fn handle_request_failed(&mut self, peer: Fingerprint, piece: u32, now: Instant) {
        let now = self.advance(now);
        let outstanding = self
            .peers
            .get(&peer)
            .and_then(KnownPeer::neighbour)
            .is_some_and(|n| n.in_flight.contains_key(&piece));
        if outstanding {
            self.release(peer, Release::Failed, true, now);
        }
        self.maintain(now);
    }

    /// A neighbour answered that it is too busy to serve `piece`: the piece is picked
    /// elsewhere and the neighbour is not asked for anything for
    /// [`SwarmConfig::busy_backoff`], without counting as a failure.
    pub fn handle_busy(&mut self, peer: Fingerprint, piece: u32, now: Instant) {
        let now = self.advance(now);
        let until = now + self.config.busy_backoff;
        if let Some(n) = self.neighbour_mut(peer)
            && n.in_flight.remove(&piece).is_some()
        {
            n.busy_until = Some(until);
            self.picker.released(piece);
        }
        self.maintain(now);
    }

    /// A connected peer (neighbour or not) asks for `piece`, and holds `requester_pieces`
    /// pieces. The request waits for an upload slot: [`Action::Upload`] grants it,
    /// [`Action::RefuseUpload`] refuses it (this peer lacks the piece, or the queue is
    /// full and it is the least urgent). See `upload` for the order.
    pub fn handle_upload_requested(
        &mut self,
        peer: Fingerprint,
        piece: u32,
        requester_pieces: u32,
        now: Instant,
    ) {
        let now = self.advance(now);
        if !self.picker.have().get(piece) || self.banned.contains(&peer) {
            self.outputs.push_back(Action::RefuseUpload { peer, piece });
            return;
        }
        let limits = self.upload_limits();
        if let Queued::Refused(peer, piece) =
            self.uploads
                .requested(peer, piece, requester_pieces, now, &limits)
        {
            self.outputs.push_back(Action::RefuseUpload { peer, piece });
        }
        self.grant_uploads(now);
    }

    /// An upload granted with [`Action::Upload`] ended, `bytes` sent (0 if it failed or
    /// the requester went away): its slot goes to the next request.
    pub fn handle_upload_done(&mut self, peer: Fingerprint, piece: u32, bytes: u64, now: Instant) {
        let now = self.advance(now);
        if self.uploads.done(peer, piece, bytes, now) {
            self.grant_uploads(now);
        }
    }

    fn upload_limits(&self) -> UploadLimits {
        let c = &self.config;
        UploadLimits {
            min_slots: c.min_upload_slots,
            max_slots: c.max_upload_slots,
            slot_time: c.upload_slot_time,
            max_wait: c.upload_max_wait,
            max_waiting: c.max_upload_queue,
            piece_len: self.layout.piece_len,
            spread: self.is_complete(),
        }
    }

    fn grant_uploads(&mut self, now: Instant) {
        // Whether the uplink idles moves an idle seeder's timer (`offer_uplink`).
        self.deadline.set(None);
        let limits = self.upload_limits();
        for (peer, piece) in self.uploads.grant(now, &limits) {
            self.outputs.push_back(Action::Upload { peer, piece });
        }
    }

    /// One of this peer's own pieces was found lost or changed on disk (reading it to
    /// serve failed verification): it is no longer held, the tracker is told, and it is
    /// downloaded again.
    pub fn handle_local_piece_lost(&mut self, piece: u32, now: Instant) {
        let now = self.advance(now);
        if self.picker.mark_lost(piece) {
            self.reports.lost(piece);
            self.announcements.lost(piece);
            self.outputs.push_back(Action::ReportNotHave(vec![piece]));
            self.complete = false;
            self.contact_times.set(None);
        }
        self.maintain(now);
    }

    /// The tracker's answers are useful again (new peers came, or a neighbour was lost and
    /// needs replacing): the next round may come one initial back-off after the last.
    fn tracker_asks_start_over(&mut self) {
        self.tracker_asks.succeed();
        let soon = self.last_tracker_ask + self.config.tracker_backoff.initial;
        self.next_tracker_ask = self.next_tracker_ask.min(soon);
    }

    /// Time never goes backwards inside the core, whatever the caller passes.
    fn advance(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn neighbour_mut(&mut self, peer: Fingerprint) -> Option<&mut Neighbour> {
        self.peers.get_mut(&peer).and_then(KnownPeer::neighbour_mut)
    }

    /// Neighbours connected or being dialled: the peers the table marks active, which
    /// every change of contact keeps up to date.
    fn active(&self) -> usize {
        debug_assert!(
            self.peers.iter_active().map(|(fp, _)| fp).eq(self
                .peers
                .iter()
                .filter(|(_, p)| p.is_active())
                .map(|(fp, _)| fp)),
            "the peers marked active are not those connected or dialled"
        );
        self.peers.active_len()
    }

    /// When the first dial times out and the first back-off of an idle peer ends after
    /// `now`, and whether some peer may be dialled: kept from the last walk while no
    /// contact, known peer or completeness has changed and that back-off is still to
    /// come, since all are fixed when set. Every input asks (through
    /// [`expire`](Self::maintain) and [`next_timeout`](Self::next_timeout)), while
    /// contacts change far less often.
    fn contact_times(&self, now: Instant) -> ContactTimes {
        if let Some(kept) = self.contact_times.get()
            && kept.backoff_end.is_none_or(|end| end > now)
        {
            debug_assert_eq!(kept, self.walk_contact_times(now), "kept contact times");
            return kept;
        }
        let fresh = self.walk_contact_times(now);
        self.contact_times.set(Some(fresh));
        fresh
    }

    fn walk_contact_times(&self, now: Instant) -> ContactTimes {
        let mut times = ContactTimes {
            dial_timeout: None,
            backoff_end: None,
            candidate: false,
        };
        for p in self.peers.values() {
            times.candidate = times.candidate || self.is_candidate(p, now);
            match &p.contact {
                Contact::Idle => {
                    let end = p.backoff.backed_off_until(now);
                    times.backoff_end = maintain::earliest(times.backoff_end, end);
                }
                Contact::Connecting(since) => {
                    let timeout = Some(*since + self.config.connect_timeout);
                    times.dial_timeout = maintain::earliest(times.dial_timeout, timeout);
                }
                Contact::Connected(..) => {}
            }
        }
        times
    }
}
