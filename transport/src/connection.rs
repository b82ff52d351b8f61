//! A connection to a verified remote, and the typed streams carried over it.
//!
//! Every exchange is one bidirectional stream (cheap in QUIC): a request and its response,
//! a one-way message, or a chunk request answered by a header and raw bytes. A bad frame
//! fails only its own stream; the connection and its other streams go on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use certs::Fingerprint;
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, FrameBuffer, StreamKind};
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

    /// Opens a long-lived framed channel: a stream of kind `0x04` on which both sides send
    /// any number of frames, each checked against the maximum frame size like any other.
    /// Frames pushed with [`ChannelSender::push`] are coalesced and handed to QUIC in one
    /// write by [`ChannelSender::flush`], so many small messages cost one stream and few
    /// packets. The remote sees the channel as [`Received::Channel`] as soon as it is
    /// opened (the kind byte is sent at once). What the frames mean, and how requests are
    /// matched to responses, belongs to the protocol using the channel.
    pub async fn open_channel(&self) -> Result<(ChannelSender, ChannelReceiver), TransportError> {
        let (mut send, recv) = self.open().await?;
        send.write_chunk(Bytes::from_static(&[StreamKind::Channel as u8]))
            .await?;
        Ok(channel(send, recv, self.max_frame))
    }

    /// Answers every request the remote sends on this connection with `answer`, each in a
    /// task of its own, until the connection closes. Streams that are not a well-formed
    /// request are dropped (the remote sees its stream reset). For simple request-answer
    /// protocols such as an operator's; a server that must also admit or count requests
    /// reads the streams itself with [`Connection::accept`].
    pub async fn serve_requests<Q, R, F, Fut>(&self, answer: F)
    where
        Q: DeserializeOwned + Send + 'static,
        R: Serialize + Send + Sync + 'static,
        F: Fn(Q) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        while let Ok(stream) = self.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                if let Ok(Received::Request(request, responder)) =
                    stream.read_kinds::<Q>(&[StreamKind::Request]).await
                {
                    let response = answer(request).await;
                    let _ = responder.respond(&response).await;
                }
            });
        }
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
    /// A channel opened with [`Connection::open_channel`]; no frame has been read yet.
    Channel(ChannelSender, ChannelReceiver),
}

impl IncomingStream {
    /// Reads the stream kind and its first frame as a `T`. A stream with an unknown kind,
    /// an oversized frame, a body that is not a `T` or a stream that ends inside its frame
    /// is refused with the matching [`StreamErrorCode`] (`STOP_SENDING` and
    /// `RESET_STREAM`, so the remote sees it) and the error is returned here.
    pub async fn read<T: DeserializeOwned>(self) -> Result<Received<T>, TransportError> {
        self.read_kinds(&StreamKind::ALL).await
    }

    /// As [`IncomingStream::read`], for a protocol that uses only the stream kinds in
    /// `allowed`: any other kind is refused with
    /// [`StreamErrorCode::UnknownStreamKind`], like a kind byte no protocol knows.
    pub async fn read_kinds<T: DeserializeOwned>(
        mut self,
        allowed: &[StreamKind],
    ) -> Result<Received<T>, TransportError> {
        let kind = frame::read_kind(&mut self.send, &mut self.recv, allowed).await?;
        if kind == StreamKind::Channel {
            let (send, recv) = channel(self.send, self.recv, self.max_frame);
            return Ok(Received::Channel(send, recv));
        }
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
            StreamKind::Channel => unreachable!("handled above"),
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
        self.write_whole(header, body).await?.finish()
    }

    /// Like [`respond`](Self::respond), and then waits until the requester has
    /// acknowledged every byte. Writing returns as soon as QUIC has buffered the bytes,
    /// long before a capped uplink has sent them; a server that decides which request
    /// its uplink serves next must count an upload as running until it is delivered.
    pub async fn respond_delivered<H: Serialize + ?Sized>(
        self,
        header: &H,
        body: Bytes,
    ) -> Result<(), TransportError> {
        self.write_whole(header, body)
            .await?
            .finish_delivered()
            .await
    }

    /// Sends the header and `body`, leaving the stream open for the caller to end.
    async fn write_whole<H: Serialize + ?Sized>(
        self,
        header: &H,
        body: Bytes,
    ) -> Result<ChunkWriter, TransportError> {
        let mut writer = self.start(header).await?;
        writer.write(body).await?;
        Ok(writer)
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
        self.end()
    }

    /// Ends the stream and waits until the reader has acknowledged every byte (or
    /// stopped reading, which is an error).
    pub async fn finish_delivered(mut self) -> Result<(), TransportError> {
        self.end()?;
        match self.send.stopped().await {
            Ok(None) => Ok(()),
            Ok(Some(code)) => Err(TransportError::StreamEnded(format!(
                "the reader stopped the stream with code {code}"
            ))),
            Err(e) => Err(TransportError::StreamEnded(e.to_string())),
        }
    }

    fn end(&mut self) -> Result<(), TransportError> {
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

    /// Fills `buf` with exactly the whole body: one copy out of QUIC's buffers into memory
    /// the caller owns and may reuse. A body shorter or longer than `buf` is an error
    /// (a longer one is cancelled).
    pub async fn read_exact_body(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        let expected = buf.len();
        match self.recv.read_exact(buf).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(got)) => {
                return Err(TransportError::BadFrame {
                    code: StreamErrorCode::Cancelled,
                    detail: format!("chunk body of {got} bytes, expected {expected}"),
                });
            }
            Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
        }
        match self.recv.read_chunk(1, true).await? {
            None => Ok(()),
            Some(_) => {
                self.cancel();
                Err(TransportError::BadFrame {
                    code: StreamErrorCode::Cancelled,
                    detail: format!("chunk body exceeds the expected {expected} bytes"),
                })
            }
        }
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

fn channel(
    send: SendStream,
    recv: RecvStream,
    max_frame: usize,
) -> (ChannelSender, ChannelReceiver) {
    let refused = Arc::new(AtomicU64::new(0));
    (
        ChannelSender {
            send,
            max_frame,
            buf: BytesMut::new(),
            refused: refused.clone(),
            ended: false,
        },
        ChannelReceiver {
            recv,
            frames: FrameBuffer::new(max_frame),
            refused,
        },
    )
}

/// The sending half of a channel: frames are queued with [`ChannelSender::push`] and
/// handed to QUIC together by [`ChannelSender::flush`].
///
/// When its receiving half has rejected a frame, this half is reset with the same code
/// (PROTOCOL.md 2.2a) at its next push, flush or finish, or when it is dropped, so the
/// remote sees the code whichever half it waits on.
#[derive(Debug)]
pub struct ChannelSender {
    send: SendStream,
    max_frame: usize,
    buf: BytesMut,
    /// The code the receiving half refused the channel with, 0 while it has not.
    refused: Arc<AtomicU64>,
    /// Finished or reset already.
    ended: bool,
}

impl ChannelSender {
    /// Encodes `value` as one frame and queues it; nothing is sent until
    /// [`ChannelSender::flush`]. A frame over the maximum is refused here, before sending,
    /// and the frames queued before it stay queued.
    pub fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TransportError> {
        self.check_refused()?;
        frame::encode_into(&mut self.buf, value, self.max_frame)
    }

    /// Bytes queued and not yet flushed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Hands every queued frame to QUIC in one write.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        self.check_refused()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = self.buf.split().freeze();
        Ok(self.send.write_chunk(bytes).await?)
    }

    /// Queues `value` and flushes.
    pub async fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TransportError> {
        self.push(value)?;
        self.flush().await
    }

    /// Ends our half of the channel (after what was flushed): the remote's
    /// [`ChannelReceiver::recv`] then returns `None`. If our receiving half rejected a
    /// frame, the half is reset with that code instead.
    pub fn finish(mut self) -> Result<(), TransportError> {
        self.check_refused()?;
        self.ended = true;
        self.send
            .finish()
            .map_err(|e| TransportError::StreamEnded(e.to_string()))
    }

    /// Abandons our half with `code`.
    pub fn reset(mut self, code: StreamErrorCode) {
        self.ended = true;
        let _ = self.send.reset(code.var_int());
    }

    /// Resets this half if the receiving half rejected a frame.
    fn check_refused(&mut self) -> Result<(), TransportError> {
        let code = self.refused.load(Ordering::Relaxed);
        if code == 0 {
            return Ok(());
        }
        let code = StreamErrorCode::from_u64(code);
        if !self.ended {
            self.ended = true;
            let _ = self.send.reset(code.var_int());
        }
        Err(TransportError::BadFrame {
            code,
            detail: "the channel was refused after a bad frame from the remote".into(),
        })
    }
}

impl Drop for ChannelSender {
    fn drop(&mut self) {
        // A dropped quinn stream is finished cleanly; a refused channel is reset instead.
        let _ = self.check_refused();
    }
}

/// The receiving half of a channel. It reads whatever QUIC has delivered at once and
/// decodes the frames from its buffer, so a burst of frames costs one read.
#[derive(Debug)]
pub struct ChannelReceiver {
    recv: RecvStream,
    frames: FrameBuffer,
    /// Shared with the sending half, which resets itself with this code once set.
    refused: Arc<AtomicU64>,
}

impl ChannelReceiver {
    /// The next frame as a `T`, or `None` when the remote finished its half between
    /// frames. A frame over the maximum, a body that is not a `T`, or a stream that ends
    /// inside a frame stops the stream with `FRAME_TOO_LARGE` / `MALFORMED_FRAME` (the
    /// remote's writes fail with that code) and returns [`TransportError::BadFrame`]; the
    /// sending half of the channel then resets itself with the same code (see
    /// [`ChannelSender`]).
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        loop {
            if let Some(value) = self.try_decode()? {
                return Ok(Some(value));
            }
            match self.recv.read_chunk(usize::MAX, true).await? {
                Some(chunk) => self.frames.extend(&chunk.bytes),
                None if self.frames.is_empty() => return Ok(None),
                None => {
                    let detail = format!(
                        "channel finished inside a frame ({} byte(s) pending)",
                        self.frames.len()
                    );
                    return Err(self.refuse(StreamErrorCode::MalformedFrame, detail));
                }
            }
        }
    }

    /// The next frame if a whole one is already buffered, without waiting.
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        self.try_decode()
    }

    fn try_decode<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        self.frames
            .try_decode()
            .map_err(|e| self.refuse(e.code, e.detail))
    }

    fn refuse(&mut self, code: StreamErrorCode, detail: String) -> TransportError {
        frame::refuse(None, &mut self.recv, code);
        self.refused.store(code.to_u64(), Ordering::Relaxed);
        self.frames.clear();
        TransportError::BadFrame { code, detail }
    }
}
