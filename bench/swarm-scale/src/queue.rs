//! The simulator's event queue: a radix heap, which pops events in exactly the order of a
//! binary heap keyed by (time, insertion number), at a fraction of its cost.
//!
//! A discrete-event simulation never schedules into the past, so the keys it pops only
//! grow. A radix heap uses that: every key waits in the bucket named by the highest bit in
//! which it differs from the last key popped, so a push is an append to a vector, and a
//! pop scans at most 65 bucket heads. A key is moved to a lower bucket only when the
//! bucket holding the minimum is split, and each split lowers it by at least one bit, so
//! over its life a key moves a handful of times, always through vectors read and written
//! in order. A binary heap instead swaps a popped slot down through log2(n) levels that
//! are far apart in memory: with 10,000 simulated peers the heap held millions of events
//! and that walk was the largest single cost of the simulation.

use std::collections::VecDeque;

/// A monotone priority queue of values due at simulated times (nanoseconds); values due
/// at the same time come out in the order they were pushed.
///
/// Keys are the times alone. Values of one time are always in one bucket together (a
/// bucket is a function of the key and `last`), in the order pushed: pushes append, and a
/// split moves a bucket's values in order to the end of lower buckets, none of which
/// holds that time. The values due at `last` wait in a queue of their own, taken from its
/// front. (Keys of time and insertion number would order ties too, at twice the size of
/// a key, and with every key distinct, a split for every pop.)
pub struct EventQueue<T> {
    /// Bucket b holds values whose time's highest bit that differs from `last` is bit
    /// b - 1 (bucket 0 is unused: see `due`).
    buckets: Vec<Vec<(u64, T)>>,
    /// The values due at `last`, in the order pushed.
    due: VecDeque<T>,
    /// The time of the last split: no earlier time may be pushed.
    last: u64,
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
            buckets: (0..=u64::BITS).map(|_| Vec::new()).collect(),
            due: VecDeque::new(),
            last: 0,
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
        assert!(
            time >= self.last,
            "event scheduled in the past: {time} ns is before {} ns",
            self.last
        );
        self.len += 1;
        if time == self.last {
            self.due.push_back(value);
        } else {
            let b = self.bucket_of(time);
            self.buckets[b].push((time, value));
        }
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.len == 0 {
            return None;
        }
        if self.due.is_empty() {
            self.split_lowest();
        }
        let value = self.due.pop_front()?;
        self.len -= 1;
        Some((self.last, value))
    }

    /// Makes the earliest time the new `last` and spreads its bucket over the lower ones
    /// (the values due then into `due`), each value landing below the bucket it left.
    fn split_lowest(&mut self) {
        let Some(b) = (1..self.buckets.len()).find(|&b| !self.buckets[b].is_empty()) else {
            return;
        };
        let mut moved = std::mem::take(&mut self.buckets[b]);
        self.last = moved
            .iter()
            .map(|(t, _)| *t)
            .min()
            .expect("bucket is not empty");
        for (time, value) in moved.drain(..) {
            if time == self.last {
                self.due.push_back(value);
            } else {
                let to = self.bucket_of(time);
                self.buckets[to].push((time, value));
            }
        }
        // Nothing moved lands in bucket b again: it keeps its allocation for later keys.
        self.buckets[b] = moved;
    }

    fn bucket_of(&self, time: u64) -> usize {
        (u64::BITS - (time ^ self.last).leading_zeros()) as usize
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
