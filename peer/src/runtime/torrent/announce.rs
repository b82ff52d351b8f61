//! The tracker calls of a torrent: reporting pieces, joining again, the heartbeat and
//! asking for more peers.

use certs::Fingerprint;
use tracker::api::ApiError;
use tracker::client::TrackerError;

use super::TorrentTask;
use crate::runtime::events::Event;

impl TorrentTask {
    /// Asks the tracker for more peers, leaving out `exclude`.
    pub(super) fn ask_for_peers(&mut self, exclude: Vec<Fingerprint>, want: u32) {
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            match tracker.more_peers(info_hash, exclude, want).await {
                Ok(peers) => {
                    let _ = events.send(Event::PeersOffered(peers));
                }
                Err(e) => tracing::debug!("asking the tracker for peers: {e}"),
            }
        });
    }

    /// Asks the tracker which peers hold `piece`.
    pub(super) fn ask_for_holders(&mut self, piece: u32) {
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            match tracker.peers_with_piece(info_hash, piece, 5).await {
                Ok(peers) => {
                    let _ = events.send(Event::PeersOffered(peers));
                }
                Err(e) => tracing::debug!("asking the tracker for piece {piece}: {e}"),
            }
        });
    }

    /// Tells the tracker these pieces were lost.
    pub(super) fn report_not_have(&mut self, pieces: Vec<u32>) {
        let tracker = self.tracker.clone();
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            if let Err(e) = tracker.not_have(info_hash, pieces).await {
                tracing::warn!("telling the tracker of a lost piece: {e}");
            }
        });
    }

    /// Tells the tracker this peer is alive, then reports the pieces whose report failed.
    pub(super) fn heartbeat(&mut self) {
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let pending = std::mem::take(&mut self.unreported);
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            if let Err(e) = tracker.heartbeat(info_hash).await {
                if not_in_swarm(&e) {
                    // Expired: join again at once, with every piece held
                    // (which covers the pending ones, kept all the same).
                    tracing::warn!("{e}");
                    let _ = events.send(Event::ReportFailed {
                        have: pending,
                        rejoin: true,
                    });
                    return;
                }
                tracing::warn!("heartbeat to the tracker failed: {e}");
            }
            if !pending.is_empty()
                && let Err(e) = tracker.have(info_hash, pending.clone()).await
            {
                // Kept for the next report whatever the failure; a peer the
                // tracker expired joins again first.
                let _ = events.send(Event::ReportFailed {
                    have: pending,
                    rejoin: not_in_swarm(&e),
                });
            }
        });
    }

    pub(super) fn report(&mut self, pieces: Vec<u32>) {
        if pieces.is_empty() {
            return;
        }
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            match tracker.have(info_hash, pieces.clone()).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!("reporting pieces to the tracker: {e}");
                    // Expired from the swarm (for example after a long partition): join
                    // again, then report.
                    let _ = events.send(Event::ReportFailed {
                        have: pieces,
                        rejoin: not_in_swarm(&e),
                    });
                }
            }
        });
    }

    /// Joins the swarm again (once at a time), saying every piece held.
    pub(super) fn rejoin(&mut self) {
        self.in_swarm = false;
        if self.rejoining {
            return;
        }
        self.rejoining = true;
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        let have = self.entry.store.have();
        let addr = self.shared.advertise;
        let want = self.shared.config.swarm.max_neighbours as u32;
        tokio::spawn(async move {
            let event = match tracker.join(info_hash, addr, have, want).await {
                Ok(joined) => Event::Rejoined(joined.neighbours),
                Err(e) => {
                    tracing::warn!("joining the swarm again: {e}");
                    Event::RejoinFailed
                }
            };
            let _ = events.send(event);
        });
    }
}

/// Whether the tracker said this peer is not in the swarm, so it must join again.
fn not_in_swarm(e: &TrackerError) -> bool {
    matches!(e, TrackerError::Refused(ApiError::NotInSwarm(_)))
}
