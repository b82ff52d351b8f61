//! The cadence of what the peer tells the tracker about itself: new pieces in batches,
//! and heartbeats.
//!
//! Every report is a replicated write on the tracker, so new pieces are gathered and sent
//! at most once per interval (or at once when the batch is large or the download has just
//! completed, which the tracker should learn without delay).

use std::time::{Duration, Instant};

/// Pieces gained and not yet told (to the tracker, or to neighbours by `announce`): a
/// piece lost before its turn is dropped, and a batch goes out ascending, each piece once.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingPieces(Vec<u32>);

impl PendingPieces {
    /// `piece` was verified and should be told.
    pub(crate) fn gained(&mut self, piece: u32) {
        self.0.push(piece);
    }

    /// `piece` was lost: if it was not told yet, it no longer will be.
    pub(crate) fn lost(&mut self, piece: u32) {
        self.0.retain(|&p| p != piece);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Everything pending, ascending and without repeats.
    pub(crate) fn take_batch(&mut self) -> Vec<u32> {
        let mut batch = std::mem::take(&mut self.0);
        batch.sort_unstable();
        batch.dedup();
        batch
    }
}

/// Pending piece reports and the heartbeat clock.
#[derive(Debug, Clone)]
pub(crate) struct Reports {
    pending: PendingPieces,
    last_report: Instant,
    next_heartbeat: Instant,
    interval: Duration,
    batch_max: usize,
    heartbeat_interval: Duration,
}

impl Reports {
    /// Starts the clocks at `now` (the runtime has just joined, which counts as both a
    /// report and a heartbeat).
    pub(crate) fn new(
        interval: Duration,
        batch_max: usize,
        heartbeat_interval: Duration,
        now: Instant,
    ) -> Self {
        Reports {
            pending: PendingPieces::default(),
            last_report: now,
            next_heartbeat: now + heartbeat_interval,
            interval,
            batch_max: batch_max.max(1),
            heartbeat_interval,
        }
    }

    /// `piece` was verified and should be reported.
    pub(crate) fn gained(&mut self, piece: u32) {
        self.pending.gained(piece);
    }

    /// `piece` was lost: if it was not reported yet, it no longer will be.
    pub(crate) fn lost(&mut self, piece: u32) {
        self.pending.lost(piece);
    }

    /// The batch to report now, if one is due; `force` sends whatever is pending.
    pub(crate) fn take_due(&mut self, now: Instant, force: bool) -> Option<Vec<u32>> {
        if self.pending.is_empty() {
            return None;
        }
        let due = force
            || self.pending.len() >= self.batch_max
            || now >= self.last_report + self.interval;
        if !due {
            return None;
        }
        self.last_report = now;
        Some(self.pending.take_batch())
    }

    /// Whether a heartbeat is due at `now`; if so, the next one is scheduled.
    pub(crate) fn heartbeat_due(&mut self, now: Instant) -> bool {
        if now < self.next_heartbeat {
            return false;
        }
        // Skipping missed beats (a long pause) rather than bursting them.
        self.next_heartbeat = now + self.heartbeat_interval;
        true
    }

    /// When the next report or heartbeat is due.
    pub(crate) fn next_deadline(&self) -> Instant {
        let heartbeat = self.next_heartbeat;
        if self.pending.is_empty() {
            heartbeat
        } else {
            heartbeat.min(self.last_report + self.interval)
        }
    }
}
