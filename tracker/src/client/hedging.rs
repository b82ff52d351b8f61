//! When a client sends a slow request to a second node as well: after a delay that
//! follows its usual answer time, and only while it has hedges to spend.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Hedges a client may save up, in tenths: enough for one burst of slow answers (a node
/// dying with a few requests in flight) without letting a steady trickle of slow answers
/// double the load.
const BUDGET_MAX: u32 = 100;
/// Hedges a new client may send before it has earned any, in tenths.
const BUDGET_START: u32 = 30;
/// What one hedge costs, in tenths: each answer earns one tenth.
const HEDGE_COST: u32 = 10;

/// A client's hedging state; shared by its concurrent requests.
#[derive(Debug)]
pub(super) struct Hedging {
    /// The hedges this client may still send, in tenths.
    budget: AtomicU32,
    /// Smoothed time to a node's answer, in microseconds (an exponential moving average
    /// over the answered attempts, weight 1/8).
    usual_answer_us: AtomicU64,
    /// Hedges sent.
    sent: AtomicU64,
}

impl Hedging {
    pub(super) fn new() -> Self {
        Hedging {
            budget: AtomicU32::new(BUDGET_START),
            usual_answer_us: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// How long to wait for an answer before asking the next node as well: three times
    /// the usual answer time, but at least `floor` and at most `most`.
    pub(super) fn delay(&self, floor: Duration, most: Duration) -> Duration {
        let usual = Duration::from_micros(self.usual_answer_us.load(Ordering::Relaxed));
        (3 * usual).max(floor).min(most)
    }

    /// Spends one hedge from the budget, if there is one to spend.
    pub(super) fn take(&self) -> bool {
        let taken = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(HEDGE_COST)
            })
            .is_ok();
        if taken {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// A node answered in `took`: update the usual answer time, earn a tenth of a hedge.
    pub(super) fn answered_in(&self, took: Duration) {
        let sample = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let usual = self.usual_answer_us.load(Ordering::Relaxed);
        let smoothed = if usual == 0 {
            sample
        } else {
            usual - usual / 8 + sample / 8
        };
        self.usual_answer_us.store(smoothed, Ordering::Relaxed);
        let _ = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b < BUDGET_MAX).then_some(b + 1)
            });
    }

    /// Hedges sent so far.
    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_new_client_may_hedge_three_times_then_earns_one_hedge_per_ten_answers() {
        let h = Hedging::new();
        assert!(h.take() && h.take() && h.take());
        assert!(!h.take());
        for _ in 0..9 {
            h.answered_in(MS);
        }
        assert!(!h.take());
        h.answered_in(MS);
        assert!(h.take());
        assert_eq!(h.sent(), 4);
    }

    #[test]
    fn the_budget_saves_up_ten_hedges_at_most() {
        let h = Hedging::new();
        for _ in 0..1_000 {
            h.answered_in(MS);
        }
        assert_eq!((0..20).filter(|_| h.take()).count(), 10);
    }

    #[test]
    fn the_delay_is_three_usual_answers_within_its_bounds() {
        let h = Hedging::new();
        let (floor, most) = (150 * MS, 2_500 * MS);
        assert_eq!(h.delay(floor, most), floor, "no answer seen yet");
        h.answered_in(200 * MS);
        assert_eq!(h.delay(floor, most), 600 * MS);
        for _ in 0..100 {
            h.answered_in(2 * MS);
        }
        assert_eq!(h.delay(floor, most), floor);
        for _ in 0..100 {
            h.answered_in(10_000 * MS);
        }
        assert_eq!(h.delay(floor, most), most);
    }
}
