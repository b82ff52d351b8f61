//! The simulated operator: random membership changes while every other fault
//! goes on. Adds learners (starting a fresh node under a never-used id), grows the
//! voters, shrinks them, replaces one (so a run of them replaces a majority one at
//! a time), removes the leader, removes a learner, and transfers the leadership.
//! Requests go to the replica that looks like the leader; many are refused (not
//! the leader, a change in progress, a learner still behind), as in real life.

use std::collections::BTreeSet;

use paxos::{MembershipChange, NodeId};
use rand::Rng;

use super::{Kind, MS, World};

impl World {
    pub(super) fn next_reconfig_delay(&mut self) -> u64 {
        let m = self.cfg.reconfig_every_ms.max(1);
        self.rng.random_range(m / 2..=m * 3 / 2) * MS
    }

    /// The live replica that leads at the highest ballot, if any.
    fn apparent_leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.replica.as_ref().map(|r| (i, r)))
            .filter(|(_, r)| r.is_leader())
            .max_by_key(|(_, r)| r.promised())
            .map(|(i, _)| i)
    }

    pub(super) fn on_admin_timer(&mut self) {
        if self.healed_at.is_some() {
            return;
        }
        let d = self.next_reconfig_delay();
        self.schedule(d, Kind::AdminTimer);
        let Some(l) = self.apparent_leader() else {
            return;
        };
        let Some(m) = self.nodes[l]
            .replica
            .as_ref()
            .map(|r| r.membership().clone())
        else {
            return;
        };
        let voters: Vec<NodeId> = m.voters.iter().copied().collect();
        let learners: Vec<NodeId> = m.learners.iter().copied().collect();
        let pick =
            |rng: &mut rand_chacha::ChaCha8Rng, v: &[NodeId]| v[rng.random_range(0..v.len())];
        let leader = l as NodeId;
        let change = match self.rng.random_range(0..8u32) {
            0 | 1 if learners.len() < 2 && self.next_spare < self.nodes.len() => {
                let id = self.next_spare;
                self.next_spare += 1;
                self.nodes[id].active = true;
                self.start_node(id);
                Some(MembershipChange::AddLearner {
                    id: id as NodeId,
                    address: format!("node-{id}"),
                })
            }
            2 if !learners.is_empty() && voters.len() < 5 => {
                // Grow: a learner becomes a voter.
                let mut v: BTreeSet<NodeId> = m.voters.clone();
                v.insert(pick(&mut self.rng, &learners));
                Some(MembershipChange::SetVoters { voters: v })
            }
            3 if !learners.is_empty() => {
                // Replace a voter by a learner.
                let mut v: BTreeSet<NodeId> = m.voters.clone();
                v.remove(&pick(&mut self.rng, &voters));
                v.insert(pick(&mut self.rng, &learners));
                Some(MembershipChange::SetVoters { voters: v })
            }
            4 if voters.len() > 3 => {
                // Shrink: remove a voter (perhaps the leader).
                let mut v: BTreeSet<NodeId> = m.voters.clone();
                v.remove(&pick(&mut self.rng, &voters));
                Some(MembershipChange::SetVoters { voters: v })
            }
            5 if voters.len() >= 3 && m.is_voter(leader) => {
                let mut v: BTreeSet<NodeId> = m.voters.clone();
                v.remove(&leader);
                Some(MembershipChange::SetVoters { voters: v })
            }
            6 if !learners.is_empty() => Some(MembershipChange::RemoveLearner {
                id: pick(&mut self.rng, &learners),
            }),
            7 => {
                let delay = self.rng.random_range(100..2 * MS);
                self.schedule(delay, Kind::AdminTransfer { to: l });
                None
            }
            _ => None,
        };
        if let Some(change) = change {
            let id = self.next_change;
            self.next_change += 1;
            let delay = self.rng.random_range(100..2 * MS);
            self.schedule(delay, Kind::AdminChange { to: l, id, change });
        }
    }
}
