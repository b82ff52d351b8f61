//! Cluster membership: who votes, who only learns, and which identities are spent.
//!
//! The membership is part of the replicated state. It changes only through a
//! [`MembershipChange`] entry in the log, is checked against the membership in force
//! when the entry is *applied* (so every replica reaches the same verdict), and is
//! carried by every snapshot. See the crate documentation for the change protocol.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ballot::NodeId;

/// The members of a cluster at one point of its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The replicas whose acknowledgements make a quorum (a majority of them).
    pub voters: BTreeSet<NodeId>,
    /// Replicas that receive and store the log but do not vote: a new node catches
    /// up as a learner before it is made a voter.
    pub learners: BTreeSet<NodeId>,
    /// Identities that were removed. They are never accepted again, so an id
    /// always names one machine: a replacement must join under a new id.
    pub retired: BTreeSet<NodeId>,
    /// How the driver reaches each member: an opaque string (an address, a name),
    /// given when the member was added. Bootstrap members may have none.
    pub addresses: BTreeMap<NodeId, String>,
}

/// A request to change the membership. Changes are idempotent: asking for the
/// membership that is already in force succeeds without a change, so a client
/// may retry one safely.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a non-voting learner reachable at `address`.
    AddLearner {
        /// The new node's id; must never have been used in this cluster.
        id: NodeId,
        /// How to reach it (opaque to the library).
        address: String,
    },
    /// Replace the voter set by `voters`: each one a current voter or learner. Voters
    /// left out are removed (retired); learners taken in stop being learners.
    SetVoters {
        /// The new voter set (not empty).
        voters: BTreeSet<NodeId>,
    },
    /// Remove a learner (retire its id).
    RemoveLearner {
        /// The learner's id.
        id: NodeId,
    },
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// The change must be submitted to the leader.
    #[error("not the leader (leader hint: {hint:?})")]
    NotLeader {
        /// The leader this replica believes in, if any.
        hint: Option<NodeId>,
    },
    /// The change contradicts the membership in force.
    #[error("membership change refused: {0}")]
    Invalid(String),
    /// A learner to be made a voter is too far behind the leader's log.
    #[error("learner {node} is {behind} slots behind the leader; wait until it has caught up")]
    LearnerBehind {
        /// The learner.
        node: NodeId,
        /// How many slots it lags (`u64::MAX`: it has not reported yet).
        behind: u64,
    },
    /// Another change is already waiting to be decided.
    #[error("another membership change is in progress")]
    Busy,
    /// The leader lost its leadership (or the change was superseded) before the
    /// change was decided; ask the new leader (the change is idempotent).
    #[error("leadership changed before the membership change was decided; retry")]
    Interrupted,
}

impl Membership {
    /// A bootstrap membership: these voters, nothing else.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether no voter is known (a node that joins and has not yet received a
    /// snapshot of the cluster).
    pub fn is_unknown(&self) -> bool {
        self.voters.is_empty()
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every voter and learner, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut all: Vec<NodeId> = self.voters.union(&self.learners).copied().collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// Whether the nodes for which `acked` holds include a majority of the voters.
    pub fn is_quorum(&self, acked: impl Fn(NodeId) -> bool) -> bool {
        let yes = self.voters.iter().filter(|v| acked(**v)).count();
        !self.voters.is_empty() && yes > self.voters.len() / 2
    }

    /// The membership after `change`, or why the change is refused. `Ok` with an
    /// equal membership means the change was already in force.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, MembershipError> {
        let bad = |s: String| Err(MembershipError::Invalid(s));
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner { id, address } => {
                if self.retired.contains(id) {
                    return bad(format!(
                        "node {id} was removed; an id is never reused, give the new node a new id"
                    ));
                }
                if self.voters.contains(id) {
                    return bad(format!("node {id} is already a voter"));
                }
                if self.learners.contains(id) {
                    return match self.addresses.get(id) {
                        Some(a) if a != address => bad(format!(
                            "node {id} is already a learner at another address ({a})"
                        )),
                        _ => Ok(next),
                    };
                }
                next.learners.insert(*id);
                next.addresses.insert(*id, address.clone());
            }
            MembershipChange::SetVoters { voters } => {
                if voters.is_empty() {
                    return bad("the voter set must not be empty".into());
                }
                if let Some(n) = voters.iter().find(|v| !self.is_member(**v)) {
                    return bad(format!(
                        "node {n} is neither a voter nor a learner; add it as a learner first"
                    ));
                }
                for gone in self.voters.difference(voters) {
                    next.retired.insert(*gone);
                    next.addresses.remove(gone);
                }
                for promoted in voters {
                    next.learners.remove(promoted);
                }
                next.voters = voters.clone();
            }
            MembershipChange::RemoveLearner { id } => {
                if self.voters.contains(id) {
                    return bad(format!(
                        "node {id} is a voter; remove it with a new voter set"
                    ));
                }
                if next.learners.remove(id) {
                    next.retired.insert(*id);
                    next.addresses.remove(id);
                }
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_quorum_is_a_strict_majority_of_the_voters() {
        let m = Membership::with_voters([1, 2, 3, 4]);
        assert!(!m.is_quorum(|n| n <= 2));
        assert!(m.is_quorum(|n| n <= 3));
        assert!(!Membership::default().is_quorum(|_| true));
    }

    #[test]
    fn learners_do_not_count_towards_a_quorum() {
        let m = Membership::with_voters([1, 2, 3])
            .apply(&MembershipChange::AddLearner {
                id: 4,
                address: "d".into(),
            })
            .unwrap();
        assert!(!m.is_quorum(|n| n == 1 || n == 4));
        assert!(m.is_member(4) && !m.is_voter(4));
    }

    #[test]
    fn replacing_a_voter_retires_it_and_promotes_the_learner() {
        let m = Membership::with_voters([1, 2, 3])
            .apply(&MembershipChange::AddLearner {
                id: 4,
                address: "d".into(),
            })
            .unwrap()
            .apply(&MembershipChange::SetVoters {
                voters: set(&[1, 2, 4]),
            })
            .unwrap();
        assert_eq!(m.voters, set(&[1, 2, 4]));
        assert!(m.learners.is_empty());
        assert_eq!(m.retired, set(&[3]));
    }

    #[test]
    fn a_retired_id_is_never_accepted_again() {
        let m = Membership::with_voters([1, 2, 3])
            .apply(&MembershipChange::SetVoters {
                voters: set(&[1, 2]),
            })
            .unwrap();
        let again = m.apply(&MembershipChange::AddLearner {
            id: 3,
            address: "c".into(),
        });
        assert!(matches!(again, Err(MembershipError::Invalid(e)) if e.contains("never reused")));
    }

    #[test]
    fn voters_must_already_be_members() {
        let m = Membership::with_voters([1, 2, 3]);
        let r = m.apply(&MembershipChange::SetVoters {
            voters: set(&[1, 2, 9]),
        });
        assert!(matches!(r, Err(MembershipError::Invalid(_))));
        let empty = m.apply(&MembershipChange::SetVoters { voters: set(&[]) });
        assert!(empty.is_err());
    }

    #[test]
    fn a_change_already_in_force_is_accepted_without_effect() {
        let m = Membership::with_voters([1, 2, 3]);
        let same = m
            .apply(&MembershipChange::SetVoters {
                voters: set(&[1, 2, 3]),
            })
            .unwrap();
        assert_eq!(same, m);
        let l = m
            .apply(&MembershipChange::AddLearner {
                id: 5,
                address: "e".into(),
            })
            .unwrap();
        let twice = l
            .apply(&MembershipChange::AddLearner {
                id: 5,
                address: "e".into(),
            })
            .unwrap();
        assert_eq!(twice, l);
    }
}
