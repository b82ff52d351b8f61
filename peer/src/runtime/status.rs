//! What a torrent is doing, as shown by `bt status`, the progress bar and the dashboard.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The phase of one torrent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Opening its files and checking what is already on disk.
    Checking,
    /// Joining the swarm through the tracker.
    Joining,
    /// Downloading.
    Downloading,
    /// Every piece verified; serving others.
    Seeding,
    /// Every piece verified; not serving (`--no-seed`).
    Complete,
    /// Paused by the user: no downloading, no serving.
    Paused,
    /// Stopped by an error a person must look at.
    Failed(String),
}

/// One neighbour of a torrent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeighbourStatus {
    /// Its fingerprint (text form).
    pub fingerprint: String,
    /// Its address.
    pub addr: SocketAddr,
    /// "connected", "connecting", "idle" or "backed off".
    pub state: String,
    /// Measured download rate from it, bytes per second.
    pub rate: f64,
    /// Requests outstanding to it.
    pub in_flight: usize,
    /// Pieces it has.
    pub pieces: u32,
}

/// One torrent's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorrentStatus {
    /// Info hash (hex).
    pub info_hash: String,
    /// The torrent's name.
    pub name: String,
    /// Where its files are.
    pub path: String,
    /// The phase.
    pub phase: Phase,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in all.
    pub pieces_total: u32,
    /// Bytes verified.
    pub bytes_have: u64,
    /// Bytes in all.
    pub bytes_total: u64,
    /// Download rate over the last seconds, bytes per second.
    pub download_rate: f64,
    /// Upload rate over the last seconds, bytes per second.
    pub upload_rate: f64,
    /// Bytes downloaded (verified pieces received) since start.
    pub downloaded: u64,
    /// Bytes uploaded since start.
    pub uploaded: u64,
    /// The piece map: one character per piece, `#` held, `.` missing (at most 1,024
    /// characters; pieces are grouped when there are more).
    pub piece_map: String,
    /// The neighbours.
    pub neighbours: Vec<NeighbourStatus>,
    /// The tracker node answering now.
    pub tracker: Option<SocketAddr>,
    /// Tracker requests that failed over to another node.
    pub tracker_failovers: u64,
    /// Neighbours dropped for sending corrupt data.
    pub banned: u32,
}

impl TorrentStatus {
    /// Progress as a fraction from 0 to 1.
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            1.0
        } else {
            self.bytes_have as f64 / self.bytes_total as f64
        }
    }
}
