//! Serde for 32-byte digests (fingerprints, info hashes, token hashes): one encoding for
//! all of them, so that the wire and the logs agree.
//!
//! In binary formats a digest is its 32 bytes (a MessagePack `bin 8` of length 32).
//! Decoding also accepts an array of 32 integers, the form earlier versions wrote and
//! that old logs and snapshots still hold. Types with a text form (a fingerprint, an
//! info hash) are that text in human-readable formats such as JSON.
//!
//! Use [`serialize`] and [`deserialize`] with `#[serde(with = "certs::digest32")]` on a
//! `[u8; 32]`, or [`serialize_or_text`] and [`deserialize_or_text`] in a type's own
//! `Serialize` and `Deserialize`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Writes the 32 bytes as `bin`.
pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// Reads 32 bytes from `bin` (or an array of 32 integers).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    d.deserialize_bytes(DigestVisitor {
        expecting: "32 bytes",
        from_bytes: |bytes| bytes,
        from_text: |_| Err("a digest is 32 bytes, not text".to_owned()),
    })
}

/// Writes `text` in human-readable formats, the 32 bytes as `bin` otherwise.
pub fn serialize_or_text<S: Serializer>(
    bytes: &[u8; 32],
    text: &impl fmt::Display,
    s: S,
) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.collect_str(text)
    } else {
        s.serialize_bytes(bytes)
    }
}

/// Reads a `T` from its text in human-readable formats (parsed with `FromStr`), from 32
/// bytes (or an array of 32 integers) otherwise. `expecting` completes "invalid type:
/// ..., expected".
pub fn deserialize_or_text<'de, D, T>(
    d: D,
    expecting: &'static str,
    from_bytes: fn([u8; 32]) -> T,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let visitor = DigestVisitor {
        expecting,
        from_bytes,
        from_text: |text| text.parse::<T>().map_err(|e| e.to_string()),
    };
    if d.is_human_readable() {
        d.deserialize_str(visitor)
    } else {
        d.deserialize_bytes(visitor)
    }
}

/// Reads 32 bytes, or the text form, and makes a `V` of them.
struct DigestVisitor<V> {
    expecting: &'static str,
    from_bytes: fn([u8; 32]) -> V,
    from_text: fn(&str) -> Result<V, String>,
}

impl<'de, V> Visitor<'de> for DigestVisitor<V> {
    type Value = V;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<V, E> {
        (self.from_text)(text).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<V, E> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| E::invalid_length(bytes.len(), &self))?;
        Ok((self.from_bytes)(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V, A::Error> {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(33, &self));
        }
        Ok((self.from_bytes)(bytes))
    }
}
