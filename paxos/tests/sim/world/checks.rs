//! The properties checked on every run: one value per slot (continuously),
//! and at the end no lost acknowledged put, convergence and linearizability.

use paxos::Replica;

use super::{MS, SimStats, World};
use crate::sim::kv::KvMachine;
use linearizability::check_kv_linearizable;

impl World {
    /// At most one value is chosen per slot: compares the slots node `i`
    /// learned since the last check with what other replicas learned.
    pub(super) fn check_chosen(&mut self, i: usize) {
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return;
        };
        let from = self.nodes[i].checked.max(r.snapshot_slot()) + 1;
        for slot in from..=r.decided() {
            let Some(v) = r.chosen_value(slot) else {
                continue;
            };
            match self.chosen.get(&slot) {
                Some(w) if w != v => {
                    let msg = format!(
                        "two values chosen for slot {slot}: replica {i} has {v:?}, another had {w:?}"
                    );
                    self.observer.borrow_mut().violations.push(msg);
                }
                Some(_) => {}
                None => {
                    self.chosen.insert(slot, v.clone());
                }
            }
        }
        self.nodes[i].checked = r.decided();
    }

    /// A description of every replica, for failure reports.
    pub(super) fn dump(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            match &n.replica {
                Some(r) => out.push_str(&format!(
                    "  node {i}: {r:?} leader_hint={:?} voters={:?} learners={:?} retired={:?}\n",
                    r.leader_hint(),
                    r.membership().voters,
                    r.membership().learners,
                    r.membership().retired
                )),
                None if n.active => out.push_str(&format!("  node {i}: down\n")),
                None => out.push_str(&format!("  node {i}: stopped (removed, or never added)\n")),
            }
        }
        out
    }

    pub(super) fn finish(mut self) -> Result<SimStats, String> {
        // Let the healed cluster converge without new client operations.
        for c in self.clients.iter_mut() {
            c.stopped = true;
        }
        self.set_all_links(true);
        let end = self.now + 400 * MS;
        while let Some(ev) = self.queue.pop() {
            if ev.at > end {
                break;
            }
            self.now = ev.at;
            self.events += 1;
            self.handle(ev.kind);
        }
        if let Some(v) = self.observer.borrow().violations.first() {
            return Err(v.clone());
        }
        let obs = self.observer.borrow();
        // Every acknowledged put is in the log.
        for (client, seq) in &self.acked_puts {
            if !obs.position.contains_key(&(*client, *seq)) {
                return Err(format!(
                    "acknowledged put (client {client}, seq {seq}) was lost"
                ));
            }
        }
        // All replicas converged to the same state and membership. Replicas outside
        // the final membership are skipped (a node whose addition was refused), but a
        // removed one must have learned of its removal and stopped.
        let reps: Vec<&Replica<KvMachine>> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .collect();
        let Some(first) = reps.iter().copied().max_by_key(|r| r.applied()) else {
            return Err("no replica is running".into());
        };
        let membership = first.membership().clone();
        for r in &reps {
            // A removed replica still running must at least know it was removed (it
            // then only answers as a passive acceptor until a quorum of the new
            // voters confirms, and stops).
            if membership.retired.contains(&r.id()) && r.membership().retired.contains(&r.id()) {
                continue;
            }
            // Known gap: a node added and removed before it ever received the
            // cluster's state may not have heard of its removal by the end of a run.
            if membership.retired.contains(&r.id()) && r.membership().is_unknown() {
                continue;
            }
            if membership.retired.contains(&r.id()) {
                return Err(format!(
                    "replica {} was removed from the cluster but is still running\n{}",
                    r.id(),
                    self.dump()
                ));
            }
            if !membership.is_member(r.id()) {
                continue;
            }
            if r.applied() != first.applied()
                || r.state_machine().map != first.state_machine().map
                || r.state_machine().count != first.state_machine().count
                || r.membership() != &membership
            {
                return Err(format!(
                    "replicas did not converge: replica {} applied {} ({} cmds, {:?}), replica {} applied {} ({} cmds, {:?})",
                    first.id(),
                    first.applied(),
                    first.state_machine().count,
                    first.membership(),
                    r.id(),
                    r.applied(),
                    r.state_machine().count,
                    r.membership()
                ));
            }
        }
        check_kv_linearizable(&self.history).map_err(|e| format!("not linearizable: {e}"))?;
        let recovered = self.recovered_at.unwrap_or(0);
        Ok(SimStats {
            recovery_us: recovered.saturating_sub(self.healed_at.unwrap_or(0)),
            ops: self.history.len(),
            completed: self.history.iter().filter(|o| o.ret.is_some()).count(),
            applied: obs.reference.len(),
            events: self.events,
            changes: self.changes,
        })
    }
}
