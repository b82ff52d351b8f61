//! Real QUIC on loopback: trust policies, ALPN, framing limits, concurrency and back-off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certs::{ClusterCa, Identity};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use transport::{
    ALPN_PAXOS, ALPN_PEER, Backoff, Dialer, Endpoint, EndpointConfig, Expect, InboundTrust,
    Received, StreamErrorCode, TransportError,
};

const LOCAL: &str = "127.0.0.1:0";
/// A protocol other than the peers': what a cluster's peer-facing service (a tracker, say)
/// would serve. Each protocol's ALPN belongs to the crate that speaks it.
const ALPN_SERVICE: &[u8] = b"bytetorrent-test/service/1";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum TestRequest {
    Echo(String),
    Chunk { len: usize },
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum ChunkHeader {
    Have { len: usize },
}

fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

fn endpoint(identity: Identity, inbound: InboundTrust, alpns: &[&[u8]]) -> Endpoint {
    Endpoint::bind(identity, EndpointConfig::new(local(), inbound, alpns)).unwrap()
}

fn self_signed(name: &str) -> Identity {
    Identity::generate_self_signed(name).unwrap()
}

/// Serves every connection and stream of `server`: echoes requests, answers chunk requests
/// with `len` bytes, and reports every stream error on the returned channel.
fn serve(server: Endpoint) -> mpsc::UnboundedReceiver<TransportError> {
    let (errors_tx, errors) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(connection) = server.accept().await {
            let Ok(connection) = connection else { continue };
            let errors_tx = errors_tx.clone();
            tokio::spawn(async move {
                while let Ok(stream) = connection.accept().await {
                    let errors_tx = errors_tx.clone();
                    tokio::spawn(async move {
                        let result = match stream.read::<TestRequest>().await {
                            Ok(Received::Request(TestRequest::Echo(text), responder)) => {
                                responder.respond(&text).await
                            }
                            Ok(Received::Chunk(TestRequest::Chunk { len }, responder)) => {
                                let body = Bytes::from(vec![0xAB; len]);
                                responder.respond(&ChunkHeader::Have { len }, body).await
                            }
                            Ok(_) => Ok(()),
                            Err(e) => Err(e),
                        };
                        if let Err(e) = result {
                            let _ = errors_tx.send(e);
                        }
                    });
                }
            });
        }
    });
    errors
}

#[tokio::test]
async fn pinned_dial_succeeds_with_the_right_fingerprint_and_both_sides_see_the_other() {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let (addr, server_fp, client_fp) = (
        server.local_addr(),
        server.fingerprint(),
        client.fingerprint(),
    );
    let accepted = tokio::spawn(async move { server.accept().await.unwrap().unwrap() });
    let connection = client
        .connect(addr, &Expect::Fingerprint(server_fp), ALPN_PEER)
        .await
        .unwrap();
    assert_eq!(connection.remote_fingerprint(), server_fp);
    assert_eq!(connection.alpn(), ALPN_PEER);
    let accepted = accepted.await.unwrap();
    assert_eq!(accepted.remote_fingerprint(), client_fp);
    assert_eq!(accepted.alpn(), ALPN_PEER);
}

#[tokio::test]
async fn pinned_dial_with_a_wrong_fingerprint_fails_naming_both_fingerprints() {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let _errors = serve(server.clone());
    let wrong = self_signed("other").fingerprint();
    let err = client
        .connect(server.local_addr(), &Expect::Fingerprint(wrong), ALPN_PEER)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::WrongFingerprint { .. }),
        "{text}"
    );
    assert!(err.is_permanent(), "{text}");
    assert!(text.contains(&wrong.to_string()), "{text}");
    assert!(text.contains(&server.fingerprint().to_string()), "{text}");
}

/// A server that presents `certificate_of`'s certificate but signs with another key.
fn impostor_server(certificate_of: &Identity) -> quinn::Endpoint {
    #[derive(Debug)]
    struct Resolver(Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Resolver {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let other_key = self_signed("impostor").private_key();
    let signing_key = provider.key_provider.load_private_key(other_key).unwrap();
    let certified = rustls::sign::CertifiedKey::new(certificate_of.chain().to_vec(), signing_key);
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(Arc::new(certified))));
    tls.alpn_protocols = vec![ALPN_PEER.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(config, local()).unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let _ = incoming.await;
        }
    });
    endpoint
}

#[tokio::test]
async fn pinned_dial_fails_against_a_server_with_the_certificate_but_not_the_key() {
    let genuine = self_signed("genuine");
    let impostor = impostor_server(&genuine);
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let err = client
        .connect(
            impostor.local_addr().unwrap(),
            &Expect::Fingerprint(genuine.fingerprint()),
            ALPN_PEER,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TransportError::Connect { .. }), "{text}");
    assert!(text.to_lowercase().contains("signature"), "{text}");
}

#[tokio::test]
async fn pinned_dial_refuses_a_certificate_chain() {
    let ca = ClusterCa::generate("ca").unwrap();
    let node = ca.issue("node1").unwrap();
    let fp = node.fingerprint();
    let server = endpoint(node, InboundTrust::Open, &[ALPN_PEER]);
    let _errors = serve(server.clone());
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let err = client
        .connect(server.local_addr(), &Expect::Fingerprint(fp), ALPN_PEER)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("single certificate"), "{err}");
}

fn cluster_trust(ca: &ClusterCa) -> InboundTrust {
    InboundTrust::Cluster {
        ca: ca.certificate().clone(),
        members: ["node1", "node2", "node3"].into_iter().collect(),
    }
}

#[tokio::test]
async fn cluster_nodes_with_certificates_from_the_ca_connect_mutually() {
    let ca = ClusterCa::generate("ca").unwrap();
    let node1 = endpoint(
        ca.issue("node1").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let node2 = endpoint(
        ca.issue("node2").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let addr = node1.local_addr();
    let accepted = tokio::spawn(async move { node1.accept().await.unwrap().unwrap() });
    let connection = node2
        .connect(addr, &Expect::ClusterNode("node1".into()), ALPN_PAXOS)
        .await
        .unwrap();
    assert_eq!(connection.remote_names(), ["node1"]);
    assert_eq!(accepted.await.unwrap().remote_names(), ["node2"]);
}

#[tokio::test]
async fn a_node_not_signed_by_the_cluster_ca_cannot_connect_either_way() {
    let ca = ClusterCa::generate("ca").unwrap();
    let rogue_ca = ClusterCa::generate("rogue").unwrap();
    let node1 = endpoint(
        ca.issue("node1").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let mut node1_errors = {
        let (tx, rx) = mpsc::unbounded_channel();
        let node1 = node1.clone();
        tokio::spawn(async move {
            while let Some(result) = node1.accept().await {
                let _ = tx.send(result.map(|_| ()));
            }
        });
        rx
    };
    // As a client: node1 refuses the rogue certificate.
    let rogue = endpoint(
        rogue_ca.issue("node2").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let dial = rogue
        .connect(
            node1.local_addr(),
            &Expect::ClusterNode("node1".into()),
            ALPN_PAXOS,
        )
        .await;
    let server_side = node1_errors.recv().await.unwrap();
    assert!(server_side.is_err(), "node1 accepted a rogue client");
    if let Ok(connection) = dial {
        // TLS 1.3 lets the client finish before the server checks its certificate; the
        // server then closes the connection.
        let err = connection
            .request::<_, String>(&TestRequest::Echo("x".into()))
            .await;
        assert!(err.is_err());
    }
    // As a server: a genuine node refuses to talk to the rogue node.
    let _rogue_errors = serve(rogue.clone());
    let genuine = endpoint(ca.issue("node3").unwrap(), cluster_trust(&ca), &[]);
    let err = genuine
        .connect(
            rogue.local_addr(),
            &Expect::ClusterNode("node2".into()),
            ALPN_PAXOS,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn a_server_whose_san_names_another_node_is_refused() {
    let ca = ClusterCa::generate("ca").unwrap();
    let node3 = endpoint(
        ca.issue("node3").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let _errors = serve(node3.clone());
    let node1 = endpoint(ca.issue("node1").unwrap(), cluster_trust(&ca), &[]);
    let err = node1
        .connect(
            node3.local_addr(),
            &Expect::ClusterNode("node2".into()),
            ALPN_PAXOS,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not valid for name \"node2\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_whose_san_is_not_a_member_is_refused() {
    let ca = ClusterCa::generate("ca").unwrap();
    let node1 = endpoint(
        ca.issue("node1").unwrap(),
        cluster_trust(&ca),
        &[ALPN_PAXOS],
    );
    let outsider = endpoint(ca.issue("node9").unwrap(), cluster_trust(&ca), &[]);
    let server = node1.clone();
    let accepted = tokio::spawn(async move { server.accept().await.unwrap() });
    let _ = outsider
        .connect(
            node1.local_addr(),
            &Expect::ClusterNode("node1".into()),
            ALPN_PAXOS,
        )
        .await;
    let err = accepted.await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn a_peer_reaches_any_tracker_node_knowing_only_the_ca_fingerprint() {
    let ca = ClusterCa::generate("ca").unwrap();
    let tracker = endpoint(
        ca.issue("node1").unwrap(),
        InboundTrust::Open,
        &[ALPN_SERVICE],
    );
    let _errors = serve(tracker.clone());
    let peer = endpoint(self_signed("peer"), InboundTrust::Open, &[]);
    let connection = peer
        .connect(
            tracker.local_addr(),
            &Expect::ClusterMember(ca.fingerprint()),
            ALPN_SERVICE,
        )
        .await
        .unwrap();
    let echoed: String = connection
        .request(&TestRequest::Echo("hi".into()))
        .await
        .unwrap();
    assert_eq!(echoed, "hi");
    let other_ca = ClusterCa::generate("other").unwrap();
    let err = peer
        .connect(
            tracker.local_addr(),
            &Expect::ClusterMember(other_ca.fingerprint()),
            ALPN_SERVICE,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cluster CA"), "{err}");
    // Said in words, and final: dialling again cannot succeed.
    assert!(
        matches!(err, TransportError::CertificateRefused { .. }),
        "{err}"
    );
    assert!(err.is_permanent(), "{err}");
    assert!(!err.to_string().contains("OtherError"), "{err}");
}

#[tokio::test]
async fn a_wrong_alpn_is_refused_in_the_handshake_as_another_protocol_version() {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let _errors = serve(server.clone());
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let err = client
        .connect(
            server.local_addr(),
            &Expect::Fingerprint(server.fingerprint()),
            ALPN_SERVICE,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::NoCommonProtocol { alpn, .. }
            if alpn.as_bytes() == ALPN_SERVICE),
        "{err}"
    );
    assert!(err.is_permanent(), "{err}");
    assert!(
        err.to_string().contains("another protocol version"),
        "{err}"
    );
}

async fn connected_pair() -> (
    transport::Connection,
    mpsc::UnboundedReceiver<TransportError>,
) {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let errors = serve(server.clone());
    (dial_peer(&server).await, errors)
}

/// A connection from a fresh client to `server`, pinned to its fingerprint.
async fn dial_peer(server: &Endpoint) -> transport::Connection {
    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    client
        .connect(
            server.local_addr(),
            &Expect::Fingerprint(server.fingerprint()),
            ALPN_PEER,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_on_one_connection_all_complete() {
    let (connection, _errors) = connected_pair().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let connection = connection.clone();
        tasks.spawn(async move {
            let text = format!("request {i}");
            let echoed: String = connection.request(&TestRequest::Echo(text.clone())).await?;
            assert_eq!(echoed, text);
            Ok::<_, TransportError>(())
        });
    }
    let mut completed = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        completed += 1;
    }
    assert_eq!(completed, 1000);
}

#[tokio::test]
async fn a_chunk_request_returns_the_header_and_the_raw_bytes() {
    let (connection, _errors) = connected_pair().await;
    let (header, body) = connection
        .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len: 3 << 20 })
        .await
        .unwrap();
    assert_eq!(header, ChunkHeader::Have { len: 3 << 20 });
    let parts = body.read_to_end(3 << 20).await.unwrap();
    let total: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(total, 3 << 20);
    assert!(parts.iter().all(|p| p.iter().all(|b| *b == 0xAB)));
}

#[tokio::test]
async fn read_exact_body_takes_a_body_of_the_expected_length_and_refuses_any_other() {
    let (connection, _errors) = connected_pair().await;
    let ask = |len: usize| {
        let connection = connection.clone();
        async move {
            connection
                .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len })
                .await
                .unwrap()
                .1
        }
    };

    let mut exact = vec![0u8; 1 << 20];
    ask(1 << 20)
        .await
        .read_exact_body(&mut exact)
        .await
        .unwrap();
    assert!(exact.iter().all(|b| *b == 0xAB));

    let mut expected_more = vec![0u8; 1 << 20];
    let short = ask((1 << 20) - 1)
        .await
        .read_exact_body(&mut expected_more)
        .await
        .unwrap_err();
    assert!(
        short
            .to_string()
            .contains("chunk body of 1048575 bytes, expected 1048576"),
        "{short}"
    );

    let mut expected_less = vec![0u8; 1 << 20];
    let long = ask((1 << 20) + 1)
        .await
        .read_exact_body(&mut expected_less)
        .await
        .unwrap_err();
    assert!(
        long.to_string()
            .contains("chunk body exceeds the expected 1048576 bytes"),
        "{long}"
    );

    // The connection carries on.
    let echoed: String = connection
        .request(&TestRequest::Echo("still here".into()))
        .await
        .unwrap();
    assert_eq!(echoed, "still here");
}

/// Sends raw bytes as a stream and returns how the server answered.
async fn send_raw(connection: &transport::Connection, bytes: &[u8]) -> TransportError {
    let (mut send, mut recv) = connection.quinn().open_bi().await.unwrap();
    // The server may reset before reading everything; a write error is fine.
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    let mut buf = [0u8; 64];
    match recv.read(&mut buf).await {
        Err(quinn::ReadError::Reset(code)) => {
            TransportError::StreamRejected(StreamErrorCode::from_u64(code.into_inner()))
        }
        other => panic!("expected the stream to be reset, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_and_garbage_frames_are_rejected_while_other_streams_go_on() {
    let (connection, mut server_errors) = connected_pair().await;
    // A stream that stays open across the bad ones.
    let (ok_header, ok_body) = connection
        .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len: 1 << 20 })
        .await
        .unwrap();

    // Oversized: a length prefix of 4 GiB.
    let mut oversized = vec![1u8];
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    let client_side = send_raw(&connection, &oversized).await;
    assert!(matches!(
        client_side,
        TransportError::StreamRejected(StreamErrorCode::FrameTooLarge)
    ));
    assert!(
        client_side
            .to_string()
            .contains("frame too large (code 0x1)"),
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
    assert!(
        server_side.to_string().contains("4294967295 bytes exceeds"),
        "{server_side}"
    );

    // Garbage: a well-sized frame whose body is not MessagePack (0xc1 is never used).
    let garbage = [1u8, 0, 0, 0, 3, 0xc1, 0xc1, 0xc1];
    let client_side = send_raw(&connection, &garbage).await;
    assert!(matches!(
        client_side,
        TransportError::StreamRejected(StreamErrorCode::MalformedFrame)
    ));
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

    // Valid MessagePack of the wrong type is malformed too.
    let wrong_type = transport_frame(&12345u64);
    let client_side = send_raw(&connection, &wrong_type).await;
    assert!(matches!(
        client_side,
        TransportError::StreamRejected(StreamErrorCode::MalformedFrame)
    ));
    server_errors.recv().await.unwrap();

    // An unknown stream kind.
    let client_side = send_raw(&connection, &[9u8, 0, 0, 0, 0]).await;
    assert!(matches!(
        client_side,
        TransportError::StreamRejected(StreamErrorCode::UnknownStreamKind)
    ));
    server_errors.recv().await.unwrap();

    // The connection and the stream opened before are unharmed.
    assert_eq!(ok_header, ChunkHeader::Have { len: 1 << 20 });
    let total: usize = ok_body
        .read_to_end(1 << 20)
        .await
        .unwrap()
        .iter()
        .map(|p| p.len())
        .sum();
    assert_eq!(total, 1 << 20);
    let echoed: String = connection
        .request(&TestRequest::Echo("still here".into()))
        .await
        .unwrap();
    assert_eq!(echoed, "still here");
    assert!(!connection.is_closed());
}

fn transport_frame<T: Serialize>(value: &T) -> Vec<u8> {
    let body = rmp_serde::to_vec_named(value).unwrap();
    let mut out = vec![1u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[tokio::test]
async fn a_frame_over_the_maximum_is_not_sent() {
    let (connection, _errors) = connected_pair().await;
    let big = "x".repeat(transport::DEFAULT_MAX_FRAME + 1);
    let err = connection
        .request::<_, String>(&TestRequest::Echo(big))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    let echoed: String = connection
        .request(&TestRequest::Echo("ok".into()))
        .await
        .unwrap();
    assert_eq!(echoed, "ok");
}

#[tokio::test]
async fn a_dead_remote_is_backed_off_then_tried_again_after_the_window() {
    // A UDP socket that never answers: a dead remote.
    let silent = std::net::UdpSocket::bind(local()).unwrap();
    let dead = silent.local_addr().unwrap();
    let mut config = EndpointConfig::new(local(), InboundTrust::Open, &[]);
    config.connect_timeout = Duration::from_millis(200);
    let client = Endpoint::bind(self_signed("c"), config).unwrap();
    let policy = Backoff {
        initial: Duration::from_millis(400),
        max: Duration::from_secs(5),
    };
    let dialer = Dialer::new(client, policy);
    let expect = Expect::Fingerprint(self_signed("x").fingerprint());

    let first = dialer.dial(dead, &expect, ALPN_PEER).await.unwrap_err();
    assert!(
        matches!(first, TransportError::ConnectTimeout { .. }),
        "{first}"
    );
    let until = dialer
        .backed_off_until(dead)
        .expect("backed off after a failure");

    // Inside the window: refused without an attempt.
    let second = dialer.dial(dead, &expect, ALPN_PEER).await.unwrap_err();
    assert!(
        matches!(second, TransportError::BackedOff { failures: 1, .. }),
        "{second}"
    );

    // After the window: attempted again (it times out again), and backed off for longer.
    tokio::time::sleep_until(until.into()).await;
    assert_eq!(dialer.backed_off_until(dead), None);
    let third = dialer.dial(dead, &expect, ALPN_PEER).await.unwrap_err();
    assert!(
        matches!(third, TransportError::ConnectTimeout { .. }),
        "{third}"
    );
    let fourth = dialer.dial(dead, &expect, ALPN_PEER).await.unwrap_err();
    assert!(
        matches!(fourth, TransportError::BackedOff { failures: 2, .. }),
        "{fourth}"
    );
}

/// A serving endpoint, and a dialer with a live connection to it.
async fn dialer_with_a_connection() -> (Endpoint, Dialer, Expect, transport::Connection) {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    // Stream errors are not what these tests look at (the server ignores a closed
    // error channel).
    drop(serve(server.clone()));
    let dialer = Dialer::new(
        endpoint(self_signed("c"), InboundTrust::Open, &[]),
        Backoff::default(),
    );
    let expect = Expect::Fingerprint(server.fingerprint());
    let connection = dialer
        .dial(server.local_addr(), &expect, ALPN_PEER)
        .await
        .unwrap();
    (server, dialer, expect, connection)
}

#[tokio::test]
async fn the_dialer_reuses_a_live_connection_and_forgets_a_closed_one() {
    let (server, dialer, expect, a) = dialer_with_a_connection().await;
    let b = dialer
        .dial(server.local_addr(), &expect, ALPN_PEER)
        .await
        .unwrap();
    assert_eq!(a.quinn().stable_id(), b.quinn().stable_id());
    a.close(0, "done");
    let c = dialer
        .dial(server.local_addr(), &expect, ALPN_PEER)
        .await
        .unwrap();
    assert_ne!(a.quinn().stable_id(), c.quinn().stable_id());
    let echoed: String = c.request(&TestRequest::Echo("new".into())).await.unwrap();
    assert_eq!(echoed, "new");
}

/// A remote backed off for a slow answer keeps its live connection: no new handshake.
#[tokio::test]
async fn backing_off_a_slow_remote_keeps_its_live_connection() {
    let (server, dialer, expect, a) = dialer_with_a_connection().await;
    dialer.back_off(server.local_addr());
    let b = dialer
        .dial(server.local_addr(), &expect, ALPN_PEER)
        .await
        .unwrap();
    assert_eq!(a.quinn().stable_id(), b.quinn().stable_id());
    // A failure report, in contrast, drops the connection and backs the remote off.
    dialer.report_failure(server.local_addr());
    let err = dialer
        .dial(server.local_addr(), &expect, ALPN_PEER)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::BackedOff { .. }), "{err:?}");
}

/// A client whose handshake never finishes (the server's answers are lost on the way
/// back) does not hold up the next client: the server completes handshakes concurrently.
#[tokio::test]
async fn a_stalled_handshake_does_not_hold_up_the_next_client() {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let server_addr = server.local_addr();
    let server_fp = server.fingerprint();

    // A one-way relay: the stalled client's packets reach the server, nothing comes back.
    let relay = tokio::net::UdpSocket::bind(local()).await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let (forwarded_tx, mut forwarded) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let out = tokio::net::UdpSocket::bind(local()).await.unwrap();
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = relay.recv_from(&mut buf).await {
            let _ = out.send_to(&buf[..n], server_addr).await;
            let _ = forwarded_tx.send(());
        }
    });
    let stalled = endpoint(self_signed("stalled"), InboundTrust::Open, &[]);
    let stalled_dial = tokio::spawn(async move {
        let _ = stalled
            .connect(relay_addr, &Expect::Fingerprint(server_fp), ALPN_PEER)
            .await;
    });
    let accepting = tokio::spawn({
        let server = server.clone();
        async move { server.accept().await }
    });
    // The stalled client's first flight has reached the server.
    forwarded.recv().await.unwrap();

    let client = endpoint(self_signed("c"), InboundTrust::Open, &[]);
    let client_fp = client.fingerprint();
    let connection = client
        .connect(server_addr, &Expect::Fingerprint(server_fp), ALPN_PEER)
        .await
        .unwrap();
    assert_eq!(connection.remote_fingerprint(), server_fp);
    // Within the 10 s limit only if the server did not wait for the stalled handshake,
    // which lasts until the 30 s idle timeout.
    let accepted = tokio::time::timeout(Duration::from_secs(10), accepting)
        .await
        .expect("the second client is accepted while the first one's handshake stalls")
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(accepted.remote_fingerprint(), client_fp);
    stalled_dial.abort();
}

/// What the server's `respond_delivered` returned, and how many bytes the server's
/// connection had put on the wire by then.
type Delivered = (Result<(), TransportError>, u64);

/// A server that answers one chunk request with `respond_delivered` and reports, on the
/// returned channel, how that call returned.
async fn delivering_pair() -> (
    transport::Connection,
    tokio::sync::oneshot::Receiver<Delivered>,
) {
    let server = endpoint(self_signed("s"), InboundTrust::Open, &[ALPN_PEER]);
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let accepting = server.clone();
    tokio::spawn(async move {
        let connection = accepting.accept().await.unwrap().unwrap();
        let stream = connection.accept().await.unwrap();
        if let Ok(Received::Chunk(TestRequest::Chunk { len }, responder)) =
            stream.read::<TestRequest>().await
        {
            let body = Bytes::from(vec![0xAB; len]);
            let result = responder
                .respond_delivered(&ChunkHeader::Have { len }, body)
                .await;
            let sent = connection.quinn().stats().udp_tx.bytes;
            let _ = done_tx.send((result, sent));
        }
        // Keep the connection open until the client is done with it.
        connection.closed().await;
    });
    (dial_peer(&server).await, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_response_returns_only_once_the_reader_has_every_byte() {
    let (connection, mut done) = delivering_pair().await;
    // Twice the stream's receive window: it cannot all arrive before the reader reads.
    let len = 32 << 20;
    let (header, body) = connection
        .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len })
        .await
        .unwrap();
    assert_eq!(header, ChunkHeader::Have { len });
    assert!(
        matches!(
            done.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ),
        "returned before the reader read past its window"
    );
    let parts = body.read_to_end(len).await.unwrap();
    assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), len);
    let (result, _) = done.await.unwrap();
    result.expect("delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_response_returns_after_the_bytes_went_out_not_when_they_were_buffered() {
    let (connection, done) = delivering_pair().await;
    // Within every window, so writing it only buffers it; slow start then takes several
    // round trips to send it.
    let len = 4 << 20;
    let (_header, body) = connection
        .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len })
        .await
        .unwrap();
    let (result, sent) = done.await.unwrap();
    result.expect("delivered");
    assert!(
        sent >= len as u64,
        "returned with {sent} of {len} bytes sent"
    );
    assert!(!body.read_to_end(len).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_response_fails_when_the_reader_stops_reading() {
    let (connection, done) = delivering_pair().await;
    let (_header, body) = connection
        .request_chunk::<_, ChunkHeader>(&TestRequest::Chunk { len: 32 << 20 })
        .await
        .unwrap();
    drop(body);
    assert!(done.await.unwrap().0.is_err());
}
