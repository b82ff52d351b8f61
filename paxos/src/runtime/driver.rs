//! The driver task: owns the replica, feeds it [`Input`]s and carries out its outputs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::clock::Clock;
use super::events::{Input, Reply};
use super::membership::ClusterView;
use super::metrics::MetricsCell;
use super::network::Network;
use super::storage_thread::Batch;
use crate::ballot::{ClientId, NodeId};
use crate::membership::{Membership, MembershipError};
use crate::message::Command;
use crate::replica::{MessageOf, Output, Replica};
use crate::state_machine::StateMachine;

/// Most inputs handled before the replica's outputs are flushed.
const MAX_DRAIN: usize = 4096;

/// Owns the replica; [`Driver::run`] is its task.
pub(super) struct Driver<S: StateMachine, N> {
    replica: Replica<S>,
    network: N,
    persist: std::sync::mpsc::Sender<Batch<S>>,
    clock: Arc<dyn Clock>,
    waiting: HashMap<(ClientId, u64), (Instant, Reply<S>)>,
    reads: HashMap<(ClientId, u64), Reply<S>>,
    /// Proposals taken from the inbox since the last flush, handed to the replica
    /// together so that one drain of the inbox becomes one slot.
    proposals: Vec<Command<S::Command>>,
    metrics: Arc<MetricsCell>,
    last_leader: Option<NodeId>,
    /// Membership changes submitted here, by request id, awaiting their answer.
    changes: HashMap<u64, ChangeReply>,
    next_change: u64,
    /// The membership the network was last told about.
    membership: Membership,
}

type ChangeReply = tokio::sync::oneshot::Sender<Result<Membership, MembershipError>>;

impl<S, N> Driver<S, N>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
    N: Network<MessageOf<S>>,
{
    /// A driver for `replica`; `persist` feeds the storage thread.
    pub(super) fn new(
        replica: Replica<S>,
        network: N,
        persist: std::sync::mpsc::Sender<Batch<S>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<MetricsCell>,
    ) -> Self {
        Driver {
            replica,
            network,
            persist,
            clock,
            waiting: HashMap::new(),
            reads: HashMap::new(),
            proposals: Vec::new(),
            metrics,
            last_leader: None,
            changes: HashMap::new(),
            // Random, so that a change submitted before a restart is not mistaken
            // for one submitted after it.
            next_change: rand::random::<u64>() >> 1,
            membership: Membership::default(),
        }
    }

    /// Feeds the replica inputs and ticks until the inbox closes or storage fails.
    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<Input<S>>, tick: Duration) {
        self.tell_network_membership();
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                input = inbox.recv() => {
                    let Some(input) = input else { return };
                    if !self.handle_input(input) {
                        return;
                    }
                    // Drain what else is queued before flushing outputs: batching. Bounded
                    // so that replies and heartbeats are not held back by a flood.
                    let mut taken = 1;
                    while taken < MAX_DRAIN {
                        let Ok(input) = inbox.try_recv() else { break };
                        if !self.handle_input(input) {
                            return;
                        }
                        taken += 1;
                    }
                    self.propose_taken();
                }
                _ = ticker.tick() => {
                    let now = self.now();
                    self.replica.tick(now);
                }
            }
            self.flush();
            if self.replica.is_removed() {
                // A quorum of the new voters confirmed this replica's removal.
                tracing::info!(
                    replica = self.replica.id(),
                    "removed from the cluster; stopping"
                );
                return;
            }
        }
    }

    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Feeds one input to the replica; false when the driver must stop.
    fn handle_input(&mut self, input: Input<S>) -> bool {
        let now = self.now();
        match input {
            Input::Message(from, message) => self.replica.handle_message(from, message, now),
            Input::Propose(command, reply) => {
                let key = (command.client, command.seq);
                self.waiting.insert(key, (Instant::now(), reply));
                self.proposals.push(command);
            }
            Input::Read(client, id, query, reply) => {
                self.reads.insert((client, id), reply);
                self.replica.read(client, id, query, now);
            }
            Input::ReadLocal(query, reply) => {
                let _ = reply.send(self.replica.state_machine().query(&query));
            }
            Input::ChangeMembership(change, reply) => {
                let id = self.next_change;
                self.next_change = self.next_change.wrapping_add(1);
                self.changes.insert(id, reply);
                self.replica.change_membership(id, change, now);
            }
            Input::TransferLeadership(target, reply) => {
                let _ = reply.send(self.replica.transfer_leadership(target, now));
            }
            Input::View(reply) => {
                let _ = reply.send(ClusterView {
                    id: self.replica.id(),
                    membership: self.replica.membership().clone(),
                    leader: self.replica.leader_hint(),
                    decided: self.replica.decided(),
                    progress: self.replica.member_progress().unwrap_or_default(),
                });
            }
            Input::Persisted(token) => self.replica.persisted(token, now),
            Input::StorageFailed(e) => {
                // Continuing would acknowledge records that are not durable.
                tracing::error!(replica = self.replica.id(), "storage failed, stopping: {e}");
                return false;
            }
        }
        // Outputs are not flushed here but once the inbox is drained (see `run`): a burst
        // of proposals then leaves as one batch of Accepts (one network frame per peer and
        // one group commit), instead of one per input.
        true
    }

    /// Hands the proposals taken since the last call to the replica in one batch.
    fn propose_taken(&mut self) {
        if !self.proposals.is_empty() {
            let now = self.now();
            self.replica.propose_batch(self.proposals.drain(..), now);
        }
    }

    /// Drains the replica's outputs and carries each out, then updates the metrics.
    fn flush(&mut self) {
        while let Some(output) = self.replica.poll_output() {
            match output {
                Output::Send { to, message } => self.network.send(to, message),
                Output::Persist { token, records } => {
                    let _ = self.persist.send((token, records));
                }
                Output::Reply {
                    client,
                    seq,
                    result,
                } => {
                    if let Some((started, reply)) = self.waiting.remove(&(client, seq)) {
                        if result.is_ok() {
                            self.metrics.record_latency(started.elapsed());
                        }
                        let _ = reply.send(result);
                    }
                }
                Output::ReadReply { client, id, result } => {
                    if let Some(reply) = self.reads.remove(&(client, id)) {
                        let _ = reply.send(result);
                    }
                }
                Output::MembershipReply { id, result } => {
                    if let Some(reply) = self.changes.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        // Forget callers that gave up (their receiver is gone).
        if self.waiting.len() > 4096 {
            self.waiting.retain(|_, (_, reply)| !reply.is_closed());
            self.reads.retain(|_, reply| !reply.is_closed());
        }
        self.changes.retain(|_, reply| !reply.is_closed());
        if self.replica.membership() != &self.membership {
            self.tell_network_membership();
        }
        self.update_metrics();
    }

    /// Hands the membership in force to the network, which may learn new members'
    /// addresses from it.
    fn tell_network_membership(&mut self) {
        self.membership = self.replica.membership().clone();
        self.network.membership_changed(&self.membership);
    }

    /// Publishes the replica's leadership and log positions to [`MetricsCell`].
    fn update_metrics(&mut self) {
        let leader = self.replica.leader_hint();
        let changed = leader.is_some() && leader != self.last_leader;
        if changed {
            self.last_leader = leader;
        }
        let r = &self.replica;
        self.metrics.update(|m| {
            m.is_leader = r.is_leader();
            m.leader = leader;
            m.ballot = r.promised();
            m.leader_changes += u64::from(changed);
            m.decided = r.decided();
            m.applied = r.applied();
            m.snapshot_slot = r.snapshot_slot();
            m.log_len = r.decided().saturating_sub(r.snapshot_slot());
        });
    }
}
