//! Feeds the events the task receives to the swarm core.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::TorrentTask;
use crate::runtime::events::{Event, Fetch};
use crate::runtime::link;
use crate::wire::Control;

impl TorrentTask {
    /// Feeds one event to the core. Returns false when the task should end.
    pub(super) fn handle(&mut self, event: Event) -> bool {
        let now = Instant::now();
        match event {
            Event::Connected {
                info,
                link,
                bitfield,
                recv,
            } => {
                let peer = info.fingerprint;
                link::spawn_reader(recv, peer, link.id, self.piece_count(), self.events.clone());
                tokio::spawn(crate::runtime::serve::serve_connection(
                    self.shared.clone(),
                    link.connection.clone(),
                ));
                self.add_link(peer, link, bitfield.clone());
                self.swarm.handle_connected(peer, now);
                self.swarm.handle_bitfield(peer, bitfield, now);
            }
            Event::ConnectFailed { peer, why } => {
                tracing::debug!(%peer, "cannot reach neighbour: {why}");
                self.swarm.handle_connect_failed(peer, now);
            }
            Event::Incoming {
                info,
                link,
                bitfield,
            } => {
                let peer = info.fingerprint;
                if self.swarm.is_banned(&peer) {
                    link.connection.close(1, "banned: sent corrupt data");
                    return true;
                }
                self.add_link(peer, link, bitfield.clone());
                self.swarm.handle_peers_offered(vec![info], now);
                self.swarm.handle_connected(peer, now);
                self.swarm.handle_bitfield(peer, bitfield, now);
            }
            Event::Have { peer, pieces } => {
                if let Some((_, bitfield)) = self.links.get_mut(&peer) {
                    for &piece in &pieces {
                        bitfield.set(piece);
                    }
                }
                self.swarm.handle_haves(peer, &pieces, now);
            }
            Event::Lost { peer, piece } => {
                if let Some((_, bitfield)) = self.links.get_mut(&peer) {
                    bitfield.clear(piece);
                }
                self.swarm.handle_not_have(peer, piece, now);
            }
            Event::Interest {
                peer,
                link,
                interested,
            } => {
                if let Some((current, _)) = self.links.get_mut(&peer)
                    && current.id == link
                {
                    current.remote_interested = interested;
                    if !interested && !self.swarm.wants(&peer) {
                        self.close_link(peer, now);
                    }
                }
            }
            Event::LinkLost { peer, link } => {
                if self.replaced.remove(&link).is_none()
                    && self.links.get(&peer).is_some_and(|(l, _)| l.id == link)
                {
                    self.links.remove(&peer);
                    self.abort_fetches_of(peer);
                    self.swarm.handle_disconnected(peer, now);
                }
            }
            Event::Fetched {
                peer,
                piece,
                outcome,
            } => {
                self.fetches.remove(&(peer, piece));
                match outcome {
                    Fetch::Verified(len) => {
                        self.downloaded += len;
                        self.swarm.handle_piece_verified(peer, piece, now);
                        self.checkpoint_if_due(false);
                    }
                    Fetch::Corrupt => {
                        // Pieces already in flight from it may fail too: count it once.
                        if !self.swarm.is_banned(&peer) {
                            tracing::warn!(%peer, piece, "neighbour sent a corrupt piece: banned");
                            self.banned += 1;
                        }
                        self.shared.ban(peer);
                        self.swarm.handle_piece_corrupt(peer, piece, now);
                    }
                    Fetch::NotHave => self.swarm.handle_not_have(peer, piece, now),
                    Fetch::Busy => self.swarm.handle_busy(peer, piece, now),
                    Fetch::Failed(why) => {
                        tracing::debug!(%peer, piece, "piece request failed: {why}");
                        self.swarm.handle_request_failed(peer, piece, now);
                    }
                    Fetch::LocalFailure(why) => {
                        self.fail(why);
                    }
                }
            }
            Event::PeersOffered(peers) => self.swarm.handle_peers_offered(peers, now),
            Event::ReportFailed { have, rejoin } => {
                self.unreported.extend(have);
                if rejoin {
                    self.rejoin();
                }
            }
            Event::Rejoined(neighbours) => {
                tracing::info!(torrent = %self.entry.torrent.name(), "back in the swarm");
                self.rejoining = false;
                self.in_swarm = true;
                self.swarm.handle_peers_offered(neighbours, now);
            }
            Event::RejoinFailed => self.rejoining = false,
            Event::StorageFailed(why) => self.fail(why),
            Event::UploadRequest {
                peer,
                piece,
                requester_holds,
                grant,
            } => {
                // What the requester says, bounded by the torrent. Its announcements
                // cannot tell: it spares us news of pieces we announced ourselves.
                let requester_pieces = requester_holds.min(self.swarm.have().len());
                // A repeated request replaces the earlier one, whose task then answers busy.
                self.upload_grants.insert((peer, piece), grant);
                self.swarm
                    .handle_upload_requested(peer, piece, requester_pieces, now);
            }
            Event::Uploaded { peer, piece, bytes } => {
                self.swarm.handle_upload_done(peer, piece, bytes, now);
            }
            Event::LocalPieceLost(piece) => {
                // The store cleared the piece when reading it failed verification.
                self.swarm.handle_local_piece_lost(piece, now);
                self.broadcast(Control::Lost(piece));
            }
            Event::Pause(pause) => {
                self.paused = pause;
                self.entry
                    .serving
                    .store(!pause && self.serves_when_complete(), Ordering::Relaxed);
                if pause {
                    for (_, task) in self.fetches.drain() {
                        task.abort();
                    }
                    for (peer, _) in self.links.drain() {
                        self.swarm.handle_disconnected(peer, now);
                    }
                }
            }
            Event::Remove => {
                for (_, task) in self.fetches.drain() {
                    task.abort();
                }
                self.entry.serving.store(false, Ordering::Relaxed);
                self.checkpoint_if_due(true);
                let tracker = self.tracker.clone();
                let info_hash = self.entry.torrent.info_hash();
                tokio::spawn(async move {
                    let _ = tracker.leave(info_hash).await;
                });
                return false;
            }
        }
        true
    }

    pub(super) fn serves_when_complete(&self) -> bool {
        self.options.seed || !self.swarm.is_complete()
    }

    pub(super) fn piece_count(&self) -> u32 {
        self.entry.torrent.piece_count()
    }

    pub(super) fn fail(&mut self, why: String) {
        tracing::error!("{}: {why}", self.entry.torrent.name());
        self.failed = Some(why);
        self.paused = true;
        for (_, task) in self.fetches.drain() {
            task.abort();
        }
    }
}
