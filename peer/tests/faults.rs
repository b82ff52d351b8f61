//! Faults in a swarm, over real QUIC with real files: neighbours that never answer, serve
//! garbage, lose a piece on disk or are killed; a tracker node killed mid-download; a
//! client killed for good. Kills are `kill -9` of real processes (this binary started
//! again as a peer or a tracker node, see `common::procs`).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::procs::{PeerProc, PeerSpec, ProcessTrackers};
use crate::common::raw::{Behaviour, RawPeer};
use crate::common::relay::ThrottledRelay;
use crate::common::*;
use peer::runtime::{PeerConfig, TorrentStatus};
use peer::wire::{PieceHeader, PieceRequest};
use tracker::Bitfield;
use tracker::client::TrackerClient;
use tracker::dev::{DevCluster, DevOptions};
use tracker::torrent::Torrent;
use transport::Backoff;

/// The ignored test that [`PeerProc`] runs as a peer process.
const PEER_PROCESS: &str = "faults::peer_process";

/// A peer process of these tests. Does nothing unless started by one of them.
#[test]
#[ignore = "a peer process that the fault tests start"]
fn peer_process() {
    common::procs::peer_process_main();
}

/// A tracker node process of these tests. Does nothing unless started by one of them.
#[test]
#[ignore = "a tracker node process that the fault tests start"]
fn tracker_node_process() {
    common::procs::tracker_node_process_main();
}

/// A three-node tracker cluster in this process, with peers expiring after `peer_ttl_ms`.
async fn cluster(dir: &std::path::Path, peer_ttl_ms: u64) -> DevCluster {
    DevCluster::start(
        &dir.join("tracker"),
        DevOptions {
            http: false,
            peer_ttl_ms,
            ..DevOptions::default()
        },
    )
    .await
    .expect("tracker cluster")
}

/// [`quick`], and a neighbour that failed once stays backed off for 2 to 4 s, long
/// enough for every status update (four a second) to show it.
fn quick_visible_backoff(config: &mut PeerConfig) {
    quick(config);
    config.swarm.backoff = Backoff {
        initial: Duration::from_secs(4),
        max: Duration::from_secs(30),
    };
}

fn neighbour_state<'a>(status: &'a TorrentStatus, peer: &str) -> Option<&'a str> {
    status
        .neighbours
        .iter()
        .find(|n| n.fingerprint == peer)
        .map(|n| n.state.as_str())
}

/// Whether the tracker lists `peer` among the holders of `piece`.
async fn holds(
    client: &TrackerClient,
    torrent: &Torrent,
    piece: u32,
    peer: certs::Fingerprint,
) -> bool {
    client
        .peers_with_piece(torrent.info_hash(), piece, 50)
        .await
        .expect("ask the tracker who has a piece")
        .iter()
        .any(|p| p.fingerprint == peer)
}

/// The tracker's record of `peer` in the torrent's swarm, if it has one.
async fn swarm_member(
    client: &TrackerClient,
    torrent: &Torrent,
    peer: certs::Fingerprint,
) -> Option<tracker::api::PeerInfo> {
    client
        .more_peers(torrent.info_hash(), Vec::new(), 50)
        .await
        .expect("ask the tracker for the swarm's members")
        .into_iter()
        .find(|p| p.fingerprint == peer)
}

/// A torrent of a payload in `dir`, published to `cluster`.
async fn published(
    dir: &std::path::Path,
    cluster: &DevCluster,
    len: usize,
    piece_len: u32,
) -> (Torrent, std::path::PathBuf) {
    let (torrent, original) = make_payload(
        dir,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        len,
        piece_len,
    );
    publish(&torrent, cluster.token()).await;
    (torrent, original)
}

/// A raw peer that serves the payload at `original` correctly, one piece per `delay`.
async fn slow_seeder(torrent: &Torrent, original: &std::path::Path, delay: Duration) -> RawPeer {
    let data = Arc::new(std::fs::read(original).unwrap());
    let seeder = RawPeer::start(torrent, Behaviour::Serve { data, delay });
    seeder.join(Bitfield::full(torrent.piece_count())).await;
    seeder
}

/// Joins a raw peer that claims every piece and misbehaves as `behaviour` says; a leecher
/// that starts while it is the only one with pieces must disengage it (`disengaged` is
/// the status that shows it), and then completes from a real seeder that joins later.
async fn disengage_then_complete(
    configure: fn(&mut PeerConfig),
    behaviour: Behaviour,
    disengaged: &str,
    mut check: impl FnMut(&TorrentStatus, &str) -> bool,
) -> (RawPeer, TorrentStatus, Duration, TorrentStatus) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cluster = cluster(dir, 30_000).await;
    let (torrent, original) = published(dir, &cluster, 2 << 20, 64 << 10).await;
    let bad = RawPeer::start(&torrent, behaviour);
    bad.join(Bitfield::full(torrent.piece_count())).await;
    let bad_fp = bad.fingerprint().to_string();

    let (_leecher, handle, data, _) = start_leecher_with(dir, "leecher", &torrent, configure).await;
    let started = Instant::now();
    let seen = wait_status(&handle, Duration::from_secs(15), disengaged, |s| {
        check(s, &bad_fp)
    })
    .await;
    let after = started.elapsed();
    assert_eq!(seen.pieces_have, 0, "nothing came from the bad peer");

    // A real seeder joins; the leecher finds it through the tracker and completes.
    let (_seeder, _seeding, _) =
        start_seeder_with(dir, "seeder", &torrent, &original, |_| {}).await;
    complete_within(&handle, Duration::from_secs(20)).await;
    assert!(
        same_bytes(&original, &data.join("payload.bin")),
        "the download is byte for byte the original"
    );
    let last = handle.status();
    cluster.shutdown();
    (bad, seen, after, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbour_that_accepts_but_never_answers_hello_is_backed_off_and_others_complete() {
    init_logs();
    let (silent, _, after, _) = disengage_then_complete(
        quick_visible_backoff,
        Behaviour::Silent,
        "the silent neighbour is backed off",
        |s, peer| neighbour_state(s, peer) == Some("backed off"),
    )
    .await;
    let log = silent.log();
    assert!(log.connections >= 1, "the leecher dialled the silent peer");
    assert!(log.requests.is_empty(), "no Hello, so no piece requests");
    // The swarm's connect timeout (2 s), not a transport error, let it go.
    assert!(
        after >= Duration::from_millis(1900),
        "backed off after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbour_that_never_answers_piece_requests_is_backed_off_and_others_complete() {
    init_logs();
    let (staller, _, after, _) = disengage_then_complete(
        quick_visible_backoff,
        Behaviour::Stall,
        "the stalling neighbour is backed off",
        |s, peer| neighbour_state(s, peer) == Some("backed off"),
    )
    .await;
    let log = staller.log();
    assert!(log.hellos >= 1, "the leecher exchanged Hellos with it");
    assert!(!log.requests.is_empty(), "the leecher asked it for pieces");
    // Disengaged by the request timeout (2 s), not before.
    assert!(
        after >= Duration::from_millis(1900),
        "backed off after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_serving_corrupt_data_is_banned_and_the_download_is_still_byte_for_byte_correct() {
    init_logs();
    let (corrupt, seen, _, last) = disengage_then_complete(
        quick_visible_backoff,
        Behaviour::Corrupt {
            delay: Duration::ZERO,
        },
        "the corrupt peer is banned",
        |s, _| s.banned >= 1,
    )
    .await;
    let fp = corrupt.fingerprint().to_string();
    assert!(
        !corrupt.log().requests.is_empty(),
        "it was asked for pieces"
    );
    assert!(
        neighbour_state(&seen, &fp).is_none(),
        "a banned peer is no longer a neighbour: {seen:#?}"
    );
    assert!(
        corrupt
            .log()
            .closed
            .iter()
            .any(|why| why.contains("banned")),
        "the leecher closed the connection saying why: {:?}",
        corrupt.log().closed
    );
    assert!(last.banned >= 1);
    assert_eq!(
        corrupt.log().connections,
        1,
        "a banned peer is never dialled again, though the tracker still lists it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_with_many_requests_in_flight_counts_as_one_banned_neighbour() {
    init_logs();
    let (_, _, _, last) = disengage_then_complete(
        |c| {
            quick(c);
            // Eight requests in flight to the corrupt peer at once.
            c.swarm.min_in_flight = 8;
        },
        // All eight answered at once.
        Behaviour::Corrupt {
            delay: Duration::from_millis(300),
        },
        "the corrupt peer is banned",
        |s, _| s.banned >= 1,
    )
    .await;
    assert_eq!(last.banned, 1, "one neighbour sent corrupt data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_with_a_damaged_piece_answers_not_have_stops_advertising_it_and_the_tracker_forgets_it()
 {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cluster = cluster(dir, 30_000).await;
    let (torrent, original) = published(dir, &cluster, 2 << 20, 64 << 10).await;
    let total = torrent.piece_count();
    let piece = 5u32;
    let (damaged, damaged_handle, damaged_data) =
        start_seeder_with(dir, "damaged", &torrent, &original, quick).await;
    let observer = observer(&torrent);
    eventually(
        Duration::from_secs(10),
        "the tracker lists the seeder for the piece",
        || async {
            holds(&observer, &torrent, piece, damaged.fingerprint())
                .await
                .then_some(())
        },
    )
    .await;

    // The piece's bytes change on disk after the seeder verified them.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(damaged_data.join("payload.bin"))
            .unwrap();
        file.seek(SeekFrom::Start(
            u64::from(piece) * u64::from(torrent.piece_length()) + 1000,
        ))
        .unwrap();
        file.write_all(&[0x5Au8; 100]).unwrap();
        file.sync_all().unwrap();
    }

    // A leecher gets every other piece; asked for this one, the seeder says "not have".
    let (_leecher, handle, data, _) = start_leecher_with(dir, "leecher", &torrent, quick).await;
    let damaged_fp = damaged.fingerprint().to_string();
    wait_status(
        &handle,
        Duration::from_secs(20),
        "every piece but the damaged one, and the seeder no longer offering it",
        |s| {
            s.pieces_have == total - 1
                && s.piece_map.as_bytes()[piece as usize] == b'.'
                && s.neighbours
                    .iter()
                    .any(|n| n.fingerprint == damaged_fp && n.pieces == total - 1)
        },
    )
    .await;
    wait_status(
        &damaged_handle,
        Duration::from_secs(5),
        "the seeder dropped the damaged piece",
        |s| s.pieces_have == total - 1 && s.piece_map.as_bytes()[piece as usize] == b'.',
    )
    .await;

    // The tracker's record is corrected: not listed for that piece, still for the others.
    eventually(
        Duration::from_secs(10),
        "the tracker stops listing the seeder for the damaged piece",
        || async {
            (!holds(&observer, &torrent, piece, damaged.fingerprint()).await).then_some(())
        },
    )
    .await;
    assert!(holds(&observer, &torrent, piece + 1, damaged.fingerprint()).await);

    // A new neighbour is told it lacks the piece, and asking for it gets "not have".
    let probe = common::raw::probe(damaged.fingerprint(), damaged.addr(), &torrent).await;
    assert!(
        !probe.bitfield.get(piece),
        "the seeder stopped advertising it"
    );
    assert_eq!(probe.bitfield.count(), total - 1);
    let (header, _) = probe
        .connection
        .request_chunk::<_, PieceHeader>(&PieceRequest {
            info_hash: torrent.info_hash(),
            piece,
            holds: 0,
        })
        .await
        .unwrap();
    assert_eq!(header, PieceHeader::NotHave);
    probe.connection.close(0, "done");

    // An intact seeder arrives: the leecher and the damaged seeder both complete.
    let (_intact, _intact_handle, _) =
        start_seeder_with(dir, "intact", &torrent, &original, |_| {}).await;
    complete_within(&handle, Duration::from_secs(20)).await;
    complete_within(&damaged_handle, Duration::from_secs(20)).await;
    assert!(same_bytes(&original, &data.join("payload.bin")));
    assert!(
        same_bytes(&original, &damaged_data.join("payload.bin")),
        "the damaged seeder repaired its copy"
    );
    eventually(
        Duration::from_secs(10),
        "the tracker lists the repaired seeder for the piece again",
        || async {
            holds(&observer, &torrent, piece, damaged.fingerprint())
                .await
                .then_some(())
        },
    )
    .await;
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_client_is_dropped_by_the_tracker_after_its_ttl_and_the_others_complete() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ttl = Duration::from_secs(2);
    let cluster = cluster(dir, ttl.as_millis() as u64).await;
    let (torrent, original) = published(dir, &cluster, 2 << 20, 32 << 10).await;
    let torrent_file = dir.join("payload.torrent");
    std::fs::write(&torrent_file, torrent.encode()).unwrap();
    let _seeder = slow_seeder(&torrent, &original, Duration::from_millis(40)).await;

    let mut victim = PeerProc::start(
        PEER_PROCESS,
        &PeerSpec {
            torrent: torrent_file,
            data: dir.join("victim").join("data"),
            state: dir.join("victim").join("state"),
            existing: false,
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
        },
    )
    .await;
    let (_leecher, handle, data, _) = start_leecher_with(dir, "leecher", &torrent, quick).await;
    let observer = observer(&torrent);
    victim
        .progress_where(Duration::from_secs(20), "a quarter downloaded", |p| {
            p.have * 4 >= p.total
        })
        .await;
    assert!(
        swarm_member(&observer, &torrent, victim.fingerprint)
            .await
            .is_some(),
        "the tracker lists the peer while it runs"
    );
    victim.kill();
    let killed = Instant::now();

    eventually(
        ttl + Duration::from_secs(5),
        "the tracker drops the killed peer",
        || async {
            swarm_member(&observer, &torrent, victim.fingerprint)
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "the killed peer was dropped {:?} after the kill",
        killed.elapsed()
    );
    complete_within(&handle, Duration::from_secs(25)).await;
    assert!(same_bytes(&original, &data.join("payload.bin")));
    assert!(
        swarm_member(&observer, &torrent, victim.fingerprint)
            .await
            .is_none(),
        "nobody brought the killed peer back"
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbour_killed_mid_transfer_does_not_stop_the_others_from_completing() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cluster = cluster(dir, 30_000).await;
    let len = 4u64 << 20;
    let (torrent, original) = published(dir, &cluster, len as usize, 64 << 10).await;
    let torrent_file = dir.join("payload.torrent");
    std::fs::write(&torrent_file, torrent.encode()).unwrap();
    // A slow seeder that stays, ...
    let _seeder = slow_seeder(&torrent, &original, Duration::from_millis(40)).await;
    // ... and a seeder in a process of its own, behind a relay that limits what it sends
    // to 4 MB/s and shows when it is sending.
    let listen = common::procs::free_udp();
    let relay = ThrottledRelay::start(listen, 4_000_000).await;
    let victim_data = dir.join("victim").join("data");
    std::fs::create_dir_all(&victim_data).unwrap();
    std::fs::copy(&original, victim_data.join("payload.bin")).unwrap();
    let mut victim = PeerProc::start(
        PEER_PROCESS,
        &PeerSpec {
            torrent: torrent_file,
            data: victim_data,
            state: dir.join("victim").join("state"),
            existing: true,
            listen,
            advertise: Some(relay.front),
        },
    )
    .await;
    victim
        .progress_where(Duration::from_secs(20), "the victim seeds", |p| {
            p.have == p.total
        })
        .await;

    let (_leecher, handle, data, _) = start_leecher_with(dir, "leecher", &torrent, quick).await;
    // Killed while sending: a quarter of the file has gone through, and more is going.
    let sent = eventually(
        Duration::from_secs(20),
        "the victim is sending its second quarter",
        || async {
            let r = relay.relayed();
            let busy = r
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(20));
            (r.bytes >= len / 4 && busy).then_some(r.bytes)
        },
    )
    .await;
    victim.kill();
    let at_kill = handle.status();
    eprintln!(
        "killed the victim after it sent {sent} bytes; the leecher had {} of {} pieces",
        at_kill.pieces_have, at_kill.pieces_total
    );
    assert!(
        at_kill.pieces_have < at_kill.pieces_total,
        "killed mid-download"
    );

    complete_within(&handle, Duration::from_secs(25)).await;
    assert!(same_bytes(&original, &data.join("payload.bin")));
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leecher_fails_over_to_another_tracker_node_when_its_node_is_killed_and_completes() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut trackers =
        ProcessTrackers::start(&dir.join("trackers"), "faults::tracker_node_process", 3).await;
    let (torrent, original) =
        make_payload(dir, trackers.peer_addrs(), trackers.ca(), 2 << 20, 32 << 10);
    publish(&torrent, trackers.token()).await;
    let _seeder = slow_seeder(&torrent, &original, Duration::from_millis(60)).await;

    let (leecher, handle, data, client) = start_leecher_with(dir, "leecher", &torrent, quick).await;
    let halfway = wait_status(&handle, Duration::from_secs(20), "half downloaded", |s| {
        s.pieces_have * 2 >= s.pieces_total
    })
    .await;
    assert!(
        halfway.pieces_have < halfway.pieces_total,
        "killed mid-download"
    );
    let node = client.current_node().expect("the leecher uses a node");
    let failovers = client.failovers();
    let id = trackers.kill_node_at(node);
    eprintln!("killed tracker node {id} at {node} with the download half done");

    complete_within(&handle, Duration::from_secs(25)).await;
    assert!(same_bytes(&original, &data.join("payload.bin")));
    // The leecher's reports went to another node, ...
    let status = wait_status(
        &handle,
        Duration::from_secs(15),
        "the leecher's tracker requests failed over",
        |s| s.tracker_failovers > failovers && s.tracker.is_some_and(|t| t != node),
    )
    .await;
    assert_ne!(client.current_node(), Some(node));
    eprintln!(
        "{} fail-overs, now talking to {:?}",
        status.tracker_failovers, status.tracker
    );
    // ... and the surviving nodes know it completed.
    let observer = observer(&torrent);
    eventually(
        Duration::from_secs(15),
        "the tracker records the leecher as complete",
        || async {
            swarm_member(&observer, &torrent, leecher.fingerprint())
                .await
                .filter(|p| p.pieces == torrent.piece_count())
                .map(|_| ())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_gained_while_no_tracker_node_answers_are_reported_once_one_does() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cluster = cluster(dir, 30_000).await;
    let (torrent, original) = published(dir, &cluster, 2 << 20, 32 << 10).await;
    let total = torrent.piece_count();
    // 64 pieces at one per 100 ms: about 6 s for the whole download.
    let _seeder = slow_seeder(&torrent, &original, Duration::from_millis(100)).await;

    // The leecher reaches the tracker nodes through relays that the test can cut.
    let mut relays = Vec::new();
    for node in cluster.peer_addrs() {
        relays.push(ThrottledRelay::start(node, u64::MAX).await);
    }
    let peer = common::start_peer_with(dir, "leecher", |c| {
        quick(c);
        // A heartbeat and a report each fail within 1.2 s while no node answers, so
        // with a heartbeat every 3 s failures never queue up behind each other.
        c.swarm.heartbeat_interval = Duration::from_secs(3);
    })
    .await;
    let client = Arc::new(TrackerClient::with_config(
        peer.endpoint().clone(),
        relays.iter().map(|r| r.front).collect(),
        torrent.tracker_ca(),
        tracker::client::ClientConfig {
            attempt_timeout: Duration::from_millis(400),
            deadline: Duration::from_secs(1),
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            ..Default::default()
        },
    ));
    let data = dir.join("leecher").join("data");
    let handle = peer
        .add(
            torrent.clone(),
            &data,
            client,
            peer::runtime::AddOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    let observer = observer(&torrent);
    let me = peer.fingerprint();
    let recorded = || async {
        swarm_member(&observer, &torrent, me)
            .await
            .map_or(0, |p| p.pieces)
    };
    eventually(
        Duration::from_secs(10),
        "the tracker records some of the leecher's pieces",
        || async { (recorded().await > 0).then_some(()) },
    )
    .await;

    // No node answers while the leecher gets the rest of the pieces, nor for a few
    // heartbeats after it completes (reports and heartbeats fail meanwhile); then they
    // answer again.
    for relay in &relays {
        relay.cut(true);
    }
    let cut_at = handle.status().pieces_have;
    complete_within(&handle, Duration::from_secs(20)).await;
    assert!(cut_at < total / 2, "most pieces came during the outage");
    // Long enough for two heartbeats and their retried reports to fail.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for relay in &relays {
        relay.cut(false);
    }
    assert!(same_bytes(&original, &data.join("payload.bin")));

    // Every piece ends up in the tracker's record, including those gained in the outage.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = recorded().await;
    while last < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = recorded().await;
    }
    assert_eq!(
        last, total,
        "the tracker records {last} of the complete leecher's {total} pieces"
    );
    cluster.shutdown();
}

/// The members of the torrent's swarm as the tracker records them.
async fn swarm_members(client: &TrackerClient, torrent: &Torrent) -> Vec<tracker::api::PeerInfo> {
    client
        .more_peers(torrent.info_hash(), Vec::new(), 50)
        .await
        .expect("ask the tracker for the swarm's members")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_stopped_past_the_ttl_rejoins_when_continued_and_a_new_download_completes() {
    use crate::common::bt::{BtProc, status_of, torrent_written};
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let trackers = ProcessTrackers::start_with_ttl(
        &dir.join("trackers"),
        "faults::tracker_node_process",
        3,
        3_000,
    )
    .await;
    let original = dir.join("share").join("payload.bin");
    write_random_file(&original, 1 << 20, 21);
    let torrent_file = dir.join("payload.torrent");
    let seed_state = dir.join("seeder");
    let seeder = BtProc::seed(&seed_state, &trackers, &original, &torrent_file);
    let torrent = torrent_written(&torrent_file, Duration::from_secs(20)).await;
    let observer = observer(&torrent);
    let full = torrent.piece_count();
    let seeding = || async {
        swarm_members(&observer, &torrent)
            .await
            .into_iter()
            .any(|p| p.pieces == full)
            .then_some(())
    };
    eventually(
        Duration::from_secs(30),
        "the seeder is in the swarm",
        seeding,
    )
    .await;

    // Stopped for longer than the TTL: the tracker expires it.
    seeder.signal("STOP");
    eventually(
        Duration::from_secs(30),
        "the tracker expires the stopped seeder",
        || async {
            swarm_members(&observer, &torrent)
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    seeder.signal("CONT");

    // Its first heartbeat is refused as "not in the swarm": it joins again, with every
    // piece, and says so.
    eventually(
        Duration::from_secs(20),
        "the continued seeder is back in the swarm with every piece",
        seeding,
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "bt status shows the seeder seeding",
        || async { status_of(&seed_state).contains("Seeding").then_some(()) },
    )
    .await;

    let output = dir.join("got");
    let mut leecher = BtProc::get(&dir.join("leecher"), &torrent_file, &output, &["--no-seed"]);
    let (status, stderr) = leecher.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "bt get failed: {stderr}");
    assert!(same_bytes(&original, &output.join("payload.bin")));
}
