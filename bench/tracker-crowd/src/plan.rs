//! What a worker process plays, as the coordinator hands it over (a MessagePack file), and
//! what it hands back: its peers' outcomes and every request's latency.

use std::net::SocketAddr;

use certs::Fingerprint;
use serde::{Deserialize, Serialize};
use tracker::Bitfield;
use tracker::torrent::InfoHash;

/// One worker's part of the crowd. Times are milliseconds after the crowd's start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The tracker nodes' peer addresses.
    pub nodes: Vec<SocketAddr>,
    /// The cluster CA.
    pub ca: Fingerprint,
    /// The big torrent everybody joins.
    pub main: InfoHash,
    /// Its piece count.
    pub main_pieces: u32,
    /// The small torrents; peer `g` with `g < small.len() * small_peers` also joins
    /// `small[g / small_peers]`.
    pub small: Vec<InfoHash>,
    /// Pieces of each small torrent.
    pub small_pieces: u32,
    /// Peers per small torrent.
    pub small_peers: usize,
    /// Joins are spread uniformly over `[0, join_window_ms)`.
    pub join_window_ms: u64,
    /// Reports, lookups and leaves stop here; heartbeats go on until the worker is told
    /// to stop, so that the check finds the staying peers still in their swarms.
    pub load_end_ms: u64,
    /// A peer reports its new pieces this often (with jitter); 0: as soon as its last
    /// report is acknowledged (the closed loop).
    pub report_every_ms: u64,
    /// New pieces per report.
    pub pieces_per_report: u32,
    /// Heartbeat interval.
    pub heartbeat_every_ms: u64,
    /// A peer asks for more neighbours this often (0: never).
    pub more_peers_every_ms: u64,
    /// A peer asks for the holders of a piece this often (0: never).
    pub holders_every_ms: u64,
    /// Share of this worker's peers that leave cleanly before the end.
    pub leave_fraction: f64,
    /// Global index of this worker's first peer.
    pub first_peer: usize,
    /// How many peers this worker runs.
    pub peers: usize,
    /// One in this many acknowledged reports is timed for the visibility delay.
    pub visibility_every: u32,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Plan {
    /// The small torrent peer `global` joins besides the main one, if any.
    pub fn small_of(&self, global: usize) -> Option<usize> {
        (self.small_peers > 0)
            .then(|| global / self.small_peers)
            .filter(|&t| t < self.small.len())
    }

    /// The info hash of [`Plan::small_of`].
    pub fn small_torrent_of(&self, global: usize) -> Option<InfoHash> {
        self.small_of(global).map(|t| self.small[t])
    }
}

/// The kinds of request, in table order.
pub const KINDS: [&str; 6] = [
    "join",
    "have",
    "heartbeat",
    "more_peers",
    "holders",
    "leave",
];

/// One request as the worker saw it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// Sent at, ms after the start.
    pub at_ms: u32,
    /// From send to answer (or failure), µs.
    pub latency_us: u32,
    /// Index in [`KINDS`].
    pub kind: u8,
    /// Attempts at a node that gave no answer before this one's answer.
    pub retries: u16,
    /// Answered (false: failed after every retry).
    pub ok: bool,
    /// Pieces the answer acknowledged (an acknowledged report's batch; otherwise 0).
    pub pieces: u32,
}

/// What became of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    /// In its swarms to the end.
    Stays,
    /// Left cleanly (acknowledged).
    Left,
    /// Tried to leave, but the leave was not acknowledged.
    LeaveFailed,
}

/// One peer's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerOutcome {
    /// Its global index.
    pub index: usize,
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// What became of it.
    pub fate: Fate,
    /// Whether its join was acknowledged.
    pub joined: bool,
    /// Pieces of the main torrent whose report was acknowledged.
    pub acked: Bitfield,
    /// Whether its last join of its small torrent (if it has one) was acknowledged.
    pub in_small: bool,
    /// Per swarm (0: the main one, 1: its small one), the longest time from sending one
    /// acknowledged refresh (join, report, heartbeat) to the acknowledgement of the next,
    /// in ms: at least as long as the tracker went without hearing from it.
    pub longest_quiet_ms: [u64; 2],
    /// Per swarm, when its last acknowledged refresh was sent, ms since the Unix epoch
    /// (0: never). A peer quiet for a whole time to live, up to the check, may rightly
    /// have been expired by the tracker.
    pub last_refresh_unix_ms: [u64; 2],
    /// The neighbours the tracker gave it with its last acknowledged join of the main swarm.
    pub neighbours: Vec<Fingerprint>,
    /// Times the tracker said it was not in the swarm and it joined again.
    pub rejoins: u32,
}

/// A worker's whole result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Every request.
    pub samples: Vec<Sample>,
    /// Timed reports: (sent, acknowledged), µs since the Unix epoch.
    pub visibility: Vec<(u64, u64)>,
    /// Every peer.
    pub peers: Vec<PeerOutcome>,
}
