//! When to checkpoint: after enough pieces or enough time, whichever comes first.

use std::time::Duration;

/// When a [`PieceStore::checkpoint`](super::PieceStore::checkpoint) is due.
///
/// A checkpoint costs one fdatasync per data file written since the last one and one
/// small atomic file replacement; what it buys is that a crash (or a kill) loses at most
/// the pieces verified since: those are re-hashed on the next start and downloaded again
/// only if they did not reach the disk. The caller keeps the clock: pass the time since
/// the last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Checkpoint once this many changes (pieces verified or dropped) are unsaved.
    ///
    /// Default 64: a few seconds of a fast download with 1 MiB pieces, and at most a
    /// few hundred MiB to re-hash after a crash with the largest pieces; small enough that
    /// the fsyncs cost little next to the data written between them.
    pub max_unsaved: u32,
    /// Checkpoint when any change is unsaved and this much time has passed.
    ///
    /// Default 10 s: a slow download still saves its progress often enough that a
    /// restart re-hashes little, without syncing on every piece.
    pub max_interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            max_unsaved: 64,
            max_interval: Duration::from_secs(10),
        }
    }
}

impl CheckpointPolicy {
    /// Whether a checkpoint is due with `unsaved` changes (see
    /// [`PieceStore::unsaved_changes`](super::PieceStore::unsaved_changes)) and
    /// `since_last` elapsed since the last checkpoint (or since the store was opened).
    pub fn is_due(&self, unsaved: u32, since_last: Duration) -> bool {
        unsaved > 0 && (unsaved >= self.max_unsaved || since_last >= self.max_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_enough_pieces_or_time_but_never_with_nothing_unsaved() {
        let p = CheckpointPolicy::default();
        assert!(!p.is_due(0, Duration::from_secs(3600)));
        assert!(!p.is_due(1, Duration::from_secs(1)));
        assert!(p.is_due(1, Duration::from_secs(10)));
        assert!(p.is_due(64, Duration::ZERO));
    }
}
