//! One remote peer as the swarm core sees it: known, being dialled, or a neighbour with
//! its bitfield, its outstanding requests and its measured rate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backoff::BackoffState;
use tracker::Bitfield;
use tracker::api::PeerInfo;

use super::picker::Picker;
use super::rate::Rate;

/// A peer the core knows of, with its standing.
#[derive(Debug, Clone)]
pub(crate) struct KnownPeer {
    /// Where and who it is, as the tracker said. Boxed: it is read when dialling, while
    /// the rest is read by every walk over the known peers, which is then half as long.
    pub(crate) info: Box<PeerInfo>,
    /// Consecutive failures and when it may be dialled again.
    pub(crate) backoff: BackoffState,
    /// Whether, and how far, it is connected.
    pub(crate) contact: Contact,
    /// How many pieces it had when last a neighbour (the tracker's count may be older).
    pub(crate) pieces_seen: Option<u32>,
}

/// How far a peer is connected.
#[derive(Debug, Clone)]
pub(crate) enum Contact {
    /// Not connected (possibly backed off).
    Idle,
    /// Being dialled since this instant.
    Connecting(Instant),
    /// Connected, with what the last fill found if it found nothing to do.
    Connected(Box<Neighbour>, Option<Quiet>),
}

/// A neighbour whose pipeline needs nothing until an input changes it or `until` passes:
/// it has not announced its pieces, it is busy, or its pipeline is full; or, outside
/// endgame, it has room but nothing to ask it for (every piece it has that we miss is
/// asked of others) until the picker frees a piece. Kept beside the box, so that filling
/// after every input skips such a neighbour without reading it (most of the neighbours a
/// fill visits are quiet, and reading each one's box, its bitfield and the picker's
/// counts for its pieces was most of the time of topping up, in cache misses).
///
/// None of those changes without an input about the neighbour itself, the picker freeing
/// a piece, or endgame beginning; every input about the neighbour reaches it through
/// [`KnownPeer::neighbour_mut`], which forgets the note. A neighbour with nothing we miss
/// is barren too: only a piece lost here, which the picker counts as freed, changes that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quiet {
    /// Its next wake-up, as [`Neighbour::wake_after`] gave it when the note was taken;
    /// the note holds while that is still to come.
    pub(crate) until: Option<Instant>,
    /// It had room, but nothing to ask for, outside endgame: the note holds only while
    /// endgame has not begun and the picker's count of freed pieces is still `freed`.
    pub(crate) barren: bool,
    /// The picker's [`freed`](super::picker::Picker::freed) count when a barren note
    /// was taken.
    pub(crate) freed: u32,
    /// It had requests outstanding or had not announced its pieces, so it is not useless
    /// (see [`Neighbour::is_useless`]). Unlike `until`, this holds until the note is
    /// forgotten: time alone changes neither.
    pub(crate) engaged: bool,
    /// A piece it has that we missed when the note was taken ([`Quiet::NONE`]: none,
    /// or not looked for). It is not useless while we still miss that piece, which
    /// the search for a neighbour to swap tells from our own bitfield, without reading
    /// the neighbour's box; its bitfield changes only by inputs about it, which forget
    /// the note.
    pub(crate) holds_missing: u32,
}

impl Quiet {
    /// No piece noted in [`holds_missing`](Self::holds_missing).
    pub(crate) const NONE: u32 = u32::MAX;

    /// Whether its noted wake-up is still to come at `now`.
    pub(crate) fn sleeps_at(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// Whether the note still holds at `now`, with the picker as it is.
    pub(crate) fn holds_at(&self, now: Instant, picker: &Picker) -> bool {
        self.sleeps_at(now)
            && (!self.barren || (picker.freed() == self.freed && !picker.is_endgame()))
    }
}

impl KnownPeer {
    /// A peer just learnt of.
    pub(crate) fn new(info: PeerInfo) -> Self {
        KnownPeer {
            info: Box::new(info),
            backoff: BackoffState::default(),
            contact: Contact::Idle,
            pieces_seen: None,
        }
    }

    /// The neighbour state, when connected.
    pub(crate) fn neighbour(&self) -> Option<&Neighbour> {
        match &self.contact {
            Contact::Connected(n, _) => Some(n),
            _ => None,
        }
    }

    /// The neighbour state, when connected, to change: any note that it is
    /// [`Quiet`] is forgotten.
    pub(crate) fn neighbour_mut(&mut self) -> Option<&mut Neighbour> {
        match &mut self.contact {
            Contact::Connected(n, quiet) => {
                *quiet = None;
                Some(n)
            }
            _ => None,
        }
    }

    /// The neighbour state with the note of whether it is [`Quiet`], for filling, which
    /// keeps the note itself.
    pub(crate) fn neighbour_and_quiet(&mut self) -> Option<(&mut Neighbour, &mut Option<Quiet>)> {
        match &mut self.contact {
            Contact::Connected(n, quiet) => Some((n, quiet)),
            _ => None,
        }
    }

    /// Whether a note says it is engaged (see [`Quiet::engaged`]), known without reading
    /// the neighbour's box.
    pub(crate) fn noted_engaged(&self) -> bool {
        matches!(&self.contact, Contact::Connected(_, Some(q)) if q.engaged)
    }

    /// Whether a note says it has a piece we still miss (see [`Quiet::holds_missing`]).
    pub(crate) fn noted_holding_missing(&self, have: &Bitfield) -> bool {
        matches!(&self.contact, Contact::Connected(_, Some(q))
            if q.holds_missing != Quiet::NONE && !have.get(q.holds_missing))
    }

    /// Whether it is connected or being dialled (and so takes a neighbour slot).
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.contact, Contact::Idle)
    }
}

/// A connected neighbour.
///
/// Laid out in the order written (`repr(C)`) from a cache line's start: what every input
/// about it reads (whether it announced, whether it is busy, its requests and rate) comes
/// first, then the bitfield, whose bits are kept inline for torrents of up to 1,024
/// pieces. One allocation holds it all, so with thousands of simulated peers an input
/// waits for one round of cache misses on the neighbour rather than one for the
/// neighbour and then one for its bitfield.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub(crate) struct Neighbour {
    /// Whether it has told us anything about its pieces yet (bitfield or have). Until then
    /// its bitfield is not counted in the picker's availability.
    pub(crate) announced: bool,
    /// Requests it refused with "not have" for pieces it had announced.
    pub(crate) false_claims: u32,
    /// It answered "busy": nothing is asked of it before this.
    pub(crate) busy_until: Option<Instant>,
    /// Outstanding requests and when each was sent.
    pub(crate) in_flight: BTreeMap<u32, Instant>,
    /// Its delivery rate.
    pub(crate) rate: Rate,
    /// When it last made progress: connected, was sent a request while idle, or delivered.
    last_progress: Instant,
    /// When it connected.
    connected_at: Instant,
    /// The pieces it has, as it told us.
    pub(crate) bitfield: Bitfield,
}

impl Neighbour {
    /// A neighbour that connected at `now`, of a torrent with `piece_count` pieces.
    pub(crate) fn new(piece_count: u32, now: Instant) -> Self {
        Neighbour {
            bitfield: Bitfield::new(piece_count),
            announced: false,
            in_flight: BTreeMap::new(),
            rate: Rate::default(),
            connected_at: now,
            last_progress: now,
            busy_until: None,
            false_claims: 0,
        }
    }

    /// How many requests to keep outstanding: enough for `queue_time` at its measured
    /// rate, in pieces of `piece_len` bytes, within `[min, max]`; `min` until measured.
    pub(crate) fn target_in_flight(
        &self,
        min: usize,
        max: usize,
        queue_time: Duration,
        piece_len: u64,
    ) -> usize {
        self.rate
            .pieces_within(queue_time, piece_len, min, max)
            .unwrap_or(min)
    }

    /// Records a request for `piece` sent at `now`.
    pub(crate) fn request_sent(&mut self, piece: u32, now: Instant) {
        if self.in_flight.is_empty() {
            self.rate.busy_from(now);
            self.last_progress = now;
        }
        self.in_flight.insert(piece, now);
    }

    /// Records `bytes` of `piece` delivered at `now`; returns whether it had been requested.
    pub(crate) fn delivered(&mut self, piece: u32, bytes: u64, now: Instant) -> bool {
        if self.in_flight.remove(&piece).is_none() {
            return false;
        }
        self.rate.delivered(bytes, now);
        self.last_progress = now;
        true
    }

    /// When it counts as unresponsive: when it has not announced its pieces, or has
    /// requests outstanding, and made no progress for `timeout`.
    pub(crate) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        (!self.announced || !self.in_flight.is_empty()).then(|| self.last_progress + timeout)
    }

    /// Whether it has nothing to offer: connected for at least `tenure` (a neighbour
    /// empty-handed now may gain pieces soon), it has announced its pieces, none is one we
    /// miss, and nothing is outstanding.
    pub(crate) fn is_useless(&self, have: &Bitfield, now: Instant, tenure: Duration) -> bool {
        now >= self.connected_at + tenure
            && self.announced
            && self.in_flight.is_empty()
            && self.bitfield.is_subset_of(have)
    }

    /// The earliest instant after `now` it needs attention: its request deadline, the end
    /// of its "busy", or the end of its tenure.
    pub(crate) fn wake_after(
        &self,
        now: Instant,
        timeout: Duration,
        tenure: Duration,
    ) -> Option<Instant> {
        [
            self.deadline(timeout),
            self.busy_until,
            self.tenure_ends(now, tenure),
        ]
        .into_iter()
        .flatten()
        .filter(|&d| d > now)
        .min()
    }

    /// When it may count as useless, if that is still to come.
    pub(crate) fn tenure_ends(&self, now: Instant, tenure: Duration) -> Option<Instant> {
        let end = self.connected_at + tenure;
        (end > now).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_follows_the_measured_rate_within_bounds() {
        let t0 = Instant::now();
        let mut n = Neighbour::new(100, t0);
        let q = Duration::from_secs(1);
        assert_eq!(n.target_in_flight(2, 16, q, 1000), 2, "unmeasured");
        n.request_sent(0, t0);
        assert!(n.delivered(0, 5000, t0 + Duration::from_millis(500)));
        assert_eq!(n.target_in_flight(2, 16, q, 1000), 10);
        assert_eq!(n.target_in_flight(2, 4, q, 1000), 4, "clamped to max");
        assert_eq!(n.target_in_flight(2, 16, q, 1_000_000), 2, "clamped to min");
        assert_eq!(n.target_in_flight(5, 1, q, 0), 5, "bad bounds do not panic");
    }

    #[test]
    fn deadline_runs_while_waiting_for_the_bitfield_or_for_requests() {
        let t0 = Instant::now();
        let to = Duration::from_secs(10);
        let mut n = Neighbour::new(10, t0);
        assert_eq!(n.deadline(to), Some(t0 + to));
        n.announced = true;
        assert_eq!(n.deadline(to), None);
        let t1 = t0 + Duration::from_secs(30);
        n.request_sent(3, t1);
        assert_eq!(n.deadline(to), Some(t1 + to));
        assert!(!n.delivered(4, 10, t1), "never requested");
    }
}
