//! The download side: fetching pieces from neighbours, verifying and writing them.

use std::sync::Arc;
use std::time::Instant;

use certs::Fingerprint;

use super::TorrentTask;
use crate::runtime::Entry;
use crate::runtime::events::{Event, Fetch};
use crate::storage::StorageError;
use crate::wire::{PieceHeader, PieceRequest};

impl TorrentTask {
    pub(super) fn request(&mut self, peer: Fingerprint, piece: u32) {
        let Some((link, _)) = self.links.get(&peer) else {
            self.swarm
                .handle_request_failed(peer, piece, Instant::now());
            return;
        };
        let Some(len) = self.entry.torrent.piece_len(piece) else {
            return;
        };
        let connection = link.connection.clone();
        let entry = self.entry.clone();
        let events = self.events.clone();
        let budget = self.shared.download_buffer.clone();
        let budget_kib = u32::try_from(self.shared.config.download_buffer >> 10)
            .unwrap_or(u32::MAX)
            .max(1);
        let task = tokio::spawn(async move {
            let outcome = fetch(&connection, &entry, (&budget, budget_kib), piece, len).await;
            let _ = events.send(Event::Fetched {
                peer,
                piece,
                outcome,
            });
        });
        if let Some(old) = self.fetches.insert((peer, piece), task) {
            old.abort();
        }
    }

    pub(super) fn abort_fetches_of(&mut self, peer: Fingerprint) {
        self.fetches.retain(|(p, _), task| {
            if *p == peer {
                task.abort();
                false
            } else {
                true
            }
        });
    }
}

/// Downloads one piece from a neighbour, verifies it and writes it.
async fn fetch(
    connection: &transport::Connection,
    entry: &Arc<Entry>,
    (budget, budget_kib): (&Arc<tokio::sync::Semaphore>, u32),
    piece: u32,
    len: u64,
) -> Fetch {
    // A piece larger than the whole budget is fetched alone.
    let kib = u32::try_from(len.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(budget_kib);
    let Ok(_permit) = budget.clone().acquire_many_owned(kib).await else {
        return Fetch::Failed("shutting down".into());
    };
    let request = PieceRequest {
        info_hash: entry.torrent.info_hash(),
        piece,
        holds: entry.store.held(),
    };
    tracing::trace!(piece, remote = %connection.remote_address(), "requesting");
    let (header, mut body) = match connection.request_chunk::<_, PieceHeader>(&request).await {
        Ok(answer) => answer,
        Err(e) => return Fetch::Failed(e.to_string()),
    };
    match header {
        PieceHeader::Data { len: sent } if sent == len => {}
        PieceHeader::Data { len: sent } => {
            return Fetch::Failed(format!("announced {sent} bytes for a piece of {len}"));
        }
        PieceHeader::NotHave => return Fetch::NotHave,
        PieceHeader::UnknownTorrent => return Fetch::Failed("does not serve this torrent".into()),
        PieceHeader::Busy => return Fetch::Busy,
    }
    let Ok(expected) = usize::try_from(len) else {
        return Fetch::Failed("piece too large for this machine".into());
    };
    // One copy out of QUIC's buffers into a reused piece buffer: the hash then runs over
    // contiguous memory at full speed and the piece is written with one call per file,
    // covering whole pages (partial-page writes make the file system zero the rest).
    let mut buffer = entry.buffers.take(expected);
    if let Err(e) = body.read_exact_body(&mut buffer).await {
        return Fetch::Failed(e.to_string());
    }
    tracing::trace!(piece, "received");
    let store = entry.store.clone();
    let written = tokio::task::spawn_blocking(move || store.write_piece(piece, &buffer)).await;
    match written {
        Ok(Ok(())) => Fetch::Verified(len),
        Ok(Err(StorageError::HashMismatch { .. } | StorageError::WrongLength { .. })) => {
            Fetch::Corrupt
        }
        Ok(Err(e)) => Fetch::LocalFailure(e.to_string()),
        Err(e) => Fetch::LocalFailure(format!("writing piece {piece}: {e}")),
    }
}
