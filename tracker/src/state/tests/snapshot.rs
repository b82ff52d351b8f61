//! Snapshots, restore, determinism and the cost of a piece report.

use std::net::{Ipv6Addr, SocketAddrV6};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::*;
use crate::state::SNAPSHOT_VERSION;

/// A state touching every part: users, tokens (one of a disabled user), torrents with and
/// without swarms, an IPv6 peer with a scope id, completions and expiries.
fn busy_harness() -> (Harness, Vec<InfoHash>) {
    let mut h = Harness::new();
    h.ok(Command::AddUser {
        name: "carol".into(),
        password_hash: "$argon2id$carol".into(),
        role: Role::User,
        now_ms: 4,
    });
    h.ok(Command::CreateToken {
        user: "carol".into(),
        token_hash: TokenHash::of("carol token"),
        label: "ci".into(),
        now_ms: 5,
    });
    h.ok(Command::SetUserDisabled {
        name: "carol".into(),
        disabled: true,
    });
    h.ok(Command::CreateSession {
        session_hash: TokenHash::of("bob's browser"),
        user: "bob".into(),
        expires_ms: 90_000,
        now_ms: 6,
    });
    let a = h.publish("Alpha Release", 20, 10);
    let b = h.publish("beta build", 3, 20);
    let c = h.publish("idle", 5, 30);
    for p in 0..40 {
        h.join(a, p, bits(20, 0..(p % 21)), 5, 100 + u64::from(p));
    }
    for p in 0..10 {
        h.have(a, p, (0..20).collect(), 500);
    }
    h.join(b, 1, Bitfield::full(3), 3, 600);
    assert!(matches!(
        h.apply(Command::Join {
            info_hash: b,
            fingerprint: fp(77),
            addr: SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 7001, 5, 3)),
            have: bits(3, [2]),
            want: 3,
            now_ms: 40_000,
        }),
        Output::Joined(_)
    ));
    h.ok(Command::Leave {
        info_hash: a,
        fingerprint: fp(39),
    });
    assert_eq!(
        h.apply(Command::Expire { now_ms: 30_120 }),
        Output::Expired(10)
    );
    (h, vec![a, b, c])
}

fn questions(hashes: &[InfoHash]) -> Vec<Query> {
    let mut q = vec![
        Query::Search {
            words: String::new(),
            page: 0,
            per_page: 10,
            order: Default::default(),
        },
        Query::Search {
            words: "ALPHA".into(),
            page: 0,
            per_page: 10,
            order: Default::default(),
        },
        Query::User("carol".into()),
        Query::TokenOwner(bob_token()),
        Query::TokenOwner(TokenHash::of("carol token")),
        Query::Tokens("bob".into()),
        Query::Tokens("carol".into()),
        Query::Users,
        Query::Stats,
    ];
    for &h in hashes {
        q.push(Query::TorrentFile(h));
        q.push(Query::Details(h));
        q.push(Query::MorePeers {
            info_hash: h,
            asker: fp(20),
            exclude: vec![fp(21)],
            want: 7,
            seed: 9,
        });
        q.push(Query::PeersWithPiece {
            info_hash: h,
            asker: fp(20),
            piece: 2,
            want: 7,
            seed: 9,
        });
    }
    q
}

#[test]
fn restore_gives_the_same_answers_choices_and_snapshot() {
    let (mut h, hashes) = busy_harness();
    let snap = h.state.snapshot();
    assert_eq!(snap[0], SNAPSHOT_VERSION);
    let mut restored = TrackerState::new(StateConfig { peer_ttl_ms: TTL });
    restored.restore(&snap).unwrap();
    for q in questions(&hashes) {
        assert_eq!(restored.query(&q), h.state.query(&q), "{q:?}");
    }
    assert_eq!(restored.snapshot(), snap);

    // The same next commands give the same outputs: neighbour choices, expiry, reports.
    let next = [
        Command::Join {
            info_hash: hashes[0],
            fingerprint: fp(500),
            addr: addr(500),
            have: Bitfield::new(20),
            want: 8,
            now_ms: 41_000,
        },
        Command::Heartbeat {
            fingerprint: fp(20),
            now_ms: 41_000,
            info_hash: Some(hashes[0]),
        },
        Command::Have {
            info_hash: hashes[0],
            fingerprint: fp(20),
            pieces: vec![19],
            now_ms: 41_000,
        },
        Command::Expire { now_ms: 60_000 },
    ];
    for (i, c) in next.iter().enumerate() {
        let slot = h.slot + 1 + i as u64;
        assert_eq!(restored.apply(slot, c), h.state.apply(slot, c), "{c:?}");
    }
    assert_eq!(restored.snapshot(), h.state.snapshot());
}

#[test]
fn restore_replaces_the_whole_state() {
    let (h, hashes) = busy_harness();
    let empty = TrackerState::new(StateConfig::default()).snapshot();
    let mut state = h.state.clone();
    state.restore(&empty).unwrap();
    assert_eq!(
        state.query(&Query::TorrentFile(hashes[0])),
        Output::TorrentFile(None)
    );
    assert_eq!(state.query(&Query::Users), Output::Users(vec![]));
    assert_eq!(state.snapshot(), empty);
}

#[test]
fn hostile_snapshots_are_refused_without_panic() {
    let (h, _) = busy_harness();
    let snap = h.state.snapshot();
    let mut state = TrackerState::new(StateConfig::default());
    assert!(state.restore(&[]).is_err());
    let mut wrong_version = snap.clone();
    wrong_version[0] = 99;
    assert!(
        state
            .restore(&wrong_version)
            .unwrap_err()
            .0
            .contains("version 99")
    );
    let mut trailing = snap.clone();
    trailing.push(0);
    assert!(
        state
            .restore(&trailing)
            .unwrap_err()
            .0
            .contains("after its end")
    );
    for len in (1..snap.len()).step_by(7) {
        assert!(state.restore(&snap[..len]).is_err(), "truncated to {len}");
    }
    // Random corruption: any outcome but a panic; a failed restore leaves the state.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let before = state.snapshot();
    for _ in 0..2_000 {
        let mut bad = snap.clone();
        for _ in 0..1 + rng.next_u32() % 4 {
            let at = 1 + (rng.next_u32() as usize % (bad.len() - 1));
            bad[at] = rng.next_u32() as u8;
        }
        if state.restore(&bad).is_err() {
            assert_eq!(state.snapshot(), before);
        } else {
            state.restore(&before).unwrap();
        }
    }
    for _ in 0..2_000 {
        let len = rng.next_u32() as usize % 300;
        let mut garbage = vec![SNAPSHOT_VERSION];
        garbage.extend((0..len).map(|_| rng.next_u32() as u8));
        let _ = state.restore(&garbage);
    }
}

#[test]
fn restore_refuses_inconsistent_contents() {
    // A bitfield whose length does not match its torrent's piece count.
    let (mut h, hashes) = busy_harness();
    let good = h.state.snapshot();
    let mut state = TrackerState::new(StateConfig::default());
    state.restore(&good).unwrap();
    if let Some(entry) = h.state.torrents.get_mut(&hashes[1]) {
        entry.piece_count = 4;
    }
    let err = state.restore(&h.state.snapshot()).unwrap_err();
    assert!(err.0.contains("bitfield"), "{err}");
    assert_eq!(state.snapshot(), good);

    // A giant piece count is refused before anything is sized by it.
    if let Some(entry) = h.state.torrents.get_mut(&hashes[2]) {
        entry.piece_count = u32::MAX;
    }
    if let Some(entry) = h.state.torrents.get_mut(&hashes[1]) {
        entry.piece_count = 3;
    }
    let err = state.restore(&h.state.snapshot()).unwrap_err();
    assert!(err.0.contains("more than any torrent file"), "{err}");
    assert_eq!(state.snapshot(), good);
}

/// Random commands over a few torrents and peers, as a log would hold them.
fn random_commands(seed: u64, hashes: &[InfoHash], n: usize) -> Vec<Command> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut now = 1_000u64;
    (0..n)
        .map(|_| {
            now += u64::from(rng.next_u32() % 500);
            let h = hashes[rng.next_u32() as usize % hashes.len()];
            let peer = rng.next_u32() % 60;
            let pieces: Vec<u32> = (0..rng.next_u32() % 5)
                .map(|_| rng.next_u32() % 21)
                .collect();
            match rng.next_u32() % 10 {
                0..=2 => Command::Join {
                    info_hash: h,
                    fingerprint: fp(peer),
                    addr: addr(peer),
                    have: bits(20, pieces.into_iter().filter(|&p| p < 20)),
                    want: rng.next_u32() % 8,
                    now_ms: now,
                },
                3..=5 => Command::Have {
                    info_hash: h,
                    fingerprint: fp(peer),
                    pieces,
                    now_ms: now,
                },
                6 => Command::NotHave {
                    info_hash: h,
                    fingerprint: fp(peer),
                    pieces,
                    now_ms: now,
                },
                7 => Command::Leave {
                    info_hash: h,
                    fingerprint: fp(peer),
                },
                8 => Command::Heartbeat {
                    fingerprint: fp(peer),
                    now_ms: now,
                    info_hash: Some(h),
                },
                _ => Command::Expire { now_ms: now },
            }
        })
        .collect()
}

#[test]
fn two_replicas_applying_the_same_log_stay_identical() {
    for seed in 0..5 {
        let mut a = Harness::new();
        let hashes: Vec<InfoHash> = (0..3).map(|i| a.publish(&format!("t{i}"), 20, i)).collect();
        let mut b = TrackerState::new(StateConfig { peer_ttl_ms: TTL });
        b.restore(&a.state.snapshot()).unwrap();
        let mut c: Option<TrackerState> = None;
        for (i, cmd) in random_commands(seed, &hashes, 3_000).iter().enumerate() {
            let slot = a.slot + 1;
            let out = a.apply(cmd.clone());
            assert_eq!(b.apply(slot, cmd), out, "seed {seed} command {i}: {cmd:?}");
            if let Some(c) = c.as_mut() {
                assert_eq!(c.apply(slot, cmd), out, "restored mid-way, seed {seed}");
            }
            if i == 1_500 {
                let mut restored = TrackerState::new(StateConfig { peer_ttl_ms: TTL });
                restored.restore(&a.state.snapshot()).unwrap();
                c = Some(restored);
            }
        }
        let snap = a.state.snapshot();
        assert_eq!(b.snapshot(), snap, "seed {seed}");
        assert_eq!(c.map(|c| c.snapshot()), Some(snap), "seed {seed}");
    }
}

/// CPU time of this thread, in ns, where the system tells it (Linux); else wall time. A
/// timing on a busy machine then still measures the work, not the waiting.
fn cpu_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_nanos() as u64
        })
}

/// The cost of `apply(Have)`: run with
/// `cargo test --release -p tracker --lib state::tests::snapshot::piece_report_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a timing, not a check; run it in release"]
fn piece_report_cost() {
    let mut h = Harness::new();
    let pieces = 4_000u32;
    let ih = h.publish("big", pieces, 1);
    let peers = 10_000u32;
    let start = cpu_ns();
    for p in 0..peers {
        h.join(ih, p, Bitfield::new(pieces), 5, 1);
    }
    let join_ns = (cpu_ns() - start) as f64 / f64::from(peers);

    let mut slot = h.slot;
    let mut run = |h: &mut Harness, commands: Vec<Command>| {
        let start = cpu_ns();
        for c in &commands {
            slot += 1;
            let out = h.state.apply(slot, c);
            debug_assert_eq!(out, Output::Done);
        }
        cpu_ns() - start
    };
    let have = |peer: u32, pieces: Vec<u32>| Command::Have {
        info_hash: ih,
        fingerprint: fp(peer),
        pieces,
        now_ms: 2,
    };
    let reports = 1_000_000u32;
    let singles = (0..reports)
        .map(|i| have(i % peers, vec![(i / peers * 7 + i % peers) % pieces]))
        .collect();
    let single_ns = run(&mut h, singles) as f64 / f64::from(reports);
    let batches = 100_000u32;
    let batched = (0..batches)
        .map(|i| {
            let first = (i * 13) % (pieces - 10);
            have(i % peers, (first..first + 10).collect())
        })
        .collect();
    let batch_ns = run(&mut h, batched) as f64 / f64::from(batches * 10);

    let start = cpu_ns();
    let snap = h.state.snapshot();
    let snap_ms = (cpu_ns() - start) as f64 / 1e6;
    let start = cpu_ns();
    h.state.restore(&snap).unwrap();
    let restore_ms = (cpu_ns() - start) as f64 / 1e6;
    println!(
        "CPU time: join into a swarm growing to {peers}: {:.1} us; Have of 1 piece: {single_ns:.0} ns \
         ({:.1} M reports/s); Have of 10 pieces: {batch_ns:.0} ns per piece; snapshot of \
         {} bytes ({peers} peers x {pieces} pieces): {snap_ms:.1} ms, restore {restore_ms:.1} ms",
        join_ns / 1e3,
        1e3 / single_ns,
        snap.len(),
    );
}
