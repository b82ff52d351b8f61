//! The handle through which callers follow and steer one torrent.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tracker::torrent::InfoHash;

use super::events::Event;
use super::shared::{Shared, lock};
use super::status::{Phase, TorrentStatus};

/// A torrent added to a [`Peer`](super::Peer). Cheap to clone.
#[derive(Clone)]
pub struct TorrentHandle {
    pub(super) info_hash: InfoHash,
    pub(super) status: watch::Receiver<TorrentStatus>,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) shared: Arc<Shared>,
    pub(super) task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
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
        let _ = self.events.send(Event::Pause(true));
    }

    /// Resumes after [`pause`](Self::pause).
    pub fn resume(&self) {
        let _ = self.events.send(Event::Pause(false));
    }

    /// Leaves the swarm and forgets the torrent (its files stay on disk).
    pub fn remove(&self) {
        let _ = self.events.send(Event::Remove);
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
