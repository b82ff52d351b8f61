//! QUIC for ByteTorrent, on quinn and rustls (TLS 1.3 only, `ring` provider).
//!
//! * [`Endpoint`]: one per node; it listens and dials with the node's [`certs::Identity`].
//!   Inbound clients are checked by an [`InboundTrust`]; each dial states what it
//!   [`Expect`]s of the server (a pinned fingerprint, a named cluster node, or any member
//!   of a cluster whose CA fingerprint is known). Every [`Connection`] exposes the remote's
//!   verified fingerprint.
//! * One ALPN per protocol, chosen by the protocol's owner (the tracker's are in
//!   `tracker::api`; [`ALPN_PEER`] and [`ALPN_PAXOS`] here); a client offering a protocol
//!   the server does not serve is refused in the handshake.
//! * Streams: typed request/response, one-way messages, and chunk streams (a header frame,
//!   then raw bytes moved as [`bytes::Bytes`]), each on its own bidirectional stream.
//!   Frames are length-prefixed MessagePack with a maximum size; a bad frame resets its
//!   stream with a [`StreamErrorCode`] and never disturbs the other streams.
//! * [`Dialer`]: connection reuse and exponential back-off with jitter ([`Backoff`]).
//! * The `paxos` feature adds `paxos_network`, the `paxos` crate's `runtime::Network`
//!   over QUIC. It is the one place where this crate depends on `paxos`; without the
//!   feature it depends on no consensus code.
//!
//! The wire format is specified in `PROTOCOL.md` at the root of the repository.
//!
//! ```
//! use certs::Identity;
//! use transport::{ALPN_PEER, Endpoint, EndpointConfig, Expect, InboundTrust, Received};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let local = "127.0.0.1:0".parse()?;
//! let server = Endpoint::bind(
//!     Identity::generate_self_signed("server")?,
//!     EndpointConfig::new(local, InboundTrust::Open, &[ALPN_PEER]),
//! )?;
//! let client = Endpoint::bind(
//!     Identity::generate_self_signed("client")?,
//!     EndpointConfig::new(local, InboundTrust::Open, &[]),
//! )?;
//! let (server_addr, server_fp) = (server.local_addr(), server.fingerprint());
//! tokio::spawn(async move {
//!     let connection = server.accept().await.unwrap().unwrap();
//!     let stream = connection.accept().await.unwrap();
//!     if let Received::Request(n, responder) = stream.read::<u64>().await.unwrap() {
//!         responder.respond(&(n * 2)).await.unwrap();
//!     }
//!     // Dropping the last handle closes a connection: keep it until the client is done.
//!     connection.closed().await;
//! });
//! let connection = client
//!     .connect(server_addr, &Expect::Fingerprint(server_fp), ALPN_PEER)
//!     .await?;
//! let doubled: u64 = connection.request(&21u64).await?;
//! assert_eq!(doubled, 42);
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod dialer;
mod endpoint;
mod error;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "paxos")]
pub mod paxos_network;
pub mod ports;
mod trust;

// Re-exported so dialer users need not name the `backoff` crate.
pub use backoff::{Backoff, BackoffState};
pub use config::{ALPN_PAXOS, ALPN_PEER, EndpointConfig, Tuning};
pub use connection::{
    ChannelReceiver, ChannelSender, ChunkReader, ChunkResponder, ChunkWriter, Connection,
    IncomingStream, Received, Responder,
};
pub use dialer::Dialer;
pub use endpoint::Endpoint;
pub use error::{StreamErrorCode, TransportError};
pub use frame::{DEFAULT_MAX_FRAME, StreamKind};
pub use trust::{ClusterNames, Expect, InboundTrust};
