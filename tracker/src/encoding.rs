//! The MessagePack encodings of values that serde has no one natural form for, used with
//! `#[serde(with = ...)]` by every tracker type that carries them (PROTOCOL.md 2.4):
//! socket addresses as `"ip:port"` text and 32-byte digests as `bin`. Each also reads the
//! form earlier versions wrote into the replicated log and snapshots.

/// A socket address as the text `"203.0.113.7:7000"` or `"[2001:db8::1]:7000"`.
///
/// Decoding also accepts serde's own binary form of `SocketAddr`, a map of one key `V4`
/// or `V6` to `[[octets...], port]`, which earlier versions wrote.
pub(crate) mod socket_addr {
    use std::fmt;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `addr` as text.
    pub(crate) fn serialize<S: Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(addr)
    }

    /// Reads an address from text (or the earlier map form).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        d.deserialize_any(AddrVisitor)
    }

    struct AddrVisitor;

    impl<'de> Visitor<'de> for AddrVisitor {
        type Value = SocketAddr;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "an IP address and port like \"203.0.113.7:7000\" or \"[2001:db8::1]:7000\"",
            )
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<SocketAddr, E> {
            text.parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SocketAddr, A::Error> {
            let Some(family) = map.next_key::<String>()? else {
                return Err(de::Error::invalid_length(0, &self));
            };
            let (octets, port): (Vec<u8>, u16) = map.next_value()?;
            let ip = match (family.as_str(), octets.len()) {
                ("V4", 4) => IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])),
                ("V6", 16) => {
                    let mut bytes = [0u8; 16];
                    bytes.copy_from_slice(&octets);
                    IpAddr::V6(Ipv6Addr::from(bytes))
                }
                _ => return Err(de::Error::invalid_value(de::Unexpected::Map, &self)),
            };
            Ok(SocketAddr::new(ip, port))
        }
    }
}

/// A 32-byte digest (a BLAKE3 hash) as MessagePack `bin 8` of length 32; decoding also
/// accepts an array of 32 integers, the form earlier versions wrote. Only the replicated
/// state (the `server` feature) uses it.
#[cfg(feature = "server")]
pub(crate) use certs::digest32 as digest;

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Addr(#[serde(with = "super::socket_addr")] SocketAddr);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Digest(#[serde(with = "super::digest")] [u8; 32]);

    #[test]
    fn an_address_is_text_and_the_earlier_map_form_still_reads() {
        for text in ["127.0.0.1:45001", "[2001:db8::1]:7000"] {
            let addr: SocketAddr = text.parse().unwrap();
            let bytes = rmp_serde::to_vec(&Addr(addr)).unwrap();
            assert_eq!(bytes, rmp_serde::to_vec(text).unwrap());
            assert_eq!(rmp_serde::from_slice::<Addr>(&bytes).unwrap(), Addr(addr));
            let old = rmp_serde::to_vec(&addr).unwrap();
            assert_eq!(rmp_serde::from_slice::<Addr>(&old).unwrap(), Addr(addr));
        }
        let err = rmp_serde::from_slice::<Addr>(&rmp_serde::to_vec("localhost:1").unwrap());
        assert!(err.unwrap_err().to_string().contains("IP address and port"));
    }

    #[test]
    fn a_digest_is_bin_and_the_earlier_array_form_still_reads() {
        let bytes = rmp_serde::to_vec(&Digest([7; 32])).unwrap();
        assert_eq!(&bytes[..2], &[0xc4, 32]);
        assert_eq!(
            rmp_serde::from_slice::<Digest>(&bytes).unwrap(),
            Digest([7; 32])
        );
        let old = rmp_serde::to_vec(&[7u8; 32]).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<Digest>(&old).unwrap(),
            Digest([7; 32])
        );
        let fp = certs::Fingerprint::from_bytes([9; 32]);
        let bytes = rmp_serde::to_vec(&fp).unwrap();
        assert_eq!(&bytes[..2], &[0xc4, 32]);
        let old = rmp_serde::to_vec(&[9u8; 32]).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<certs::Fingerprint>(&old).unwrap(),
            fp
        );
    }
}
