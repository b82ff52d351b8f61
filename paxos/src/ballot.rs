//! Identifiers: nodes, slots, clients and ballots.

use serde::{Deserialize, Serialize};

/// Identifier of a replica. Must be unique within a cluster.
pub type NodeId = u64;

/// Index of a log position. Slots start at 1; slot 0 means "none".
pub type Slot = u64;

/// Identifier of a client session (chosen by the client, unique per client).
pub type ClientId = u64;

/// A Paxos ballot (proposal number). Ballots are totally ordered by
/// `(round, leader)`, so two replicas never use the same ballot.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// Monotonic round number; compared first.
    pub round: u64,
    /// The replica that owns this ballot; breaks ties between rounds.
    pub leader: NodeId,
}

impl Ballot {
    /// The ballot below every ballot a replica can use (rounds start at 1).
    pub const ZERO: Ballot = Ballot {
        round: 0,
        leader: 0,
    };

    /// Creates a ballot.
    pub fn new(round: u64, leader: NodeId) -> Self {
        Ballot { round, leader }
    }
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_leader() {
        assert!(Ballot::new(2, 0) > Ballot::new(1, 9));
        assert!(Ballot::new(1, 2) > Ballot::new(1, 1));
        assert!(Ballot::ZERO < Ballot::new(1, 0));
    }
}
