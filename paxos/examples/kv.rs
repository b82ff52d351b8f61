//! A replicated key-value store on three in-process replicas.
//!
//! The driver below is all the "I/O" a sans-IO replica needs: it hands
//! messages between replicas, appends persist records to a [`MemStorage`]
//! and reports them durable, and routes client replies. Run with
//! `cargo run -p paxos --example kv`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use paxos::{
    Command, Config, MemStorage, MessageOf, NodeId, Output, Replica, RestoreError, Slot,
    StateMachine, Storage,
};
use serde::{Deserialize, Serialize};

/// The user's commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum KvCommand {
    Put(String, String),
    Delete(String),
}

/// The user's state machine: a string map.
#[derive(Default)]
struct KvStore(BTreeMap<String, String>);

impl StateMachine for KvStore {
    type Command = KvCommand;
    type Output = Option<String>; // previous value, or the value read
    type Query = String; // a key to read

    fn apply(&mut self, _slot: Slot, command: &KvCommand) -> Option<String> {
        match command {
            KvCommand::Put(k, v) => self.0.insert(k.clone(), v.clone()),
            KvCommand::Delete(k) => self.0.remove(k),
        }
    }
    fn query(&self, key: &String) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&self.0).expect("a map always encodes")
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.0 = rmp_serde::from_slice(bytes).map_err(|e| RestoreError(e.to_string()))?;
        Ok(())
    }
}

type Storage3 = MemStorage<KvCommand, Option<String>>;

/// Three replicas wired together in memory.
struct Cluster {
    replicas: Vec<Option<Replica<KvStore>>>,
    disks: Vec<Storage3>,
    network: VecDeque<(NodeId, NodeId, MessageOf<KvStore>)>,
    replies: Vec<(u64, u64, Option<String>)>,
    now: Duration,
}

impl Cluster {
    fn new() -> Self {
        let mut c = Cluster {
            replicas: Vec::new(),
            disks: vec![MemStorage::new(), MemStorage::new(), MemStorage::new()],
            network: VecDeque::new(),
            replies: Vec::new(),
            now: Duration::ZERO,
        };
        for id in 0..3 {
            c.replicas.push(Some(c.boot(id)));
        }
        c
    }

    /// Starts (or restarts) replica `id` from what its disk holds.
    fn boot(&self, id: NodeId) -> Replica<KvStore> {
        let config = Config {
            id,
            members: vec![0, 1, 2],
            seed: id,
            ..Config::default()
        };
        let durable = self.disks[id as usize].load().expect("memory storage");
        Replica::new(config, KvStore::default(), durable, self.now).expect("valid config")
    }

    /// Delivers messages and completes disk writes until nothing is left to do.
    fn settle(&mut self) {
        loop {
            let mut busy = false;
            for id in 0..3 {
                let Some(r) = self.replicas[id].as_mut() else {
                    continue;
                };
                while let Some(out) = r.poll_output() {
                    busy = true;
                    match out {
                        Output::Send { to, message } => {
                            self.network.push_back((id as u64, to, message))
                        }
                        Output::Persist { token, records } => {
                            self.disks[id].append(&records).expect("memory storage");
                            r.persisted(token, self.now);
                        }
                        Output::Reply {
                            client,
                            seq,
                            result,
                        } => self.replies.push((client, seq, result.unwrap_or(None))),
                        Output::ReadReply { client, id, result } => {
                            self.replies.push((client, id, result.unwrap_or(None)))
                        }
                        // This example changes no membership.
                        Output::MembershipReply { .. } => {}
                    }
                }
            }
            while let Some((from, to, msg)) = self.network.pop_front() {
                busy = true;
                if let Some(r) = self.replicas[to as usize].as_mut() {
                    r.handle_message(from, msg, self.now);
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// Lets `ms` milliseconds of time pass.
    fn advance(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += Duration::from_millis(10);
            for r in self.replicas.iter_mut().flatten() {
                r.tick(self.now);
            }
            self.settle();
        }
    }

    fn leader(&self) -> NodeId {
        let leader = self.replicas.iter().flatten().find(|r| r.is_leader());
        leader.map(|r| r.id()).expect("a leader")
    }

    /// Replica `id` (which must be running).
    fn at(&mut self, id: NodeId) -> &mut Replica<KvStore> {
        self.replicas[id as usize].as_mut().expect("running")
    }
}

fn put(seq: u64, key: &str, value: &str) -> Command<KvCommand> {
    let op = KvCommand::Put(key.into(), value.into());
    Command { client: 1, seq, op }
}

fn main() {
    let mut cluster = Cluster::new();
    cluster.advance(1_500); // elect a leader
    let leader = cluster.leader();
    let now = cluster.now;
    println!("leader: replica {leader}");

    // Client 1 writes through a follower, which forwards to the leader.
    cluster
        .at((leader + 1) % 3)
        .propose(put(1, "color", "red"), now);
    cluster.advance(100);
    let now = cluster.now;
    cluster.at(leader).propose(put(2, "color", "blue"), now);
    cluster.settle();
    println!("replies so far: {:?}", cluster.replies);

    // The leader crashes and the others elect a new one. The client retries
    // seq 2 there and gets the original output; nothing is applied twice.
    cluster.replicas[leader as usize] = None;
    cluster.advance(2_000);
    let new_leader = cluster.leader();
    let now = cluster.now;
    println!("replica {leader} crashed; new leader: replica {new_leader}");
    cluster.at(new_leader).propose(put(2, "color", "blue"), now);
    cluster.settle();
    println!("retry of seq 2 answered with: {:?}", cluster.replies.last());

    // A linearizable read: the leader holds a lease, so no log write.
    cluster.advance(100);
    let now = cluster.now;
    cluster.at(new_leader).read(1, 1, "color".into(), now);
    cluster.settle();
    println!("read color -> {:?}", cluster.replies.last().map(|r| &r.2));

    // The crashed replica restarts from its disk and catches up.
    cluster.replicas[leader as usize] = Some(cluster.boot(leader));
    cluster.advance(500);
    let applied = cluster.at(leader).applied();
    println!("replica {leader} restarted and applied up to slot {applied}");
}
