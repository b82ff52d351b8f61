//! What the core does after every input: give up on neighbours that timed out, dial
//! replacements, keep every neighbour's pipeline full, ask the tracker for help, send
//! reports and heartbeats, and notice completion.
//!
//! Doing all of it after every input (rather than in special cases of each input) keeps
//! one path for each decision: a request freed by a timeout, a not-have or a departed
//! neighbour is re-picked the same way.

use std::time::Instant;

use certs::Fingerprint;
use rand::seq::SliceRandom;

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use super::neighbour::{Contact, KnownPeer, Neighbour, Quiet};
use super::peer_table::PeerTable;
use super::picker::Picker;
use super::{Action, Release, Swarm, SwarmConfig};

impl Swarm {
    /// Brings the state up to date at `now`.
    pub(super) fn maintain(&mut self, now: Instant) {
        self.deadline.set(None);
        self.expire(now);
        let newly_complete = !self.complete && self.picker.missing() == 0;
        if newly_complete {
            self.complete = true;
            // Which known peers may be dialled depends on it.
            self.contact_times.set(None);
            let active: Vec<Fingerprint> = self.active_peers();
            for peer in active {
                self.release(peer, Release::Done, true, now);
            }
        }
        if !self.complete {
            self.connect_more(now);
            self.fill(now);
            self.ask_tracker(now);
        } else if self.uplink_idle_at(now) {
            self.offer_uplink(now);
        }
        if let Some(pieces) = self.announcements.take_due(now, newly_complete) {
            let known_to = if newly_complete {
                Vec::new()
            } else {
                self.neighbours_holding(&pieces)
            };
            self.outputs
                .push_back(Action::Advertise { pieces, known_to });
        }
        if let Some(batch) = self.reports.take_due(now, newly_complete) {
            self.outputs.push_back(Action::ReportHave(batch));
        }
        if self.reports.heartbeat_due(now) {
            self.outputs.push_back(Action::Heartbeat);
        }
        if newly_complete {
            self.outputs.push_back(Action::Complete);
        }
    }

    /// The neighbours that announced every one of `pieces`.
    fn neighbours_holding(&self, pieces: &[u32]) -> Vec<Fingerprint> {
        self.peers
            .iter_active()
            .filter_map(|(fp, p)| {
                let n = p.neighbour()?;
                let holds = n.announced && pieces.iter().all(|&i| n.bitfield.get(i));
                holds.then_some(*fp)
            })
            .collect()
    }

    /// Lets a neighbour go: its requests are freed for others and its pieces no longer
    /// count. `tell` asks the runtime to close the connection (not needed when the runtime
    /// reported the loss itself).
    pub(super) fn release(&mut self, peer: Fingerprint, why: Release, tell: bool, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        match std::mem::replace(&mut p.contact, Contact::Idle) {
            Contact::Idle => return,
            Contact::Connecting(_) => {}
            Contact::Connected(n, _) => {
                for &piece in n.in_flight.keys() {
                    self.picker.released(piece);
                }
                if n.announced {
                    self.picker.remove_holder(&n.bitfield);
                    // Remembered, so that an idle seeder does not dial a complete peer.
                    p.pieces_seen = Some(n.bitfield.count());
                }
            }
        }
        self.contact_times.set(None);
        let forget = if why == Release::Done {
            false
        } else {
            p.backoff.fail(&self.config.backoff, now, &mut self.rng);
            p.backoff.failures() >= self.config.max_failures
        };
        // Removing an entry unmarks it too.
        if forget {
            self.peers.remove(&peer);
        } else {
            self.peers.set_active(&peer, false);
        }
        if why == Release::Failed {
            self.tracker_asks_start_over();
        }
        if tell {
            self.outputs.push_back(Action::Disconnect {
                peer,
                banned: false,
            });
        }
    }

    /// Bans a peer that sent a corrupt piece: released, forgotten, and never dialled or
    /// accepted again.
    pub(super) fn ban(&mut self, peer: Fingerprint, now: Instant) {
        if peer == self.local || !self.banned.insert(peer) {
            return;
        }
        self.release(peer, Release::Done, false, now);
        self.peers.remove(&peer);
        self.contact_times.set(None);
        self.outputs
            .push_back(Action::Disconnect { peer, banned: true });
    }

    fn active_peers(&self) -> Vec<Fingerprint> {
        self.peers.iter_active().map(|(&fp, _)| fp).collect()
    }

    /// Disengages dials and neighbours that have not made progress in time.
    fn expire(&mut self, now: Instant) {
        let connect = self.config.connect_timeout;
        let request = self.config.request_timeout;
        // No neighbour is late while the wake-up noted by the last fill is still to come
        // (one connected since had its deadline set from now), and no dial while the
        // first dial timeout is: then nothing is checked, without a walk over the known
        // peers or following every neighbour's pointer.
        let neighbours_on_time = !self.complete
            && self
                .neighbour_wake
                .get()
                .is_some_and(|wake| wake.is_none_or(|w| w > now));
        let late_neighbour = |n: &Neighbour| n.deadline(request).is_some_and(|d| now >= d);
        debug_assert!(
            !neighbours_on_time
                || !self
                    .peers
                    .values()
                    .filter_map(KnownPeer::neighbour)
                    .any(late_neighbour),
            "a neighbour is late before the kept wake-up"
        );
        let dials_on_time = || {
            self.contact_times(now)
                .dial_timeout
                .is_none_or(|timeout| timeout > now)
        };
        if neighbours_on_time && dials_on_time() {
            return;
        }
        let is_late = |p: &KnownPeer| match &p.contact {
            Contact::Idle => false,
            Contact::Connecting(since) => now >= *since + connect,
            Contact::Connected(..) if neighbours_on_time => false,
            // A note is taken by a fill, after the late were let go at the same instant,
            // so its wake-up is no later than the neighbour's deadline: while that is
            // to come, the neighbour is on time, known without reading its box.
            Contact::Connected(n, Some(q)) if q.sleeps_at(now) => {
                debug_assert!(!late_neighbour(n), "late before its noted wake-up");
                false
            }
            Contact::Connected(n, _) => late_neighbour(n),
        };
        // Checked before collecting: this runs after every input and is rarely true.
        if !self.peers.iter_active().any(|(_, p)| is_late(p)) {
            return;
        }
        let late: Vec<Fingerprint> = self
            .peers
            .iter_active()
            .filter(|(_, p)| is_late(p))
            .map(|(&fp, _)| fp)
            .collect();
        for peer in late {
            self.release(peer, Release::Failed, true, now);
        }
    }

    /// Peers that may be dialled now, in the order to try them: fewest failures first,
    /// random among equals.
    fn candidates(&mut self, now: Instant) -> Vec<Fingerprint> {
        let mut found: Vec<(u32, Fingerprint)> = self
            .peers
            .iter()
            .filter(|(_, p)| self.is_candidate(p, now))
            .map(|(&fp, p)| (p.backoff.failures(), fp))
            .collect();
        found.shuffle(&mut self.rng);
        found.sort_by_key(|&(failures, _)| failures);
        found.into_iter().map(|(_, fp)| fp).collect()
    }

    /// Whether some known peer may be dialled now (kept with the contact times: it
    /// changes only with a contact, a peer learnt or forgotten, or a back-off ending).
    fn has_candidate(&self, now: Instant) -> bool {
        self.contact_times(now).candidate
    }

    /// Whether `p` may be dialled now: not connected, not backed off, and, for a complete
    /// peer (which dials only to offer its uplink), not known to be complete itself.
    pub(super) fn is_candidate(&self, p: &KnownPeer, now: Instant) -> bool {
        matches!(p.contact, Contact::Idle)
            && p.backoff.backed_off_until(now).is_none()
            && !(self.complete
                && p.pieces_seen.unwrap_or(p.info.pieces) >= self.layout.piece_count())
    }

    /// Dials candidates into free neighbour slots, first freeing a slot held by a useless
    /// neighbour when a candidate is waiting.
    fn connect_more(&mut self, now: Instant) {
        // The cheap tests first: this runs after every input, and usually every slot is
        // taken by a useful neighbour or nobody waits.
        if !self.has_candidate(now) {
            return;
        }
        if self.active() >= self.config.max_neighbours {
            // Swaps are not rate-limited although at the start of a flash crowd every
            // neighbour is empty and useless, so peers churn their neighbours: that churn is
            // how empty-handed peers find the pieces. In simulation (1,000 leechers) one
            // swap per 200 ms raised max from 1.25 to 1.58 T*, and swapping only for
            // candidates known to hold pieces raised p50 from 1.17 to 1.40 T*.
            let useless = self.peers.iter_active().find_map(|(fp, p)| {
                if p.noted_engaged() || p.noted_holding_missing(self.picker.have()) {
                    debug_assert!(p.neighbour().is_some_and(|n| !n.is_useless(
                        self.picker.have(),
                        now,
                        self.config.swap_tenure
                    )));
                    return None;
                }
                p.neighbour()
                    .is_some_and(|n| n.is_useless(self.picker.have(), now, self.config.swap_tenure))
                    .then_some(*fp)
            });
            let Some(peer) = useless else { return };
            self.release(peer, Release::Useless, true, now);
        }
        let candidates = self.candidates(now);
        for fp in candidates {
            if self.active() >= self.config.max_neighbours {
                break;
            }
            // A useless neighbour released above is backed off, so not a candidate; but a
            // candidate may have been forgotten by `release` in between. Only an idle
            // peer is dialled, or the count of active peers would drift.
            if let Some(p) = self.peers.get_mut(&fp)
                && matches!(p.contact, Contact::Idle)
            {
                p.contact = Contact::Connecting(now);
                self.outputs.push_back(Action::Connect((*p.info).clone()));
                self.peers.set_active(&fp, true);
                self.contact_times.set(None);
            }
        }
    }

    /// Tops up every neighbour's pipeline to its target, in one walk over the table: this
    /// runs after nearly every input, and looking each neighbour up by fingerprint cost a
    /// sixth of the simulator's time in cache misses.
    ///
    /// The same walk notes when the first neighbour will need attention
    /// (`neighbour_wake`), while each neighbour is in the cache anyway.
    fn fill(&mut self, now: Instant) {
        let (timeout, tenure) = (self.config.request_timeout, self.config.swap_tenure);
        let (peers, mut pipeline) = self.peers_and_pipeline();
        let mut wake: Option<Instant> = None;
        for k in 0..peers.active_len() {
            let (fp, p) = peers.active_at_mut(k);
            let Some((n, quiet)) = p.neighbour_and_quiet() else {
                continue;
            };
            if let Some(q) = quiet.filter(|q| q.holds_at(now, pipeline.picker)) {
                debug_assert!(
                    (if q.barren {
                        pipeline.is_barren(n)
                    } else {
                        pipeline.is_quiet(n, now)
                    }) && q.until == n.wake_after(now, timeout, tenure)
                        && q.engaged == (!n.announced || !n.in_flight.is_empty()),
                    "a neighbour noted quiet is not: {q:?}"
                );
                wake = earliest(wake, q.until);
                continue;
            }
            let filled = pipeline.top_up(*fp, n, now);
            let until = n.wake_after(now, timeout, tenure);
            let engaged = !n.announced || !n.in_flight.is_empty();
            let barren = match filled {
                Filled::Asked => None,
                Filled::Quiet => Some(false),
                Filled::Barren => Some(true),
            };
            *quiet = barren.map(|barren| Quiet {
                until,
                barren,
                freed: pipeline.picker.freed(),
                engaged,
                // Looked for only where the search for a useless neighbour would look.
                holds_missing: if engaged {
                    Quiet::NONE
                } else {
                    n.bitfield
                        .first_missing_from(pipeline.picker.have())
                        .unwrap_or(Quiet::NONE)
                },
            });
            wake = earliest(wake, until);
        }
        self.neighbour_wake.set(Some(wake));
    }

    /// Tops up the pipeline of the neighbour at position `at` in the peer table to its
    /// target; returns its request deadline after that.
    pub(super) fn fill_at(&mut self, at: usize, now: Instant) -> Option<Instant> {
        let timeout = self.config.request_timeout;
        let (peers, mut pipeline) = self.peers_and_pipeline();
        let (&fp, p) = peers.at_mut(at);
        let n = p.neighbour_mut()?;
        pipeline.top_up(fp, n, now);
        n.deadline(timeout)
    }

    /// The table of peers beside what topping up their pipelines needs, borrowed apart.
    fn peers_and_pipeline(&mut self) -> (&mut PeerTable<KnownPeer>, Pipeline<'_>) {
        let Swarm {
            peers,
            picker,
            rng,
            outputs,
            config,
            layout,
            ..
        } = self;
        let pipeline = Pipeline {
            picker,
            rng,
            outputs,
            config,
            piece_len: layout.piece_len,
        };
        (peers, pipeline)
    }

    /// The ask for peers to fill the free neighbour slots (at least one), excluding every
    /// peer known, banned, or this one.
    fn ask_for_more_peers(&self) -> Action {
        let mut exclude: Vec<Fingerprint> = self.peers.keys().copied().collect();
        exclude.extend(self.banned.iter().copied());
        exclude.push(self.local);
        let want = self
            .config
            .max_neighbours
            .saturating_sub(self.active())
            .max(1);
        Action::AskTrackerForPeers {
            exclude,
            want: u32::try_from(want).unwrap_or(u32::MAX),
        }
    }

    /// When an idle uplink makes a complete peer look for peers to serve (see
    /// [`idle_uplink_after`](super::SwarmConfig::idle_uplink_after)), if it is idle.
    fn idle_uplink_deadline(&self) -> Option<Instant> {
        let since = self.uploads.idle_since()?;
        let holds_any = self.picker.missing() < self.layout.piece_count();
        holds_any.then(|| since + self.config.idle_uplink_after)
    }

    fn uplink_idle_at(&self, now: Instant) -> bool {
        self.idle_uplink_deadline().is_some_and(|d| now >= d)
    }

    /// A complete peer's uplink idles: dial known peers (in place of neighbours that ask
    /// nothing of it, when every slot is taken), or else ask the tracker for peers that
    /// lack pieces, whose answer is dialled next round. Rounds are spaced like tracker
    /// asks, so an idle seeder does not churn its connections on every input.
    fn offer_uplink(&mut self, now: Instant) {
        if now < self.next_tracker_ask {
            return;
        }
        if self.has_candidate(now) {
            self.connect_more(now);
        } else {
            let ask = self.ask_for_more_peers();
            self.outputs.push_back(ask);
        }
        self.last_tracker_ask = now;
        self.next_tracker_ask =
            self.tracker_asks
                .fail(&self.config.tracker_backoff, now, &mut self.rng);
    }

    /// Asks the tracker for more peers when slots are free (or held by useless neighbours)
    /// and no known peer can fill them, and for holders of pieces no neighbour has; rounds
    /// are spaced by [`tracker_backoff`](super::SwarmConfig::tracker_backoff).
    fn ask_tracker(&mut self, now: Instant) {
        if now < self.next_tracker_ask {
            return;
        }
        let active = self.active();
        let any_useless = || {
            self.peers
                .iter_active()
                .filter_map(|(_, p)| p.neighbour())
                .any(|n| n.is_useless(self.picker.have(), now, self.config.swap_tenure))
        };
        let mut asked = false;
        if !self.has_candidate(now) && (active < self.config.max_neighbours || any_useless()) {
            let ask = self.ask_for_more_peers();
            self.outputs.push_back(ask);
            asked = true;
        }
        // Only once every neighbour has said what it has: until then "nobody has it" may
        // just mean "nobody has said so yet". Walked only when some missing piece is
        // unavailable: this runs after every input while the tracker may be asked, and
        // the walk reads every neighbour.
        let settled = || {
            self.peers
                .iter_active()
                .all(|(_, p)| p.neighbour().is_some_and(|n| n.announced))
        };
        let connected = || {
            self.peers
                .iter_active()
                .any(|(_, p)| p.neighbour().is_some())
        };
        if self.picker.any_unavailable() && settled() && connected() {
            let mut rare = self.picker.unavailable();
            rare.shuffle(&mut self.rng);
            rare.truncate(self.config.rare_piece_asks);
            rare.sort_unstable();
            for piece in rare {
                self.outputs.push_back(Action::AskTrackerForPiece(piece));
                asked = true;
            }
        }
        if asked {
            self.last_tracker_ask = now;
            self.next_tracker_ask =
                self.tracker_asks
                    .fail(&self.config.tracker_backoff, now, &mut self.rng);
        }
    }

    /// The earliest instant after the last input at which something is due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let now = self.now;
        let mut earliest: Option<Instant> = None;
        let mut consider = |d: Option<Instant>| {
            if let Some(d) = d.filter(|&d| d > now) {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
        };
        consider(Some(self.reports.next_deadline()));
        consider(self.announcements.next_deadline());
        if self.complete {
            // An idle uplink looks for peers once it has idled long enough, no sooner
            // than the tracker may be asked again.
            if let Some(idle) = self.idle_uplink_deadline() {
                consider(Some(idle.max(self.next_tracker_ask)));
                consider(self.contact_times(now).backoff_end);
            }
        } else {
            consider(Some(self.next_tracker_ask));
            // Neighbours as the last fill left them, unless that has passed.
            let kept = self
                .neighbour_wake
                .get()
                .filter(|wake| wake.is_none_or(|w| w > now));
            debug_assert!(
                kept.is_none_or(|wake| wake == self.neighbours_wake_after(now)),
                "kept neighbour wake-up {kept:?} is stale"
            );
            consider(kept.unwrap_or_else(|| self.neighbours_wake_after(now)));
            let times = self.contact_times(now);
            consider(times.backoff_end);
            if times.dial_timeout.is_some_and(|timeout| timeout <= now) {
                // A dial is late and goes at the next upkeep: the next dial counts.
                for (_, p) in self.peers.iter_active() {
                    if let Contact::Connecting(since) = &p.contact {
                        consider(Some(*since + self.config.connect_timeout));
                    }
                }
            } else {
                consider(times.dial_timeout);
            }
        }
        earliest
    }

    /// The earliest instant after `now` a connected neighbour needs attention, by a walk.
    fn neighbours_wake_after(&self, now: Instant) -> Option<Instant> {
        let (timeout, tenure) = (self.config.request_timeout, self.config.swap_tenure);
        self.peers
            .iter_active()
            .filter_map(|(_, p)| p.neighbour())
            .fold(None, |wake, n| {
                earliest(wake, n.wake_after(now, timeout, tenure))
            })
    }
}

/// The earlier of two optional instants.
pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What topping up a neighbour's pipeline needs of the core besides the neighbour itself
/// (borrowed field by field, so that the table of peers can be walked meanwhile).
struct Pipeline<'a> {
    picker: &'a mut Picker,
    rng: &'a mut ChaCha8Rng,
    outputs: &'a mut VecDeque<Action>,
    config: &'a SwarmConfig,
    piece_len: u64,
}

impl Pipeline<'_> {
    /// Whether topping `n` up at `now` would ask nothing of it for a reason only an
    /// input about it can change (what [`top_up`](Self::top_up) reports), without
    /// topping it up.
    fn is_quiet(&self, n: &Neighbour, now: Instant) -> bool {
        !n.announced
            || n.busy_until.is_some_and(|until| now < until)
            || n.in_flight.len() >= self.target(n)
    }

    /// How many requests `n`'s pipeline should hold, from its measured rate.
    fn target(&self, n: &Neighbour) -> usize {
        let cfg = self.config;
        n.target_in_flight(
            cfg.min_in_flight,
            cfg.max_in_flight,
            cfg.queue_time,
            self.piece_len,
        )
    }

    /// Whether `n` has room but nothing to ask it for, outside endgame (what
    /// [`top_up`](Self::top_up) reports as [`Filled::Barren`]), without topping it up:
    /// a pick from a copy of the generator finds nothing.
    fn is_barren(&self, n: &Neighbour) -> bool {
        !self.picker.is_endgame()
            && self
                .picker
                .pick(
                    &n.bitfield,
                    |i| n.in_flight.contains_key(&i),
                    1,
                    &mut self.rng.clone(),
                )
                .is_empty()
    }

    /// Requests pieces of `n` until its pipeline holds its target, and says whether it
    /// may be skipped by fills to come (see [`Quiet`]).
    fn top_up(&mut self, fp: Fingerprint, n: &mut Neighbour, now: Instant) -> Filled {
        if !n.announced {
            return Filled::Quiet;
        }
        if let Some(until) = n.busy_until {
            if now < until {
                return Filled::Quiet;
            }
            n.busy_until = None;
        }
        let free = self.target(n).saturating_sub(n.in_flight.len());
        if free == 0 {
            return Filled::Quiet;
        }
        let endgame = self.picker.is_endgame();
        let picks = self.picker.pick(
            &n.bitfield,
            |i| n.in_flight.contains_key(&i),
            free,
            self.rng,
        );
        // Fewer than asked for means every candidate was picked. Outside endgame each
        // picked piece is now requested, so nothing is left to pick until the picker
        // frees a piece (or `n` changes). In endgame a piece may be asked of several
        // neighbours, and requests elsewhere do not exclude it.
        let barren = picks.len() < free && !endgame;
        for piece in picks {
            n.request_sent(piece, now);
            self.picker.requested(piece);
            self.outputs.push_back(Action::Request { peer: fp, piece });
        }
        if barren {
            Filled::Barren
        } else {
            Filled::Asked
        }
    }
}

/// What topping up a neighbour's pipeline found.
enum Filled {
    /// Nothing asked, and nothing to ask until an input about it or its next wake-up.
    Quiet,
    /// Room left but nothing to ask for, outside endgame, until the picker frees a piece.
    Barren,
    /// Asked for all it had room for, or in endgame: the next fill looks again (in
    /// endgame, whatever other neighbours' inputs changed may be asked of it).
    Asked,
}
