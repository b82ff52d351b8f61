//! The links to neighbours: dialing, keeping the current link, and telling them all.

use std::time::Instant;

use certs::Fingerprint;
use tracker::Bitfield;
use tracker::api::PeerInfo;

use super::TorrentTask;
use crate::runtime::events::Event;
use crate::runtime::link::{self, Link};
use crate::wire::Control;

impl TorrentTask {
    /// Makes `link` the neighbour's current link; an older one is kept until it ends.
    pub(super) fn add_link(&mut self, peer: Fingerprint, link: Link, bitfield: Bitfield) {
        if let Some((old, _)) = self.links.insert(peer, (link, bitfield)) {
            self.replaced.insert(old.id, old);
        }
    }

    /// Closes the link to `peer`, which neither side downloads from: its control channel
    /// ends (the QUIC connection may carry other torrents' links and stays). The core
    /// forgets the uploads the neighbour still had waiting.
    pub(super) fn close_link(&mut self, peer: Fingerprint, now: Instant) {
        if self.links.remove(&peer).is_some() {
            self.swarm.handle_disconnected(peer, now);
        }
    }

    /// Sends `message` on every link.
    pub(super) fn broadcast(&self, message: Control) {
        self.broadcast_except(message, &[]);
    }

    /// Sends `message` on every link but those to `except`.
    pub(super) fn broadcast_except(&self, message: Control, except: &[Fingerprint]) {
        for (peer, (link, _)) in &self.links {
            if !except.contains(peer) {
                let _ = link.control.send(message.clone());
            }
        }
    }

    pub(super) fn connect(&mut self, info: PeerInfo) {
        let peer = info.fingerprint;
        if let Some((link, bitfield)) = self.links.get(&peer) {
            // Already linked (it dialled us, or an earlier link is still up): say that
            // we download from it again, should we have said otherwise.
            let _ = link.control.send(Control::Interested(true));
            let bitfield = bitfield.clone();
            let now = Instant::now();
            self.swarm.handle_connected(peer, now);
            self.swarm.handle_bitfield(peer, bitfield, now);
            return;
        }
        if self.shared.is_banned(&peer) {
            self.swarm.handle_connect_failed(peer, Instant::now());
            return;
        }
        let shared = self.shared.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        let have = self.entry.store.have();
        tokio::spawn(async move {
            let event = match link::dial(&shared, &info, info_hash, have).await {
                Ok((link, bitfield, recv)) => Event::Connected {
                    info,
                    link,
                    bitfield,
                    recv,
                },
                Err(why) => Event::ConnectFailed { peer, why },
            };
            let _ = events.send(event);
        });
    }
}
