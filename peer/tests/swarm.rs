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
    // Leechers traded among themselves, not only with the seeder.
    let from_peers: u64 = leechers.iter().map(|(_, h, _)| h.status().uploaded).sum();
    assert!(from_peers > 0, "leechers served each other");
    cluster.shutdown();
}
