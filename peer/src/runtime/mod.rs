//! The peer's tokio runtime: one QUIC endpoint for everything, and per torrent a task
//! that drives the [`Swarm`](crate::swarm::Swarm) core with real connections, the
//! [`PieceStore`] and the tracker client.
//!
//! * [`Peer`] owns the endpoint (its key is the peer's identity, kept in the state
//!   directory so a restarted peer is the same peer), accepts connections from other peers
//!   and serves their piece requests (`serve`), and holds the torrents.
//! * Each torrent runs in a task of its own (`torrent`): it joins the swarm, carries out
//!   the core's actions (dial, request, cancel, report, heartbeat), feeds back what came
//!   of them, and publishes a [`TorrentStatus`] for progress bars and dashboards.
//! * Memory is bounded: piece buffers being downloaded are limited by
//!   [`PeerConfig::download_buffer`], pieces being served by [`PeerConfig::max_serving`].

//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Peer`]: start, add a torrent, shut down |
//! | `config.rs`, `error.rs` | [`PeerConfig`], [`AddOptions`], [`PeerError`] |
//! | `identity.rs` | the identity on disk, made once under a lock |
//! | `shared.rs` | what every task of the peer shares (endpoint, torrents, budgets, bans) |
//! | `torrent_handle.rs` | [`TorrentHandle`]: follow and steer one torrent |
//! | `events.rs` | the events a torrent's task receives, from every source |
//! | `torrent/` | the torrent's task: its loop, inputs, actions, dialing, downloads, tracker calls, checkpoints, status |
//! | `link.rs` | an established link to a neighbour: `Hello`, the control channel's reader and writer |
//! | `serve.rs` | accepting peers and serving their piece requests |
//! | `buffers.rs`, `status.rs` | reused piece buffers; the published [`TorrentStatus`] |

mod buffers;
mod config;
mod error;
mod events;
mod identity;
mod link;
mod serve;
mod shared;
mod status;
mod torrent;
mod torrent_handle;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use certs::Fingerprint;
use tokio::sync::{Semaphore, mpsc, watch};
use tracker::client::TrackerClient;
use tracker::torrent::{InfoHash, Torrent};
use transport::{Backoff, Dialer, Endpoint, EndpointConfig, InboundTrust};

use crate::storage::{HashProgress, PieceStore, StoreOptions};
use crate::wire::ALPN_PEER;

pub use config::{AddOptions, PeerConfig};
pub use error::PeerError;
pub use identity::load_or_create_identity;
use shared::lock;
pub(crate) use shared::{Entry, Shared};
pub use status::{NeighbourStatus, Phase, TorrentStatus};
pub use torrent_handle::TorrentHandle;

/// A running peer. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
}

impl Peer {
    /// Binds the endpoint and starts accepting other peers.
    pub async fn start(config: PeerConfig) -> Result<Peer, PeerError> {
        let identity = load_or_create_identity(&config.state_dir)?;
        let mut endpoint_config =
            EndpointConfig::new(config.listen, InboundTrust::Open, &[ALPN_PEER]);
        // Frames from other peers are bounded by the peer protocol's maximum; torrent
        // files from the tracker come in one answer, so tracker connections allow more.
        endpoint_config.max_frame = crate::wire::MAX_FRAME_LEN;
        endpoint_config.alpn_max_frames = vec![(
            tracker::api::ALPN_TRACKER.to_vec(),
            tracker::api::MAX_FRAME_LEN,
        )];
        let endpoint = Endpoint::bind(identity, endpoint_config)?;
        let bound = endpoint.local_addr();
        let advertise = config.advertise.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], bound.port()))
            } else {
                bound
            }
        });
        let dialer = Dialer::new(endpoint.clone(), Backoff::default());
        let shared = Arc::new(Shared {
            endpoint,
            dialer,
            advertise,
            torrents: Mutex::new(HashMap::new()),
            download_buffer: Arc::new(Semaphore::new((config.download_buffer >> 10).max(1))),
            serving: Arc::new(Semaphore::new(config.max_serving.max(1))),
            banned: Mutex::new(HashSet::new()),
            config,
        });
        tokio::spawn(serve::accept_loop(shared.clone()));
        Ok(Peer { shared })
    }

    /// This peer's identity.
    pub fn fingerprint(&self) -> Fingerprint {
        self.shared.endpoint.fingerprint()
    }

    /// The address other peers dial.
    pub fn addr(&self) -> SocketAddr {
        self.shared.advertise
    }

    /// The peer's endpoint (to build a tracker client that shares its identity).
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// Adds a torrent: opens (or creates) its files below `download_root`, joins its swarm
    /// through `tracker`, and downloads and serves it in a task of its own. `progress` is
    /// called while pieces already on disk are hashed.
    ///
    /// Fails at once when the files cannot be opened or no tracker node answers the join
    /// (the error lists the nodes tried). A download that fails so before holding a
    /// piece removes the files and directories it created.
    pub async fn add(
        &self,
        torrent: Torrent,
        download_root: &Path,
        tracker: Arc<TrackerClient>,
        options: AddOptions,
        progress: impl FnMut(HashProgress) + Send + 'static,
    ) -> Result<TorrentHandle, PeerError> {
        let info_hash = torrent.info_hash();
        if self.shared.entry(&info_hash).is_some() {
            return Err(PeerError::Duplicate(info_hash));
        }
        let torrent = Arc::new(torrent);
        let state_dir = self.shared.config.state_dir.join("torrents");
        let root = download_root.to_path_buf();
        let open_torrent = torrent.clone();
        let store_options = StoreOptions {
            verify_all: options.existing,
            must_exist: options.existing,
            ..StoreOptions::default()
        };
        let mut progress = progress;
        let (store, _report) = tokio::task::spawn_blocking(move || {
            PieceStore::open_with(
                open_torrent,
                &root,
                &state_dir,
                &store_options,
                &mut progress,
            )
        })
        .await
        .map_err(|e| PeerError::Io {
            path: download_root.to_path_buf(),
            error: std::io::Error::other(e.to_string()),
        })??;
        let store = Arc::new(store);
        let joined = match tracker
            .join(
                info_hash,
                self.shared.advertise,
                store.have(),
                self.shared.config.swarm.max_neighbours as u32,
            )
            .await
        {
            Ok(joined) => joined,
            Err(e) => {
                // A download that never started leaves nothing behind: no empty sparse
                // files that look like data.
                let cleanup = store.clone();
                let _ = tokio::task::spawn_blocking(move || cleanup.remove_if_empty()).await;
                return Err(e.into());
            }
        };

        let (events, inbox) = mpsc::unbounded_channel();
        let entry = Arc::new(Entry {
            torrent: torrent.clone(),
            store: store.clone(),
            events: events.clone(),
            serving: AtomicBool::new(true),
            uploaded: AtomicU64::new(0),
            buffers: buffers::BufferPool::new(self.shared.config.download_buffer),
        });
        {
            let mut torrents = lock(&self.shared.torrents);
            if torrents.contains_key(&info_hash) {
                return Err(PeerError::Duplicate(info_hash));
            }
            torrents.insert(info_hash, entry.clone());
        }
        // Where the torrent's data is: its one file, or its top directory.
        let path = if torrent.is_single_file() {
            torrent.output_path(download_root, 0)
        } else {
            Some(download_root.join(torrent.name()))
        }
        .unwrap_or_else(|| download_root.to_path_buf());
        let (status_tx, status_rx) = watch::channel(torrent::initial_status(&torrent, &path));
        let task = torrent::TorrentTask::new(
            self.shared.clone(),
            entry,
            tracker,
            joined,
            options,
            status_tx,
            path,
        );
        let handle = tokio::spawn(task.run(inbox));
        Ok(TorrentHandle {
            info_hash,
            status: status_rx,
            events,
            shared: self.shared.clone(),
            task: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The statuses of every torrent, through their handles.
    pub fn info_hashes(&self) -> Vec<InfoHash> {
        lock(&self.shared.torrents).keys().copied().collect()
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        self.shared.endpoint.close();
    }
}
