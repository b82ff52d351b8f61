//! Membership changes on a real (in-memory) cluster: a learner joins from a
//! snapshot and becomes a voter, a removed voter stops, a removed leader hands
//! over, and retired ids stay retired.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::storage::DurableState;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

impl Cluster {
    /// Starts node `id` with an empty disk, knowing no membership: a joining node.
    fn start_joiner(&mut self, id: NodeId, contacts: Vec<NodeId>) {
        assert_eq!(id as usize, self.reps.len());
        self.stores.push(MemStorage::new());
        let cfg = Config {
            id,
            seed: id + 1,
            members: Vec::new(),
            contacts,
            ..self.config.clone()
        };
        let r = Replica::new(cfg, Kv::default(), DurableState::default(), self.now).unwrap();
        self.reps.push(Some(r));
    }

    /// Submits a change at the leader and returns its answer.
    fn change(&mut self, id: u64, change: MembershipChange) -> Result<Membership, MembershipError> {
        let l = self.leader().expect("a leader");
        let now = self.now;
        self.r(l).change_membership(id, change, now);
        self.run_for(Duration::from_millis(300));
        self.replies
            .iter()
            .find_map(|(_, o)| match o {
                Output::MembershipReply { id: i, result } if *i == id => Some(result.clone()),
                _ => None,
            })
            .expect("the change was answered")
    }
}

#[test]
fn a_learner_joins_from_a_snapshot_catches_up_and_replaces_a_voter() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose_each(l, 1..=20);
    c.run_for(Duration::from_millis(200));
    c.start_joiner(3, vec![0, 1, 2]);
    let m = c
        .change(
            1,
            MembershipChange::AddLearner {
                id: 3,
                address: "node-3".into(),
            },
        )
        .unwrap();
    assert_eq!(m.learners, set(&[3]));
    c.run_for(Duration::from_millis(300));
    let l = c.leader().unwrap();
    assert_eq!(c.r(3).applied(), c.r(l).applied(), "the learner caught up");
    let leader_map = c.r(l).state_machine().map.clone();
    assert_eq!(c.r(3).state_machine().map, leader_map);
    let victim = (0..3).find(|n| *n != l).unwrap();
    let voters: BTreeSet<NodeId> = (0..4).filter(|n| *n != victim).collect();
    let m = c
        .change(
            2,
            MembershipChange::SetVoters {
                voters: voters.clone(),
            },
        )
        .unwrap();
    assert_eq!(m.voters, voters);
    assert_eq!(m.retired, set(&[victim]));
    c.run_for(Duration::from_millis(500));
    assert!(c.r(victim).is_removed(), "the removed voter stopped");
    let l = c.leader().unwrap();
    c.propose(l, 99, 1, (99, 1));
    assert_eq!(c.reply_for(99, 1), Some(Ok(None)));
    // The removed id can never come back.
    let again = c.change(
        3,
        MembershipChange::AddLearner {
            id: victim,
            address: "elsewhere".into(),
        },
    );
    assert!(matches!(again, Err(MembershipError::Invalid(_))));
}

#[test]
fn a_lagging_learner_is_not_made_a_voter() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    // Node 3 is added but never started: it reports no progress.
    let m = c
        .change(
            1,
            MembershipChange::AddLearner {
                id: 3,
                address: "node-3".into(),
            },
        )
        .unwrap();
    assert!(m.learners.contains(&3));
    c.stores.push(MemStorage::new());
    c.reps.push(None);
    let r = c.change(
        2,
        MembershipChange::SetVoters {
            voters: set(&[0, 1, 2, 3]),
        },
    );
    assert!(matches!(
        r,
        Err(MembershipError::LearnerBehind { node: 3, .. })
    ));
}

#[test]
fn a_removed_leader_hands_over_and_the_cluster_keeps_committing() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let old = c.leader().unwrap();
    let rest: BTreeSet<NodeId> = (0..3).filter(|n| *n != old).collect();
    let m = c
        .change(1, MembershipChange::SetVoters { voters: rest })
        .unwrap();
    assert!(m.retired.contains(&old));
    c.run_for(Duration::from_millis(300));
    let new = c.leader().expect("a new leader");
    assert_ne!(new, old);
    assert!(c.r(old).is_removed());
    c.propose(new, 7, 1, (7, 1));
    assert_eq!(c.reply_for(7, 1), Some(Ok(None)));
}

#[test]
fn a_removed_voter_restarted_waits_for_the_new_voters_before_stopping() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let victim = (0..3).find(|n| *n != l).unwrap();
    let rest: BTreeSet<NodeId> = (0..3).filter(|n| *n != victim).collect();
    c.change(1, MembershipChange::SetVoters { voters: rest })
        .unwrap();
    c.run_for(Duration::from_millis(300));
    assert!(c.r(victim).is_removed());
    // After a restart it knows it is retired, but it must not stop on its own
    // say-so: the new voters may not have the change yet, and may need its promise.
    c.crash(victim);
    c.restart(victim);
    assert!(c.r(victim).membership().retired.contains(&victim));
    assert!(!c.r(victim).is_removed(), "a restarted retired node waits");
    c.run_for(Duration::from_millis(500));
    assert!(
        c.r(victim).is_removed(),
        "the new voters confirmed the removal"
    );
}

#[test]
fn a_dead_voter_replaced_by_a_learner_leaves_writes_flowing() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let dead = (0..3).rev().find(|n| *n != l).unwrap();
    c.crash(dead);
    c.start_joiner(3, vec![0, 1, 2]);
    let add = MembershipChange::AddLearner {
        id: 3,
        address: "node-3".into(),
    };
    c.change(1, add).unwrap();
    let all = set(&[0, 1, 2, 3]);
    c.change(2, MembershipChange::SetVoters { voters: all })
        .unwrap();
    let rest: BTreeSet<NodeId> = (0..4).filter(|n| *n != dead).collect();
    c.change(3, MembershipChange::SetVoters { voters: rest })
        .unwrap();
    for (i, at) in (0..4).filter(|n| *n != dead).enumerate() {
        let client = 70 + i as u64;
        c.propose(at, client, 1, (client, 1));
        c.run_for(Duration::from_millis(20));
        assert_eq!(
            c.reply_for(client, 1),
            Some(Ok(None)),
            "a write through node {at} right after the change"
        );
    }
}

#[test]
fn writes_submitted_while_the_leader_is_removed_are_answered_without_a_timeout() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let old = c.leader().unwrap();
    let rest: BTreeSet<NodeId> = (0..3).filter(|n| *n != old).collect();
    let follower = *rest.iter().next().unwrap();
    let now = c.now;
    c.r(old)
        .change_membership(9, MembershipChange::SetVoters { voters: rest }, now);
    // One write through the follower and one through the leader every millisecond
    // while the change is decided and the leadership handed over: each is answered
    // within 150 ms of the last (no write waits for a client's timeout).
    for i in 0..100u64 {
        c.propose(follower, 1000 + i, 1, (1000 + i, 1));
        c.propose(old, 2000 + i, 1, (2000 + i, 1));
        c.run_for(Duration::from_millis(1));
    }
    c.run_for(Duration::from_millis(150));
    for i in 0..100u64 {
        assert_eq!(
            c.reply_for(1000 + i, 1),
            Some(Ok(None)),
            "write {i} through a follower"
        );
        let through_old = c.reply_for(2000 + i, 1);
        assert!(
            matches!(
                through_old,
                Some(Ok(None)) | Some(Err(ClientError::NotLeader { .. }))
            ),
            "write {i} through the removed leader: {through_old:?}"
        );
    }
}

#[test]
fn leadership_transfer_moves_the_leader_within_a_few_heartbeats() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let old = c.leader().unwrap();
    let target = (old + 1) % 3;
    let now = c.now;
    c.r(old).transfer_leadership(Some(target), now).unwrap();
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.leader(), Some(target));
    let err = c.r(old).transfer_leadership(None, now);
    assert!(matches!(err, Err(MembershipError::NotLeader { .. })));
}
