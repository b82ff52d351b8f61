//! Durability, recovery, catch-up and robustness to bad input.

use std::time::Duration;

use super::*;

#[test]
fn promise_and_accepted_are_withheld_until_persisted() {
    let mut c = Cluster::new(3, |_| {});
    c.auto_persist = false;
    c.now = Duration::from_millis(500);
    let now = c.now;
    c.r(0).tick(now); // election timeout: pre-vote first
    let mut sent_promise = false;
    let mut prevote = None;
    while let Some(o) = c.r(0).poll_output() {
        if let Output::Send {
            message: m @ Message::PreVote { .. },
            ..
        } = o
        {
            prevote = Some(m);
        }
    }
    c.r(1).handle_message(0, prevote.expect("pre-vote"), now);
    let grant = std::iter::from_fn(|| c.r(1).poll_output())
        .find_map(|o| match o {
            Output::Send {
                message: m @ Message::PreVoteGranted { .. },
                ..
            } => Some(m),
            _ => None,
        })
        .expect("pre-vote granted");
    c.r(0).handle_message(1, grant, now);
    let mut prepare = None;
    while let Some(o) = c.r(0).poll_output() {
        if let Output::Send {
            message: m @ Message::Prepare { .. },
            ..
        } = o
        {
            prepare = Some(m);
        }
    }
    let prepare = prepare.expect("prepare");
    c.r(1).handle_message(0, prepare, now);
    let mut token = None;
    while let Some(o) = c.r(1).poll_output() {
        match o {
            Output::Send {
                message: Message::Promise { .. },
                ..
            } => sent_promise = true,
            Output::Persist { token: t, records } => {
                assert!(matches!(records[0], Record::Promise(_)));
                token = Some(t);
            }
            _ => {}
        }
    }
    assert!(!sent_promise, "promise sent before its record was durable");
    c.r(1).persisted(token.unwrap(), now);
    let released: Vec<_> = std::iter::from_fn(|| c.r(1).poll_output()).collect();
    assert!(released.iter().any(|o| matches!(
        o,
        Output::Send {
            to: 0,
            message: Message::Promise { .. }
        }
    )));
}

#[test]
fn crashed_replica_recovers_accepted_values_from_storage() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    for s in 1..=5 {
        c.propose(l, 1, s, (s, s));
    }
    let f = (l + 1) % 3;
    c.crash(f);
    c.restart(f);
    let r = c.reps[f as usize].as_ref().unwrap();
    assert!(r.promised() >= Ballot::new(1, 0));
    c.run_for(Duration::from_millis(100));
    assert_eq!(
        c.reps[f as usize]
            .as_ref()
            .unwrap()
            .state_machine()
            .applied
            .len(),
        5
    );
}

#[test]
fn lagging_replica_catches_up_through_a_snapshot() {
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_log_len = 8);
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let lag = (l + 1) % 3;
    c.down.insert(lag);
    for s in 1..=40 {
        c.propose(l, 1, s, (s % 4, s));
    }
    assert!(c.reps[l as usize].as_ref().unwrap().snapshot_slot() >= 8);
    c.down.remove(&lag);
    c.run_for(Duration::from_millis(200));
    let a = c.reps[lag as usize]
        .as_ref()
        .unwrap()
        .state_machine()
        .map
        .clone();
    let b = c.reps[l as usize]
        .as_ref()
        .unwrap()
        .state_machine()
        .map
        .clone();
    assert_eq!(a, b);
    assert_eq!(
        c.reps[lag as usize].as_ref().unwrap().applied(),
        c.reps[l as usize].as_ref().unwrap().applied()
    );
}

#[test]
fn malformed_messages_are_ignored() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let now = c.now;
    let l = c.leader().unwrap();
    let f = (l + 1) % 3;
    let junk: Vec<MessageOf<Kv>> = vec![
        Message::Accept {
            ballot: Ballot::new(u64::MAX, 99),
            slot: 0,
            value: vec![],
            commit: u64::MAX,
        },
        Message::Prepare {
            ballot: Ballot::new(u64::MAX, 42),
            from: u64::MAX,
            handover: None,
        },
        Message::Nack {
            ballot: Ballot::new(u64::MAX, 0),
        },
        Message::PreVote {
            ballot: Ballot::new(u64::MAX, l),
        },
        Message::Heartbeat {
            ballot: Ballot::new(u64::MAX, l),
            round: 1,
            commit: 1,
        },
        Message::CatchUpRequest { from: u64::MAX },
        Message::CatchUpRequest { from: 0 },
        Message::CatchUp {
            entries: vec![(0, vec![]), (u64::MAX, vec![])],
        },
        Message::InstallSnapshot {
            snapshot: Snapshot {
                slot: 5,
                state: vec![1, 2, 3],
                sessions: vec![],
                membership: Default::default(),
            },
        },
        Message::Commit {
            ballot: Ballot::new(0, 0),
            commit: u64::MAX,
        },
        Message::Promise {
            ballot: Ballot::new(1, 1),
            entries: vec![],
            snapshot_slot: u64::MAX,
        },
    ];
    for m in junk {
        c.r(f).handle_message(l, m.clone(), now);
        c.r(f).handle_message(77, m, now);
    }
    c.pump();
    c.run_for(Duration::from_millis(300));
    let l = c.leader().unwrap();
    c.propose(l, 1, 1, (1, 1));
    assert_eq!(c.reply_for(1, 1), Some(Ok(None)));
}

/// An accept for a slot far ahead of the log, from the leader with its own ballot: no
/// correct leader sends one (it numbers slots one after another), and a peer is a
/// cluster member authenticated by mutual TLS, but the replica must not hang on it. The
/// follower accepts it; the next leader's phase 1 adopts it, and the leader used to put
/// a no-op in every slot up to it at once, in one step: it never came back. Now it
/// proposes them a pipeline at a time (the cluster is busy with no-ops; a lying member
/// can stall Paxos, but not hang a replica). Found by the `paxos_replica` fuzz target.
#[test]
fn an_accept_far_ahead_does_not_hang_the_next_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.run_for(Duration::from_millis(400));
    let l = c.leader().unwrap();
    let f = (l + 1) % 3;
    let ballot = c.r(l).promised();
    let now = c.now;
    let far = Message::Accept {
        ballot,
        slot: 1 << 61,
        value: vec![],
        commit: 0,
    };
    c.r(f).handle_message(l, far, now);
    c.pump();
    c.crash(l);
    c.down.insert(l);
    for _ in 0..1000 {
        c.now += Duration::from_millis(1);
        let now = c.now;
        for r in c.reps.iter_mut().flatten() {
            r.tick(now);
        }
        // The new leader's no-ops never end: a few rounds each millisecond.
        c.pump_rounds(20);
        if c.leader().is_some() {
            break;
        }
    }
    let new = c.leader().expect("a new leader, in time");
    assert_ne!(new, l);
    let Role::Leader(leader) = &c.r(new).role else {
        unreachable!("it leads")
    };
    assert!(
        leader.backlog.len() <= 1,
        "{} values held",
        leader.backlog.len()
    );
}

#[test]
fn messages_and_records_round_trip_through_messagepack() {
    let m: MessageOf<Kv> = Message::Accept {
        ballot: Ballot::new(3, 1),
        slot: 9,
        value: vec![Entry::Command(Command {
            client: 1,
            seq: 2,
            op: (3, 4),
        })],
        commit: 8,
    };
    let b = rmp_serde::to_vec(&m).unwrap();
    let back: MessageOf<Kv> = rmp_serde::from_slice(&b).unwrap();
    assert_eq!(m, back);
    let r: RecordOf<Kv> = Record::Promise(Ballot::new(1, 2));
    let b = rmp_serde::to_vec(&r).unwrap();
    assert_eq!(r, rmp_serde::from_slice::<RecordOf<Kv>>(&b).unwrap());
}
