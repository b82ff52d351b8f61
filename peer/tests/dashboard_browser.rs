//! The peer dashboard in a real browser (headless Chromium through chromedriver): a
//! leecher downloads from a seeder through a tracker cluster in this process, and the page
//! shows it reach 100 %; pause, resume and remove work from the page; a forged action
//! without the CSRF token is refused. Screenshots go to `target/web-screenshots/`.

#[path = "../../tracker/tests/browser/mod.rs"]
mod browser;
use crate::common;

use std::path::Path;
use std::time::Duration;

use browser::Browser;
use browser::plain_http;
use peer::dashboard::{self, DashboardOptions, DashboardState};
use peer::runtime::{Peer, TorrentHandle};
use tracker::dev::DevCluster;
use tracker::torrent::Torrent;

/// A seeder of a generated 6 MiB file, and its torrent.
async fn seeder(dir: &Path, cluster: &DevCluster) -> (Torrent, Peer, TorrentHandle) {
    let file = dir.join("original").join("release-image.bin");
    common::write_random_file(&file, 6 << 20, 42);
    let torrent = tracker::torrent::create::from_path(
        &file,
        64 * 1024,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        None,
    )
    .unwrap();
    common::publish(&torrent, cluster.token()).await;
    let (peer, handle, _data) =
        common::start_seeder_with(dir, "seeder", &torrent, &file, |_| {}).await;
    (torrent, peer, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_shows_a_download_reach_100_percent_and_controls_it() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let (torrent, _seeder, _seeding) = seeder(dir.path(), &cluster).await;

    // The dashboard of the leecher, on loopback; it would refuse any other address.
    let state = DashboardState::default();
    assert!(
        dashboard::check_address("0.0.0.0:0".parse().unwrap(), &DashboardOptions::default())
            .is_err()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dashboard::serve(listener, state.clone()));

    let b = Browser::start("dashboard").await;
    b.goto(&format!("http://{addr}/")).await;
    b.find("#empty").await;

    let (_leecher, handle, _data) = common::start_leecher(dir.path(), "leecher", &torrent).await;
    state.add(handle.clone());
    let hash = handle.info_hash().to_string();
    let card = format!("section.torrent[data-hash=\"{hash}\"]");

    b.wait_until(Duration::from_secs(60), "the download at 100 %", || async {
        b.has(&format!("{card} .pct")).await && b.text(&format!("{card} .pct")).await == "100.0 %"
    })
    .await;
    b.wait_until(Duration::from_secs(10), "the torrent seeding", || async {
        b.text(&format!("{card} .state")).await == "Seeding"
    })
    .await;
    assert_eq!(b.text(&format!("{card} h2")).await, "release-image.bin");
    // Let the chart gather a few seconds of history for the screenshot.
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.screenshot("seeding").await;

    // A forged action without the token is refused.
    let forged = plain_http::request(
        addr,
        "POST",
        &format!("/api/torrents/{hash}/remove"),
        &[],
        b"",
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // A request naming another host (DNS rebinding) is refused.
    let rebound = plain_http::request(
        addr,
        "GET",
        "/api/torrents",
        &[("Host", "evil.example".into())],
        b"",
    )
    .await;
    assert_eq!(rebound.status, 403, "{}", rebound.body);

    // Pause and resume from the page.
    b.click(&format!("{card} button.pause")).await;
    b.wait_until(Duration::from_secs(10), "the torrent paused", || async {
        b.text(&format!("{card} .state")).await == "Paused"
    })
    .await;
    b.screenshot("paused").await;
    b.click(&format!("{card} button.pause")).await;
    b.wait_until(
        Duration::from_secs(10),
        "the torrent seeding again",
        || async { b.text(&format!("{card} .state")).await == "Seeding" },
    )
    .await;

    // Remove, after the page asks to confirm.
    b.click(&format!("{card} button.remove")).await;
    b.client
        .accept_alert()
        .await
        .expect("a confirmation dialog");
    b.wait_until(Duration::from_secs(10), "the torrent gone", || async {
        !b.has(&card).await
    })
    .await;
    assert!(state.handles().is_empty());
    b.close().await;
    cluster.shutdown();
}
