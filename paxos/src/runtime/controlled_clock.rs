//! A clock a fault-injection harness can skew and step, through a small control file.
//!
//! For tests only: a server started with a control file (`kv-server run --clock-control
//! FILE`, `bt-tracker run --clock-control FILE`) drives its replica with a
//! [`ControlledClock`]. The harness writes `rate=R jump_ms=J` to FILE (atomically, by
//! rename, with [`ClockSetting::write`]):
//!
//! * `rate` is how fast the node's clock runs against real time (1.05: five per cent fast).
//!   It models an oscillator's drift, which the monotonic clock has too; the protocol's
//!   drift bound is about it.
//! * `jump_ms` is the sum of the steps the time of day took on this node (an operator or
//!   NTP setting the clock). The monotonic clock does not see them, so a correct node
//!   ignores them; the planted bug [`ClockBug::TimeOfDay`] follows them, as a node that
//!   measured its lease with the time of day would.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Clock;

/// How often the control file is read.
const POLL: Duration = Duration::from_millis(10);

/// A planted clock bug, for proving that a fault-injection harness catches lease-safety
/// bugs. Never set outside such a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockBug {
    /// Correct: the replica's time is the (possibly skewed) monotonic clock.
    None,
    /// The replica reads the time of day: it follows steps of the clock, and when the
    /// clock is set back it holds its time still until the time of day catches up (a
    /// reading may never decrease), stretching its lease by the step.
    TimeOfDay,
}

/// What the control file says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSetting {
    /// Rate of the node's clock against real time.
    pub rate: f64,
    /// Sum of the steps of the time of day, in milliseconds (negative: set back).
    pub jump_ms: i64,
}

impl Default for ClockSetting {
    fn default() -> Self {
        ClockSetting {
            rate: 1.0,
            jump_ms: 0,
        }
    }
}

impl ClockSetting {
    /// The file's text.
    pub fn to_text(self) -> String {
        format!("rate={} jump_ms={}\n", self.rate, self.jump_ms)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut setting = ClockSetting::default();
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("rate", v)) => {
                    setting.rate = v.parse().map_err(|e| format!("rate {v:?}: {e}"))?;
                    if !(setting.rate.is_finite() && setting.rate > 0.0) {
                        return Err(format!("rate {v:?} is not a positive number"));
                    }
                }
                Some(("jump_ms", v)) => {
                    setting.jump_ms = v.parse().map_err(|e| format!("jump_ms {v:?}: {e}"))?
                }
                _ => return Err(format!("unknown field {field:?}")),
            }
        }
        Ok(setting)
    }

    /// Writes `self` to `path` atomically (a reader never sees half a file).
    pub fn write(self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(tmp, path)
    }
}

#[derive(Debug)]
struct State {
    /// Real time and node time at the last change of rate.
    anchor_real: Duration,
    anchor_node: Duration,
    setting: ClockSetting,
    /// The last reading given, so that no reading is smaller.
    last: Duration,
}

/// A clock whose rate and time-of-day steps a harness sets (see the module doc).
#[derive(Debug)]
pub struct ControlledClock {
    origin: Instant,
    bug: ClockBug,
    state: Mutex<State>,
}

impl ControlledClock {
    /// A clock running at real speed, with no steps.
    pub fn new(bug: ClockBug) -> Self {
        ControlledClock {
            origin: Instant::now(),
            bug,
            state: Mutex::new(State {
                anchor_real: Duration::ZERO,
                anchor_node: Duration::ZERO,
                setting: ClockSetting::default(),
                last: Duration::ZERO,
            }),
        }
    }

    /// Applies a new setting from now on: time already passed keeps its old rate.
    pub fn set(&self, setting: ClockSetting) {
        let real = self.origin.elapsed();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.setting == setting {
            return;
        }
        let node = Self::node_time(&state, real);
        state.anchor_real = real;
        state.anchor_node = node;
        state.setting = setting;
    }

    fn node_time(state: &State, real: Duration) -> Duration {
        let since = real.saturating_sub(state.anchor_real);
        state.anchor_node + since.mul_f64(state.setting.rate)
    }

    /// Reads `path` every 10 ms and applies what it says, for as long as the process
    /// runs. A missing or unreadable file leaves the clock as it is.
    pub fn follow(self: &Arc<Self>, path: PathBuf) {
        let clock = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_text = String::new();
            loop {
                if let Ok(text) = tokio::fs::read_to_string(&path).await
                    && text != last_text
                {
                    match ClockSetting::parse(&text) {
                        Ok(setting) => clock.set(setting),
                        Err(e) => tracing::warn!("clock control {}: {e}", path.display()),
                    }
                    last_text = text;
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }
}

impl Clock for ControlledClock {
    fn elapsed(&self) -> Duration {
        let real = self.origin.elapsed();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let node = Self::node_time(&state, real);
        let reading = match self.bug {
            ClockBug::None => node,
            ClockBug::TimeOfDay => {
                let jump = Duration::from_millis(state.setting.jump_ms.unsigned_abs());
                if state.setting.jump_ms >= 0 {
                    node + jump
                } else {
                    node.saturating_sub(jump)
                }
            }
        };
        let reading = reading.max(state.last);
        state.last = reading;
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_ones_are_refused() {
        let s = ClockSetting {
            rate: 1.07,
            jump_ms: -2500,
        };
        assert_eq!(ClockSetting::parse(&s.to_text()), Ok(s));
        assert!(ClockSetting::parse("rate=0").is_err());
        assert!(ClockSetting::parse("rate=fast").is_err());
        assert!(ClockSetting::parse("speed=1").is_err());
    }

    #[test]
    fn a_correct_clock_ignores_steps_and_a_time_of_day_clock_stalls_on_a_step_back() {
        let correct = ControlledClock::new(ClockBug::None);
        let buggy = ControlledClock::new(ClockBug::TimeOfDay);
        let back = ClockSetting {
            rate: 1.0,
            jump_ms: -60_000,
        };
        let before = (correct.elapsed(), buggy.elapsed());
        correct.set(back);
        buggy.set(back);
        std::thread::sleep(Duration::from_millis(20));
        assert!(correct.elapsed() >= before.0 + Duration::from_millis(20));
        // Set back a minute: the buggy clock's readings stand still.
        let stalled = buggy.elapsed();
        assert_eq!(stalled, before.1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(buggy.elapsed(), stalled);
    }

    #[test]
    fn a_fast_clock_runs_fast_from_the_change_on() {
        let clock = ControlledClock::new(ClockBug::None);
        std::thread::sleep(Duration::from_millis(20));
        let at_change = clock.elapsed();
        clock.set(ClockSetting {
            rate: 3.0,
            jump_ms: 0,
        });
        std::thread::sleep(Duration::from_millis(50));
        let real_since = clock.origin.elapsed() - at_change;
        let node_since = clock.elapsed() - at_change;
        // Three times as fast, give or take the moments between the readings.
        assert!(
            node_since >= real_since.mul_f64(2.5),
            "{node_since:?} vs {real_since:?}"
        );
    }
}
