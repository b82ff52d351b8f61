//! What an operator watches: leadership, log and snapshot sizes, commit latency.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::ballot::{Ballot, NodeId, Slot};

/// A point-in-time view of a replica, read with [`Node::metrics`](super::Node::metrics).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// This replica's id.
    pub id: NodeId,
    /// Whether this replica is the leader.
    pub is_leader: bool,
    /// The leader this replica believes in.
    pub leader: Option<NodeId>,
    /// The highest ballot this replica has promised.
    pub ballot: Ballot,
    /// How many times the believed leader changed since start.
    pub leader_changes: u64,
    /// All slots up to this one are known chosen here.
    pub decided: Slot,
    /// All slots up to this one are applied.
    pub applied: Slot,
    /// Slots kept in the log (after the snapshot).
    pub log_len: u64,
    /// Slot of the latest snapshot (0 if none).
    pub snapshot_slot: Slot,
    /// Size of the latest snapshot's state in bytes, if one was taken or received here.
    pub snapshot_bytes: Option<u64>,
    /// Time since the latest snapshot was persisted here.
    pub snapshot_age: Option<Duration>,
    /// How long writing the latest snapshot took (with the records of its batch, and the
    /// sync): the storage thread's stall per snapshot.
    pub snapshot_write: Option<Duration>,
    /// Snapshots persisted here since start.
    pub snapshots_persisted: u64,
    /// Records made durable and fsync batches used for them (group commit ratio).
    pub records_persisted: u64,
    /// Storage sync calls.
    pub storage_syncs: u64,
    /// Latency of commands proposed through this replica, from arrival to reply.
    pub commit_latency: LatencySummary,
}

/// Percentiles of a latency histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// Shared between the driver (writer) and handles (readers).
pub(crate) struct MetricsCell {
    view: Mutex<Metrics>,
    latency: Mutex<Histogram<u64>>,
    snapshot_taken: Mutex<Option<Instant>>,
}

impl MetricsCell {
    pub(crate) fn new(id: NodeId) -> Self {
        MetricsCell {
            view: Mutex::new(Metrics {
                id,
                ..Metrics::default()
            }),
            // 1 µs to 1 hour with 3 significant digits.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid"),
            ),
            snapshot_taken: Mutex::new(None),
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Metrics)) {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut view);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let high = h.high();
        let _ = h.record(micros.min(high));
    }

    pub(crate) fn snapshot_persisted(&self, bytes: u64, write: Duration) {
        *self
            .snapshot_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.update(|m| {
            m.snapshot_bytes = Some(bytes);
            m.snapshot_write = Some(write);
            m.snapshots_persisted += 1;
        });
    }

    pub(crate) fn read(&self) -> Metrics {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        view.commit_latency = LatencySummary {
            count: h.len(),
            p50: Duration::from_micros(h.value_at_quantile(0.5)),
            p99: Duration::from_micros(h.value_at_quantile(0.99)),
            max: Duration::from_micros(h.max()),
        };
        view.snapshot_age = self
            .snapshot_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed());
        view
    }
}
