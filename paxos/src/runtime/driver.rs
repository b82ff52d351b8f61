//! The driver task: owns the replica, feeds it inputs and carries out its outputs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Network;
use super::client::{Client, ClientConfig, RequestError};
use super::metrics::{Metrics, MetricsCell};
use crate::ballot::{ClientId, NodeId};
use crate::config::Config;
use crate::error::{ClientError, StorageError};
use crate::message::Command;
use crate::replica::{MessageOf, Output, PersistToken, RecordOf, Replica, ReplicaError};
use crate::state_machine::StateMachine;
use crate::storage::{Record, Storage};

/// Settings of the runtime itself (the protocol's are in [`Config`]).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// How often the replica's clock advances. 10 ms: fine enough for the default 50 ms
    /// heartbeat and 500 ms election timeout, coarse enough to cost nothing.
    pub tick_interval: Duration,
    /// Inbound queue length (messages from replicas and clients). 65,536: a burst of
    /// pipelined traffic fits; beyond it replica messages are dropped (Paxos retransmits)
    /// and clients wait.
    pub queue_len: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            tick_interval: Duration::from_millis(10),
            queue_len: 65_536,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The durable state could not be loaded.
    #[error("cannot load the replica's durable state: {0}")]
    Storage(StorageError),
    /// The configuration or snapshot is invalid.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl From<StorageError> for StartError {
    fn from(e: StorageError) -> Self {
        StartError::Storage(e)
    }
}

pub(crate) type Reply<S> = oneshot::Sender<Result<<S as StateMachine>::Output, ClientError>>;

pub(crate) enum Input<S: StateMachine> {
    Message(NodeId, MessageOf<S>),
    Propose(Command<S::Command>, Reply<S>),
    Read(ClientId, u64, S::Query, Reply<S>),
    ReadLocal(S::Query, oneshot::Sender<S::Output>),
    Persisted(PersistToken),
    StorageFailed(StorageError),
}

/// A running replica. Cheap to clone.
pub struct Node<S: StateMachine> {
    id: NodeId,
    inputs: mpsc::Sender<Input<S>>,
    metrics: Arc<MetricsCell>,
    /// Client id under which [`Node::read_query`] reads are tracked.
    reader_id: ClientId,
    next_read: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: StateMachine> Clone for Node<S> {
    fn clone(&self) -> Self {
        Node {
            id: self.id,
            inputs: self.inputs.clone(),
            metrics: self.metrics.clone(),
            reader_id: self.reader_id,
            next_read: self.next_read.clone(),
        }
    }
}

impl<S: StateMachine> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S> Node<S>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
{
    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Hands a message from replica `from` to this replica. Never blocks: when the queue
    /// is full the message is dropped, which Paxos tolerates.
    pub fn deliver(&self, from: NodeId, message: MessageOf<S>) {
        let _ = self.inputs.try_send(Input::Message(from, message));
    }

    /// A new client session on this replica with a fresh random client id.
    pub fn client(&self, config: ClientConfig) -> Client<S> {
        Client::new(self.inputs.clone(), rand::random(), config)
    }

    /// Proposes a command whose client id and sequence number were chosen by a remote
    /// client (a server forwarding its clients' requests), in one attempt. A retry of the
    /// same `(client, seq)`, here or through another replica, is applied once.
    pub async fn propose_command(
        &self,
        command: Command<S::Command>,
        timeout: Duration,
    ) -> Result<S::Output, RequestError> {
        self.ask_once(|reply| Input::Propose(command, reply), timeout)
            .await
    }

    /// A linearizable read in one attempt, for servers answering remote clients.
    pub async fn read_query(
        &self,
        query: S::Query,
        timeout: Duration,
    ) -> Result<S::Output, RequestError> {
        let id = self
            .next_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Each read is its own client: a replica keeps one outstanding read per client (a
        // newer one supersedes the older), but a server's reads are independent and
        // concurrent, so sharing one client id would leave all but the last unanswered.
        let client = self.reader_id.wrapping_add(id);
        self.ask_once(|reply| Input::Read(client, 1, query, reply), timeout)
            .await
    }

    /// Answers `query` from what this replica has applied, without asking the leader: fast
    /// and available without a majority, but possibly stale (it may miss commands chosen
    /// but not yet applied here). For dashboards, metrics, and checking what one replica
    /// holds; use [`read_query`](Self::read_query) for answers clients rely on.
    pub async fn read_local(&self, query: S::Query) -> Result<S::Output, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::ReadLocal(query, tx))
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)
    }

    async fn ask_once(
        &self,
        input: impl FnOnce(Reply<S>) -> Input<S>,
        timeout: Duration,
    ) -> Result<S::Output, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(input(tx))
            .await
            .map_err(|_| RequestError::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer?),
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) => Err(RequestError::Timeout(timeout)),
        }
    }

    /// Current metrics.
    pub fn metrics(&self) -> Metrics {
        self.metrics.read()
    }

    /// Whether the driver has stopped (storage failed or every handle was dropped).
    pub fn is_stopped(&self) -> bool {
        self.inputs.is_closed()
    }
}

/// Loads the durable state from `storage`, builds the replica and starts driving it on the
/// current tokio runtime. Storage runs on a thread of its own, so fsync never stalls the
/// network.
pub fn start<S, St, N>(
    config: Config,
    state_machine: S,
    storage: St,
    network: N,
    runtime: RuntimeConfig,
) -> Result<Node<S>, StartError>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
    St: Storage<S::Command, S::Output> + Send + 'static,
    N: Network<MessageOf<S>>,
{
    let durable = storage.load()?;
    let epoch = Instant::now();
    let replica = Replica::new(config, state_machine, durable, Duration::ZERO)?;
    let id = replica.id();
    let (inputs, inbox) = mpsc::channel(runtime.queue_len);
    let metrics = Arc::new(MetricsCell::new(id));
    let persist = spawn_storage::<S, St>(storage, inputs.clone(), metrics.clone());
    let driver = Driver {
        replica,
        network,
        persist,
        epoch,
        waiting: HashMap::new(),
        reads: HashMap::new(),
        proposals: Vec::new(),
        metrics: metrics.clone(),
        last_leader: None,
    };
    tokio::spawn(driver.run(inbox, runtime.tick_interval));
    Ok(Node {
        id,
        inputs,
        metrics,
        reader_id: rand::random(),
        next_read: Arc::new(std::sync::atomic::AtomicU64::new(1)),
    })
}

/// Most inputs handled before the replica's outputs are flushed.
const MAX_DRAIN: usize = 4096;

type Batch<S> = (PersistToken, Vec<RecordOf<S>>);

/// Runs storage on its own thread: takes every batch queued so far, appends them with one
/// sync (group commit) and reports the highest token back to the driver.
fn spawn_storage<S, St>(
    mut storage: St,
    driver: mpsc::Sender<Input<S>>,
    metrics: Arc<MetricsCell>,
) -> std::sync::mpsc::Sender<Batch<S>>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
    St: Storage<S::Command, S::Output> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel::<Batch<S>>();
    std::thread::Builder::new()
        .name("paxos-storage".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut token = first.0;
                let mut records = first.1;
                while let Ok((t, more)) = rx.try_recv() {
                    token = t;
                    records.extend(more);
                }
                let snapshot_bytes = records.iter().rev().find_map(|r| match r {
                    Record::Snapshot(s) => Some(s.state.len() as u64),
                    _ => None,
                });
                let count = records.len() as u64;
                let result = storage.append_owned(records);
                let input = match result {
                    Ok(()) => {
                        if let Some(bytes) = snapshot_bytes {
                            metrics.snapshot_persisted(bytes);
                        }
                        metrics.update(|m| {
                            m.records_persisted += count;
                            m.storage_syncs += 1;
                        });
                        Input::Persisted(token)
                    }
                    Err(e) => Input::StorageFailed(e),
                };
                let failed = matches!(input, Input::StorageFailed(_));
                if driver.blocking_send(input).is_err() || failed {
                    return;
                }
            }
        })
        .expect("spawning the storage thread");
    tx
}

struct Driver<S: StateMachine, N> {
    replica: Replica<S>,
    network: N,
    persist: std::sync::mpsc::Sender<Batch<S>>,
    epoch: Instant,
    waiting: HashMap<(ClientId, u64), (Instant, Reply<S>)>,
    reads: HashMap<(ClientId, u64), Reply<S>>,
    /// Proposals taken from the inbox since the last flush, handed to the replica
    /// together so that one drain of the inbox becomes one slot.
    proposals: Vec<Command<S::Command>>,
    metrics: Arc<MetricsCell>,
    last_leader: Option<NodeId>,
}

impl<S, N> Driver<S, N>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
    N: Network<MessageOf<S>>,
{
    async fn run(mut self, mut inbox: mpsc::Receiver<Input<S>>, tick: Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                input = inbox.recv() => {
                    let Some(input) = input else { return };
                    if !self.handle(input) {
                        return;
                    }
                    // Drain what else is queued before flushing outputs: batching. Bounded
                    // so that replies and heartbeats are not held back by a flood.
                    let mut taken = 1;
                    while taken < MAX_DRAIN {
                        let Ok(input) = inbox.try_recv() else { break };
                        if !self.handle(input) {
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
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Feeds one input to the replica; false when the driver must stop.
    fn handle(&mut self, input: Input<S>) -> bool {
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
            }
        }
        // Forget callers that gave up (their receiver is gone).
        if self.waiting.len() > 4096 {
            self.waiting.retain(|_, (_, reply)| !reply.is_closed());
            self.reads.retain(|_, reply| !reply.is_closed());
        }
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
