//! [`Storage`] in memory: [`MemStorage`].

use super::{DurableState, Record, Storage};
use crate::error::StorageError;

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
    use crate::ballot::Ballot;
    use crate::message::Snapshot;
    use crate::storage::Record;

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
                membership: Default::default(),
            }),
        ])
        .unwrap();
        let st = s.load().unwrap();
        assert_eq!(st.accepted.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(st.promised, b);
        assert_eq!(st.snapshot_slot(), 1);
    }
}
