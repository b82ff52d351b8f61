//! Carries out what the swarm core decided.

use std::sync::atomic::Ordering;

use super::TorrentTask;
use crate::swarm::Action;
use crate::wire::Control;

impl TorrentTask {
    /// Carries out what the core decided.
    pub(super) fn carry_out_actions(&mut self) {
        while let Some(action) = self.swarm.poll_output() {
            tracing::trace!(me = %self.shared.advertise, "action {action:?}");
            if self.paused && !matches!(action, Action::ReportNotHave(_)) {
                if let Action::Upload { peer, piece } | Action::RefuseUpload { peer, piece } =
                    action
                    && let Some(grant) = self.upload_grants.remove(&(peer, piece))
                {
                    let _ = grant.send(false);
                }
                continue;
            }
            match action {
                Action::Connect(info) => self.connect(info),
                Action::Disconnect { peer, banned } => {
                    self.abort_fetches_of(peer);
                    // The core stops downloading from it; the link stays up unless the
                    // neighbour is hostile, since it may be downloading from us.
                    if banned && let Some((link, _)) = self.links.remove(&peer) {
                        link.connection.close(1, "banned: sent corrupt data");
                    }
                }
                Action::Request { peer, piece } => self.request(peer, piece),
                Action::Upload { peer, piece } => {
                    let granted = self
                        .upload_grants
                        .remove(&(peer, piece))
                        .is_some_and(|grant| grant.send(true).is_ok());
                    if !granted {
                        // The requester's stream is gone: the slot is free again.
                        let now = std::time::Instant::now();
                        self.swarm.handle_upload_done(peer, piece, 0, now);
                    }
                }
                Action::RefuseUpload { peer, piece } => {
                    if let Some(grant) = self.upload_grants.remove(&(peer, piece)) {
                        let _ = grant.send(false);
                    }
                }
                Action::Cancel { peer, piece } => {
                    if let Some(task) = self.fetches.remove(&(peer, piece)) {
                        task.abort();
                    }
                }
                Action::AskTrackerForPeers { exclude, want } => self.ask_for_peers(exclude, want),
                Action::AskTrackerForPiece(piece) => self.ask_for_holders(piece),
                Action::ReportHave(mut pieces) => {
                    pieces.append(&mut self.unreported);
                    self.report(pieces);
                }
                Action::ReportNotHave(pieces) => self.report_not_have(pieces),
                Action::Heartbeat => self.heartbeat(),
                Action::Advertise(piece) => self.broadcast(Control::Have(piece)),
                Action::Complete => {
                    self.checkpoint_if_due(true);
                    self.entry
                        .serving
                        .store(self.options.seed && !self.paused, Ordering::Relaxed);
                }
            }
        }
    }
}
