//! What a follower forwarded to the leader on behalf of its own clients.
//!
//! A leader that dies takes with it every forwarded entry it had not yet got accepted
//! by a majority. Without a record, each of those clients would wait out its whole
//! request timeout and then retry, all at once, after every leader failure. So a
//! follower keeps each entry it forwards, with the ballot of the leader it went to,
//! and sends it again, once, to the first leader it hears from under a higher ballot.
//! A copy that was chosen after all is applied once (the sessions see to that), and a
//! record is swept out once its client has its answer.

use std::collections::BTreeMap;

use crate::ballot::{Ballot, ClientId};
use crate::message::Entry;

/// Which client request an entry answers: a command by sequence number, or a read by
/// its read id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Request {
    Command(ClientId, u64),
    Read(ClientId, u64),
}

impl Request {
    /// The request `entry` carries, if it is one a client waits for.
    pub(super) fn of<C>(entry: &Entry<C>) -> Option<Request> {
        match entry {
            Entry::Command(c) => Some(Request::Command(c.client, c.seq)),
            Entry::Read { client, id, .. } => Some(Request::Read(*client, *id)),
            _ => None,
        }
    }
}

/// Forwarded entries still waiting for their answer, each with the ballot of the
/// leader it was last sent to.
pub(super) struct Forwarded<C> {
    entries: BTreeMap<Request, (Ballot, Entry<C>)>,
}

impl<C> Default for Forwarded<C> {
    fn default() -> Self {
        Forwarded {
            entries: BTreeMap::new(),
        }
    }
}

impl<C: Clone> Forwarded<C> {
    /// Remembers that `entry` (for `request`) went to the leader of `ballot`.
    pub(super) fn record(&mut self, request: Request, ballot: Ballot, entry: &Entry<C>) {
        self.entries.insert(request, (ballot, entry.clone()));
    }

    /// Records kept, answered or not.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the records of requests that no longer wait for an answer.
    pub(super) fn sweep(&mut self, pending: impl Fn(&Request) -> bool) {
        self.entries.retain(|request, _| pending(request));
    }

    /// The entries last sent to a leader older than `ballot`, now counted as sent to
    /// the leader of `ballot`: each is taken again at most once per newer leader.
    pub(super) fn take_older_than(&mut self, ballot: Ballot) -> Vec<Entry<C>> {
        self.entries
            .values_mut()
            .filter(|(sent_to, _)| *sent_to < ballot)
            .map(|(sent_to, entry)| {
                *sent_to = ballot;
                entry.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Command;

    fn command(client: ClientId, seq: u64) -> Entry<u8> {
        Entry::Command(Command { client, seq, op: 0 })
    }

    #[test]
    fn an_entry_is_taken_again_once_per_newer_leader() {
        let mut f = Forwarded::default();
        let e = command(1, 1);
        f.record(Request::of(&e).unwrap(), Ballot::new(1, 0), &e);
        assert!(f.take_older_than(Ballot::new(1, 0)).is_empty());
        assert_eq!(f.take_older_than(Ballot::new(2, 1)).len(), 1);
        assert!(f.take_older_than(Ballot::new(2, 1)).is_empty());
        assert_eq!(f.take_older_than(Ballot::new(3, 2)).len(), 1);
    }

    #[test]
    fn answered_requests_are_swept_out() {
        let mut f = Forwarded::default();
        for seq in 1..=3 {
            let e = command(7, seq);
            f.record(Request::of(&e).unwrap(), Ballot::new(1, 0), &e);
        }
        f.sweep(|r| *r == Request::Command(7, 2));
        assert_eq!(f.len(), 1);
        assert_eq!(f.take_older_than(Ballot::new(2, 0)).len(), 1);
    }
}
