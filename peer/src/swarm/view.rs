//! A read-only view of the core for status displays (progress bars, dashboards).

use std::net::SocketAddr;
use std::time::Instant;

use certs::Fingerprint;
use tracker::Bitfield;

use super::Swarm;
use super::neighbour::Contact;

/// How far a known peer is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactState {
    /// Known, not connected, may be dialled.
    Idle,
    /// Not connected after failures; not dialled before this instant.
    BackedOff(Instant),
    /// Being dialled.
    Connecting,
    /// A neighbour.
    Connected,
}

/// One known peer, as shown in a status display.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    /// Who it is.
    pub peer: Fingerprint,
    /// Where it is.
    pub addr: SocketAddr,
    /// How far it is connected.
    pub state: ContactState,
    /// Its measured delivery rate in bytes per second (0 until measured).
    pub rate: f64,
    /// Requests outstanding to it.
    pub in_flight: usize,
    /// Requests the core aims to keep outstanding to it at its measured rate.
    pub target_in_flight: usize,
    /// Pieces it says it has (as the tracker said, until it sent its bitfield).
    pub pieces: u32,
    /// Consecutive failures.
    pub failures: u32,
}

/// How far the download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub pieces_total: u32,
    /// Bytes in the verified pieces.
    pub bytes_have: u64,
    /// Bytes in the torrent.
    pub bytes_total: u64,
    /// Whether endgame (duplicate requests) is on.
    pub endgame: bool,
    /// Whether every piece is verified.
    pub complete: bool,
}

/// The upload side, as shown in a status display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadStatus {
    /// Neighbours' requests waiting for a slot.
    pub waiting: usize,
    /// Uploads in progress.
    pub serving: usize,
    /// The uplink's measured rate, bytes per second (None until measured).
    pub rate: Option<f64>,
}

impl Swarm {
    /// The upload queue and the measured uplink.
    pub fn upload_status(&self) -> UploadStatus {
        let (waiting, serving) = self.uploads.counts();
        UploadStatus {
            waiting,
            serving,
            rate: self.uploads.rate(),
        }
    }

    /// Every known peer, ordered by fingerprint.
    pub fn peers(&self) -> Vec<PeerView> {
        let cfg = &self.config;
        let mut views: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(&fp, p)| {
                let (state, rate, in_flight, target, pieces) = match &p.contact {
                    Contact::Idle => {
                        let state = match p.backoff.backed_off_until(self.now) {
                            Some(until) => ContactState::BackedOff(until),
                            None => ContactState::Idle,
                        };
                        (state, 0.0, 0, 0, p.info.pieces)
                    }
                    Contact::Connecting(_) => (ContactState::Connecting, 0.0, 0, 0, p.info.pieces),
                    Contact::Connected(n, _) => (
                        ContactState::Connected,
                        n.rate.bytes_per_sec().unwrap_or(0.0),
                        n.in_flight.len(),
                        n.target_in_flight(
                            cfg.min_in_flight,
                            cfg.max_in_flight,
                            cfg.queue_time,
                            self.layout.piece_len,
                        ),
                        if n.announced {
                            n.bitfield.count()
                        } else {
                            p.info.pieces
                        },
                    ),
                };
                PeerView {
                    peer: fp,
                    addr: p.info.addr,
                    state,
                    rate,
                    in_flight,
                    target_in_flight: target,
                    pieces,
                    failures: p.backoff.failures(),
                }
            })
            .collect();
        views.sort_by_key(|v| v.peer);
        views
    }

    /// How far the download is.
    pub fn progress(&self) -> Progress {
        let have = self.picker.have();
        let bytes_have = have.ones().map(|i| self.layout.len_of(i)).sum();
        Progress {
            pieces_have: have.count(),
            pieces_total: have.len(),
            bytes_have,
            bytes_total: self.layout.total_len,
            endgame: self.picker.is_endgame(),
            complete: self.complete,
        }
    }

    /// The pieces verified and held.
    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether this peer is banned (it sent a piece that failed verification).
    pub fn is_banned(&self, peer: &Fingerprint) -> bool {
        self.banned.contains(peer)
    }

    /// Whether the core downloads from this peer, or is dialling it: the runtime keeps a
    /// link up while this, or the peer's interest in us, holds.
    pub fn wants(&self, peer: &Fingerprint) -> bool {
        self.peers.get(peer).is_some_and(|p| p.is_active())
    }
}
