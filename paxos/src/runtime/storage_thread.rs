//! The storage thread: group commit off the async runtime, so fsync never stalls the network.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::events::Input;
use super::metrics::MetricsCell;
use crate::replica::{PersistToken, RecordOf};
use crate::state_machine::StateMachine;
use crate::storage::{Record, Storage};

/// One persist batch of the replica, as the driver hands it over.
pub(super) type Batch<S> = (PersistToken, Vec<RecordOf<S>>);

/// Runs storage on its own thread: takes every batch queued so far, appends them with one
/// sync (group commit) and reports the highest token back to the driver.
pub(super) fn spawn_storage<S, St>(
    mut storage: St,
    driver: mpsc::Sender<Input<S>>,
    metrics: Arc<MetricsCell>,
) -> std::sync::mpsc::Sender<Batch<S>>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
    St: Storage<S::Command, S::Output> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel::<Batch<S>>();
    std::thread::Builder::new()
        .name("paxos-storage".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut token = first.0;
                let mut records = first.1;
                while let Ok((t, more)) = rx.try_recv() {
                    token = t;
                    records.extend(more);
                }
                let snapshot_bytes = records.iter().rev().find_map(|r| match r {
                    Record::Snapshot(s) => Some(s.state.len() as u64),
                    _ => None,
                });
                let count = records.len() as u64;
                let started = std::time::Instant::now();
                let result = storage.append_owned(records);
                let input = match result {
                    Ok(()) => {
                        if let Some(bytes) = snapshot_bytes {
                            metrics.snapshot_persisted(bytes, started.elapsed());
                        }
                        metrics.update(|m| {
                            m.records_persisted += count;
                            m.storage_syncs += 1;
                        });
                        Input::Persisted(token)
                    }
                    Err(e) => Input::StorageFailed(e),
                };
                let failed = matches!(input, Input::StorageFailed(_));
                if driver.blocking_send(input).is_err() || failed {
                    return;
                }
            }
        })
        .expect("spawning the storage thread");
    tx
}
