//! The serving side: connections other peers open to this one. A control channel's
//! `Hello` makes the dialler a neighbour of the torrent it names; a piece request is
//! answered from disk, after the piece is verified again, or with "not have".

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use certs::Fingerprint;
use tracker::api::PeerInfo;
use transport::{ChannelReceiver, ChannelSender, ChunkResponder, Connection, Received};

use super::buffers::PooledBuffer;
use super::events::Event;
use super::link::{HELLO_TIMEOUT, Link, spawn_reader, spawn_writer};
use super::{Entry, Shared};
use crate::storage::StorageError;
use crate::wire::{Control, PieceHeader, PieceRequest, STREAM_KINDS};

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(shared: Arc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        match incoming {
            Ok(connection) => {
                if shared.is_banned(&connection.remote_fingerprint()) {
                    connection.close(1, "banned: sent corrupt data");
                    continue;
                }
                tokio::spawn(serve_connection(shared.clone(), connection));
            }
            Err(e) => tracing::debug!("refused a peer connection: {e}"),
        }
    }
}

/// Serves every stream the remote opens on `connection` (also used for connections this
/// peer dialled: the neighbour may request pieces over them too).
pub(crate) async fn serve_connection(shared: Arc<Shared>, connection: Connection) {
    while let Ok(stream) = connection.accept().await {
        let shared = shared.clone();
        let connection = connection.clone();
        tokio::spawn(async move {
            match stream.read_kinds::<PieceRequest>(&STREAM_KINDS).await {
                Ok(Received::Chunk(request, responder)) => {
                    let peer = connection.remote_fingerprint();
                    serve_piece(&shared, peer, request, responder).await;
                }
                Ok(Received::Channel(send, recv)) => {
                    accept_channel(&shared, connection, send, recv).await;
                }
                // Refused by the transport (other kinds are not read).
                Ok(Received::Request(..) | Received::Message(_)) => {}
                // The transport reset the stream with the matching error code.
                Err(e) => tracing::debug!("bad stream from a peer: {e}"),
            }
        });
    }
}

async fn accept_channel(
    shared: &Shared,
    connection: Connection,
    mut send: ChannelSender,
    mut recv: ChannelReceiver,
) {
    let peer = connection.remote_fingerprint();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, recv.recv::<Control>()).await;
    let Ok(Ok(Some(Control::Hello {
        info_hash,
        bitfield,
    }))) = hello
    else {
        tracing::debug!(%peer, "no valid Hello on a control channel");
        return;
    };
    let Some(entry) = shared.entry(&info_hash) else {
        let _ = send
            .send(&Control::Refuse(format!("not serving {info_hash}")))
            .await;
        let _ = send.finish();
        return;
    };
    if !entry.serving.load(Ordering::Relaxed) {
        let _ = send.send(&Control::Refuse("paused".into())).await;
        let _ = send.finish();
        return;
    }
    let piece_count = entry.torrent.piece_count();
    if bitfield.len() != piece_count {
        let _ = send
            .send(&Control::Refuse(format!(
                "a bitfield of {} pieces for a torrent of {piece_count}",
                bitfield.len()
            )))
            .await;
        let _ = send.finish();
        return;
    }
    let ours = entry.store.have();
    if send
        .send(&Control::Hello {
            info_hash,
            bitfield: ours,
        })
        .await
        .is_err()
    {
        return;
    }
    let info = PeerInfo {
        fingerprint: peer,
        addr: connection.remote_address(),
        pieces: bitfield.count(),
    };
    let link = Link {
        id: super::link::next_id(),
        connection,
        control: spawn_writer(send),
        remote_interested: true,
    };
    let id = link.id;
    if entry
        .events
        .send(Event::Incoming {
            info,
            link,
            bitfield,
        })
        .is_ok()
    {
        spawn_reader(recv, peer, id, piece_count, entry.events.clone());
    }
}

/// Longest a request waits for the torrent's task to grant it a slot. The core grants or
/// refuses long before (see `swarm::upload`); this only bounds a task that has stopped.
const GRANT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Tells the torrent's task that a granted upload ended, however it ends (including when
/// the serving task is cancelled), so that its slot is never lost.
struct UploadSlot<'a> {
    entry: &'a Entry,
    peer: Fingerprint,
    piece: u32,
    bytes: u64,
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        let _ = self.entry.events.send(Event::Uploaded {
            peer: self.peer,
            piece: self.piece,
            bytes: self.bytes,
        });
    }
}

async fn serve_piece(
    shared: &Shared,
    peer: Fingerprint,
    request: PieceRequest,
    responder: ChunkResponder,
) {
    let Some(entry) = shared.entry(&request.info_hash) else {
        let _ = responder
            .respond(&PieceHeader::UnknownTorrent, Bytes::new())
            .await;
        return;
    };
    if !entry.serving.load(Ordering::Relaxed) {
        let _ = responder.respond(&PieceHeader::Busy, Bytes::new()).await;
        return;
    }
    let piece = request.piece;
    if !entry.store.has(piece) {
        let _ = responder.respond(&PieceHeader::NotHave, Bytes::new()).await;
        return;
    }
    // The swarm core decides which request is served next (see `swarm::upload`).
    let (grant, granted) = tokio::sync::oneshot::channel();
    if entry
        .events
        .send(Event::UploadRequest {
            peer,
            piece,
            requester_holds: request.holds,
            grant,
        })
        .is_err()
    {
        let _ = responder.respond(&PieceHeader::Busy, Bytes::new()).await;
        return;
    }
    match tokio::time::timeout(GRANT_TIMEOUT, granted).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) if !entry.store.has(piece) => {
            let _ = responder.respond(&PieceHeader::NotHave, Bytes::new()).await;
            return;
        }
        _ => {
            let _ = responder.respond(&PieceHeader::Busy, Bytes::new()).await;
            return;
        }
    }
    let mut slot = UploadSlot {
        entry: &entry,
        peer,
        piece,
        bytes: 0,
    };
    let Ok(_permit) = shared.serving.clone().acquire_owned().await else {
        return;
    };
    tracing::trace!(piece, "serving");
    match read_piece(&entry, piece).await {
        Ok(data) => {
            let len = data.len() as u64;
            // The slot is held until the requester has the bytes: the core's order of
            // uploads (see `swarm::upload`) decides who the uplink serves only if a
            // slot lasts as long as the uplink is busy with it, not while QUIC buffers.
            let sent = responder
                .respond_delivered(&PieceHeader::Data { len }, Bytes::from_owner(data))
                .await;
            tracing::trace!(piece, "served: {sent:?}");
            if sent.is_ok() {
                entry.uploaded.fetch_add(len, Ordering::Relaxed);
                slot.bytes = len;
            }
        }
        Err(StorageError::PieceLost { .. }) => {
            // The bytes on disk are gone or changed: say so, stop advertising the piece
            // and tell the tracker (the torrent's task does both).
            let _ = responder.respond(&PieceHeader::NotHave, Bytes::new()).await;
            let _ = entry.events.send(Event::LocalPieceLost(piece));
        }
        Err(e) => {
            tracing::warn!(piece, "cannot read a piece to serve it: {e}");
            let _ = responder.respond(&PieceHeader::Busy, Bytes::new()).await;
        }
    }
}

/// Reads (and verifies) a piece into a buffer of the torrent's pool, off the async threads.
async fn read_piece(entry: &Arc<Entry>, piece: u32) -> Result<PooledBuffer, StorageError> {
    let len = entry
        .torrent
        .piece_len(piece)
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0);
    let mut buffer = entry.buffers.take(len);
    let store = entry.store.clone();
    tokio::task::spawn_blocking(move || store.read_piece_into(piece, &mut buffer).map(|()| buffer))
        .await
        .unwrap_or_else(|e| {
            Err(StorageError::Io {
                action: "reading a piece of",
                path: entry.torrent.name().into(),
                error: std::io::Error::other(e.to_string()),
            })
        })
}
