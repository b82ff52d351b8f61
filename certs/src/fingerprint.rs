//! Fingerprints: the identity of a node, derived from its public key.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, Encoding};
use rustls_pki_types::CertificateDer;

use crate::CertError;

/// Number of characters in the text form of a fingerprint: 32 bytes in base32.
pub const FINGERPRINT_TEXT_LEN: usize = 52;

/// The BLAKE3 hash of a SubjectPublicKeyInfo (DER).
///
/// It names a key, not a certificate: renewing a certificate for the same key keeps the
/// fingerprint. Its text form is lowercase RFC 4648 base32 without padding, 52 characters.
///
/// With serde it is that text in human-readable formats (JSON) and 32 raw bytes in binary
/// ones (a MessagePack `bin 8` of length 32, as on the wire). Decoding a binary format also
/// accepts an array of 32 integers, the form earlier versions wrote into tracker state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_public_key(spki_der: &[u8]) -> Self {
        Fingerprint(*blake3::hash(spki_der).as_bytes())
    }

    /// The fingerprint of the public key inside a DER certificate.
    pub fn of_certificate(certificate: &CertificateDer<'_>) -> Result<Self, CertError> {
        let (_, cert) = x509_parser::parse_x509_certificate(certificate.as_ref()).map_err(|e| {
            CertError::invalid_certificate(format!("not an X.509 certificate: {e}"))
        })?;
        Ok(Self::of_public_key(cert.tbs_certificate.subject_pki.raw))
    }

    /// Builds a fingerprint from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn lower_base32() -> Encoding {
    let mut spec = BASE32_NOPAD.specification();
    spec.symbols = "abcdefghijklmnopqrstuvwxyz234567".to_owned();
    // The spec is a constant that is known to be valid.
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&lower_base32().encode(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintParseError {
    /// Wrong number of characters.
    #[error(
        "a fingerprint is {FINGERPRINT_TEXT_LEN} characters of lowercase base32, \
         but this one has {0} characters"
    )]
    Length(usize),
    /// A character outside `a-z` and `2-7`.
    #[error("a fingerprint is lowercase base32 (a-z, 2-7), but it contains {0:?} at position {1}")]
    Character(char, usize),
    /// The last character carries bits that a 32-byte value cannot have.
    #[error("not a canonical fingerprint: its last character has bits set past 32 bytes")]
    NonCanonical,
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let count = text.chars().count();
        if count != FINGERPRINT_TEXT_LEN {
            return Err(FingerprintParseError::Length(count));
        }
        if let Some((at, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, 'a'..='z' | '2'..='7'))
        {
            return Err(FingerprintParseError::Character(c, at));
        }
        let bytes = lower_base32()
            .decode(text.as_bytes())
            .map_err(|_| FingerprintParseError::NonCanonical)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| FingerprintParseError::NonCanonical)?;
        Ok(Fingerprint(bytes))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::digest32::serialize_or_text(&self.0, self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::digest32::deserialize_or_text(
            deserializer,
            "a fingerprint: 32 bytes or 52 characters of lowercase base32",
            Fingerprint,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_is_52_lowercase_base32_characters_and_round_trips() {
        let fp = Fingerprint::of_public_key(b"some key");
        let text = fp.to_string();
        assert_eq!(text.len(), 52);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn parse_rejects_wrong_length_with_the_length() {
        let err = "abc".parse::<Fingerprint>().unwrap_err();
        assert_eq!(err, FingerprintParseError::Length(3));
        assert!(err.to_string().contains("52"));
    }

    #[test]
    fn parse_rejects_uppercase_and_padding() {
        let good = Fingerprint::of_public_key(b"k").to_string();
        let upper = good.to_uppercase();
        assert!(matches!(
            upper.parse::<Fingerprint>(),
            Err(FingerprintParseError::Character(_, 0))
        ));
        let padded = format!("{}=", &good[..51]);
        assert!(matches!(
            padded.parse::<Fingerprint>(),
            Err(FingerprintParseError::Character('=', 51))
        ));
    }

    #[test]
    fn parse_rejects_non_canonical_trailing_bits() {
        // 52 characters carry 260 bits; the last 4 must be zero for 32 bytes.
        let mut text = Fingerprint::of_public_key(b"k").to_string();
        text.pop();
        text.push('7');
        assert_eq!(
            text.parse::<Fingerprint>(),
            Err(FingerprintParseError::NonCanonical)
        );
    }
}
