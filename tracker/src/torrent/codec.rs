//! Reading and writing torrent files: header, MessagePack body, info part.

use std::io::ErrorKind;
use std::net::SocketAddr;

use serde::de::DeserializeOwned;

use super::{
    FORMAT_VERSION, Fingerprint, HEADER_LEN, Info, MAGIC, MAX_TORRENT_FILE_LEN, Torrent,
    TorrentError,
};

/// Names of the parts, for error messages.
const HEADER: &str = "header";
const BODY: &str = "torrent body";
const INFO: &str = "info part";

/// Deepest MessagePack nesting accepted; the format needs 4.
const MAX_DEPTH: usize = 16;

/// The body as it is on disk.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTorrent {
    #[serde(with = "serde_bytes")]
    info: Vec<u8>,
    trackers: Vec<WireTracker>,
    #[serde(with = "serde_bytes")]
    tracker_ca: Vec<u8>,
    created: u64,
    comment: Option<String>,
}

/// A tracker node as it is on disk.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTracker {
    addr: String,
}

/// The info part's bytes.
pub(super) fn encode_info(info: &Info) -> Result<Vec<u8>, TorrentError> {
    rmp_serde::to_vec_named(info).map_err(|e| TorrentError::Corrupt {
        part: INFO,
        detail: e.to_string(),
    })
}

/// The whole file.
pub(super) fn try_encode(torrent: &Torrent) -> Result<Vec<u8>, TorrentError> {
    let wire = WireTorrent {
        info: torrent.info_bytes.clone(),
        trackers: torrent
            .trackers
            .iter()
            .map(|addr| WireTracker {
                addr: addr.to_string(),
            })
            .collect(),
        tracker_ca: torrent.tracker_ca.as_bytes().to_vec(),
        created: torrent.created,
        comment: torrent.comment.clone(),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + torrent.info_bytes.len() + 256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    rmp_serde::encode::write_named(&mut out, &wire).map_err(|e| TorrentError::Corrupt {
        part: BODY,
        detail: e.to_string(),
    })?;
    Ok(out)
}

impl Torrent {
    /// Reads a torrent file, checking every rule and limit of the [format](super).
    ///
    /// Never panics, whatever the bytes; a hostile file gets an error, and every error
    /// says what is wrong in words a person understands.
    pub fn parse(bytes: &[u8]) -> Result<Torrent, TorrentError> {
        if bytes.len() > MAX_TORRENT_FILE_LEN {
            return Err(TorrentError::TooLarge {
                len: bytes.len() as u64,
                max: MAX_TORRENT_FILE_LEN as u64,
            });
        }
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(TorrentError::NotATorrent);
        }
        let Some((header, body)) = bytes.split_at_checked(HEADER_LEN) else {
            return Err(TorrentError::Truncated { part: HEADER });
        };
        let version = u16::from_be_bytes([header[8], header[9]]);
        if version != FORMAT_VERSION {
            return Err(TorrentError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let wire: WireTorrent = decode_exact(body, BODY)?;
        let info: Info = decode_exact(&wire.info, INFO)?;
        let tracker_ca: [u8; 32] =
            wire.tracker_ca
                .as_slice()
                .try_into()
                .map_err(|_| TorrentError::BadTrackerCa {
                    len: wire.tracker_ca.len(),
                })?;
        let trackers =
            wire.trackers
                .into_iter()
                .map(|tracker| {
                    tracker.addr.parse::<SocketAddr>().map_err(|_| {
                        TorrentError::BadTrackerAddress {
                            reason: "it is not an IP address and port such as 203.0.113.7:7000 \
                                 or [2001:db8::1]:7000"
                                .into(),
                            addr: tracker.addr,
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
        Torrent::assemble(
            info,
            wire.info,
            trackers,
            Fingerprint::from_bytes(tracker_ca),
            wire.created,
            wire.comment,
        )
    }

    /// Writes the torrent file. The info part is written exactly as it was read or built,
    /// so the info hash of the result is [`Torrent::info_hash`].
    pub fn encode(&self) -> Vec<u8> {
        // `Torrent::new` and `Torrent::parse` only return torrents whose encoding succeeded
        // (`new` encodes it; `parse` decoded the same types within the same limits), and
        // encoding these plain types into a `Vec` has no other way to fail.
        try_encode(self).expect("a checked torrent always encodes")
    }
}

/// Decodes exactly one MessagePack value that fills `bytes`.
fn decode_exact<T: DeserializeOwned>(bytes: &[u8], part: &'static str) -> Result<T, TorrentError> {
    let mut rest = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| decode_error(e, part))?;
    drop(de);
    if !rest.is_empty() {
        return Err(TorrentError::TrailingData {
            part,
            extra: rest.len(),
        });
    }
    Ok(value)
}

/// A person-readable error for a MessagePack decoding failure.
fn decode_error(error: rmp_serde::decode::Error, part: &'static str) -> TorrentError {
    use rmp_serde::decode::Error;
    match error {
        Error::InvalidMarkerRead(e) | Error::InvalidDataRead(e)
            if e.kind() == ErrorKind::UnexpectedEof =>
        {
            if part == INFO {
                // The file is whole (the info part is a complete `bin`), but what the bin
                // holds is cut short: the writer was broken.
                TorrentError::Corrupt {
                    part,
                    detail: "it ends in the middle of a value".into(),
                }
            } else {
                TorrentError::Truncated { part }
            }
        }
        Error::TypeMismatch(marker) => TorrentError::Corrupt {
            part,
            detail: format!("a value has the wrong type (MessagePack marker {marker:?})"),
        },
        Error::DepthLimitExceeded => TorrentError::Corrupt {
            part,
            detail: "values are nested too deeply".into(),
        },
        other => TorrentError::Corrupt {
            part,
            detail: other.to_string(),
        },
    }
}
