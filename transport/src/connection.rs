//! A connection to a verified remote, and the typed streams carried over it.
//!
//! Every exchange is one bidirectional stream (cheap in QUIC): a request and its response,
//! a one-way message, or a chunk request answered by a header and raw bytes. A bad frame
//! fails only its own stream; the connection and its other streams go on.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use certs::Fingerprint;
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, StreamKind};
use crate::{StreamErrorCode, TransportError};

/// What the handshake proved about the remote.
#[derive(Debug, Clone)]
pub(crate) struct RemoteInfo {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) names: Vec<String>,
    pub(crate) alpn: Vec<u8>,
}

/// A QUIC connection whose remote identity has been verified. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    inner: quinn::Connection,
    remote: Arc<RemoteInfo>,
    max_frame: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote_address", &self.inner.remote_address())
            .field("remote_fingerprint", &self.remote.fingerprint)
            .field("alpn", &String::from_utf8_lossy(&self.remote.alpn))
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(inner: quinn::Connection, remote: RemoteInfo, max_frame: usize) -> Self {
        Connection {
            inner,
            remote: Arc::new(remote),
            max_frame,
        }
    }

    /// The fingerprint of the key the remote proved it holds.
    pub fn remote_fingerprint(&self) -> Fingerprint {
        self.remote.fingerprint
    }

    /// The DNS names in the remote's certificate. For cluster connections these are
    /// verified against the cluster CA; for other policies they are only informative.
    pub fn remote_names(&self) -> &[String] {
        &self.remote.names
    }

    /// The negotiated protocol.
    pub fn alpn(&self) -> &[u8] {
        &self.remote.alpn
    }

    /// The remote's UDP address.
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.remote_address()
    }

    /// The underlying quinn connection, for statistics and for tests of the wire format.
    pub fn quinn(&self) -> &quinn::Connection {
        &self.inner
    }

    /// Whether the connection has been closed (by either side or by a timeout).
    pub fn is_closed(&self) -> bool {
        self.inner.close_reason().is_some()
    }

    /// Waits until the connection is closed, by either side or by a timeout.
    pub async fn closed(&self) -> quinn::ConnectionError {
        self.inner.closed().await
    }

    /// Closes the connection with an application code and a reason for the remote's logs.
    pub fn close(&self, code: u32, reason: &str) {
        self.inner.close(code.into(), reason.as_bytes());
    }

    async fn open(&self) -> Result<(SendStream, RecvStream), TransportError> {
        Ok(self.inner.open_bi().await?)
    }

    /// Sends `request` and waits for the typed response on the same stream.
    pub async fn request<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        request: &Q,
    ) -> Result<R, TransportError> {
        let frame = frame::encode(Some(StreamKind::Request), request, self.max_frame)?;
        let (mut send, mut recv) = self.open().await?;
        send.write_chunk(frame).await?;
        let _ = send.finish();
        frame::read_frame(None, &mut recv, self.max_frame).await
    }

    /// Sends a one-way message. Returns once the message is handed to QUIC; delivery is
    /// reliable while the connection lives, but no answer is awaited.
    pub async fn send_message<M: Serialize + ?Sized>(
        &self,
        message: &M,
    ) -> Result<(), TransportError> {
        let frame = frame::encode(Some(StreamKind::Message), message, self.max_frame)?;
        let (mut send, _recv) = self.open().await?;
        send.write_chunk(frame).await?;
        let _ = send.finish();
        Ok(())
    }

    /// Sends a chunk request; returns the responder's header and a reader for the raw bytes
    /// that follow it.
    pub async fn request_chunk<Q: Serialize + ?Sized, H: DeserializeOwned>(
        &self,
        request: &Q,
    ) -> Result<(H, ChunkReader), TransportError> {
        let frame = frame::encode(Some(StreamKind::Chunk), request, self.max_frame)?;
        let (mut send, mut recv) = self.open().await?;
        send.write_chunk(frame).await?;
        let _ = send.finish();
        let header = frame::read_frame(None, &mut recv, self.max_frame).await?;
        Ok((header, ChunkReader { recv }))
    }

    /// Waits for the next stream the remote opens. Errors only when the connection is gone;
    /// read the stream with [`IncomingStream::read`], typically in a task of its own so
    /// that a slow stream does not hold up the others.
    pub async fn accept(&self) -> Result<IncomingStream, TransportError> {
        let (send, recv) = self.inner.accept_bi().await?;
        Ok(IncomingStream {
            send,
            recv,
            max_frame: self.max_frame,
        })
    }
}

/// A stream opened by the remote, not yet read.
#[derive(Debug)]
pub struct IncomingStream {
    send: SendStream,
    recv: RecvStream,
    max_frame: usize,
}

/// What a remote sent on a stream: the first frame, decoded, and how to answer it.
#[derive(Debug)]
pub enum Received<T> {
    /// A request; answer it with the [`Responder`].
    Request(T, Responder),
    /// A one-way message.
    Message(T),
    /// A chunk request; answer with a header and raw bytes through the [`ChunkResponder`].
    Chunk(T, ChunkResponder),
}

impl IncomingStream {
    /// Reads the stream kind and its first frame as a `T`. A stream with an unknown kind,
    /// an oversized frame or a body that is not a `T` is reset with the matching
    /// [`StreamErrorCode`] (the remote sees it) and the error is returned here.
    pub async fn read<T: DeserializeOwned>(mut self) -> Result<Received<T>, TransportError> {
        let kind = frame::read_kind(&mut self.send, &mut self.recv).await?;
        let value = frame::read_frame(Some(&mut self.send), &mut self.recv, self.max_frame).await?;
        let max_frame = self.max_frame;
        Ok(match kind {
            StreamKind::Request => Received::Request(
                value,
                Responder {
                    send: self.send,
                    max_frame,
                },
            ),
            StreamKind::Message => Received::Message(value),
            StreamKind::Chunk => Received::Chunk(
                value,
                ChunkResponder {
                    send: self.send,
                    max_frame,
                },
            ),
        })
    }
}

/// Answers one request.
#[derive(Debug)]
pub struct Responder {
    send: SendStream,
    max_frame: usize,
}

impl Responder {
    /// Sends the response and ends the stream.
    pub async fn respond<R: Serialize + ?Sized>(
        mut self,
        response: &R,
    ) -> Result<(), TransportError> {
        let frame = match frame::encode(None, response, self.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                let _ = self.send.reset(StreamErrorCode::Internal.var_int());
                return Err(e);
            }
        };
        self.send.write_chunk(frame).await?;
        let _ = self.send.finish();
        Ok(())
    }

    /// Refuses the request with `code` instead of answering.
    pub fn reject(mut self, code: StreamErrorCode) {
        let _ = self.send.reset(code.var_int());
    }
}

/// Answers one chunk request with a header frame and then raw bytes.
#[derive(Debug)]
pub struct ChunkResponder {
    send: SendStream,
    max_frame: usize,
}

impl ChunkResponder {
    /// Sends the header and returns a writer for the raw bytes.
    pub async fn start<H: Serialize + ?Sized>(
        mut self,
        header: &H,
    ) -> Result<ChunkWriter, TransportError> {
        let frame = frame::encode(None, header, self.max_frame)?;
        self.send.write_chunk(frame).await?;
        Ok(ChunkWriter { send: self.send })
    }

    /// Sends the header and `body` and ends the stream: the common case of one piece held
    /// in memory. `body` is handed to QUIC without copying.
    pub async fn respond<H: Serialize + ?Sized>(
        self,
        header: &H,
        body: Bytes,
    ) -> Result<(), TransportError> {
        let mut writer = self.start(header).await?;
        writer.write(body).await?;
        writer.finish()
    }

    /// Refuses the request with `code`.
    pub fn reject(mut self, code: StreamErrorCode) {
        let _ = self.send.reset(code.var_int());
    }
}

/// Writes the raw bytes of a chunk response.
#[derive(Debug)]
pub struct ChunkWriter {
    send: SendStream,
}

impl ChunkWriter {
    /// Queues `bytes` on the stream without copying them.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        Ok(self.send.write_chunk(bytes).await?)
    }

    /// Ends the stream: the reader sees the end of the body.
    pub fn finish(mut self) -> Result<(), TransportError> {
        self.send
            .finish()
            .map_err(|e| TransportError::StreamEnded(e.to_string()))
    }
}

/// Reads the raw bytes of a chunk response as they arrive, without copying them.
#[derive(Debug)]
pub struct ChunkReader {
    recv: RecvStream,
}

impl ChunkReader {
    /// The next run of bytes, or `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, TransportError> {
        Ok(self
            .recv
            .read_chunk(usize::MAX, true)
            .await?
            .map(|chunk| chunk.bytes))
    }

    /// Reads the whole body, refusing (and cancelling the stream) past `limit` bytes.
    pub async fn read_to_end(mut self, limit: usize) -> Result<Vec<Bytes>, TransportError> {
        let mut parts = Vec::new();
        let mut total = 0usize;
        while let Some(bytes) = self.next().await? {
            total += bytes.len();
            if total > limit {
                self.cancel();
                return Err(TransportError::BadFrame {
                    code: StreamErrorCode::Cancelled,
                    detail: format!("chunk body exceeds the expected {limit} bytes"),
                });
            }
            parts.push(bytes);
        }
        Ok(parts)
    }

    /// Tells the sender to stop: we no longer want the rest.
    pub fn cancel(&mut self) {
        let _ = self.recv.stop(StreamErrorCode::Cancelled.var_int());
    }
}
