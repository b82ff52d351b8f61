//! The state every task of a peer shares: the endpoint, the torrents being served, the
//! memory budgets and the banned peers.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use certs::Fingerprint;
use tokio::sync::{Semaphore, mpsc};
use tracker::torrent::{InfoHash, Torrent};
use transport::{Dialer, Endpoint};

use super::buffers::BufferPool;
use super::config::PeerConfig;
use super::events::Event;
use crate::storage::PieceStore;

/// What the peer's tasks share.
pub(crate) struct Shared {
    pub(crate) endpoint: Endpoint,
    pub(crate) dialer: Dialer,
    pub(crate) config: PeerConfig,
    pub(crate) advertise: SocketAddr,
    pub(crate) torrents: Mutex<HashMap<InfoHash, Arc<Entry>>>,
    /// Permits are KiB of piece buffers being downloaded.
    pub(crate) download_buffer: Arc<Semaphore>,
    pub(crate) serving: Arc<Semaphore>,
    pub(crate) banned: Mutex<HashSet<Fingerprint>>,
}

/// A torrent as the serving side and the handles see it.
pub(crate) struct Entry {
    pub(crate) torrent: Arc<Torrent>,
    pub(crate) store: Arc<PieceStore>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    /// Whether pieces are served to others now (not paused, and seeding if complete).
    pub(crate) serving: AtomicBool,
    pub(crate) uploaded: AtomicU64,
    /// Piece buffers for receiving and serving, reused.
    pub(crate) buffers: Arc<BufferPool>,
}

/// Locks `mutex`, ignoring poisoning: the data it guards stays consistent at every
/// unlock, so a panicked holder leaves nothing half-done.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
