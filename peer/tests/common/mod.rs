//! Shared by the peer's end-to-end tests: a tracker cluster in this process, peers with
//! their own state directories, torrents of generated files.

#![allow(dead_code)]

pub mod bt;
pub mod procs;
pub mod raw;
pub mod relay;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use peer::runtime::{AddOptions, Peer, PeerConfig, TorrentHandle, TorrentStatus};
use tracker::client::{ClientConfig, TrackerClient};
use tracker::dev::{DevCluster, DevOptions};
use tracker::torrent::Torrent;
use transport::{Backoff, Endpoint};

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
    start_peer_with(dir, name, |_| {}).await
}

/// [`start_peer`] with settings changed by `configure`.
pub async fn start_peer_with(
    dir: &Path,
    name: &str,
    configure: impl FnOnce(&mut PeerConfig),
) -> Peer {
    let mut config = PeerConfig::new("127.0.0.1:0".parse().unwrap(), dir.join(name).join("state"));
    configure(&mut config);
    Peer::start(config).await.expect("peer starts")
}

/// A tracker client sharing the peer's identity, with short timeouts.
pub fn tracker_client(peer: &Peer, torrent: &Torrent) -> Arc<TrackerClient> {
    client_for(peer.endpoint(), torrent)
}

/// A tracker client of the torrent's trackers dialling from `endpoint`, with short
/// timeouts.
pub fn client_for(endpoint: &Endpoint, torrent: &Torrent) -> Arc<TrackerClient> {
    Arc::new(TrackerClient::with_config(
        endpoint.clone(),
        torrent.trackers().to_vec(),
        torrent.tracker_ca(),
        ClientConfig {
            attempt_timeout: Duration::from_millis(2500),
            deadline: Duration::from_secs(30),
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
            ..Default::default()
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

/// Makes a file, its torrent (published with the cluster's dev token) and a seeder of a
/// copy of it.
pub async fn seeded_torrent(
    dir: &Path,
    cluster: &DevCluster,
    len: usize,
    piece_len: u32,
) -> (Torrent, PathBuf, Peer, TorrentHandle) {
    let (torrent, file) = make_payload(
        dir,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        len,
        piece_len,
    );
    publish(&torrent, cluster.token()).await;
    let (seeder, handle, _data) = start_seeder_with(dir, "seeder", &torrent, &file, |_| {}).await;
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

/// Settings that make fault handling quick to observe: a neighbour that delivers nothing
/// for 2 s is disengaged, a dial that takes 2 s is abandoned, and the tracker is asked for
/// newcomers every second at most, so a peer that joins later is found at once.
pub fn quick(config: &mut PeerConfig) {
    config.swarm.request_timeout = Duration::from_secs(2);
    config.swarm.connect_timeout = Duration::from_secs(2);
    config.swarm.tracker_backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
    };
}

/// An endpoint with a fresh identity that only dials (an observer of the tracker).
pub fn fresh_endpoint() -> Endpoint {
    Endpoint::bind(
        certs::Identity::generate_self_signed("observer").unwrap(),
        transport::EndpointConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            transport::InboundTrust::Open,
            &[],
        ),
    )
    .unwrap()
}

/// A tracker client of its own, to look at what the tracker records.
pub fn observer(torrent: &Torrent) -> Arc<TrackerClient> {
    client_for(&fresh_endpoint(), torrent)
}

/// Writes `len` pseudo-random bytes to `dir/original/payload.bin` and makes its torrent
/// for the tracker nodes `trackers` with the cluster CA `ca`.
pub fn make_payload(
    dir: &Path,
    trackers: Vec<std::net::SocketAddr>,
    ca: certs::Fingerprint,
    len: usize,
    piece_len: u32,
) -> (Torrent, PathBuf) {
    let file = dir.join("original").join("payload.bin");
    write_random_file(&file, len, 7);
    let torrent = tracker::torrent::create::from_path(&file, piece_len, trackers, ca, None)
        .expect("torrent of the payload");
    (torrent, file)
}

/// Publishes `torrent` with an API token.
pub async fn publish(torrent: &Torrent, token: &str) {
    observer(torrent)
        .publish(token, torrent.encode())
        .await
        .expect("publish the torrent");
}

/// Starts a seeder of a copy of `original` in `dir/name/data`, and waits until it has
/// verified every piece.
pub async fn start_seeder_with(
    dir: &Path,
    name: &str,
    torrent: &Torrent,
    original: &Path,
    configure: impl FnOnce(&mut PeerConfig),
) -> (Peer, TorrentHandle, PathBuf) {
    let data = dir.join(name).join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(original, data.join(original.file_name().unwrap())).unwrap();
    let peer = start_peer_with(dir, name, configure).await;
    let handle = peer
        .add(
            torrent.clone(),
            &data,
            tracker_client(&peer, torrent),
            AddOptions {
                existing: true,
                seed: true,
            },
            |_| {},
        )
        .await
        .expect("seeder adds its torrent");
    handle.wait_complete().await.unwrap();
    (peer, handle, data)
}

/// [`start_leecher`] with settings changed by `configure`; also returns the tracker client
/// it uses.
pub async fn start_leecher_with(
    dir: &Path,
    name: &str,
    torrent: &Torrent,
    configure: impl FnOnce(&mut PeerConfig),
) -> (Peer, TorrentHandle, PathBuf, Arc<TrackerClient>) {
    let peer = start_peer_with(dir, name, configure).await;
    let data = dir.join(name).join("data");
    let client = tracker_client(&peer, torrent);
    let handle = peer
        .add(
            torrent.clone(),
            &data,
            client.clone(),
            AddOptions::default(),
            |_| {},
        )
        .await
        .expect("leecher adds the torrent");
    (peer, handle, data, client)
}

/// Waits until the torrent's status satisfies `check` (seeing every update), and returns
/// that status; panics with the last status after `limit`.
pub async fn wait_status(
    handle: &TorrentHandle,
    limit: Duration,
    what: &str,
    mut check: impl FnMut(&TorrentStatus) -> bool,
) -> TorrentStatus {
    let mut rx = handle.watch();
    let wait = async {
        loop {
            {
                let status = rx.borrow_and_update();
                if check(&status) {
                    return status.clone();
                }
            }
            if rx.changed().await.is_err() {
                panic!("the torrent's task ended while waiting for: {what}");
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(status) => status,
        Err(_) => panic!(
            "not within {limit:?}: {what}; last status: {:#?}",
            handle.status()
        ),
    }
}

/// Polls `check` every 50 ms until it returns Some, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pieces of `torrent` whose bytes in `file` are those of `original`.
pub fn pieces_on_disk(torrent: &Torrent, file: &Path, original: &Path) -> Vec<u32> {
    let got = std::fs::read(file).unwrap_or_default();
    let want = std::fs::read(original).unwrap();
    let piece_len = torrent.piece_length() as usize;
    (0..torrent.piece_count())
        .filter(|&i| {
            let start = i as usize * piece_len;
            let end = (start + piece_len).min(want.len());
            got.get(start..end) == Some(&want[start..end])
        })
        .collect()
}
