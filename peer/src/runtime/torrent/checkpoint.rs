//! When and how the task makes its progress durable.

use std::time::{Duration, Instant};

use super::TorrentTask;
use crate::runtime::events::Event;
use crate::storage::CheckpointPolicy;

/// When the task checkpoints: at least every 2 s while pieces arrive, so a crash costs at
/// most that much re-hashing (never a re-download: unrecorded pieces are re-hashed), and
/// at once after 64 unsaved changes.
pub(super) const POLICY: CheckpointPolicy = CheckpointPolicy {
    max_unsaved: 64,
    max_interval: Duration::from_secs(2),
};

impl TorrentTask {
    /// Checkpoints in the background if [`POLICY`] says it is due, or, with `force`, if
    /// anything is unsaved at all.
    pub(super) fn checkpoint_if_due(&mut self, force: bool) {
        let store = &self.entry.store;
        let unsaved = store.unsaved_changes();
        let due = if force {
            unsaved > 0
        } else {
            POLICY.is_due(unsaved, self.last_checkpoint.elapsed())
        };
        if !due {
            return;
        }
        self.last_checkpoint = Instant::now();
        let store = store.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.checkpoint() {
                let _ = events.send(Event::StorageFailed(format!("saving progress: {e}")));
            }
        });
    }
}
