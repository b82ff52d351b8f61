//! The peers a swarm core knows, kept in vectors with a hash index.
//!
//! The core looks a peer up on every message from it (a `have` per piece per neighbour is
//! most of its input) and walks all of them after every input. In a B-tree keyed by
//! 32-byte fingerprints, each lookup compared a dozen keys and each walk chased pointers;
//! here a lookup is one hash and a walk reads one vector. The fingerprints sit in a
//! vector of their own beside the values: most walks test every value and need the
//! fingerprint of few, and with 10,000 simulated peers the bytes a walk reads are what
//! the simulation waits for. Iteration follows insertion
//! order, changed only by removals (the last peer takes the removed one's place), so it
//! is deterministic for a given sequence of inputs, as the core's tests and simulations
//! need.
//!
//! The index is an open-addressed table of 8-byte slots, each holding an entry's
//! position and 32 bits of its key's hash, probed linearly and never more than half
//! full. A lookup reads one slot and then the key and the value at the position it
//! names, which the processor fetches together. A general hash map first read a control
//! byte and then a bucket holding a copy of the key: one more cache miss in a row on
//! every input with thousands of simulated peers.
//!
//! Keys are hashed with FxHash rather than SipHash: a lookup is on the path of every
//! input, and SipHash over 32 bytes was a tenth of the simulator's time. FxHash does not
//! resist chosen keys, and a peer can grind certificates whose fingerprints collide in
//! the index; that costs at most a walk of the whole table, which
//! [`SwarmConfig::max_known_peers`](super::SwarmConfig::max_known_peers) bounds (256 by
//! default).

use certs::Fingerprint;
use std::hash::{BuildHasher, Hasher};

use rustc_hash::FxBuildHasher;

/// Known peers by fingerprint.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTable<V> {
    keys: Vec<Fingerprint>,
    values: Vec<V>,
    index: Index,
    /// Positions of the entries marked active, ascending: walks that concern only those
    /// (neighbours and dials, a fifth of the peers a core knows in a simulated flash
    /// crowd) visit them in table order without reading the others.
    active: Vec<u32>,
}

impl<V> PeerTable<V> {
    pub(crate) fn new() -> Self {
        PeerTable {
            keys: Vec::new(),
            values: Vec::new(),
            index: Index::default(),
            active: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn get(&self, fp: &Fingerprint) -> Option<&V> {
        self.position(fp).map(|i| &self.values[i])
    }

    pub(crate) fn get_mut(&mut self, fp: &Fingerprint) -> Option<&mut V> {
        self.position(fp).map(|i| &mut self.values[i])
    }

    /// Adds or replaces `fp`'s entry; a replaced entry keeps its place.
    pub(crate) fn insert(&mut self, fp: Fingerprint, value: V) {
        match self.position(&fp) {
            Some(i) => self.values[i] = value,
            None => {
                self.index.insert(hash(&fp), self.keys.len(), &self.keys);
                self.keys.push(fp);
                self.values.push(value);
            }
        }
    }

    pub(crate) fn remove(&mut self, fp: &Fingerprint) -> Option<V> {
        let slot = self.slot_of(fp)?;
        let i = self.index.take(slot);
        self.unmark(i);
        let last = self.keys.len() - 1;
        if i != last {
            // The last entry moves into the freed place: its slot must say so, and so
            // must the active positions if it is marked.
            let moved = self.keys[last];
            let at = self
                .index
                .find(hash(&moved), |j| j == last)
                .expect("every entry has a slot");
            self.index.point(at, i);
            if self.unmark(last) {
                self.mark(i);
            }
        }
        self.keys.swap_remove(i);
        Some(self.values.swap_remove(i))
    }

    /// Marks `fp`'s entry active or not (nothing if it is not in the table).
    pub(crate) fn set_active(&mut self, fp: &Fingerprint, active: bool) {
        if let Some(i) = self.position(fp) {
            if active {
                self.mark(i);
            } else {
                self.unmark(i);
            }
        }
    }

    /// Entries marked active.
    pub(crate) fn active_len(&self) -> usize {
        self.active.len()
    }

    /// The entries marked active, in table order.
    pub(crate) fn iter_active(&self) -> impl Iterator<Item = (&Fingerprint, &V)> {
        self.active
            .iter()
            .map(|&i| (&self.keys[i as usize], &self.values[i as usize]))
    }

    /// The `k`-th entry marked active, in table order, its value mutable (walks that
    /// change values index rather than iterate).
    pub(crate) fn active_at_mut(&mut self, k: usize) -> (&Fingerprint, &mut V) {
        self.at_mut(self.active[k] as usize)
    }

    /// The entry at position `i` (from [`position`](Self::position)), its value mutable.
    pub(crate) fn at_mut(&mut self, i: usize) -> (&Fingerprint, &mut V) {
        (&self.keys[i], &mut self.values[i])
    }

    fn mark(&mut self, i: usize) {
        let i = u32::try_from(i).expect("fewer than 2^32 peers");
        if let Err(at) = self.active.binary_search(&i) {
            self.active.insert(at, i);
        }
    }

    /// Unmarks position `i`; returns whether it was marked.
    fn unmark(&mut self, i: usize) -> bool {
        let Ok(i) = u32::try_from(i) else {
            return false;
        };
        match self.active.binary_search(&i) {
            Ok(at) => {
                self.active.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Where `fp`'s entry is, for [`at_mut`](Self::at_mut): valid until the table
    /// changes (a removal moves the last entry).
    pub(crate) fn position(&self, fp: &Fingerprint) -> Option<usize> {
        self.slot_of(fp).map(|slot| self.index.position(slot))
    }

    /// The index slot of `fp`'s entry.
    fn slot_of(&self, fp: &Fingerprint) -> Option<usize> {
        self.index.find(hash(fp), |i| self.keys[i] == *fp)
    }

    /// Entries in order. A fingerprint is read only where the caller reads it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Fingerprint, &V)> {
        self.keys.iter().zip(&self.values)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Fingerprint> {
        self.keys.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.values.iter()
    }
}

impl<V> std::ops::Index<&Fingerprint> for PeerTable<V> {
    type Output = V;

    fn index(&self, fp: &Fingerprint) -> &V {
        self.get(fp).expect("no such peer in the table")
    }
}

/// 32 bits of a fingerprint's FxHash: where its probe starts, and a tag that spares
/// comparing keys of other entries.
fn hash(fp: &Fingerprint) -> u32 {
    let mut h = FxBuildHasher.build_hasher();
    h.write(fp.as_bytes());
    let full = h.finish();
    // FxHash's best-mixed bits are its highest.
    (full >> 32) as u32
}

/// An open-addressed index from hashes to positions in the table's vectors, probed
/// linearly. A slot holds `hash << 32 | (position + 1)`, or 0 when empty.
#[derive(Debug, Clone, Default)]
struct Index {
    slots: Vec<u64>,
}

impl Index {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn position(&self, slot: usize) -> usize {
        (self.slots[slot] & u64::from(u32::MAX)) as usize - 1
    }

    fn hash_at(&self, slot: usize) -> u32 {
        (self.slots[slot] >> 32) as u32
    }

    /// The slot whose hash is `h` and whose position satisfies `is_it`.
    fn find(&self, h: u32, is_it: impl Fn(usize) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut slot = h as usize & mask;
        loop {
            let s = self.slots[slot];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == h && is_it(self.position(slot)) {
                return Some(slot);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Adds `position` under `h`, beside the entries of `keys`, growing (and rehashing
    /// them) to stay at most half full.
    fn insert(&mut self, h: u32, position: usize, keys: &[Fingerprint]) {
        if (keys.len() + 1) * 2 > self.slots.len() {
            let capacity = (self.slots.len() * 2).max(16);
            self.slots = vec![0; capacity];
            for (i, fp) in keys.iter().enumerate() {
                self.place(hash(fp), i);
            }
        }
        self.place(h, position);
    }

    fn place(&mut self, h: u32, position: usize) {
        let mask = self.mask();
        let mut slot = h as usize & mask;
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = slot_value(h, position);
    }

    /// Points `slot` at another position.
    fn point(&mut self, slot: usize, position: usize) {
        self.slots[slot] = slot_value(self.hash_at(slot), position);
    }

    /// Empties `slot`, returning its position. The entries after it in the same run move
    /// back where their probes would otherwise stop short of them (no tombstones: a
    /// table that churns peers never fills with them).
    fn take(&mut self, slot: usize) -> usize {
        let position = self.position(slot);
        let mask = self.mask();
        let mut hole = slot;
        let mut next = (hole + 1) & mask;
        while self.slots[next] != 0 {
            let home = self.hash_at(next) as usize & mask;
            // Moved back unless its home lies cyclically after the hole, up to `next`.
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = 0;
        position
    }
}

/// What a slot holds for `position` under hash `h`.
fn slot_value(h: u32, position: usize) -> u64 {
    let position = u32::try_from(position + 1).expect("fewer than 2^32 peers");
    u64::from(h) << 32 | u64::from(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    #[test]
    fn removal_keeps_every_other_entry_findable() {
        let mut t = PeerTable::new();
        for n in 0..10 {
            t.insert(fp(n), n);
        }
        assert_eq!(t.remove(&fp(3)), Some(3));
        assert_eq!(t.remove(&fp(9)), Some(9));
        assert_eq!(t.remove(&fp(3)), None);
        assert_eq!(t.len(), 8);
        for n in (0..10).filter(|n| ![3, 9].contains(n)) {
            assert_eq!(t.get(&fp(n)), Some(&n));
        }
        let mut seen: Vec<u8> = t.values().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn replacing_keeps_the_place_and_iteration_follows_insertion() {
        let mut t = PeerTable::new();
        t.insert(fp(2), "a");
        t.insert(fp(1), "b");
        t.insert(fp(2), "c");
        let order: Vec<(Fingerprint, &str)> = t.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(order, vec![(fp(2), "c"), (fp(1), "b")]);
    }

    /// Any sequence of inserts and removals leaves every entry findable at the value
    /// last given, and nothing else, as a standard map says; the index never fills.
    #[test]
    fn any_sequence_agrees_with_a_standard_map() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut t = PeerTable::new();
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u32 {
            // Few distinct keys, so that inserts, replacements and removals all happen.
            let k = fp(rng.random_range(0..=255));
            if rng.random_bool(0.55) {
                t.insert(k, step);
                model.insert(k, step);
            } else {
                assert_eq!(t.remove(&k), model.remove(&k));
            }
            assert_eq!(t.len(), model.len());
            let used = t.index.slots.iter().filter(|&&s| s != 0).count();
            assert_eq!(used, t.len(), "one slot per entry");
            assert!(used * 2 <= t.index.slots.len().max(1));
            if step % 97 == 0 {
                for n in 0..=255 {
                    assert_eq!(t.get(&fp(n)), model.get(&fp(n)), "step {step}, key {n}");
                }
                let mut order: Vec<_> = t.iter().map(|(k, v)| (*k, *v)).collect();
                order.sort_unstable_by_key(|&(_, v)| v);
                let mut expected: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                expected.sort_unstable_by_key(|&(_, v)| v);
                assert_eq!(order, expected);
            }
        }
    }

    /// Keys whose hashes share their low bits pile up in one run of slots; removing from
    /// its middle keeps the rest findable.
    #[test]
    fn removal_from_a_run_of_colliding_keys_keeps_the_rest_findable() {
        let mut keys = Vec::new();
        let mut n = 0u32;
        while keys.len() < 12 {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&n.to_le_bytes());
            let k = Fingerprint::from_bytes(b);
            if hash(&k) & 15 == 5 {
                keys.push(k);
            }
            n += 1;
        }
        let mut t = PeerTable::new();
        for (v, k) in keys.iter().enumerate() {
            t.insert(*k, v);
        }
        for (gone, k) in keys.iter().enumerate().step_by(3) {
            assert_eq!(t.remove(k), Some(gone));
        }
        for (v, k) in keys.iter().enumerate() {
            let expected = (v % 3 != 0).then_some(&v);
            assert_eq!(t.get(k), expected);
        }
    }

    /// The active entries are those marked, in table order, through removals that move
    /// other entries.
    #[test]
    fn active_entries_follow_marks_and_table_order() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut t = PeerTable::new();
        let mut marked = std::collections::HashSet::new();
        for step in 0..20_000u32 {
            let k = fp(rng.random_range(0..=63));
            match rng.random_range(0..4) {
                0 => t.insert(k, step),
                1 => {
                    t.remove(&k);
                    marked.remove(&k);
                }
                _ => {
                    let on = rng.random_bool(0.5);
                    t.set_active(&k, on);
                    if on && t.get(&k).is_some() {
                        marked.insert(k);
                    } else {
                        marked.remove(&k);
                    }
                }
            }
            let expected: Vec<_> = t.iter().filter(|(k, _)| marked.contains(*k)).collect();
            let active: Vec<_> = t.iter_active().collect();
            assert_eq!(active, expected, "step {step}");
            assert_eq!(t.active_len(), marked.len());
        }
    }
}
