//! The clients: reads and writes on a few keys, every operation recorded with a real
//! clock as invoked, then ok, failed or unknown, for the linearizability checker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::Fingerprint;
use linearizability::{KvOp, KvRet, Operation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transport::Endpoint;

use crate::kv::{KvClient, KvClientError, client_endpoint_at};

/// A client's pause between operations, in milliseconds: a few hundred operations a
/// second per client. Unpaced clients ran some 10,000 a second between them, which left
/// the nodes no CPU for their timers and made each minute's history take half a minute
/// to check, without finding more: a stale read needs a window of its own to happen in,
/// and at this pace every window of a few milliseconds is read in.
const THINK_MS: std::ops::Range<u64> = 1..6;

/// The recorded history, shared by the clients.
#[derive(Debug, Default)]
pub struct History {
    operations: Mutex<Vec<Operation>>,
}

/// Counts of one run's operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Writes (puts, piece reports) acknowledged.
    pub writes_ok: u64,
    /// Writes with no answer: they may or may not have taken effect.
    pub writes_unknown: u64,
    /// Reads answered.
    pub reads_ok: u64,
    /// Reads with no answer (they constrain nothing).
    pub reads_failed: u64,
}

impl History {
    /// Every operation so far.
    pub fn operations(&self) -> Vec<Operation> {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts by kind and outcome.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for op in self
            .operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            match (&op.op, op.result.is_some()) {
                (KvOp::Put { .. }, true) => counts.writes_ok += 1,
                (KvOp::Put { .. }, false) => counts.writes_unknown += 1,
                (KvOp::Get { .. }, true) => counts.reads_ok += 1,
                (KvOp::Get { .. }, false) => counts.reads_failed += 1,
            }
        }
        counts
    }

    fn record(&self, operation: Operation) {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(operation);
    }
}

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The servers' client addresses.
    pub servers: Vec<SocketAddr>,
    /// The cluster CA's fingerprint.
    pub ca: Fingerprint,
    /// Concurrent clients, each bound to one node (client `i` to node `i` modulo the
    /// nodes). The first round of clients (one per node) reads and writes, the second
    /// only reads, and so on.
    pub clients: u64,
    /// Keys written and read (`k0`, `k1`, ...).
    pub keys: u64,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// When the run started (time zero of the history).
    pub start: Instant,
}

/// A client endpoint bound to any address of this namespace (the hub), so it reaches the
/// nodes' addresses on the bridge.
pub(crate) fn endpoint(name: &str) -> Result<Endpoint, KvClientError> {
    client_endpoint_at(name, "0.0.0.0:0".parse().expect("constant address"))
}

/// Client `index`, bound to one node (`index` modulo the nodes), as Jepsen's clients
/// are: a client that failed over would leave a node that answers wrongly as soon as
/// its writes stall there, and stop asking it. It gives up on an attempt after 500 ms
/// and on an operation after 2 s.
fn client(workload: &Workload, index: u64) -> Result<KvClient, KvClientError> {
    let node = workload.servers[index as usize % workload.servers.len()];
    let mut client = KvClient::with_endpoint(
        endpoint(&format!("nemesis-client-{index}"))?,
        vec![node],
        workload.ca,
    );
    client.attempt_timeout = Duration::from_millis(500);
    client.deadline = Duration::from_secs(2);
    Ok(client)
}

fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn decode(value: Option<Vec<u8>>) -> Result<Option<u64>, String> {
    value
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| format!("a read returned {} bytes, not 8", bytes.len()))
        })
        .transpose()
}

impl Workload {
    /// Runs the clients until `stop` is set; every operation goes into `history`.
    /// Values are unique across the run (`next_value`).
    pub async fn run(&self, history: Arc<History>, stop: Arc<AtomicBool>) -> Result<(), String> {
        let next_value = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();
        for index in 0..self.clients {
            let mut client = client(self, index).map_err(|e| e.to_string())?;
            let (history, stop, next_value) = (history.clone(), stop.clone(), next_value.clone());
            let (keys, start) = (self.keys, self.start);
            // Every other round of clients only reads: a client whose write stalls on a
            // cut-off node stops reading there too, and a node that answers reads
            // wrongly while cut off must still be asked.
            let reader = (index / self.servers.len() as u64) % 2 == 1;
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (index + 1).wrapping_mul(0x9e37));
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let key = rng.random_range(0..keys);
                    let op = if !reader && rng.random_bool(0.5) {
                        KvOp::Put {
                            key,
                            value: next_value.fetch_add(1, Ordering::Relaxed),
                        }
                    } else {
                        KvOp::Get { key }
                    };
                    let operation = perform(&mut client, index, op, start).await?;
                    history.record(operation);
                    tokio::time::sleep(Duration::from_millis(rng.random_range(THINK_MS))).await;
                }
                Ok::<(), String>(())
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Reads every key once with a long deadline (after the faults have healed); the
    /// reads join the history. Fails if the cluster does not answer within `deadline`.
    pub async fn final_reads(&self, history: &History, deadline: Duration) -> Result<(), String> {
        let endpoint = endpoint("nemesis-final").map_err(|e| e.to_string())?;
        let mut client = KvClient::with_endpoint(endpoint, self.servers.clone(), self.ca);
        client.attempt_timeout = Duration::from_millis(500);
        client.deadline = deadline;
        for key in 0..self.keys {
            let operation =
                perform(&mut client, self.clients, KvOp::Get { key }, self.start).await?;
            if operation.result.is_none() {
                return Err(format!(
                    "the cluster did not answer a read of k{key} within {deadline:?} after the faults healed"
                ));
            }
            history.record(operation);
        }
        Ok(())
    }
}

/// Performs one operation and returns its record. Errors only for answers that no
/// correct server gives (a value of the wrong size).
async fn perform(
    client: &mut KvClient,
    index: u64,
    op: KvOp,
    start: Instant,
) -> Result<Operation, String> {
    let call = nanos_since(start);
    let (ret, result) = match op {
        KvOp::Put { key, value } => {
            match client
                .put(format!("k{key}"), value.to_be_bytes().to_vec())
                .await
            {
                Ok(_) => (Some(nanos_since(start)), Some(KvRet::PutOk)),
                // No answer, or a refusal after tries elsewhere: it may still be chosen.
                Err(_) => (None, None),
            }
        }
        KvOp::Get { key } => match client.get(format!("k{key}")).await {
            Ok(value) => (Some(nanos_since(start)), Some(KvRet::Value(decode(value)?))),
            Err(_) => (None, None),
        },
    };
    Ok(Operation {
        client: index,
        call,
        ret,
        op,
        result,
    })
}
