//! The simulator's event queue: a radix heap, which pops events in exactly the order of a
//! binary heap keyed by (time, insertion number), at a fraction of its cost.
//!
//! A discrete-event simulation never schedules into the past, so the keys it pops only
//! grow. A radix heap uses that: every key waits in the bucket named by the highest bit in
//! which it differs from the last key popped, so a push is an append to a vector, and a
//! pop scans at most 129 bucket heads. A key is moved to a lower bucket only when the
//! bucket holding the minimum is split, and each split lowers it by at least one bit, so
//! over its life a key moves a handful of times, always through vectors read and written
//! in order. A binary heap instead swaps a popped slot down through log2(n) levels that
//! are far apart in memory: with 10,000 simulated peers the heap held millions of events
//! and that walk was the largest single cost of the simulation.

/// Keys are `(time, insertion number)`: unique, and increasing for a given time, so the
/// order among events due at the same instant is the order they were scheduled in.
type Key = u128;

/// A monotone priority queue of values due at simulated times (nanoseconds).
pub struct EventQueue<T> {
    /// Bucket 0 holds keys equal to `last`; bucket b > 0 holds keys whose highest bit that
    /// differs from `last` is bit b - 1.
    buckets: Vec<Vec<(Key, T)>>,
    /// The last key popped: no key below it may be pushed.
    last: Key,
    /// Insertion number of the next push; from 1, so that every key is above the initial
    /// `last`.
    next_seq: u64,
    len: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> EventQueue<T> {
    /// An empty queue whose time starts at 0.
    pub fn new() -> Self {
        EventQueue {
            buckets: (0..=Key::BITS).map(|_| Vec::new()).collect(),
            last: 0,
            next_seq: 1,
            len: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` at `time`, after everything already scheduled at that time.
    ///
    /// # Panics
    /// If `time` is before the time of the last event popped: a simulation that schedules
    /// into its past is broken.
    pub fn push(&mut self, time: u64, value: T) {
        let key = (Key::from(time) << 64) | Key::from(self.next_seq);
        assert!(
            key > self.last,
            "event scheduled in the past: {time} ns is before {} ns",
            self.last >> 64
        );
        self.next_seq += 1;
        self.len += 1;
        let b = self.bucket_of(key);
        self.buckets[b].push((key, value));
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.len == 0 {
            return None;
        }
        if self.buckets[0].is_empty() {
            self.split_lowest();
        }
        let (key, value) = self.buckets[0].pop()?;
        self.len -= 1;
        Some(((key >> 64) as u64, value))
    }

    /// Makes the smallest key the new `last` and spreads its bucket over the lower ones,
    /// where every key lands in a bucket below the one it left (the smallest in bucket 0).
    fn split_lowest(&mut self) {
        let Some(b) = (1..self.buckets.len()).find(|&b| !self.buckets[b].is_empty()) else {
            return;
        };
        let mut moved = std::mem::take(&mut self.buckets[b]);
        self.last = moved
            .iter()
            .map(|(k, _)| *k)
            .min()
            .expect("bucket is not empty");
        for (key, value) in moved.drain(..) {
            let to = self.bucket_of(key);
            self.buckets[to].push((key, value));
        }
        // Nothing moved lands in bucket b again: it keeps its allocation for later keys.
        self.buckets[b] = moved;
    }

    fn bucket_of(&self, key: Key) -> usize {
        (Key::BITS - (key ^ self.last).leading_zeros()) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn events_come_out_in_time_order_and_ties_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(5, "b");
        q.push(3, "a");
        q.push(5, "c");
        assert_eq!(q.pop(), Some((3, "a")));
        q.push(3, "d");
        q.push(4, "e");
        assert_eq!(q.pop(), Some((3, "d")));
        assert_eq!(q.pop(), Some((4, "e")));
        assert_eq!(q.pop(), Some((5, "b")));
        assert_eq!(q.pop(), Some((5, "c")));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    /// Interleaved pushes (never into the past) and pops give the very sequence a binary
    /// heap keyed by (time, insertion number) gives, which the simulator used before.
    #[test]
    fn the_order_matches_a_binary_heap_over_a_random_schedule() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut q = EventQueue::new();
        let mut heap = BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for step in 0..200_000u32 {
            if rng.random_bool(0.55) {
                // Mostly near the present, sometimes far ahead, often exactly now.
                let delay = match rng.random_range(0..4) {
                    0 => 0,
                    1 => rng.random_range(0..1_000),
                    2 => rng.random_range(0..100_000_000),
                    _ => rng.random_range(0..60_000_000_000),
                };
                q.push(now + delay, step);
                heap.push(Reverse((now + delay, seq, step)));
                seq += 1;
            } else {
                let expected = heap.pop().map(|Reverse((t, _, v))| (t, v));
                assert_eq!(q.pop(), expected);
                if let Some((t, _)) = expected {
                    now = t;
                }
            }
            assert_eq!(q.len(), heap.len());
        }
        while let Some(Reverse((t, _, v))) = heap.pop() {
            assert_eq!(q.pop(), Some((t, v)));
        }
        assert_eq!(q.pop(), None);
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn scheduling_into_the_past_is_refused() {
        let mut q = EventQueue::new();
        q.push(10, ());
        q.pop();
        q.push(9, ());
    }
}
