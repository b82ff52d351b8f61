//! The handle to a running replica ([`Node`]) and [`start`], which loads storage, builds
//! the replica and spawns its driver task and storage thread.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::client::{Client, ClientConfig, RequestError};
use super::config::RuntimeConfig;
use super::driver::Driver;
use super::events::{Input, Reply};
use super::membership::{ChangeError, ClusterView};
use super::metrics::{Metrics, MetricsCell};
use super::network::Network;
use super::storage_thread::spawn_storage;
use crate::ballot::{ClientId, NodeId};
use crate::config::Config;
use crate::error::StorageError;
use crate::membership::{Membership, MembershipChange};
use crate::message::Command;
use crate::replica::{MessageOf, Replica, ReplicaError};
use crate::state_machine::StateMachine;
use crate::storage::Storage;

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

    /// Submits a membership change at this replica, which must be the leader (others
    /// answer [`MembershipError::NotLeader`](crate::MembershipError::NotLeader) with a
    /// hint). Answers the membership in force once the change is applied. A change
    /// already in force succeeds at once, so retrying after a timeout is safe.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        timeout: Duration,
    ) -> Result<Membership, ChangeError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::ChangeMembership(change, tx))
            .await
            .map_err(|_| ChangeError::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer?),
            Ok(Err(_)) => Err(ChangeError::Stopped),
            Err(_) => Err(ChangeError::Timeout(timeout)),
        }
    }

    /// Asks this replica, which must lead, to hand its leadership to `target` (or,
    /// with `None`, to the most up-to-date other voter). Returns once the handover has
    /// begun; [`Metrics::leader`] shows when it is done (within a few heartbeats).
    pub async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<(), ChangeError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::TransferLeadership(target, tx))
            .await
            .map_err(|_| ChangeError::Stopped)?;
        Ok(rx.await.map_err(|_| ChangeError::Stopped)??)
    }

    /// What this replica knows of the cluster: membership, leader, and on the leader
    /// each member's progress (to tell when a learner may be made a voter).
    pub async fn cluster_view(&self) -> Result<ClusterView, ChangeError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::View(tx))
            .await
            .map_err(|_| ChangeError::Stopped)?;
        rx.await.map_err(|_| ChangeError::Stopped)
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

    /// Whether the driver has stopped (storage failed, this replica was removed from
    /// the cluster, or every handle was dropped).
    pub fn is_stopped(&self) -> bool {
        self.inputs.is_closed()
    }

    /// Completes once the driver has stopped (see [`Node::is_stopped`]): what a
    /// process awaits to exit when its replica is removed from the cluster.
    pub async fn stopped(&self) {
        self.inputs.closed().await
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
    let clock = runtime.clock.clone();
    let replica = Replica::new(config, state_machine, durable, clock.elapsed())?;
    let id = replica.id();
    let (inputs, inbox) = mpsc::channel(runtime.queue_len);
    let metrics = Arc::new(MetricsCell::new(id));
    let persist = spawn_storage::<S, St>(storage, inputs.clone(), metrics.clone());
    let driver = Driver::new(replica, network, persist, clock, metrics.clone());
    tokio::spawn(driver.run(inbox, runtime.tick_interval));
    Ok(Node {
        id,
        inputs,
        metrics,
        reader_id: rand::random(),
        next_read: Arc::new(std::sync::atomic::AtomicU64::new(1)),
    })
}
