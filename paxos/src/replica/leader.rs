//! Candidate and leader: elections (phase 1), proposals (phase 2),
//! heartbeats, leases and timers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::{Entry, Message, PromisedEntry, Value, holds_change};
use crate::state_machine::StateMachine;

use super::{Replica, Role};

/// State of a replica running phase 1.
#[derive(Debug)]
pub(crate) struct Candidate<C> {
    pub ballot: Ballot,
    /// First slot the candidate did not know to be chosen.
    pub from: Slot,
    /// The leader ballot that handed its leadership over to this candidate, if any.
    pub handover: Option<Ballot>,
    pub promises: BTreeMap<NodeId, (Vec<PromisedEntry<C>>, Slot)>,
    /// The replicas sent a Prepare (members of later memberships are asked as the
    /// promises reveal them).
    pub asked: BTreeSet<NodeId>,
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
    pub rounds: VecDeque<(u64, Duration, Vec<NodeId>)>,
    next_heartbeat: Duration,
    /// Send time of the newest round a quorum acknowledged.
    pub last_quorum: Duration,
    /// The lease may be used strictly before this time.
    pub lease_until: Duration,
    /// The highest commit index sent to the followers (in an Accept, a
    /// heartbeat or a Commit).
    announced: Slot,
    /// Values adopted in phase 1, waiting to be proposed again in slot order
    /// (they may span membership changes, so they leave behind the barrier).
    pub backlog: BTreeMap<Slot, Value<C>>,
    /// The open slots phase 1 settles, not proposed yet: each gets its value from the
    /// backlog, or a no-op. A range, not a no-op per slot up front: the last open slot
    /// comes from the promises, and a promise (or an accept before it) naming a slot
    /// far ahead must cost the leader a pipeline of no-ops at a time, not memory and
    /// time for every slot up to it.
    refill: Range<Slot>,
    /// The slots of `refill` that were known chosen when phase 1 ended: never proposed
    /// again, even once a snapshot has truncated them.
    chosen_before: BTreeSet<Slot>,
    /// The slot of a membership change in flight: nothing later is proposed until
    /// it is applied, so every slot in flight is governed by the membership in force.
    pub barrier: Option<Slot>,
    /// Each member's decided slot, as its last heartbeat acknowledgement said.
    pub progress: BTreeMap<NodeId, Slot>,
    /// A leadership handover in progress.
    pub handover: Option<Handover>,
    /// The last slot that may have been chosen before this leader's term: phase 1
    /// adopted every such slot. A lease read must see them all.
    pub term_floor: Slot,
}

/// The leader is handing its leadership over (on request, or because it was removed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handover {
    /// The chosen successor (`None`: the most up-to-date voter).
    pub target: Option<NodeId>,
    /// The successor should have decided this slot first.
    pub need: Slot,
    /// Hand over even if no voter caught up by then.
    pub deadline: Duration,
}

impl<S: StateMachine> Replica<S> {
    /// Election timeout: ask whether a quorum would promise before raising
    /// any ballot (pre-vote).
    pub(super) fn start_prevote(&mut self) {
        self.reset_election_timer();
        if !self.membership.is_voter(self.id) {
            // Learners and joining nodes never lead. Having heard from no leader for
            // an election timeout, they ask a member for the log instead: that is how
            // a learner removed while it was away learns of it.
            self.poll_for_log();
            return;
        }
        let round = self.max_round.max(self.promised.round) + 1;
        let ballot = Ballot::new(round, self.id);
        let mut grants = BTreeSet::new();
        grants.insert(self.id);
        if self.membership.is_quorum(|n| grants.contains(&n)) {
            self.prevote = None;
            self.start_election(None);
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
        } else if !self.refuses_promise(from, None) {
            self.send(from, Message::PreVoteGranted { ballot });
        }
    }

    pub(super) fn on_prevote_granted(&mut self, from: NodeId, ballot: Ballot) {
        let Some((b, grants)) = &mut self.prevote else {
            return;
        };
        if *b != ballot || matches!(self.role, Role::Leader(_)) {
            return;
        }
        grants.insert(from);
        if self.membership.is_quorum(|n| grants.contains(&n)) {
            self.prevote = None;
            self.start_election(None);
        }
    }

    /// The leader this replica follows hands its leadership over: campaign now,
    /// without a pre-vote (the leader gave up its lease, so its followers may
    /// promise at once).
    pub(super) fn on_timeout_now(&mut self, from: NodeId, ballot: Ballot) {
        if self.leader == Some((from, ballot))
            && matches!(self.role, Role::Follower)
            && self.membership.is_voter(self.id)
        {
            self.prevote = None;
            self.start_election(Some(ballot));
        }
    }

    /// Phase 1. `handover` is the ballot of the leader that handed over to us.
    pub(super) fn start_election(&mut self, handover: Option<Ballot>) {
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
                handover,
                promises: BTreeMap::new(),
                asked: BTreeSet::new(),
            });
            self.become_leader(BTreeMap::new());
            return;
        }
        let asked: BTreeSet<NodeId> = self.membership.members().collect();
        self.role = Role::Candidate(Candidate {
            ballot,
            from,
            handover,
            promises: BTreeMap::new(),
            asked,
        });
        self.broadcast(
            Message::Prepare {
                ballot,
                from,
                handover,
            },
            true,
        );
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<PromisedEntry<S::Command>>,
        snapshot_slot: Slot,
    ) {
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        if c.ballot != ballot {
            return;
        }
        // A value a promiser knows chosen is chosen: learn it now.
        for e in entries.iter().filter(|e| e.chosen) {
            self.log.choose(e.slot, e.value.clone());
        }
        c.promises.insert(from, (entries, snapshot_slot));
        self.log.advance();
        self.apply_chosen();
        self.try_finish_phase1();
    }

    /// Becomes leader once the promises cover a quorum of every membership that
    /// governs an open slot.
    ///
    /// A membership change decided at slot i governs the slots after i. The
    /// candidate knows the membership in force after its applied slot; the values
    /// it would adopt may hold further changes, and each one hands the slots after
    /// it to another membership, whose quorum must promise too. Why this finds
    /// every chosen value: a change is proposed only when every earlier slot is
    /// chosen, and nothing after it until it is applied, so every chosen slot was
    /// chosen by a quorum of a membership this walk passes through (the chosen
    /// changes come first, in order, and any adopted but unchosen change lies
    /// after every chosen one that precedes it). Slots a promiser has truncated
    /// behind a snapshot are chosen; the candidate first catches up to that
    /// snapshot, so that the walk starts from a membership it knows.
    pub(super) fn try_finish_phase1(&mut self) {
        let Role::Candidate(c) = &self.role else {
            return;
        };
        let (ballot, from, handover) = (c.ballot, c.from, c.handover);
        let (max_snap, snap_holder) = c
            .promises
            .iter()
            .map(|(n, (_, snap))| (*snap, *n))
            .max()
            .unwrap_or((0, self.id));
        if max_snap > self.applied {
            self.commit_hint = self.commit_hint.max(max_snap);
            if snap_holder != self.id
                && self
                    .last_catchup
                    .is_none_or(|t| self.now >= t + self.config.heartbeat_interval)
            {
                self.last_catchup = Some(self.now);
                let from = self.log.decided + 1;
                self.send(snap_holder, Message::CatchUpRequest { from });
            }
            return;
        }
        let best = self.adoptable_values();
        let chain = self.memberships_ahead(&best);
        let Role::Candidate(c) = &mut self.role else {
            return;
        };
        let mut missing = Vec::new();
        let mut complete = true;
        for m in &chain {
            if !m.is_quorum(|n| c.promises.contains_key(&n)) {
                complete = false;
                missing.extend(m.voters.iter().copied().filter(|n| c.asked.insert(*n)));
            }
        }
        for n in missing {
            self.send(
                n,
                Message::Prepare {
                    ballot,
                    from,
                    handover,
                },
            );
        }
        if !complete {
            return;
        }
        if chain.last().is_some_and(|m| !m.is_voter(self.id)) {
            // The log removes this candidate: it must not lead.
            self.leader = None;
            self.become_follower();
            return;
        }
        self.become_leader(best);
    }

    /// For every open slot after the applied one, the value phase 1 adopts: the
    /// one accepted at the highest ballot among the promises (unknown slots are
    /// filled with no-ops by the leader).
    fn adoptable_values(&self) -> BTreeMap<Slot, Value<S::Command>> {
        let mut best: BTreeMap<Slot, (Ballot, &Value<S::Command>)> = BTreeMap::new();
        if let Role::Candidate(c) = &self.role {
            for (entries, _) in c.promises.values() {
                for e in entries.iter().filter(|e| e.slot > self.applied) {
                    if best.get(&e.slot).is_none_or(|(b, _)| e.ballot > *b) {
                        best.insert(e.slot, (e.ballot, &e.value));
                    }
                }
            }
        }
        best.into_iter().map(|(s, (_, v))| (s, v.clone())).collect()
    }

    /// The highest slot phase 1 must settle: the last one any promise or this
    /// replica's own log holds.
    fn last_open_slot(&self, best: &BTreeMap<Slot, Value<S::Command>>) -> Slot {
        best.keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.log.last_slot())
    }

    /// The memberships that govern the slots after the applied one, if the open
    /// slots take the values in `best` (or the chosen ones known here): the one in
    /// force, then one more per change that takes effect.
    fn memberships_ahead(
        &self,
        best: &BTreeMap<Slot, Value<S::Command>>,
    ) -> Vec<crate::membership::Membership> {
        let mut current = self.membership.clone();
        let mut chain = vec![current.clone()];
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.phase1_applied_membership_only {
            return chain;
        }
        // The slots that hold a value, not every slot up to the last open one: a
        // promise may name a slot far ahead (see `Leader::refill`).
        let chosen = self
            .log
            .range_from(self.applied + 1)
            .filter(|(_, e)| e.chosen)
            .map(|(slot, _)| *slot);
        let slots: BTreeSet<Slot> = chosen.chain(best.keys().copied()).collect();
        for slot in slots {
            let value = match self.log.get(slot).filter(|e| e.chosen) {
                Some(e) => &e.value,
                None => match best.get(&slot) {
                    Some(v) => v,
                    None => continue,
                },
            };
            for e in value {
                if let crate::message::Entry::Reconfigure { change, .. } = e
                    && let Ok(next) = current.apply(change)
                    && next != current
                {
                    current = next;
                    chain.push(current.clone());
                }
            }
        }
        chain
    }

    /// Phase 1 finished: adopt the highest-ballot value of every open slot, fill
    /// holes with no-ops, and start leading. The adopted values are proposed
    /// again in slot order, behind the barrier of any membership change among them.
    fn become_leader(&mut self, mut best: BTreeMap<Slot, Value<S::Command>>) {
        let Role::Candidate(c) = std::mem::replace(&mut self.role, Role::Follower) else {
            return;
        };
        let ballot = c.ballot;
        let start = self.applied + 1;
        let last = self.last_open_slot(&best);
        let chosen_before: BTreeSet<Slot> = self
            .log
            .range_from(start)
            .filter(|(_, e)| e.chosen)
            .map(|(slot, _)| *slot)
            .collect();
        best.retain(|slot, _| !chosen_before.contains(slot));
        #[allow(unused_mut)]
        let mut backlog = best;
        #[allow(unused_mut)]
        let mut next_slot = last.max(start - 1) + 1;
        #[allow(unused_mut)]
        let mut refill = start..next_slot;
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.skip_phase1 {
            backlog.clear();
            next_slot = self.log.decided + 1;
            refill = next_slot..next_slot;
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
            backlog,
            refill,
            chosen_before,
            barrier: None,
            progress: BTreeMap::new(),
            handover: None,
            term_floor: next_slot - 1,
        });
        self.leader = Some((self.id, ballot));
        // What this replica forwarded to the leader it replaces may be lost.
        self.reforward(self.id, ballot);
        self.propose_more();
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

    /// Proposes what is waiting while the pipeline has room: first the values
    /// adopted in phase 1, then queued entries in new slots.
    ///
    /// A membership change is proposed alone in its slot, only once every earlier
    /// slot is chosen and applied, and nothing is proposed after it until it is
    /// applied. So every slot in flight is governed by the membership in force, and
    /// a change never depends on an undecided slot before it.
    pub(super) fn propose_more(&mut self) {
        #[cfg(feature = "planted-bugs")]
        let barrier_off = self.config.planted.no_change_barrier;
        #[cfg(not(feature = "planted-bugs"))]
        let barrier_off = false;
        loop {
            let applied = self.applied;
            let decided = self.log.decided;
            let Role::Leader(l) = &mut self.role else {
                return;
            };
            if l.handover.is_some() {
                return;
            }
            if let Some(b) = l.barrier {
                if applied < b && !barrier_off {
                    return;
                }
                l.barrier = None;
            }
            if l.inflight.len() >= self.config.max_inflight {
                return;
            }
            if !l.refill.is_empty() {
                let slot = l.refill.start;
                let chosen = self.log.get(slot).is_some_and(|e| e.chosen);
                if l.chosen_before.remove(&slot) || chosen {
                    l.backlog.remove(&slot);
                    l.refill.start += 1;
                    continue;
                }
                if l.backlog.get(&slot).is_some_and(|v| holds_change(v)) {
                    if decided + 1 < slot && !barrier_off {
                        return;
                    }
                    l.barrier = Some(slot);
                }
                let value = l.backlog.remove(&slot).unwrap_or_default();
                l.refill.start += 1;
                self.send_accept(slot, value);
                continue;
            }
            let Some(first) = self.queue.front() else {
                return;
            };
            let value: Value<S::Command> = if matches!(first, Entry::Reconfigure { .. }) {
                if (!l.inflight.is_empty() || applied + 1 < l.next_slot) && !barrier_off {
                    return;
                }
                l.barrier = Some(l.next_slot);
                self.queue.pop_front().into_iter().collect()
            } else {
                let n = self
                    .queue
                    .iter()
                    .take(self.config.max_batch)
                    .take_while(|e| !matches!(e, Entry::Reconfigure { .. }))
                    .count();
                self.queue.drain(..n).collect()
            };
            let slot = l.next_slot;
            l.next_slot += 1;
            self.send_accept(slot, value);
        }
    }

    pub(super) fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
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
        if self.membership.is_quorum(|n| f.acks.contains(&n))
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
            self.start_election(None);
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

    pub(super) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        round: u64,
        decided: Slot,
    ) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.ballot != ballot {
            return;
        }
        let p = l.progress.entry(from).or_default();
        *p = (*p).max(decided);
        if let Some((_, _, acks)) = l.rounds.iter_mut().find(|(r, _, _)| *r == round)
            && !acks.contains(&from)
        {
            acks.push(from);
        }
        self.check_round_quorum(round);
        self.try_hand_over();
    }

    fn check_round_quorum(&mut self, round: u64) {
        let usable = self.config.usable_lease();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if let Some((_, sent, acks)) = l.rounds.iter().find(|(r, _, _)| *r == round)
            && self.membership.is_quorum(|n| acks.contains(&n))
            && *sent >= l.last_quorum
        {
            l.last_quorum = *sent;
            l.lease_until = l.lease_until.max(*sent + usable);
        }
    }

    /// The read index for a lease read, if this replica holds a valid lease: the
    /// last slot whose command some client may have seen acknowledged. A command is
    /// acknowledged only once applied, and applied only once known chosen, so that
    /// is a slot chosen in an earlier term (at most [`Leader::term_floor`]) or one
    /// this leader decided (at most `decided`; followers learn what is chosen from
    /// the leader). Slots this leader still has in flight are not included: no client
    /// has seen them, so a read may be ordered before them, and reads do not queue
    /// behind writes that wait for a quorum.
    pub(super) fn lease_read_index(&self) -> Option<Slot> {
        match &self.role {
            Role::Leader(l) if self.now < l.lease_until && l.handover.is_none() => {
                Some(l.term_floor.max(self.log.decided))
            }
            _ => None,
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now;
        let eto = self.config.election_timeout;
        let hb = self.config.heartbeat_interval;
        match &mut self.role {
            Role::Leader(l) => {
                if l.handover.is_some() {
                    self.try_hand_over();
                    if !matches!(self.role, Role::Leader(_)) {
                        return;
                    }
                }
                let Role::Leader(l) = &mut self.role else {
                    return;
                };
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
                    let members: Vec<NodeId> = self.membership.members().collect();
                    for (slot, value, acks) in resend {
                        for m in members.iter().copied() {
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
        self.propose_more();
        self.log.advance();
        self.apply_chosen();
        if self.membership.retired.contains(&self.id) && matches!(self.role, Role::Candidate(_)) {
            // Removed: never campaign again.
            self.become_follower();
        }
        if matches!(self.role, Role::Candidate(_)) {
            // Catching up (to a promiser's snapshot) may have completed phase 1.
            self.try_finish_phase1();
        }
        // Applying may have freed pipeline room (or passed a barrier).
        self.propose_more();
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
