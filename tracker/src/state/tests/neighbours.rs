//! Neighbour selection: who a joiner (or an asker) is told to connect to.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::*;
use crate::api::MAX_PEERS_PER_ANSWER;

fn fps(peers: &[PeerInfo]) -> Vec<Fingerprint> {
    peers.iter().map(|p| p.fingerprint).collect()
}

fn peers_of(out: Output) -> Vec<PeerInfo> {
    match out {
        Output::Peers(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn never_self_never_twice_and_at_most_want() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    assert!(h.join(ih, 0, Bitfield::new(8), 5, 1).is_empty(), "alone");
    for p in 1..100 {
        let got = fps(&h.join(ih, p, Bitfield::new(8), 5, 1));
        assert_eq!(got.len(), (p as usize).min(5));
        assert!(!got.contains(&fp(p)));
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len());
    }
    // A re-join is never answered with the joiner itself, and want is capped.
    let got = fps(&h.join(ih, 7, Bitfield::new(8), 1_000, 2));
    assert_eq!(got.len(), MAX_PEERS_PER_ANSWER as usize);
    assert!(!got.contains(&fp(7)));
    assert!(h.join(ih, 8, Bitfield::new(8), 0, 2).is_empty());
}

#[test]
fn same_slot_same_choice_other_slot_other_choice() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    for p in 0..500 {
        h.join(ih, p, Bitfield::new(8), 5, 1);
    }
    let mut a = h.state.clone();
    let mut b = h.state.clone();
    let join = Command::Join {
        info_hash: ih,
        fingerprint: fp(10_000),
        addr: addr(10_000),
        have: Bitfield::new(8),
        want: 20,
        now_ms: 5,
    };
    let slot = h.slot + 1;
    let first = a.apply(slot, &join);
    assert_eq!(b.apply(slot, &join), first);
    let mut c = h.state.clone();
    assert_ne!(c.apply(slot + 1, &join), first);
}

#[test]
fn peers_with_missing_pieces_are_preferred() {
    let mut h = Harness::new();
    let ih = h.publish("a", 16, 1);
    for p in 0..30 {
        h.join(ih, p, bits(16, 0..4), 0, 1);
    }
    h.join(ih, 100, bits(16, [9]), 0, 1);
    h.join(ih, 101, Bitfield::full(16), 0, 1);
    let got = fps(&h.join(ih, 200, bits(16, 0..4), 2, 1));
    assert_eq!(got.len(), 2);
    assert!(got.contains(&fp(100)) && got.contains(&fp(101)), "{got:?}");

    // An empty joiner is helped by anyone with a piece; a fresh empty peer is not.
    h.join(ih, 201, Bitfield::new(16), 0, 1);
    let got = fps(&h.join(ih, 202, Bitfield::new(16), 10, 1));
    assert!(!got.contains(&fp(201)), "{got:?}");
}

#[test]
fn a_single_seeder_is_not_swamped() {
    let mut h = Harness::new();
    let ih = h.publish("a", 16, 1);
    h.join(ih, 0, Bitfield::full(16), 0, 1);
    let mut seeder_handouts = 0;
    for p in 1..1_000 {
        if fps(&h.join(ih, p, Bitfield::new(16), 5, 1)).contains(&fp(0)) {
            seeder_handouts += 1;
        }
    }
    // About the mean in-degree (5) plus a band: preferred, as it alone can help at
    // first, but no busier than the others by more than a band.
    assert!(
        (5..=5 + 2 * DEGREE_BAND_FOR_TESTS).contains(&seeder_handouts),
        "{seeder_handouts}"
    );
}

/// The band width, restated: the seeder stays within about a band of the others.
const DEGREE_BAND_FOR_TESTS: u32 = crate::state::neighbours::DEGREE_BAND;

#[test]
fn degrees_stay_balanced_and_the_graph_has_a_small_diameter() {
    let mut h = Harness::new();
    let ih = h.publish("a", 16, 1);
    let n = 2_000u32; // past CONSIDER_ALL_UP_TO: most joins sample
    let mut in_degree: HashMap<Fingerprint, u32> = HashMap::new();
    let mut edges: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let index: HashMap<Fingerprint, u32> = (0..n).map(|p| (fp(p), p)).collect();
    for p in 0..n {
        for nb in h.join(ih, p, Bitfield::new(16), 5, 1) {
            *in_degree.entry(nb.fingerprint).or_default() += 1;
            let q = index[&nb.fingerprint];
            edges.entry(p).or_default().push(q);
            edges.entry(q).or_default().push(p);
        }
    }
    let max = in_degree.values().copied().max().unwrap_or(0);
    // 10,000 handouts over 2,000 peers: a mean of 5, and nobody far above it.
    assert!(max <= 2 * DEGREE_BAND_FOR_TESTS, "max in-degree {max}");

    // Breadth-first search from a few peers: everyone is reached within a few hops.
    for start in [0, 1, 1_000, 1_999] {
        let mut dist = vec![u32::MAX; n as usize];
        dist[start] = 0;
        let mut queue = VecDeque::from([start as u32]);
        while let Some(v) = queue.pop_front() {
            for &w in edges.get(&v).into_iter().flatten() {
                if dist[w as usize] == u32::MAX {
                    dist[w as usize] = dist[v as usize] + 1;
                    queue.push_back(w);
                }
            }
        }
        let ecc = dist.iter().copied().max().unwrap_or(0);
        assert!(ecc <= 8, "peer {start} reaches everyone in {ecc} hops");
    }
}

#[test]
fn a_seeder_asking_for_more_peers_gets_leechers_first() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    for p in 0..20 {
        h.join(ih, p, Bitfield::full(8), 0, 1);
    }
    for p in 20..24 {
        h.join(ih, p, bits(8, [1, 2]), 0, 1);
    }
    h.join(ih, 99, Bitfield::full(8), 0, 1);
    for seed in 0..5 {
        let got = fps(&peers_of(h.query(Query::MorePeers {
            info_hash: ih,
            asker: fp(99),
            exclude: vec![],
            want: 4,
            seed,
        })));
        let mut sorted = got.clone();
        sorted.sort();
        let mut leechers: Vec<Fingerprint> = (20..24).map(fp).collect();
        leechers.sort();
        assert_eq!(sorted, leechers, "seed {seed}");
    }
}

#[test]
fn more_peers_excludes_the_asker_and_the_excluded() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    for p in 0..20 {
        h.join(ih, p, Bitfield::new(8), 0, 1);
    }
    let exclude: Vec<Fingerprint> = (0..10).map(fp).collect();
    let q = |seed| Query::MorePeers {
        info_hash: ih,
        asker: fp(15),
        exclude: exclude.clone(),
        want: 100,
        seed,
    };
    let got = fps(&peers_of(h.query(q(1))));
    let mut expected: Vec<Fingerprint> = (10..20).filter(|&p| p != 15).map(fp).collect();
    let mut sorted = got.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_eq!(h.query(q(1)), h.query(q(1)), "same seed, same answer");

    let unknown = InfoHash::from_bytes([9; 32]);
    assert_eq!(
        h.query(Query::MorePeers {
            info_hash: unknown,
            asker: fp(1),
            exclude: vec![],
            want: 5,
            seed: 0
        }),
        Output::Error(ApiError::UnknownTorrent(unknown))
    );
}

#[test]
fn peers_with_piece_returns_only_holders_even_when_rare() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    // Large enough that the swarm is sampled, not considered whole.
    for p in 0..2_000 {
        let have = if p % 700 == 3 {
            bits(8, [5])
        } else {
            bits(8, [1])
        };
        h.join(ih, p, have, 0, 1);
    }
    let q = |piece, asker| Query::PeersWithPiece {
        info_hash: ih,
        asker: fp(asker),
        piece,
        want: 50,
        seed: 42,
    };
    let mut got = fps(&peers_of(h.query(q(5, 3))));
    got.sort();
    let mut expected = vec![fp(703), fp(1403)];
    expected.sort();
    assert_eq!(got, expected, "every holder but the asker");
    assert_eq!(peers_of(h.query(q(1, 0))).len(), 50);
    assert!(peers_of(h.query(q(7, 0))).is_empty());
    assert!(matches!(
        h.query(q(8, 0)),
        Output::Error(ApiError::BadPieces(_))
    ));
}

/// Heartbeats `fresh` at 20 s, then expires at 32 s (TTL 30 s): everyone last heard at
/// 1 s goes, which must be `expired` peers.
fn refresh_then_expire(
    h: &mut Harness,
    ih: InfoHash,
    fresh: impl IntoIterator<Item = u32>,
    expired: u64,
) {
    for p in fresh {
        h.ok(Command::Heartbeat {
            info_hash: Some(ih),
            fingerprint: fp(p),
            now_ms: 20_000,
        });
    }
    match h.apply(Command::Expire { now_ms: 32_000 }) {
        Output::Expired(n) => assert_eq!(n, expired, "peers expired"),
        other => panic!("{other:?}"),
    }
}

/// Each member's in-degree as the tracker keeps it.
fn in_degrees(h: &Harness, ih: InfoHash) -> HashMap<Fingerprint, u32> {
    let swarm = h.state.torrents.get(&ih).unwrap().swarm.as_ref().unwrap();
    swarm
        .members()
        .iter()
        .map(|m| (m.fingerprint, m.in_degree))
        .collect()
}

/// Each member's in-degree recounted from the answers the members' latest joins got.
fn live_handouts(latest: &HashMap<u32, Vec<Fingerprint>>) -> HashMap<Fingerprint, u32> {
    let mut count = HashMap::new();
    for handed in latest.values() {
        for f in handed {
            *count.entry(*f).or_default() += 1;
        }
    }
    count
}

#[test]
fn in_degree_counts_the_live_handouts_of_present_members_only() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    // The neighbours each present peer's latest join was given.
    let mut latest: HashMap<u32, Vec<Fingerprint>> = HashMap::new();
    for p in 0..40 {
        latest.insert(p, fps(&h.join(ih, p, Bitfield::new(8), 5, 1_000)));
    }
    // Joining again releases the previous handout; leaving releases it for good.
    for p in 0..10 {
        latest.insert(p, fps(&h.join(ih, p, Bitfield::new(8), 5, 2_000)));
    }
    for p in 10..20 {
        h.ok(Command::Leave {
            info_hash: ih,
            fingerprint: fp(p),
        });
        latest.remove(&p);
    }
    // Peers 20-29 go quiet and expire; the others stay fresh.
    for p in (0..10).chain(30..40) {
        h.join(ih, p, Bitfield::new(8), 0, 20_000);
        latest.insert(p, Vec::new());
    }
    assert!(matches!(
        h.apply(Command::Expire { now_ms: 32_000 }),
        Output::Expired(10)
    ));
    for p in 20..30 {
        latest.remove(&p);
    }
    let expected = live_handouts(&latest);
    let kept = in_degrees(&h, ih);
    assert_eq!(kept.len(), 20);
    for (f, d) in &kept {
        assert_eq!(*d, expected.get(f).copied().unwrap_or(0), "peer {f}");
    }
    assert!(kept.values().all(|&d| d == 0), "every handout was released");
}

#[test]
fn a_peer_that_expires_and_returns_gets_its_in_degree_back() {
    let mut h = Harness::new();
    let ih = h.publish("a", 8, 1);
    // Peer 0 is the only one there, so joiners 1-6 are handed it (and each other).
    let mut latest: HashMap<u32, Vec<Fingerprint>> = HashMap::new();
    latest.insert(0, fps(&h.join(ih, 0, Bitfield::new(8), 5, 1_000)));
    for p in 1..7 {
        latest.insert(p, fps(&h.join(ih, p, Bitfield::new(8), 5, 1_000)));
    }
    let before = in_degrees(&h, ih)[&fp(0)];
    assert!(before >= 5, "peer 0 was handed to {before} joiners");
    // Peer 0 goes quiet and expires while the others stay fresh, then comes back.
    refresh_then_expire(&mut h, ih, 1..7, 1);
    latest.insert(0, fps(&h.join(ih, 0, Bitfield::new(8), 0, 33_000)));
    let kept = in_degrees(&h, ih);
    assert_eq!(kept[&fp(0)], before, "the joiners still hold peer 0");
    assert_eq!(kept, {
        let mut e = live_handouts(&latest);
        for p in 0..7 {
            e.entry(fp(p)).or_default();
        }
        e
    });
}

/// Connected components of the undirected graph whose edges go from each peer of
/// `latest` to each neighbour of its latest handout, over the peers of `latest`.
fn components(latest: &HashMap<u32, Vec<Fingerprint>>) -> usize {
    let ids: HashMap<Fingerprint, u32> = latest.keys().map(|&p| (fp(p), p)).collect();
    let mut adjacent: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&p, handed) in latest {
        for q in handed.iter().filter_map(|f| ids.get(f)) {
            adjacent.entry(p).or_default().push(*q);
            adjacent.entry(*q).or_default().push(p);
        }
    }
    let mut seen = HashSet::new();
    let mut count = 0;
    for &start in latest.keys() {
        if !seen.insert(start) {
            continue;
        }
        count += 1;
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for &w in adjacent.get(&v).into_iter().flatten() {
                if seen.insert(w) {
                    queue.push_back(w);
                }
            }
        }
    }
    count
}

/// The flash crowd of the issue, on the state machine alone: 20,000 peers (a seeder,
/// a third with some pieces) join asking for 5 neighbours each, 10 % leave, 5 % go
/// quiet and expire, 1,000 join again. The in-degrees stay within twice the degree
/// asked for, they match the live handouts, and the live graph stays connected.
#[test]
fn twenty_thousand_peers_with_churn_keep_in_degree_within_twice_the_degree() {
    const N: u32 = 20_000;
    const WANT: u32 = 5;
    let mut h = Harness::new();
    let ih = h.publish("crowd", 64, 1);
    let have = |p: u32| match p % 3 {
        _ if p == 0 => bits(64, 0..64),
        0 => bits(64, (0..64).filter(|i| (i + p).is_multiple_of(5))),
        _ => Bitfield::new(64),
    };
    let mut latest: HashMap<u32, Vec<Fingerprint>> = HashMap::new();
    for p in 0..N {
        latest.insert(p, fps(&h.join(ih, p, have(p), WANT, 1_000)));
    }
    let leavers = (1..N).filter(|p| p % 10 == 1);
    for p in leavers {
        h.ok(Command::Leave {
            info_hash: ih,
            fingerprint: fp(p),
        });
        latest.remove(&p);
    }
    let quiet: HashSet<u32> = (1..N).filter(|p| p % 20 == 2).collect();
    let fresh: Vec<u32> = latest
        .keys()
        .copied()
        .filter(|p| !quiet.contains(p))
        .collect();
    refresh_then_expire(&mut h, ih, fresh, quiet.len() as u64);
    for p in &quiet {
        latest.remove(p);
    }
    let returning: Vec<u32> = (3..N)
        .step_by(17)
        .filter(|p| latest.contains_key(p))
        .take(1_000)
        .collect();
    for p in returning {
        latest.insert(p, fps(&h.join(ih, p, have(p), WANT, 33_000)));
    }

    let kept = in_degrees(&h, ih);
    assert_eq!(kept.len(), latest.len());
    let expected = live_handouts(&latest);
    for (f, d) in &kept {
        assert_eq!(*d, expected.get(f).copied().unwrap_or(0), "peer {f}");
    }
    let max = kept.values().copied().max().unwrap_or(0);
    assert!(max <= 2 * WANT, "max in-degree {max} with {WANT} asked");
    assert_eq!(components(&latest), 1, "the live graph is connected");
}

/// In a swarm large enough to keep an index of holders, every answer about a rare piece
/// names exactly its holders, through joins, reports, re-joins, departures (whose places
/// the last members take) and expiry, checked against a model of who holds what.
#[test]
fn rare_piece_holders_stay_exact_through_every_change() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut h = Harness::new();
    let pieces = 64;
    let ih = h.publish("a", pieces, 1);
    // Each member's pieces and last-heard time.
    let mut model: BTreeMap<u32, (HashSet<u32>, u64)> = BTreeMap::new();
    // Pieces 0..8 stay rare (each member holds one with probability 1/100); the rest
    // are common, so the swarm is not a toy.
    let random_have = |rng: &mut rand_chacha::ChaCha8Rng| -> HashSet<u32> {
        (0..pieces)
            .filter(|&p| rng.random_bool(if p < 8 { 0.01 } else { 0.5 }))
            .collect()
    };
    let field = |set: &HashSet<u32>| bits(pieces, set.iter().copied());
    let mut now = 1_000;
    for round in 0..6u32 {
        for _ in 0..1_500 {
            let peer = rng.random_range(0..800);
            now += 1;
            match rng.random_range(0..10) {
                0..=3 => {
                    let have = random_have(&mut rng);
                    h.join(ih, peer, field(&have), 0, now);
                    model.insert(peer, (have, now));
                }
                k @ 4..=6 if model.contains_key(&peer) => {
                    // Twice as many reports of pieces gained as of pieces lost.
                    let (p, gained) = (rng.random_range(0..pieces), k < 6);
                    let (info_hash, fingerprint, pieces) = (ih, fp(peer), vec![p]);
                    h.ok(if gained {
                        Command::Have {
                            info_hash,
                            fingerprint,
                            pieces,
                            now_ms: now,
                        }
                    } else {
                        Command::NotHave {
                            info_hash,
                            fingerprint,
                            pieces,
                            now_ms: now,
                        }
                    });
                    let (have, heard) = model.get_mut(&peer).unwrap();
                    if gained {
                        have.insert(p);
                    } else {
                        have.remove(&p);
                    }
                    *heard = now;
                }
                7 if model.contains_key(&peer) => {
                    h.ok(Command::Leave {
                        info_hash: ih,
                        fingerprint: fp(peer),
                    });
                    model.remove(&peer);
                }
                _ => {}
            }
        }
        if round == 3 {
            // Everyone not heard from in the last 1,000 ms of the history expires.
            let cutoff = now - 1_000;
            h.apply(Command::Expire {
                now_ms: cutoff + TTL,
            });
            model.retain(|_, (_, heard)| *heard >= cutoff);
        }
        assert!(
            model.len() > 256,
            "large enough for the index: {}",
            model.len()
        );
        for piece in 0..8 {
            let mut expected: Vec<Fingerprint> = model
                .iter()
                .filter(|(_, (have, _))| have.contains(&piece))
                .map(|(&peer, _)| fp(peer))
                .collect();
            expected.sort();
            let mut got = fps(&peers_of(h.query(Query::PeersWithPiece {
                info_hash: ih,
                asker: fp(10_000),
                piece,
                want: MAX_PEERS_PER_ANSWER,
                seed: u64::from(round),
            })));
            got.sort();
            assert_eq!(
                got, expected,
                "holders of piece {piece} after round {round}"
            );
        }
    }
}
