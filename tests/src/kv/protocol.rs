//! The key-value wire protocol between `kv-load` and `kv-server`.
//!
//! Clients send requests on a long-lived channel (stream kind `0x04`, see PROTOCOL.md
//! section 2): each request frame is `[id, KvRequest]` and each response frame is
//! `[id, KvResponse]`, answered in any order. One channel carries the requests of every
//! client sharing a connection; the server proposes what arrives together and sends the
//! answers that are ready together, in one write. A one-request stream (kind `0x01`)
//! carrying a bare `KvRequest` is still answered.

use paxos::{NodeId, Slot};
use serde::{Deserialize, Serialize};

/// ALPN of the key-value client protocol.
pub const ALPN_KV: &[u8] = b"bytetorrent/kv/1";

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
