//! [`Storage`] on disk: the acceptor's records in the [`wal`](super::wal), compacted into a
//! snapshot of the whole durable state whenever the replica takes a snapshot.
//!
//! Every call to [`Storage::append`] ends with one `fdatasync` for all its records (group
//! commit); the runtime hands it every batch queued since the last call, so under load
//! one sync covers many proposals.
//!
//! Records are MessagePack. A [`Record::Snapshot`] is not logged as a record: the whole
//! [`DurableState`] (promise, accepted entries above the snapshot, the snapshot) becomes
//! the log's snapshot, and the segments it covers are deleted, so the log never grows
//! past one snapshot interval.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wal::{Recovered, Wal, WalError, WalOptions};
use super::{DurableState, Record, Storage};
use crate::error::StorageError;

impl From<WalError> for StorageError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Io { error, .. } => StorageError::Io(error),
            other => StorageError::Corrupt(other.to_string()),
        }
    }
}

/// The acceptor's durable state in a directory.
pub struct FileStorage<C, O> {
    wal: Wal,
    /// The durable state as of the last append (what `load` returns).
    state: DurableState<C, O>,
    /// Reused encoding buffer for records.
    scratch: Vec<u8>,
}

impl<C, O> std::fmt::Debug for FileStorage<C, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.wal.dir())
            .field("last_index", &self.wal.last_index())
            .finish_non_exhaustive()
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str, index: u64) -> Result<T, StorageError> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        StorageError::Corrupt(format!("{what} at log index {index} does not decode: {e}"))
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec(value).map_err(|e| StorageError::Corrupt(format!("cannot encode: {e}")))
}

impl<C, O> FileStorage<C, O>
where
    C: Clone + Serialize + DeserializeOwned,
    O: Clone + Serialize + DeserializeOwned,
{
    /// Opens (or creates) the storage in `dir`, recovering what a crash left: a torn tail
    /// is cut, corruption anywhere else is an error.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)?;
        let (wal, recovered) = Wal::open(dir, WalOptions::default())?;
        Ok(FileStorage {
            wal,
            state: durable_state(&recovered)?,
            scratch: Vec::new(),
        })
    }
}

/// The durable state a recovered log holds: its snapshot (the whole state as of the
/// snapshot), then every record after it applied in order.
pub(crate) fn durable_state<C, O>(recovered: &Recovered) -> Result<DurableState<C, O>, StorageError>
where
    C: DeserializeOwned,
    O: DeserializeOwned,
{
    let mut state = match &recovered.snapshot {
        Some((index, bytes)) => decode(bytes, "snapshot", *index)?,
        None => DurableState::default(),
    };
    for (index, bytes) in &recovered.records {
        state.apply(decode::<Record<C, O>>(bytes, "record", *index)?);
    }
    Ok(state)
}

impl<C, O> Storage<C, O> for FileStorage<C, O>
where
    C: Clone + Serialize + DeserializeOwned,
    O: Clone + Serialize + DeserializeOwned,
{
    fn load(&self) -> Result<DurableState<C, O>, StorageError> {
        Ok(self.state.clone())
    }

    fn append(&mut self, records: &[Record<C, O>]) -> Result<(), StorageError> {
        for record in records {
            match record {
                Record::Snapshot(_) => {
                    self.state.apply(record.clone());
                    // Syncs what came before, then replaces everything up to here.
                    let last = self.wal.last_index();
                    self.wal.save_snapshot(last, &encode(&self.state)?)?;
                }
                other => {
                    self.wal.append(&encode(other)?)?;
                    self.state.apply(other.clone());
                }
            }
        }
        self.wal.sync()?;
        Ok(())
    }

    /// Like `append`, but moves the records into the in-memory state instead of cloning
    /// them (every accepted value would otherwise be copied once more per node), and
    /// encodes them through one reused buffer.
    fn append_owned(&mut self, records: Vec<Record<C, O>>) -> Result<(), StorageError> {
        let mut buf = std::mem::take(&mut self.scratch);
        for record in records {
            if let Record::Snapshot(_) = record {
                self.state.apply(record);
                let last = self.wal.last_index();
                self.wal.save_snapshot(last, &encode(&self.state)?)?;
            } else {
                buf.clear();
                rmp_serde::encode::write(&mut buf, &record)
                    .map_err(|e| StorageError::Corrupt(format!("cannot encode: {e}")))?;
                self.wal.append(&buf)?;
                self.state.apply(record);
            }
        }
        self.scratch = buf;
        self.wal.sync()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::Ballot;
    use crate::message::{Entry, Snapshot};

    type Store = FileStorage<u32, u32>;

    fn accept(slot: u64, round: u64) -> Record<u32, u32> {
        Record::Accept {
            slot,
            ballot: Ballot::new(round, 1),
            value: vec![Entry::Read {
                origin: 1,
                client: 2,
                id: slot,
            }],
        }
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store
            .append(&[
                Record::Promise(Ballot::new(3, 2)),
                accept(1, 3),
                accept(2, 3),
            ])
            .unwrap();
        let before = store.load().unwrap();
        drop(store);
        let reopened = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(reopened, before);
        assert_eq!(reopened.promised, Ballot::new(3, 2));
        assert_eq!(reopened.accepted.len(), 2);
    }

    #[test]
    fn a_snapshot_compacts_the_log_and_keeps_later_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for slot in 1..=100 {
            store.append(&[accept(slot, 1)]).unwrap();
        }
        let snapshot = Snapshot {
            slot: 90,
            state: vec![9; 10],
            sessions: vec![],
            membership: Default::default(),
        };
        store
            .append(&[Record::Snapshot(snapshot.clone()), accept(101, 1)])
            .unwrap();
        drop(store);
        let state = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(state.snapshot, Some(snapshot));
        assert_eq!(
            state.accepted.keys().copied().collect::<Vec<_>>(),
            (91..=101).collect::<Vec<_>>()
        );
        // Only the records after the snapshot remain in segments (not counting the
        // zero-filled space preallocated after them).
        let segments: usize = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
            .map(|e| {
                let bytes = std::fs::read(e.path()).unwrap();
                bytes
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |last| last + 1)
            })
            .sum();
        assert!(
            segments < 1_000,
            "segments hold {segments} bytes of records after compaction"
        );
    }
}
