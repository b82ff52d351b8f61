//! A replicated key-value store: the state machine the cross-crate Paxos tests and the
//! benchmark servers replicate.

use std::collections::HashMap;

use paxos::{RestoreError, Slot, StateMachine};
use serde::{Deserialize, Serialize};

/// A write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value. Encoded as MessagePack bin (one memcpy), not as an array of
        /// integers (one call per byte); an array still decodes.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

/// A read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvQuery {
    /// The value of `key`.
    Get(String),
    /// The number of keys.
    Len,
}

/// The result of a command or a query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// A put was applied at this slot.
    Written(Slot),
    /// The value read.
    Value(Option<Vec<u8>>),
    /// The number of keys.
    Len(u64),
}

/// The store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    /// Point reads and writes only, so a hash map: with random keys a B-tree insert was
    /// ~5 % of the cluster's CPU (string compares on cold nodes).
    map: HashMap<String, Vec<u8>>,
}

impl StateMachine for Kv {
    type Command = KvCommand;
    type Output = KvOutput;
    type Query = KvQuery;

    fn apply(&mut self, slot: Slot, command: &KvCommand) -> KvOutput {
        match command {
            KvCommand::Put { key, value } => {
                // Overwriting reuses the entry's key and value buffers: no allocation
                // and no free for a key that is already there.
                match self.map.get_mut(key) {
                    Some(old) => {
                        old.clear();
                        old.extend_from_slice(value);
                    }
                    None => {
                        self.map.insert(key.clone(), value.clone());
                    }
                }
                KvOutput::Written(slot)
            }
        }
    }

    fn query(&self, query: &KvQuery) -> KvOutput {
        match query {
            KvQuery::Get(key) => KvOutput::Value(self.map.get(key).cloned()),
            KvQuery::Len => KvOutput::Len(self.map.len() as u64),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        // A map of key to bin: values are copied, not encoded byte by byte.
        let map = BytesValues(&self.map);
        rmp_serde::to_vec(&map).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        // `ByteBuf` also accepts values written as arrays of integers (older snapshots).
        let map: HashMap<String, serde_bytes::ByteBuf> = rmp_serde::from_slice(snapshot)
            .map_err(|e| RestoreError(format!("not a key-value snapshot: {e}")))?;
        self.map = map.into_iter().map(|(k, v)| (k, v.into_vec())).collect();
        Ok(())
    }
}

/// Serializes the store's map with its values as MessagePack bin.
struct BytesValues<'a>(&'a HashMap<String, Vec<u8>>);

impl Serialize for BytesValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, serde_bytes::Bytes::new(v))))
    }
}
