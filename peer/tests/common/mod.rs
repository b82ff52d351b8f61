//! Shared by the peer's end-to-end tests: a tracker cluster in this process, peers with
//! their own state directories, torrents of generated files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use peer::runtime::{AddOptions, Peer, PeerConfig, TorrentHandle};
use tracker::client::{ClientConfig, TrackerClient};
use tracker::dev::{DevCluster, DevOptions};
use tracker::torrent::Torrent;
use transport::Backoff;

/// Logs to the test output when RUST_LOG is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A three-node tracker cluster on loopback.
pub async fn tracker_cluster(dir: &Path) -> DevCluster {
    DevCluster::start(
        &dir.join("tracker"),
        DevOptions {
            http: false,
            ..DevOptions::default()
        },
    )
    .await
    .expect("tracker cluster")
}

/// A peer on loopback with its own state directory below `dir`.
pub async fn start_peer(dir: &Path, name: &str) -> Peer {
    let config = PeerConfig::new("127.0.0.1:0".parse().unwrap(), dir.join(name).join("state"));
    Peer::start(config).await.expect("peer starts")
}

/// A tracker client sharing the peer's identity, with short timeouts.
pub fn tracker_client(peer: &Peer, torrent: &Torrent) -> Arc<TrackerClient> {
    Arc::new(TrackerClient::with_config(
        peer.endpoint().clone(),
        torrent.trackers().to_vec(),
        torrent.tracker_ca(),
        ClientConfig {
            attempt_timeout: Duration::from_millis(2500),
            deadline: Duration::from_secs(30),
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
        },
    ))
}

/// Writes `len` pseudo-random bytes to `path`.
pub fn write_random_file(path: &Path, len: usize, seed: u64) {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Makes a file, its torrent (published with the cluster's dev token) and a seeder.
pub async fn seeded_torrent(
    dir: &Path,
    cluster: &DevCluster,
    len: usize,
    piece_len: u32,
) -> (Torrent, PathBuf, Peer, TorrentHandle) {
    let data_dir = dir.join("seeder-data");
    let file = data_dir.join("payload.bin");
    write_random_file(&file, len, 42);
    let torrent = tracker::torrent::create::from_path(
        &file,
        piece_len,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        None,
    )
    .unwrap();
    let seeder = start_peer(dir, "seeder").await;
    let client = tracker_client(&seeder, &torrent);
    client
        .publish(cluster.token(), torrent.encode())
        .await
        .unwrap();
    let handle = seeder
        .add(
            torrent.clone(),
            &data_dir,
            client,
            AddOptions {
                existing: true,
                seed: true,
            },
            |_| {},
        )
        .await
        .expect("seeder adds its torrent");
    handle.wait_complete().await.unwrap();
    (torrent, file, seeder, handle)
}

/// Starts a leecher of `torrent` downloading into `dir/name/data`.
pub async fn start_leecher(
    dir: &Path,
    name: &str,
    torrent: &Torrent,
) -> (Peer, TorrentHandle, PathBuf) {
    let peer = start_peer(dir, name).await;
    let data = dir.join(name).join("data");
    let handle = peer
        .add(
            torrent.clone(),
            &data,
            tracker_client(&peer, torrent),
            AddOptions::default(),
            |_| {},
        )
        .await
        .expect("leecher adds the torrent");
    (peer, handle, data)
}

/// Waits for completion with a generous bound, printing the status if it is exceeded.
pub async fn complete_within(handle: &TorrentHandle, limit: Duration) {
    match tokio::time::timeout(limit, handle.wait_complete()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("download failed: {e}"),
        Err(_) => panic!("not complete within {limit:?}: {:#?}", handle.status()),
    }
}

/// Whether two files hold the same bytes.
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}
