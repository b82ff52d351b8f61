//! The runtime's own settings: tick interval, inbound queue length and clock.

use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, MonotonicClock};

#[cfg(doc)]
use crate::config::Config;

/// Settings of the runtime itself (the protocol's are in [`Config`]).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// How often the replica's clock advances. 10 ms: fine enough for the default 50 ms
    /// heartbeat and 500 ms election timeout, coarse enough to cost nothing.
    pub tick_interval: Duration,
    /// Inbound queue length (messages from replicas and clients). 65,536: a burst of
    /// pipelined traffic fits; beyond it replica messages are dropped (Paxos retransmits)
    /// and clients wait.
    pub queue_len: usize,
    /// The replica's time. The monotonic clock, unless a test runs a node fast or slow.
    pub clock: Arc<dyn Clock>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            tick_interval: Duration::from_millis(10),
            queue_len: 65_536,
            clock: Arc::new(MonotonicClock::new()),
        }
    }
}
