//! Choosing neighbours: which peers of a swarm a peer should connect to.
//!
//! The goal, as in Uber's Kraken, is a *random regular graph*: every peer asks for about
//! K neighbours and is asked for by about K others. Such a graph is connected with high
//! probability and has a diameter of O(log n), so a piece spreads through a swarm of
//! 10,000 peers in a handful of hops, and no peer (least of all the first seeder) is
//! swamped with connections.
//!
//! The tracker cannot see connections, so it balances what it controls: each peer's
//! *in-degree*, the number of joiners it was handed to. A joiner's neighbours are picked
//! from a random pool of candidates by the key
//!
//! 1. `in_degree / DEGREE_BAND`: lightly loaded peers first, in bands, so degrees stay
//!    within about one band of each other;
//! 2. whether the candidate has a piece the joiner lacks: within a band, peers that can
//!    help first (a seeder is preferred until it is one band busier than the rest);
//! 3. the exact in-degree;
//! 4. a random number, so that equals are picked at random and the graph stays random.
//!
//! The pool is the whole swarm when it is small, and otherwise a random sample of
//! [`pool_size`] peers visited in a random order ([`Walk`]), so that a join costs the same
//! in a swarm of 10,000 peers as in one of 300, and a filter that few peers pass (say,
//! "holds piece 7") still finds every one of them.
//!
//! Everything is deterministic: the randomness of a `Join` comes from its log slot and the
//! joiner's fingerprint, that of a query from its seed, and the numbers are drawn from
//! ChaCha8's output stream with arithmetic written here, so every replica (and every
//! version of the `rand` crates) picks the same neighbours.

use certs::Fingerprint;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::bitfield::Bitfield;

use super::holders::PieceHolders;
use super::swarms::Member;

/// Width of an in-degree band: peers whose in-degrees differ by less than this are
/// treated as equally loaded, so that usefulness decides between them.
pub(crate) const DEGREE_BAND: u32 = 4;

/// Swarms up to this size are considered whole; beyond it, a sample is taken.
pub(crate) const CONSIDER_ALL_UP_TO: usize = 256;

/// Candidates sampled from a large swarm for a request of `want`: enough that the least
/// loaded peers of the sample are among the least loaded of the swarm, few enough that a
/// join stays in the microseconds.
pub(crate) fn pool_size(want: usize) -> usize {
    (want * 8).max(64)
}

/// The random numbers of a `Join` at `slot` by `fingerprint`.
pub(crate) fn join_rng(slot: u64, fingerprint: &Fingerprint) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"bytetorrent tracker join neighbours v1");
    h.update(&slot.to_le_bytes());
    h.update(fingerprint.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// The random numbers of a query with `seed` asked by `asker`.
pub(crate) fn query_rng(seed: u64, asker: &Fingerprint) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"bytetorrent tracker query peers v1");
    h.update(&seed.to_le_bytes());
    h.update(asker.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// A number in `0..n` (`n > 0`), by multiply-shift: fixed arithmetic on the generator's
/// output, so the result never depends on a library's sampling algorithm.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Every index of `0..n` once, in a random order: `start + k * step (mod n)` with a random
/// start and a random step coprime to `n`. Cheap (no allocation), and complete, so a
/// filtered search never misses a match.
#[derive(Clone)]
struct Walk {
    n: u64,
    next: u64,
    step: u64,
    left: u64,
}

impl Walk {
    fn new(n: usize, rng: &mut ChaCha8Rng) -> Walk {
        let n = n as u64;
        if n == 0 {
            return Walk {
                n,
                next: 0,
                step: 1,
                left: 0,
            };
        }
        let start = below(rng, n);
        // Coprime steps are common (at least ~1 in 5 for any practical n); after a few
        // misses, fall back to 1, still a complete walk.
        let step = (0..32)
            .map(|_| 1 + below(rng, n.max(2) - 1))
            .find(|&s| gcd(s, n) == 1)
            .unwrap_or(1);
        Walk {
            n,
            next: start,
            step,
            left: n,
        }
    }
}

impl Walk {
    /// At which step of the walk index `i` (below `n`) is visited.
    fn step_of(&self, i: usize) -> u64 {
        let n = u128::from(self.n);
        let since_start = (i as u128 + n - u128::from(self.next) % n) % n;
        (since_start * u128::from(inverse_mod(self.step, self.n)) % n) as u64
    }
}

/// The inverse of `a` modulo `n`, for `a` coprime to `n` (extended Euclid).
fn inverse_mod(a: u64, n: u64) -> u64 {
    let (mut old_r, mut r) = (i128::from(a), i128::from(n));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(i128::from(n).max(1)) as u64
}

impl Iterator for Walk {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.next;
        self.next = (self.next + self.step) % self.n;
        Some(at as usize)
    }
}

/// What the asker has, to prefer peers that can help it.
#[derive(Clone, Copy)]
pub(crate) struct Asker<'a> {
    have: &'a Bitfield,
    count: u32,
    /// A complete asker that wants peers to serve: prefer peers that lack pieces.
    serves: bool,
}

impl<'a> Asker<'a> {
    /// An asker holding `have`, preferring peers that have pieces it lacks.
    pub(crate) fn new(have: &'a Bitfield) -> Self {
        Asker {
            have,
            count: have.count(),
            serves: false,
        }
    }

    /// An asker of a query (not a join, whose choices are replicated and so must not
    /// change): like [`new`](Self::new), except that a complete asker, which nobody can
    /// help, prefers peers it can help. A seeder whose uplink idles asks for those.
    pub(crate) fn for_query(have: &'a Bitfield) -> Self {
        let count = have.count();
        Asker {
            have,
            count,
            serves: count >= have.len(),
        }
    }

    /// Whether `peer` has a piece the asker lacks. O(1) in the common cases (the asker
    /// has nothing or everything, the peer nothing or everything), else a byte scan that
    /// stops at the first such piece.
    fn is_helped_by(&self, peer: &Member) -> bool {
        let len = self.have.len();
        if self.serves {
            return peer.count < len;
        }
        if self.count >= len || peer.count == 0 {
            return false;
        }
        if self.count == 0 || peer.count >= len {
            return true;
        }
        peer.have
            .as_bytes()
            .iter()
            .zip(self.have.as_bytes())
            .any(|(p, a)| p & !a != 0)
    }
}

/// Picks up to `want` members for which `eligible` holds, best first (see the module
/// documentation), and returns their indices.
pub(crate) fn choose(
    members: &[Member],
    asker: Option<Asker<'_>>,
    want: usize,
    rng: &mut ChaCha8Rng,
    eligible: impl Fn(usize, &Member) -> bool,
) -> Vec<usize> {
    let Some(walk) = start_walk(members, want, rng) else {
        return Vec::new();
    };
    choose_among(members, asker, want, rng, walk, eligible)
}

/// Exactly [`choose`] with an `eligible` that holds only for holders of `piece`, found
/// through `holders` instead of a visit to every member: the holders are taken in the
/// order the random walk would have reached them, so the answer is the walk's, at the
/// cost of reading a word per 64 members and sorting the holders.
pub(crate) fn choose_holders(
    members: &[Member],
    holders: &PieceHolders,
    piece: u32,
    want: usize,
    rng: &mut ChaCha8Rng,
    eligible: impl Fn(usize, &Member) -> bool,
) -> Vec<usize> {
    let Some(walk) = start_walk(members, want, rng) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, usize)> = Vec::new();
    for block in 0..holders.block_count() {
        let mut bits = holders.block(block, piece);
        while bits != 0 {
            let slot = block * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if slot < members.len() {
                found.push((walk.step_of(slot), slot));
            }
        }
    }
    found.sort_unstable();
    let slots = found.into_iter().map(|(_, slot)| slot);
    choose_among(members, None, want, rng, slots, eligible)
}

/// The random walk over `members` that a choice of `want` of them follows, or `None` when
/// there is nothing to choose (then no random number is drawn).
fn start_walk(members: &[Member], want: usize, rng: &mut ChaCha8Rng) -> Option<Walk> {
    (want > 0 && !members.is_empty()).then(|| Walk::new(members.len(), rng))
}

/// The pool of [`choose`]: `candidates` in the order given, the eligible ones kept until
/// the pool is full, then the best `want` of it.
fn choose_among(
    members: &[Member],
    asker: Option<Asker<'_>>,
    want: usize,
    rng: &mut ChaCha8Rng,
    candidates: impl Iterator<Item = usize>,
    eligible: impl Fn(usize, &Member) -> bool,
) -> Vec<usize> {
    let pool_cap = if members.len() <= CONSIDER_ALL_UP_TO {
        members.len()
    } else {
        pool_size(want)
    };
    let mut pool: Vec<(u32, bool, u32, u64, usize)> = Vec::with_capacity(pool_cap.min(1024));
    for i in candidates {
        let Some(m) = members.get(i) else { continue };
        if !eligible(i, m) {
            continue;
        }
        let helps = asker.is_none_or(|a| a.is_helped_by(m));
        pool.push((
            m.in_degree / DEGREE_BAND,
            !helps,
            m.in_degree,
            rng.next_u64(),
            i,
        ));
        if pool.len() >= pool_cap {
            break;
        }
    }
    let want = want.min(pool.len());
    if want < pool.len() {
        pool.select_nth_unstable(want);
        pool.truncate(want);
    }
    pool.sort_unstable();
    pool.into_iter().map(|c| c.4).collect()
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::state::swarms::Swarm;

    #[test]
    fn a_walk_visits_each_index_at_the_step_it_reports() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for n in [1usize, 2, 7, 64, 1000, 1024] {
            let walk = Walk::new(n, &mut rng);
            let steps: Vec<u64> = (0..n).map(|i| walk.step_of(i)).collect();
            for (k, i) in walk.clone().enumerate() {
                assert_eq!(steps[i], k as u64, "n = {n}, index {i}");
            }
        }
    }

    /// The index of holders changes no answer: for every piece, rare or common, and many
    /// seeds, choosing among holders through it gives what the walk over all gives.
    #[test]
    fn choosing_through_the_index_gives_the_walks_answer() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let pieces = 40;
        let mut swarm = Swarm::new(pieces);
        for peer in 0..700u32 {
            let mut have = Bitfield::new(pieces);
            for p in 0..pieces {
                // Piece p is held by about p / 40 of the peers: from none to most.
                if below(&mut rng, 40) < u64::from(p) {
                    have.set(p);
                }
            }
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&peer.to_le_bytes());
            let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 7000));
            swarm.join(Fingerprint::from_bytes(id), addr, &have, 1);
        }
        let holders = swarm.holders().expect("a swarm of 700 keeps the index");
        let asker = swarm.members()[3].fingerprint;
        for piece in 0..pieces {
            for seed in 0..20 {
                let eligible = |_: usize, m: &Member| m.fingerprint != asker && m.have.get(piece);
                let mut a = ChaCha8Rng::seed_from_u64(seed);
                let mut b = ChaCha8Rng::seed_from_u64(seed);
                let walked = choose(swarm.members(), None, 5, &mut a, eligible);
                let indexed = choose_holders(swarm.members(), holders, piece, 5, &mut b, eligible);
                assert_eq!(walked, indexed, "piece {piece}, seed {seed}");
            }
        }
    }
}
