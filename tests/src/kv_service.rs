//! The key-value service: the wire protocol between `kv-load` and `kv-server`, and the
//! server side that turns requests into Paxos proposals and reads.

use std::time::Duration;

use paxos::runtime::{Node, RequestError};
use paxos::{ClientError, Command, NodeId, Slot};
use serde::{Deserialize, Serialize};
use transport::{Connection, Endpoint, Received};

use crate::kv::{Kv, KvCommand, KvOutput, KvQuery};

/// ALPN of the key-value client protocol.
pub const ALPN_KV: &[u8] = b"bytetorrent/kv/1";

/// How long the server waits for a proposal or read before telling the client to retry.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A client request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvRequest {
    /// Sets `key`; `(client, seq)` make retries apply once.
    Put {
        /// The client's session id.
        client: u64,
        /// The client's sequence number for this put.
        seq: u64,
        /// The key.
        key: String,
        /// The value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Reads `key` (linearizable).
    Get {
        /// The key.
        key: String,
    },
    /// Who leads and how far the log is.
    Status,
}

/// The server's answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum KvResponse {
    /// The put was chosen and applied at this slot.
    Written(Slot),
    /// The value read.
    Value(Option<Vec<u8>>),
    /// The replica's view of the cluster.
    Status {
        /// This replica.
        id: NodeId,
        /// Whether it leads.
        is_leader: bool,
        /// The leader it believes in.
        leader: Option<NodeId>,
        /// Highest slot known chosen.
        decided: Slot,
        /// Highest slot applied.
        applied: Slot,
        /// Slot of the latest snapshot.
        snapshot_slot: Slot,
    },
    /// Not done; the client should retry (here or elsewhere) with the same sequence number.
    Retry(String),
    /// Refused for good.
    Error(String),
}

/// Serves key-value clients on `endpoint` until it closes.
pub async fn serve_clients(endpoint: Endpoint, node: Node<Kv>) {
    while let Some(incoming) = endpoint.accept().await {
        let Ok(connection) = incoming else { continue };
        tokio::spawn(serve_connection(connection, node.clone()));
    }
}

async fn serve_connection(connection: Connection, node: Node<Kv>) {
    while let Ok(stream) = connection.accept().await {
        let node = node.clone();
        tokio::spawn(async move {
            if let Ok(Received::Request(request, responder)) = stream.read::<KvRequest>().await {
                let response = answer(&node, request).await;
                let _ = responder.respond(&response).await;
            }
        });
    }
}

async fn answer(node: &Node<Kv>, request: KvRequest) -> KvResponse {
    match request {
        KvRequest::Put {
            client,
            seq,
            key,
            value,
        } => {
            let command = Command {
                client,
                seq,
                op: KvCommand::Put { key, value },
            };
            match node.propose_command(command, REQUEST_TIMEOUT).await {
                Ok(KvOutput::Written(slot)) => KvResponse::Written(slot),
                Ok(other) => KvResponse::Error(format!("unexpected output {other:?}")),
                Err(e) => failure(e),
            }
        }
        KvRequest::Get { key } => match node.read_query(KvQuery::Get(key), REQUEST_TIMEOUT).await {
            Ok(KvOutput::Value(v)) => KvResponse::Value(v),
            Ok(other) => KvResponse::Error(format!("unexpected output {other:?}")),
            Err(e) => failure(e),
        },
        KvRequest::Status => {
            let m = node.metrics();
            KvResponse::Status {
                id: m.id,
                is_leader: m.is_leader,
                leader: m.leader,
                decided: m.decided,
                applied: m.applied,
                snapshot_slot: m.snapshot_slot,
            }
        }
    }
}

fn failure(e: RequestError) -> KvResponse {
    match e {
        RequestError::Rejected(ClientError::Stale) => KvResponse::Error(e.to_string()),
        other => KvResponse::Retry(other.to_string()),
    }
}
