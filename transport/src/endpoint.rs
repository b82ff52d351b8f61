//! One QUIC endpoint per node: it listens and dials with the same identity.

use std::net::SocketAddr;
use std::sync::Arc;

use certs::{CertificateDer, Fingerprint, Identity};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::task::JoinSet;

use crate::connection::{Connection, RemoteInfo};
use crate::trust::{self, Expect, InboundTrust};
use crate::{EndpointConfig, TransportError};

/// A node's QUIC endpoint. Cheap to clone; clones share the socket.
#[derive(Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    shared: Arc<Shared>,
}

struct Shared {
    identity: Identity,
    config: EndpointConfig,
    cluster_ca: Option<CertificateDer<'static>>,
    transport: Arc<quinn::TransportConfig>,
    /// Inbound handshakes under way, each in its own task (see [`Endpoint::accept`]).
    handshakes: tokio::sync::Mutex<JoinSet<Handshake>>,
}

/// How an inbound handshake ended: the connection, or its remote address and the error.
type Handshake = Result<quinn::Connection, (SocketAddr, quinn::ConnectionError)>;

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.inner.local_addr().ok())
            .field("fingerprint", &self.shared.identity.fingerprint())
            .finish_non_exhaustive()
    }
}

fn bind_socket(addr: SocketAddr, buffer: usize) -> Result<std::net::UdpSocket, TransportError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_error = |error| TransportError::Bind { addr, error };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_error)?;
    // Best effort: the kernel clamps these to its maximum, which is fine.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.bind(&addr.into()).map_err(bind_error)?;
    Ok(socket.into())
}

/// An endpoint configuration whose connection-ID and stateless-reset keys are derived
/// from the node's private key instead of being random per process.
///
/// QUIC lets an endpoint that lost a connection's state (a process killed and restarted
/// on the same port) tell the remote so with a stateless reset, which the remote accepts
/// only if its token matches the one issued with the connection. quinn sends one only for
/// a connection ID its generator recognises, and computes the token from its reset key.
/// With both keys stable across restarts, the restarted process answers packets of its
/// predecessor's connections with a valid reset: its peers drop the dead connection at
/// once and dial again, instead of sending into it until the idle timeout.
fn restart_aware_config(identity: &Identity, max_udp_payload: u16) -> quinn::EndpointConfig {
    let key = identity.private_key();
    let reset = blake3::derive_key(
        "bytetorrent 2026 quic stateless reset key",
        key.secret_der(),
    );
    let cid = blake3::derive_key("bytetorrent 2026 quic connection id key", key.secret_der());
    let cid_key = u64::from_le_bytes(cid[..8].try_into().expect("8 bytes"));
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &reset,
    )));
    // Room for the largest packets path MTU discovery may find, and no more: quinn sizes
    // its receive buffer by this (times GRO segments and batch size).
    let _ = config.max_udp_payload_size(max_udp_payload.max(1200));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

impl Endpoint {
    /// Binds a UDP socket and starts an endpoint that serves `config.alpns` (if any) and
    /// can dial. Must be called inside a tokio runtime.
    pub fn bind(identity: Identity, config: EndpointConfig) -> Result<Self, TransportError> {
        let transport = config.tuning.transport_config();
        let server_config = if config.alpns.is_empty() {
            None
        } else {
            let tls = trust::server_config(&identity, &config.inbound, &config.alpns)?;
            let crypto = QuicServerConfig::try_from(tls)
                .map_err(|e| TransportError::Config(e.to_string()))?;
            let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            server.transport_config(transport.clone());
            Some(server)
        };
        let socket = bind_socket(config.bind, config.tuning.socket_buffer)?;
        let inner = quinn::Endpoint::new(
            restart_aware_config(&identity, config.tuning.max_udp_payload),
            server_config,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|error| TransportError::Bind {
            addr: config.bind,
            error,
        })?;
        let cluster_ca = match &config.inbound {
            InboundTrust::Cluster { ca, .. } => Some(ca.clone()),
            InboundTrust::Open => None,
        };
        Ok(Endpoint {
            inner,
            shared: Arc::new(Shared {
                identity,
                config,
                cluster_ca,
                transport,
                handshakes: tokio::sync::Mutex::new(JoinSet::new()),
            }),
        })
    }

    /// The address the socket is bound to (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr().unwrap_or(self.shared.config.bind)
    }

    /// This node's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.shared.identity.fingerprint()
    }

    /// The configuration this endpoint was built with.
    pub fn config(&self) -> &EndpointConfig {
        &self.shared.config
    }

    /// Dials `addr` speaking protocol `alpn`, and checks that the server is what `expect`
    /// says. Fails after the configured connect timeout.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        expect: &Expect,
        alpn: &[u8],
    ) -> Result<Connection, TransportError> {
        let note = trust::RefusalNote::default();
        let tls = trust::client_config(
            &self.shared.identity,
            expect,
            self.shared.cluster_ca.as_ref(),
            alpn,
            &note,
        )?;
        let crypto =
            QuicClientConfig::try_from(tls).map_err(|e| TransportError::Config(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(self.shared.transport.clone());
        let connecting = self
            .inner
            .connect_with(client, addr, trust::server_name(expect))
            .map_err(|e| TransportError::Connect {
                addr,
                reason: e.to_string(),
            })?;
        let timeout = self.shared.config.connect_timeout;
        let connection = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => {
                return Err(TransportError::ConnectTimeout {
                    addr,
                    after: timeout,
                });
            }
            Ok(Err(e)) => {
                return Err(match note.take() {
                    Some(trust::Refused::Fingerprint { expected, got }) => {
                        TransportError::WrongFingerprint {
                            addr,
                            expected,
                            got,
                        }
                    }
                    Some(trust::Refused::Other(reason)) => {
                        TransportError::CertificateRefused { addr, reason }
                    }
                    None if is_no_application_protocol(&e) => TransportError::NoCommonProtocol {
                        addr,
                        alpn: String::from_utf8_lossy(alpn).into_owned(),
                    },
                    None => TransportError::Connect {
                        addr,
                        reason: describe_connection_error(&e),
                    },
                });
            }
            Ok(Ok(c)) => c,
        };
        self.wrap(connection)
    }

    /// Waits for the next inbound connection and completes its handshake. Returns `None`
    /// once the endpoint is closed. A failed handshake is returned as an error; the caller
    /// simply calls `accept` again.
    ///
    /// Handshakes run concurrently, each in its own task, and connections are returned in
    /// the order their handshakes finish: a handshake waits for the client's next flight,
    /// so finishing them one at a time would admit one client per round trip (with a crowd
    /// of clients on busy machines, a few tens per second, while the rest time out and
    /// retry). Cancel-safe: a handshake under way when a caller stops waiting is returned
    /// to the next call.
    pub async fn accept(&self) -> Option<Result<Connection, TransportError>> {
        let mut handshakes = self.shared.handshakes.lock().await;
        loop {
            tokio::select! {
                incoming = self.inner.accept() => {
                    let incoming = incoming?;
                    let addr = incoming.remote_address();
                    handshakes.spawn(async move { incoming.await.map_err(|e| (addr, e)) });
                }
                Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                    return Some(match done {
                        Ok(Ok(connection)) => self.wrap(connection),
                        Ok(Err((addr, e))) => Err(TransportError::Connect {
                            addr,
                            reason: describe_connection_error(&e),
                        }),
                        Err(e) => Err(TransportError::Connect {
                            addr: self.local_addr(),
                            reason: format!("an inbound handshake's task failed: {e}"),
                        }),
                    });
                }
            }
        }
    }

    fn wrap(&self, connection: quinn::Connection) -> Result<Connection, TransportError> {
        let addr = connection.remote_address();
        let chain = connection
            .peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or_else(|| TransportError::Connect {
                addr,
                reason: "the remote presented no certificate".into(),
            })?;
        let end_entity = chain.first().ok_or_else(|| TransportError::Connect {
            addr,
            reason: "the remote presented an empty certificate chain".into(),
        })?;
        let fingerprint =
            Fingerprint::of_certificate(end_entity).map_err(|e| TransportError::Connect {
                addr,
                reason: e.to_string(),
            })?;
        let names = certs::dns_names(end_entity).unwrap_or_default();
        let alpn = connection
            .handshake_data()
            .and_then(|any| any.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|data| data.protocol)
            .unwrap_or_default();
        let max_frame = self.shared.config.max_frame_for(&alpn);
        Ok(Connection::new(
            connection,
            RemoteInfo {
                fingerprint,
                names,
                alpn,
            },
            max_frame,
        ))
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.inner.close(0u32.into(), b"endpoint closed");
    }

    /// Waits until every connection has been closed cleanly (after [`Endpoint::close`]).
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await;
    }
}

/// Whether the server refused the handshake with the TLS alert `no_application_protocol`
/// (QUIC `CRYPTO_ERROR` 0x178): it serves none of the protocols offered.
fn is_no_application_protocol(e: &quinn::ConnectionError) -> bool {
    matches!(e, quinn::ConnectionError::ConnectionClosed(close)
        if u64::from(close.error_code) == 0x178)
}

/// Turns a QUIC connection error into a sentence, keeping TLS alerts readable.
fn describe_connection_error(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::TransportError(t) => format!("handshake failed: {t}"),
        quinn::ConnectionError::ConnectionClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason);
            // TLS alerts are carried as QUIC CRYPTO_ERROR codes 0x100 + alert.
            let code = u64::from(close.error_code);
            let hint = match code {
                0x178 => " (no common application protocol: wrong ALPN)",
                0x12a | 0x12c | 0x12e | 0x130 | 0x131 => " (the remote refused our certificate)",
                0x174 => " (the remote requires a client certificate)",
                _ => "",
            };
            format!("the remote closed the handshake: {reason}{hint} [code {code:#x}]")
        }
        other => other.to_string(),
    }
}
