//! A neighbour's measured delivery rate, from which its request pipeline is sized.
//!
//! Only time during which requests were outstanding counts: the clock starts when a
//! request is sent to an idle neighbour and every delivery closes one sample. Idle time
//! would otherwise make a fast neighbour look slow just because nothing was asked of it.

use std::time::{Duration, Instant};

/// Weight of the newest sample in the moving average. 0.3: follows a change of rate
/// within a few pieces while smoothing out one piece's jitter.
const WEIGHT: f64 = 0.3;

/// Samples shorter than this are merged into the next one, so that pieces delivered at
/// the same instant do not divide by zero or produce absurd rates.
const MIN_SAMPLE: Duration = Duration::from_millis(1);

/// Bytes per second, as an exponentially weighted moving average.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rate {
    bytes_per_sec: Option<f64>,
    mark: Option<Instant>,
    pending_bytes: u64,
}

impl Rate {
    /// A request was sent while none was outstanding: the busy clock starts now.
    pub(crate) fn busy_from(&mut self, now: Instant) {
        self.mark = Some(now);
        self.pending_bytes = 0;
    }

    /// `bytes` were delivered at `now`.
    pub(crate) fn delivered(&mut self, bytes: u64, now: Instant) {
        let Some(mark) = self.mark else { return };
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        let elapsed = now.saturating_duration_since(mark);
        if elapsed < MIN_SAMPLE {
            return;
        }
        let sample = self.pending_bytes as f64 / elapsed.as_secs_f64();
        self.bytes_per_sec = Some(match self.bytes_per_sec {
            Some(avg) => avg + WEIGHT * (sample - avg),
            None => sample,
        });
        self.mark = Some(now);
        self.pending_bytes = 0;
    }

    /// The average, once there is one.
    pub(crate) fn bytes_per_sec(&self) -> Option<f64> {
        self.bytes_per_sec
    }

    /// How many pieces of `piece_len` bytes the measured rate moves within `time`, rounded
    /// up and held to `[min, max]` (`max` if the rate is absurd); None until measured.
    pub(crate) fn pieces_within(
        &self,
        time: Duration,
        piece_len: u64,
        min: usize,
        max: usize,
    ) -> Option<usize> {
        let max = max.max(min);
        let rate = self.bytes_per_sec?;
        let pieces = rate * time.as_secs_f64() / piece_len.max(1) as f64;
        Some(if pieces.is_finite() && pieces >= 0.0 {
            (pieces.ceil() as usize).clamp(min, max)
        } else {
            max
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_busy_time_only_and_merges_same_instant_deliveries() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.delivered(100, t0);
        assert_eq!(r.bytes_per_sec(), None, "nothing was requested");
        r.busy_from(t0);
        r.delivered(1000, t0);
        r.delivered(1000, t0 + Duration::from_secs(1));
        assert_eq!(r.bytes_per_sec(), Some(2000.0));
        // An idle hour, then a new request: the hour does not count.
        r.busy_from(t0 + Duration::from_secs(3600));
        r.delivered(2000, t0 + Duration::from_secs(3601));
        assert_eq!(r.bytes_per_sec(), Some(2000.0));
        r.delivered(12000, t0 + Duration::from_secs(3602));
        let avg = r.bytes_per_sec().unwrap_or_default();
        assert!((avg - 5000.0).abs() < 1e-6, "{avg}");
    }
}
