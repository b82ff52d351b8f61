//! The core driven by scripted events, one behaviour per test.

use std::time::{Duration, Instant};

use certs::Fingerprint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracker::Bitfield;
use tracker::api::PeerInfo;

use super::*;

const PIECE: u64 = 1000;

fn fp(n: u8) -> Fingerprint {
    Fingerprint::from_bytes([n; 32])
}

fn info(n: u8) -> PeerInfo {
    PeerInfo {
        fingerprint: fp(n),
        addr: format!("10.0.0.{n}:7000").parse().unwrap(),
        pieces: 0,
    }
}

fn bits(len: u32, ones: impl IntoIterator<Item = u32>) -> Bitfield {
    let mut b = Bitfield::new(len);
    for i in ones {
        b.set(i);
    }
    b
}

fn swarm_with(config: SwarmConfig, pieces: u32, have: Bitfield, now: Instant) -> Swarm {
    let layout = PieceLayout {
        piece_len: PIECE,
        total_len: PIECE * u64::from(pieces),
    };
    Swarm::new(config, fp(0), layout, have, now)
}

fn drain(s: &mut Swarm) -> Vec<Action> {
    check_counts(s);
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn requests_to(actions: &[Action], peer: Fingerprint) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { peer: p, piece } if *p == peer => Some(*piece),
            _ => None,
        })
        .collect()
}

/// Offers, connects and announces neighbour `n` with `pieces`; returns the outputs.
fn join(s: &mut Swarm, n: u8, pieces: Bitfield, now: Instant) -> Vec<Action> {
    s.handle_peers_offered(vec![info(n)], now);
    s.handle_connected(fp(n), now);
    s.handle_bitfield(fp(n), pieces, now);
    drain(s)
}

/// The picker's counts agree with the neighbours' state.
fn check_counts(s: &Swarm) {
    for piece in 0..s.layout.piece_count() {
        let (mut holders, mut requests) = (0, 0);
        for p in s.peers.values() {
            if let Some(n) = p.neighbour() {
                holders += u32::from(n.announced && n.bitfield.get(piece));
                requests += u32::from(n.in_flight.contains_key(&piece));
            }
        }
        assert_eq!(
            s.picker.availability(piece),
            holders,
            "availability of {piece}"
        );
        assert_eq!(s.picker.requests(piece), requests, "requests of {piece}");
    }
    s.picker.check_summaries();
    // The kept next timeout may be early (a spurious wake-up), never late.
    if let Some(fresh) = s.next_deadline() {
        let kept = s.next_timeout();
        assert!(
            kept.is_some_and(|k| k <= fresh),
            "kept {kept:?}, due {fresh:?}"
        );
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn new_core_asks_for_peers_or_reports_completion() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 4, Bitfield::new(4), t0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::AskTrackerForPeers { want: 32, .. }]
    ));
    let mut seeder = swarm_with(SwarmConfig::default(), 4, Bitfield::full(4), t0);
    assert_eq!(drain(&mut seeder), vec![Action::Complete]);
    assert!(seeder.is_complete());
}

#[test]
fn requests_rarest_pieces_first() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 1,
        max_in_flight: 1,
        endgame_threshold: 0,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 6, Bitfield::new(6), t0);
    drain(&mut s);
    join(&mut s, 3, bits(6, [4, 5]), t0);
    join(&mut s, 2, bits(6, [2, 3, 4, 5]), t0);
    let mut order = requests_to(&join(&mut s, 1, Bitfield::full(6), t0), fp(1));
    let mut t = t0;
    while let Some(&last) = order.last() {
        t += ms(10);
        s.handle_piece_verified(fp(1), last, t);
        let next = requests_to(&drain(&mut s), fp(1));
        if next.is_empty() {
            break;
        }
        order.extend(next);
    }
    let others = [bits(6, [4, 5]), bits(6, [2, 3, 4, 5])];
    let holders = |i: u32| others.iter().filter(|b| b.get(i)).count() + 1;
    let rarity: Vec<usize> = order.iter().map(|&i| holders(i)).collect();
    // Four pieces nobody else was asked for, rarest first; then endgame races the two
    // pieces requested from the others.
    assert_eq!(rarity[..4], [1, 1, 2, 3], "order {order:?}");
    assert_eq!(order.len(), 6, "order {order:?}");
}

#[test]
fn ties_are_broken_by_the_seeded_generator() {
    let order = |seed: u64| {
        let t0 = Instant::now();
        let config = SwarmConfig {
            seed,
            min_in_flight: 64,
            max_in_flight: 64,
            ..SwarmConfig::default()
        };
        let mut s = swarm_with(config, 64, Bitfield::new(64), t0);
        drain(&mut s);
        requests_to(&join(&mut s, 1, Bitfield::full(64), t0), fp(1))
    };
    assert_eq!(order(7).len(), 64);
    assert_eq!(order(7), order(7), "same seed, same order");
    assert_ne!(order(7), order(8), "different seeds, different orders");
    let mut sorted = order(7);
    sorted.sort_unstable();
    assert_eq!(sorted, (0..64).collect::<Vec<_>>());
}

#[test]
fn requests_in_flight_grow_with_measured_throughput() {
    let in_flight_after_one_piece = |delay: Duration| {
        let t0 = Instant::now();
        let mut s = swarm_with(SwarmConfig::default(), 500, Bitfield::new(500), t0);
        drain(&mut s);
        let first = requests_to(&join(&mut s, 1, Bitfield::full(500), t0), fp(1));
        assert_eq!(first.len(), 2, "min_in_flight until measured");
        s.handle_piece_verified(fp(1), first[0], t0 + delay);
        s.peers()[0].in_flight
    };
    // 1000-byte pieces: 300 ms of data at 1 kB/s, 10 kB/s, 100 kB/s, 1 MB/s.
    assert_eq!(in_flight_after_one_piece(ms(1000)), 2, "clamped to min");
    assert_eq!(in_flight_after_one_piece(ms(100)), 3);
    assert_eq!(in_flight_after_one_piece(ms(10)), 30);
    assert_eq!(in_flight_after_one_piece(ms(1)), 64, "clamped to max");
}

#[test]
fn endgame_duplicates_requests_and_cancels_the_losers() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 2, Bitfield::new(2), t0);
    drain(&mut s);
    let a = requests_to(&join(&mut s, 1, Bitfield::full(2), t0), fp(1));
    let b = requests_to(&join(&mut s, 2, Bitfield::full(2), t0), fp(2));
    assert_eq!((a.len(), b.len()), (2, 2), "both pieces from both");
    assert!(s.progress().endgame);
    s.handle_piece_verified(fp(1), 0, t0 + ms(5));
    let out = drain(&mut s);
    assert!(
        out.contains(&Action::Cancel {
            peer: fp(2),
            piece: 0
        }),
        "{out:?}"
    );
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Cancel { peer, .. } if *peer == fp(1)))
    );
    // The loser's copy arriving late changes nothing.
    s.handle_piece_verified(fp(2), 0, t0 + ms(6));
    assert!(
        !drain(&mut s)
            .iter()
            .any(|a| matches!(a, Action::Advertise { .. }))
    );
}

#[test]
fn outside_endgame_a_piece_is_requested_once() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        endgame_threshold: 0,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    let mut all = requests_to(&join(&mut s, 1, Bitfield::full(10), t0), fp(1));
    all.extend(requests_to(&join(&mut s, 2, Bitfield::full(10), t0), fp(2)));
    all.extend(requests_to(&join(&mut s, 3, Bitfield::full(10), t0), fp(3)));
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((n, all.len()), (6, 6));
    assert!(!s.progress().endgame);
}

#[test]
fn timed_out_neighbour_is_backed_off_and_replaced_through_the_tracker() {
    let t0 = Instant::now();
    let config = SwarmConfig::default();
    let timeout = config.request_timeout;
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    let asked = requests_to(&join(&mut s, 1, Bitfield::full(10), t0), fp(1));
    assert_eq!(asked.len(), 2);
    // Ticking whenever asked to: nothing happens to the neighbour before its deadline.
    let out = loop {
        let next = s.next_timeout().expect("a deadline is pending");
        assert!(next <= t0 + timeout, "{:?}", next - t0);
        s.handle_timeout(next);
        let out = drain(&mut s);
        let gone = out.contains(&Action::Disconnect {
            peer: fp(1),
            banned: false,
        });
        assert_eq!(gone, next == t0 + timeout, "at {:?}", next - t0);
        if gone {
            break out;
        }
    };
    let view = &s.peers()[0];
    let ContactState::BackedOff(until) = view.state else {
        panic!("{view:?}")
    };
    assert_eq!((view.failures, view.in_flight), (1, 0));
    assert!(until > t0 + timeout);
    assert_eq!(
        s.picker.requests(asked[0]),
        0,
        "its requests are free again"
    );
    // A replacement is asked of the tracker at once or within the tracker's pacing, and
    // the neighbour is dialled again once its back-off ends, not before.
    let (mut asked_tracker, mut redialled) = (false, false);
    let mut out = out;
    loop {
        asked_tracker |= out.iter().any(
            |a| matches!(a, Action::AskTrackerForPeers { exclude, .. } if exclude.contains(&fp(1))),
        );
        redialled |= out.contains(&Action::Connect(info(1)));
        if asked_tracker && redialled {
            break;
        }
        let now = s.next_timeout().expect("a deadline is pending");
        assert!(asked_tracker || now <= t0 + timeout + ms(2000));
        s.handle_timeout(now);
        out = drain(&mut s);
        assert!(!out.contains(&Action::Connect(info(1))) || now >= until);
    }
}

#[test]
fn failed_dials_back_off_exponentially_and_are_forgotten_at_last() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        max_failures: 4,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    s.handle_peers_offered(vec![info(1)], t0);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..4 {
        assert!(drain(&mut s).contains(&Action::Connect(info(1))));
        s.handle_connect_failed(fp(1), now);
        let Some(view) = s.peers().first().cloned() else {
            break;
        };
        let ContactState::BackedOff(until) = view.state else {
            panic!("{view:?}")
        };
        waits.push(until - now);
        now = until;
        s.handle_timeout(now);
    }
    assert_eq!(waits.len(), 3);
    assert!(waits[0] < waits[2], "{waits:?}");
    assert!(s.peers().is_empty(), "forgotten after max_failures");
}

#[test]
fn unanswered_dial_is_abandoned() {
    let t0 = Instant::now();
    let config = SwarmConfig::default();
    let to = config.connect_timeout;
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    s.handle_peers_offered(vec![info(1)], t0);
    assert!(drain(&mut s).contains(&Action::Connect(info(1))));
    s.handle_timeout(t0 + to);
    assert!(drain(&mut s).contains(&Action::Disconnect {
        peer: fp(1),
        banned: false
    }));
    assert!(matches!(s.peers()[0].state, ContactState::BackedOff(_)));
}

#[test]
fn corrupt_piece_bans_its_sender_for_good() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 20, Bitfield::new(20), t0);
    drain(&mut s);
    let a = requests_to(&join(&mut s, 1, Bitfield::full(20), t0), fp(1));
    join(&mut s, 2, Bitfield::full(20), t0);
    s.handle_piece_corrupt(fp(1), a[0], t0 + ms(10));
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Action::Disconnect {
            peer: fp(1),
            banned: true
        }
    );
    assert!(s.is_banned(&fp(1)));
    assert!(s.peers().iter().all(|p| p.peer != fp(1)));
    // Offered again, or connecting on its own: never used again.
    s.handle_peers_offered(vec![info(1)], t0 + ms(20));
    s.handle_connected(fp(1), t0 + ms(20));
    s.handle_bitfield(fp(1), Bitfield::full(20), t0 + ms(20));
    let mut out = drain(&mut s);
    assert!(out.contains(&Action::Disconnect {
        peer: fp(1),
        banned: true
    }));
    let mut t = t0 + ms(20);
    for _ in 0..100 {
        t += ms(10);
        let Some(piece) = s.peers().iter().find(|p| p.peer == fp(2)).and_then(|_| {
            s.peers[&fp(2)]
                .neighbour()
                .and_then(|n| n.in_flight.keys().next().copied())
        }) else {
            break;
        };
        s.handle_piece_verified(fp(2), piece, t);
        out.extend(drain(&mut s));
    }
    assert!(requests_to(&out, fp(1)).is_empty());
    assert!(!out.contains(&Action::Connect(info(1))));
    assert!(s.is_complete(), "the honest neighbour supplied everything");
}

#[test]
fn not_have_stops_requests_for_that_piece_and_asks_the_tracker() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 1,
        max_in_flight: 1,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 3, Bitfield::new(3), t0);
    drain(&mut s);
    let first = requests_to(&join(&mut s, 1, Bitfield::full(3), t0), fp(1))[0];
    s.handle_not_have(fp(1), first, t0 + ms(10));
    let mut later = requests_to(&drain(&mut s), fp(1));
    let mut t = t0 + ms(10);
    while let Some(&piece) = later.last() {
        t += ms(10);
        s.handle_piece_verified(fp(1), piece, t);
        let next = requests_to(&drain(&mut s), fp(1));
        if next.is_empty() {
            break;
        }
        later.extend(next);
    }
    assert_eq!(later.len(), 2);
    assert!(!later.contains(&first), "{first} asked again: {later:?}");
    let mut out = Vec::new();
    while let Some(next) = s.next_timeout().filter(|&n| n < t0 + ms(5000)) {
        s.handle_timeout(next);
        out.extend(drain(&mut s));
    }
    assert!(out.contains(&Action::AskTrackerForPiece(first)), "{out:?}");
}

#[test]
fn pieces_no_neighbour_has_are_asked_of_the_tracker() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 4, Bitfield::new(4), t0);
    drain(&mut s);
    join(&mut s, 1, bits(4, [0, 1]), t0);
    s.handle_timeout(t0 + ms(2000));
    let out = drain(&mut s);
    let asked: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::AskTrackerForPiece(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![2, 3]);
    // Paced: not again before the back-off has passed.
    s.handle_timeout(t0 + ms(3000));
    assert!(
        !drain(&mut s)
            .iter()
            .any(|a| matches!(a, Action::AskTrackerForPiece(_)))
    );
    s.handle_have(fp(1), 2, t0 + ms(3500));
    let next = s.next_timeout().expect("the next round");
    s.handle_timeout(next);
    let out = drain(&mut s);
    assert!(out.contains(&Action::AskTrackerForPiece(3)), "{out:?}");
    assert!(!out.contains(&Action::AskTrackerForPiece(2)));
}

#[test]
fn lost_local_piece_is_reported_and_downloaded_again() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 4, Bitfield::full(4), t0);
    assert_eq!(drain(&mut s), vec![Action::Complete]);
    s.handle_local_piece_lost(2, t0 + ms(1));
    let out = drain(&mut s);
    assert_eq!(out[0], Action::ReportNotHave(vec![2]));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::AskTrackerForPeers { .. }))
    );
    assert!(!s.is_complete() && !s.have().get(2));
    s.handle_local_piece_lost(2, t0 + ms(2));
    s.handle_local_piece_lost(99, t0 + ms(2));
    assert!(drain(&mut s).is_empty(), "nothing more to say");
    assert_eq!(
        requests_to(&join(&mut s, 1, Bitfield::full(4), t0 + ms(3)), fp(1)),
        vec![2]
    );
    s.handle_piece_verified(fp(1), 2, t0 + ms(50));
    let out = drain(&mut s);
    assert!(out.contains(&Action::ReportHave(vec![2])));
    assert_eq!(out.last(), Some(&Action::Complete));
}

#[test]
fn new_pieces_are_reported_in_batches_and_heartbeats_are_on_time() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 1,
        max_in_flight: 1,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 100, Bitfield::new(100), t0);
    drain(&mut s);
    let mut piece = requests_to(&join(&mut s, 1, Bitfield::full(100), t0), fp(1))[0];
    let mut reports = Vec::new();
    let mut heartbeats = Vec::new();
    let mut got = Vec::new();
    let mut t = t0;
    // One piece every 500 ms for 21 s.
    for _ in 0..42 {
        t += ms(500);
        s.handle_piece_verified(fp(1), piece, t);
        got.push(piece);
        for a in drain(&mut s) {
            match a {
                Action::ReportHave(batch) => reports.push((t - t0, batch)),
                Action::Heartbeat => heartbeats.push(t - t0),
                Action::Request { piece: p, .. } => piece = p,
                _ => {}
            }
        }
    }
    let times: Vec<Duration> = reports.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, (1..=10).map(|i| ms(2000 * i)).collect::<Vec<_>>());
    assert!(reports.iter().all(|(_, b)| b.len() == 4 && b.is_sorted()));
    let reported: Vec<u32> = reports.iter().flat_map(|(_, b)| b.clone()).collect();
    let mut sorted_got = got[..40].to_vec();
    sorted_got.sort_unstable();
    let mut sorted_reported = reported.clone();
    sorted_reported.sort_unstable();
    assert_eq!(sorted_reported, sorted_got);
    assert_eq!(heartbeats, vec![ms(10_000), ms(20_000)]);
}

#[test]
fn new_pieces_are_announced_at_once_after_a_quiet_spell_and_batched_within_the_interval() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        announce_interval: ms(100),
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    join(&mut s, 1, Bitfield::full(10), t0);
    let advertised = |actions: Vec<Action>| -> Vec<Vec<u32>> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Advertise { pieces, .. } => Some(pieces),
                _ => None,
            })
            .collect()
    };
    s.handle_piece_verified(fp(1), 4, t0 + ms(10));
    assert_eq!(
        advertised(drain(&mut s)),
        vec![vec![4]],
        "first goes at once"
    );
    s.handle_piece_verified(fp(1), 7, t0 + ms(30));
    s.handle_piece_verified(fp(1), 2, t0 + ms(60));
    assert!(advertised(drain(&mut s)).is_empty(), "within the interval");
    assert!(s.next_timeout().is_some_and(|t| t <= t0 + ms(110)));
    s.handle_timeout(t0 + ms(110));
    assert_eq!(advertised(drain(&mut s)), vec![vec![2, 7]]);
    // A second later the next piece goes at once again.
    s.handle_piece_verified(fp(1), 0, t0 + ms(1200));
    assert_eq!(advertised(drain(&mut s)), vec![vec![0]]);
}

#[test]
fn announcements_spare_neighbours_that_announced_every_piece_in_them() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 10, Bitfield::new(10), t0);
    drain(&mut s);
    join(&mut s, 1, bits(10, 0..9), t0);
    join(&mut s, 2, bits(10, [4]), t0);
    join(&mut s, 3, bits(10, [5]), t0);
    let announced = |actions: Vec<Action>| -> Vec<(Vec<u32>, Vec<Fingerprint>)> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Advertise {
                    pieces,
                    mut known_to,
                } => {
                    known_to.sort();
                    Some((pieces, known_to))
                }
                _ => None,
            })
            .collect()
    };
    s.handle_piece_verified(fp(1), 4, t0 + ms(10));
    assert_eq!(
        announced(drain(&mut s)),
        vec![(vec![4], vec![fp(1), fp(2)])],
        "only 3 lacks piece 4"
    );
    // A batch is spared only to a neighbour that holds all of it: 3 holds 5, not 6.
    s.handle_piece_verified(fp(1), 5, t0 + ms(30));
    s.handle_piece_verified(fp(1), 6, t0 + ms(60));
    s.handle_timeout(t0 + ms(110));
    assert_eq!(announced(drain(&mut s)), vec![(vec![5, 6], vec![fp(1)])]);
    // What a neighbour announced later counts too.
    s.handle_haves(fp(3), &[7], t0 + ms(500));
    drain(&mut s);
    s.handle_piece_verified(fp(1), 7, t0 + ms(1000));
    assert_eq!(
        announced(drain(&mut s)),
        vec![(vec![7], vec![fp(1), fp(3)])]
    );
}

#[test]
fn a_large_batch_is_reported_at_once() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        report_batch_max: 3,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 10, Bitfield::new(10), t0);
    drain(&mut s);
    join(&mut s, 1, Bitfield::full(10), t0);
    let mut out = Vec::new();
    for piece in 0..3 {
        s.handle_piece_verified(fp(1), piece, t0 + ms(1));
        out.extend(drain(&mut s));
    }
    assert!(out.contains(&Action::ReportHave(vec![0, 1, 2])), "{out:?}");
}

#[test]
fn completion_flushes_reports_releases_neighbours_and_is_announced_once() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 3, Bitfield::new(3), t0);
    drain(&mut s);
    join(&mut s, 1, Bitfield::full(3), t0);
    let mut out = Vec::new();
    for piece in 0..3 {
        s.handle_piece_verified(fp(1), piece, t0 + ms(10));
        out.extend(drain(&mut s));
    }
    let n = out.len();
    assert_eq!(
        out[n - 4..],
        [
            Action::Disconnect {
                peer: fp(1),
                banned: false
            },
            // Piece 0 went at once; the rest are not held back for the interval.
            // Every link hears the batch that completes the download.
            Action::Advertise {
                pieces: vec![1, 2],
                known_to: vec![]
            },
            Action::ReportHave(vec![0, 1, 2]),
            Action::Complete
        ]
    );
    assert_eq!(out.iter().filter(|a| **a == Action::Complete).count(), 1);
    let p = s.progress();
    assert_eq!(
        (p.pieces_have, p.bytes_have, p.complete),
        (3, 3 * PIECE, true)
    );
    // Later only heartbeats, and the idle uplink's ask for peers to serve; the complete
    // peer 1 is not dialled back.
    s.handle_timeout(t0 + ms(5000));
    let later = drain(&mut s);
    assert!(
        later
            .iter()
            .all(|a| matches!(a, Action::Heartbeat | Action::AskTrackerForPeers { .. })),
        "{later:?}"
    );
}

#[test]
fn an_idle_seeder_asks_for_peers_to_serve_and_dials_them() {
    let t0 = Instant::now();
    let config = SwarmConfig::default();
    let idle = config.idle_uplink_after;
    let mut s = swarm_with(config, 4, Bitfield::full(4), t0);
    drain(&mut s);
    // Busy serving: no ask however long it takes.
    s.handle_upload_requested(fp(1), 0, 0, t0);
    drain(&mut s);
    s.handle_timeout(t0 + idle * 3);
    assert!(
        !drain(&mut s)
            .iter()
            .any(|a| matches!(a, Action::AskTrackerForPeers { .. }))
    );
    // Idle from 3 idle periods on: it asks once the idle period has passed.
    s.handle_upload_done(fp(1), 0, PIECE, t0 + idle * 3);
    drain(&mut s);
    assert!(s.next_timeout().is_some_and(|t| t <= t0 + idle * 4));
    s.handle_timeout(t0 + idle * 4);
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::AskTrackerForPeers { .. })),
        "{out:?}"
    );
    // A leecher and a seeder are offered: the leecher is dialled next round.
    let leecher = PeerInfo {
        pieces: 1,
        ..info(2)
    };
    let seeder = PeerInfo {
        pieces: 4,
        ..info(3)
    };
    s.handle_peers_offered(vec![leecher.clone(), seeder], t0 + idle * 4);
    let mut dialled = Vec::new();
    let mut t = t0 + idle * 4;
    while dialled.is_empty() && t < t0 + idle * 20 {
        t = s.next_timeout().expect("an idle seeder keeps a timer");
        s.handle_timeout(t);
        dialled.extend(drain(&mut s).into_iter().filter_map(|a| match a {
            Action::Connect(p) => Some(p.fingerprint),
            _ => None,
        }));
    }
    assert_eq!(dialled, vec![fp(2)]);
    // It is served while it lacks pieces; once it has them all it is let go.
    s.handle_connected(fp(2), t);
    s.handle_bitfield(fp(2), bits(4, [0, 1]), t);
    s.handle_have(fp(2), 2, t);
    assert!(s.wants(&fp(2)), "still a leecher");
    drain(&mut s);
    s.handle_have(fp(2), 3, t);
    assert!(!s.wants(&fp(2)));
    assert!(drain(&mut s).contains(&Action::Disconnect {
        peer: fp(2),
        banned: false
    }));
}

#[test]
fn useless_neighbour_makes_room_for_a_candidate() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        max_neighbours: 1,
        swap_tenure: ms(1000),
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 4, bits(4, [0]), t0);
    drain(&mut s);
    join(&mut s, 1, bits(4, [0]), t0);
    s.handle_peers_offered(vec![info(2)], t0 + ms(1));
    // Connected only just: it may gain pieces yet, so it keeps its slot until its
    // tenure ends, and the core wakes up then.
    let early = drain(&mut s);
    assert!(
        !early.iter().any(|a| matches!(a, Action::Disconnect { .. })),
        "{early:?}"
    );
    assert!(s.next_timeout().is_some_and(|t| t <= t0 + ms(1000)));
    s.handle_timeout(t0 + ms(1000));
    let out = drain(&mut s);
    assert_eq!(
        out[..2],
        [
            Action::Disconnect {
                peer: fp(1),
                banned: false
            },
            Action::Connect(info(2))
        ]
    );
}

#[test]
fn next_timeout_is_always_in_the_future() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 10, Bitfield::new(10), t0);
    join(&mut s, 1, Bitfield::full(10), t0);
    let mut now = t0;
    for _ in 0..50 {
        let Some(next) = s.next_timeout() else { break };
        assert!(next > now);
        now = next;
        s.handle_timeout(now);
        drain(&mut s);
    }
}

#[test]
fn any_sequence_of_inputs_is_survived_and_keeps_counts_consistent() {
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t0 = Instant::now();
        let pieces = rng.random_range(0..20u32);
        let have = bits(pieces, (0..pieces).filter(|_| rng.random_bool(0.3)));
        let config = SwarmConfig {
            seed,
            max_neighbours: 3,
            max_failures: 3,
            ..SwarmConfig::default()
        };
        let mut s = swarm_with(config, pieces, have, t0);
        let mut now = t0;
        for _ in 0..300 {
            let peer = rng.random_range(0..6u8);
            let piece = rng.random_range(0..pieces + 3);
            now += ms(rng.random_range(0..3000));
            // Time sometimes runs backwards: the core must not care.
            let at = if rng.random_bool(0.05) { t0 } else { now };
            match rng.random_range(0..12) {
                0 => s.handle_peers_offered(vec![info(peer), info(0)], at),
                1 => s.handle_connected(fp(peer), at),
                2 => s.handle_connect_failed(fp(peer), at),
                3 => {
                    let len = if rng.random_bool(0.8) {
                        pieces
                    } else {
                        pieces + 1
                    };
                    let b = bits(len, (0..len).filter(|_| rng.random_bool(0.5)));
                    s.handle_bitfield(fp(peer), b, at)
                }
                4 => s.handle_have(fp(peer), piece, at),
                5 if rng.random_bool(0.95) => s.handle_piece_verified(fp(peer), piece, at),
                5 => s.handle_piece_corrupt(fp(peer), piece, at),
                6 => s.handle_not_have(fp(peer), piece, at),
                7 => s.handle_request_failed(fp(peer), piece, at),
                8 => s.handle_disconnected(fp(peer), at),
                9 => s.handle_local_piece_lost(piece, at),
                _ => s.handle_timeout(at),
            }
            drain(&mut s);
            let _ = (s.peers(), s.progress(), s.next_timeout());
            assert_eq!(s.is_complete(), s.have().is_full() && s.progress().complete);
        }
    }
}

fn uploads(actions: &[Action]) -> Vec<(Fingerprint, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Upload { peer, piece } => Some((*peer, *piece)),
            _ => None,
        })
        .collect()
}

#[test]
fn uploads_go_to_the_neediest_neighbour_two_at_a_time() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 10, Bitfield::full(10), t0);
    drain(&mut s);
    s.handle_upload_requested(fp(1), 0, 9, t0);
    s.handle_upload_requested(fp(2), 1, 8, t0);
    assert_eq!(uploads(&drain(&mut s)), vec![(fp(1), 0), (fp(2), 1)]);
    s.handle_upload_requested(fp(3), 2, 7, t0);
    s.handle_upload_requested(fp(4), 3, 1, t0);
    assert!(uploads(&drain(&mut s)).is_empty(), "both slots are taken");
    assert_eq!(s.upload_status().waiting, 2);
    s.handle_upload_done(fp(1), 0, PIECE, t0 + ms(100));
    assert_eq!(
        uploads(&drain(&mut s)),
        vec![(fp(4), 3)],
        "fewest pieces first"
    );
    // A neighbour that leaves takes its waiting requests with it.
    s.handle_disconnected(fp(3), t0 + ms(150));
    s.handle_upload_done(fp(2), 1, PIECE, t0 + ms(200));
    assert!(uploads(&drain(&mut s)).is_empty());
    let status = s.upload_status();
    assert_eq!((status.waiting, status.serving), (0, 1));
    assert!(status.rate.is_some(), "the uplink is measured");
}

#[test]
fn requests_for_pieces_not_held_or_from_banned_peers_are_refused() {
    let t0 = Instant::now();
    let mut s = swarm_with(SwarmConfig::default(), 4, bits(4, [0]), t0);
    drain(&mut s);
    s.handle_upload_requested(fp(1), 2, 0, t0);
    s.handle_upload_requested(fp(1), 9, 0, t0);
    let out = drain(&mut s);
    assert!(out.contains(&Action::RefuseUpload {
        peer: fp(1),
        piece: 2
    }));
    assert!(out.contains(&Action::RefuseUpload {
        peer: fp(1),
        piece: 9
    }));
    join(&mut s, 5, Bitfield::full(4), t0);
    s.handle_piece_corrupt(fp(5), 1, t0);
    drain(&mut s);
    s.handle_upload_requested(fp(5), 0, 0, t0);
    assert!(drain(&mut s).contains(&Action::RefuseUpload {
        peer: fp(5),
        piece: 0
    }));
}

#[test]
fn a_busy_neighbour_is_rested_not_failed_and_its_piece_asked_elsewhere() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 1,
        max_in_flight: 1,
        endgame_threshold: 0,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config.clone(), 4, Bitfield::new(4), t0);
    drain(&mut s);
    let asked = requests_to(&join(&mut s, 1, Bitfield::full(4), t0), fp(1));
    let piece = asked[0];
    let other = requests_to(&join(&mut s, 2, bits(4, [piece]), t0), fp(2));
    assert!(other.is_empty(), "piece {piece} is already asked of peer 1");
    s.handle_busy(fp(1), piece, t0 + ms(10));
    let out = drain(&mut s);
    assert_eq!(
        requests_to(&out, fp(2)),
        vec![piece],
        "asked elsewhere: {out:?}"
    );
    assert!(requests_to(&out, fp(1)).is_empty(), "peer 1 rests");
    let view = s.peers().into_iter().find(|p| p.peer == fp(1)).unwrap();
    assert_eq!((view.state, view.failures), (ContactState::Connected, 0));
    // After the rest it is asked again.
    assert!(
        s.next_timeout()
            .is_some_and(|t| t <= t0 + ms(10) + config.busy_backoff)
    );
    s.handle_timeout(t0 + ms(10) + config.busy_backoff);
    assert_eq!(requests_to(&drain(&mut s), fp(1)).len(), 1);
}

#[test]
fn a_neighbour_refusing_pieces_it_announced_is_let_go() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 1,
        max_in_flight: 1,
        ..SwarmConfig::default()
    };
    let max = config.max_false_claims;
    let mut s = swarm_with(config, 64, Bitfield::new(64), t0);
    drain(&mut s);
    let mut asked = requests_to(&join(&mut s, 1, Bitfield::full(64), t0), fp(1));
    let mut refused = 0;
    let mut t = t0;
    while let Some(&piece) = asked.first() {
        t += ms(10);
        s.handle_not_have(fp(1), piece, t);
        refused += 1;
        let out = drain(&mut s);
        if out.contains(&Action::Disconnect {
            peer: fp(1),
            banned: false,
        }) {
            break;
        }
        asked = requests_to(&out, fp(1));
    }
    assert_eq!(refused, max);
    let view = s.peers().into_iter().find(|p| p.peer == fp(1)).unwrap();
    assert!(matches!(view.state, ContactState::BackedOff(_)), "{view:?}");
}

/// A neighbour with room but nothing left to ask for (what it has is asked of another)
/// is skipped by fills until a piece is freed: then it is asked at the next fill, though
/// no input was about it.
#[test]
fn a_neighbour_with_nothing_to_ask_is_asked_once_a_piece_is_freed() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        min_in_flight: 2,
        max_in_flight: 2,
        endgame_threshold: 0,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 8, Bitfield::new(8), t0);
    drain(&mut s);
    let first = join(&mut s, 1, bits(8, [0, 1]), t0);
    let mut asked = requests_to(&first, fp(1));
    asked.sort_unstable();
    assert_eq!(asked, vec![0, 1]);
    let second = join(&mut s, 2, bits(8, [0, 1]), t0);
    assert!(
        requests_to(&second, fp(2)).is_empty(),
        "all it has is asked of 1"
    );
    // Inputs about others leave it with nothing to ask.
    let third = join(&mut s, 3, bits(8, []), t0 + ms(1));
    assert!(requests_to(&third, fp(2)).is_empty());
    // 1 does not have piece 0 after all: the piece is freed, and 2 is asked for it.
    s.handle_not_have(fp(1), 0, t0 + ms(2));
    assert_eq!(requests_to(&drain(&mut s), fp(2)), vec![0]);
}

/// A neighbour holding only pieces we have is asked for one once we lose it.
#[test]
fn a_neighbour_is_asked_for_a_piece_we_lost() {
    let t0 = Instant::now();
    let config = SwarmConfig {
        endgame_threshold: 0,
        ..SwarmConfig::default()
    };
    let mut s = swarm_with(config, 8, bits(8, [5]), t0);
    drain(&mut s);
    join(&mut s, 1, bits(8, [0]), t0);
    let holder = join(&mut s, 2, bits(8, [5]), t0);
    assert!(
        requests_to(&holder, fp(2)).is_empty(),
        "it has nothing we miss"
    );
    join(&mut s, 3, bits(8, []), t0 + ms(1));
    s.handle_local_piece_lost(5, t0 + ms(2));
    assert_eq!(requests_to(&drain(&mut s), fp(2)), vec![5]);
}
