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
    map: HashMap<Key, Value>,
}

/// Bytes as the map stores them: up to `N` inline in the table, longer ones on the heap.
///
/// Keys and values both (the benchmark's are 8 and 100 bytes). With `String` keys every
/// lookup compared against a separate heap buffer of a random, cold entry, and with `Vec`
/// values every put copied into another one: each a cache and TLB miss per put on every
/// replica, about 4 % and 6 % of the cluster's CPU in a 64-client profile. Inline, the
/// value shares the entry's cache lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Packed<const N: usize> {
    /// Up to `N` bytes.
    Inline { len: u8, bytes: [u8; N] },
    /// Longer ones.
    Heap(Box<[u8]>),
}

/// A key: [`INLINE_KEY`] bytes inline keep it as small as a `String`.
type Key = Packed<INLINE_KEY>;
/// A value: [`INLINE_VALUE`] bytes inline make it 128 bytes.
type Value = Packed<INLINE_VALUE>;

/// Longest key stored inline.
const INLINE_KEY: usize = 22;
/// Longest value stored inline.
const INLINE_VALUE: usize = 126;

impl<const N: usize> Packed<N> {
    /// The one representation of `bytes` (inline exactly when they fit), so that the
    /// derived equality and hash agree with the bytes'.
    fn new(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= N => {
                let mut inline = [0; N];
                inline[..bytes.len()].copy_from_slice(bytes);
                Packed::Inline { len, bytes: inline }
            }
            _ => Packed::Heap(bytes.into()),
        }
    }

    /// Replaces the bytes in place, reusing a heap buffer of the same length.
    fn set(&mut self, bytes: &[u8]) {
        match self {
            Packed::Heap(old) if old.len() == bytes.len() => old.copy_from_slice(bytes),
            _ => *self = Packed::new(bytes),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Packed::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Packed::Heap(bytes) => bytes,
        }
    }
}

impl StateMachine for Kv {
    type Command = KvCommand;
    type Output = KvOutput;
    type Query = KvQuery;

    fn apply(&mut self, slot: Slot, command: &KvCommand) -> KvOutput {
        match command {
            KvCommand::Put { key, value } => {
                // Overwriting reuses the entry's key (and a long value's buffer of the same
                // length): no allocation and no free for a key that is already there.
                let key = Key::new(key.as_bytes());
                match self.map.get_mut(&key) {
                    Some(old) => old.set(value),
                    None => {
                        self.map.insert(key, Value::new(value));
                    }
                }
                KvOutput::Written(slot)
            }
        }
    }

    fn query(&self, query: &KvQuery) -> KvOutput {
        match query {
            KvQuery::Get(key) => KvOutput::Value(
                self.map
                    .get(&Key::new(key.as_bytes()))
                    .map(|v| v.as_bytes().to_vec()),
            ),
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
        self.map = map
            .into_iter()
            .map(|(k, v)| (Key::new(k.as_bytes()), Value::new(&v)))
            .collect();
        Ok(())
    }
}

/// Serializes the store's map with its values as MessagePack bin.
struct BytesValues<'a>(&'a HashMap<Key, Value>);

impl Serialize for BytesValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                // Keys were built from a `str`, so this is never lossy.
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k.as_bytes()),
                        serde_bytes::Bytes::new(v.as_bytes()),
                    )
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kv: &mut Kv, key: &str, value: &[u8]) {
        kv.apply(
            1,
            &KvCommand::Put {
                key: key.to_string(),
                value: value.to_vec(),
            },
        );
    }

    fn get(kv: &Kv, key: &str) -> KvOutput {
        kv.query(&KvQuery::Get(key.to_string()))
    }

    #[test]
    fn short_and_long_keys_are_kept_apart_and_survive_a_snapshot() {
        let long = "k".repeat(INLINE_KEY + 1);
        let edge = "e".repeat(INLINE_KEY);
        let mut kv = Kv::default();
        for (key, value) in [("", &b"empty"[..]), ("00000001", b"one"), ("é", b"accent")] {
            put(&mut kv, key, value);
        }
        put(&mut kv, &long, b"long");
        put(&mut kv, &edge, b"edge");
        put(&mut kv, "00000001", b"uno");
        // Values at the inline limit, past it, and overwritten across it.
        let (at_limit, past_limit) = (vec![7; INLINE_VALUE], vec![8; INLINE_VALUE + 1]);
        put(&mut kv, "at-limit", &at_limit);
        put(&mut kv, "past-limit", &past_limit);
        put(&mut kv, "grows", b"short");
        put(&mut kv, "grows", &past_limit);
        put(&mut kv, "shrinks", &past_limit);
        put(&mut kv, "shrinks", b"short");
        assert_eq!(get(&kv, "at-limit"), KvOutput::Value(Some(at_limit)));
        assert_eq!(
            get(&kv, "past-limit"),
            KvOutput::Value(Some(past_limit.clone()))
        );
        assert_eq!(get(&kv, "grows"), KvOutput::Value(Some(past_limit)));
        assert_eq!(
            get(&kv, "shrinks"),
            KvOutput::Value(Some(b"short".to_vec()))
        );
        assert_eq!(get(&kv, "00000001"), KvOutput::Value(Some(b"uno".to_vec())));
        assert_eq!(get(&kv, &long), KvOutput::Value(Some(b"long".to_vec())));
        assert_eq!(get(&kv, &edge), KvOutput::Value(Some(b"edge".to_vec())));
        assert_eq!(get(&kv, "00000002"), KvOutput::Value(None));
        assert_eq!(kv.query(&KvQuery::Len), KvOutput::Len(9));

        let mut restored = Kv::default();
        restored.restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        assert_eq!(
            get(&restored, "é"),
            KvOutput::Value(Some(b"accent".to_vec()))
        );
    }
}
