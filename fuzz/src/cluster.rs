//! A cluster of three real Paxos replicas (`paxos::Replica`, the sans-IO core every
//! node runs) of the key-value example's state machine, driven one step at a time by a
//! fuzz input: the `paxos_replica` target's harness, and the seed generator's way to
//! record real messages to replay.
//!
//! The replicas talk to each other through an in-memory network that delivers every
//! message until the cluster is quiet, and persist into memory at once, so an input of a
//! few ticks elects a leader and decides proposals as a real cluster does. (A message of
//! the input's own may keep them busy for good; see [`MAX_DELIVERIES`].) The input also
//! delivers messages of its own, decoded as `transport::paxos_network` decodes a batch
//! from a peer, to any replica and as if from any sender: a member, the receiver
//! itself, a stranger. Other steps cut replicas off, restart them from what they
//! persisted, propose, read, change the membership and hand the leadership over.
//!
//! A step is `[op][arguments...]` (see [`Step`]); [`step`] writes each kind.
//!
//! After every step each replica is checked: what it sends is well formed and addressed
//! to another replica, its persist tokens count up by one, its decided and applied slots
//! never go back, and a value it once reported chosen at a slot stays the one it
//! reports there. When no step delivered an input's own message, the replicas agree on
//! every slot any two of them know chosen.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use paxos::{
    Command, Config, MemStorage, MembershipChange, MessageOf, NodeId, Output, OutputOf, Replica,
    Slot, Storage, Value,
};
use transport::fuzzing::{encode_frame, read_frame};
use transport::paxos_network::PAXOS_MAX_FRAME;

use crate::kv::{Kv, KvCommand, KvOutput, KvQuery};

/// Replicas in the cluster, with ids `1..=REPLICAS`.
pub const REPLICAS: u64 = 3;

/// Most messages delivered in one step. A step of a correct cluster delivers a few
/// dozen, and the cluster is quiet again. A message of the input's own may set it to
/// work for good (a leader filling the slots up to one far ahead with no-ops, a
/// pipeline at a time): then the rest is lost, as a network may lose it.
pub const MAX_DELIVERIES: usize = 5_000;

/// What a step does, from its first byte (`op % 8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `[0][ms]`: time passes, `ms + 1` milliseconds, and every replica ticks.
    Tick,
    /// `[1][to][from][frame body...]`: the body, decoded as a batch of messages as the
    /// Paxos network decodes one, is delivered to replica `to % 3 + 1` as if sent by
    /// `from` (`from % 6`: 0, a member, or a stranger; 255: `u64::MAX`).
    Deliver,
    /// `[2][at][client][seq][key][value...]`: a client proposes a put at replica `at`.
    Propose,
    /// `[3][at][client][id][key]`: a client reads a key at replica `at`.
    Read,
    /// `[4][cut]`: the replicas whose bit is set in `cut` (bit 0 is replica 1) are cut
    /// off from the others: the messages between the two sides are lost.
    Partition,
    /// `[5][at]`: replica `at` crashes and restarts from what it persisted.
    Restart,
    /// `[6][at][kind][node]`: replica `at` is asked for a membership change: `kind % 3`
    /// adds `node` as a learner, makes the voters those of bits of `node`, or removes the
    /// learner `node`.
    Change,
    /// `[7][at][to]`: replica `at` is asked to hand its leadership to `to` (0: to the
    /// most up-to-date voter).
    Transfer,
}

impl Step {
    /// The step an op byte names.
    pub fn of(op: u8) -> Step {
        match op % 8 {
            0 => Step::Tick,
            1 => Step::Deliver,
            2 => Step::Propose,
            3 => Step::Read,
            4 => Step::Partition,
            5 => Step::Restart,
            6 => Step::Change,
            _ => Step::Transfer,
        }
    }
}

/// What the cluster remembers of one replica to check the next step against.
#[derive(Debug, Default)]
struct Seen {
    decided: Slot,
    applied: Slot,
    next_token: u64,
    /// Values the replica reported chosen, by slot.
    chosen: BTreeMap<Slot, Value<KvCommand>>,
}

/// The cluster. See the module documentation.
pub struct Cluster {
    replicas: Vec<Replica<Kv>>,
    stores: Vec<MemStorage<KvCommand, KvOutput>>,
    seen: Vec<Seen>,
    now: Duration,
    net: VecDeque<(NodeId, NodeId, MessageOf<Kv>)>,
    /// Replicas cut off from the others.
    cut: BTreeSet<NodeId>,
    /// Whether a step delivered a message of the input's own.
    foreign: bool,
    next_request: u64,
    /// Every message the replicas sent, when recording.
    sent: Option<Vec<(NodeId, NodeId, MessageOf<Kv>)>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

impl Cluster {
    /// A new cluster: three replicas that have not met yet.
    pub fn new() -> Self {
        let stores: Vec<_> = (0..REPLICAS).map(|_| MemStorage::new()).collect();
        let replicas = (1..=REPLICAS)
            .map(|id| replica(id, &stores[index(id)], Duration::ZERO))
            .collect();
        Cluster {
            replicas,
            stores,
            seen: (0..REPLICAS)
                .map(|_| Seen {
                    next_token: 1,
                    ..Seen::default()
                })
                .collect(),
            now: Duration::ZERO,
            net: VecDeque::new(),
            cut: BTreeSet::new(),
            foreign: false,
            next_request: 1,
            sent: None,
        }
    }

    /// The same cluster, recording every message its replicas send (see [`Self::sent`]).
    pub fn recording(mut self) -> Self {
        self.sent = Some(Vec::new());
        self
    }

    /// Every message sent so far, `(from, to, message)`, when recording.
    pub fn sent(&self) -> &[(NodeId, NodeId, MessageOf<Kv>)] {
        self.sent.as_deref().unwrap_or_default()
    }

    /// The replica with id `id`.
    pub fn replica(&self, id: NodeId) -> &Replica<Kv> {
        &self.replicas[index(id)]
    }

    /// Runs one step (see [`Step`]), lets the cluster settle, and checks every replica.
    pub fn step(&mut self, step: &[u8]) {
        let Some((&op, args)) = step.split_first() else {
            return;
        };
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        let now = self.now;
        match Step::of(op) {
            Step::Tick => {
                self.now += Duration::from_millis(u64::from(arg(0)) + 1);
                let now = self.now;
                for r in &mut self.replicas {
                    r.tick(now);
                }
            }
            Step::Deliver => self.deliver_foreign(arg(0), arg(1), args.get(2..).unwrap_or(&[])),
            Step::Propose => {
                let command = Command {
                    client: u64::from(arg(1)),
                    seq: u64::from(arg(2)),
                    op: KvCommand::Put {
                        key: format!("k{}", arg(3)),
                        value: args.get(4..).unwrap_or(&[]).to_vec(),
                    },
                };
                self.at(arg(0)).propose(command, now);
            }
            Step::Read => {
                let query = KvQuery::Get(format!("k{}", arg(3)));
                let (client, id) = (u64::from(arg(1)), u64::from(arg(2)));
                self.at(arg(0)).read(client, id, query, now);
            }
            Step::Partition => {
                self.cut = (1..=REPLICAS)
                    .filter(|id| arg(0) >> (id - 1) & 1 != 0)
                    .collect();
            }
            Step::Restart => self.restart(arg(0)),
            Step::Change => {
                let change = membership_change(arg(1), arg(2));
                let request = self.next_request;
                self.next_request += 1;
                self.at(arg(0)).change_membership(request, change, now);
            }
            Step::Transfer => {
                let to = (arg(1) != 0).then(|| u64::from(arg(1) % 4));
                let _ = self.at(arg(0)).transfer_leadership(to, now);
            }
        }
        self.settle();
    }

    fn at(&mut self, which: u8) -> &mut Replica<Kv> {
        let i = usize::from(which) % self.replicas.len();
        &mut self.replicas[i]
    }

    /// Delivers the batch in `body` (a frame's body) to replica `to` as if from `from`.
    /// A body that does not decode is what the network drops: nothing happens.
    fn deliver_foreign(&mut self, to: u8, from: u8, body: &[u8]) {
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(body);
        let Ok((batch, _)) = read_frame::<Vec<MessageOf<Kv>>>(&frame, PAXOS_MAX_FRAME) else {
            return;
        };
        let from = match from {
            255 => u64::MAX,
            n => u64::from(n % 6),
        };
        let to = u64::from(to) % REPLICAS + 1;
        self.foreign |= !batch.is_empty();
        let now = self.now;
        for message in batch {
            self.replicas[index(to)].handle_message(from, message, now);
        }
    }

    /// Replica `which` crashes and starts again from its storage. Everything it
    /// persisted was accepted by it once, so it must start again.
    fn restart(&mut self, which: u8) {
        let id = u64::from(which) % REPLICAS + 1;
        let i = index(id);
        self.drain(i);
        self.replicas[i] = replica(id, &self.stores[i], self.now);
        // A new replica: it learns again what is chosen, and numbers its batches anew.
        self.seen[i] = Seen {
            next_token: 1,
            ..Seen::default()
        };
    }

    /// Delivers messages, persists batches, until nothing moves; then checks.
    fn settle(&mut self) {
        let mut deliveries = 0;
        loop {
            for i in 0..self.replicas.len() {
                self.drain(i);
            }
            let Some((from, to, message)) = self.net.pop_front() else {
                break;
            };
            deliveries += 1;
            if deliveries > MAX_DELIVERIES {
                assert!(
                    self.foreign,
                    "the cluster did not become quiet in {MAX_DELIVERIES} messages"
                );
                self.net.clear();
                break;
            }
            if self.cut.contains(&from) != self.cut.contains(&to) || !is_replica(to) {
                continue;
            }
            let now = self.now;
            self.replicas[index(to)].handle_message(from, message, now);
        }
        self.check();
    }

    /// Takes replica `i`'s outputs: sends go on the network, persist batches are made
    /// durable at once, answers to clients are checked and dropped.
    fn drain(&mut self, i: usize) {
        let id = self.replicas[i].id();
        while let Some(output) = self.replicas[i].poll_output() {
            self.check_output(i, &output);
            match output {
                Output::Send { to, message } => {
                    if let Some(sent) = &mut self.sent {
                        sent.push((id, to, message.clone()));
                    }
                    self.net.push_back((id, to, message));
                }
                Output::Persist { token, records } => {
                    self.stores[i]
                        .append(&records)
                        .expect("memory storage takes every record");
                    let now = self.now;
                    self.replicas[i].persisted(token, now);
                }
                Output::Reply { .. }
                | Output::ReadReply { .. }
                | Output::MembershipReply { .. } => {}
            }
        }
    }

    fn check_output(&mut self, i: usize, output: &OutputOf<Kv>) {
        let id = self.replicas[i].id();
        match output {
            Output::Send { to, message } => {
                assert_ne!(*to, id, "replica {id} sent itself {message:?}");
                assert!(
                    message.is_well_formed(),
                    "replica {id} sent a malformed message: {message:?}"
                );
                assert!(
                    encode_frame(&vec![message], PAXOS_MAX_FRAME).is_ok(),
                    "replica {id} sent a message the network cannot encode"
                );
            }
            Output::Persist { token, .. } => {
                let seen = &mut self.seen[i];
                assert_eq!(*token, seen.next_token, "replica {id} skipped a token");
                seen.next_token += 1;
            }
            _ => {}
        }
    }

    /// Checks every replica against what it reported before, and the replicas against
    /// each other when only they spoke.
    fn check(&mut self) {
        for (r, seen) in self.replicas.iter().zip(&mut self.seen) {
            let id = r.id();
            assert!(
                r.decided() >= seen.decided,
                "replica {id}'s decided slot went back"
            );
            assert!(
                r.applied() >= seen.applied,
                "replica {id}'s applied slot went back"
            );
            assert!(
                r.applied() <= r.decided(),
                "replica {id} applied an undecided slot"
            );
            let first = seen.decided.max(r.snapshot_slot()) + 1;
            for slot in first..=r.decided() {
                if let Some(value) = r.chosen_value(slot) {
                    seen.chosen.entry(slot).or_insert_with(|| value.clone());
                }
            }
            for (slot, value) in seen.chosen.range(r.snapshot_slot() + 1..) {
                if let Some(now) = r.chosen_value(*slot) {
                    assert_eq!(
                        now, value,
                        "replica {id} changed its chosen value at {slot}"
                    );
                }
            }
            seen.decided = r.decided();
            seen.applied = r.applied();
        }
        if !self.foreign {
            self.check_agreement();
        }
    }

    /// Any two replicas that know a slot chosen know the same value there.
    fn check_agreement(&self) {
        let mut all: BTreeMap<Slot, (NodeId, &Value<KvCommand>)> = BTreeMap::new();
        for (r, seen) in self.replicas.iter().zip(&self.seen) {
            for (slot, value) in &seen.chosen {
                let (other, theirs) = *all.entry(*slot).or_insert((r.id(), value));
                assert_eq!(
                    theirs,
                    value,
                    "replicas {other} and {} chose different values at {slot}",
                    r.id()
                );
            }
        }
    }
}

/// The index of replica `id` in the cluster's vectors.
fn index(id: NodeId) -> usize {
    usize::try_from(id - 1).expect("a replica's index")
}

fn is_replica(id: NodeId) -> bool {
    (1..=REPLICAS).contains(&id)
}

/// Replica `id` started at `now` from what `store` holds. Small timeouts, batches and
/// snapshot intervals, so that a short input elects, batches, snapshots and catches up.
fn replica(id: NodeId, store: &MemStorage<KvCommand, KvOutput>, now: Duration) -> Replica<Kv> {
    let config = Config {
        id,
        members: (1..=REPLICAS).collect(),
        election_timeout: Duration::from_millis(100),
        heartbeat_interval: Duration::from_millis(10),
        lease_duration: Duration::from_millis(80),
        max_clock_drift: Duration::from_millis(10),
        max_batch: 4,
        max_inflight: 4,
        snapshot_log_len: 8,
        session_expiry_slots: 64,
        catchup_batch: 4,
        seed: id,
        ..Config::default()
    };
    let durable = store.load().expect("memory storage loads");
    Replica::new(config, Kv::default(), durable, now)
        .expect("a replica starts again from what it persisted")
}

/// The membership change `kind` names about `node` (see [`Step::Change`]).
fn membership_change(kind: u8, node: u8) -> MembershipChange {
    let id = u64::from(node % 6);
    match kind % 3 {
        0 => MembershipChange::AddLearner {
            id,
            address: format!("node{id}"),
        },
        1 => MembershipChange::SetVoters {
            voters: (0..6).filter(|b| node >> b & 1 != 0).collect(),
        },
        _ => MembershipChange::RemoveLearner { id },
    }
}

/// Writes steps, as the seed generator does.
pub mod step {
    use super::*;

    /// Time passes: `ms` milliseconds (1 to 256).
    pub fn tick(ms: u16) -> Vec<u8> {
        vec![0, (ms.clamp(1, 256) - 1) as u8]
    }

    /// `batch` delivered to replica `to` as if from `from`.
    pub fn deliver(to: NodeId, from: u8, batch: &[MessageOf<Kv>]) -> Vec<u8> {
        let frame = encode_frame(&batch, PAXOS_MAX_FRAME).expect("a batch encodes");
        [vec![1, (to - 1) as u8, from], frame[4..].to_vec()].concat()
    }

    /// A put of `value` at key `k{key}` by `client`, its `seq`th, at replica `at`.
    pub fn propose(at: NodeId, client: u8, seq: u8, key: u8, value: &[u8]) -> Vec<u8> {
        [vec![2, (at - 1) as u8, client, seq, key], value.to_vec()].concat()
    }

    /// A read of key `k{key}` by `client` (its read `id`) at replica `at`.
    pub fn read(at: NodeId, client: u8, id: u8, key: u8) -> Vec<u8> {
        vec![3, (at - 1) as u8, client, id, key]
    }

    /// The replicas in `cut` are cut off from the others.
    pub fn partition(cut: &[NodeId]) -> Vec<u8> {
        vec![4, cut.iter().fold(0, |bits, id| bits | 1 << (id - 1))]
    }

    /// Replica `at` restarts.
    pub fn restart(at: NodeId) -> Vec<u8> {
        vec![5, (at - 1) as u8]
    }

    /// Replica `at` is asked to make the voters `voters`.
    pub fn set_voters(at: NodeId, voters: &[NodeId]) -> Vec<u8> {
        vec![
            6,
            (at - 1) as u8,
            1,
            voters.iter().fold(0, |bits, id| bits | 1 << id),
        ]
    }

    /// Replica `at` is asked to hand its leadership to `to`.
    pub fn transfer(at: NodeId, to: NodeId) -> Vec<u8> {
        vec![7, (at - 1) as u8, to as u8]
    }
}
