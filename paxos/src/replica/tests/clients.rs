//! Client-facing behaviour: forwarding, exactly-once sessions and reads.

use std::time::Duration;

use super::*;

#[test]
fn follower_forwards_proposal_to_leader_and_replies_itself() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let f = (l + 1) % 3;
    c.propose(f, 4, 1, (1, 1));
    c.run_for(Duration::from_millis(30));
    assert!(c.replies.iter().any(|(n, o)| *n == f
        && matches!(
            o,
            Output::Reply {
                client: 4,
                seq: 1,
                result: Ok(None)
            }
        )));
}

/// A leader that dies takes the commands forwarded to it: the follower sends them
/// again to the next leader, so its client is answered without retrying.
#[test]
fn a_command_forwarded_to_a_leader_that_died_reaches_the_next_leader() {
    for next in 1..=2 {
        let mut c = Cluster::new(3, |_| {});
        c.run_for(Duration::from_millis(400));
        let l = c.leader().unwrap();
        // The same replica wins the election both times: once it is `f`, once not.
        let f = (l + next) % 3;
        c.crash(l);
        c.down.insert(l);
        c.propose(f, 4, 1, (1, 1));
        assert_eq!(c.reply_for(4, 1), None, "forwarded into the void");
        c.run_for(Duration::from_millis(1000));
        let l2 = c.leader().expect("a new leader");
        assert_ne!(l2, l);
        assert_eq!(c.reply_for(4, 1), Some(Ok(None)));
        let applied = &c.r(l2).state_machine().applied;
        assert_eq!(applied.iter().filter(|x| **x == (1, 1)).count(), 1);
    }
}

#[test]
fn follower_without_known_leader_answers_not_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.propose(1, 4, 1, (1, 1));
    assert_eq!(
        c.reply_for(4, 1),
        Some(Err(ClientError::NotLeader { hint: None }))
    );
}

#[test]
fn retried_command_applies_once_after_leader_change() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose(l, 7, 1, (1, 10));
    assert_eq!(c.reply_for(7, 1), Some(Ok(None)));
    c.propose(l, 7, 2, (1, 20));
    assert_eq!(c.reply_for(7, 2), Some(Ok(Some(10))));
    c.crash(l);
    c.down.insert(l);
    c.run_for(Duration::from_millis(500));
    let l2 = c.leader().expect("new leader");
    assert_ne!(l, l2);
    c.replies.clear();
    // The client retries seq 2 at the new leader: original output, no re-apply.
    c.propose(l2, 7, 2, (1, 20));
    c.run_for(Duration::from_millis(30));
    assert_eq!(c.reply_for(7, 2), Some(Ok(Some(10))));
    let applied = &c.reps[l2 as usize]
        .as_ref()
        .unwrap()
        .state_machine()
        .applied;
    assert_eq!(applied.iter().filter(|x| **x == (1, 20)).count(), 1);
    // An older sequence number is stale.
    c.propose(l2, 7, 1, (1, 10));
    assert_eq!(c.reply_for(7, 1), Some(Err(ClientError::Stale)));
}

/// How many times `(client, seq)` appears in the chosen log of replica `r`.
fn copies_in_log(c: &mut Cluster, r: NodeId, client: u64, seq: u64) -> usize {
    let rep = c.r(r);
    (1..=rep.decided())
        .filter_map(|slot| rep.chosen_value(slot))
        .flatten()
        .filter(|e| matches!(e, Entry::Command(cmd) if cmd.client == client && cmd.seq == seq))
        .count()
}

#[test]
fn retry_of_a_pending_command_at_the_leader_is_not_proposed_again() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let now = c.now;
    let command = Command {
        client: 9,
        seq: 1,
        op: (1, 1),
    };
    // The retry arrives while the original is still in the leader's pipeline.
    c.r(l).propose(command.clone(), now);
    c.r(l).propose(command, now);
    c.pump();
    assert_eq!(copies_in_log(&mut c, l, 9, 1), 1);
    assert_eq!(c.r(l).state_machine().applied, vec![(1, 1)]);
    // The original's reply answers the retry.
    let replies = c
        .replies
        .iter()
        .filter(|(_, o)| {
            matches!(
                o,
                Output::Reply {
                    client: 9,
                    seq: 1,
                    result: Ok(None)
                }
            )
        })
        .count();
    assert_eq!(replies, 1);
}

#[test]
fn proposals_given_together_share_one_slot() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let before = c.r(l).decided();
    let now = c.now;
    let commands = (1..=10).map(first_command);
    c.r(l).propose_batch(commands, now);
    c.pump();
    assert_eq!(c.r(l).decided() - before, 1);
    assert_eq!(c.r(l).state_machine().applied.len(), 10);
    for client in 1..=10 {
        assert_eq!(c.reply_for(client, 1), Some(Ok(None)));
    }
}

#[test]
fn proposals_given_together_to_a_follower_are_forwarded_in_one_message() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let f = (l + 1) % 3;
    let now = c.now;
    let commands = (1..=5).map(first_command);
    c.r(f).propose_batch(commands, now);
    let forwards: Vec<usize> = std::iter::from_fn(|| c.r(f).poll_output())
        .filter_map(|o| match o {
            Output::Send {
                message: Message::Forward { entries },
                ..
            } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(forwards, vec![5]);
}

#[test]
fn sessions_expire_by_log_position_on_every_replica() {
    let mut c = Cluster::new(3, |cfg| cfg.session_expiry_slots = 10);
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose(l, 1, 1, (1, 1));
    for s in 1..=70 {
        c.propose(l, 2, s, (2, s));
    }
    c.run_for(Duration::from_millis(30));
    // Client 1's session expired at slot 64: a retry of seq 1 is new again.
    c.propose(l, 1, 1, (1, 1));
    c.run_for(Duration::from_millis(30));
    for r in c.reps.iter().flatten() {
        let n = r
            .state_machine()
            .applied
            .iter()
            .filter(|x| **x == (1, 1))
            .count();
        assert_eq!(n, 2, "replica {}", r.id());
    }
}

#[test]
fn client_retry_through_another_replica_gets_the_original_output() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose(l, 3, 1, (1, 5));
    c.propose(l, 3, 2, (1, 6));
    // Reply lost; the client retries seq 2 through a follower.
    let f = (l + 2) % 3;
    c.replies.clear();
    c.propose(f, 3, 2, (1, 6));
    c.run_for(Duration::from_millis(30));
    assert_eq!(c.reply_for(3, 2), Some(Ok(Some(5))));
    for r in c.reps.iter().flatten() {
        assert_eq!(r.state_machine().applied.len(), 2);
    }
}
#[test]
fn lease_read_is_answered_without_a_log_write() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose(l, 1, 1, (3, 33));
    c.run_for(Duration::from_millis(20));
    let now = c.now;
    let decided = c.r(l).decided();
    c.r(l).read(1, 1, 3, now);
    let outs: Vec<_> = std::iter::from_fn(|| c.r(l).poll_output()).collect();
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::ReadReply {
            result: Ok(Some(33)),
            ..
        }
    )));
    assert!(!outs.iter().any(|o| matches!(o, Output::Send { .. })));
    assert_eq!(c.r(l).decided(), decided);
}

#[test]
fn read_on_a_follower_goes_through_the_log() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    c.propose(l, 1, 1, (3, 33));
    let f = (l + 1) % 3;
    let now = c.now;
    let before = c.r(l).decided();
    c.r(f).read(2, 9, 3, now);
    c.pump();
    c.run_for(Duration::from_millis(20));
    assert!(c.replies.iter().any(|(n, o)| *n == f
        && matches!(
            o,
            Output::ReadReply {
                client: 2,
                id: 9,
                result: Ok(Some(33))
            }
        )));
    assert!(c.r(l).decided() > before);
}

#[test]
fn lease_lapses_when_followers_stop_acknowledging() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    for f in 0..3 {
        if f != l {
            c.down.insert(f);
        }
    }
    // Longer than lease_duration - max_clock_drift (70 ms), shorter than the
    // check-quorum step-down (100 ms).
    c.run_for(Duration::from_millis(75));
    assert!(c.r(l).is_leader());
    let now = c.now;
    c.r(l).read(1, 1, 3, now);
    let outs: Vec<_> = std::iter::from_fn(|| c.r(l).poll_output()).collect();
    assert!(!outs.iter().any(|o| matches!(o, Output::ReadReply { .. })));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Send {
            message: Message::Accept { .. },
            ..
        }
    )));
}
