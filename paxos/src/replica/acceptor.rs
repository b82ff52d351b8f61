//! Acceptor side: promises, accepts, and following a leader.

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::{Message, PromisedEntry, Value};
use crate::state_machine::StateMachine;
use crate::storage::Record;

use super::{Replica, Role};

impl<S: StateMachine> Replica<S> {
    /// Whether this replica must refuse to promise `candidate` now: it heard
    /// from a live leader (other than the candidate) within the election
    /// timeout, it leads with a recent quorum itself, or it restarted less than
    /// an election timeout ago. This both protects leader leases and keeps a
    /// rejoining or partially connected replica from disrupting a healthy leader.
    /// `handover` is the ballot of a leader that handed its leadership to the
    /// candidate: that leader gave its lease up, so its followers need not wait.
    pub(super) fn refuses_promise(&self, candidate: NodeId, handover: Option<Ballot>) -> bool {
        if candidate == self.id {
            return false;
        }
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.no_stickiness {
            return false;
        }
        let eto = self.config.election_timeout;
        if self.now < self.started_at + eto {
            return true;
        }
        if let Role::Leader(l) = &self.role
            && self.now < l.last_quorum + eto
        {
            return true;
        }
        match (self.leader, self.last_heard) {
            (Some((_, b)), _) if handover == Some(b) => false,
            (Some((l, _)), Some(t)) => l != candidate && self.now < t + eto,
            _ => false,
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        handover: Option<Ballot>,
    ) {
        if ballot.leader != from {
            return;
        }
        if slot > self.log.decided + 1 {
            // The candidate knows more of the log (and perhaps a membership that
            // makes it a voter where this replica still sees a learner): catch up.
            self.commit_hint = self.commit_hint.max(slot - 1);
            self.maybe_request_catchup(Some(from));
        }
        self.max_round = self.max_round.max(ballot.round);
        if ballot < self.promised {
            self.send(
                from,
                Message::Nack {
                    ballot: self.promised,
                },
            );
            return;
        }
        if self.refuses_promise(from, handover) {
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            self.persist(Record::Promise(ballot));
            let stale_role = match &self.role {
                Role::Leader(l) => l.ballot < ballot,
                Role::Candidate(c) => c.ballot < ballot,
                Role::Follower => false,
            };
            if stale_role {
                self.become_follower();
            } else if from != self.id {
                // Granting a promise: give the candidate time to finish.
                self.reset_election_timer();
            }
        }
        let entries = self
            .log
            .range_from(slot)
            .map(|(s, e)| PromisedEntry {
                slot: *s,
                ballot: e.ballot,
                value: e.value.clone(),
                chosen: e.chosen,
            })
            .collect();
        let msg = Message::Promise {
            ballot,
            entries,
            snapshot_slot: self.log.start,
        };
        self.send_durable(from, msg);
    }

    /// A message from the leader of `ballot` arrived. Returns false (after
    /// answering with a nack) if the ballot is stale.
    fn follow(&mut self, from: NodeId, ballot: Ballot) -> bool {
        if ballot.leader != from {
            return false;
        }
        self.max_round = self.max_round.max(ballot.round);
        // Never fall back to a leader older than the one we follow: heartbeats
        // do not raise `promised`, so without this a deposed leader could
        // regain a follower (and, re-preparing, its promise) during the
        // current leader's lease.
        let floor = match self.leader {
            Some((_, b)) if b > self.promised => b,
            _ => self.promised,
        };
        if ballot < floor {
            self.send(from, Message::Nack { ballot: floor });
            return false;
        }
        let own = match &self.role {
            Role::Leader(l) => Some(l.ballot),
            Role::Candidate(c) => Some(c.ballot),
            Role::Follower => None,
        };
        let new_leader = self.leader.map(|(_, b)| b) != Some(ballot);
        if let Some(b) = own
            && b < ballot
        {
            self.leader = Some((from, ballot));
            self.become_follower();
        }
        if from != self.id {
            self.leader = Some((from, ballot));
            self.last_heard = Some(self.now);
            self.prevote = None;
            if matches!(self.role, Role::Follower) {
                self.reset_election_timer();
                // Proposals held while no leader was known (see `on_forward`).
                self.forward_queue(from);
                if new_leader {
                    // Phase 2 traffic: this leader is established (not a mere
                    // candidate), so what the last one may have lost goes to it.
                    self.reforward(from, ballot);
                }
            }
        }
        true
    }

    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        value: Value<S::Command>,
        commit: Slot,
    ) {
        if slot == 0 || !self.follow(from, ballot) {
            return;
        }
        if slot <= self.log.start {
            // Already chosen and snapshotted: acknowledging is harmless.
            self.send(from, Message::Accepted { ballot, slot });
        } else {
            self.promised = ballot;
            self.log.accept(slot, ballot, value.clone());
            self.persist(Record::Accept {
                slot,
                ballot,
                value,
            });
            self.send_durable(from, Message::Accepted { ballot, slot });
        }
        self.learn_commit(from, ballot, commit);
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, ballot: Ballot, round: u64, commit: Slot) {
        if !self.follow(from, ballot) {
            return;
        }
        self.learn_commit(from, ballot, commit);
        let decided = self.log.decided;
        self.send(
            from,
            Message::HeartbeatAck {
                ballot,
                round,
                decided,
            },
        );
    }

    pub(super) fn on_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        if !self.follow(from, ballot) {
            return;
        }
        self.learn_commit(from, ballot, commit);
    }

    /// A member says this replica was removed from the cluster (it has applied the
    /// change). Once a quorum of the membership this replica knows says so, every
    /// voter that matters has the change, and the replica stops for good. Until
    /// then a removed replica stays a passive acceptor (it never campaigns): the
    /// slots before the change were chosen by quorums that may include it, and a
    /// lagging voter of the new membership may still need its promise to learn them.
    pub(super) fn on_removed_notice(&mut self, from: NodeId) {
        self.removal_notices.insert(from);
        if self.membership.retired.contains(&self.id) {
            if self
                .membership
                .is_quorum(|n| self.removal_notices.contains(&n))
            {
                self.stop();
            }
        } else {
            // Not applied here yet: fetch the log (or a snapshot) from the sender.
            self.last_catchup = Some(self.now);
            let from_slot = if self.membership.is_unknown() {
                0
            } else {
                self.log.decided + 1
            };
            self.send(from, Message::CatchUpRequest { from: from_slot });
        }
    }

    /// Stops for good: every later input is ignored.
    pub(super) fn stop(&mut self) {
        // A removed leader whose handover has not finished yet (the new voters
        // confirmed its removal first) hands over now, so that the successor need
        // not wait for an election timeout; proposals still queued here go along.
        let successor = match &self.role {
            Role::Leader(l) => self
                .most_up_to_date_voter(&l.progress)
                .map(|s| (s, l.ballot)),
            _ => None,
        };
        if let Some((s, ballot)) = successor {
            self.send(s, Message::TimeoutNow { ballot });
        }
        let to = successor.map(|(s, _)| s).or_else(|| {
            self.membership
                .voters
                .iter()
                .copied()
                .find(|v| *v != self.id)
        });
        if let Some(to) = to {
            self.forward_queue(to);
        }
        self.removed = true;
        self.role = Role::Follower;
        self.leader = None;
        self.queue.clear();
    }
}
