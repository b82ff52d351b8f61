//! Publishing the torrent's status.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracker::Bitfield;
use tracker::torrent::Torrent;

use super::TorrentTask;
use crate::runtime::status::{NeighbourStatus, Phase, TorrentStatus};
use crate::swarm::ContactState;

/// The status a torrent starts with.
pub(crate) fn initial_status(torrent: &Torrent, path: &Path) -> TorrentStatus {
    TorrentStatus {
        info_hash: torrent.info_hash().to_string(),
        name: torrent.name().to_string(),
        path: path.display().to_string(),
        phase: Phase::Checking,
        pieces_have: 0,
        pieces_total: torrent.piece_count(),
        bytes_have: 0,
        bytes_total: torrent.total_length(),
        download_rate: 0.0,
        upload_rate: 0.0,
        downloaded: 0,
        uploaded: 0,
        piece_map: String::new(),
        neighbours: Vec::new(),
        tracker: None,
        tracker_failovers: 0,
        banned: 0,
    }
}

impl TorrentTask {
    /// The phase the torrent is in now.
    pub(super) fn phase(&self) -> Phase {
        if let Some(why) = &self.failed {
            Phase::Failed(why.clone())
        } else if self.paused {
            Phase::Paused
        } else if !self.in_swarm {
            // Not seeding or downloading while the tracker does not list us.
            Phase::Joining
        } else if self.swarm.is_complete() {
            if self.options.seed {
                Phase::Seeding
            } else {
                Phase::Complete
            }
        } else {
            Phase::Downloading
        }
    }

    /// Publishes the status at once if the phase changed since the last publication:
    /// whoever waits for completion or failure learns of it now, not at the next tick.
    pub(super) fn publish_phase_change(&mut self) {
        if self.status.borrow().phase != self.phase() {
            self.publish_status();
        }
    }

    pub(super) fn publish_status(&mut self) {
        let now = Instant::now();
        let uploaded = self.entry.uploaded.load(Ordering::Relaxed);
        self.rates.update(now, self.downloaded, uploaded);
        let progress = self.swarm.progress();
        let phase = self.phase();
        let mut neighbours: Vec<NeighbourStatus> = self
            .swarm
            .peers()
            .into_iter()
            .filter(|p| p.state != ContactState::Idle)
            .map(|p| NeighbourStatus {
                fingerprint: p.peer.to_string(),
                addr: p.addr,
                state: match p.state {
                    ContactState::Idle => "idle",
                    ContactState::BackedOff(_) => "backed off",
                    ContactState::Connecting => "connecting",
                    ContactState::Connected => "connected",
                }
                .to_string(),
                rate: p.rate,
                in_flight: p.in_flight,
                pieces: p.pieces,
            })
            .collect();
        // The core counts only the neighbours it downloads from; a link it does not use
        // (every link of a seeder, which downloads nothing) is still a neighbour that
        // downloads from us. Where the core has a state (backed off, say), it says more
        // than "a link is open", so it stays.
        for (peer, (link, bitfield)) in &self.links {
            let fingerprint = peer.to_string();
            match neighbours.iter_mut().find(|n| n.fingerprint == fingerprint) {
                Some(_) => {}
                None => neighbours.push(NeighbourStatus {
                    fingerprint,
                    addr: link.connection.remote_address(),
                    state: "connected".into(),
                    rate: 0.0,
                    in_flight: 0,
                    pieces: bitfield.count(),
                }),
            }
        }
        let status = TorrentStatus {
            phase,
            pieces_have: progress.pieces_have,
            pieces_total: progress.pieces_total,
            bytes_have: progress.bytes_have,
            bytes_total: progress.bytes_total,
            download_rate: self.rates.down,
            upload_rate: self.rates.up,
            downloaded: self.downloaded,
            uploaded,
            piece_map: piece_map(self.swarm.have()),
            neighbours,
            tracker: self.tracker.current_node(),
            tracker_failovers: self.tracker.failovers(),
            banned: self.banned,
            ..initial_status(&self.entry.torrent, &self.path)
        };
        self.status.send_replace(status);
    }
}

/// A piece map of at most 1,024 characters: `#` held, `.` missing, `+` partly held when
/// several pieces share one character.
fn piece_map(have: &Bitfield) -> String {
    let count = have.len();
    if count == 0 {
        return String::new();
    }
    let width = count.min(1024);
    (0..width)
        .map(|i| {
            let start = u64::from(i) * u64::from(count) / u64::from(width);
            let end = (u64::from(i) + 1) * u64::from(count) / u64::from(width);
            let held = (start..end).filter(|&p| have.get(p as u32)).count() as u64;
            if held == end - start {
                '#'
            } else if held == 0 {
                '.'
            } else {
                '+'
            }
        })
        .collect()
}

/// Download and upload rates, smoothed over a few seconds.
pub(super) struct Rates {
    last: Instant,
    last_down: u64,
    last_up: u64,
    down: f64,
    up: f64,
}

impl Rates {
    pub(super) fn new(now: Instant) -> Self {
        Rates {
            last: now,
            last_down: 0,
            last_up: 0,
            down: 0.0,
            up: 0.0,
        }
    }

    pub(super) fn update(&mut self, now: Instant, down: u64, up: u64) {
        let dt = now.duration_since(self.last).as_secs_f64();
        if dt < 0.2 {
            return;
        }
        // An exponential moving average with a time constant of about 2 s.
        let alpha = (dt / 2.0).min(1.0);
        let down_now = (down - self.last_down) as f64 / dt;
        let up_now = up.saturating_sub(self.last_up) as f64 / dt;
        self.down += alpha * (down_now - self.down);
        self.up += alpha * (up_now - self.up);
        self.last = now;
        self.last_down = down;
        self.last_up = up;
    }
}
