//! A leecher killed with `kill -9` mid-download and started again on the same state and
//! download directories: it keeps every piece that reached its disk and downloads only the
//! rest. The leecher runs in a process of its own (this binary started again, see
//! `common::procs`); the seeder is a raw peer that serves slowly and logs every request,
//! so the test knows exactly what was fetched after the restart.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::procs::{PeerProc, PeerSpec};
use crate::common::raw::{Behaviour, RawPeer};
use crate::common::*;
use tracker::Bitfield;

/// A peer process of these tests. Does nothing unless started by one of them.
#[test]
#[ignore = "a peer process that the resume test starts"]
fn peer_process() {
    common::procs::peer_process_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leecher_killed_and_restarted_resumes_without_fetching_verified_pieces_again() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cluster = tracker_cluster(dir).await;
    let (torrent, original) = make_payload(
        dir,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        4 << 20,
        32 << 10,
    );
    publish(&torrent, cluster.token()).await;
    let torrent_file = dir.join("payload.torrent");
    std::fs::write(&torrent_file, torrent.encode()).unwrap();
    let total = torrent.piece_count();
    // 128 pieces at one per 30 ms: about 4 s for the whole download.
    let seeder = RawPeer::start(
        &torrent,
        Behaviour::Serve {
            data: Arc::new(std::fs::read(&original).unwrap()),
            delay: Duration::from_millis(30),
        },
    );
    seeder.join(Bitfield::full(total)).await;

    // The leecher in a process of its own, killed once it reports a quarter.
    let spec = PeerSpec {
        torrent: torrent_file,
        data: dir.join("leecher").join("data"),
        state: dir.join("leecher").join("state"),
        existing: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
    };
    let mut child = PeerProc::start("resume::peer_process", &spec).await;
    let reported = child
        .progress_where(Duration::from_secs(20), "a quarter downloaded", |p| {
            p.have * 4 >= p.total
        })
        .await;
    child.kill();
    assert!(reported.have < total, "killed mid-download: {reported:?}");

    // What reached the disk: at least every piece reported, and not everything.
    let file = spec.data.join("payload.bin");
    let on_disk = pieces_on_disk(&torrent, &file, &original);
    for piece in reported.held() {
        assert!(
            on_disk.contains(&piece),
            "reported piece {piece} is on disk"
        );
    }
    assert!(
        (on_disk.len() as u32) < total,
        "the kill landed mid-download"
    );
    let bytes_on_disk: u64 = on_disk.iter().map(|&p| torrent.piece_len(p).unwrap()).sum();
    eprintln!(
        "killed with {} pieces reported, {} on disk, of {total}",
        reported.have,
        on_disk.len()
    );

    // Restarted on the same directories (same identity), in this process.
    seeder.clear_requests();
    let (_peer, handle, data, _) = start_leecher_with(dir, "leecher", &torrent, quick).await;
    complete_within(&handle, Duration::from_secs(30)).await;

    let again: Vec<u32> = seeder
        .log()
        .requests
        .into_iter()
        .filter(|p| on_disk.contains(p))
        .collect();
    assert!(
        again.is_empty(),
        "pieces already on disk were fetched again: {again:?}"
    );
    let status = handle.status();
    assert!(
        status.downloaded <= torrent.total_length() - bytes_on_disk,
        "downloaded {} bytes after the restart, but only {} were missing",
        status.downloaded,
        torrent.total_length() - bytes_on_disk
    );
    assert!(same_bytes(&original, &data.join("payload.bin")));
    cluster.shutdown();
}
