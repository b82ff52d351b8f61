//! The peer-facing API of a tracker cluster running in this process (three nodes on
//! loopback, real QUIC): hostile input gets clear errors and harms nothing.

use std::time::Duration;

use crate::common::*;
use tracker::Bitfield;
use tracker::api::{ALPN_TRACKER, ApiError, Request, Response, WriteId};
use tracker::client::TrackerError;
use tracker::dev::{DevCluster, DevOptions};
use transport::{Expect, StreamErrorCode, TransportError};

async fn dev_cluster(dir: &std::path::Path) -> DevCluster {
    DevCluster::start(dir, DevOptions::default()).await.unwrap()
}

/// Sends raw bytes as a request stream and returns the reset code the node answered with.
async fn send_raw(connection: &transport::Connection, bytes: &[u8]) -> StreamErrorCode {
    let (mut send, mut recv) = connection.quinn().open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    let mut buf = [0u8; 64];
    match recv.read(&mut buf).await {
        Err(quinn::ReadError::Reset(code)) => StreamErrorCode::from_u64(code.into_inner()),
        other => panic!("expected the stream to be reset, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_refused_and_the_connection_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let endpoint = peer_endpoint();
    let connection = endpoint
        .connect(
            cluster.peer_addrs()[0],
            &Expect::ClusterMember(cluster.ca_fingerprint()),
            ALPN_TRACKER,
        )
        .await
        .unwrap();

    // Not MessagePack.
    let code = send_raw(&connection, &[1u8, 0, 0, 0, 3, 0xc1, 0xc1, 0xc1]).await;
    assert_eq!(code, StreamErrorCode::MalformedFrame);
    // MessagePack, but not a request.
    let body = rmp_serde::to_vec(&("Publish", 17u8)).unwrap();
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    assert_eq!(
        send_raw(&connection, &frame).await,
        StreamErrorCode::MalformedFrame
    );
    // Larger than the largest torrent file allows.
    let mut oversized = vec![1u8];
    oversized.extend_from_slice(&(64u32 << 20).to_be_bytes());
    assert_eq!(
        send_raw(&connection, &oversized).await,
        StreamErrorCode::FrameTooLarge
    );

    // The same connection still answers well-formed requests.
    let response: Response = connection.request(&Request::Status).await.unwrap();
    assert!(matches!(response, Response::Status(_)), "{response:?}");
    // A torrent file too large for a frame is refused locally with a clear error.
    let huge = Request::Publish {
        id: WriteId { client: 1, seq: 1 },
        token: cluster.token().into(),
        torrent: vec![0; 20 << 20],
    };
    let err = connection.request::<_, Response>(&huge).await.unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_piece_reports_are_refused_whole_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let torrent = make_torrent(
        dir.path(),
        "p.bin",
        100_000,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    let client = quick_client(
        peer_endpoint(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    client
        .publish(cluster.token(), torrent.encode())
        .await
        .unwrap();
    let hash = torrent.info_hash();
    let addr = "127.0.0.1:9".parse().unwrap();

    // Reports before joining, a bitfield of the wrong length, pieces past the end.
    let err = client.have(hash, vec![0]).await.unwrap_err();
    assert!(
        matches!(&err, TrackerError::Refused(ApiError::NotInSwarm(h)) if *h == hash),
        "{err}"
    );
    let err = client
        .join(hash, addr, Bitfield::new(3), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Refused(ApiError::BadPieces(_))),
        "{err}"
    );
    client
        .join(hash, addr, Bitfield::new(torrent.piece_count()), 5)
        .await
        .unwrap();
    let err = client
        .have(hash, vec![1, torrent.piece_count()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Refused(ApiError::BadPieces(_))),
        "{err}"
    );
    // Piece 1 was not recorded: the whole report was refused.
    let err = client.peers_with_piece(hash, 1, 5).await;
    assert_eq!(err.unwrap(), vec![]);
    // An unknown torrent.
    let unknown = tracker::torrent::InfoHash::from_bytes([7; 32]);
    let err = client
        .join(unknown, addr, Bitfield::new(1), 5)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TrackerError::Refused(ApiError::UnknownTorrent(unknown))
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_members_are_told_of_each_other_and_of_who_has_a_piece() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let torrent = make_torrent(
        dir.path(),
        "s.bin",
        100_000,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    let seeder_endpoint = peer_endpoint();
    let seeder = quick_client(
        seeder_endpoint.clone(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    seeder
        .publish(cluster.token(), torrent.encode())
        .await
        .unwrap();
    let hash = torrent.info_hash();
    let seeder_addr = "127.0.0.1:1000".parse().unwrap();
    seeder
        .join(hash, seeder_addr, Bitfield::full(torrent.piece_count()), 5)
        .await
        .unwrap();

    let leecher = quick_client(
        peer_endpoint(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    let joined = leecher
        .join(
            hash,
            "127.0.0.1:1001".parse().unwrap(),
            Bitfield::new(torrent.piece_count()),
            5,
        )
        .await
        .unwrap();
    assert_eq!(joined.ttl, Duration::from_secs(30));
    assert_eq!(joined.neighbours.len(), 1);
    assert_eq!(
        joined.neighbours[0].fingerprint,
        seeder_endpoint.fingerprint()
    );
    assert_eq!(joined.neighbours[0].addr, seeder_addr);
    let with_piece = leecher.peers_with_piece(hash, 3, 5).await.unwrap();
    assert_eq!(with_piece, joined.neighbours);
    // The seeder says it lost piece 3: the record is corrected at once.
    seeder.not_have(hash, vec![3]).await.unwrap();
    assert_eq!(leecher.peers_with_piece(hash, 3, 5).await.unwrap(), vec![]);
    assert_eq!(leecher.peers_with_piece(hash, 4, 5).await.unwrap().len(), 1);
    leecher.leave(hash).await.unwrap();
    let hit = &seeder
        .search("s.bin", 0, Default::default())
        .await
        .unwrap()
        .hits[0];
    assert_eq!(
        (hit.seeders, hit.leechers),
        (0, 1),
        "the seeder lacks piece 3 now"
    );

    // /health says the node serves; /metrics counts the requests.
    let (_, http) = cluster.http_addrs()[0];
    let (status, body) = http_get(http, "/health").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"leader\":"), "{body}");
    let (_, metrics) = http_get(http, "/metrics").await.unwrap();
    assert!(
        metrics.contains("bt_tracker_requests_total{kind=\"join\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bt_tracker_commit_latency_p99_seconds"),
        "{metrics}"
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_reads_through_a_follower_are_all_answered_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let service = cluster.node(follower).unwrap().service().clone();
    // Each read gets one attempt (no client retries): every one must be answered.
    let reads: Vec<_> = (0..50)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .read(tracker::state::Query::Search {
                        words: format!("word{i}"),
                        page: 0,
                        per_page: 10,
                        order: Default::default(),
                    })
                    .await
            })
        })
        .collect();
    for read in reads {
        let answer = read.await.unwrap();
        assert!(
            matches!(answer, Ok(tracker::state::Output::Search(_))),
            "{answer:?}"
        );
    }
    cluster.shutdown();
}

/// Connects to the first node of `cluster` as a peer.
async fn connect(cluster: &DevCluster, endpoint: &transport::Endpoint) -> transport::Connection {
    endpoint_connect(cluster, endpoint, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_inside_a_frame_is_refused_with_malformed_frame() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let endpoint = peer_endpoint();
    let connection = connect(&cluster, &endpoint).await;

    // Inside the length, inside the body, and right after the kind byte.
    for bytes in [&[1u8, 0, 0][..], &[1, 0, 0, 0, 9, 0x81, 0xa6], &[1]] {
        assert_eq!(
            send_raw(&connection, bytes).await,
            StreamErrorCode::MalformedFrame,
            "{bytes:02x?}"
        );
    }
    let response: Response = connection.request(&Request::Status).await.unwrap();
    assert!(matches!(response, Response::Status(_)), "{response:?}");
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_kinds_the_tracker_does_not_use_are_refused_with_unknown_stream_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let endpoint = peer_endpoint();
    let connection = connect(&cluster, &endpoint).await;

    let status = rmp_serde::to_vec(&Request::Status).unwrap();
    // Message, chunk and channel are known kinds this protocol does not use; 0x7f is no kind.
    for kind in [0x02u8, 0x03, 0x04, 0x7f] {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(status.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&status);
        assert_eq!(
            send_raw(&connection, &bytes).await,
            StreamErrorCode::UnknownStreamKind,
            "kind {kind:#04x}"
        );
    }
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_address_that_is_not_ip_and_port_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let torrent = make_torrent(
        dir.path(),
        "a.bin",
        50_000,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    let endpoint = peer_endpoint();
    quick_client(
        endpoint.clone(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    )
    .publish(cluster.token(), torrent.encode())
    .await
    .unwrap();
    let connection = connect(&cluster, &endpoint).await;
    let join = |seq, addr: &str| Request::Join {
        id: WriteId { client: 77, seq },
        info_hash: torrent.info_hash(),
        addr: addr.into(),
        have: Bitfield::new(torrent.piece_count()),
        want: 5,
    };
    for (seq, addr) in [(1, "localhost:7000"), (2, "127.0.0.1"), (3, "")] {
        let response: Response = connection.request(&join(seq, addr)).await.unwrap();
        match response {
            Response::Error(ApiError::BadRequest(text)) => {
                assert!(text.contains("IP address and port"), "{text}")
            }
            other => panic!("{addr:?}: expected BadRequest, got {other:?}"),
        }
    }
    let response: Response = connection.request(&join(4, "[::1]:7000")).await.unwrap();
    assert!(matches!(response, Response::Joined { .. }), "{response:?}");

    // Version 1's form of an address, a map, is not text: the frame is malformed.
    #[derive(serde::Serialize)]
    enum OldRequest {
        Join {
            id: WriteId,
            info_hash: tracker::torrent::InfoHash,
            addr: std::net::SocketAddr,
            have: Bitfield,
            want: u32,
        },
    }
    let old = OldRequest::Join {
        id: WriteId { client: 77, seq: 5 },
        info_hash: torrent.info_hash(),
        addr: "127.0.0.1:45001".parse().unwrap(),
        have: Bitfield::new(torrent.piece_count()),
        want: 5,
    };
    let body = rmp_serde::to_vec_named(&old).unwrap();
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    assert_eq!(
        send_raw(&connection, &frame).await,
        StreamErrorCode::MalformedFrame
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_gets_its_first_answer_until_a_later_write_then_stale() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let torrent = make_torrent(
        dir.path(),
        "r.bin",
        50_000,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    );
    let first = peer_endpoint();
    quick_client(
        first.clone(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    )
    .publish(cluster.token(), torrent.encode())
    .await
    .unwrap();
    let connection = connect(&cluster, &first).await;
    let join = Request::Join {
        id: WriteId { client: 99, seq: 1 },
        info_hash: torrent.info_hash(),
        addr: "127.0.0.1:9".into(),
        have: Bitfield::new(torrent.piece_count()),
        want: 5,
    };
    let answer: Response = connection.request(&join).await.unwrap();
    assert!(
        matches!(&answer, Response::Joined { neighbours, .. } if neighbours.is_empty()),
        "{answer:?}"
    );

    // Another peer joins: applying the join again would now name it as a neighbour.
    quick_client(
        peer_endpoint(),
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
    )
    .join(
        torrent.info_hash(),
        "127.0.0.1:10".parse().unwrap(),
        Bitfield::new(torrent.piece_count()),
        5,
    )
    .await
    .unwrap();
    // The retry, at another node, is answered with the first answer, not applied again.
    let elsewhere = endpoint_connect(&cluster, &first, 1).await;
    let retried: Response = elsewhere.request(&join).await.unwrap();
    assert_eq!(retried, answer);

    // After a later write of the same client, the first one's answer is gone: Stale.
    let heartbeat = Request::Heartbeat {
        id: WriteId { client: 99, seq: 2 },
        info_hash: Some(torrent.info_hash()),
    };
    let done: Response = connection.request(&heartbeat).await.unwrap();
    assert_eq!(done, Response::Done);
    let stale: Response = connection.request(&join).await.unwrap();
    assert_eq!(stale, Response::Error(ApiError::Stale));
    // The latest write's retry still gets its answer.
    let again: Response = elsewhere.request(&heartbeat).await.unwrap();
    assert_eq!(again, Response::Done);
    cluster.shutdown();
}

/// Connects to node number `index` of `cluster` from `endpoint`.
async fn endpoint_connect(
    cluster: &DevCluster,
    endpoint: &transport::Endpoint,
    index: usize,
) -> transport::Connection {
    endpoint
        .connect(
            cluster.peer_addrs()[index],
            &Expect::ClusterMember(cluster.ca_fingerprint()),
            ALPN_TRACKER,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_protocol_version_fails_the_handshake_and_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dev_cluster(dir.path()).await;
    let endpoint = peer_endpoint();
    let err = endpoint
        .connect(
            cluster.peer_addrs()[0],
            &Expect::ClusterMember(cluster.ca_fingerprint()),
            b"bytetorrent/tracker/1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::NoCommonProtocol { alpn, .. } if alpn == "bytetorrent/tracker/1"),
        "{err}"
    );
    assert!(err.is_permanent());
    assert!(
        err.to_string().contains("another protocol version"),
        "{err}"
    );
    cluster.shutdown();
}

/// A node answering as many requests as it may at once answers the next one "busy" at
/// once, instead of queueing it, and serves again when a request is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_request_limit_answers_busy_at_once_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = DevCluster::start(
        dir.path(),
        DevOptions {
            max_requests_in_flight: 1,
            ..DevOptions::default()
        },
    )
    .await
    .unwrap();
    // Without a majority, a write waits for the node's request timeout (1.5 s): it holds
    // the one permit of node 1 all that time.
    let ids = cluster.ids();
    cluster.stop(ids[1]);
    cluster.stop(ids[2]);
    let endpoint = peer_endpoint();
    let connection = connect(&cluster, &endpoint).await;
    let write = tokio::spawn({
        let connection = connection.clone();
        async move {
            let heartbeat = Request::Heartbeat {
                id: WriteId { client: 7, seq: 1 },
                info_hash: None,
            };
            // A status request of the loop below may hold the one permit when the write
            // arrives: then the write is the request answered busy, and is sent again.
            loop {
                let answer = connection.request::<_, Response>(&heartbeat).await.unwrap();
                if !matches!(&answer, Response::Unavailable(why) if why.starts_with("busy")) {
                    return answer;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut busy = None;
    while !write.is_finished() {
        match connection
            .request::<_, Response>(&Request::Status)
            .await
            .unwrap()
        {
            Response::Unavailable(why) if why.starts_with("busy") => {
                // Answered while the write still holds the permit: not queued behind it.
                busy = Some((why, !write.is_finished()));
                break;
            }
            // The write was not admitted yet: ask again.
            Response::Status(_) => tokio::task::yield_now().await,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let (why, before_the_write_ended) = busy.expect("a request beyond the limit is answered busy");
    assert!(why.contains("1 requests"), "{why}");
    assert!(
        before_the_write_ended,
        "the busy answer came while the write was in flight, not after it"
    );
    let answer = write.await.unwrap();
    assert!(
        matches!(&answer, Response::Unavailable(why) if !why.starts_with("busy")),
        "the write itself timed out without a majority: {answer:?}"
    );
    let after: Response = connection.request(&Request::Status).await.unwrap();
    assert!(matches!(after, Response::Status(_)), "{after:?}");
    cluster.shutdown();
}
