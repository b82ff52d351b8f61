//! The discrete-event engine: every honest peer runs the real [`Swarm`] core, the tracker is
//! the tracker crate's state machine ([`TrackerSide`]), and the network is modelled.
//!
//! # The network model
//! * Each peer has an uplink and a downlink of fixed capacity and a one-way access
//!   latency; a message between two peers takes the sum of both ends' latencies.
//! * A piece is sent as one flow. A peer's uplink is shared equally among the flows it
//!   is sending (processor sharing, as QUIC streams on one congestion controller roughly
//!   are), at most [`UPLOAD_SLOTS`] at once; further requests wait in order of arrival,
//!   as the runtime's serving semaphore makes them wait.
//! * When a flow's last byte has left the sender's uplink, the piece passes the
//!   receiver's downlink, first come first served at the downlink's rate, and then the
//!   latency. Store-and-forward over-counts a piece's time on the downlink by at most one
//!   piece time, and never lets a downlink receive more than its capacity.
//! * Connections are symmetric, as in the runtime: either end may request pieces and
//!   both hear each other's haves. The tracker answers after [`TRACKER_RTT`].
//!
//! What is measured: each leecher's completion time from its start, the bytes every
//! uplink sent over time (in [`BIN`] bins, for the uplink use), and the seeder's bytes.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use certs::Fingerprint;
use peer::swarm::{Action, PieceLayout, Swarm, SwarmConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use tracker::Bitfield;
use tracker::api::PeerInfo;

use crate::queue::EventQueue;
use crate::scenario::{Arrivals, Scenario};
use crate::tracker_side::TrackerSide;

/// Most flows a peer without a swarm core (a misbehaving one) sends at once: the
/// runtime's default `max_serving`. Honest peers' cores decide their own.
pub const UPLOAD_SLOTS: usize = 4;
/// A round trip to the tracker.
pub const TRACKER_RTT: Duration = Duration::from_millis(40);
/// Width of the bins in which uploaded bytes are counted.
pub const BIN: Duration = Duration::from_millis(100);

/// How often each leecher's progress is sampled (for finding where the slowest fell behind).
pub const SAMPLE: Duration = Duration::from_secs(5);
/// The tracker forgets silent peers after this.
const TRACKER_TTL_MS: u64 = 30_000;
/// How often the tracker's leader expires silent peers.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

/// Simulated time, nanoseconds since the start.
type Ns = u64;

fn ns(d: Duration) -> Ns {
    d.as_nanos() as Ns
}

/// What kind of peer a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first seeder.
    Seeder,
    /// An honest downloader.
    Leecher,
    /// Claims every piece, serves garbage.
    Corrupt,
    /// Claims every piece, has none.
    Liar,
}

#[derive(Debug, Clone)]
enum Ev {
    Join(u32),
    Tick(u32),
    /// A dial reached `to`.
    DialArrives {
        from: u32,
        to: u32,
    },
    /// The answer to a dial reached the dialler.
    DialAnswered {
        from: u32,
        to: u32,
    },
    DialFailed {
        from: u32,
        to: u32,
    },
    /// New pieces of `from`, one batch shared by all its neighbours' events.
    Have {
        to: u32,
        from: u32,
        pieces: Rc<[u32]>,
    },
    Request {
        at: u32,
        from: u32,
        piece: u32,
    },
    Cancel {
        at: u32,
        from: u32,
        piece: u32,
    },
    /// `from` stopped downloading from `at`: the runtime aborted its fetches, so `at`'s
    /// uploads to it end and its waiting requests are dropped when granted.
    Abandoned {
        at: u32,
        from: u32,
    },
    /// The earliest flow of `at` may have finished (stale unless `version` matches).
    UplinkDone {
        at: u32,
        version: u64,
    },
    Piece {
        to: u32,
        from: u32,
        piece: u32,
        good: bool,
    },
    NotHave {
        to: u32,
        from: u32,
        piece: u32,
    },
    Busy {
        to: u32,
        from: u32,
        piece: u32,
    },
    Disconnected {
        to: u32,
        from: u32,
    },
    Offered {
        to: u32,
        peers: Vec<PeerInfo>,
    },
    Depart {
        node: u32,
        graceful: bool,
    },
    Expire,
}

/// A piece being sent.
#[derive(Debug, Clone)]
struct Flow {
    to: u32,
    piece: u32,
    remaining: f64,
}

struct Node {
    info: PeerInfo,
    kind: Kind,
    swarm: Option<Swarm>,
    disk: Bitfield,
    up: f64,
    down: f64,
    alive: bool,
    joined_at: Option<Ns>,
    completed_at: Option<Ns>,
    left_at: Option<Ns>,
    /// Peers connected to this one (either direction), in the order linked; mirrored in
    /// [`Sim::link_set`].
    links: Vec<u32>,
    flows: Vec<Flow>,
    waiting: VecDeque<(u32, u32)>,
    /// Requests cancelled while the core still held them.
    cancelled: Vec<(u32, u32)>,
    up_version: u64,
    up_mark: Ns,
    down_free_at: Ns,
    uploaded: u64,
    tick_at: Option<Ns>,
    /// Leaves (churn) once it holds this many pieces.
    leave_at_pieces: Option<(u32, bool)>,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Each honest leecher that stayed: (its uplink, its downlink, seconds from its start
    /// to completion, or None if it never completed).
    pub leechers: Vec<(f64, f64, Option<f64>)>,
    /// Bytes uploaded by all peers in each [`BIN`].
    pub uploaded_bins: Vec<f64>,
    /// Uplink capacity present in each [`BIN`] (bytes), counting peers that have joined and
    /// not left, honest ones only.
    pub capacity_bins: Vec<f64>,
    /// Bytes the first seeder uploaded.
    pub seeder_bytes: u64,
    /// Simulated seconds until the last completion (or the deadline).
    pub end_secs: f64,
    /// Events handled.
    pub events: u64,
    /// Honest peers banned by someone (must be 0), and peers that banned the corrupt one.
    pub honest_banned: u64,
    /// Bans of the corrupt peer.
    pub corrupt_bans: u64,
    /// "Not have" answers received (the liar's, and stale records).
    pub not_haves: u64,
    /// Have batches not sent, because the receiver had announced every piece in them.
    pub haves_spared: u64,
    /// Leechers that left before completing.
    pub departed: u64,
    /// Verified pieces received that the receiver already had.
    pub duplicates: u64,
    /// "Busy" answers received (full upload queues).
    pub busies: u64,
    /// When the first seeder left: the fewest and the most copies it had sent of any
    /// piece (how evenly it spread its uplink).
    pub seeder_spread: Option<(u32, u32)>,
    /// Pieces no live peer held at the end (a swarm that lost them cannot complete).
    pub lost_pieces: Vec<u32>,
    /// Each honest leecher that stayed (as in `leechers`), every [`SAMPLE`]: its pieces,
    /// neighbours, neighbours it awaits pieces from, and requests outstanding.
    pub progress: Vec<Vec<(u32, u32, u32, u32)>>,
    /// Problems found in the cores' behaviour (must be empty).
    pub errors: Vec<String>,
}

/// A running simulation.
pub struct Sim {
    scenario: Scenario,
    t0: Instant,
    now: Ns,
    queue: EventQueue<Ev>,
    rng: ChaCha8Rng,
    nodes: Vec<Node>,
    /// Each node's `alive`, densely: the check before every delivery reads it for both
    /// ends, and a node's whole record is far larger than a cache line.
    alive: Vec<bool>,
    /// `(a, b)` for every `b` in `a`'s links: a delivery's "are they still linked?" is one
    /// bit read instead of a scan of the receiver's links.
    link_set: LinkMatrix,
    by_fp: FxHashMap<Fingerprint, u32>,
    /// Each node's fingerprint and count of pieces on disk, densely: nearly every
    /// delivery names its sender to the receiver's core, and every request carries the
    /// requester's count, while a node's whole record is far larger than a cache line.
    fingerprints: Vec<Fingerprint>,
    held: Vec<u32>,
    /// Each node's one-way latency, densely: every message scheduled reads it for both
    /// ends, a cache miss each in a node's record.
    latencies: Vec<Ns>,
    tracker: TrackerSide,
    layout: PieceLayout,
    uploaded_bins: Vec<f64>,
    capacity_changes: Vec<(Ns, f64)>,
    handled: u64,
    honest_banned: u64,
    corrupt_bans: u64,
    not_haves: u64,
    haves_spared: u64,
    departed: u64,
    duplicates: u64,
    busies: u64,
    /// Copies of each piece the first seeder has sent.
    seeder_sends: Vec<u32>,
    seeder_spread: Option<(u32, u32)>,
    /// A departure took the last copy of a piece: no one can complete any more.
    lost_a_piece: bool,
    /// Each node's pieces every [`SAMPLE`] (leechers only; empty for the others).
    samples: Vec<Vec<(u32, u32, u32, u32)>>,
    next_sample: Ns,
    errors: Vec<String>,
    /// Honest leechers still expected to complete.
    outstanding: usize,
    /// (uploader, requester): the requester aborted its fetches from the uploader and has
    /// not asked again since.
    abandoned: HashSet<(u32, u32)>,
    /// Links closed by the first node whose news has not reached the second yet.
    closing: HashSet<(u32, u32)>,
    /// How often to print progress, and when it was last printed.
    progress: Option<(Duration, std::time::Instant)>,
}

impl Sim {
    /// Sets up `scenario`: nodes 0 the seeder, then the leechers, then the bad peers.
    pub fn new(scenario: Scenario) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let pieces = scenario.pieces;
        let layout = PieceLayout {
            piece_len: scenario.piece_len,
            total_len: scenario.file_len(),
        };
        let ups = scenario.leecher_uplinks(&mut rng);
        let mut kinds = vec![Kind::Seeder];
        kinds.extend(std::iter::repeat_n(Kind::Leecher, scenario.leechers));
        kinds.extend(std::iter::repeat_n(Kind::Corrupt, scenario.corrupt_peers));
        kinds.extend(std::iter::repeat_n(Kind::Liar, scenario.liars));
        let mut nodes = Vec::with_capacity(kinds.len());
        let mut by_fp = FxHashMap::default();
        let mut latencies = Vec::with_capacity(kinds.len());
        for (i, &kind) in kinds.iter().enumerate() {
            let fingerprint =
                Fingerprint::from_bytes(*blake3::hash(&(i as u64).to_le_bytes()).as_bytes());
            let addr = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7000));
            let up = match kind {
                Kind::Seeder => scenario.seeder_up,
                Kind::Leecher => ups[i - 1],
                Kind::Corrupt | Kind::Liar => scenario.seeder_up,
            };
            let (lo, hi) = scenario.latency_ms;
            latencies.push(ns(Duration::from_millis(rng.random_range(lo..=hi))));
            by_fp.insert(fingerprint, i as u32);
            nodes.push(Node {
                info: PeerInfo {
                    fingerprint,
                    addr,
                    pieces: 0,
                },
                kind,
                swarm: None,
                // What is really on its disk (the liar and the corrupt peer claim more).
                disk: match kind {
                    Kind::Leecher | Kind::Liar => Bitfield::new(pieces),
                    Kind::Seeder | Kind::Corrupt => Bitfield::full(pieces),
                },
                up,
                down: up * scenario.down_factor,
                alive: true,
                joined_at: None,
                completed_at: None,
                left_at: None,
                links: Vec::new(),
                flows: Vec::new(),
                waiting: VecDeque::new(),
                cancelled: Vec::new(),
                up_version: 0,
                up_mark: 0,
                down_free_at: 0,
                uploaded: 0,
                tick_at: None,
                leave_at_pieces: None,
            });
        }
        let tracker = TrackerSide::new(
            u32::try_from(scenario.piece_len).expect("piece length fits in u32"),
            scenario.file_len(),
            pieces,
            TRACKER_TTL_MS,
        );
        let node_count = nodes.len();
        let fingerprints = nodes.iter().map(|n| n.info.fingerprint).collect();
        let held = nodes.iter().map(|n| n.disk.count()).collect();
        let mut sim = Sim {
            t0: Instant::now(),
            now: 0,
            queue: EventQueue::new(),
            rng,
            alive: vec![true; node_count],
            link_set: LinkMatrix::new(nodes.len()),
            nodes,
            by_fp,
            fingerprints,
            held,
            latencies,
            tracker,
            layout,
            uploaded_bins: Vec::new(),
            capacity_changes: Vec::new(),
            handled: 0,
            honest_banned: 0,
            corrupt_bans: 0,
            not_haves: 0,
            haves_spared: 0,
            departed: 0,
            duplicates: 0,
            busies: 0,
            seeder_sends: vec![0; scenario.pieces as usize],
            seeder_spread: None,
            lost_a_piece: false,
            samples: vec![Vec::new(); node_count],
            next_sample: 0,
            errors: Vec::new(),
            outstanding: scenario.leechers,
            progress: None,
            abandoned: HashSet::new(),
            closing: HashSet::new(),
            scenario,
        };
        // The seeder and the bad peers are there first; leechers arrive as scheduled.
        sim.at(0, Ev::Join(0));
        let bad = 1 + sim.scenario.leechers;
        for i in bad..sim.nodes.len() {
            sim.at(0, Ev::Join(i as u32));
        }
        let mut t: Ns = ns(Duration::from_millis(100));
        for i in 1..=sim.scenario.leechers {
            if let Arrivals::Poisson(span) = sim.scenario.arrivals {
                let mean = span.as_secs_f64() / sim.scenario.leechers as f64;
                let gap = -mean * (1.0 - sim.rng.random::<f64>()).ln();
                t += ns(Duration::from_secs_f64(gap));
            }
            sim.at(t, Ev::Join(i as u32));
        }
        // Churn: a share of the leechers leave once they hold a random 10-90 % of the file.
        let leaving = (sim.scenario.churn * sim.scenario.leechers as f64).round() as usize;
        let mut order: Vec<usize> = (1..=sim.scenario.leechers).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut sim.rng);
        for (k, &i) in order.iter().take(leaving).enumerate() {
            let at = (f64::from(pieces) * sim.rng.random_range(0.1..0.9)) as u32;
            sim.nodes[i].leave_at_pieces = Some((at.max(1), k % 2 == 0));
        }
        sim.outstanding -= leaving;
        sim.at(ns(EXPIRE_EVERY), Ev::Expire);
        sim
    }

    fn at(&mut self, at: Ns, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn after(&mut self, delay: Ns, ev: Ev) {
        self.at(self.now + delay, ev);
    }

    fn instant(&self) -> Instant {
        self.t0 + Duration::from_nanos(self.now)
    }

    fn latency(&self, a: u32, b: u32) -> Ns {
        self.latencies[a as usize] + self.latencies[b as usize]
    }

    fn linked(&self, a: u32, b: u32) -> bool {
        self.alive[a as usize] && self.alive[b as usize] && self.link_set.contains(a, b)
    }

    /// Links `a` and `b` both ways, unless they are linked already.
    fn link(&mut self, a: u32, b: u32) {
        if self.link_set.insert(b, a) {
            self.nodes[b as usize].links.push(a);
        }
        if self.link_set.insert(a, b) {
            self.nodes[a as usize].links.push(b);
        }
    }

    /// Drops `b` from `a`'s links.
    fn unlink_one_way(&mut self, a: u32, b: u32) {
        if self.link_set.remove(a, b) {
            self.nodes[a as usize].links.retain(|&l| l != b);
        }
    }

    /// Drops the link between `a` and `b` both ways.
    fn unlink(&mut self, a: u32, b: u32) {
        self.unlink_one_way(a, b);
        self.unlink_one_way(b, a);
    }

    /// Prints a line of progress to standard error about every `every` of wall time.
    pub fn progress_every(mut self, every: Duration) -> Sim {
        self.progress = Some((every, std::time::Instant::now()));
        self
    }

    fn print_progress(&mut self) {
        let Some((every, last)) = self.progress else {
            return;
        };
        if last.elapsed() < every {
            return;
        }
        self.progress = Some((every, std::time::Instant::now()));
        let done = self.scenario.leechers - self.outstanding;
        eprintln!(
            "{}: simulated {:.1} s, {done} of {} leechers done or left, {} events",
            self.scenario.name,
            self.now as f64 / 1e9,
            self.scenario.leechers,
            self.handled
        );
    }

    /// Runs until every leecher expected to complete has, or the deadline.
    pub fn run(mut self) -> Outcome {
        let deadline = ns(self.scenario.deadline);
        while let Some((at, ev)) = self.queue.pop() {
            if at > deadline {
                break;
            }
            if self.handled.is_multiple_of(1 << 20) {
                self.print_progress();
            }
            while at >= self.next_sample {
                self.sample_progress();
            }
            self.now = at;
            self.handled += 1;
            self.handle(ev);
            if self.outstanding == 0 || self.lost_a_piece {
                break;
            }
        }
        self.finish()
    }

    fn finish(mut self) -> Outcome {
        for i in 0..self.nodes.len() {
            self.advance_uplink(i as u32);
        }
        let end = self.now;
        let bins = (end / ns(BIN) + 1) as usize;
        self.uploaded_bins.resize(bins, 0.0);
        let mut capacity_bins = vec![0.0; bins];
        let mut changes = std::mem::take(&mut self.capacity_changes);
        changes.sort_by_key(|&(t, _)| t);
        let mut rate = 0.0;
        let mut k = 0;
        for (b, slot) in capacity_bins.iter_mut().enumerate() {
            let (start, stop) = (b as u64 * ns(BIN), (b as u64 + 1) * ns(BIN));
            // Capacity is piecewise constant: integrate it over the bin.
            let mut t = start;
            let mut total = 0.0;
            while k < changes.len() && changes[k].0 < stop {
                let at = changes[k].0.max(start);
                total += rate * (at - t) as f64 / 1e9;
                t = at;
                rate += changes[k].1;
                k += 1;
            }
            total += rate * (stop - t) as f64 / 1e9;
            *slot = total;
        }
        // Every leecher that completed holds every piece, on its disk and in its core.
        for (i, n) in self.nodes.iter().enumerate() {
            if n.kind == Kind::Leecher && n.completed_at.is_some() && n.alive {
                let core_full = n.swarm.as_ref().is_some_and(|s| *s.have() == n.disk);
                if !n.disk.is_full() || !core_full {
                    self.errors.push(format!(
                        "peer {i} completed with {} of {} pieces on disk",
                        n.disk.count(),
                        self.scenario.pieces
                    ));
                }
            }
        }
        let leechers = self
            .nodes
            .iter()
            .filter(|n| n.kind == Kind::Leecher && n.leave_at_pieces.is_none())
            .map(|n| {
                let took = match (n.joined_at, n.completed_at) {
                    (Some(j), Some(c)) => Some((c - j) as f64 / 1e9),
                    _ => None,
                };
                (n.up, n.down, took)
            })
            .collect();
        let lost_pieces = self.pieces_held_by_none();
        let progress = self
            .nodes
            .iter()
            .zip(std::mem::take(&mut self.samples))
            .filter(|(n, _)| n.kind == Kind::Leecher && n.leave_at_pieces.is_none())
            .map(|(_, p)| p)
            .collect();
        Outcome {
            leechers,
            uploaded_bins: self.uploaded_bins,
            capacity_bins,
            seeder_bytes: self.nodes[0].uploaded,
            end_secs: end as f64 / 1e9,
            events: self.handled,
            honest_banned: self.honest_banned,
            corrupt_bans: self.corrupt_bans,
            not_haves: self.not_haves,
            haves_spared: self.haves_spared,
            departed: self.departed,
            duplicates: self.duplicates,
            busies: self.busies,
            seeder_spread: self.seeder_spread,
            lost_pieces,
            progress,
            errors: self.errors,
        }
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.instant();
        let touched = match ev {
            Ev::Join(i) => self.join(i),
            Ev::Tick(i) => {
                let n = &mut self.nodes[i as usize];
                if n.tick_at == Some(self.now) {
                    n.tick_at = None;
                }
                let Some(s) = self.swarm(i) else { return };
                s.handle_timeout(now);
                Some(i)
            }
            Ev::DialArrives { from, to } => {
                if !self.nodes[to as usize].alive || !self.nodes[from as usize].alive {
                    let delay = self.latency(from, to);
                    self.after(delay, Ev::DialFailed { from, to });
                    return;
                }
                self.link(to, from);
                // The dialler wants to download from `to` (again).
                self.abandoned.remove(&(to, from));
                let delay = self.latency(from, to);
                self.after(delay, Ev::DialAnswered { from, to });
                // The dialled side adopts the dialler as the runtime does.
                let info = self.nodes[from as usize].info.clone();
                let bitfield = self.announced(from);
                let Some(s) = self.swarm(to) else { return };
                s.handle_peers_offered(vec![info.clone()], now);
                s.handle_connected(info.fingerprint, now);
                s.handle_bitfield(info.fingerprint, bitfield, now);
                Some(to)
            }
            Ev::DialAnswered { from, to } => {
                let fp = self.fingerprints[to as usize];
                if !self.linked(from, to) {
                    let Some(s) = self.swarm(from) else { return };
                    s.handle_connect_failed(fp, now);
                    return self.outputs(from);
                }
                let bitfield = self.announced(to);
                let Some(s) = self.swarm(from) else { return };
                s.handle_connected(fp, now);
                s.handle_bitfield(fp, bitfield, now);
                Some(from)
            }
            Ev::DialFailed { from, to } => {
                let fp = self.fingerprints[to as usize];
                let Some(s) = self.swarm(from) else { return };
                s.handle_connect_failed(fp, now);
                Some(from)
            }
            Ev::Have { to, from, pieces } => {
                if !self.linked(to, from) {
                    return;
                }
                let fp = self.fingerprints[from as usize];
                let Some(s) = self.swarm(to) else { return };
                s.handle_haves(fp, &pieces, now);
                Some(to)
            }
            Ev::Request { at, from, piece } => {
                if self.linked(at, from) {
                    self.abandoned.remove(&(at, from));
                    self.request_arrives(at, from, piece);
                }
                None
            }
            Ev::Abandoned { at, from } => {
                if !self.linked(at, from) {
                    return;
                }
                self.abandoned.insert((at, from));
                let fp = self.fingerprints[from as usize];
                if self.swarm(at).is_some_and(|s| !s.wants(&fp)) {
                    // Neither side downloads from the other: the link is closed.
                    self.close_link(at, from);
                    return;
                }
                // The core hears of it only if an upload in progress ended.
                self.drop_uploads(at, from).then_some(at)
            }
            Ev::Cancel { at, from, piece } => {
                self.advance_uplink(at);
                let n = &mut self.nodes[at as usize];
                n.waiting.retain(|&q| q != (from, piece));
                let before = n.flows.len();
                n.flows.retain(|f| (f.to, f.piece) != (from, piece));
                let aborted = n.flows.len() != before;
                if !aborted && n.swarm.is_some() {
                    // Still waiting in the core: it is dropped when granted, as the
                    // runtime finds the requester's stream reset.
                    n.cancelled.push((from, piece));
                }
                let fp = self.fingerprints[from as usize];
                if aborted && let Some(s) = self.swarm(at) {
                    s.handle_upload_done(fp, piece, 0, now);
                    self.start_uploads(at);
                    Some(at)
                } else {
                    self.start_uploads(at);
                    None
                }
            }
            Ev::UplinkDone { at, version } => {
                if self.nodes[at as usize].up_version == version {
                    self.advance_uplink(at);
                    self.start_uploads(at);
                }
                None
            }
            Ev::Piece {
                to,
                from,
                piece,
                good,
            } => {
                if !self.linked(to, from) {
                    return;
                }
                let fp = self.fingerprints[from as usize];
                if good {
                    if self.nodes[to as usize].disk.set(piece) {
                        self.held[to as usize] += 1;
                    } else {
                        self.duplicates += 1;
                    }
                }
                let n = &self.nodes[to as usize];
                if let Some((at, graceful)) = n.leave_at_pieces
                    && self.held[to as usize] >= at
                    && n.alive
                {
                    self.after(0, Ev::Depart { node: to, graceful });
                }
                let Some(s) = self.swarm(to) else { return };
                if good {
                    s.handle_piece_verified(fp, piece, now);
                } else {
                    s.handle_piece_corrupt(fp, piece, now);
                }
                Some(to)
            }
            Ev::NotHave { to, from, piece } => {
                if !self.linked(to, from) {
                    return;
                }
                self.not_haves += 1;
                let fp = self.fingerprints[from as usize];
                let Some(s) = self.swarm(to) else { return };
                s.handle_not_have(fp, piece, now);
                Some(to)
            }
            Ev::Busy { to, from, piece } => {
                if !self.linked(to, from) {
                    return;
                }
                self.busies += 1;
                let fp = self.fingerprints[from as usize];
                let Some(s) = self.swarm(to) else { return };
                s.handle_busy(fp, piece, now);
                Some(to)
            }
            Ev::Disconnected { to, from } => {
                self.closing.remove(&(from, to));
                if self.linked(to, from) {
                    // Dialled again since: the new link stands.
                    return;
                }
                let fp = self.fingerprints[from as usize];
                let Some(s) = self.swarm(to) else { return };
                s.handle_disconnected(fp, now);
                Some(to)
            }
            Ev::Offered { to, peers } => {
                let Some(s) = self.swarm(to) else { return };
                s.handle_peers_offered(peers, now);
                Some(to)
            }
            Ev::Depart { node, graceful } => {
                self.depart(node, graceful);
                None
            }
            Ev::Expire => {
                self.tracker.expire(self.now / 1_000_000);
                self.after(ns(EXPIRE_EVERY), Ev::Expire);
                None
            }
        };
        if let Some(i) = touched {
            self.outputs(i);
        }
    }

    /// What a peer says it has when a connection opens.
    fn announced(&self, i: u32) -> Bitfield {
        let n = &self.nodes[i as usize];
        match (n.kind, &n.swarm) {
            (Kind::Corrupt | Kind::Liar, _) => Bitfield::full(self.scenario.pieces),
            (_, Some(s)) => s.have().clone(),
            (_, None) => n.disk.clone(),
        }
    }

    fn swarm(&mut self, i: u32) -> Option<&mut Swarm> {
        let n = &mut self.nodes[i as usize];
        if n.alive { n.swarm.as_mut() } else { None }
    }

    fn join(&mut self, i: u32) -> Option<u32> {
        let now = self.instant();
        let now_ms = self.now / 1_000_000;
        let config = SwarmConfig {
            seed: self.rng.random(),
            ..self.scenario.swarm.clone()
        };
        let want = config.max_neighbours as u32;
        let n = &mut self.nodes[i as usize];
        n.joined_at = Some(self.now);
        if n.kind != Kind::Corrupt && n.kind != Kind::Liar {
            self.capacity_changes.push((self.now, n.up));
        }
        let have = match n.kind {
            Kind::Corrupt | Kind::Liar => Bitfield::full(self.scenario.pieces),
            _ => n.disk.clone(),
        };
        let (fp, addr) = (n.info.fingerprint, n.info.addr);
        if matches!(n.kind, Kind::Seeder | Kind::Leecher) {
            n.swarm = Some(Swarm::new(config, fp, self.layout, n.disk.clone(), now));
        }
        let offered = self.tracker.join(fp, addr, &have, want, now_ms);
        if matches!(self.nodes[i as usize].kind, Kind::Leecher) {
            self.after(
                ns(TRACKER_RTT),
                Ev::Offered {
                    to: i,
                    peers: offered,
                },
            );
        }
        Some(i)
    }

    /// A request reached `at`: it is queued for the uplink, or answered "not have".
    fn request_arrives(&mut self, at: u32, from: u32, piece: u32) {
        let n = &self.nodes[at as usize];
        let has = match n.kind {
            Kind::Corrupt => true,
            _ => n.disk.get(piece),
        };
        if !has {
            let delay = self.latency(at, from);
            self.after(
                delay,
                Ev::NotHave {
                    to: from,
                    from: at,
                    piece,
                },
            );
            return;
        }
        self.advance_uplink(at);
        let requester = self.fingerprints[from as usize];
        let requester_pieces = self.held[from as usize];
        let now = self.instant();
        if let Some(s) = self.swarm(at) {
            s.handle_upload_requested(requester, piece, requester_pieces, now);
            self.outputs(at);
        } else {
            self.nodes[at as usize].waiting.push_back((from, piece));
            self.start_uploads(at);
        }
    }

    /// Brings `at`'s flows up to now: every active flow got an equal share of the uplink
    /// since the last mark; flows that are done are handed to their receivers.
    fn advance_uplink(&mut self, at: u32) {
        let now = self.now;
        let n = &mut self.nodes[at as usize];
        let since = n.up_mark;
        n.up_mark = now;
        if n.flows.is_empty() || now <= since {
            return;
        }
        let dt = (now - since) as f64 / 1e9;
        let share = n.up * dt / n.flows.len() as f64;
        let mut sent = 0.0;
        for f in &mut n.flows {
            let s = share.min(f.remaining);
            f.remaining -= s;
            sent += s;
        }
        n.uploaded += sent as u64;
        add_spread(&mut self.uploaded_bins, since, now, sent);
        let mut done = Vec::new();
        n.flows.retain(|f| {
            // Within a byte: floating point leaves crumbs.
            if f.remaining < 1.0 {
                done.push((f.to, f.piece));
                false
            } else {
                true
            }
        });
        for (to, piece) in done {
            self.flow_done(at, to, piece);
            let len = self.layout.len_of(piece);
            let fp = self.fingerprints[to as usize];
            let now = self.instant();
            if let Some(s) = self.swarm(at) {
                s.handle_upload_done(fp, piece, len, now);
                self.outputs(at);
            }
        }
    }

    /// A piece left `at`'s uplink for `to`: through `to`'s downlink, then the latency.
    fn flow_done(&mut self, at: u32, to: u32, piece: u32) {
        if !self.linked(at, to) {
            return;
        }
        if at == 0
            && let Some(c) = self.seeder_sends.get_mut(piece as usize)
        {
            *c += 1;
        }
        let len = self.layout.len_of(piece) as f64;
        let receiver = &mut self.nodes[to as usize];
        let start = receiver.down_free_at.max(self.now);
        let done = start + ns(Duration::from_secs_f64(len / receiver.down));
        receiver.down_free_at = done;
        let delay = done - self.now + self.latency(at, to);
        let good = self.nodes[at as usize].kind != Kind::Corrupt;
        self.after(
            delay,
            Ev::Piece {
                to,
                from: at,
                piece,
                good,
            },
        );
        if self.nodes[at as usize].kind == Kind::Seeder
            && let Some(copies) = self.scenario.seeder_leaves_after_copies
            && self.nodes[at as usize].uploaded as f64 >= copies * self.scenario.file_len() as f64
            && self.nodes[at as usize].alive
        {
            self.after(
                0,
                Ev::Depart {
                    node: at,
                    graceful: true,
                },
            );
        }
    }

    /// Starts waiting requests while slots are free, and schedules the next flow end.
    /// Starts waiting requests of a peer without a core (the misbehaving ones) in order
    /// of arrival while slots are free, then reschedules the uplink.
    fn start_uploads(&mut self, at: u32) {
        let n = &mut self.nodes[at as usize];
        if n.swarm.is_none() {
            while n.flows.len() < UPLOAD_SLOTS {
                let Some((to, piece)) = n.waiting.pop_front() else {
                    break;
                };
                n.flows.push(Flow {
                    to,
                    piece,
                    remaining: self.layout.len_of(piece) as f64,
                });
            }
        }
        self.reschedule_uplink(at);
    }

    /// Schedules the end of `at`'s earliest flow at the current shares.
    fn reschedule_uplink(&mut self, at: u32) {
        let n = &mut self.nodes[at as usize];
        n.up_version += 1;
        if n.flows.is_empty() {
            return;
        }
        let least = n
            .flows
            .iter()
            .map(|f| f.remaining)
            .fold(f64::INFINITY, f64::min);
        let secs = least * n.flows.len() as f64 / n.up;
        let version = n.up_version;
        // Rounded up so that the flow is surely done when the event fires.
        let delay = (secs * 1e9).ceil() as Ns + 1;
        self.after(delay, Ev::UplinkDone { at, version });
    }

    /// Drops what `at` was sending, or had waiting, for `to`, and frees the core's slots
    /// for the uploads that were under way; returns whether the core was told of any.
    fn drop_uploads(&mut self, at: u32, to: u32) -> bool {
        self.advance_uplink(at);
        let n = &mut self.nodes[at as usize];
        n.waiting.retain(|&(from, _)| from != to);
        let mut dropped = Vec::new();
        n.flows.retain(|f| {
            let keep = f.to != to;
            if !keep {
                dropped.push(f.piece);
            }
            keep
        });
        let fp = self.fingerprints[to as usize];
        let now = self.instant();
        let told = !dropped.is_empty() && self.swarm(at).is_some();
        if let Some(s) = self.swarm(at) {
            for piece in dropped {
                s.handle_upload_done(fp, piece, 0, now);
            }
        }
        self.start_uploads(at);
        told
    }

    /// `i` closed its link to `other`: both drop it at once (so nothing more is delivered
    /// over it), pieces under way between them are abandoned, and `other`'s core hears of
    /// it one latency later, as from a closed QUIC connection.
    fn close_link(&mut self, i: u32, other: u32) {
        self.unlink(i, other);
        self.abandoned.remove(&(i, other));
        self.abandoned.remove(&(other, i));
        for (at, to) in [(i, other), (other, i)] {
            if self.drop_uploads(at, to) {
                self.outputs(at);
            }
        }
        self.closing.insert((i, other));
        let delay = self.latency(i, other);
        self.after(delay, Ev::Disconnected { to: other, from: i });
    }

    /// Records every leecher's pieces at the sampling instant that is due.
    fn sample_progress(&mut self) {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.kind == Kind::Leecher {
                let (mut neighbours, mut in_flight, mut from) = (0, 0, 0);
                for p in n.swarm.as_ref().map(Swarm::peers).unwrap_or_default() {
                    if p.state == peer::swarm::ContactState::Connected {
                        neighbours += 1;
                        in_flight += p.in_flight as u32;
                        from += u32::from(p.in_flight > 0);
                    }
                }
                self.samples[i].push((n.disk.count(), neighbours, from, in_flight));
            }
        }
        self.next_sample += ns(SAMPLE);
    }

    /// Pieces no live peer holds: a swarm that lost one cannot complete.
    fn pieces_held_by_none(&self) -> Vec<u32> {
        let mut held = Bitfield::new(self.scenario.pieces);
        for n in self
            .nodes
            .iter()
            .filter(|n| n.alive && n.kind != Kind::Liar)
        {
            for p in n.disk.ones() {
                held.set(p);
            }
        }
        held.zeros().collect()
    }

    fn depart(&mut self, i: u32, graceful: bool) {
        if !self.nodes[i as usize].alive {
            return;
        }
        self.advance_uplink(i);
        if i == 0 {
            let (min, max) = self
                .seeder_sends
                .iter()
                .fold((u32::MAX, 0), |(lo, hi), &c| (lo.min(c), hi.max(c)));
            self.seeder_spread = Some((min, max));
        }
        let n = &mut self.nodes[i as usize];
        n.alive = false;
        n.left_at = Some(self.now);
        n.flows.clear();
        n.waiting.clear();
        n.up_version += 1;
        if n.kind != Kind::Corrupt && n.kind != Kind::Liar {
            self.capacity_changes.push((self.now, -n.up));
        }
        if n.kind == Kind::Leecher && n.completed_at.is_none() {
            self.departed += 1;
        }
        let fp = n.info.fingerprint;
        self.alive[i as usize] = false;
        let links = std::mem::take(&mut n.links);
        for other in links {
            self.link_set.remove(i, other);
            if graceful {
                self.unlink_one_way(other, i);
                let delay = self.latency(i, other);
                self.after(delay, Ev::Disconnected { to: other, from: i });
            }
        }
        if graceful {
            self.tracker.leave(fp);
        }
        if !self.pieces_held_by_none().is_empty() {
            self.lost_a_piece = true;
        }
    }

    /// Carries out what node `i`'s core asked for, and schedules its next tick.
    fn outputs(&mut self, i: u32) {
        while let Some(action) = self.swarm(i).and_then(Swarm::poll_output) {
            self.act(i, action);
        }
        let next = self.swarm(i).and_then(|s| s.next_timeout());
        if let Some(next) = next {
            let at = next.saturating_duration_since(self.t0).as_nanos() as Ns;
            if at <= self.now {
                self.errors
                    .push(format!("peer {i} asked for a tick in the past"));
                return;
            }
            let n = &mut self.nodes[i as usize];
            if n.tick_at.is_none_or(|t| at < t) {
                n.tick_at = Some(at);
                self.at(at, Ev::Tick(i));
            }
        }
    }

    fn act(&mut self, i: u32, action: Action) {
        let now_ms = self.now / 1_000_000;
        let fp_of = |sim: &Sim, fp: &Fingerprint| sim.by_fp.get(fp).copied();
        match action {
            Action::Connect(info) => {
                let Some(to) = fp_of(self, &info.fingerprint) else {
                    return self.errors.push(format!("peer {i} dials a stranger"));
                };
                let delay = self.latency(i, to);
                self.after(delay, Ev::DialArrives { from: i, to });
            }
            Action::Disconnect { peer, banned } => {
                let Some(to) = fp_of(self, &peer) else { return };
                if banned {
                    if self.nodes[to as usize].kind == Kind::Corrupt {
                        self.corrupt_bans += 1;
                    } else {
                        self.honest_banned += 1;
                        self.errors
                            .push(format!("peer {i} banned honest peer {to}"));
                    }
                    self.unlink(i, to);
                } else if self.linked(i, to) {
                    if self.abandoned.contains(&(i, to)) {
                        // The other side had stopped downloading from this one already.
                        self.close_link(i, to);
                    } else {
                        // The runtime aborts this side's fetches and says it is no longer
                        // interested; the link stays up while the other side downloads.
                        let delay = self.latency(i, to);
                        self.after(delay, Ev::Abandoned { at: to, from: i });
                    }
                }
            }
            Action::Request { peer, piece } => {
                let Some(to) = fp_of(self, &peer) else { return };
                if !self.link_set.contains(i, to) {
                    // A neighbour that left or closed the link (its goodbye may still be
                    // on the way) is not an error; one never connected is.
                    if self.nodes[to as usize].left_at.is_none() && !self.closing.contains(&(to, i))
                    {
                        self.errors
                            .push(format!("peer {i} asks {to} without a connection"));
                    }
                    return;
                }
                let delay = self.latency(i, to);
                self.after(
                    delay,
                    Ev::Request {
                        at: to,
                        from: i,
                        piece,
                    },
                );
            }
            Action::Upload { peer, piece } => {
                let Some(to) = fp_of(self, &peer) else { return };
                let n = &mut self.nodes[i as usize];
                let cancelled = n.cancelled.iter().position(|&c| c == (to, piece));
                if let Some(k) = cancelled {
                    n.cancelled.swap_remove(k);
                }
                // Cancelled while it waited, or the requester is gone or stopped
                // fetching: the slot is free.
                if cancelled.is_some() || !self.linked(i, to) || self.abandoned.contains(&(i, to)) {
                    let now = self.instant();
                    if let Some(s) = self.swarm(i) {
                        s.handle_upload_done(peer, piece, 0, now);
                    }
                    return;
                }
                self.advance_uplink(i);
                self.nodes[i as usize].flows.push(Flow {
                    to,
                    piece,
                    remaining: self.layout.len_of(piece) as f64,
                });
                self.reschedule_uplink(i);
            }
            Action::RefuseUpload { peer, piece } => {
                let Some(to) = fp_of(self, &peer) else { return };
                let delay = self.latency(i, to);
                let ev = if self.nodes[i as usize].disk.get(piece) {
                    Ev::Busy { to, from: i, piece }
                } else {
                    Ev::NotHave { to, from: i, piece }
                };
                self.after(delay, ev);
            }
            Action::Cancel { peer, piece } => {
                let Some(to) = fp_of(self, &peer) else { return };
                let delay = self.latency(i, to);
                self.after(
                    delay,
                    Ev::Cancel {
                        at: to,
                        from: i,
                        piece,
                    },
                );
            }
            Action::AskTrackerForPeers { exclude, want } => {
                let fp = self.fingerprints[i as usize];
                let seed = self.rng.random();
                let peers = self.tracker.more_peers(fp, exclude, want, seed);
                self.after(ns(TRACKER_RTT), Ev::Offered { to: i, peers });
            }
            Action::AskTrackerForPiece(piece) => {
                let fp = self.fingerprints[i as usize];
                let seed = self.rng.random();
                let peers = self.tracker.peers_with_piece(fp, piece, 5, seed);
                self.after(ns(TRACKER_RTT), Ev::Offered { to: i, peers });
            }
            Action::ReportHave(pieces) => {
                let fp = self.fingerprints[i as usize];
                self.tracker.report(fp, pieces, true, now_ms);
            }
            Action::ReportNotHave(pieces) => {
                let fp = self.fingerprints[i as usize];
                self.tracker.report(fp, pieces, false, now_ms);
            }
            Action::Heartbeat => {
                let fp = self.fingerprints[i as usize];
                self.tracker.heartbeat(fp, now_ms);
            }
            Action::Advertise { pieces, known_to } => {
                let pieces: Rc<[u32]> = pieces.into();
                let links = self.nodes[i as usize].links.clone();
                for to in links {
                    if known_to.contains(&self.fingerprints[to as usize]) {
                        self.haves_spared += 1;
                        continue;
                    }
                    let delay = self.latency(i, to);
                    let pieces = Rc::clone(&pieces);
                    self.after(
                        delay,
                        Ev::Have {
                            to,
                            from: i,
                            pieces,
                        },
                    );
                }
            }
            Action::Complete => {
                let n = &mut self.nodes[i as usize];
                if n.kind == Kind::Leecher && n.completed_at.is_none() {
                    n.completed_at = Some(self.now);
                    if n.leave_at_pieces.is_none() {
                        self.outstanding -= 1;
                    }
                }
            }
        }
    }
}

/// Adds `bytes` spread evenly over `[from, to)` to the bins.
fn add_spread(bins: &mut Vec<f64>, from: Ns, to: Ns, bytes: f64) {
    let width = ns(BIN);
    let last = (to.saturating_sub(1) / width) as usize;
    if bins.len() <= last {
        bins.resize(last + 1, 0.0);
    }
    let span = (to - from) as f64;
    let mut t = from;
    while t < to {
        let b = (t / width) as usize;
        let end = ((b as u64 + 1) * width).min(to);
        bins[b] += bytes * (end - t) as f64 / span;
        t = end;
    }
}

/// Which ordered pairs of nodes are linked, one bit per pair: with 10,000 nodes that is
/// 12.5 MB, and a check is one read where a hash set probed a control group and a bucket,
/// a miss each (a twentieth of the simulation's time).
struct LinkMatrix {
    nodes: usize,
    bits: Vec<u64>,
}

impl LinkMatrix {
    fn new(nodes: usize) -> Self {
        LinkMatrix {
            nodes,
            bits: vec![0; (nodes * nodes).div_ceil(64)],
        }
    }

    fn at(&self, a: u32, b: u32) -> (usize, u64) {
        let bit = a as usize * self.nodes + b as usize;
        (bit / 64, 1 << (bit % 64))
    }

    fn contains(&self, a: u32, b: u32) -> bool {
        let (word, mask) = self.at(a, b);
        self.bits[word] & mask != 0
    }

    /// Adds `(a, b)`; returns whether it was new.
    fn insert(&mut self, a: u32, b: u32) -> bool {
        let (word, mask) = self.at(a, b);
        let new = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        new
    }

    /// Removes `(a, b)`; returns whether it was there.
    fn remove(&mut self, a: u32, b: u32) -> bool {
        let (word, mask) = self.at(a, b);
        let was = self.bits[word] & mask != 0;
        self.bits[word] &= !mask;
        was
    }
}
