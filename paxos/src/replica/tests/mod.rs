//! Unit tests of the replica against a tiny synchronous in-memory cluster.

mod clients;
mod durability;
mod election;
mod members;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::*;
use crate::message::Command;
use crate::storage::{MemStorage, Record, Storage};

/// Test state machine: a map with `put` returning the previous value.
#[derive(Default, Clone, Debug)]
struct Kv {
    map: BTreeMap<u64, u64>,
    applied: Vec<(u64, u64)>,
}

impl StateMachine for Kv {
    type Command = (u64, u64);
    type Output = Option<u64>;
    type Query = u64;
    fn apply(&mut self, _slot: Slot, c: &(u64, u64)) -> Option<u64> {
        self.applied.push(*c);
        self.map.insert(c.0, c.1)
    }
    fn query(&self, k: &u64) -> Option<u64> {
        self.map.get(k).copied()
    }
    fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&(&self.map, &self.applied)).unwrap_or_default()
    }
    fn restore(&mut self, b: &[u8]) -> Result<(), RestoreError> {
        let (map, applied) = rmp_serde::from_slice(b).map_err(|e| RestoreError(e.to_string()))?;
        self.map = map;
        self.applied = applied;
        Ok(())
    }
}

type Out = Output<(u64, u64), Option<u64>>;

/// Client `client`'s first command: sequence number 1, writing `client` at key `client`.
fn first_command(client: u64) -> Command<(u64, u64)> {
    Command {
        client,
        seq: 1,
        op: (client, client),
    }
}

struct Cluster {
    reps: Vec<Option<Replica<Kv>>>,
    stores: Vec<MemStorage<(u64, u64), Option<u64>>>,
    now: Duration,
    net: VecDeque<(NodeId, NodeId, MessageOf<Kv>)>,
    down: BTreeSet<NodeId>,
    /// Persist batches not yet completed (when `auto_persist` is off).
    unpersisted: Vec<(NodeId, PersistToken, Vec<RecordOf<Kv>>)>,
    auto_persist: bool,
    replies: Vec<(NodeId, Out)>,
    /// Commit messages sent so far (by any replica).
    commits_sent: usize,
    config: Config,
}

impl Cluster {
    fn new(n: u64, tweak: impl Fn(&mut Config)) -> Self {
        let mut config = Config {
            members: (0..n).collect(),
            election_timeout: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(10),
            lease_duration: Duration::from_millis(80),
            max_clock_drift: Duration::from_millis(10),
            ..Config::default()
        };
        tweak(&mut config);
        let mut c = Cluster {
            reps: Vec::new(),
            stores: (0..n).map(|_| MemStorage::new()).collect(),
            now: Duration::ZERO,
            net: VecDeque::new(),
            down: BTreeSet::new(),
            unpersisted: Vec::new(),
            auto_persist: true,
            replies: Vec::new(),
            commits_sent: 0,
            config,
        };
        for i in 0..n {
            let r = c.make(i);
            c.reps.push(Some(r));
        }
        c
    }

    fn make(&self, i: NodeId) -> Replica<Kv> {
        let cfg = Config {
            id: i,
            seed: i + 1,
            ..self.config.clone()
        };
        let st = self.stores[i as usize].load().unwrap();
        Replica::new(cfg, Kv::default(), st, self.now).unwrap()
    }

    fn r(&mut self, i: NodeId) -> &mut Replica<Kv> {
        self.reps[i as usize].as_mut().unwrap()
    }

    fn pump(&mut self) {
        assert!(self.pump_rounds(100_000), "cluster did not quiesce");
    }

    /// Delivers outputs and messages for at most `rounds` rounds; whether the cluster
    /// became quiet.
    fn pump_rounds(&mut self, rounds: usize) -> bool {
        for _ in 0..rounds {
            let mut any = false;
            for i in 0..self.reps.len() {
                let Some(r) = self.reps[i].as_mut() else {
                    continue;
                };
                while let Some(o) = r.poll_output() {
                    any = true;
                    match o {
                        Output::Send { to, message } => {
                            if matches!(message, Message::Commit { .. }) {
                                self.commits_sent += 1;
                            }
                            self.net.push_back((i as u64, to, message));
                        }
                        Output::Persist { token, records } => {
                            self.unpersisted.push((i as u64, token, records));
                        }
                        other => self.replies.push((i as u64, other)),
                    }
                }
            }
            if self.auto_persist {
                for (i, token, records) in std::mem::take(&mut self.unpersisted) {
                    self.stores[i as usize].append(&records).unwrap();
                    if let Some(r) = self.reps[i as usize].as_mut() {
                        r.persisted(token, self.now);
                    }
                    any = true;
                }
            }
            let n_reps = self.reps.len() as u64;
            while let Some((from, to, m)) = self.net.pop_front() {
                any = true;
                // Replies to a node outside the cluster (a test's impostor) go nowhere.
                if self.down.contains(&from) || self.down.contains(&to) || to >= n_reps {
                    continue;
                }
                let now = self.now;
                if let Some(r) = self.reps[to as usize].as_mut() {
                    r.handle_message(from, m, now);
                }
            }
            if !any {
                return true;
            }
        }
        false
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            let now = self.now;
            for r in self.reps.iter_mut().flatten() {
                r.tick(now);
            }
            self.pump();
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.reps
            .iter()
            .flatten()
            .filter(|r| !self.down.contains(&r.id()))
            .find(|r| r.is_leader())
            .map(|r| r.id())
    }

    fn propose(&mut self, at: NodeId, client: u64, seq: u64, cmd: (u64, u64)) {
        let now = self.now;
        self.r(at).propose(
            Command {
                client,
                seq,
                op: cmd,
            },
            now,
        );
        self.pump();
    }

    /// Proposes the first command of each of `clients` to replica `at`, one call
    /// each and without delivering anything, so they queue up together.
    fn propose_each(&mut self, at: NodeId, clients: std::ops::RangeInclusive<u64>) {
        let now = self.now;
        for client in clients {
            self.r(at).propose(first_command(client), now);
        }
    }

    fn reply_for(&self, client: u64, seq: u64) -> Option<Result<Option<u64>, ClientError>> {
        self.replies.iter().rev().find_map(|(_, o)| match o {
            Output::Reply {
                client: c,
                seq: s,
                result,
            } if *c == client && *s == seq => Some(result.clone()),
            _ => None,
        })
    }

    fn crash(&mut self, i: NodeId) {
        self.reps[i as usize] = None;
        self.unpersisted.retain(|(n, _, _)| *n != i);
    }

    fn restart(&mut self, i: NodeId) {
        let r = self.make(i);
        self.reps[i as usize] = Some(r);
    }
}
