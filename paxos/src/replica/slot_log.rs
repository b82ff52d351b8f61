//! The replica's slot log in memory: accepted and chosen values per slot above the
//! snapshot (what must survive a crash is in [`storage`](crate::storage)).

use std::collections::BTreeMap;

use crate::ballot::{Ballot, Slot};
use crate::message::Value;

/// One slot of the log.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry<C> {
    /// Ballot at which this replica accepted the value (for learned values,
    /// the ballot of the last accept, or zero).
    pub ballot: Ballot,
    /// The value.
    pub value: Value<C>,
    /// Whether the value is known to be chosen.
    pub chosen: bool,
}

/// The log above the snapshot.
#[derive(Clone, Debug)]
pub(crate) struct SlotLog<C> {
    entries: BTreeMap<Slot, LogEntry<C>>,
    /// Slots `<= start` are covered by the snapshot and truncated.
    pub start: Slot,
    /// All slots `<= decided` are known chosen.
    pub decided: Slot,
}

impl<C: Clone> SlotLog<C> {
    pub fn new(start: Slot) -> Self {
        SlotLog {
            entries: BTreeMap::new(),
            start,
            decided: start,
        }
    }

    pub fn get(&self, slot: Slot) -> Option<&LogEntry<C>> {
        self.entries.get(&slot)
    }

    /// Records an accepted value. A chosen value is kept (Paxos guarantees a
    /// later accept for a chosen slot carries the same value).
    pub fn accept(&mut self, slot: Slot, ballot: Ballot, value: Value<C>) {
        if slot <= self.start {
            return;
        }
        match self.entries.get_mut(&slot) {
            Some(e) if e.chosen => e.ballot = ballot,
            _ => {
                self.entries.insert(
                    slot,
                    LogEntry {
                        ballot,
                        value,
                        chosen: false,
                    },
                );
            }
        }
    }

    /// Marks `slot` chosen with `value`.
    pub fn choose(&mut self, slot: Slot, value: Value<C>) {
        if slot <= self.start {
            return;
        }
        let e = self.entries.entry(slot).or_insert(LogEntry {
            ballot: Ballot::ZERO,
            value: Vec::new(),
            chosen: false,
        });
        if !e.chosen {
            e.value = value;
            e.chosen = true;
        }
    }

    /// Marks the entry chosen if it was accepted at `ballot`.
    #[cfg(test)]
    pub fn choose_if_ballot(&mut self, slot: Slot, ballot: Ballot) {
        self.choose_range_if_ballot(slot, slot, ballot);
    }

    /// Marks every entry in `from..=to` accepted at `ballot` as chosen.
    pub fn choose_range_if_ballot(&mut self, from: Slot, to: Slot, ballot: Ballot) {
        if from > to {
            return;
        }
        for (_, e) in self.entries.range_mut(from..=to) {
            if e.ballot == ballot {
                e.chosen = true;
            }
        }
    }

    /// Advances `decided` over consecutive chosen slots; returns whether it moved.
    pub fn advance(&mut self) -> bool {
        let before = self.decided;
        while self
            .entries
            .get(&(self.decided + 1))
            .is_some_and(|e| e.chosen)
        {
            self.decided += 1;
        }
        self.decided != before
    }

    /// Drops all slots `<= upto` (covered by a snapshot).
    pub fn truncate(&mut self, upto: Slot) {
        if upto <= self.start {
            return;
        }
        self.entries = self.entries.split_off(&(upto + 1));
        self.start = upto;
        self.decided = self.decided.max(upto);
        self.advance();
    }

    /// Entries with slot `>= from`.
    pub fn range_from(&self, from: Slot) -> impl Iterator<Item = (&Slot, &LogEntry<C>)> {
        self.entries.range(from.max(self.start + 1)..)
    }

    /// Highest slot present (or `start`).
    pub fn last_slot(&self) -> Slot {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.start)
            .max(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_advances_only_over_consecutive_chosen_slots() {
        let mut log: SlotLog<u8> = SlotLog::new(0);
        let b = Ballot::new(1, 0);
        log.accept(1, b, vec![]);
        log.accept(3, b, vec![]);
        log.choose_if_ballot(1, b);
        log.choose(3, vec![]);
        assert!(log.advance());
        assert_eq!(log.decided, 1);
        log.choose(2, vec![]);
        log.advance();
        assert_eq!(log.decided, 3);
    }

    #[test]
    fn accept_does_not_overwrite_a_chosen_value() {
        let mut log: SlotLog<u8> = SlotLog::new(0);
        log.choose(
            1,
            vec![crate::Entry::Read {
                origin: 1,
                client: 1,
                id: 1,
            }],
        );
        log.accept(1, Ballot::new(5, 1), vec![]);
        assert_eq!(log.get(1).unwrap().value.len(), 1);
    }

    #[test]
    fn truncate_moves_start_and_decided() {
        let mut log: SlotLog<u8> = SlotLog::new(0);
        log.accept(5, Ballot::new(1, 0), vec![]);
        log.truncate(3);
        assert_eq!(log.start, 3);
        assert_eq!(log.decided, 3);
        assert_eq!(log.last_slot(), 5);
    }
}
