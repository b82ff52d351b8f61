//! The tracker cluster as real `bt-tracker` processes on loopback, over real QUIC: nodes
//! killed with SIGKILL, answers lost mid-request, peers that stop heartbeating.

use std::time::Duration;

use crate::common::*;
use tracker::Bitfield;
use tracker::api::ApiError;
use tracker::client::TrackerError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_keeps_serving_when_a_node_is_killed_and_the_restarted_node_catches_up() {
    let mut cluster = ProcessCluster::start(3, 30);
    let token = cluster.create_token("alice");
    let files = tempfile::tempdir().unwrap();
    let client = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);

    let first = make_torrent(
        files.path(),
        "debian-13.iso",
        100_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    let hash = client.publish(&token, first.encode()).await.unwrap();
    assert_eq!(hash, first.info_hash());

    // Kill the leader with SIGKILL.
    let leader = cluster.leader().await;
    cluster.kill(leader);

    // Publishing, joining, reporting and searching keep working.
    let second = make_torrent(
        files.path(),
        "Debian 13 netinst.iso",
        50_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    client.publish(&token, second.encode()).await.unwrap();
    let peer_addr = "127.0.0.1:9".parse().unwrap();
    let joined = client
        .join(
            second.info_hash(),
            peer_addr,
            Bitfield::new(second.piece_count()),
            5,
        )
        .await
        .unwrap();
    assert!(joined.neighbours.is_empty(), "alone in the swarm");
    client
        .have(second.info_hash(), vec![0, 1, 2])
        .await
        .unwrap();
    let found = client
        .search("DEBIAN iso", 0, Default::default())
        .await
        .unwrap();
    assert_eq!(found.total, 2);
    assert_eq!(found.hits[0].info_hash, second.info_hash(), "newest first");
    assert_eq!(found.hits[0].leechers, 1);

    // The restarted node catches up: its own state holds what was written while it was
    // down.
    cluster.spawn(leader);
    let http = cluster.nodes[&leader].http;
    let torrents = eventually(Duration::from_secs(10), || async {
        metric(http, "torrents").await.filter(|&t| t == 2.0)
    })
    .await;
    assert_eq!(torrents, Some(2.0), "node {leader} caught up");
    assert_eq!(metric(http, "piece_reports").await, Some(3.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_whose_answer_is_lost_is_retried_through_another_node_and_applied_once() {
    let mut cluster = ProcessCluster::start(3, 30);
    let token = cluster.create_token("bob");
    let files = tempfile::tempdir().unwrap();
    let torrent = make_torrent(
        files.path(),
        "big.bin",
        200_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    let setup = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);
    setup.publish(&token, torrent.encode()).await.unwrap();

    // The client reaches node 1 through a relay that will lose node 1's answers.
    let relay = LossyRelay::start(cluster.nodes[&1].peer).await;
    let mut nodes = vec![relay.listen];
    nodes.extend(cluster.peer_addrs().into_iter().skip(1));
    let client = quick_client(peer_endpoint(), nodes, cluster.ca);
    client.prefer(relay.listen);
    client
        .join(
            torrent.info_hash(),
            "127.0.0.1:9".parse().unwrap(),
            Bitfield::new(torrent.piece_count()),
            5,
        )
        .await
        .unwrap();
    assert_eq!(client.current_node(), Some(relay.listen));

    // Node 1 receives the report and applies it, but its answer never arrives; then it
    // dies. The client fails over and retries the same write.
    relay.drop_replies(true);
    let all: Vec<u32> = (0..torrent.piece_count()).collect();
    let report = tokio::spawn({
        let all = all.clone();
        let info_hash = torrent.info_hash();
        async move { client.have(info_hash, all).await.map(|()| client) }
    });
    let http1 = cluster.nodes[&1].http;
    let applied = eventually(Duration::from_secs(5), || async {
        metric(http1, "piece_reports").await.filter(|&n| n > 0.0)
    })
    .await;
    assert_eq!(
        applied,
        Some(f64::from(torrent.piece_count())),
        "node 1 applied the report"
    );
    cluster.kill(1);
    let client = report.await.unwrap().expect("the retried write succeeds");
    assert_ne!(client.current_node(), Some(relay.listen), "failed over");

    // Applied once: the piece count and the completion are counted once on every node.
    for id in [2, 3] {
        let http = cluster.nodes[&id].http;
        assert_eq!(
            metric(http, "piece_reports").await,
            Some(f64::from(torrent.piece_count()))
        );
    }
    let hit = &client
        .search("big", 0, Default::default())
        .await
        .unwrap()
        .hits[0];
    assert_eq!((hit.seeders, hit.leechers, hit.completed), (1, 0, 1));
}

/// A leader that stops answering (paused with SIGSTOP: as silent as a dead machine) does
/// not stall its clients for the attempt timeout: the request is hedged to another node,
/// which forwards it to the dead leader and then, once a new leader is elected, to the new
/// one. With the attempt timeout at 30 s, the request succeeds without a single failed
/// attempt only if both work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_silent_leader_is_hedged_to_another_node_and_answered_there() {
    let cluster = ProcessCluster::start(3, 30);
    let token = cluster.create_token("carol");
    let files = tempfile::tempdir().unwrap();
    let torrent = make_torrent(
        files.path(),
        "hedged.bin",
        100_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    let config = tracker::client::ClientConfig {
        attempt_timeout: Duration::from_secs(30),
        deadline: Duration::from_secs(60),
        ..Default::default()
    };
    let setup = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);
    setup.publish(&token, torrent.encode()).await.unwrap();
    let leader = cluster.leader().await;
    // The client knows the leader and one follower only, so that its one hedge goes to
    // a node that can only have forwarded the request to the silent leader.
    let leader_addr = cluster.nodes[&leader].peer;
    let follower_addr = cluster.nodes[&(leader % 3 + 1)].peer;
    let client = tracker::client::TrackerClient::with_config(
        peer_endpoint(),
        vec![leader_addr, follower_addr],
        cluster.ca,
        config,
    );
    client.prefer(leader_addr);
    client
        .join(
            torrent.info_hash(),
            "127.0.0.1:9".parse().unwrap(),
            Bitfield::new(torrent.piece_count()),
            5,
        )
        .await
        .unwrap();
    assert_eq!(client.current_node(), Some(leader_addr));
    let (hedges, failed) = (client.hedges(), client.failed_attempts());

    cluster.signal(leader, "STOP");
    let reported = client.have(torrent.info_hash(), vec![0, 1]).await;
    cluster.signal(leader, "CONT");
    reported.expect("answered by another node");
    assert_eq!(client.current_node(), Some(follower_addr));
    assert!(client.hedges() > hedges, "the request was hedged");
    assert_eq!(
        client.failed_attempts(),
        failed,
        "no attempt failed: the other node got the new leader to answer"
    );
}

/// The child side of the heartbeat test: a peer process that joins a swarm and heartbeats
/// until it is killed. Does nothing unless started by that test.
#[tokio::test]
async fn heartbeating_peer_child_process() {
    let Ok(spec) = std::env::var("BT_TEST_PEER") else {
        return;
    };
    let mut parts = spec.split(' ');
    let ca: certs::Fingerprint = parts.next().unwrap().parse().unwrap();
    let info_hash: tracker::torrent::InfoHash = parts.next().unwrap().parse().unwrap();
    let pieces: u32 = parts.next().unwrap().parse().unwrap();
    let heartbeat = Duration::from_millis(parts.next().unwrap().parse().unwrap());
    let nodes = parts.map(|a| a.parse().unwrap()).collect();
    let client = quick_client(peer_endpoint(), nodes, ca);
    client
        .join(
            info_hash,
            "127.0.0.1:10".parse().unwrap(),
            Bitfield::new(pieces),
            5,
        )
        .await
        .unwrap();
    println!("joined");
    loop {
        tokio::time::sleep(heartbeat).await;
        client.heartbeat(info_hash).await.unwrap();
        println!("heartbeat");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_is_dropped_by_every_node_within_ttl_plus_a_heartbeat() {
    use std::io::{BufRead, BufReader};
    const TTL: Duration = Duration::from_secs(2);
    const HEARTBEAT: Duration = Duration::from_millis(500);
    let cluster = ProcessCluster::start(3, TTL.as_secs());
    let token = cluster.create_token("carol");
    let files = tempfile::tempdir().unwrap();
    let torrent = make_torrent(
        files.path(),
        "ttl.bin",
        50_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    let client = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);
    client.publish(&token, torrent.encode()).await.unwrap();

    // One peer heartbeats from this process; another runs as its own process.
    let alive = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);
    let empty = Bitfield::new(torrent.piece_count());
    alive
        .join(
            torrent.info_hash(),
            "127.0.0.1:9".parse().unwrap(),
            empty,
            5,
        )
        .await
        .unwrap();
    let alive_in = torrent.info_hash();
    let keep_alive = tokio::spawn(async move {
        loop {
            alive.heartbeat(alive_in).await.unwrap();
            tokio::time::sleep(HEARTBEAT).await;
        }
    });
    let mut spec = format!(
        "{} {} {} {}",
        cluster.ca,
        torrent.info_hash(),
        torrent.piece_count(),
        HEARTBEAT.as_millis()
    );
    for a in cluster.peer_addrs() {
        spec.push_str(&format!(" {a}"));
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cluster::heartbeating_peer_child_process",
            "--nocapture",
        ])
        .env("BT_TEST_PEER", spec)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for two heartbeats, so the kill lands while it is heartbeating.
    let mut beats = 0;
    while beats < 2 {
        let line = lines.next().expect("the child peer runs").unwrap();
        beats += usize::from(line == "heartbeat");
    }
    for a in cluster.nodes.values() {
        assert_eq!(metric(a.http, "peers").await, Some(2.0));
    }
    child.kill().unwrap();
    let killed = tokio::time::Instant::now();
    child.wait().unwrap();

    // Every node, reading its own state, drops the killed peer within its TTL plus the
    // expiry interval (1 s); never before TTL minus the heartbeat interval.
    for a in cluster.nodes.values() {
        let peers = eventually(Duration::from_secs(6), || async {
            metric(a.http, "peers").await.filter(|&p| p == 1.0)
        })
        .await;
        assert_eq!(
            peers,
            Some(1.0),
            "node at {} dropped the killed peer",
            a.http
        );
    }
    let took = killed.elapsed();
    assert!(
        took >= TTL - HEARTBEAT,
        "dropped after {took:?}, before its TTL of {TTL:?}"
    );
    assert!(
        took <= TTL + Duration::from_secs(1) + HEARTBEAT,
        "dropped only after {took:?}"
    );
    keep_alive.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_a_valid_token_and_a_valid_torrent() {
    let cluster = ProcessCluster::start(3, 30);
    let token = cluster.create_token("dave");
    let files = tempfile::tempdir().unwrap();
    let torrent = make_torrent(
        files.path(),
        "t.bin",
        50_000,
        cluster.peer_addrs(),
        cluster.ca,
    );
    let client = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);

    let err = client
        .publish("not-a-token", torrent.encode())
        .await
        .unwrap_err();
    assert_eq!(err, TrackerError::Refused(ApiError::Unauthorized));
    let mut truncated = torrent.encode();
    truncated.truncate(truncated.len() - 10);
    let err = client.publish(&token, truncated).await.unwrap_err();
    assert!(
        matches!(&err, TrackerError::Refused(ApiError::InvalidTorrent(m)) if m.contains("truncated")),
        "{err}"
    );
    let err = client.get_torrent(torrent.info_hash()).await.unwrap_err();
    assert_eq!(
        err,
        TrackerError::Refused(ApiError::UnknownTorrent(torrent.info_hash()))
    );
    // Nothing was stored; a valid publish still works and is served byte for byte.
    client.publish(&token, torrent.encode()).await.unwrap();
    assert_eq!(
        client.get_torrent(torrent.info_hash()).await.unwrap(),
        torrent.encode()
    );
}
