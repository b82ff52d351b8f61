//! Membership changes and leadership handover: submitting a change, applying it,
//! and handing the leadership to another voter (on request, or when the leader
//! itself is removed).
//!
//! A change is one [`Entry::Reconfigure`] alone in its slot. The leader proposes it
//! only with an empty pipeline and proposes nothing after it until it is applied
//! (see `leader.rs`), so the membership decided at slot i governs exactly the slots
//! after i. The change is checked when applied, against the membership then in
//! force, so every replica reaches the same verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ballot::{NodeId, Slot};
use crate::membership::{MembershipChange, MembershipError};
use crate::message::{Entry, Message};
use crate::state_machine::StateMachine;

use super::leader::Handover;
use super::{Output, Replica, Role};

impl<S: StateMachine> Replica<S> {
    /// Submits a membership change. Only the leader takes changes (others answer
    /// [`MembershipError::NotLeader`] with a hint), one at a time. The answer comes
    /// as [`Output::MembershipReply`] with request `id` once the change is applied;
    /// a change already in force succeeds without effect, so retrying is safe.
    ///
    /// Making a learner a voter is refused while the learner lags the leader's log
    /// by more than `catchup_batch` slots ([`Replica::member_progress`] says how far
    /// each member has come): a quorum that needs a node still catching up would
    /// stall every write.
    pub fn change_membership(&mut self, id: u64, change: MembershipChange, now: Duration) {
        self.begin(now);
        if let Err(e) = self.check_change(&change) {
            self.outputs
                .push_back(Output::MembershipReply { id, result: Err(e) });
        } else {
            self.pending_changes.insert(id);
            let entry = Entry::Reconfigure {
                origin: self.id,
                id,
                change,
            };
            self.queue.push_back(entry);
        }
        self.finish();
    }

    /// Why the leader would refuse `change` now, if it would.
    fn check_change(&self, change: &MembershipChange) -> Result<(), MembershipError> {
        let hint = self.leader_hint().filter(|l| *l != self.id);
        let Role::Leader(l) = &self.role else {
            return Err(MembershipError::NotLeader { hint });
        };
        if self.removed || l.handover.is_some() {
            return Err(MembershipError::NotLeader { hint: None });
        }
        let busy = l.barrier.is_some()
            || l.backlog.values().any(|v| crate::message::holds_change(v))
            || self
                .queue
                .iter()
                .any(|e| matches!(e, Entry::Reconfigure { .. }));
        if busy {
            return Err(MembershipError::Busy);
        }
        self.membership.apply(change)?;
        if let MembershipChange::SetVoters { voters } = change {
            let decided = self.log.decided;
            for n in voters
                .iter()
                .filter(|n| self.membership.learners.contains(n))
            {
                let behind = match l.progress.get(n) {
                    Some(p) => decided.saturating_sub(*p),
                    None => u64::MAX,
                };
                if behind > self.config.catchup_batch as u64 {
                    return Err(MembershipError::LearnerBehind { node: *n, behind });
                }
            }
        }
        Ok(())
    }

    /// On the leader: each member's decided slot as last reported (a learner is
    /// close enough to be made a voter once it is within `catchup_batch` slots of
    /// [`Replica::decided`]). `None` on other replicas.
    pub fn member_progress(&self) -> Option<BTreeMap<NodeId, Slot>> {
        match &self.role {
            Role::Leader(l) => {
                let mut p = l.progress.clone();
                p.insert(self.id, self.log.decided);
                Some(p)
            }
            _ => None,
        }
    }

    /// Hands the leadership to `target` (or, with `None`, to the most up-to-date
    /// other voter): the leader stops proposing, gives up its lease, waits until
    /// the successor has every slot it proposed (at most one election timeout),
    /// then tells it to campaign at once. Its followers promise the successor
    /// without waiting out the old lease, so the handover takes about one round trip
    /// once the successor has caught up.
    pub fn transfer_leadership(
        &mut self,
        target: Option<NodeId>,
        now: Duration,
    ) -> Result<(), MembershipError> {
        self.begin(now);
        let result = match (&self.role, target) {
            (Role::Leader(_), Some(t)) if t == self.id => Ok(()),
            (Role::Leader(_), Some(t)) if !self.membership.is_voter(t) => Err(
                MembershipError::Invalid(format!("node {t} is not a voter; it cannot lead")),
            ),
            (Role::Leader(_), _) if self.membership.voters.len() < 2 => Err(
                MembershipError::Invalid("no other voter to hand the leadership to".into()),
            ),
            (Role::Leader(_), _) => {
                self.begin_handover(target);
                Ok(())
            }
            _ => Err(MembershipError::NotLeader {
                hint: self.leader_hint(),
            }),
        };
        self.finish();
        result
    }

    fn begin_handover(&mut self, target: Option<NodeId>) {
        let deadline = self.now + self.config.election_timeout;
        if let Role::Leader(l) = &mut self.role {
            let need = l.next_slot - 1;
            l.handover = Some(Handover {
                target,
                need,
                deadline,
            });
        }
        self.try_hand_over();
    }

    /// Completes a handover once the successor has caught up (or the deadline
    /// passed): tells it to campaign and steps down.
    pub(super) fn try_hand_over(&mut self) {
        let Role::Leader(l) = &self.role else {
            return;
        };
        let Some(h) = l.handover else {
            return;
        };
        let successor = h.target.or_else(|| self.most_up_to_date_voter(&l.progress));
        let caught_up = successor
            .and_then(|s| l.progress.get(&s))
            .is_some_and(|p| *p >= h.need && self.log.decided >= h.need);
        if !caught_up && self.now < h.deadline {
            return;
        }
        let ballot = l.ballot;
        if let Some(s) = successor {
            self.send(s, Message::TimeoutNow { ballot });
            // Proposals that arrived during the handover go to the successor, right
            // behind the TimeoutNow: as a candidate it queues them for its first
            // slots. Dropped, their clients would wait out a timeout.
            self.forward_queue(s);
        }
        self.refuse_queued();
        self.leader = None;
        self.become_follower();
    }

    /// The voter other than this replica whose reported decided slot in `progress`
    /// is highest (ties: the highest id): whom a leader hands over to.
    pub(super) fn most_up_to_date_voter(
        &self,
        progress: &BTreeMap<NodeId, Slot>,
    ) -> Option<NodeId> {
        self.membership
            .voters
            .iter()
            .filter(|v| **v != self.id)
            .max_by_key(|v| (progress.get(v).copied().unwrap_or(0), **v))
            .copied()
    }

    /// Applies a decided membership change and answers its request if it was
    /// submitted here.
    pub(super) fn apply_membership_change(
        &mut self,
        origin: NodeId,
        id: u64,
        change: &MembershipChange,
    ) {
        let result = self.membership.apply(change);
        if let Ok(next) = &result
            && *next != self.membership
        {
            self.membership = next.clone();
            // Make the new membership durable at once: after a restart the replica
            // knows only its snapshot's slot to be chosen, and the old voters may be
            // gone by then (changes are rare; a snapshot each is cheap enough).
            self.take_snapshot();
            self.on_membership_changed();
        }
        if origin == self.id && self.pending_changes.remove(&id) {
            let result = result.map(|_| self.membership.clone());
            self.outputs
                .push_back(Output::MembershipReply { id, result });
        }
    }

    /// The membership in force changed: a leader re-checks its lease against the
    /// new voters and hands over if it was removed; a removed follower stops.
    pub(super) fn on_membership_changed(&mut self) {
        let me = self.id;
        let usable = self.config.usable_lease();
        let voter = self.membership.is_voter(me);
        if let Role::Leader(l) = &mut self.role {
            // A lease counts only when a quorum of the voters now in force vouched
            // for it (their acknowledgements make them refuse other candidates).
            l.lease_until = Duration::ZERO;
            for (_, sent, acks) in &l.rounds {
                if self.membership.is_quorum(|n| acks.contains(&n)) {
                    l.lease_until = l.lease_until.max(*sent + usable);
                }
            }
            if !voter {
                self.begin_handover(None);
            }
            return;
        }
        if !voter && matches!(self.role, Role::Candidate(_)) {
            self.become_follower();
        }
    }
}
