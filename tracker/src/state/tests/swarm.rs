//! Swarms: joining, piece reports, counts, leaving, heartbeats and expiry.

use super::*;
use crate::state::Stats;

fn stats(h: &Harness) -> Stats {
    match h.query(Query::Stats) {
        Output::Stats(s) => s,
        other => panic!("{other:?}"),
    }
}

fn availability(h: &Harness, ih: InfoHash) -> Vec<u32> {
    match h.query(Query::Details(ih)) {
        Output::Details(Some(d)) => d.availability,
        other => panic!("{other:?}"),
    }
}

#[test]
fn join_refuses_unknown_torrents_and_wrong_bitfields() {
    let mut h = Harness::new();
    let ih = h.publish("a", 10, 1);
    let unknown = InfoHash::from_bytes([9; 32]);
    let join = |info_hash, have| Command::Join {
        info_hash,
        fingerprint: fp(1),
        addr: addr(1),
        have,
        want: 5,
        now_ms: 1,
    };
    assert_eq!(
        h.err(join(unknown, Bitfield::new(10))),
        ApiError::UnknownTorrent(unknown)
    );
    assert!(matches!(
        h.err(join(ih, Bitfield::new(11))),
        ApiError::BadPieces(_)
    ));
    assert!(matches!(
        h.err(join(ih, Bitfield::new(9))),
        ApiError::BadPieces(_)
    ));
    assert_eq!(stats(&h).peers, 0);
}

#[test]
fn counts_follow_joins_reports_and_leaves_and_completion_counts_once() {
    let mut h = Harness::new();
    let ih = h.publish("a", 10, 1);
    h.join(ih, 1, Bitfield::full(10), 5, 100);
    h.join(ih, 2, Bitfield::new(10), 5, 100);
    h.join(ih, 3, bits(10, [0, 1]), 5, 100);
    let s = h.summary(ih);
    assert_eq!((s.seeders, s.leechers, s.completed), (1, 2, 0));
    assert_eq!(availability(&h, ih), vec![2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);

    assert_eq!(h.have(ih, 2, (0..9).collect(), 200), Output::Done);
    assert_eq!(h.summary(ih).completed, 0);
    assert_eq!(h.have(ih, 2, vec![9, 9], 200), Output::Done);
    let s = h.summary(ih);
    assert_eq!((s.seeders, s.leechers, s.completed), (2, 1, 1));

    // Losing a piece and getting it back is not a second download.
    assert_eq!(h.not_have(ih, 2, vec![4], 300), Output::Done);
    assert_eq!((h.summary(ih).seeders, h.summary(ih).leechers), (1, 2));
    assert_eq!(availability(&h, ih)[4], 1);
    assert_eq!(h.have(ih, 2, vec![4], 300), Output::Done);
    assert_eq!(h.summary(ih).completed, 1);

    // A peer that joined full never counts as completing.
    h.not_have(ih, 1, vec![0], 300);
    h.have(ih, 1, vec![0], 300);
    assert_eq!(h.summary(ih).completed, 1);

    // Re-joining with a full bitfield after joining incomplete completes.
    h.join(ih, 3, Bitfield::full(10), 5, 400);
    let s = h.summary(ih);
    assert_eq!((s.seeders, s.leechers, s.completed), (3, 0, 2));

    h.ok(Command::Leave {
        info_hash: ih,
        fingerprint: fp(3),
    });
    h.ok(Command::Leave {
        info_hash: ih,
        fingerprint: fp(3),
    });
    let s = h.summary(ih);
    assert_eq!((s.seeders, s.leechers, s.completed), (2, 0, 2));
    assert_eq!(availability(&h, ih), vec![2; 10]);
    let st = stats(&h);
    assert_eq!((st.swarms, st.peers, st.seeders), (1, 2, 2));
    assert_eq!(st.piece_reports, 10 + 2 + 9 + 2 + 1 + 1 + 10);
}

#[test]
fn out_of_range_pieces_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let ih = h.publish("a", 10, 1);
    h.join(ih, 1, bits(10, [3]), 5, 100);
    let before = h.state.snapshot();
    for out in [
        h.have(ih, 1, vec![0, 1, 10], 200),
        h.not_have(ih, 1, vec![3, u32::MAX], 200),
    ] {
        assert!(
            matches!(out, Output::Error(ApiError::BadPieces(ref m)) if m.contains("out of range")),
            "{out:?}"
        );
    }
    assert_eq!(
        h.state.snapshot(),
        before,
        "nothing changed, not even the last-heard time"
    );
}

#[test]
fn reports_from_outside_the_swarm_are_refused() {
    let mut h = Harness::new();
    let ih = h.publish("a", 10, 1);
    let not_in = ApiError::NotInSwarm(ih);
    assert_eq!(h.have(ih, 1, vec![0], 1), Output::Error(not_in.clone()));
    h.join(ih, 2, Bitfield::new(10), 5, 100);
    assert_eq!(h.have(ih, 1, vec![0], 1), Output::Error(not_in.clone()));
    assert_eq!(h.not_have(ih, 1, vec![0], 1), Output::Error(not_in));
    let unknown = InfoHash::from_bytes([9; 32]);
    assert_eq!(
        h.have(unknown, 2, vec![0], 1),
        Output::Error(ApiError::UnknownTorrent(unknown))
    );
}

#[test]
fn heartbeat_refreshes_every_swarm_and_expire_removes_the_silent() {
    let mut h = Harness::new();
    let a = h.publish("a", 4, 1);
    let b = h.publish("b", 4, 1);
    h.join(a, 1, Bitfield::new(4), 5, 1_000);
    h.join(b, 1, Bitfield::full(4), 5, 1_000);
    h.join(a, 2, Bitfield::full(4), 5, 1_000);

    h.ok(Command::Heartbeat {
        fingerprint: fp(1),
        now_ms: 20_000,
        info_hash: None,
    });
    h.ok(Command::Heartbeat {
        fingerprint: fp(99),
        now_ms: 20_000,
        info_hash: None,
    });
    // Peer 2: 1_000 + TTL = 31_000, not yet before 31_000.
    assert_eq!(
        h.apply(Command::Expire { now_ms: 31_000 }),
        Output::Expired(0)
    );
    assert_eq!(
        h.apply(Command::Expire { now_ms: 31_001 }),
        Output::Expired(1)
    );
    assert_eq!(h.summary(a).seeders, 0);
    assert_eq!(h.summary(a).leechers, 1);
    assert_eq!(h.summary(b).seeders, 1);

    assert_eq!(
        h.apply(Command::Expire { now_ms: 50_001 }),
        Output::Expired(2)
    );
    let st = stats(&h);
    assert_eq!((st.torrents, st.swarms, st.peers, st.expired), (2, 0, 0, 3));
    assert_eq!(availability(&h, a), vec![0; 4], "the torrent stays");
    assert_eq!(
        h.have(a, 1, vec![0], 60_000),
        Output::Error(ApiError::NotInSwarm(a))
    );
    // A peer can come back after expiry.
    h.join(a, 1, Bitfield::new(4), 5, 60_000);
    assert_eq!(h.summary(a).leechers, 1);
}

#[test]
fn a_heartbeat_naming_a_swarm_the_peer_is_not_in_says_so_and_still_refreshes_the_others() {
    let mut h = Harness::new();
    let a = h.publish("a", 4, 1);
    let b = h.publish("b", 4, 1);
    h.join(a, 1, Bitfield::full(4), 5, 1_000);
    h.join(b, 1, Bitfield::full(4), 5, 1_000);
    let beat = |info_hash, peer, now_ms| Command::Heartbeat {
        fingerprint: fp(peer),
        now_ms,
        info_hash,
    };
    assert_eq!(h.apply(beat(Some(a), 1, 20_000)), Output::Done);
    // Peer 1 stops for longer than the TTL: expired from both swarms.
    assert_eq!(
        h.apply(Command::Expire { now_ms: 60_000 }),
        Output::Expired(2)
    );
    // Its next heartbeat is refused with the distinct answer, for the swarm it names.
    assert_eq!(
        h.apply(beat(Some(a), 1, 61_000)),
        Output::Error(ApiError::NotInSwarm(a))
    );
    // A peer that never joined hears the same; an unknown torrent is named as such.
    assert_eq!(
        h.apply(beat(Some(b), 7, 61_000)),
        Output::Error(ApiError::NotInSwarm(b))
    );
    let unknown = InfoHash::from_bytes([9; 32]);
    assert_eq!(
        h.apply(beat(Some(unknown), 1, 61_000)),
        Output::Error(ApiError::UnknownTorrent(unknown))
    );
    // Without a swarm named (older clients), the old answer.
    assert_eq!(h.apply(beat(None, 1, 61_000)), Output::Done);

    // Rejoined to `a` only: a heartbeat for `a` refreshes it, one for `b` is refused but
    // still refreshes `a`.
    h.join(a, 1, Bitfield::full(4), 5, 62_000);
    assert_eq!(h.summary(a).seeders, 1);
    assert_eq!(h.apply(beat(Some(a), 1, 70_000)), Output::Done);
    assert_eq!(
        h.apply(beat(Some(b), 1, 90_000)),
        Output::Error(ApiError::NotInSwarm(b))
    );
    // 90_000 + TTL (30_000) = 120_000: still there just before.
    assert_eq!(
        h.apply(Command::Expire { now_ms: 119_999 }),
        Output::Expired(0)
    );
    assert_eq!(h.summary(a).seeders, 1);
}

#[test]
fn reports_refresh_the_last_heard_time_but_never_move_it_back() {
    let mut h = Harness::new();
    let ih = h.publish("a", 4, 1);
    h.join(ih, 1, Bitfield::new(4), 5, 10_000);
    h.have(ih, 1, vec![0], 40_000);
    h.have(ih, 1, vec![1], 5_000); // a proposer with a slow clock
    assert_eq!(
        h.apply(Command::Expire { now_ms: 70_000 }),
        Output::Expired(0)
    );
    match h.query(Query::Details(ih)) {
        Output::Details(Some(d)) => assert_eq!(d.peers[0].last_heard_ms, 40_000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn details_list_every_peer_with_its_piece_count() {
    let mut h = Harness::new();
    let ih = h.publish("a", 4, 1);
    for p in 0..5 {
        h.join(ih, p, bits(4, 0..p.min(4)), 0, 100 + u64::from(p));
    }
    match h.query(Query::Details(ih)) {
        Output::Details(Some(d)) => {
            assert_eq!(d.peers.len(), 5);
            let mut sorted = d.peers.clone();
            sorted.sort_by_key(|p| p.info.fingerprint);
            assert_eq!(d.peers, sorted);
            let p3 = d
                .peers
                .iter()
                .find(|p| p.info.fingerprint == fp(3))
                .unwrap();
            assert_eq!(
                (p3.info.pieces, p3.info.addr, p3.last_heard_ms),
                (3, addr(3), 103)
            );
            assert_eq!(d.availability, vec![4, 3, 2, 1]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn leave_of_unknown_torrent_is_refused_and_of_absent_peer_is_done() {
    let mut h = Harness::new();
    let ih = h.publish("a", 4, 1);
    h.ok(Command::Leave {
        info_hash: ih,
        fingerprint: fp(1),
    });
    let unknown = InfoHash::from_bytes([9; 32]);
    assert_eq!(
        h.err(Command::Leave {
            info_hash: unknown,
            fingerprint: fp(1)
        }),
        ApiError::UnknownTorrent(unknown)
    );
}

#[test]
fn empty_torrent_peers_are_seeders() {
    let mut h = Harness::new();
    let file = {
        let info = Info {
            name: "empty".into(),
            piece_length: MIN_PIECE_LENGTH,
            files: vec![FileEntry {
                path: vec![],
                length: 0,
            }],
            pieces: vec![],
        };
        let ca = Fingerprint::from_bytes([7; 32]);
        Torrent::new(info, vec!["192.0.2.1:7000".parse().unwrap()], ca, 1, None)
            .unwrap()
            .encode()
    };
    let Output::Published(ih) = h.apply(Command::Publish {
        torrent: file,
        by: Uploader::User("bob".into()),
        now_ms: 1,
    }) else {
        panic!("publish failed")
    };
    h.join(ih, 1, Bitfield::new(0), 5, 1);
    let s = h.summary(ih);
    assert_eq!((s.seeders, s.leechers, s.completed), (1, 0, 0));
}
