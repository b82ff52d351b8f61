//! Client sessions: exactly-once execution of retried commands.
//!
//! Each client numbers its commands 1, 2, 3… and has at most one command
//! outstanding. The session table remembers, per client, the latest applied
//! sequence number and its output. It is part of the replicated state (it is
//! updated only when applying chosen slots, and it travels in snapshots), so
//! every replica makes the same duplicate decisions. Sessions expire by log
//! position, never by a local clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ballot::{ClientId, Slot};

/// The latest command of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session<O> {
    /// Sequence number of the latest applied command.
    pub seq: u64,
    /// Its output, returned again to a retry.
    pub output: O,
    /// The slot that contained it.
    pub slot: Slot,
}

/// Outcome of looking a command up in the session table.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCheck<'a, O> {
    /// Not applied yet.
    New,
    /// Already applied; here is its output.
    Duplicate(&'a O),
    /// Older than the latest applied command; its output is gone.
    Stale,
}

/// The session table.
#[derive(Clone, Debug, Default)]
pub struct Sessions<O> {
    map: BTreeMap<ClientId, Session<O>>,
}

impl<O: Clone> Sessions<O> {
    /// An empty table.
    pub fn new() -> Self {
        Sessions {
            map: BTreeMap::new(),
        }
    }

    /// Rebuilds a table from a snapshot's list.
    pub fn from_list(list: Vec<(ClientId, Session<O>)>) -> Self {
        Sessions {
            map: list.into_iter().collect(),
        }
    }

    /// The table as a list (for snapshots).
    pub fn to_list(&self) -> Vec<(ClientId, Session<O>)> {
        self.map.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Classifies command `(client, seq)`.
    pub fn check(&self, client: ClientId, seq: u64) -> SessionCheck<'_, O> {
        match self.map.get(&client) {
            None => SessionCheck::New,
            Some(s) if seq > s.seq => SessionCheck::New,
            Some(s) if seq == s.seq => SessionCheck::Duplicate(&s.output),
            Some(_) => SessionCheck::Stale,
        }
    }

    /// Records that `(client, seq)` was applied at `slot` with `output`.
    pub fn record(&mut self, client: ClientId, seq: u64, output: O, slot: Slot) {
        self.map.insert(client, Session { seq, output, slot });
    }

    /// Forgets sessions whose latest command is more than `expiry` slots before `slot`.
    pub fn expire(&mut self, slot: Slot, expiry: u64) {
        self.map
            .retain(|_, s| s.slot.saturating_add(expiry) >= slot);
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_sequence_number_is_a_duplicate_with_original_output() {
        let mut s = Sessions::new();
        s.record(7, 3, "out".to_string(), 10);
        assert_eq!(s.check(7, 3), SessionCheck::Duplicate(&"out".to_string()));
        assert_eq!(s.check(7, 4), SessionCheck::New);
        assert_eq!(s.check(7, 2), SessionCheck::Stale);
        assert_eq!(s.check(8, 1), SessionCheck::New);
    }

    #[test]
    fn sessions_expire_by_log_position() {
        let mut s = Sessions::new();
        s.record(1, 1, (), 10);
        s.record(2, 1, (), 50);
        s.expire(100, 60);
        assert_eq!(s.len(), 1);
        assert_eq!(s.check(1, 1), SessionCheck::New);
    }
}
