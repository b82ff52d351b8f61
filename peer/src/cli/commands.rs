//! One function per `bt` subcommand. Each prints what a person needs to see and returns
//! an error whose chain says what failed and what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use certs::Fingerprint;
use tracker::client::TrackerClient;

use super::follow::{Download, follow, resume_command};
use super::make::{make_torrent, write_torrent};
use super::progress::{connected_neighbours, hashing_bar};
use super::settings::{NetSettings, check_download_dir};
use super::source::{client_endpoint, load_torrent, read_torrent_file};
use crate::runtime::AddOptions;
use crate::status_file;

/// The tracker cluster a new torrent names.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Its nodes' peer addresses.
    pub trackers: Vec<SocketAddr>,
    /// Its CA's fingerprint.
    pub ca: Fingerprint,
}

/// `bt create`: writes a torrent file of `path` to `output`.
pub async fn create(
    path: &Path,
    output: &Path,
    cluster: &Cluster,
    piece_kib: Option<u32>,
    comment: Option<String>,
) -> anyhow::Result<()> {
    let torrent = make_torrent(path, &cluster.trackers, cluster.ca, piece_kib, comment).await?;
    write_torrent(&torrent, output)?;
    println!(
        "wrote {} ({}, {} pieces), info hash {}",
        output.display(),
        tracker::format::size(torrent.total_length()),
        torrent.piece_count(),
        torrent.info_hash()
    );
    Ok(())
}

/// `bt publish`: publishes the torrent file at `path` on its tracker with `token`.
pub async fn publish(path: &Path, token: &str) -> anyhow::Result<()> {
    let (torrent, bytes) = read_torrent_file(path)?;
    let client = TrackerClient::for_torrent(client_endpoint()?, &torrent);
    let hash = client.publish(token, bytes).await?;
    println!("published {} as {hash}", torrent.name());
    Ok(())
}

/// `bt seed`: makes a torrent of `path` (also written to `output` if given), publishes
/// it with `token`, and seeds it until interrupted.
pub async fn seed(
    state: &Path,
    path: &Path,
    cluster: &Cluster,
    token: &str,
    output: Option<&Path>,
    net: &NetSettings,
) -> anyhow::Result<()> {
    let torrent = make_torrent(path, &cluster.trackers, cluster.ca, None, None).await?;
    if let Some(output) = output {
        write_torrent(&torrent, output)?;
    }
    let peer = net.start_peer(state).await?;
    let client = Arc::new(TrackerClient::for_torrent(
        peer.endpoint().clone(),
        &torrent,
    ));
    client.publish(token, torrent.encode()).await?;
    println!("published {} as {}", torrent.name(), torrent.info_hash());
    let root = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    let parent = root.parent().unwrap_or(Path::new("/")).to_path_buf();
    let bar = hashing_bar(torrent.total_length(), "checking");
    let progress_bar = bar.clone();
    let handle = peer
        .add(
            torrent.clone(),
            &parent,
            client,
            AddOptions {
                existing: true,
                seed: true,
            },
            move |p| progress_bar.set_position(p.bytes_done),
        )
        .await?;
    bar.finish_and_clear();
    net.serve_dashboard(std::slice::from_ref(&handle)).await?;
    println!(
        "seeding {} from {}; Ctrl-C to stop",
        torrent.name(),
        peer.addr()
    );
    follow(&peer, state, vec![handle], None).await
}

/// What `bt get` downloads, and where.
#[derive(Debug, Clone)]
pub struct GetRequest {
    /// A torrent file, or an info hash (then `trackers` and `ca` are needed).
    pub torrent: String,
    /// The download directory.
    pub output: PathBuf,
    /// Tracker nodes to ask for the torrent file of an info hash.
    pub trackers: Vec<SocketAddr>,
    /// The tracker cluster's CA, for an info hash.
    pub ca: Option<Fingerprint>,
    /// Exit once complete instead of seeding.
    pub no_seed: bool,
}

/// `bt get`: downloads a torrent, then seeds it until interrupted (unless `no_seed`).
pub async fn get(state: &Path, request: &GetRequest, net: &NetSettings) -> anyhow::Result<()> {
    check_download_dir(&request.output)?;
    let resume = resume_command();
    let peer = net.start_peer(state).await?;
    let torrent = load_torrent(
        &request.torrent,
        &request.trackers,
        request.ca,
        peer.endpoint(),
    )
    .await?;
    let client = Arc::new(TrackerClient::for_torrent(
        peer.endpoint().clone(),
        &torrent,
    ));
    let bar = hashing_bar(torrent.total_length(), "checking");
    let progress_bar = bar.clone();
    let handle = peer
        .add(
            torrent.clone(),
            &request.output,
            client,
            AddOptions {
                existing: false,
                seed: !request.no_seed,
            },
            move |p| progress_bar.set_position(p.bytes_done),
        )
        .await?;
    bar.finish_and_clear();
    net.serve_dashboard(std::slice::from_ref(&handle)).await?;
    let download = Download {
        keep_seeding: !request.no_seed,
        resume,
    };
    follow(&peer, state, vec![handle], Some(download)).await
}

/// `bt status`: what the `bt` processes of the state directory `state` download and seed.
pub fn status(state: &Path) {
    let all = status_file::read_all(state);
    if all.is_empty() {
        println!(
            "no bt process is downloading or seeding (state {})",
            state.display()
        );
    }
    for process in all {
        println!(
            "process {} at {} ({})",
            process.pid, process.addr, process.fingerprint
        );
        for t in process.torrents {
            println!(
                "  {:<30} {:>6.1}%  {:>10}/s down {:>10}/s up  {} neighbours  {:?}",
                t.name,
                t.fraction() * 100.0,
                tracker::format::size(t.download_rate as u64),
                tracker::format::size(t.upload_rate as u64),
                connected_neighbours(&t),
                t.phase
            );
        }
    }
}
