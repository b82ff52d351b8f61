//! The peer protocol's error cases on real QUIC (PROTOCOL.md sections 2 and 8): raw
//! streams opened to a seeder running in this process, and the code each one ends with.

use std::time::Duration;

use crate::common::*;
use peer::wire::{ALPN_PEER, MAX_FRAME_LEN, PieceHeader, PieceRequest};
use tracker::torrent::Torrent;
use transport::{Connection, Endpoint, Expect, StreamErrorCode};

/// A tracker cluster, a seeder of a 5-piece torrent, and a connection to the seeder.
struct Setup {
    _dir: tempfile::TempDir,
    _cluster: tracker::dev::DevCluster,
    _seeder: peer::runtime::Peer,
    _endpoint: Endpoint,
    torrent: Torrent,
    connection: Connection,
}

/// The header the seeder answers `request` with.
async fn header_for(s: &Setup, request: &impl serde::Serialize) -> PieceHeader {
    let (header, _body) = s
        .connection
        .request_chunk::<_, PieceHeader>(request)
        .await
        .unwrap();
    header
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cluster = tracker_cluster(dir.path()).await;
    let (torrent, _file, seeder, _handle) =
        seeded_torrent(dir.path(), &cluster, 5 * 16384, 16384).await;
    let endpoint = fresh_endpoint();
    let connection = endpoint
        .connect(
            seeder.endpoint().local_addr(),
            &Expect::Fingerprint(seeder.fingerprint()),
            ALPN_PEER,
        )
        .await
        .expect("dial the seeder");
    Setup {
        _dir: dir,
        _cluster: cluster,
        _seeder: seeder,
        _endpoint: endpoint,
        torrent,
        connection,
    }
}

/// The code the remote reset its half with, read within a few seconds.
async fn reset_code(recv: &mut quinn::RecvStream) -> StreamErrorCode {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match recv.read(&mut buf).await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the seeder ends its half");
    match read {
        Err(quinn::ReadError::Reset(code)) => StreamErrorCode::from_u64(code.into_inner()),
        other => panic!("expected the stream to be reset, got {other:?}"),
    }
}

/// Writes `bytes` on a new stream (finishing it if `finish`) and returns the stream.
async fn open_raw(
    connection: &Connection,
    bytes: &[u8],
    finish: bool,
) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, recv) = connection.quinn().open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    if finish {
        send.finish().unwrap();
    }
    (send, recv)
}

fn frame(kind: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![kind];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piece_request_that_ends_inside_its_frame_is_refused_with_malformed_frame() {
    let s = setup().await;
    // The stream ends inside the length, inside the body, or before any frame.
    for bytes in [vec![3u8, 0, 0], frame(3, 9, &[0x82, 0xa9]), vec![3]] {
        let (_send, mut recv) = open_raw(&s.connection, &bytes, true).await;
        assert_eq!(
            reset_code(&mut recv).await,
            StreamErrorCode::MalformedFrame,
            "{bytes:02x?}"
        );
    }
    // The connection carries on.
    let request = PieceRequest {
        info_hash: s.torrent.info_hash(),
        piece: 0,
        holds: 0,
    };
    assert_eq!(
        header_for(&s, &request).await,
        PieceHeader::Data { len: 16384 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_requesters_piece_count_is_served() {
    /// A piece request as peers sent it before `holds`.
    #[derive(serde::Serialize)]
    struct RequestWithoutHolds {
        info_hash: tracker::torrent::InfoHash,
        piece: u32,
    }
    let s = setup().await;
    let request = RequestWithoutHolds {
        info_hash: s.torrent.info_hash(),
        piece: 4,
    };
    assert_eq!(
        header_for(&s, &request).await,
        PieceHeader::Data { len: 16384 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_peer_protocols_one_mebibyte_is_refused_with_frame_too_large() {
    let s = setup().await;
    // One byte over: refused before the body is read (the seeder's endpoint also talks to
    // trackers, whose larger maximum must not apply here).
    let too_long = u32::try_from(MAX_FRAME_LEN + 1).unwrap();
    let (_send, mut recv) = open_raw(&s.connection, &frame(3, too_long, &[]), false).await;
    assert_eq!(reset_code(&mut recv).await, StreamErrorCode::FrameTooLarge);
    // Exactly the maximum is read (and found not to be a request).
    let at_most = u32::try_from(MAX_FRAME_LEN).unwrap();
    let mut bytes = frame(3, at_most, &[]);
    bytes.resize(5 + MAX_FRAME_LEN, 0xc1);
    let (_send, mut recv) = open_raw(&s.connection, &bytes, true).await;
    assert_eq!(reset_code(&mut recv).await, StreamErrorCode::MalformedFrame);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_kinds_the_peer_protocol_does_not_use_are_refused_with_unknown_stream_kind() {
    let s = setup().await;
    let request = rmp_serde::to_vec_named(&PieceRequest {
        info_hash: s.torrent.info_hash(),
        piece: 0,
        holds: 0,
    })
    .unwrap();
    for kind in [0x01u8, 0x02, 0x7f] {
        let bytes = frame(kind, request.len() as u32, &request);
        let (_send, mut recv) = open_raw(&s.connection, &bytes, true).await;
        assert_eq!(
            reset_code(&mut recv).await,
            StreamErrorCode::UnknownStreamKind,
            "kind {kind:#04x}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_control_frame_stops_the_channel_and_resets_the_seeders_half() {
    let s = setup().await;
    let cases = [
        (
            frame(4, 3, &[0xc1, 0xc1, 0xc1]),
            StreamErrorCode::MalformedFrame,
        ),
        (
            frame(4, u32::try_from(MAX_FRAME_LEN + 1).unwrap(), &[]),
            StreamErrorCode::FrameTooLarge,
        ),
    ];
    for (bytes, code) in cases {
        // The channel stays open on our side: the seeder must stop it and reset its half.
        let (send, mut recv) = open_raw(&s.connection, &bytes, false).await;
        assert_eq!(reset_code(&mut recv).await, code);
        let stopped = tokio::time::timeout(Duration::from_secs(5), send.stopped())
            .await
            .expect("the seeder stops our half")
            .unwrap();
        assert_eq!(stopped.map(|c| c.into_inner()), Some(code.to_u64()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piece_past_the_end_is_not_have_and_pieces_need_no_control_channel() {
    let s = setup().await;
    // No control channel was opened on this connection.
    let past = PieceRequest {
        info_hash: s.torrent.info_hash(),
        piece: s.torrent.piece_count(),
        holds: 0,
    };
    let (header, body) = s
        .connection
        .request_chunk::<_, PieceHeader>(&past)
        .await
        .unwrap();
    assert_eq!(header, PieceHeader::NotHave);
    assert!(body.read_to_end(0).await.unwrap().is_empty());
    let last = PieceRequest {
        info_hash: s.torrent.info_hash(),
        piece: s.torrent.piece_count() - 1,
        holds: 0,
    };
    let (header, body) = s
        .connection
        .request_chunk::<_, PieceHeader>(&last)
        .await
        .unwrap();
    assert_eq!(header, PieceHeader::Data { len: 16384 });
    let bytes: usize = body
        .read_to_end(16384)
        .await
        .unwrap()
        .iter()
        .map(|b| b.len())
        .sum();
    assert_eq!(bytes, 16384);
}
