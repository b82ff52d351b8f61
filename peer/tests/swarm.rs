//! Whole swarms over real QUIC on loopback: a tracker cluster, a seeder and leechers,
//! real files on disk.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_and_five_leechers_all_complete_with_identical_copies() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let cluster = tracker_cluster(dir.path()).await;
    let (torrent, original, _seeder, _seeding) =
        seeded_torrent(dir.path(), &cluster, 8 << 20, 256 << 10).await;
    let mut leechers = Vec::new();
    for i in 0..5 {
        leechers.push(start_leecher(dir.path(), &format!("leecher{i}"), &torrent).await);
    }
    for (_, handle, data) in &leechers {
        complete_within(handle, Duration::from_secs(60)).await;
        assert!(same_bytes(&original, &data.join("payload.bin")));
    }
    // Leechers traded among themselves, not only with the seeder. A status is refreshed
    // at each tick, so a leecher's last uploads may show only in its next one.
    let mut watches: Vec<_> = leechers.iter().map(|(_, h, _)| h.watch()).collect();
    let served_each_other = async {
        loop {
            let sum: u64 = watches
                .iter_mut()
                .map(|w| w.borrow_and_update().uploaded)
                .sum();
            if sum > 0 {
                return;
            }
            let changes = watches.iter_mut().map(|w| Box::pin(w.changed()));
            let (changed, _, _) = futures::future::select_all(changes).await;
            changed.expect("a leecher's task ended");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), served_each_other)
        .await
        .expect("leechers served each other");
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_neither_side_downloads_over_is_closed() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let cluster = tracker_cluster(dir.path()).await;
    let (torrent, original, _seeder, seeding) =
        seeded_torrent(dir.path(), &cluster, 2 << 20, 256 << 10).await;
    let (_leecher, handle, data) = start_leecher(dir.path(), "leecher", &torrent).await;
    complete_within(&handle, Duration::from_secs(60)).await;
    assert!(same_bytes(&original, &data.join("payload.bin")));
    // Over a link to the seeder (the only holder); its status shows it from its next tick.
    wait_status(
        &seeding,
        Duration::from_secs(10),
        "the seeder counted its upload",
        |s| s.uploaded > 0,
    )
    .await;
    // The seeder never downloads, and the complete leecher no longer does: both ends
    // close the link instead of keeping it (and announcing pieces over it) for good.
    wait_status(
        &seeding,
        Duration::from_secs(10),
        "the seeder's link closed",
        |s| s.neighbours.is_empty(),
    )
    .await;
    wait_status(
        &handle,
        Duration::from_secs(10),
        "the leecher's link closed",
        |s| s.neighbours.is_empty(),
    )
    .await;
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_not_interested_a_peer_that_does_not_download_from_the_neighbour_ends_the_link() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let cluster = tracker_cluster(dir.path()).await;
    let (torrent, _original, seeder, seeding) =
        seeded_torrent(dir.path(), &cluster, 2 << 20, 256 << 10).await;
    let mut probe = raw::probe(seeder.fingerprint(), seeder.addr(), &torrent).await;
    let probe_id = probe.endpoint.fingerprint().to_string();
    // The seeder downloads nothing, so it says so; the link stays, since the probe is
    // taken to download from it.
    let (send, recv) = &mut probe.channel;
    let said = tokio::time::timeout(Duration::from_secs(10), recv.recv::<peer::wire::Control>())
        .await
        .expect("the seeder speaks within 10 s");
    assert!(
        matches!(said, Ok(Some(peer::wire::Control::Interested(false)))),
        "{said:?}"
    );
    wait_status(&seeding, Duration::from_secs(10), "the probe linked", |s| {
        s.neighbours.iter().any(|n| n.fingerprint == probe_id)
    })
    .await;
    // Now neither side downloads: the seeder ends the channel.
    send.send(&peer::wire::Control::Interested(false))
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), recv.recv::<peer::wire::Control>())
        .await
        .expect("the seeder ends the channel within 10 s");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    wait_status(
        &seeding,
        Duration::from_secs(10),
        "the probe's link gone",
        |s| s.neighbours.iter().all(|n| n.fingerprint != probe_id),
    )
    .await;
    cluster.shutdown();
}
