//! The event-driven world: network, disks, clocks, faults and clients.

mod checks;
mod clients;
mod faults;
mod reconfig;

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use paxos::{
    ClientError, Command, Config, MemStorage, MembershipChange, MessageOf, NodeId, Output,
    PlantedBugs, RecordOf, Replica, Storage, Value,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kv::{KvCmd, KvMachine, KvOut, Observer};
use linearizability::Operation;

const MS: u64 = 1_000; // simulated time is in microseconds

/// Parameters of one simulation run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub clients: usize,
    pub keys: u64,
    /// Length of the faulty period.
    pub fault_ms: u64,
    /// Clients keep issuing operations this long after the faults heal.
    pub settle_ms: u64,
    /// The cluster must commit a probe command within this time after healing.
    pub recovery_bound_ms: u64,
    pub max_loss: f64,
    pub max_dup: f64,
    pub max_delay_us: u64,
    /// Probability that a message is delayed by up to 500 ms (faulty period only).
    pub late_prob: f64,
    pub persist_delay_max_us: u64,
    /// Mean time between fault events.
    pub fault_every_ms: u64,
    /// Allow crashes.
    pub crashes: bool,
    /// Allow partitions (symmetric, asymmetric, partial connectivity).
    pub partitions: bool,
    /// Clock rate error bound (e.g. 0.02 = ±2%).
    pub drift: f64,
    pub client_timeout_ms: u64,
    pub snapshot_log_len: u64,
    pub max_batch: usize,
    pub max_inflight: usize,
    pub planted: PlantedBugs,
    /// Instead of healing, install this partial-connectivity topology and
    /// require commits under it.
    pub scenario: Option<Scenario>,
    /// Node ids beyond the bootstrap ones that an operator may add (each at most
    /// once: ids are never reused).
    pub spares: usize,
    /// Mean time between membership operations during the faulty period (add a
    /// learner, grow, shrink, replace, remove the leader, remove a learner,
    /// transfer the leadership); 0 = none.
    pub reconfig_every_ms: u64,
}

/// Partial-connectivity scenarios from the OmniPaxos paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    QuorumLoss,
    Constrained,
    Chained,
}

impl SimConfig {
    pub fn standard(nodes: usize) -> Self {
        SimConfig {
            nodes,
            clients: 4,
            keys: 4,
            fault_ms: 3_000,
            settle_ms: 300,
            recovery_bound_ms: 5_000,
            max_loss: 0.1,
            max_dup: 0.05,
            max_delay_us: 8 * MS,
            late_prob: 0.01,
            persist_delay_max_us: 3 * MS,
            fault_every_ms: 150,
            crashes: true,
            partitions: true,
            drift: 0.05,
            client_timeout_ms: 60,
            snapshot_log_len: 40,
            max_batch: 8,
            max_inflight: 4,
            planted: PlantedBugs::default(),
            scenario: None,
            spares: 0,
            reconfig_every_ms: 0,
        }
    }

    /// The standard faults plus random membership changes among `nodes + 6` ids.
    pub fn reconfiguring(nodes: usize) -> Self {
        SimConfig {
            spares: 6,
            reconfig_every_ms: 120,
            ..SimConfig::standard(nodes)
        }
    }

    /// A partial-connectivity run: a short faulty warm-up without partitions,
    /// then the scenario's topology for the rest of the run.
    pub fn scenario(nodes: usize, sc: Scenario) -> Self {
        SimConfig {
            fault_ms: 600,
            settle_ms: 600,
            recovery_bound_ms: 3_000,
            partitions: false,
            scenario: Some(sc),
            ..SimConfig::standard(nodes)
        }
    }

    fn replica_config(&self, id: NodeId, seed: u64) -> Config {
        // Bootstrap members know each other; a spare joins knowing nobody.
        let members = if (id as usize) < self.nodes {
            (0..self.nodes as u64).collect()
        } else {
            Vec::new()
        };
        Config {
            id,
            members,
            contacts: (0..(self.nodes + self.spares) as u64).collect(),
            election_timeout: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(15),
            lease_duration: Duration::from_millis(90),
            // Clocks run within ±5% of real time: over a 100 ms window two
            // clocks disagree by at most 10 ms, exactly the configured bound.
            max_clock_drift: Duration::from_millis(10),
            max_batch: self.max_batch,
            max_inflight: self.max_inflight,
            snapshot_log_len: self.snapshot_log_len,
            session_expiry_slots: 1_000_000,
            catchup_batch: 16,
            seed,
            planted: self.planted,
        }
    }
}

/// Statistics of a successful run.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    pub recovery_us: u64,
    pub ops: usize,
    pub completed: usize,
    pub applied: usize,
    pub events: u64,
    /// Membership changes that took effect.
    pub changes: usize,
}

type Msg = MessageOf<KvMachine>;

enum ClientReply {
    Put {
        seq: u64,
        result: Result<KvOut, ClientError>,
    },
    Get {
        id: u64,
        result: Result<KvOut, ClientError>,
    },
}

enum ClientReq {
    Put(Command<KvCmd>),
    Get { client: u64, id: u64, key: u64 },
}

enum Kind {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Msg,
    },
    Request {
        to: NodeId,
        req: ClientReq,
    },
    Tick {
        node: usize,
        inc: u64,
    },
    Persisted {
        node: usize,
        inc: u64,
        token: u64,
        records: Vec<RecordOf<KvMachine>>,
    },
    Reply {
        client: usize,
        reply: ClientReply,
    },
    ClientTimer {
        client: usize,
        epoch: u64,
    },
    Fault,
    Restart {
        node: usize,
    },
    Heal,
    /// The operator's next membership operation.
    AdminTimer,
    /// A membership change arrives at a replica.
    AdminChange {
        to: usize,
        id: u64,
        change: MembershipChange,
    },
    /// A leadership transfer request arrives at a replica.
    AdminTransfer {
        to: usize,
    },
}

struct Event {
    at: u64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    replica: Option<Replica<KvMachine>>,
    /// Started once (bootstrap, or added by the operator) and not yet stopped for
    /// good (removed from the cluster): crashes restart it.
    active: bool,
    store: MemStorage<KvCmd, KvOut>,
    inc: u64,
    rate: f64,
    offset: u64,
    last_persist_at: u64,
    /// Slots up to here were compared against `World::chosen`.
    checked: u64,
}

#[derive(Clone, Debug)]
enum OpKind {
    Put { key: u64, value: u64, seq: u64 },
    Get { key: u64, id: u64 },
}

struct Client {
    id: u64,
    seq: u64,
    read_id: u64,
    op: Option<(OpKind, usize)>,
    epoch: u64,
    stopped: bool,
    /// The probe client measures recovery and is not part of the history.
    probe: bool,
}

pub struct World {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Event>,
    nodes: Vec<Node>,
    link: Vec<Vec<bool>>,
    loss: f64,
    dup: f64,
    clients: Vec<Client>,
    history: Vec<Operation>,
    acked_puts: Vec<(u64, u64)>,
    observer: Rc<RefCell<Observer>>,
    /// The first value any replica reported chosen for each slot.
    chosen: HashMap<u64, Value<KvCmd>>,
    healed_at: Option<u64>,
    recovered_at: Option<u64>,
    seed: u64,
    events: u64,
    /// Next spare node id to add, and the next membership request id.
    next_spare: usize,
    next_change: u64,
    changes: usize,
}

impl World {
    pub fn new(seed: u64, cfg: SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let observer = Rc::new(RefCell::new(Observer::default()));
        let n = cfg.nodes;
        let mut nodes = Vec::new();
        for i in 0..n + cfg.spares {
            let rate = 1.0 + rng.random_range(-cfg.drift..=cfg.drift);
            let offset = rng.random_range(0..1_000 * MS);
            nodes.push(Node {
                replica: None,
                active: i < cfg.nodes,
                store: MemStorage::new(),
                inc: 0,
                rate,
                offset,
                last_persist_at: 0,
                checked: 0,
            });
            let _ = i;
        }
        let mut clients: Vec<Client> = (0..cfg.clients)
            .map(|i| Client {
                id: i as u64 + 1,
                seq: 0,
                read_id: 0,
                op: None,
                epoch: 0,
                stopped: false,
                probe: false,
            })
            .collect();
        clients.push(Client {
            id: 1_000,
            seq: 0,
            read_id: 0,
            op: None,
            epoch: 0,
            stopped: true,
            probe: true,
        });
        let mut w = World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            link: vec![vec![true; n + cfg.spares]; n + cfg.spares],
            loss: 0.0,
            dup: 0.0,
            clients,
            history: Vec::new(),
            acked_puts: Vec::new(),
            observer,
            chosen: HashMap::new(),
            healed_at: None,
            recovered_at: None,
            seed,
            events: 0,
            next_spare: n,
            next_change: 1,
            changes: 0,
            cfg,
        };
        for i in 0..n {
            w.start_node(i);
        }
        for c in 0..w.cfg.clients {
            let at = w.rng.random_range(0..20 * MS);
            w.schedule(
                at,
                Kind::ClientTimer {
                    client: c,
                    epoch: 0,
                },
            );
        }
        let first = w.next_fault_delay();
        w.schedule(first, Kind::Fault);
        if w.cfg.reconfig_every_ms > 0 {
            let d = w.next_reconfig_delay();
            w.schedule(d, Kind::AdminTimer);
        }
        let heal = w.cfg.fault_ms * MS;
        w.schedule(heal, Kind::Heal);
        w
    }

    fn schedule(&mut self, delay: u64, kind: Kind) {
        self.seq += 1;
        self.queue.push(Event {
            at: self.now + delay,
            seq: self.seq,
            kind,
        });
    }

    fn local(&self, node: usize) -> Duration {
        let n = &self.nodes[node];
        Duration::from_micros(n.offset + (self.now as f64 * n.rate) as u64)
    }

    fn start_node(&mut self, i: usize) {
        if !self.nodes[i].active {
            return;
        }
        self.nodes[i].checked = 0;
        let cfg = self.cfg.replica_config(
            i as u64,
            self.seed.wrapping_mul(31).wrapping_add(self.nodes[i].inc),
        );
        let state = self.nodes[i].store.load().expect("mem storage");
        let sm = KvMachine::new(i as u64, self.observer.clone());
        let now = self.local(i);
        let r = Replica::new(cfg, sm, state, now).expect("valid config");
        self.nodes[i].replica = Some(r);
        let inc = self.nodes[i].inc;
        let first = self.rng.random_range(0..5 * MS);
        self.schedule(first, Kind::Tick { node: i, inc });
    }

    fn crash(&mut self, i: usize) {
        if self.nodes[i].replica.take().is_some() {
            self.nodes[i].inc += 1;
        }
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].replica.is_some()
    }

    /// Runs the whole scenario; Err describes the first violated property.
    pub fn run(mut self) -> Result<SimStats, String> {
        let hard_end =
            (self.cfg.fault_ms + self.cfg.recovery_bound_ms + self.cfg.settle_ms + 2_000) * MS;
        while let Some(ev) = self.queue.pop() {
            self.now = ev.at;
            self.events += 1;
            self.handle(ev.kind);
            if let Some(v) = self.observer.borrow().violations.first() {
                return Err(format!("at t={}us: {v}", self.now));
            }
            if let Some(h) = self.healed_at {
                if self.recovered_at.is_none() && self.now > h + self.cfg.recovery_bound_ms * MS {
                    return Err(format!(
                        "liveness: no commit within {} ms after the faults healed\n{}",
                        self.cfg.recovery_bound_ms,
                        self.dump()
                    ));
                }
                let quiet = self
                    .clients
                    .iter()
                    .all(|c| c.op.is_none() || c.stopped && c.probe);
                if self.recovered_at.is_some() && self.now > h + self.cfg.settle_ms * MS && quiet {
                    break;
                }
            }
            if self.now > hard_end {
                break;
            }
        }
        self.finish()
    }

    fn handle(&mut self, kind: Kind) {
        match kind {
            Kind::Deliver { from, to, msg } => {
                let i = to as usize;
                let now = self.local(i);
                if let Some(r) = self.nodes[i].replica.as_mut() {
                    r.handle_message(from, msg, now);
                    self.drain(i);
                }
            }
            Kind::Request { to, req } => {
                let i = to as usize;
                let now = self.local(i);
                if let Some(r) = self.nodes[i].replica.as_mut() {
                    match req {
                        ClientReq::Put(c) => r.propose(c, now),
                        ClientReq::Get { client, id, key } => r.read(client, id, key, now),
                    }
                    self.drain(i);
                }
            }
            Kind::Tick { node, inc } => {
                if self.nodes[node].inc != inc {
                    return;
                }
                let now = self.local(node);
                if let Some(r) = self.nodes[node].replica.as_mut() {
                    r.tick(now);
                    self.drain(node);
                    self.check_chosen(node);
                    self.schedule(5 * MS, Kind::Tick { node, inc });
                }
            }
            Kind::Persisted {
                node,
                inc,
                token,
                records,
            } => {
                if self.nodes[node].inc != inc {
                    return; // crashed before the write completed: lost
                }
                self.nodes[node]
                    .store
                    .append(&records)
                    .expect("mem storage");
                let now = self.local(node);
                if let Some(r) = self.nodes[node].replica.as_mut() {
                    r.persisted(token, now);
                    self.drain(node);
                }
            }
            Kind::Reply { client, reply } => self.on_reply(client, reply),
            Kind::ClientTimer { client, epoch } => self.on_client_timer(client, epoch),
            Kind::Fault => {
                if self.healed_at.is_none() {
                    self.inject_fault();
                    let d = self.next_fault_delay();
                    self.schedule(d, Kind::Fault);
                }
            }
            Kind::Restart { node } => {
                if !self.is_up(node) {
                    self.start_node(node);
                }
            }
            Kind::AdminTimer => self.on_admin_timer(),
            Kind::AdminChange { to, id, change } => {
                let now = self.local(to);
                if let Some(r) = self.nodes[to].replica.as_mut() {
                    r.change_membership(id, change, now);
                    self.drain(to);
                }
            }
            Kind::AdminTransfer { to } => {
                let now = self.local(to);
                if let Some(r) = self.nodes[to].replica.as_mut() {
                    let _ = r.transfer_leadership(None, now);
                    self.drain(to);
                }
            }
            Kind::Heal => {
                self.healed_at = Some(self.now);
                self.loss = 0.0;
                self.dup = 0.0;
                self.set_all_links(true);
                if let Some(sc) = self.cfg.scenario {
                    self.apply_scenario(sc);
                }
                for i in 0..self.nodes.len() {
                    if !self.is_up(i) {
                        self.start_node(i);
                    }
                }
                let p = self.clients.len() - 1;
                self.clients[p].stopped = false;
                self.start_op(p);
            }
        }
    }

    /// Routes a replica's outputs into the world.
    fn drain(&mut self, i: usize) {
        while let Some(o) = self.nodes[i].replica.as_mut().and_then(|r| r.poll_output()) {
            match o {
                Output::Send { to, message } => self.send(i as u64, to, message),
                Output::Persist { token, records } => {
                    let d = self
                        .rng
                        .random_range(100..=self.cfg.persist_delay_max_us.max(100));
                    let at = (self.now + d).max(self.nodes[i].last_persist_at);
                    self.nodes[i].last_persist_at = at;
                    let inc = self.nodes[i].inc;
                    let delay = at - self.now;
                    self.schedule(
                        delay,
                        Kind::Persisted {
                            node: i,
                            inc,
                            token,
                            records,
                        },
                    );
                }
                Output::Reply {
                    client,
                    seq,
                    result,
                } => {
                    if let Some(c) = self.client_index(client) {
                        let d = self.rng.random_range(100..2 * MS);
                        self.schedule(
                            d,
                            Kind::Reply {
                                client: c,
                                reply: ClientReply::Put { seq, result },
                            },
                        );
                    }
                }
                Output::ReadReply { client, id, result } => {
                    if let Some(c) = self.client_index(client) {
                        let d = self.rng.random_range(100..2 * MS);
                        self.schedule(
                            d,
                            Kind::Reply {
                                client: c,
                                reply: ClientReply::Get { id, result },
                            },
                        );
                    }
                }
                Output::MembershipReply { result, .. } => {
                    if std::env::var_os("PAXOS_TRACE").is_some() {
                        eprintln!("t={} node {i} change: {result:?}", self.now);
                    }
                    self.changes += usize::from(result.is_ok());
                }
            }
        }
        // A replica that learned it was removed stops for good.
        if self.nodes[i]
            .replica
            .as_ref()
            .is_some_and(|r| r.is_removed())
        {
            if std::env::var_os("PAXOS_TRACE").is_some() {
                let r = self.nodes[i].replica.as_ref().unwrap();
                eprintln!(
                    "t={} node {i} stops: {:?} {:?}",
                    self.now,
                    r,
                    r.membership()
                );
            }
            self.nodes[i].replica = None;
            self.nodes[i].active = false;
            self.nodes[i].inc += 1;
        }
    }

    fn client_index(&self, id: u64) -> Option<usize> {
        self.clients.iter().position(|c| c.id == id)
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let (f, t) = (from as usize, to as usize);
        if t >= self.nodes.len() || !self.link[f][t] {
            return;
        }
        if self.rng.random_bool(self.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut d = self.rng.random_range(50..=self.cfg.max_delay_us.max(50));
            if self.healed_at.is_none() && self.rng.random_bool(self.cfg.late_prob) {
                // A straggler, delivered long after its context changed.
                d = self.rng.random_range(0..500 * MS);
            }
            let m = msg.clone();
            self.schedule(d, Kind::Deliver { from, to, msg: m });
        }
    }
}

/// Number of seeds to run in total (env `PAXOS_SEEDS`; default 10 000 in
/// release builds, 2 000 in unoptimised builds, which run ~10x slower).
pub fn total_seeds() -> u64 {
    let default = if cfg!(debug_assertions) {
        2_000
    } else {
        10_000
    };
    std::env::var("PAXOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A single seed to replay (env `PAXOS_SEED`), if set.
pub fn replay_seed() -> Option<u64> {
    std::env::var("PAXOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: &SimConfig) -> Result<SimStats, String> {
    World::new(seed, cfg.clone()).run()
}
