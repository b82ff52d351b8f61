//! Client requests: proposals and linearizable reads, checked against the sessions
//! and routed to the leader (queued here when leading, forwarded when following).

use std::time::Duration;

use super::forwarded::Request;
use super::{Output, Replica, Role};
use crate::ballot::{Ballot, ClientId, NodeId};
use crate::error::ClientError;
use crate::message::{Command, Entry, Message};
use crate::session::SessionCheck;
use crate::state_machine::StateMachine;

/// Most forwarded proposals a follower holds while it knows no leader; more are
/// dropped (their clients retry).
const MAX_HELD_FORWARDS: usize = 4096;

impl<S: StateMachine> Replica<S> {
    /// Submits a client command. The answer comes as [`Output::Reply`] from
    /// this replica (possibly after forwarding to the leader), or not at all if
    /// the command is lost; the client then retries with the same `seq`.
    pub fn propose(&mut self, command: Command<S::Command>, now: Duration) {
        self.propose_batch(std::iter::once(command), now);
    }

    /// Submits several client commands in one step, as if each were given to
    /// [`propose`](Self::propose), except that they leave together: a leader puts
    /// them in one slot (up to `max_batch` each) with one persist batch, and a
    /// follower forwards them in one message. Drivers that receive proposals in
    /// bursts should hand over each burst whole: per slot, not per command, is
    /// where the messages, records and syncs of consensus are paid.
    pub fn propose_batch(
        &mut self,
        commands: impl IntoIterator<Item = Command<S::Command>>,
        now: Duration,
    ) {
        self.begin(now);
        let mut forward = Vec::new();
        for command in commands {
            self.take_proposal(command, &mut forward);
        }
        self.forward(forward);
        self.finish();
    }

    /// Checks one proposal against the sessions and the pending commands, then
    /// queues it (leading), adds it to `forward` (following a known leader) or
    /// answers it.
    fn take_proposal(
        &mut self,
        command: Command<S::Command>,
        forward: &mut Vec<Entry<S::Command>>,
    ) {
        let (client, seq) = (command.client, command.seq);
        match self.sessions.check(client, seq) {
            SessionCheck::Duplicate(out) => {
                let out = out.clone();
                self.reply(client, seq, Ok(out));
            }
            SessionCheck::Stale => self.reply(client, seq, Err(ClientError::Stale)),
            SessionCheck::New => {
                let leading = match &self.role {
                    Role::Leader(l) => Some(l.ballot),
                    _ => None,
                };
                if leading.is_some() && self.waiting.get(&(client, seq)) == Some(&leading) {
                    // A retry of a command this leader already queued or proposed
                    // under its current ballot: that one stays in its pipeline
                    // (retransmitted until chosen, or the ballot changes), and its
                    // reply answers the retry. Proposing it again would only put a
                    // duplicate in the log.
                    return;
                }
                // A new sequence number supersedes the client's older ones.
                let older: Vec<_> = self
                    .waiting
                    .range((client, 0)..(client, seq))
                    .map(|(k, _)| *k)
                    .collect();
                for k in older {
                    self.waiting.remove(&k);
                }
                self.waiting.insert((client, seq), leading);
                if let Err(e) = self.route(Entry::Command(command), forward) {
                    self.waiting.remove(&(client, seq));
                    self.reply(client, seq, Err(e));
                }
            }
        }
    }

    /// Submits a linearizable read. A leader holding a lease answers without a
    /// log write; otherwise a read marker goes through the log. The answer
    /// comes as [`Output::ReadReply`].
    pub fn read(&mut self, client: ClientId, id: u64, query: S::Query, now: Duration) {
        self.begin(now);
        #[cfg(feature = "planted-bugs")]
        if self.config.planted.local_reads {
            let out = self.sm.query(&query);
            self.outputs.push_back(Output::ReadReply {
                client,
                id,
                result: Ok(out),
            });
            self.finish();
            return;
        }
        if let Some(index) = self.lease_read_index() {
            if self.applied >= index {
                let out = self.sm.query(&query);
                self.outputs.push_back(Output::ReadReply {
                    client,
                    id,
                    result: Ok(out),
                });
            } else {
                self.lease_reads.push((index, client, id, query));
            }
        } else {
            // A client has one read outstanding: a newer id supersedes older ones.
            let older: Vec<_> = self
                .pending_reads
                .range((client, 0)..(client, id))
                .map(|(k, _)| *k)
                .collect();
            for k in older {
                self.pending_reads.remove(&k);
            }
            self.pending_reads.insert((client, id), query);
            let marker = Entry::Read {
                origin: self.id,
                client,
                id,
            };
            let mut forward = Vec::new();
            let routed = self.route(marker, &mut forward);
            self.forward(forward);
            if let Err(e) = routed {
                self.pending_reads.remove(&(client, id));
                self.outputs.push_back(Output::ReadReply {
                    client,
                    id,
                    result: Err(e),
                });
            }
        }
        self.finish();
    }

    /// Routes an entry: queue it if leading, forward it to the leader, or fail.
    /// Where a new entry goes: a leader (or candidate) queues it for a slot; a
    /// follower that knows the leader adds it to `forward`, to be sent with the
    /// others of this step in one message; otherwise it is refused.
    pub(super) fn route(
        &mut self,
        entry: Entry<S::Command>,
        forward: &mut Vec<Entry<S::Command>>,
    ) -> Result<(), ClientError> {
        if self.removed || self.membership.retired.contains(&self.id) {
            // A removed replica's messages are ignored by the others: refuse at once,
            // so that the client asks another replica instead of timing out.
            return Err(ClientError::NotLeader { hint: None });
        }
        match &self.role {
            Role::Leader(_) | Role::Candidate(_) => {
                self.queue.push_back(entry);
                Ok(())
            }
            Role::Follower => match self.leader {
                Some((l, _)) if l != self.id => {
                    forward.push(entry);
                    Ok(())
                }
                _ => Err(ClientError::NotLeader { hint: None }),
            },
        }
    }

    /// Answers queued entries "not the leader" (a leader stepping down with no
    /// successor to hand them to).
    pub(super) fn refuse_queued(&mut self) {
        for entry in std::mem::take(&mut self.queue) {
            match entry {
                Entry::Command(c) => {
                    self.waiting.remove(&(c.client, c.seq));
                    self.reply(c.client, c.seq, Err(ClientError::NotLeader { hint: None }));
                }
                Entry::Read { client, id, .. }
                    if self.pending_reads.remove(&(client, id)).is_some() =>
                {
                    self.outputs.push_back(Output::ReadReply {
                        client,
                        id,
                        result: Err(ClientError::NotLeader { hint: None }),
                    });
                }
                _ => {}
            }
        }
    }

    /// Sends every queued entry to `to` in one message (a successor, or the leader a
    /// follower held them for).
    pub(super) fn forward_queue(&mut self, to: NodeId) {
        if !self.queue.is_empty() {
            let entries: Vec<_> = self.queue.drain(..).collect();
            self.send_forward(to, entries);
        }
    }

    /// Sends the entries [`route`](Self::route) set aside to the leader, in one message.
    fn forward(&mut self, entries: Vec<Entry<S::Command>>) {
        if !entries.is_empty()
            && let Some((l, _)) = self.leader
        {
            self.send_forward(l, entries);
        }
    }

    /// Sends `entries` to `to`, the leader (or the successor of this one), and
    /// remembers those of this replica's own clients, so that they can be sent again
    /// if that leader is lost before it answers (see [`Forwarded`](super::Forwarded)).
    pub(super) fn send_forward(&mut self, to: NodeId, entries: Vec<Entry<S::Command>>) {
        let ballot = self.leader.map_or(self.promised, |(_, b)| b);
        for entry in &entries {
            if let Some(request) = Request::of(entry)
                && self.awaits(request)
            {
                self.forwarded.record(request, ballot, entry);
            }
        }
        // Sweep the answered ones out as the record grows; amortised over the
        // records added since the last sweep.
        if self.forwarded.len() > 2 * (self.waiting.len() + self.pending_reads.len()) + 1024 {
            self.sweep_forwarded();
        }
        self.send(to, Message::Forward { entries });
    }

    /// Whether this replica still owes a client the answer to `request`.
    fn awaits(&self, request: Request) -> bool {
        match request {
            Request::Command(client, seq) => self.waiting.contains_key(&(client, seq)),
            Request::Read(client, id) => self.pending_reads.contains_key(&(client, id)),
        }
    }

    fn sweep_forwarded(&mut self) {
        let mut forwarded = std::mem::take(&mut self.forwarded);
        forwarded.sweep(|request| self.awaits(*request));
        self.forwarded = forwarded;
    }

    /// `leader` leads under `ballot`, newer than the leader this replica last
    /// forwarded to: whatever went to an older leader and is still unanswered may
    /// have died with it, so it goes to this one (once). A duplicate of an entry
    /// that was chosen after all is applied once.
    pub(super) fn reforward(&mut self, leader: NodeId, ballot: Ballot) {
        if self.forwarded.len() == 0 {
            return;
        }
        self.sweep_forwarded();
        let entries = self.forwarded.take_older_than(ballot);
        if entries.is_empty() {
            return;
        }
        if leader == self.id {
            self.queue.extend(entries);
        } else {
            self.send(leader, Message::Forward { entries });
        }
    }

    pub(super) fn on_forward(&mut self, mut entries: Vec<Entry<S::Command>>) {
        if matches!(self.role, Role::Follower) {
            // Not leading (any more): pass them on to the leader, or, during an
            // election (a leadership handover above all), hold them until a leader
            // is heard from. Dropped, each would cost its client a timeout.
            match self.leader {
                Some((l, _)) if l != self.id && !self.membership.retired.contains(&l) => {
                    self.send(l, Message::Forward { entries })
                }
                // A removed replica never learns of a new leader: a voter will.
                _ if self.membership.retired.contains(&self.id) => {
                    if let Some(&v) = self.membership.voters.iter().find(|v| **v != self.id) {
                        self.send(v, Message::Forward { entries });
                    }
                }
                // No leader, or one known to be removed: hold them.
                _ => {
                    let room = MAX_HELD_FORWARDS.saturating_sub(self.queue.len());
                    self.queue.extend(entries.into_iter().take(room));
                }
            }
            return;
        }
        // A command already applied needs no slot: its own replica answered it (or
        // will, when it applies the slot). Forwarded again after a leader change, it
        // would only be a duplicate in the log.
        entries.retain(|entry| match entry {
            Entry::Command(c) => matches!(self.sessions.check(c.client, c.seq), SessionCheck::New),
            _ => true,
        });
        self.queue.extend(entries);
    }
}
