//! Where a replica's time comes from.
//!
//! The replica measures every timeout and its lease on the time the driver gives it. In
//! production that is the monotonic clock ([`MonotonicClock`]): it never jumps when the
//! time of day is set, so only the rate of the oscillator matters, which is what the
//! drift bound ([`Config::max_clock_drift`](crate::Config::max_clock_drift)) is about.
//! A test harness can give a clock of its own, to run one node fast or slow.

use std::fmt;
use std::time::{Duration, Instant};

/// A source of time for the driver.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since the clock's origin. Must never decrease: the replica's timers
    /// and lease compare readings, and a reading that goes back would stretch them.
    fn elapsed(&self) -> Duration;
}

/// The monotonic clock of the operating system, from the moment this value was made.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}
