//! Durable acceptor state: records, the storage trait and an in-memory store.
//!
//! The replica never touches storage itself. It emits
//! [`Output::Persist`](crate::Output::Persist) with a batch of [`Record`]s; the
//! driver appends them to a [`Storage`] (one fsync for the batch is enough) and
//! then calls [`Replica::persisted`](crate::Replica::persisted). On restart the
//! driver calls [`Storage::load`] and passes the [`DurableState`] to
//! [`Replica::new`](crate::Replica::new).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, Slot};
use crate::error::StorageError;
use crate::message::{Snapshot, Value};

/// One durable change to the acceptor's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record<C, O> {
    /// The acceptor promised not to accept ballots below this one.
    Promise(Ballot),
    /// The acceptor accepted `value` at `slot` in `ballot` (this also implies
    /// a promise of `ballot`).
    Accept {
        /// The slot.
        slot: Slot,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: Value<C>,
    },
    /// A snapshot; all accepted entries up to its slot may be discarded.
    Snapshot(Snapshot<O>),
}

/// Everything an acceptor must remember across crashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DurableState<C, O> {
    /// The highest promised ballot.
    pub promised: Ballot,
    /// Accepted `(ballot, value)` per slot above the snapshot.
    pub accepted: BTreeMap<Slot, (Ballot, Value<C>)>,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot<O>>,
}

impl<C, O> Default for DurableState<C, O> {
    fn default() -> Self {
        DurableState {
            promised: Ballot::ZERO,
            accepted: BTreeMap::new(),
            snapshot: None,
        }
    }
}

impl<C, O> DurableState<C, O> {
    /// Applies one record (used by storage back-ends, also when replaying a log).
    pub fn apply(&mut self, record: Record<C, O>) {
        match record {
            Record::Promise(b) => self.promised = self.promised.max(b),
            Record::Accept {
                slot,
                ballot,
                value,
            } => {
                self.promised = self.promised.max(ballot);
                if slot > self.snapshot_slot() {
                    self.accepted.insert(slot, (ballot, value));
                }
            }
            Record::Snapshot(s) => {
                if s.slot > self.snapshot_slot() || self.snapshot.is_none() {
                    self.accepted = self.accepted.split_off(&(s.slot + 1));
                    self.snapshot = Some(s);
                }
            }
        }
    }

    /// The snapshot's slot, 0 without a snapshot.
    pub fn snapshot_slot(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.slot)
    }
}

/// A durable store for an acceptor. Implementations must make all records of
/// one `append` durable before returning (group commit: one sync per call).
pub trait Storage<C, O> {
    /// Loads the durable state (empty for a new replica).
    fn load(&self) -> Result<DurableState<C, O>, StorageError>;
    /// Durably appends records, in order.
    fn append(&mut self, records: &[Record<C, O>]) -> Result<(), StorageError>;

    /// [`Storage::append`] for a caller that no longer needs the records: an
    /// implementation that keeps them in memory may move them instead of cloning.
    /// Same durability contract.
    fn append_owned(&mut self, records: Vec<Record<C, O>>) -> Result<(), StorageError> {
        self.append(&records)
    }
}

/// Storage kept in memory: survives a simulated crash of the replica (the
/// driver keeps it) but not of the process.
#[derive(Clone, Debug, Default)]
pub struct MemStorage<C, O> {
    state: DurableState<C, O>,
}

impl<C, O> MemStorage<C, O> {
    /// An empty store.
    pub fn new() -> Self {
        MemStorage {
            state: DurableState::default(),
        }
    }

    /// The current durable state.
    pub fn state(&self) -> &DurableState<C, O> {
        &self.state
    }
}

impl<C: Clone, O: Clone> Storage<C, O> for MemStorage<C, O> {
    fn load(&self) -> Result<DurableState<C, O>, StorageError> {
        Ok(self.state.clone())
    }

    fn append(&mut self, records: &[Record<C, O>]) -> Result<(), StorageError> {
        for r in records {
            self.state.apply(r.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_record_truncates_accepted_entries() {
        let mut s: MemStorage<u8, u8> = MemStorage::new();
        let b = Ballot::new(1, 1);
        s.append(&[
            Record::Accept {
                slot: 1,
                ballot: b,
                value: vec![],
            },
            Record::Accept {
                slot: 2,
                ballot: b,
                value: vec![],
            },
            Record::Snapshot(Snapshot {
                slot: 1,
                state: vec![],
                sessions: vec![],
            }),
        ])
        .unwrap();
        let st = s.load().unwrap();
        assert_eq!(st.accepted.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(st.promised, b);
        assert_eq!(st.snapshot_slot(), 1);
    }
}
