//! Framing: every message is a 4-byte big-endian length and then that many bytes of
//! MessagePack. Each stream starts with one byte that says what kind of stream it is.

use bytes::{BufMut, Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StreamErrorCode, TransportError};

/// Default maximum size of one frame body: 1 MiB. Large enough for any control message
/// (a torrent file with 100,000 piece hashes is 3.2 MB and is split by the application,
/// or raised explicitly); small enough that a hostile remote cannot make us allocate much.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// The first byte of every stream opened by either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// One request frame; the opener waits for one response frame.
    Request = 1,
    /// One message frame; no response.
    Message = 2,
    /// One request frame; the response is a header frame and then raw bytes to the end
    /// of the stream.
    Chunk = 3,
    /// A long-lived channel: any number of frames in each direction, until either side
    /// finishes its half. See [`crate::Connection::open_channel`].
    Channel = 4,
}

impl StreamKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(StreamKind::Request),
            2 => Some(StreamKind::Message),
            3 => Some(StreamKind::Chunk),
            4 => Some(StreamKind::Channel),
            _ => None,
        }
    }
}

/// Encodes `value` as a length-prefixed frame, optionally preceded by a stream kind byte.
pub(crate) fn encode<T: Serialize + ?Sized>(
    kind: Option<StreamKind>,
    value: &T,
    max: usize,
) -> Result<Bytes, TransportError> {
    let mut out = BytesMut::new();
    if let Some(kind) = kind {
        out.put_u8(kind as u8);
    }
    encode_into(&mut out, value, max)?;
    Ok(out.freeze())
}

/// Appends `value` as a length-prefixed frame to `out`, serializing in place (no
/// intermediate body buffer). On error `out` is left as it was.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    out: &mut BytesMut,
    value: &T,
    max: usize,
) -> Result<(), TransportError> {
    let start = out.len();
    out.put_u32(0);
    let mut writer = out.writer();
    let encoded = rmp_serde::encode::write_named(&mut writer, value);
    let out = writer.into_inner();
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(TransportError::Encode(e.to_string()));
    }
    let len = out.len() - start - 4;
    if len > max {
        out.truncate(start);
        return Err(TransportError::FrameTooLarge { len, max });
    }
    // `max` is far below u32::MAX, so the length always fits.
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Refuses a stream: stops reading and resets our sending side with `code`, so the remote
/// learns the code whichever side it is waiting on.
pub(crate) fn refuse(send: Option<&mut SendStream>, recv: &mut RecvStream, code: StreamErrorCode) {
    let _ = recv.stop(code.var_int());
    if let Some(send) = send {
        let _ = send.reset(code.var_int());
    }
}

/// Reads the stream kind byte.
pub(crate) async fn read_kind(
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<StreamKind, TransportError> {
    let mut byte = [0u8; 1];
    recv.read_exact(&mut byte).await?;
    StreamKind::from_byte(byte[0]).ok_or_else(|| {
        refuse(Some(send), recv, StreamErrorCode::UnknownStreamKind);
        TransportError::BadFrame {
            code: StreamErrorCode::UnknownStreamKind,
            detail: format!("unknown stream kind byte {:#04x}", byte[0]),
        }
    })
}

/// Reads one frame and decodes it. A frame over `max` or one that does not decode as `T`
/// refuses the stream with the matching code (on both halves when `send` is given).
pub(crate) async fn read_frame<T: DeserializeOwned>(
    send: Option<&mut SendStream>,
    recv: &mut RecvStream,
    max: usize,
) -> Result<T, TransportError> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        refuse(send, recv, StreamErrorCode::FrameTooLarge);
        return Err(TransportError::BadFrame {
            code: StreamErrorCode::FrameTooLarge,
            detail: format!("frame of {len} bytes exceeds the maximum of {max} bytes"),
        });
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    rmp_serde::from_slice(&body).map_err(|e| {
        refuse(send, recv, StreamErrorCode::MalformedFrame);
        TransportError::BadFrame {
            code: StreamErrorCode::MalformedFrame,
            detail: format!(
                "cannot decode a {} from {len} bytes: {e}",
                std::any::type_name::<T>()
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_puts_kind_then_big_endian_length_then_messagepack() {
        let frame = encode(Some(StreamKind::Request), &7u8, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(&frame[..], &[1, 0, 0, 0, 1, 7]);
    }

    #[test]
    fn encode_refuses_a_body_over_the_maximum() {
        let err = encode(None, &vec![0u8; 100], 50).unwrap_err();
        assert!(
            matches!(err, TransportError::FrameTooLarge { max: 50, .. }),
            "{err}"
        );
    }
}
