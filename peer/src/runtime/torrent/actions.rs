//! Carries out what the swarm core decided.

use std::sync::atomic::Ordering;
use std::time::Instant;

use certs::Fingerprint;

use super::TorrentTask;
use crate::swarm::Action;
use crate::wire::Control;

impl TorrentTask {
    /// Carries out what the core decided.
    pub(super) fn carry_out_actions(&mut self) {
        while let Some(action) = self.swarm.poll_output() {
            tracing::trace!(me = %self.shared.advertise, "action {action:?}");
            if self.paused && !matches!(action, Action::ReportNotHave(_)) {
                match action {
                    Action::Upload { peer, piece } => self.answer_upload(peer, piece, true, false),
                    Action::RefuseUpload { peer, piece } => {
                        self.answer_upload(peer, piece, false, false)
                    }
                    _ => {}
                }
                continue;
            }
            match action {
                Action::Connect(info) => self.connect(info),
                Action::Disconnect { peer, banned } => {
                    self.abort_fetches_of(peer);
                    if banned {
                        if let Some((link, _)) = self.links.remove(&peer) {
                            link.connection.close(1, "banned: sent corrupt data");
                        }
                    } else if let Some((link, _)) = self.links.get(&peer) {
                        // The core stops downloading from it. The link stays up while
                        // the neighbour downloads from us; once neither does, it closes.
                        if link.remote_interested {
                            let _ = link.control.send(Control::Interested(false));
                        } else {
                            self.close_link(peer, Instant::now());
                        }
                    }
                }
                Action::Request { peer, piece } => self.request(peer, piece),
                Action::Upload { peer, piece } => self.answer_upload(peer, piece, true, true),
                Action::RefuseUpload { peer, piece } => {
                    self.answer_upload(peer, piece, false, false)
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
                Action::Advertise { pieces, known_to } => {
                    self.broadcast_except(Control::Have(pieces), &known_to)
                }
                Action::Complete => {
                    self.checkpoint_if_due(true);
                    self.entry
                        .serving
                        .store(self.options.seed && !self.paused, Ordering::Relaxed);
                }
            }
        }
    }

    /// Tells the serving task waiting on `(peer, piece)` whether to serve. An upload the
    /// core `granted` that will not run (the torrent is paused, or the task is gone with
    /// the requester's stream) frees its slot at once: a serving task reports only the
    /// uploads it was told to run.
    fn answer_upload(&mut self, peer: Fingerprint, piece: u32, granted: bool, serve: bool) {
        let delivered = self
            .upload_grants
            .remove(&(peer, piece))
            .is_some_and(|grant| grant.send(serve).is_ok());
        if granted && !(serve && delivered) {
            self.swarm
                .handle_upload_done(peer, piece, 0, std::time::Instant::now());
        }
    }
}
