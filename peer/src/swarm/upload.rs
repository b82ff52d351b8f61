//! The upload side: which neighbour's request this peer serves next, and how many at once.
//!
//! When uplinks are scarce, who uploads what to whom decides how fast a swarm finishes,
//! so serving is not first come, first served. Requests wait in a queue and a free slot
//! goes to the request with the smallest key
//!
//! 1. whether it has waited longer than [`SwarmConfig::upload_max_wait`]: a request that
//!    old goes first, so that no neighbour's request starves (and times out);
//! 2. for a complete peer (a seeder), whether the piece is one it has sent more than
//!    [`SPREAD_SLACK`] times above its least-sent piece: such requests wait while others
//!    do. A seeder's copies then stay even, so that one that leaves early leaves every
//!    piece behind. Simulated churn (1,000 leechers, the seeder leaving after 2 copies'
//!    worth): without this it had sent pieces 1 to 15 times; with it 1 to 7 times. A
//!    flash crowd of 1,000 finished at p50 / max 1.137 / 1.270 T* against 1.150 / 1.280;
//! 3. the requester's progress (pieces it holds): the neighbour furthest from completion
//!    first. It has the most left to fetch, so it is the one that would finish last (the
//!    fluid bound is reached only if slow peers are never left behind), and it stays in
//!    the swarm, re-sharing, the longest. Measured in the swarm simulator (`swarm-scale`,
//!    300 peers): p99 completion fell from 1.78 to 1.24 T* against first come, first
//!    served;
//! 4. how many copies of the piece this peer has sent already: while some piece has few
//!    copies, its uplink goes to spreading distinct pieces rather than more copies of the
//!    same ones (the idea behind super-seeding, for the first seeder above all);
//! 5. arrival order.
//!
//! The queue holds what the measured uplink sends within the longest wait (see
//! [`SwarmConfig::max_upload_queue`]); beyond it the least urgent request is refused as
//! "busy" and asked elsewhere, so that the order above is what decides.
//!
//! An upload holds its slot until the requester has acknowledged every byte (the runtime
//! waits for QUIC's acknowledgement, not for its buffers to take the bytes): otherwise
//! every queued request would be handed to QUIC at once, and congestion control rather
//! than the order above would decide whom the uplink serves. In a real swarm of 23
//! leechers behind 10-20 Mbit/s caps, that took the slowest from 1.33 to 1.13 T*.
//!
//! The number of slots (uploads at once) follows the measured uplink: enough that each
//! piece is sent in about [`SwarmConfig::upload_slot_time`] at an equal share, between
//! [`SwarmConfig::min_upload_slots`] and [`SwarmConfig::max_upload_slots`]. Few slots get
//! each piece out whole sooner, so that it can be re-shared sooner; two keep the uplink
//! busy while the next piece is read. (Simulated, 300 peers: 2 slots reached 92 % uplink
//! use, 4 slots 91 %, 8 slots 70 %.)
//!
//! [`SwarmConfig::upload_max_wait`]: super::SwarmConfig::upload_max_wait
//! [`SwarmConfig::upload_slot_time`]: super::SwarmConfig::upload_slot_time
//! [`SwarmConfig::min_upload_slots`]: super::SwarmConfig::min_upload_slots
//! [`SwarmConfig::max_upload_slots`]: super::SwarmConfig::max_upload_slots
//! [`SwarmConfig::max_upload_queue`]: super::SwarmConfig::max_upload_queue

use std::time::{Duration, Instant};

use certs::Fingerprint;

use super::rate::Rate;

/// A complete peer holds back requests for pieces it has sent more than this many times
/// above its least-sent piece. 1: its copies stay within two of each other while it has
/// a choice, so that a first seeder that leaves early leaves every piece behind.
const SPREAD_SLACK: u32 = 1;

/// The shortest queue a measured uplink keeps, however slow (see `Uploads::queue_limit`).
const MIN_QUEUE: usize = 16;

/// A request waiting for a slot.
#[derive(Debug, Clone)]
struct Waiting {
    peer: Fingerprint,
    piece: u32,
    requester_pieces: u32,
    /// When it has waited [`UploadLimits::max_wait`], in nanoseconds since the queue's
    /// epoch (`u64::MAX`: never), kept rather than its arrival: ranking the queue compares
    /// it with now for every entry, and subtracting instants there was a tenth of the
    /// ranking's time.
    overdue_at: u64,
    order: u64,
}

/// The upload queue, the uploads in progress and the uplink's measured rate.
#[derive(Debug, Clone)]
pub(crate) struct Uploads {
    /// The instant the queue's times count from: its creation. The core never goes back
    /// in time, so no input comes before it.
    epoch: Instant,
    waiting: Vec<Waiting>,
    /// Uploads in progress: a handful (at most the slots), so a vector.
    serving: Vec<(Fingerprint, u32)>,
    /// Copies of each piece sent (whole).
    copies: Vec<u32>,
    /// The fewest copies sent of any piece, and how many pieces have that few.
    min_copies: u32,
    at_min: usize,
    rate: Rate,
    next_order: u64,
    /// Since when nothing has waited or been sent (None while busy).
    idle_since: Option<Instant>,
}

/// The settings the upload side reads, copied out of the swarm's config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UploadLimits {
    pub(crate) min_slots: usize,
    pub(crate) max_slots: usize,
    pub(crate) slot_time: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) max_waiting: usize,
    pub(crate) piece_len: u64,
    /// Whether this peer holds every piece: it then spreads its copies evenly.
    pub(crate) spread: bool,
}

/// A waiting request's rank: the smaller, the more urgent (see the module's doc).
struct Rank {
    /// Not yet waited [`UploadLimits::max_wait`].
    fresh: bool,
    surplus: bool,
    requester_pieces: u32,
    copies: u32,
    /// Arrival order, unique, so that no two ranks are equal.
    order: u64,
}

impl Rank {
    /// The fields in one integer that orders as the tuple of them, in order: `fresh` and
    /// `surplus` a bit each, the counts 32 bits each, arrival 62 bits (a queue takes
    /// fewer than 2^62 requests in its life).
    fn packed(&self) -> u128 {
        debug_assert!(self.order < 1 << 62);
        (u128::from(self.fresh) << 127)
            | (u128::from(self.surplus) << 126)
            | (u128::from(self.requester_pieces) << 94)
            | (u128::from(self.copies) << 62)
            | u128::from(self.order & ((1 << 62) - 1))
    }
}

/// A duration in nanoseconds, `u64::MAX` past 584 years.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What became of a request handed to [`Uploads::requested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// It waits for a slot (or already did, or is being served: a repeat is one request).
    Waiting,
    /// The queue is full and this request is the least urgent: refuse it.
    Refused(Fingerprint, u32),
}

impl Uploads {
    /// Uploads for a torrent of `piece_count` pieces, idle since `now`.
    pub(crate) fn new(piece_count: u32, now: Instant) -> Self {
        Uploads {
            epoch: now,
            waiting: Vec::new(),
            serving: Vec::new(),
            copies: vec![0; piece_count as usize],
            min_copies: 0,
            at_min: piece_count as usize,
            rate: Rate::default(),
            next_order: 0,
            idle_since: Some(now),
        }
    }

    /// Since when the uplink has had nothing to send, if it has nothing now.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        self.idle_since
    }

    fn note_if_idle(&mut self, now: Instant) {
        if self.waiting.is_empty() && self.serving.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// How many uploads may run at once at the measured uplink.
    pub(crate) fn slots(&self, limits: &UploadLimits) -> usize {
        let min = limits.min_slots.max(1);
        let max = limits.max_slots.max(min);
        let Some(rate) = self.rate.bytes_per_sec() else {
            return min;
        };
        let per_slot = limits.piece_len.max(1) as f64 / limits.slot_time.as_secs_f64();
        let slots = (rate / per_slot).round();
        if slots.is_finite() && slots >= 0.0 {
            (slots as usize).clamp(min, max)
        } else {
            max
        }
    }

    /// How many requests may wait: what the measured uplink sends within
    /// [`UploadLimits::max_wait`], at least [`MIN_QUEUE`], at most `max_waiting`. A longer
    /// queue would only hold requests past `max_wait`, where they go first whoever sent
    /// them, so the neediest neighbours would lose their precedence; refused ones are asked
    /// elsewhere.
    fn queue_limit(&self, limits: &UploadLimits) -> usize {
        let most = limits.max_waiting.max(1);
        self.rate
            .pieces_within(limits.max_wait, limits.piece_len, MIN_QUEUE.min(most), most)
            .unwrap_or(most)
    }

    /// Queues a request from `peer`, which holds `requester_pieces` pieces. When the
    /// queue is full the least urgent request (possibly this one) is refused.
    pub(crate) fn requested(
        &mut self,
        peer: Fingerprint,
        piece: u32,
        requester_pieces: u32,
        now: Instant,
        limits: &UploadLimits,
    ) -> Queued {
        // The piece first: comparing it is cheap, and a first seeder's queue is long.
        if self.serving.contains(&(peer, piece))
            || self
                .waiting
                .iter()
                .any(|w| w.piece == piece && w.peer == peer)
        {
            return Queued::Waiting;
        }
        self.idle_since = None;
        self.waiting.push(Waiting {
            peer,
            piece,
            requester_pieces,
            overdue_at: self.nanos(now).saturating_add(nanos(limits.max_wait)),
            order: self.next_order,
        });
        self.next_order += 1;
        if self.waiting.len() > self.queue_limit(limits) {
            let worst = self.best_index(now, limits, true);
            let w = self.waiting.swap_remove(worst);
            self.note_if_idle(now);
            return Queued::Refused(w.peer, w.piece);
        }
        Queued::Waiting
    }

    /// The index of the most (or, with `worst`, least) urgent waiting request.
    ///
    /// Each request's rank is packed into one integer, so that the scan compares one
    /// number per entry rather than a tuple: a 1 Gbit/s uplink's queue holds hundreds of
    /// requests, scanned on every grant and every refusal, and the tuple's comparisons,
    /// branch by branch, were most of that time.
    fn best_index(&self, now: Instant, limits: &UploadLimits, worst: bool) -> usize {
        let now = self.nanos(now);
        let surplus_above = self.min_copies.saturating_add(SPREAD_SLACK);
        let key = |w: &Waiting| {
            let copies = self.copies.get(w.piece as usize).copied().unwrap_or(0);
            Rank {
                fresh: now < w.overdue_at,
                surplus: limits.spread && copies > surplus_above,
                requester_pieces: w.requester_pieces,
                copies,
                order: w.order,
            }
            .packed()
        };
        let mut keyed = self.waiting.iter().map(key).enumerate();
        let Some((mut found, mut found_key)) = keyed.next() else {
            return 0;
        };
        // Ranks are unique (arrival is), so "not smaller" is "larger".
        for (i, k) in keyed {
            if (k < found_key) != worst {
                found = i;
                found_key = k;
            }
        }
        found
    }

    /// `at` in nanoseconds since the epoch.
    fn nanos(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.epoch))
    }

    /// Grants free slots to the most urgent requests, in order.
    pub(crate) fn grant(&mut self, now: Instant, limits: &UploadLimits) -> Vec<(Fingerprint, u32)> {
        let mut granted = Vec::new();
        while self.serving.len() < self.slots(limits) && !self.waiting.is_empty() {
            let best = self.best_index(now, limits, false);
            let w = self.waiting.swap_remove(best);
            if self.serving.is_empty() {
                self.rate.busy_from(now);
            }
            self.serving.push((w.peer, w.piece));
            granted.push((w.peer, w.piece));
        }
        granted
    }

    /// An upload ended with `bytes` sent (0 if it failed or was cut short); returns
    /// whether it was one in progress.
    pub(crate) fn done(&mut self, peer: Fingerprint, piece: u32, bytes: u64, now: Instant) -> bool {
        let Some(at) = self.serving.iter().position(|&s| s == (peer, piece)) else {
            return false;
        };
        self.serving.swap_remove(at);
        self.note_if_idle(now);
        if bytes > 0 {
            self.rate.delivered(bytes, now);
            self.count_copy(piece);
        }
        true
    }

    fn count_copy(&mut self, piece: u32) {
        let Some(c) = self.copies.get_mut(piece as usize) else {
            return;
        };
        let was = *c;
        *c = c.saturating_add(1);
        if was == self.min_copies {
            self.at_min -= 1;
            if self.at_min == 0 {
                self.min_copies += 1;
                let min = self.min_copies;
                self.at_min = self.copies.iter().filter(|&&c| c == min).count();
            }
        }
    }

    /// Forgets the waiting requests of a neighbour that left (uploads in progress end
    /// through [`done`](Self::done)); returns the pieces it was waiting for.
    pub(crate) fn forget(&mut self, peer: Fingerprint, now: Instant) -> Vec<u32> {
        let mut gone = Vec::new();
        self.waiting.retain(|w| {
            let keep = w.peer != peer;
            if !keep {
                gone.push(w.piece);
            }
            keep
        });
        self.note_if_idle(now);
        gone
    }

    /// Requests waiting, and uploads in progress.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.waiting.len(), self.serving.len())
    }

    /// The uplink's measured rate, bytes per second, once measured.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate.bytes_per_sec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    fn limits(max_waiting: usize) -> UploadLimits {
        UploadLimits {
            min_slots: 1,
            max_slots: 4,
            slot_time: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
            max_waiting,
            piece_len: 1000,
            spread: false,
        }
    }

    #[test]
    fn the_neighbour_furthest_from_completion_is_served_first() {
        let t0 = Instant::now();
        let l = limits(16);
        let mut u = Uploads::new(10, t0);
        u.requested(fp(1), 0, 9, t0, &l);
        u.requested(fp(2), 1, 2, t0, &l);
        u.requested(fp(3), 2, 5, t0, &l);
        assert_eq!(u.grant(t0, &l), vec![(fp(2), 1)], "one slot until measured");
        assert!(u.done(fp(2), 1, 1000, t0 + Duration::from_millis(100)));
        assert_eq!(u.grant(t0, &l), vec![(fp(3), 2)]);
    }

    #[test]
    fn among_equally_needy_neighbours_the_least_copied_piece_goes_first() {
        let t0 = Instant::now();
        let l = limits(16);
        let mut u = Uploads::new(10, t0);
        u.requested(fp(1), 4, 0, t0, &l);
        assert_eq!(u.grant(t0, &l), vec![(fp(1), 4)]);
        u.done(fp(1), 4, 1000, t0 + Duration::from_secs(1));
        // Piece 4 has a copy out; piece 7, asked for later by an equally needy peer, not.
        u.requested(fp(2), 4, 0, t0, &l);
        u.requested(fp(3), 7, 0, t0, &l);
        assert_eq!(u.grant(t0, &l), vec![(fp(3), 7)]);
    }

    #[test]
    fn a_complete_peer_holds_back_pieces_it_sent_more_often_than_the_rest() {
        let t0 = Instant::now();
        let spreading = UploadLimits {
            spread: true,
            ..limits(16)
        };
        let mut u = Uploads::new(3, t0);
        // Piece 0 has gone out twice, pieces 1 and 2 not at all.
        for _ in 0..2 {
            u.requested(fp(1), 0, 0, t0, &spreading);
            assert_eq!(u.grant(t0, &spreading), vec![(fp(1), 0)]);
            u.done(fp(1), 0, 1000, t0 + Duration::from_secs(1));
        }
        // The neediest neighbour asks for piece 0 again, a nearly done one for piece 2.
        u.requested(fp(2), 0, 0, t0, &spreading);
        u.requested(fp(3), 2, 9, t0, &spreading);
        assert_eq!(u.grant(t0, &spreading), vec![(fp(3), 2)], "piece 2 first");
        u.done(fp(3), 2, 1000, t0 + Duration::from_secs(1));
        // Piece 1 still has no copy out, so piece 0 waits while anything else does.
        u.requested(fp(4), 2, 9, t0, &spreading);
        assert_eq!(u.grant(t0, &spreading), vec![(fp(4), 2)]);
        u.done(fp(4), 2, 1000, t0 + Duration::from_secs(1));
        // Only piece 0 waits: an idle uplink serves it anyway.
        assert_eq!(u.grant(t0, &spreading), vec![(fp(2), 0)]);
        // A leecher (not spreading) serves the neediest first, whatever the copies.
        let l = limits(16);
        u.requested(fp(5), 0, 0, t0, &l);
        u.requested(fp(6), 1, 9, t0, &l);
        u.done(fp(2), 0, 1000, t0 + Duration::from_secs(1));
        assert_eq!(u.grant(t0, &l), vec![(fp(5), 0)]);
    }

    #[test]
    fn a_request_waiting_too_long_goes_before_needier_ones() {
        let t0 = Instant::now();
        let l = limits(16);
        let mut u = Uploads::new(10, t0);
        u.requested(fp(1), 0, 9, t0, &l);
        let later = t0 + Duration::from_secs(3);
        u.requested(fp(2), 1, 0, later, &l);
        assert_eq!(u.grant(later, &l), vec![(fp(1), 0)]);
    }

    #[test]
    fn slots_follow_the_measured_uplink() {
        let t0 = Instant::now();
        let l = limits(16);
        let mut u = Uploads::new(10, t0);
        assert_eq!(u.slots(&l), 1);
        u.requested(fp(1), 0, 0, t0, &l);
        u.grant(t0, &l);
        // 30,000 B/s with 1,000 B pieces and 100 ms per slot: 3 slots.
        u.done(fp(1), 0, 3000, t0 + Duration::from_millis(100));
        assert_eq!(u.slots(&l), 3);
        for piece in 1..8 {
            u.requested(fp(2), piece, 0, t0, &l);
        }
        assert_eq!(u.grant(t0, &l).len(), 3);
        assert_eq!(u.counts(), (4, 3));
    }

    #[test]
    fn a_full_queue_refuses_the_least_urgent_request_and_repeats_are_one() {
        let t0 = Instant::now();
        let l = limits(2);
        let mut u = Uploads::new(10, t0);
        assert_eq!(u.requested(fp(1), 0, 1, t0, &l), Queued::Waiting);
        assert_eq!(u.requested(fp(1), 0, 1, t0, &l), Queued::Waiting);
        assert_eq!(u.requested(fp(2), 1, 8, t0, &l), Queued::Waiting);
        assert_eq!(u.requested(fp(3), 2, 3, t0, &l), Queued::Refused(fp(2), 1));
        assert_eq!(u.idle_since(), None);
        assert_eq!(u.forget(fp(3), t0), vec![2]);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(u.forget(fp(1), later), vec![0]);
        assert_eq!(u.counts(), (0, 0));
        assert_eq!(u.idle_since(), Some(later), "idle once nothing waits");
    }

    #[test]
    fn the_queue_holds_what_the_measured_uplink_sends_within_the_longest_wait() {
        let t0 = Instant::now();
        let l = limits(512);
        let mut u = Uploads::new(100, t0);
        // Unmeasured: up to max_waiting wait.
        for piece in 0..40 {
            assert_eq!(u.requested(fp(1), piece, 50, t0, &l), Queued::Waiting);
        }
        // 10,000 B/s of 1,000-byte pieces, 2 s at most: 20 may wait.
        u.grant(t0, &l);
        u.done(fp(1), 0, 10_000, t0 + Duration::from_secs(1));
        u.forget(fp(1), t0);
        for piece in 1..=20 {
            assert_eq!(u.requested(fp(2), piece, 50, t0, &l), Queued::Waiting);
        }
        // The 21st request is from a needier neighbour: the least needy one is refused.
        assert_eq!(
            u.requested(fp(3), 21, 10, t0, &l),
            Queued::Refused(fp(2), 20)
        );
        assert_eq!(u.counts(), (20, 0));
    }

    #[test]
    fn a_packed_rank_orders_as_its_fields_in_turn() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Values near the ends of each field's range, where a wrong shift shows.
        let mut rank = || {
            let pick = |r: u64, ends: [u64; 4]| ends[(r % 4) as usize];
            Rank {
                fresh: next() % 2 == 0,
                surplus: next() % 2 == 0,
                requester_pieces: pick(next(), [0, 1, 7, u64::from(u32::MAX)]) as u32,
                copies: pick(next(), [0, 1, 2, u64::from(u32::MAX)]) as u32,
                order: pick(next(), [0, 1, 1 << 40, (1 << 62) - 1]),
            }
        };
        let tuple = |r: &Rank| (r.fresh, r.surplus, r.requester_pieces, r.copies, r.order);
        for _ in 0..10_000 {
            let (a, b) = (rank(), rank());
            assert_eq!(
                a.packed().cmp(&b.packed()),
                tuple(&a).cmp(&tuple(&b)),
                "{:?} against {:?}",
                tuple(&a),
                tuple(&b)
            );
        }
    }

    #[test]
    fn only_uploads_in_progress_can_end() {
        let t0 = Instant::now();
        let mut u = Uploads::new(3, t0);
        assert!(!u.done(fp(1), 0, 10, t0));
        assert!(!u.done(fp(1), 99, 10, t0), "out of range is ignored");
    }
}
