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

/// A key as the map stores it: short keys (the benchmark's are 8 bytes) inline in the
/// table, longer ones on the heap. With `String` keys every lookup compared against a
/// separate heap buffer of a random, cold entry: a cache miss per put on every replica
/// (about 4 % of the cluster's CPU in a 64-client profile).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// Up to [`INLINE_KEY`] bytes.
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    /// Longer keys.
    Heap(Box<str>),
}

/// Longest key stored inline: keeps [`Key`] as small as a `String`.
const INLINE_KEY: usize = 22;

/// A value as the map stores it: short values (the benchmark's are 100 bytes) in the
/// table next to their key, longer ones on the heap. With `Vec` values every put copied
/// into a separate heap buffer of a random, cold entry, a second cache and TLB miss
/// after the table's own: that copy was 6 % of the cluster's CPU in a 64-client profile,
/// as much as the table lookup itself.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    /// Up to [`INLINE_VALUE`] bytes.
    Inline { len: u8, bytes: [u8; INLINE_VALUE] },
    /// Longer values.
    Heap(Vec<u8>),
}

/// Longest value stored inline: with the tag and length, [`Value`] is 128 bytes.
const INLINE_VALUE: usize = 126;

impl Value {
    /// The one representation of `value` (inline exactly when it fits), so that the
    /// derived equality agrees with the bytes'.
    fn new(value: &[u8]) -> Value {
        match u8::try_from(value.len()) {
            Ok(len) if value.len() <= INLINE_VALUE => {
                let mut bytes = [0; INLINE_VALUE];
                bytes[..value.len()].copy_from_slice(value);
                Value::Inline { len, bytes }
            }
            _ => Value::Heap(value.to_vec()),
        }
    }

    /// Replaces the value in place, reusing a heap buffer that is already there.
    fn set(&mut self, value: &[u8]) {
        match self {
            Value::Heap(old) if value.len() > INLINE_VALUE => {
                old.clear();
                old.extend_from_slice(value);
            }
            _ => *self = Value::new(value),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Value::Heap(v) => v,
        }
    }
}

impl Key {
    /// The one representation of `key` (inline exactly when it fits), so that the
    /// derived equality and hash agree with the string's.
    fn new(key: &str) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Heap(key.into()),
        }
    }

    fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            // Built from a `str`, so always valid UTF-8 (never lossy).
            Key::Inline { len, bytes } => String::from_utf8_lossy(&bytes[..usize::from(*len)]),
            Key::Heap(s) => std::borrow::Cow::Borrowed(s),
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
                // Overwriting reuses the entry's key (and a long value's buffer): no
                // allocation and no free for a key that is already there.
                let key = Key::new(key);
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
            KvQuery::Get(key) => {
                KvOutput::Value(self.map.get(&Key::new(key)).map(|v| v.as_bytes().to_vec()))
            }
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
            .map(|(k, v)| (Key::new(&k), Value::new(&v)))
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
                .map(|(k, v)| (k.as_str(), serde_bytes::Bytes::new(v.as_bytes()))),
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
