//! The info hash: the name of a torrent.

use std::fmt;
use std::str::FromStr;

/// The BLAKE3 hash of a torrent's info part, which names the torrent.
///
/// Its text form is 64 lowercase hexadecimal digits. With serde it is those 64 digits in
/// human-readable formats and 32 raw bytes in binary ones (a MessagePack `bin`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash([u8; 32]);

impl InfoHash {
    /// Number of characters in the text form.
    pub const TEXT_LEN: usize = 64;

    /// The info hash of an info part's bytes.
    pub fn of_info_bytes(info_bytes: &[u8]) -> Self {
        InfoHash(*blake3::hash(info_bytes).as_bytes())
    }

    /// Builds an info hash from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        InfoHash(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// Why a string is not an info hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoHashParseError {
    /// Wrong number of characters.
    #[error("an info hash is 64 hexadecimal digits, but this one has {0} characters")]
    Length(usize),
    /// A character that is not a hexadecimal digit.
    #[error("an info hash is hexadecimal (0-9, a-f), but it contains {0:?} at position {1}")]
    Character(char, usize),
}

impl FromStr for InfoHash {
    type Err = InfoHashParseError;

    /// Parses 64 hexadecimal digits; upper case is accepted too.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let count = text.chars().count();
        if count != Self::TEXT_LEN {
            return Err(InfoHashParseError::Length(count));
        }
        let mut bytes = [0u8; 32];
        for (at, c) in text.chars().enumerate() {
            let digit = c.to_digit(16).ok_or(InfoHashParseError::Character(c, at))?;
            // `digit` < 16, so the cast is exact.
            bytes[at / 2] |= (digit as u8) << if at % 2 == 0 { 4 } else { 0 };
        }
        Ok(InfoHash(bytes))
    }
}

impl serde::Serialize for InfoHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        certs::digest32::serialize_or_text(&self.0, self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for InfoHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        certs::digest32::deserialize_or_text(
            deserializer,
            "an info hash: 32 bytes or 64 hexadecimal digits",
            InfoHash,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let hash = InfoHash::of_info_bytes(b"info");
        let text = hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text, blake3::hash(b"info").to_hex().as_str());
        assert_eq!(text.parse::<InfoHash>(), Ok(hash));
        assert_eq!(text.to_uppercase().parse::<InfoHash>(), Ok(hash));
    }

    #[test]
    fn text_errors_are_clear() {
        let err = "abc".parse::<InfoHash>().unwrap_err();
        assert_eq!(err, InfoHashParseError::Length(3));
        assert!(err.to_string().contains("64 hexadecimal digits"));
        let mut text = InfoHash::from_bytes([0; 32]).to_string();
        text.replace_range(5..6, "g");
        assert_eq!(
            text.parse::<InfoHash>(),
            Err(InfoHashParseError::Character('g', 5))
        );
    }

    #[test]
    fn messagepack_is_32_bytes() {
        let hash = InfoHash::of_info_bytes(b"x");
        let bytes = rmp_serde::to_vec(&hash).unwrap();
        assert_eq!(bytes.len(), 2 + 32); // bin8 header
        assert_eq!(rmp_serde::from_slice::<InfoHash>(&bytes).unwrap(), hash);
    }
}
