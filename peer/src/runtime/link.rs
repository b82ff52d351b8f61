//! A link to a neighbour for one torrent: the QUIC connection and the control channel,
//! with the `Hello` exchange, a writer task that sends `Have`/`Lost` without blocking the
//! torrent's task, and a reader task that turns the neighbour's messages into events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use certs::Fingerprint;
use tokio::sync::mpsc;
use tracker::Bitfield;
use tracker::api::PeerInfo;
use tracker::torrent::InfoHash;
use transport::{ChannelReceiver, ChannelSender, Connection, Expect};

use super::Shared;
use super::events::Event;
use crate::wire::{ALPN_PEER, Control};

/// How long the `Hello` exchange may take: a neighbour that has not answered by then is
/// treated as unreachable.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Numbers links, so that the end of a link that was since replaced is told apart from
/// the end of the current one.
static NEXT_LINK_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh link id.
pub(crate) fn next_id() -> u64 {
    NEXT_LINK_ID.fetch_add(1, Ordering::Relaxed)
}

/// An established link.
pub(crate) struct Link {
    /// Unique in this process.
    pub(crate) id: u64,
    pub(crate) connection: Connection,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    /// Whether the neighbour downloads from us, as it last said (it is taken to until it
    /// says otherwise).
    pub(crate) remote_interested: bool,
}

/// Dials `info`, expecting its fingerprint, and exchanges `Hello`s for `info_hash`.
/// Returns the link, the neighbour's bitfield and the channel's receiving half.
pub(crate) async fn dial(
    shared: &Shared,
    info: &PeerInfo,
    info_hash: InfoHash,
    have: Bitfield,
) -> Result<(Link, Bitfield, ChannelReceiver), String> {
    let work = async {
        let connection = shared
            .dialer
            .dial(info.addr, &Expect::Fingerprint(info.fingerprint), ALPN_PEER)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, mut recv) = connection.open_channel().await.map_err(|e| e.to_string())?;
        send.send(&Control::Hello {
            info_hash,
            bitfield: have,
        })
        .await
        .map_err(|e| e.to_string())?;
        match recv.recv::<Control>().await {
            Ok(Some(Control::Hello {
                info_hash: theirs,
                bitfield,
            })) if theirs == info_hash => Ok((connection, send, recv, bitfield)),
            Ok(Some(Control::Refuse(why))) => Err(format!("refused: {why}")),
            Ok(Some(other)) => Err(format!("expected Hello, got {other:?}")),
            Ok(None) => Err("closed the channel before Hello".into()),
            Err(e) => Err(e.to_string()),
        }
    };
    let (connection, send, recv, bitfield) = tokio::time::timeout(HELLO_TIMEOUT, work)
        .await
        .map_err(|_| format!("no Hello within {HELLO_TIMEOUT:?}"))??;
    let control = spawn_writer(send);
    Ok((
        Link {
            id: next_id(),
            connection,
            control,
            remote_interested: true,
        },
        bitfield,
        recv,
    ))
}

/// Starts the task that sends control messages queued on the returned sender, coalescing
/// those that queue up meanwhile into one write.
pub(crate) fn spawn_writer(mut send: ChannelSender) -> mpsc::UnboundedSender<Control> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Control>();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if send.push(&message).is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if send.push(&more).is_err() {
                    return;
                }
            }
            if send.flush().await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    });
    tx
}

/// Starts the task that reads the neighbour's control messages and reports them; when
/// the channel ends or breaks the link is reported lost. Messages about pieces past the
/// torrent's end, and empty announcements, are a protocol violation and end the link.
pub(crate) fn spawn_reader(
    mut recv: ChannelReceiver,
    peer: Fingerprint,
    link: u64,
    piece_count: u32,
    events: mpsc::UnboundedSender<Event>,
) {
    tokio::spawn(async move {
        loop {
            match recv.recv::<Control>().await {
                Ok(Some(Control::Have(pieces)))
                    if !pieces.is_empty() && pieces.iter().all(|&p| p < piece_count) =>
                {
                    if events.send(Event::Have { peer, pieces }).is_err() {
                        return;
                    }
                }
                Ok(Some(Control::Lost(piece))) if piece < piece_count => {
                    if events.send(Event::Lost { peer, piece }).is_err() {
                        return;
                    }
                }
                Ok(Some(Control::Interested(interested))) => {
                    let event = Event::Interest {
                        peer,
                        link,
                        interested,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Ok(Some(Control::Hello { .. })) => {}
                Ok(Some(other)) => {
                    tracing::debug!(%peer, "protocol violation on the control channel: {other:?}");
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%peer, "control channel broke: {e}");
                    break;
                }
            }
        }
        let _ = events.send(Event::LinkLost { peer, link });
    });
}
