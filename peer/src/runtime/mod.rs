//! The peer's tokio runtime: one QUIC endpoint for everything, and per torrent a task
//! that drives the [`Swarm`](crate::swarm::Swarm) core with real connections, the
//! [`PieceStore`](crate::storage::PieceStore) and the tracker client.
//!
//! * [`Peer`] owns the endpoint (its key is the peer's identity, kept in the state
//!   directory so a restarted peer is the same peer), accepts connections from other peers
//!   and serves their piece requests (`serve`), and holds the torrents.
//! * Each torrent runs in a task of its own (`torrent`): it joins the swarm, carries out
//!   the core's actions (dial, request, cancel, report, heartbeat), feeds back what came
//!   of them, and publishes a [`TorrentStatus`] for progress bars and dashboards.
//! * Memory is bounded: piece buffers being downloaded are limited by
//!   [`PeerConfig::download_buffer`], pieces being served by [`PeerConfig::max_serving`].

mod buffers;
mod events;
mod link;
mod serve;
mod status;
mod torrent;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use certs::{Fingerprint, Identity};
use tokio::sync::{Semaphore, mpsc, watch};
use tracker::client::{TrackerClient, TrackerError};
use tracker::torrent::{InfoHash, Torrent};
use transport::{Backoff, Dialer, Endpoint, EndpointConfig, InboundTrust};

use crate::storage::{HashProgress, PieceStore, StorageError, StoreOptions};
use crate::swarm::SwarmConfig;
use crate::wire::ALPN_PEER;

pub use status::{NeighbourStatus, Phase, TorrentStatus};

/// Settings of a peer.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Where to accept connections from other peers (and dial from). Port 0 picks one.
    pub listen: SocketAddr,
    /// The address other peers should dial, as told to the tracker; the bound address if
    /// absent (an unspecified IP is then replaced by 127.0.0.1).
    pub advertise: Option<SocketAddr>,
    /// The peer's identity and the torrents' resume files.
    pub state_dir: PathBuf,
    /// The swarm core's settings (its seed is drawn at random when 0).
    pub swarm: SwarmConfig,
    /// Most bytes of piece data being downloaded at once, over all torrents. 24 MiB: at
    /// 256 KiB pieces that is 96 requests in flight, at 2 MiB pieces 12 (a 10 Gbit/s link
    /// with 10 ms of round trip holds 12.5 MB), and with the rest of the process a leecher
    /// of any size of torrent stays under 64 MiB of memory.
    pub download_buffer: usize,
    /// Most pieces being read and sent at once. 8: each is held in memory while it is
    /// sent; eight keep several neighbours busy without letting them claim unbounded
    /// memory.
    pub max_serving: usize,
}

impl PeerConfig {
    /// Defaults with the state in `state_dir`, listening on `listen`.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        PeerConfig {
            listen,
            advertise: None,
            state_dir,
            swarm: SwarmConfig::default(),
            download_buffer: 24 << 20,
            max_serving: 8,
        }
    }
}

/// Why a peer or a torrent could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The identity could not be loaded or made.
    #[error("peer identity in {dir}: {error}")]
    Identity {
        /// The state directory.
        dir: PathBuf,
        /// What failed.
        error: certs::CertError,
    },
    /// The endpoint could not be bound.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The torrent's files could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No tracker node answered, or one refused.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// The torrent is already added.
    #[error("torrent {0} is already being downloaded or seeded by this peer")]
    Duplicate(InfoHash),
    /// A state directory problem.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// How to add a torrent.
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// The files already exist complete (a seeder's own data): verify every piece, create
    /// nothing, change nothing.
    pub existing: bool,
    /// Keep serving after the download completes (the default), or stop.
    pub seed: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            existing: false,
            seed: true,
        }
    }
}

/// A running peer. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
}

/// What the peer's tasks share.
pub(crate) struct Shared {
    pub(crate) endpoint: Endpoint,
    pub(crate) dialer: Dialer,
    pub(crate) config: PeerConfig,
    pub(crate) advertise: SocketAddr,
    torrents: Mutex<HashMap<InfoHash, Arc<Entry>>>,
    /// Permits are KiB of piece buffers being downloaded.
    pub(crate) download_buffer: Arc<Semaphore>,
    pub(crate) serving: Arc<Semaphore>,
    banned: Mutex<HashSet<Fingerprint>>,
}

/// A torrent as the serving side and the handles see it.
pub(crate) struct Entry {
    pub(crate) torrent: Arc<Torrent>,
    pub(crate) store: Arc<PieceStore>,
    pub(crate) events: mpsc::UnboundedSender<events::Event>,
    /// Whether pieces are served to others now (not paused, and seeding if complete).
    pub(crate) serving: AtomicBool,
    pub(crate) uploaded: AtomicU64,
    /// Piece buffers for receiving and serving, reused.
    pub(crate) buffers: Arc<buffers::BufferPool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn entry(&self, info_hash: &InfoHash) -> Option<Arc<Entry>> {
        lock(&self.torrents).get(info_hash).cloned()
    }

    pub(crate) fn is_banned(&self, peer: &Fingerprint) -> bool {
        lock(&self.banned).contains(peer)
    }

    pub(crate) fn ban(&self, peer: Fingerprint) {
        lock(&self.banned).insert(peer);
    }
}

/// Loads the peer's identity from `dir`, or makes one and saves it there.
///
/// Several processes may start at once on a fresh state directory: making the identity
/// holds an exclusive lock on `identity.lock`, and whoever gets it second finds the
/// identity the first one saved and loads it, so all of them end with the same one. The
/// files are `identity.crt` and `identity.key`, as always, so an existing identity keeps
/// its fingerprint.
pub fn load_or_create_identity(dir: &Path) -> Result<Identity, PeerError> {
    let cert = dir.join("identity.crt");
    let key = dir.join("identity.key");
    let wrap = |error| PeerError::Identity {
        dir: dir.to_path_buf(),
        error,
    };
    // The key is saved before the certificate, each atomically, and a complete pair is
    // never replaced: once the certificate is there, the pair is whole.
    if cert.exists() && key.exists() {
        return Identity::load(&cert, &key).map_err(wrap);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PeerError::Io { path, error }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = dir.join("identity.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    // Blocks while another process makes the identity: that takes milliseconds.
    lock.lock().map_err(io(&lock_path))?;
    if cert.exists() && key.exists() {
        return Identity::load(&cert, &key).map_err(wrap);
    }
    let identity = Identity::generate_self_signed("bytetorrent-peer").map_err(wrap)?;
    identity.save(&cert, &key).map_err(wrap)?;
    Ok(identity)
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

/// A torrent added to a [`Peer`]. Cheap to clone.
#[derive(Clone)]
pub struct TorrentHandle {
    info_hash: InfoHash,
    status: watch::Receiver<TorrentStatus>,
    events: mpsc::UnboundedSender<events::Event>,
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl TorrentHandle {
    /// The torrent's info hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The latest status.
    pub fn status(&self) -> TorrentStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status update.
    pub fn watch(&self) -> watch::Receiver<TorrentStatus> {
        self.status.clone()
    }

    /// Waits until every piece is verified; fails with the reason if the torrent fails.
    pub async fn wait_complete(&self) -> Result<(), String> {
        let mut rx = self.status.clone();
        loop {
            match &rx.borrow_and_update().phase {
                Phase::Seeding | Phase::Complete => return Ok(()),
                Phase::Failed(why) => return Err(why.clone()),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err("the torrent's task ended".into());
            }
        }
    }

    /// Stops downloading and serving until [`resume`](Self::resume).
    pub fn pause(&self) {
        let _ = self.events.send(events::Event::Pause(true));
    }

    /// Resumes after [`pause`](Self::pause).
    pub fn resume(&self) {
        let _ = self.events.send(events::Event::Pause(false));
    }

    /// Leaves the swarm and forgets the torrent (its files stay on disk).
    pub fn remove(&self) {
        let _ = self.events.send(events::Event::Remove);
        lock(&self.shared.torrents).remove(&self.info_hash);
    }

    /// Stops the torrent's task at once, as a crash would (for tests and the demo).
    pub fn abort(&self) {
        lock(&self.shared.torrents).remove(&self.info_hash);
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}
