//! Framing: every message is a 4-byte big-endian length and then that many bytes of
//! MessagePack. Each stream starts with one byte that says what kind of stream it is.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StreamErrorCode, TransportError};

/// Default maximum size of one frame body: 1 MiB. Large enough for any control message
/// (a torrent file with 100,000 piece hashes is 3.2 MB and is split by the application,
/// or raised explicitly); small enough that a hostile remote cannot make us allocate much.
/// Each protocol names its own maximum (PROTOCOL.md); an endpoint serving or dialling
/// several sets one per ALPN ([`crate::EndpointConfig::max_frame_for`]).
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
    /// Every stream kind, in byte order.
    pub const ALL: [StreamKind; 4] = [
        StreamKind::Request,
        StreamKind::Message,
        StreamKind::Chunk,
        StreamKind::Channel,
    ];

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(StreamKind::Request),
            2 => Some(StreamKind::Message),
            3 => Some(StreamKind::Chunk),
            4 => Some(StreamKind::Channel),
            _ => None,
        }
    }

    /// The kind a stream's first byte names, if it is one of `allowed` (the kinds the
    /// connection's protocol uses); otherwise the stream is refused with
    /// `UNKNOWN_STREAM_KIND`.
    pub(crate) fn check(byte: u8, allowed: &[StreamKind]) -> Result<StreamKind, FrameError> {
        let detail = match StreamKind::from_byte(byte) {
            Some(kind) if allowed.contains(&kind) => return Ok(kind),
            Some(kind) => format!("stream kind {kind:?} ({byte:#04x}) is not used here"),
            None => format!("unknown stream kind byte {byte:#04x}"),
        };
        Err(FrameError {
            code: StreamErrorCode::UnknownStreamKind,
            detail,
        })
    }
}

/// Why a stream's bytes were refused: the code to refuse the stream with, and what was
/// wrong, for the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// The stream error code.
    pub(crate) code: StreamErrorCode,
    /// What was wrong.
    pub(crate) detail: String,
}

impl From<FrameError> for TransportError {
    fn from(e: FrameError) -> Self {
        TransportError::BadFrame {
            code: e.code,
            detail: e.detail,
        }
    }
}

/// Checks a frame's length prefix against the maximum, before anything is allocated for
/// its body.
pub(crate) fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        return Err(FrameError {
            code: StreamErrorCode::FrameTooLarge,
            detail: format!("frame of {len} bytes exceeds the maximum of {max} bytes"),
        });
    }
    Ok(())
}

/// Decodes a frame's body as a `T`.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(body).map_err(|e| FrameError {
        code: StreamErrorCode::MalformedFrame,
        detail: format!(
            "cannot decode a {} from {} bytes: {e}",
            std::any::type_name::<T>(),
            body.len()
        ),
    })
}

/// The bytes received on a channel, taken apart into frames as they arrive: however the
/// stream's bytes are cut into reads, the frames come out the same.
#[derive(Debug)]
pub(crate) struct FrameBuffer {
    buf: BytesMut,
    max: usize,
}

impl FrameBuffer {
    /// An empty buffer for frames of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        FrameBuffer {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Appends bytes read from the stream.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet taken as frames.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no byte is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops every buffered byte (the stream was refused).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next frame as a `T` if a whole one is buffered. A frame over the maximum or a
    /// body that is not a `T` is an error, after which the buffer is empty: the stream is
    /// refused and nothing after the bad frame is read.
    pub(crate) fn try_decode<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if let Err(e) = check_len(len, self.max) {
            self.clear();
            return Err(e);
        }
        if self.buf.len() - 4 < len {
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        let decoded = decode_body(&self.buf[4..4 + len]);
        self.buf.advance(4 + len);
        if decoded.is_err() {
            self.clear();
        }
        decoded.map(Some)
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

/// Reads the stream kind byte. A byte that is no kind, or a kind not in `allowed` (the
/// kinds the connection's protocol uses), refuses the stream with `UNKNOWN_STREAM_KIND`.
pub(crate) async fn read_kind(
    send: &mut SendStream,
    recv: &mut RecvStream,
    allowed: &[StreamKind],
) -> Result<StreamKind, TransportError> {
    let mut byte = [0u8; 1];
    recv.read_exact(&mut byte).await?;
    StreamKind::check(byte[0], allowed).map_err(|e| {
        refuse(Some(send), recv, e.code);
        e.into()
    })
}

/// Reads one frame and decodes it. A frame over `max`, a stream that ends inside the
/// frame, or a body that does not decode as `T` refuses the stream with the matching code
/// (on both halves when `send` is given).
pub(crate) async fn read_frame<T: DeserializeOwned>(
    mut send: Option<&mut SendStream>,
    recv: &mut RecvStream,
    max: usize,
) -> Result<T, TransportError> {
    let mut len = [0u8; 4];
    read_part(send.as_deref_mut(), recv, &mut len, "length").await?;
    let len = u32::from_be_bytes(len) as usize;
    if let Err(e) = check_len(len, max) {
        refuse(send, recv, e.code);
        return Err(e.into());
    }
    let mut body = vec![0u8; len];
    read_part(send.as_deref_mut(), recv, &mut body, "body").await?;
    decode_body(&body).map_err(|e| {
        refuse(send, recv, e.code);
        e.into()
    })
}

/// Fills `buf` from the stream; a stream that finishes first ended inside a frame, which
/// refuses it with `MALFORMED_FRAME`.
async fn read_part(
    send: Option<&mut SendStream>,
    recv: &mut RecvStream,
    buf: &mut [u8],
    part: &str,
) -> Result<(), TransportError> {
    match recv.read_exact(buf).await {
        Ok(()) => Ok(()),
        Err(quinn::ReadExactError::FinishedEarly(got)) => {
            refuse(send, recv, StreamErrorCode::MalformedFrame);
            Err(TransportError::BadFrame {
                code: StreamErrorCode::MalformedFrame,
                detail: format!(
                    "the stream ended inside a frame: {got} of the {} bytes of its {part}",
                    buf.len()
                ),
            })
        }
        Err(quinn::ReadExactError::ReadError(e)) => Err(e.into()),
    }
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
