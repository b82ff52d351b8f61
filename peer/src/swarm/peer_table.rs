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
//! The index hashes with FxHash rather than the standard library's SipHash: a lookup is
//! on the path of every input, and SipHash over 32 bytes was a tenth of the simulator's
//! time. FxHash does not resist chosen keys, and a peer can grind certificates whose
//! fingerprints collide in the index; that costs at most a walk of the whole table,
//! which [`SwarmConfig::max_known_peers`](super::SwarmConfig::max_known_peers) bounds
//! (256 by default).

use certs::Fingerprint;
use rustc_hash::FxHashMap;

/// Known peers by fingerprint.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTable<V> {
    keys: Vec<Fingerprint>,
    values: Vec<V>,
    index: FxHashMap<Fingerprint, usize>,
}

impl<V> PeerTable<V> {
    pub(crate) fn new() -> Self {
        PeerTable {
            keys: Vec::new(),
            values: Vec::new(),
            index: FxHashMap::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn get(&self, fp: &Fingerprint) -> Option<&V> {
        self.index.get(fp).map(|&i| &self.values[i])
    }

    pub(crate) fn get_mut(&mut self, fp: &Fingerprint) -> Option<&mut V> {
        self.index.get(fp).map(|&i| &mut self.values[i])
    }

    /// Adds or replaces `fp`'s entry; a replaced entry keeps its place.
    pub(crate) fn insert(&mut self, fp: Fingerprint, value: V) {
        match self.index.get(&fp) {
            Some(&i) => self.values[i] = value,
            None => {
                self.index.insert(fp, self.values.len());
                self.keys.push(fp);
                self.values.push(value);
            }
        }
    }

    pub(crate) fn remove(&mut self, fp: &Fingerprint) -> Option<V> {
        let i = self.index.remove(fp)?;
        self.keys.swap_remove(i);
        let value = self.values.swap_remove(i);
        if let Some(moved) = self.keys.get(i) {
            self.index.insert(*moved, i);
        }
        Some(value)
    }

    /// Entries in order. A fingerprint is read only where the caller reads it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Fingerprint, &V)> {
        self.keys.iter().zip(&self.values)
    }

    /// Entries in order, values mutable.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&Fingerprint, &mut V)> {
        self.keys.iter().zip(&mut self.values)
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
}
