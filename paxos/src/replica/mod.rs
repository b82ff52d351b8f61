//! The sans-IO replica: acceptor, leader and learner in one state machine.
//!
//! Inputs: [`Replica::handle_message`], [`Replica::tick`], [`Replica::propose`],
//! [`Replica::read`], [`Replica::persisted`]. Every input takes the caller's
//! current time. Outputs are drained with [`Replica::poll_output`].
//!
//! # Layout
//!
//! * `mod.rs`: the [`Replica`] itself, its inputs and queries, and the step
//!   bookkeeping shared by the roles (sending, holding messages until their
//!   records are durable).
//! * `output.rs`: [`Output`], what the driver must do, and type shorthands.
//! * `requests.rs`: client proposals and reads, and routing them to the leader.
//! * `acceptor.rs`, `leader.rs`, `learner.rs`: the three Paxos roles (promise and
//!   accept; elections, phase 2, heartbeats and leases; commit, catch-up, apply and
//!   snapshots).
//! * `slot_log.rs`: the slot log in memory (what must survive a crash goes to
//!   [`storage`](crate::storage) instead).

mod acceptor;
mod forwarded;
mod leader;
mod learner;
mod members;
mod output;
mod requests;
mod slot_log;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ballot::{Ballot, ClientId, NodeId, Slot};
use crate::config::Config;
use crate::error::{ClientError, ConfigError, RestoreError};
use crate::membership::Membership;
use crate::message::{Entry, Message, Snapshot};
use crate::session::Sessions;
use crate::state_machine::StateMachine;

use forwarded::Forwarded;
pub(crate) use leader::{Candidate, Leader};
pub use output::{DurableStateOf, MessageOf, Output, OutputOf, PersistToken, RecordOf};
use slot_log::SlotLog;

/// A message with its destination.
type Addressed<S> = (NodeId, MessageOf<S>);

/// Current role of the replica.
#[derive(Debug)]
pub(crate) enum Role<C> {
    Follower,
    Candidate(Candidate<C>),
    Leader(Leader<C>),
}

/// A Multi-Paxos replica over state machine `S`. See the crate docs.
pub struct Replica<S: StateMachine> {
    id: NodeId,
    config: Config,
    sm: S,
    sessions: Sessions<S::Output>,
    /// The membership in force after `applied`.
    membership: Membership,
    /// This replica learned that it was removed from the cluster: it ignores
    /// every input from then on.
    removed: bool,
    /// Membership changes submitted here, by request id, awaiting their slot.
    pending_changes: BTreeSet<u64>,
    /// Members that told this (removed) replica it was removed.
    removal_notices: BTreeSet<NodeId>,
    /// The replica this one last heard from: whom a joining node that knows no
    /// member yet asks for the log.
    last_sender: Option<NodeId>,
    log: SlotLog<S::Command>,
    applied: Slot,
    snapshot: Option<Snapshot<S::Output>>,
    promised: Ballot,
    max_round: u64,
    role: Role<S::Command>,
    /// The leader this replica follows and when it last heard from it.
    leader: Option<(NodeId, Ballot)>,
    last_heard: Option<Duration>,
    /// A pre-vote in progress: its ballot and the replicas that granted it.
    prevote: Option<(Ballot, BTreeSet<NodeId>)>,
    election_deadline: Duration,
    started_at: Duration,
    now: Duration,
    rng: ChaCha8Rng,
    /// Highest commit index heard of.
    commit_hint: Slot,
    last_catchup: Option<Duration>,
    /// Entries waiting to be proposed (leader or candidate).
    queue: VecDeque<Entry<S::Command>>,
    /// Commands submitted here whose reply is pending, with the ballot under
    /// which this replica queued them as leader (`None`: queued as candidate, or
    /// forwarded). A retry is proposed again unless that ballot is still leading.
    waiting: BTreeMap<(ClientId, u64), Option<Ballot>>,
    /// Reads submitted here, waiting for their marker to be applied.
    pending_reads: BTreeMap<(ClientId, u64), S::Query>,
    /// Entries of this replica's own clients that it forwarded to a leader, with that
    /// leader's ballot: sent again, once, to the next leader if that one was lost.
    forwarded: Forwarded<S::Command>,
    /// Lease reads waiting for `applied >= index`.
    lease_reads: Vec<(Slot, ClientId, u64, S::Query)>,
    // I/O plumbing.
    outputs: VecDeque<OutputOf<S>>,
    inbox: VecDeque<MessageOf<S>>,
    pending_records: Vec<RecordOf<S>>,
    step_held: Vec<Addressed<S>>,
    held: VecDeque<(PersistToken, Vec<Addressed<S>>)>,
    next_token: PersistToken,
}

impl<S: StateMachine> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("promised", &self.promised)
            .field("role", &self.role_name())
            .field("decided", &self.log.decided)
            .field("applied", &self.applied)
            .finish()
    }
}

impl<S: StateMachine> Replica<S> {
    /// Creates a replica from its durable state (empty for a new replica).
    /// `state_machine` must be in its initial state; it is restored from the
    /// snapshot in `durable`, if any. `now` is the caller's clock.
    ///
    /// A restarted replica refuses to promise any other replica for one
    /// election timeout after `now`, because it may have acknowledged a
    /// leader's lease before crashing.
    pub fn new(
        config: Config,
        mut state_machine: S,
        durable: DurableStateOf<S>,
        now: Duration,
    ) -> Result<Self, ReplicaError> {
        config.validate()?;
        let mut sessions = Sessions::new();
        let mut start = 0;
        let mut membership = Membership::with_voters(config.members.iter().copied());
        if let Some(snap) = &durable.snapshot {
            state_machine.restore(&snap.state)?;
            sessions = Sessions::from_list(snap.sessions.clone());
            start = snap.slot;
            if !snap.membership.is_unknown() {
                membership = snap.membership.clone();
            }
        }
        let mut log = SlotLog::new(start);
        let mut promised = durable.promised;
        for (slot, (ballot, value)) in durable.accepted {
            promised = promised.max(ballot);
            log.accept(slot, ballot, value);
        }
        let rng =
            ChaCha8Rng::seed_from_u64(config.seed ^ config.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut r = Replica {
            id: config.id,
            sm: state_machine,
            sessions,
            membership,
            // Even a replica that applied its own removal before a restart starts
            // as a passive acceptor: it stops only once a quorum of the new voters
            // confirms they have the change, and that may not have happened yet.
            removed: false,
            pending_changes: BTreeSet::new(),
            last_sender: None,
            removal_notices: BTreeSet::new(),
            log,
            applied: start,
            snapshot: durable.snapshot,
            promised,
            max_round: promised.round,
            role: Role::Follower,
            leader: None,
            last_heard: None,
            prevote: None,
            election_deadline: now,
            started_at: now,
            now,
            rng,
            commit_hint: start,
            last_catchup: None,
            queue: VecDeque::new(),
            waiting: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
            forwarded: Forwarded::default(),
            lease_reads: Vec::new(),
            outputs: VecDeque::new(),
            inbox: VecDeque::new(),
            pending_records: Vec::new(),
            step_held: Vec::new(),
            held: VecDeque::new(),
            next_token: 1,
            config,
        };
        r.reset_election_timer();
        Ok(r)
    }

    // ----- public inputs -------------------------------------------------

    /// Handles a message from replica `from`. Nonsensical messages are ignored.
    /// A removed (retired) node is told so, and apart from catch-up requests (which
    /// let it learn of its removal), a leadership handover and forwarded client
    /// proposals (a removed leader's backlog) its messages are ignored. A node not yet
    /// in the membership known here is heard: it may have been added in slots this
    /// replica has not learned yet.
    pub fn handle_message(&mut self, from: NodeId, message: MessageOf<S>, now: Duration) {
        if self.removed {
            return;
        }
        self.begin(now);
        if from != self.id && message.is_well_formed() {
            let heard = !self.membership.retired.contains(&from)
                || matches!(
                    message,
                    Message::CatchUpRequest { .. }
                        | Message::TimeoutNow { .. }
                        | Message::Forward { .. }
                );
            if heard {
                self.last_sender = Some(from);
                if self.membership.retired.contains(&from) {
                    // Only once the membership that retired it is durable here.
                    self.send_durable(from, Message::Removed);
                }
                self.dispatch(from, message);
            } else if !matches!(message, Message::Removed) {
                self.send_durable(from, Message::Removed);
            }
        }
        self.finish();
    }

    /// Advances time: elections, heartbeats, retransmissions, catch-up.
    pub fn tick(&mut self, now: Duration) {
        if self.removed {
            return;
        }
        self.begin(now);
        self.on_tick();
        self.finish();
    }

    /// Reports that every [`Output::Persist`] batch up to `token` is durable.
    /// Releases the promises and acknowledgements that waited for it.
    /// Tokens belong to this `Replica` value: after a restart (a new
    /// `Replica`), completions of the old instance's batches must be dropped.
    pub fn persisted(&mut self, token: PersistToken, now: Duration) {
        self.begin(now);
        while self.held.front().is_some_and(|(t, _)| *t <= token) {
            if let Some((_, msgs)) = self.held.pop_front() {
                for (to, m) in msgs {
                    self.send(to, m);
                }
            }
        }
        self.finish();
    }

    /// Takes the next output, if any. Call until it returns `None` after each input.
    pub fn poll_output(&mut self) -> Option<OutputOf<S>> {
        self.outputs.pop_front()
    }

    // ----- observation ----------------------------------------------------

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether this replica is the leader (phase 1 complete).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// The leader this replica believes in, if any.
    pub fn leader_hint(&self) -> Option<NodeId> {
        if self.is_leader() {
            Some(self.id)
        } else {
            self.leader.map(|(n, _)| n)
        }
    }

    /// The highest promised ballot.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// All slots up to this one are known chosen here.
    pub fn decided(&self) -> Slot {
        self.log.decided
    }

    /// All slots up to this one are applied to the state machine.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The slot of the latest snapshot (0 if none).
    pub fn snapshot_slot(&self) -> Slot {
        self.log.start
    }

    /// The value chosen at `slot`, if this replica knows it and has not
    /// truncated it behind a snapshot (for inspection and testing).
    pub fn chosen_value(&self, slot: Slot) -> Option<&crate::message::Value<S::Command>> {
        self.log.get(slot).filter(|e| e.chosen).map(|e| &e.value)
    }

    /// The state machine (read-only).
    pub fn state_machine(&self) -> &S {
        &self.sm
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The membership in force after the last applied slot.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether this replica was removed from the cluster and has stopped: a quorum
    /// of the new voters confirmed they applied the removal. A stopped replica
    /// ignores every input; its driver should shut it down. (Between applying its
    /// removal and this, a replica only answers as a passive acceptor.)
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    fn role_name(&self) -> &'static str {
        match self.role {
            Role::Follower => "follower",
            Role::Candidate(_) => "candidate",
            Role::Leader(_) => "leader",
        }
    }

    // ----- plumbing --------------------------------------------------------

    fn begin(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// Processes self-addressed messages, then groups this step's records into
    /// one persist batch and withholds the messages that depend on it.
    fn finish(&mut self) {
        loop {
            while let Some(m) = self.inbox.pop_front() {
                self.dispatch(self.id, m);
            }
            self.after_step();
            if self.inbox.is_empty() {
                break;
            }
        }
        if !self.pending_records.is_empty() {
            let token = self.next_token;
            self.next_token += 1;
            let records = std::mem::take(&mut self.pending_records);
            self.outputs.push_back(Output::Persist { token, records });
            let msgs = std::mem::take(&mut self.step_held);
            self.held.push_back((token, msgs));
        } else if !self.step_held.is_empty() {
            let msgs = std::mem::take(&mut self.step_held);
            match self.held.back_mut() {
                // Earlier records are not durable yet: wait for them too.
                Some((_, v)) => v.extend(msgs),
                None => {
                    for (to, m) in msgs {
                        self.send(to, m);
                    }
                    // Self-addressed messages released here are handled now.
                    if !self.inbox.is_empty() {
                        self.finish();
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, from: NodeId, m: MessageOf<S>) {
        match m {
            Message::PreVote { ballot } => self.on_prevote(from, ballot),
            Message::TimeoutNow { ballot } => self.on_timeout_now(from, ballot),
            Message::Removed => self.on_removed_notice(from),
            Message::PreVoteGranted { ballot } => self.on_prevote_granted(from, ballot),
            Message::Prepare {
                ballot,
                from: slot,
                handover,
            } => self.on_prepare(from, ballot, slot, handover),
            Message::Promise {
                ballot,
                entries,
                snapshot_slot,
            } => self.on_promise(from, ballot, entries, snapshot_slot),
            Message::Nack { ballot } => self.on_nack(ballot),
            Message::Accept {
                ballot,
                slot,
                value,
                commit,
            } => self.on_accept(from, ballot, slot, value, commit),
            Message::Accepted { ballot, slot } => self.on_accepted(from, ballot, slot),
            Message::Heartbeat {
                ballot,
                round,
                commit,
            } => self.on_heartbeat(from, ballot, round, commit),
            Message::HeartbeatAck {
                ballot,
                round,
                decided,
            } => self.on_heartbeat_ack(from, ballot, round, decided),
            Message::Commit { ballot, commit } => self.on_commit(from, ballot, commit),
            Message::Forward { entries } => self.on_forward(entries),
            Message::CatchUpRequest { from: slot } => self.on_catchup_request(from, slot),
            Message::CatchUp { entries } => self.on_catchup(entries),
            Message::InstallSnapshot { snapshot } => self.on_install_snapshot(snapshot),
        }
    }

    /// Sends a message (to self: queued for local handling).
    fn send(&mut self, to: NodeId, message: MessageOf<S>) {
        if to == self.id {
            self.inbox.push_back(message);
        } else {
            self.outputs.push_back(Output::Send { to, message });
        }
    }

    /// Sends a message only after this step's records (and all earlier ones)
    /// are durable: the API-level guarantee that no promise or accepted
    /// acknowledgement precedes its record.
    fn send_durable(&mut self, to: NodeId, message: MessageOf<S>) {
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.ack_before_persist {
            self.send(to, message);
            return;
        }
        self.step_held.push((to, message));
    }

    fn persist(&mut self, record: RecordOf<S>) {
        self.pending_records.push(record);
    }

    /// Sends to every voter and learner of the membership in force.
    fn broadcast(&mut self, message: MessageOf<S>, include_self: bool) {
        let members: Vec<NodeId> = self.membership.members().collect();
        for m in members {
            if m != self.id || include_self {
                self.send(m, message.clone());
            }
        }
    }

    fn reply(&mut self, client: ClientId, seq: u64, result: Result<S::Output, ClientError>) {
        self.outputs.push_back(Output::Reply {
            client,
            seq,
            result,
        });
    }

    fn random_timeout(&mut self) -> Duration {
        let base = self.config.election_timeout.as_micros() as u64;
        Duration::from_micros(base + self.rng.random_range(0..base.max(1)))
    }

    fn reset_election_timer(&mut self) {
        self.election_deadline = self.now + self.random_timeout();
    }

    fn become_follower(&mut self) {
        if !matches!(self.role, Role::Follower) {
            self.role = Role::Follower;
            match self.leader {
                Some((l, _)) if l != self.id => self.forward_queue(l),
                _ => self.queue.clear(),
            }
        }
        self.reset_election_timer();
    }
}

/// Error creating a replica.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The durable snapshot could not be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

#[cfg(test)]
mod tests;
