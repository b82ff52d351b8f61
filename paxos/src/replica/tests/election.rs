//! Elections, leadership and the proposal pipeline.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

#[test]
fn single_replica_elects_itself_and_commits() {
    let mut c = Cluster::new(1, |_| {});
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.leader(), Some(0));
    c.propose(0, 1, 1, (5, 50));
    assert_eq!(c.reply_for(1, 1), Some(Ok(None)));
    c.propose(0, 1, 2, (5, 51));
    assert_eq!(c.reply_for(1, 2), Some(Ok(Some(50))));
}

#[test]
fn three_replicas_elect_one_leader_and_apply_in_the_same_order() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().expect("leader");
    for s in 1..=20 {
        c.propose(l, 9, s, (s % 3, s));
    }
    c.run_for(Duration::from_millis(50));
    let logs: Vec<_> = c
        .reps
        .iter()
        .flatten()
        .map(|r| r.state_machine().applied.clone())
        .collect();
    assert_eq!(logs[0].len(), 20);
    assert!(logs.iter().all(|l| *l == logs[0]));
    assert_eq!(c.reps.iter().flatten().filter(|r| r.is_leader()).count(), 1);
}

#[test]
fn isolated_replica_rejoining_does_not_depose_a_healthy_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let x = (l + 1) % 3;
    let before = c.r(x).promised();
    c.down.insert(x);
    c.run_for(Duration::from_millis(2000));
    // Pre-vote: the isolated replica never raised its ballot.
    assert_eq!(c.r(x).promised(), before);
    c.down.remove(&x);
    c.run_for(Duration::from_millis(500));
    assert_eq!(c.leader(), Some(l));
    c.propose(l, 1, 1, (1, 1));
    assert_eq!(c.reply_for(1, 1), Some(Ok(None)));
}

#[test]
fn leader_cut_off_from_a_quorum_steps_down() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    for f in 0..3 {
        if f != l {
            c.down.insert(f);
        }
    }
    c.run_for(Duration::from_millis(150));
    assert!(!c.r(l).is_leader());
}

#[test]
fn new_leader_recovers_a_value_chosen_by_a_bare_majority() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let a = (l + 1) % 3;
    let b = (l + 2) % 3;
    c.down.insert(b);
    c.propose(l, 5, 1, (8, 88));
    assert_eq!(c.reply_for(5, 1), Some(Ok(None)));
    // The old leader dies before anyone but `a` learns the commit.
    c.crash(l);
    c.down.insert(l);
    c.down.remove(&b);
    c.run_for(Duration::from_millis(800));
    let nl = c.leader().expect("new leader");
    assert_ne!(nl, l);
    for n in [a, b] {
        assert_eq!(c.r(n).state_machine().map.get(&8), Some(&88), "replica {n}");
    }
}

#[test]
fn queued_proposals_are_batched_into_one_slot() {
    let mut c = Cluster::new(3, |cfg| cfg.max_inflight = 1);
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let before = c.r(l).decided();
    c.propose_each(l, 1..=10);
    c.pump();
    // One slot for the first command, one batch for the nine queued behind it.
    assert_eq!(c.r(l).decided() - before, 2);
    assert_eq!(c.r(l).state_machine().applied.len(), 10);
}

#[test]
fn pipeline_never_exceeds_max_inflight() {
    let mut c = Cluster::new(3, |cfg| {
        cfg.max_inflight = 2;
        cfg.max_batch = 1;
    });
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose_each(l, 1..=10);
    let slots: BTreeSet<Slot> = std::iter::from_fn(|| c.r(l).poll_output())
        .filter_map(|o| match o {
            Output::Send {
                message: Message::Accept { slot, .. },
                ..
            } => Some(slot),
            _ => None,
        })
        .collect();
    assert_eq!(slots.len(), 2);
}

#[test]
fn commit_index_rides_on_accepts_and_is_announced_when_the_pipeline_drains() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    // Ten slots in flight at once.
    c.propose_each(l, 1..=10);
    c.commits_sent = 0;
    c.pump();
    // Not one Commit per chosen slot: one per follower once the last slot is chosen.
    assert_eq!(c.commits_sent, 2);
    let decided = c.r(l).decided();
    for r in c.reps.iter().flatten() {
        assert_eq!(r.decided(), decided, "replica {}", r.id());
        assert_eq!(r.state_machine().applied.len(), 10, "replica {}", r.id());
    }
}

#[test]
fn leader_re_prepares_above_a_higher_ballot_instead_of_abdicating() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let f = (l + 1) % 3;
    // `f` comes back from a crash having promised a much higher ballot.
    c.crash(f);
    c.stores[f as usize]
        .append(&[Record::Promise(Ballot::new(100, (l + 2) % 3))])
        .unwrap();
    c.restart(f);
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.leader(), Some(l));
    assert!(c.r(l).promised().round > 100);
    c.propose(l, 1, 1, (1, 1));
    c.run_for(Duration::from_millis(30));
    for r in c.reps.iter().flatten() {
        assert_eq!(
            r.state_machine().map.get(&1),
            Some(&1),
            "replica {}",
            r.id()
        );
    }
}
