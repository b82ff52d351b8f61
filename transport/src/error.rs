//! Errors of the transport, and the error codes that travel on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use certs::Fingerprint;

/// A QUIC stream error code, sent in `RESET_STREAM` and `STOP_SENDING` frames.
///
/// These values are part of the wire protocol (see `PROTOCOL.md`); never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamErrorCode {
    /// A frame's length prefix exceeded the receiver's maximum frame size.
    FrameTooLarge,
    /// A frame's body is not valid MessagePack for the expected type, or the stream ended
    /// inside a frame.
    MalformedFrame,
    /// The first byte of the stream is not a known stream kind.
    UnknownStreamKind,
    /// The requester no longer wants the answer (for example, another peer won the race).
    Cancelled,
    /// The responder failed while producing the answer.
    Internal,
    /// A code this version does not know.
    Other(u64),
}

impl StreamErrorCode {
    /// The numeric code on the wire.
    pub fn to_u64(self) -> u64 {
        match self {
            StreamErrorCode::FrameTooLarge => 0x01,
            StreamErrorCode::MalformedFrame => 0x02,
            StreamErrorCode::UnknownStreamKind => 0x03,
            StreamErrorCode::Cancelled => 0x04,
            StreamErrorCode::Internal => 0x05,
            StreamErrorCode::Other(code) => code,
        }
    }

    /// The code for a number read from the wire.
    pub fn from_u64(code: u64) -> Self {
        match code {
            0x01 => StreamErrorCode::FrameTooLarge,
            0x02 => StreamErrorCode::MalformedFrame,
            0x03 => StreamErrorCode::UnknownStreamKind,
            0x04 => StreamErrorCode::Cancelled,
            0x05 => StreamErrorCode::Internal,
            other => StreamErrorCode::Other(other),
        }
    }

    pub(crate) fn var_int(self) -> quinn::VarInt {
        quinn::VarInt::from_u64(self.to_u64()).unwrap_or(quinn::VarInt::MAX)
    }
}

impl std::fmt::Display for StreamErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            StreamErrorCode::FrameTooLarge => "frame too large",
            StreamErrorCode::MalformedFrame => "malformed frame",
            StreamErrorCode::UnknownStreamKind => "unknown stream kind",
            StreamErrorCode::Cancelled => "cancelled",
            StreamErrorCode::Internal => "internal error",
            StreamErrorCode::Other(code) => return write!(f, "error code {code:#x}"),
        };
        write!(f, "{text} (code {:#x})", self.to_u64())
    }
}

/// Everything that can go wrong in the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS or endpoint configuration is invalid (a programming or setup error).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The UDP socket could not be opened.
    #[error("cannot open UDP socket on {addr}: {error}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The handshake with the remote failed: wrong identity, wrong ALPN, no answer, ...
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The remote's address.
        addr: SocketAddr,
        /// What went wrong, from QUIC or TLS.
        reason: String,
    },
    /// The server's certificate is not what the dialler expects (another key, or not
    /// signed by the expected CA). Dialling it again with the same expectation cannot
    /// succeed: see [`TransportError::is_permanent`].
    #[error("refused the certificate of {addr}: {reason}")]
    CertificateRefused {
        /// The remote's address.
        addr: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The remote serves none of the protocols offered (TLS alert
    /// `no_application_protocol`): it runs another version of the protocol, or another
    /// service. Dialling it again cannot succeed: see [`TransportError::is_permanent`].
    #[error(
        "{addr} does not speak {alpn}: it runs another protocol version (or another \
         service); run the same ByteTorrent version on both sides"
    )]
    NoCommonProtocol {
        /// The remote's address.
        addr: SocketAddr,
        /// The protocol we offered.
        alpn: String,
    },
    /// No handshake completed within the configured time.
    #[error("cannot connect to {addr}: no answer within {after:?}")]
    ConnectTimeout {
        /// The remote's address.
        addr: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// The remote failed recently and is backed off; the dial was not attempted.
    #[error("{addr} is backed off after {failures} failed dial(s); next attempt in {retry_in:?}")]
    BackedOff {
        /// The remote's address.
        addr: SocketAddr,
        /// Consecutive failures so far.
        failures: u32,
        /// Time left until a dial will be attempted again.
        retry_in: Duration,
    },
    /// The remote presented a key other than the one we expected.
    #[error("{addr} presented fingerprint {got}, expected {expected}")]
    WrongFingerprint {
        /// The remote's address.
        addr: SocketAddr,
        /// The fingerprint we wanted.
        expected: Fingerprint,
        /// The fingerprint it proved.
        got: Fingerprint,
    },
    /// The connection is gone.
    #[error("connection lost: {0}")]
    ConnectionLost(quinn::ConnectionError),
    /// We refused to send a frame larger than the maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes; not sent")]
    FrameTooLarge {
        /// Encoded size of the frame body.
        len: usize,
        /// Maximum frame size.
        max: usize,
    },
    /// A frame could not be encoded (a bug in the caller's type).
    #[error("cannot encode frame: {0}")]
    Encode(String),
    /// The remote sent a frame we reject; we reset the stream with `code`.
    #[error("rejected a frame from the remote ({code}): {detail}")]
    BadFrame {
        /// The code we reset the stream with.
        code: StreamErrorCode,
        /// What was wrong.
        detail: String,
    },
    /// The remote reset or stopped the stream with this code.
    #[error("the remote rejected the stream: {0}")]
    StreamRejected(StreamErrorCode),
    /// The stream ended before a complete frame (or response) arrived.
    #[error("stream ended early: {0}")]
    StreamEnded(String),
}

impl TransportError {
    /// True if the remote (or the path to it) failed, as opposed to a local mistake.
    /// Callers use it to decide whether to back off from the remote.
    pub fn is_remote_failure(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::ConnectTimeout { .. }
                | TransportError::ConnectionLost(_)
                | TransportError::WrongFingerprint { .. }
                | TransportError::CertificateRefused { .. }
                | TransportError::NoCommonProtocol { .. }
        )
    }

    /// True if trying again cannot help: the remote's certificate was refused, so the
    /// expectation (a fingerprint, a CA) or the address is wrong, not the network.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            TransportError::CertificateRefused { .. }
                | TransportError::WrongFingerprint { .. }
                | TransportError::NoCommonProtocol { .. }
        )
    }
}

impl From<quinn::ConnectionError> for TransportError {
    fn from(e: quinn::ConnectionError) -> Self {
        TransportError::ConnectionLost(e)
    }
}

impl From<quinn::WriteError> for TransportError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::Stopped(code) => {
                TransportError::StreamRejected(StreamErrorCode::from_u64(code.into_inner()))
            }
            quinn::WriteError::ConnectionLost(e) => TransportError::ConnectionLost(e),
            other => TransportError::StreamEnded(other.to_string()),
        }
    }
}

impl From<quinn::ReadError> for TransportError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::Reset(code) => {
                TransportError::StreamRejected(StreamErrorCode::from_u64(code.into_inner()))
            }
            quinn::ReadError::ConnectionLost(e) => TransportError::ConnectionLost(e),
            other => TransportError::StreamEnded(other.to_string()),
        }
    }
}

impl From<quinn::ReadExactError> for TransportError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::ReadError(e) => e.into(),
            quinn::ReadExactError::FinishedEarly(n) => {
                TransportError::StreamEnded(format!("stream finished after {n} byte(s) of a frame"))
            }
        }
    }
}
