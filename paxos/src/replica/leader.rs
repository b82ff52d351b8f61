//! Candidate and leader: elections (phase 1), proposals (phase 2),
//! heartbeats, leases and timers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::{Message, PromisedEntry, Value};
use crate::state_machine::StateMachine;

use super::{Replica, Role};

/// State of a replica running phase 1.
#[derive(Debug)]
pub(crate) struct Candidate<C> {
    pub ballot: Ballot,
    /// First slot the candidate did not know to be chosen.
    pub from: Slot,
    pub promises: BTreeMap<NodeId, (Vec<PromisedEntry<C>>, Slot)>,
}

/// A slot proposed by the leader and not yet chosen.
#[derive(Debug)]
pub(crate) struct InFlight<C> {
    value: Value<C>,
    acks: Vec<NodeId>,
    sent_at: Duration,
}

/// State of an elected leader.
#[derive(Debug)]
pub(crate) struct Leader<C> {
    pub ballot: Ballot,
    pub next_slot: Slot,
    inflight: BTreeMap<Slot, InFlight<C>>,
    round: u64,
    /// Recent heartbeat rounds: (round, sent at, acks).
    rounds: VecDeque<(u64, Duration, Vec<NodeId>)>,
    next_heartbeat: Duration,
    /// Send time of the newest round a quorum acknowledged.
    pub last_quorum: Duration,
    /// The lease may be used strictly before this time.
    lease_until: Duration,
    /// The highest commit index sent to the followers (in an Accept, a
    /// heartbeat or a Commit).
    announced: Slot,
}

impl<S: StateMachine> Replica<S> {
    /// Election timeout: ask whether a quorum would promise before raising
    /// any ballot (pre-vote).
    pub(super) fn start_prevote(&mut self) {
        let round = self.max_round.max(self.promised.round) + 1;
        let ballot = Ballot::new(round, self.id);
        self.reset_election_timer();
        let mut grants = BTreeSet::new();
        grants.insert(self.id);
        if grants.len() >= self.config.quorum() {
            self.prevote = None;
            self.start_election();
            return;
        }
        self.prevote = Some((ballot, grants));
        self.broadcast(Message::PreVote { ballot }, false);
    }

    pub(super) fn on_prevote(&mut self, from: NodeId, ballot: Ballot) {
        if ballot.leader != from {
            return;
        }
        if ballot <= self.promised {
            self.send(
                from,
                Message::Nack {
                    ballot: self.promised,
                },
            );
        } else if !self.refuses_promise(from) {
            self.send(from, Message::PreVoteGranted { ballot });
        }
    }

    pub(super) fn on_prevote_granted(&mut self, from: NodeId, ballot: Ballot) {
        let quorum = self.config.quorum();
        let Some((b, grants)) = &mut self.prevote else {
            return;
        };
        if *b != ballot || matches!(self.role, Role::Leader(_)) {
            return;
        }
        grants.insert(from);
        if grants.len() >= quorum {
            self.prevote = None;
            self.start_election();
        }
    }

    pub(super) fn start_election(&mut self) {
        let round = self.max_round.max(self.promised.round) + 1;
        self.max_round = round;
        let ballot = Ballot::new(round, self.id);
        let from = self.log.decided + 1;
        self.leader = None;
        self.reset_election_timer();
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.skip_phase1 {
            // Planted bug: take over without learning what may be chosen.
            self.promised = ballot;
            self.persist(crate::storage::Record::Promise(ballot));
            self.role = Role::Candidate(Candidate {
                ballot,
                from,
                promises: BTreeMap::new(),
            });
            self.become_leader();
            return;
        }
        self.role = Role::Candidate(Candidate {
            ballot,
            from,
            promises: BTreeMap::new(),
        });
        self.broadcast(Message::Prepare { ballot, from }, true);
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<PromisedEntry<S::Command>>,
        snapshot_slot: Slot,
    ) {
        let quorum = self.config.quorum();
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        if c.ballot != ballot {
            return;
        }
        c.promises.insert(from, (entries, snapshot_slot));
        if c.promises.len() >= quorum {
            self.become_leader();
        }
    }

    /// Phase 1 finished: adopt the highest-ballot value of every open slot,
    /// fill holes with no-ops, and start leading.
    fn become_leader(&mut self) {
        let Role::Candidate(c) = std::mem::replace(&mut self.role, Role::Follower) else {
            return;
        };
        let ballot = c.ballot;
        let mut best: BTreeMap<Slot, (Ballot, Value<S::Command>, bool)> = BTreeMap::new();
        let mut max_snap = 0;
        let mut snap_holder = None;
        for (node, (entries, snap)) in c.promises {
            if snap > max_snap {
                max_snap = snap;
                snap_holder = Some(node);
            }
            for e in entries {
                if e.slot < c.from {
                    continue;
                }
                match best.get(&e.slot) {
                    Some((_, _, true)) => {}
                    Some((b, _, false)) if !e.chosen && *b >= e.ballot => {}
                    _ => {
                        best.insert(e.slot, (e.ballot, e.value, e.chosen));
                    }
                }
            }
        }
        // Slots up to a promiser's snapshot are chosen; learn them, never re-propose them.
        self.commit_hint = self.commit_hint.max(max_snap);
        if max_snap > self.log.decided
            && let Some(n) = snap_holder
            && n != self.id
        {
            self.send(
                n,
                Message::CatchUpRequest {
                    from: self.log.decided + 1,
                },
            );
            self.last_catchup = Some(self.now);
        }
        let start = c.from.max(max_snap + 1).max(self.log.start + 1);
        let last = best
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.log.last_slot());
        let mut to_propose = Vec::new();
        for slot in start..=last {
            if self.log.get(slot).is_some_and(|e| e.chosen) {
                continue;
            }
            match best.remove(&slot) {
                Some((_, v, true)) => self.log.choose(slot, v),
                Some((_, v, false)) => to_propose.push((slot, v)),
                None => to_propose.push((slot, Vec::new())),
            }
        }
        #[allow(unused_mut)]
        let mut next_slot = last.max(start - 1) + 1;
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.skip_phase1 {
            to_propose.clear();
            next_slot = self.log.decided + 1;
        }
        self.role = Role::Leader(Leader {
            ballot,
            next_slot,
            inflight: BTreeMap::new(),
            round: 0,
            rounds: VecDeque::new(),
            next_heartbeat: self.now,
            last_quorum: self.now,
            lease_until: Duration::ZERO,
            announced: 0,
        });
        self.leader = Some((self.id, ballot));
        for (slot, v) in to_propose {
            self.send_accept(slot, v);
        }
        self.send_heartbeat();
    }

    fn send_accept(&mut self, slot: Slot, value: Value<S::Command>) {
        let commit = self.log.decided;
        let now = self.now;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let ballot = l.ballot;
        l.announced = l.announced.max(commit);
        l.inflight.insert(
            slot,
            InFlight {
                value: value.clone(),
                acks: Vec::new(),
                sent_at: now,
            },
        );
        self.broadcast(
            Message::Accept {
                ballot,
                slot,
                value,
                commit,
            },
            true,
        );
    }

    /// Moves queued entries into new slots while the pipeline has room.
    pub(super) fn flush_queue(&mut self) {
        loop {
            let Role::Leader(l) = &mut self.role else {
                return;
            };
            if self.queue.is_empty() || l.inflight.len() >= self.config.max_inflight {
                return;
            }
            let slot = l.next_slot;
            l.next_slot += 1;
            let n = self.queue.len().min(self.config.max_batch);
            let value: Value<S::Command> = self.queue.drain(..n).collect();
            self.send_accept(slot, value);
        }
    }

    pub(super) fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        let quorum = self.config.quorum();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.ballot != ballot {
            return;
        }
        let Some(f) = l.inflight.get_mut(&slot) else {
            return;
        };
        if !f.acks.contains(&from) {
            f.acks.push(from);
        }
        if f.acks.len() >= quorum
            && let Some(f) = l.inflight.remove(&slot)
        {
            self.log.choose(slot, f.value);
        }
    }

    pub(super) fn on_nack(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
        let own = match &self.role {
            Role::Leader(l) => l.ballot,
            Role::Candidate(c) => c.ballot,
            Role::Follower => return,
        };
        if ballot <= own {
            return;
        }
        let healthy = matches!(&self.role, Role::Leader(l)
            if self.now < l.last_quorum + self.config.election_timeout);
        if healthy {
            // A replica (e.g. one rejoining after a partition) has promised a
            // higher ballot: re-run phase 1 above it instead of stepping down.
            // Followers accept a prepare from the leader they follow.
            self.start_election();
        } else {
            self.become_follower();
        }
    }

    fn send_heartbeat(&mut self) {
        let commit = self.log.decided;
        let now = self.now;
        let hb = self.config.heartbeat_interval;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        l.round += 1;
        let round = l.round;
        let ballot = l.ballot;
        l.announced = l.announced.max(commit);
        l.rounds.push_back((round, now, vec![self.id]));
        while l.rounds.len() > 64 {
            l.rounds.pop_front();
        }
        l.next_heartbeat = now + hb;
        self.broadcast(
            Message::Heartbeat {
                ballot,
                round,
                commit,
            },
            false,
        );
        self.check_round_quorum(round);
    }

    pub(super) fn on_heartbeat_ack(&mut self, from: NodeId, ballot: Ballot, round: u64) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.ballot != ballot {
            return;
        }
        if let Some((_, _, acks)) = l.rounds.iter_mut().find(|(r, _, _)| *r == round)
            && !acks.contains(&from)
        {
            acks.push(from);
        }
        self.check_round_quorum(round);
    }

    fn check_round_quorum(&mut self, round: u64) {
        let quorum = self.config.quorum();
        let usable = self.config.usable_lease();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if let Some((_, sent, acks)) = l.rounds.iter().find(|(r, _, _)| *r == round)
            && acks.len() >= quorum
            && *sent >= l.last_quorum
        {
            l.last_quorum = *sent;
            l.lease_until = l.lease_until.max(*sent + usable);
        }
    }

    /// The read index for a lease read, if this replica holds a valid lease.
    pub(super) fn lease_read_index(&self) -> Option<Slot> {
        match &self.role {
            Role::Leader(l) if self.now < l.lease_until => Some(l.next_slot - 1),
            _ => None,
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now;
        let eto = self.config.election_timeout;
        let hb = self.config.heartbeat_interval;
        match &mut self.role {
            Role::Leader(l) => {
                if now >= l.last_quorum + eto {
                    // Check-quorum: a leader cut off from a majority steps
                    // down, so the connected majority can elect a new one.
                    self.leader = None;
                    self.become_follower();
                    return;
                }
                if now >= l.next_heartbeat {
                    let ballot = l.ballot;
                    let commit = self.log.decided;
                    let mut resend = Vec::new();
                    for (slot, f) in l.inflight.iter_mut() {
                        if now >= f.sent_at + hb {
                            f.sent_at = now;
                            resend.push((*slot, f.value.clone(), f.acks.clone()));
                        }
                    }
                    for (slot, value, acks) in resend {
                        for m in self.config.members.clone() {
                            if m != self.id && !acks.contains(&m) {
                                let msg = Message::Accept {
                                    ballot,
                                    slot,
                                    value: value.clone(),
                                    commit,
                                };
                                self.send(m, msg);
                            }
                        }
                    }
                    self.send_heartbeat();
                }
            }
            Role::Candidate(_) | Role::Follower => {
                if now >= self.election_deadline {
                    self.start_prevote();
                }
            }
        }
        self.maybe_request_catchup(None);
    }

    /// Work done at the end of every input: propose queued entries, apply
    /// newly chosen slots and announce the new commit index.
    pub(super) fn after_step(&mut self) {
        self.flush_queue();
        self.log.advance();
        self.apply_chosen();
        // Applying may have freed pipeline room.
        self.flush_queue();
        self.announce_commit();
    }

    /// Tells the followers the commit index, when nothing else will soon.
    ///
    /// Every Accept carries the commit index, so while slots are in flight
    /// the followers learn it from the next Accept, or from this call once the
    /// last slot in flight is chosen. A Commit message of its own is sent only
    /// when the pipeline is empty: under load that saves one message, one
    /// packet and one wake-up of each follower per slot, and a follower
    /// learns a chosen slot at most one slot round trip later (a heartbeat
    /// later if the slots in flight stall).
    fn announce_commit(&mut self) {
        let decided = self.log.decided;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if decided <= l.announced || !l.inflight.is_empty() {
            return;
        }
        l.announced = decided;
        let msg = Message::Commit {
            ballot: l.ballot,
            commit: decided,
        };
        self.broadcast(msg, false);
    }
}
