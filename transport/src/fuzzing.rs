//! The frame decoders, callable on plain bytes by the fuzz targets in `fuzz/` (the
//! `fuzzing` feature). Not part of the crate's API: nothing else may use it.
//!
//! Each wrapper runs the same code a connection runs on the bytes QUIC delivers: the
//! stream kind check, the length-prefix check and body decoding of a single frame, and
//! the channel's [`FrameBuffer`] that takes frames out of reads of any size.

use serde::de::DeserializeOwned;

use crate::frame::{self, FrameBuffer};
use crate::{StreamKind, TransportError};

/// The kind a stream's first byte names, if `allowed`; otherwise the error the stream is
/// refused with.
pub fn check_kind(byte: u8, allowed: &[StreamKind]) -> Result<StreamKind, TransportError> {
    Ok(StreamKind::check(byte, allowed)?)
}

/// Reads one frame from the start of `stream` as a request, message or chunk stream's
/// reader does (the kind byte already taken off): its length, checked against `max`
/// before anything is allocated, then its body as a `T`. Returns the value and the bytes
/// the frame took.
pub fn read_frame<T: DeserializeOwned>(
    stream: &[u8],
    max: usize,
) -> Result<(T, usize), TransportError> {
    let ended = |got: usize, want: usize, part: &str| TransportError::BadFrame {
        code: crate::StreamErrorCode::MalformedFrame,
        detail: format!("the stream ended inside a frame: {got} of the {want} bytes of its {part}"),
    };
    let Some((len, rest)) = stream.split_first_chunk::<4>() else {
        return Err(ended(stream.len(), 4, "length"));
    };
    let len = u32::from_be_bytes(*len) as usize;
    frame::check_len(len, max)?;
    let Some(body) = rest.get(..len) else {
        return Err(ended(rest.len(), len, "body"));
    };
    Ok((frame::decode_body(body)?, 4 + len))
}

/// A channel's receiving side without the stream: bytes go in as they would arrive,
/// frames come out.
#[derive(Debug)]
pub struct ChannelFrames(FrameBuffer);

impl ChannelFrames {
    /// An empty channel whose frames may be up to `max` bytes.
    pub fn new(max: usize) -> Self {
        ChannelFrames(FrameBuffer::new(max))
    }

    /// Bytes as one read from the stream returned them.
    pub fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
    }

    /// The next whole frame, `None` while it is incomplete, or the error the channel is
    /// refused with.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        Ok(self.0.try_decode()?)
    }

    /// Bytes received and not yet taken as frames.
    pub fn pending(&self) -> usize {
        self.0.len()
    }
}

/// Encodes `value` as one frame (length prefix and MessagePack body), as every sender
/// does, or the error that refuses it before sending.
pub fn encode_frame<T: serde::Serialize + ?Sized>(
    value: &T,
    max: usize,
) -> Result<Vec<u8>, TransportError> {
    Ok(frame::encode(None, value, max)?.to_vec())
}
