//! The one back-off policy of ByteTorrent: exponential, capped, with jitter.
//!
//! It is pure: callers pass the time and a random number generator, so the same policy
//! serves the QUIC dialer, the swarm engine's neighbour handling (seeded, in simulation)
//! and the tracker client's fail-over.

use std::time::{Duration, Instant};

use rand::Rng;

/// How long to wait after consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure (before jitter). 250 ms: long enough not to hammer a
    /// remote that just refused, short enough that a blip costs little.
    pub initial: Duration,
    /// Upper bound of the wait. 30 s: a dead remote is retried twice a minute.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (1 or more): `initial * 2^(failures-1)`
    /// capped at `max`, then "equal jitter": a uniformly random point in its upper half, so
    /// that many clients that failed together do not retry together.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exponent = (failures - 1).min(31);
        let full = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let half = full / 2;
        let jitter_nanos = rng.random_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// The back-off state of one remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackoffState {
    failures: u32,
    until: Option<Instant>,
}

impl BackoffState {
    /// Records a failure at `now`; returns the instant before which no retry should be made.
    pub fn fail(&mut self, policy: &Backoff, now: Instant, rng: &mut impl Rng) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let until = now + policy.delay(self.failures, rng);
        self.until = Some(until);
        until
    }

    /// Records a success: the remote is in good standing again.
    pub fn succeed(&mut self) {
        *self = BackoffState::default();
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// If the remote is backed off at `now`, until when.
    pub fn backed_off_until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delay_doubles_within_jitter_and_is_capped() {
        let policy = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for failures in 1..=10u32 {
            let full = (Duration::from_millis(100) * 2u32.pow(failures - 1)).min(policy.max);
            for _ in 0..100 {
                let d = policy.delay(failures, &mut rng);
                assert!(
                    d >= full / 2 && d <= full,
                    "{failures}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert_eq!(policy.delay(0, &mut rng), Duration::ZERO);
        // Huge failure counts neither overflow nor exceed the cap.
        assert!(policy.delay(u32::MAX, &mut rng) <= policy.max);
    }

    #[test]
    fn state_backs_off_until_the_deadline_and_success_clears_it() {
        let policy = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut state = BackoffState::default();
        assert_eq!(state.backed_off_until(now), None);
        let until = state.fail(&policy, now, &mut rng);
        assert_eq!(state.backed_off_until(now), Some(until));
        assert_eq!(state.backed_off_until(until), None);
        assert_eq!(state.failures(), 1);
        state.succeed();
        assert_eq!(state.failures(), 0);
        assert_eq!(state.backed_off_until(now), None);
    }
}
