//! Long-lived framed channels (stream kind 0x04): many frames each way on one stream,
//! coalesced writes, and the same framing errors and reset codes as one-shot streams.

use std::net::SocketAddr;

use certs::Identity;
use tokio::sync::mpsc;
use transport::{
    ALPN_PEER, ChannelReceiver, ChannelSender, Connection, Endpoint, EndpointConfig, Expect,
    InboundTrust, Received, StreamErrorCode, TransportError,
};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn endpoint(name: &str, alpns: &[&[u8]], max_frame: usize) -> Endpoint {
    let mut config = EndpointConfig::new(local(), InboundTrust::Open, alpns);
    config.max_frame = max_frame;
    Endpoint::bind(Identity::generate_self_signed(name).unwrap(), config).unwrap()
}

/// Echoes every `(id, text)` frame of every channel back as `(id, text.len())`, flushing
/// what it has answered whenever no more frames are buffered; reports channel errors.
fn serve(server: Endpoint) -> mpsc::UnboundedReceiver<TransportError> {
    let (errors_tx, errors) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(connection)) = server.accept().await {
            let errors_tx = errors_tx.clone();
            tokio::spawn(async move {
                while let Ok(stream) = connection.accept().await {
                    let errors_tx = errors_tx.clone();
                    tokio::spawn(async move {
                        if let Ok(Received::Channel(send, recv)) = stream.read::<()>().await
                            && let Err(e) = echo(send, recv).await
                        {
                            let _ = errors_tx.send(e);
                        }
                    });
                }
            });
        }
    });
    errors
}

async fn echo(mut send: ChannelSender, mut recv: ChannelReceiver) -> Result<(), TransportError> {
    loop {
        let mut frames = match recv.recv::<(u64, String)>().await {
            Ok(Some(frame)) => vec![frame],
            Ok(None) => return send.finish(),
            Err(e) => return Err(refused(send, e)),
        };
        loop {
            match recv.try_recv::<(u64, String)>() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return Err(refused(send, e)),
            }
        }
        for (id, text) in frames {
            send.push(&(id, text.len()))?;
        }
        send.flush().await?;
    }
}

/// Drops our half after a bad frame: the transport resets it with the frame's code
/// (PROTOCOL.md 2.2a), so the owner need not.
fn refused(send: ChannelSender, e: TransportError) -> TransportError {
    drop(send);
    e
}

async fn connected(max_frame: usize) -> (Connection, mpsc::UnboundedReceiver<TransportError>) {
    let server = endpoint("s", &[ALPN_PEER], max_frame);
    let errors = serve(server.clone());
    let client = endpoint("c", &[], max_frame);
    let connection = client
        .connect(
            server.local_addr(),
            &Expect::Fingerprint(server.fingerprint()),
            ALPN_PEER,
        )
        .await
        .unwrap();
    (connection, errors)
}

#[tokio::test]
async fn many_frames_travel_both_ways_on_one_channel_and_finish_cleanly() {
    let (connection, _errors) = connected(1 << 20).await;
    let (mut send, mut recv) = connection.open_channel().await.unwrap();
    // Ten coalesced writes of a thousand frames each.
    for batch in 0..10u64 {
        for i in 0..1000u64 {
            let id = batch * 1000 + i;
            send.push(&(id, "x".repeat((id % 50) as usize))).unwrap();
        }
        assert!(send.pending() > 0);
        send.flush().await.unwrap();
        assert_eq!(send.pending(), 0);
    }
    for id in 0..10_000u64 {
        let answer: (u64, usize) = recv.recv().await.unwrap().unwrap();
        assert_eq!(answer, (id, (id % 50) as usize));
    }
    send.finish().unwrap();
    assert_eq!(recv.recv::<(u64, usize)>().await.unwrap(), None);
}

#[tokio::test]
async fn a_frame_over_the_maximum_is_refused_locally_and_the_queue_survives() {
    let (connection, _errors) = connected(64).await;
    let (mut send, mut recv) = connection.open_channel().await.unwrap();
    send.push(&(1u64, "short".to_string())).unwrap();
    let err = send.push(&(2u64, "y".repeat(100))).unwrap_err();
    assert!(
        matches!(err, TransportError::FrameTooLarge { max: 64, .. }),
        "{err}"
    );
    send.flush().await.unwrap();
    assert_eq!(recv.recv::<(u64, usize)>().await.unwrap(), Some((1, 5)));
}

/// Writes `bytes` raw on the channel's stream (after the kind byte) and returns what the
/// client then reads: the server's reset code.
async fn send_raw_on_channel(connection: &Connection, bytes: &[u8]) -> TransportError {
    let (mut send, mut recv) = connection.quinn().open_bi().await.unwrap();
    let mut raw = vec![0x04];
    raw.extend_from_slice(bytes);
    let _ = send.write_all(&raw).await;
    let mut buf = [0u8; 64];
    match recv.read(&mut buf).await {
        Err(quinn::ReadError::Reset(code)) => {
            TransportError::StreamRejected(StreamErrorCode::from_u64(code.into_inner()))
        }
        other => panic!("expected the channel to be reset, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_garbage_and_truncated_frames_reset_the_channel_with_their_codes() {
    let (connection, mut server_errors) = connected(1 << 20).await;
    // A good channel that must outlive the bad ones.
    let (mut good_send, mut good_recv) = connection.open_channel().await.unwrap();

    let oversized = u32::MAX.to_be_bytes();
    let client_side = send_raw_on_channel(&connection, &oversized).await;
    assert!(
        matches!(
            client_side,
            TransportError::StreamRejected(StreamErrorCode::FrameTooLarge)
        ),
        "{client_side}"
    );
    let server_side = server_errors.recv().await.unwrap();
    assert!(
        matches!(
            server_side,
            TransportError::BadFrame {
                code: StreamErrorCode::FrameTooLarge,
                ..
            }
        ),
        "{server_side}"
    );

    // A well-formed frame, then one whose body is not MessagePack.
    let mut garbage = Vec::new();
    let good = rmp_serde::to_vec(&(7u64, "ok")).unwrap();
    garbage.extend_from_slice(&(good.len() as u32).to_be_bytes());
    garbage.extend_from_slice(&good);
    garbage.extend_from_slice(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
    let client_side = send_raw_on_channel(&connection, &garbage).await;
    assert!(
        matches!(
            client_side,
            TransportError::StreamRejected(StreamErrorCode::MalformedFrame)
        ),
        "{client_side}"
    );
    let server_side = server_errors.recv().await.unwrap();
    assert!(
        matches!(
            server_side,
            TransportError::BadFrame {
                code: StreamErrorCode::MalformedFrame,
                ..
            }
        ),
        "{server_side}"
    );

    // A stream that finishes inside a frame.
    let (mut send, mut recv) = connection.quinn().open_bi().await.unwrap();
    send.write_all(&[0x04, 0, 0, 0, 10, 1, 2]).await.unwrap();
    send.finish().unwrap();
    let mut buf = [0u8; 8];
    match recv.read(&mut buf).await {
        Err(quinn::ReadError::Reset(code)) => assert_eq!(
            StreamErrorCode::from_u64(code.into_inner()),
            StreamErrorCode::MalformedFrame
        ),
        other => panic!("expected a reset, got {other:?}"),
    }
    let server_side = server_errors.recv().await.unwrap();
    assert!(
        server_side.to_string().contains("inside a frame"),
        "{server_side}"
    );

    // The good channel still works.
    good_send.send(&(9u64, "still here")).await.unwrap();
    assert_eq!(
        good_recv.recv::<(u64, usize)>().await.unwrap(),
        Some((9, 10))
    );
}
