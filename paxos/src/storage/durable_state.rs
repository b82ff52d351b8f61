//! The acceptor's durable vocabulary: [`Record`]s, and the [`DurableState`] they add up to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, Slot};
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
                    // Keeps the slots after the snapshot's (none after the last slot).
                    self.accepted = match s.slot.checked_add(1) {
                        Some(after) => self.accepted.split_off(&after),
                        None => BTreeMap::new(),
                    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Entry;

    /// A snapshot record at slot `u64::MAX` (only a damaged or crafted log holds one:
    /// replicas snapshot below `MAX_SLOT`) overflowed computing the slot after it, a
    /// panic where overflow is checked. It keeps no accepted slot now.
    #[test]
    fn a_snapshot_at_the_last_slot_keeps_no_accepted_slot() {
        let mut state = DurableState::<u32, u32>::default();
        state.apply(Record::Accept {
            slot: 7,
            ballot: Ballot::new(1, 1),
            value: vec![Entry::Read {
                origin: 1,
                client: 2,
                id: 3,
            }],
        });
        state.apply(Record::Snapshot(Snapshot {
            slot: u64::MAX,
            state: vec![],
            sessions: vec![],
            membership: Default::default(),
        }));
        assert!(state.accepted.is_empty());
        assert_eq!(state.snapshot_slot(), u64::MAX);
    }
}
