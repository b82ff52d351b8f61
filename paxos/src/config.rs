//! Replica configuration.

use std::time::Duration;

use crate::ballot::NodeId;
use crate::error::ConfigError;

/// Test-only switches that plant known bugs, so the simulator can prove that
/// its checkers detect them. Only present with the `planted-bugs` feature.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Send promises and accepted acknowledgements before their records are durable.
    pub ack_before_persist: bool,
    /// A new leader skips phase 1 and proposes straight after its predecessor.
    pub skip_phase1: bool,
    /// Do not de-duplicate retried commands: apply them again.
    pub apply_retry_twice: bool,
    /// Answer every read from the local state at once, without a lease or the log.
    pub local_reads: bool,
    /// Followers promise any candidate even right after hearing from a
    /// leader, which breaks the leader lease.
    pub no_stickiness: bool,
    /// A candidate counts promises only against the membership it has applied,
    /// not against every membership its adopted log passes through.
    pub phase1_applied_membership_only: bool,
    /// The leader pipelines across a membership change: it proposes the change with
    /// slots still in flight, and later slots before the change is applied.
    pub no_change_barrier: bool,
}

/// Configuration of one replica. All replicas of a cluster should use the same
/// timing parameters; `id` and `seed` differ per replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id; must be in `members` unless `members` is empty.
    pub id: NodeId,
    /// The voters the cluster was bootstrapped with (including this one), the same
    /// on every bootstrap member. The membership in force comes from the log and
    /// the snapshots once it has changed; these are only its starting point.
    /// Empty for a node that joins a running cluster: it learns the membership
    /// from the snapshot a member sends it once the cluster added it as a learner.
    pub members: Vec<NodeId>,
    /// For a joining node: replicas to ask for the cluster's state until it hears
    /// from a member (e.g. the members the operator knows). Default empty.
    pub contacts: Vec<NodeId>,
    /// Minimum election timeout. A follower that hears nothing from a leader
    /// for a random time in `[election_timeout, 2 * election_timeout)` starts an
    /// election (pre-vote first), a follower that heard from a leader less than
    /// `election_timeout` ago refuses to promise to anyone else, and a leader
    /// that heard from no quorum for `election_timeout` steps down.
    /// Default 200 ms: ten heartbeat intervals, so several lost heartbeats in a
    /// row do not cause a spurious election, and a crashed leader is replaced
    /// in 200–400 ms plus one round trip. The trade-off: a leader whose
    /// process stalls for longer than this (a long GC-like pause, a CPU-starved
    /// VM) loses its leadership, which costs a re-election but never safety.
    /// Raise it on slow or distant networks (etcd's default is 1 s).
    pub election_timeout: Duration,
    /// Leader heartbeat (and commit broadcast) interval.
    /// Default 20 ms: cheap (one small message per follower, 50 a second) and
    /// one tenth of the election timeout.
    pub heartbeat_interval: Duration,
    /// Leader lease length, measured on the leader's clock from the moment it
    /// sent a heartbeat round that a quorum acknowledged. Must not exceed
    /// `election_timeout` (the followers' promise window).
    /// Default 160 ms (80% of the election timeout): renewed by every
    /// heartbeat, so a healthy leader always holds it.
    pub lease_duration: Duration,
    /// Bound on how much two replicas' clocks may disagree about the length of
    /// one lease interval. The lease is used for only
    /// `lease_duration - max_clock_drift`. Default 16 ms (10% of the lease):
    /// far above the drift of any working quartz clock over 160 ms.
    pub max_clock_drift: Duration,
    /// Maximum number of client commands batched into one slot.
    /// Default 256: amortises the per-slot round trip without making
    /// single messages huge.
    pub max_batch: usize,
    /// Maximum number of slots a leader has proposed but not yet seen chosen
    /// (the pipeline depth). Default 16: enough to keep a LAN pipe full while
    /// bounding the work lost or retransmitted on a leader change.
    pub max_inflight: usize,
    /// Take a snapshot and truncate the log about every this many applied
    /// slots. Each replica takes its snapshots at slots of its own phase (set
    /// by its rank), so that they never all stall at once; a leader waits
    /// about twice as long. Default 10 000 slots: bounds memory
    /// and restart time; the state machine snapshot is taken rarely.
    pub snapshot_log_len: u64,
    /// A client session whose last command was applied more than this many
    /// slots ago is forgotten (deterministically on every replica). Default
    /// 1 000 000 slots: far longer than any client's retry horizon.
    pub session_expiry_slots: u64,
    /// Maximum number of chosen slots sent in one catch-up message.
    /// Default 256: keeps catch-up messages bounded.
    pub catchup_batch: usize,
    /// Seed of the replica's random number generator (election timeouts).
    /// Default 0; give each replica a different seed.
    pub seed: u64,
    /// Planted bugs (tests only).
    #[cfg(feature = "planted-bugs")]
    pub planted: PlantedBugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            members: vec![0],
            contacts: Vec::new(),
            election_timeout: Duration::from_millis(200),
            heartbeat_interval: Duration::from_millis(20),
            lease_duration: Duration::from_millis(160),
            max_clock_drift: Duration::from_millis(16),
            max_batch: 256,
            max_inflight: 16,
            snapshot_log_len: 10_000,
            session_expiry_slots: 1_000_000,
            catchup_batch: 256,
            seed: 0,
            #[cfg(feature = "planted-bugs")]
            planted: PlantedBugs::default(),
        }
    }
}

impl Config {
    /// Checks the configuration's internal consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: &str| Err(ConfigError(s.to_string()));
        if !self.members.is_empty() && !self.members.contains(&self.id) {
            return bad("members must contain id (or be empty, for a joining node)");
        }
        let mut m = self.members.clone();
        m.sort_unstable();
        m.dedup();
        if m.len() != self.members.len() {
            return bad("members must be distinct");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.election_timeout {
            return bad("heartbeat_interval must be positive and below election_timeout");
        }
        if self.lease_duration > self.election_timeout {
            return bad("lease_duration must not exceed election_timeout");
        }
        if self.max_batch == 0 || self.max_inflight == 0 || self.catchup_batch == 0 {
            return bad("max_batch, max_inflight and catchup_batch must be positive");
        }
        if self.snapshot_log_len == 0 || self.session_expiry_slots == 0 {
            return bad("snapshot_log_len and session_expiry_slots must be positive");
        }
        Ok(())
    }

    /// Number of bootstrap members that form a quorum (a majority).
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// How long a lease obtained at one heartbeat round may be used.
    pub fn usable_lease(&self) -> Duration {
        self.lease_duration.saturating_sub(self.max_clock_drift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_for_single_member() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn lease_longer_than_election_timeout_is_rejected() {
        let c = Config {
            lease_duration: Duration::from_secs(10),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn quorum_is_a_majority() {
        let c = Config {
            members: vec![0, 1, 2, 3, 4],
            ..Config::default()
        };
        assert_eq!(c.quorum(), 3);
    }
}
