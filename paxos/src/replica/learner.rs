//! Learner side: learning chosen values, catch-up, applying, sessions and snapshots.

use rand::Rng;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::{Entry, Message, Snapshot, Value};
use crate::session::{SessionCheck, Sessions};
use crate::state_machine::StateMachine;
use crate::storage::Record;

use super::{Output, Replica};

impl<S: StateMachine> Replica<S> {
    /// The leader of `ballot` says all slots up to `commit` are chosen.
    pub(super) fn learn_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        if from == self.id {
            return;
        }
        self.commit_hint = self.commit_hint.max(commit);
        if commit > self.log.decided {
            // A value accepted at the committing leader's own ballot is the
            // one it proposed, hence the chosen one.
            self.log
                .choose_range_if_ballot(self.log.decided + 1, commit, ballot);
            self.log.advance();
        }
        if self.log.decided < commit {
            self.maybe_request_catchup(Some(from));
        }
    }

    /// Asks `target` (or the leader) for missing chosen slots, at most once
    /// per heartbeat interval.
    pub(super) fn maybe_request_catchup(&mut self, target: Option<NodeId>) {
        let joining = self.membership.is_unknown();
        if self.log.decided >= self.commit_hint && !joining {
            return;
        }
        if let Some(t) = self.last_catchup
            && self.now < t + self.config.heartbeat_interval
        {
            return;
        }
        let leader = self.leader.map(|(l, _)| l).filter(|l| *l != self.id);
        let to = match target.or(leader) {
            Some(t) if t != self.id => t,
            // Leading (or leaderless) and behind: ask a random peer.
            _ => {
                let peers: Vec<NodeId> = self
                    .membership
                    .members()
                    .filter(|m| *m != self.id)
                    .collect();
                if peers.is_empty() {
                    return;
                }
                peers[self.rng.random_range(0..peers.len())]
            }
        };
        self.last_catchup = Some(self.now);
        // A joining node knows no membership to apply the log from: it asks for a
        // snapshot first (slot 0).
        let from = if joining { 0 } else { self.log.decided + 1 };
        self.send(to, Message::CatchUpRequest { from });
    }

    /// Asks the leader (or a random member) for the log after the decided slot,
    /// once, whether or not this replica knows of anything newer.
    pub(super) fn poll_for_log(&mut self) {
        // The leader, if heard from lately; else anyone (the hint may be stale).
        let leader = self
            .leader
            .map(|(l, _)| l)
            .filter(|l| *l != self.id)
            .filter(|_| {
                self.last_heard
                    .is_some_and(|t| self.now < t + self.config.election_timeout)
            });
        let peers: Vec<NodeId> = self
            .membership
            .members()
            .filter(|m| *m != self.id)
            .collect();
        let contacts: Vec<NodeId> = self
            .config
            .contacts
            .iter()
            .copied()
            .filter(|c| *c != self.id)
            .collect();
        if self.membership.retired.contains(&self.id) {
            // Removed: ask every voter at once, so that a quorum's confirmations
            // (which let this replica stop) come back in one round.
            let voters: Vec<NodeId> = self.membership.voters.iter().copied().collect();
            let from = self.log.decided + 1;
            for v in voters {
                self.send(v, Message::CatchUpRequest { from });
            }
            return;
        }
        if leader.is_none() && peers.is_empty() && self.last_sender.is_none() {
            // A joining node that has heard from nobody: ask every contact at once.
            for c in contacts {
                self.send(c, Message::CatchUpRequest { from: 0 });
            }
            return;
        }
        let to = match (leader, self.last_sender) {
            (Some(l), _) => l,
            _ if !peers.is_empty() => peers[self.rng.random_range(0..peers.len())],
            // A joining node: whoever spoke to it last, or a contact it was given.
            (None, Some(s)) if contacts.is_empty() || self.rng.random_bool(0.5) => s,
            _ if !contacts.is_empty() => contacts[self.rng.random_range(0..contacts.len())],
            _ => return,
        };
        let from = if self.membership.is_unknown() {
            0
        } else {
            self.log.decided + 1
        };
        self.last_catchup = Some(self.now);
        self.send(to, Message::CatchUpRequest { from });
    }

    pub(super) fn on_catchup_request(&mut self, from: NodeId, slot: Slot) {
        if slot > self.log.decided + 1 {
            // The asker knows more of the log than this replica: catch up from it
            // (a lagging voter may not know the membership that makes it one).
            self.commit_hint = self.commit_hint.max(slot - 1);
            self.maybe_request_catchup(Some(from));
        }
        if slot == 0 {
            // A joining node: send a snapshot (taking the first one if there is none,
            // so it carries the membership).
            if self.snapshot.is_none() && !self.membership.is_unknown() {
                self.take_snapshot();
            }
        }
        if slot <= self.log.start {
            if let Some(snap) = &self.snapshot {
                let msg = Message::InstallSnapshot {
                    snapshot: snap.clone(),
                };
                self.send(from, msg);
            }
            return;
        }
        let end = self
            .log
            .decided
            .min(slot.saturating_add(self.config.catchup_batch as u64 - 1));
        if end < slot {
            return;
        }
        let entries: Vec<(Slot, Value<S::Command>)> = self
            .log
            .range_from(slot)
            .take_while(|(s, _)| **s <= end)
            .map(|(s, e)| (*s, e.value.clone()))
            .collect();
        self.send(from, Message::CatchUp { entries });
    }

    pub(super) fn on_catchup(&mut self, entries: Vec<(Slot, Value<S::Command>)>) {
        for (slot, value) in entries {
            if slot > self.log.decided {
                self.log.choose(slot, value);
            }
        }
        self.log.advance();
        // Ask for the next chunk straight away if still behind.
        self.last_catchup = None;
    }

    pub(super) fn on_install_snapshot(&mut self, snap: Snapshot<S::Output>) {
        let joining = self.membership.is_unknown();
        if snap.membership.is_unknown() && joining {
            return;
        }
        if snap.slot <= self.applied && !(joining && snap.slot == self.applied) {
            return;
        }
        if self.sm.restore(&snap.state).is_err() {
            return;
        }
        self.sessions = Sessions::from_list(snap.sessions.clone());
        if !snap.membership.is_unknown() {
            self.membership = snap.membership.clone();
            self.on_membership_changed();
        }
        self.applied = snap.slot;
        self.log.truncate(snap.slot);
        self.commit_hint = self.commit_hint.max(snap.slot);
        // Answer clients whose commands the snapshot covers.
        let waiting: Vec<_> = self.waiting.keys().copied().collect();
        for (client, seq) in waiting {
            let result = match self.sessions.check(client, seq) {
                SessionCheck::Duplicate(o) => Some(Ok(o.clone())),
                SessionCheck::Stale => Some(Err(crate::ClientError::Stale)),
                SessionCheck::New => None,
            };
            if let Some(result) = result {
                self.waiting.remove(&(client, seq));
                self.reply(client, seq, result);
            }
        }
        self.persist(Record::Snapshot(snap.clone()));
        self.snapshot = Some(snap);
        self.last_catchup = None;
    }

    /// Applies every chosen slot not yet applied, in order.
    pub(super) fn apply_chosen(&mut self) {
        if self.membership.is_unknown() {
            // A joining node applies nothing before a snapshot tells it the membership.
            return;
        }
        while self.applied < self.log.decided {
            let slot = self.applied + 1;
            let Some(entry) = self.log.get(slot) else {
                break;
            };
            let value = &entry.value;
            let mut changes = Vec::new();
            for e in value {
                match e {
                    Entry::Command(c) => {
                        let check = self.sessions.check(c.client, c.seq);
                        #[cfg(feature = "planted-bugs")]
                        let check = match check {
                            SessionCheck::Duplicate(_) if self.config.planted.apply_retry_twice => {
                                SessionCheck::New
                            }
                            other => other,
                        };
                        let result = match check {
                            SessionCheck::New => {
                                let out = self.sm.apply(slot, &c.op);
                                self.sessions.record(c.client, c.seq, out.clone(), slot);
                                Ok(out)
                            }
                            SessionCheck::Duplicate(o) => Ok(o.clone()),
                            SessionCheck::Stale => Err(crate::ClientError::Stale),
                        };
                        if self.waiting.remove(&(c.client, c.seq)).is_some() {
                            self.outputs.push_back(Output::Reply {
                                client: c.client,
                                seq: c.seq,
                                result,
                            });
                        }
                    }
                    Entry::Read { origin, client, id } => {
                        if *origin == self.id
                            && let Some(q) = self.pending_reads.remove(&(*client, *id))
                        {
                            let out = self.sm.query(&q);
                            self.outputs.push_back(Output::ReadReply {
                                client: *client,
                                id: *id,
                                result: Ok(out),
                            });
                        }
                    }
                    Entry::Reconfigure { origin, id, change } => {
                        changes.push((*origin, *id, change.clone()));
                    }
                }
            }
            self.applied = slot;
            for (origin, id, change) in changes {
                self.apply_membership_change(origin, id, &change);
            }
            if slot.is_multiple_of(64) {
                self.sessions.expire(slot, self.config.session_expiry_slots);
            }
        }
        if !self.lease_reads.is_empty() {
            let applied = self.applied;
            let ready: Vec<_> = self
                .lease_reads
                .iter()
                .filter(|r| r.0 <= applied)
                .cloned()
                .collect();
            self.lease_reads.retain(|r| r.0 > applied);
            for (_, client, id, q) in ready {
                let out = self.sm.query(&q);
                self.outputs.push_back(Output::ReadReply {
                    client,
                    id,
                    result: Ok(out),
                });
            }
        }
        if self.applied >= self.snapshot_due() {
            self.take_snapshot();
        }
    }

    /// The applied slot at which this replica takes its next snapshot.
    ///
    /// Taking a snapshot stalls a replica for a while (serialising the state, truncating
    /// the log, then writing the whole state out before later records can be synced). If
    /// every replica did it at the same slot, the whole cluster would stall at once. So
    /// each replica snapshots only at slots of its own phase, set by its rank among the
    /// members (a `snapshot_log_len` cycle is split evenly between them), which always
    /// leaves a quorum that is not snapshotting. A follower takes the first slot of its
    /// phase at least half a cycle after its last snapshot; a leader, whose stall holds up
    /// every write, waits at least one and a half cycles. So the log never holds more than
    /// two and a half cycles.
    fn snapshot_due(&self) -> Slot {
        let len = self.config.snapshot_log_len;
        let members = self.membership.members().count() as u64;
        let rank = self.membership.members().filter(|m| *m < self.id).count() as u64;
        let offset = rank * len / members.max(1);
        let gap = if self.is_leader() {
            len.saturating_add(len.div_ceil(2))
        } else {
            len.div_ceil(2)
        };
        let earliest = self.log.start.saturating_add(gap);
        let due = earliest - earliest % len + offset;
        if due >= earliest {
            due
        } else {
            due.saturating_add(len)
        }
    }

    pub(super) fn take_snapshot(&mut self) {
        let snap = Snapshot {
            slot: self.applied,
            state: self.sm.snapshot(),
            sessions: self.sessions.to_list(),
            membership: self.membership.clone(),
        };
        self.log.truncate(self.applied);
        self.persist(Record::Snapshot(snap.clone()));
        self.snapshot = Some(snap);
    }
}
