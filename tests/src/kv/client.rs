//! A key-value client with fail-over: it tries the servers in turn, retrying a put with
//! the same sequence number so that it is applied exactly once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use certs::Fingerprint;
use tokio::sync::{mpsc, oneshot};
use transport::{
    Backoff, ChannelReceiver, ChannelSender, Connection, Dialer, Endpoint, EndpointConfig, Expect,
    InboundTrust, TransportError,
};

use super::protocol::{ALPN_KV, KvRequest, KvResponse};

/// Why a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum KvClientError {
    /// No server answered successfully before the deadline.
    #[error("no server answered within {0:?}; last error: {1}")]
    Timeout(Duration, String),
    /// A server refused the request for good.
    #[error("refused: {0}")]
    Refused(String),
    /// The local endpoint could not be created.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A client session against a key-value cluster.
#[derive(Debug)]
pub struct KvClient {
    dialer: Dialer,
    servers: Vec<SocketAddr>,
    expect: Expect,
    current: usize,
    id: u64,
    next_seq: u64,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Overall deadline of one request.
    pub deadline: Duration,
}

/// A dial-only loopback endpoint with a fresh self-signed identity named `name`, for
/// key-value clients. A server that does not answer the handshake within 500 ms counts as
/// down, so fail-over moves on quickly.
pub fn client_endpoint(name: &str) -> Result<Endpoint, KvClientError> {
    client_endpoint_at(name, "127.0.0.1:0".parse().expect("constant address"))
}

/// [`client_endpoint`] bound to `bind` (`0.0.0.0:0` reaches servers on other interfaces
/// than loopback, as in the nemesis's namespaces).
pub fn client_endpoint_at(name: &str, bind: SocketAddr) -> Result<Endpoint, KvClientError> {
    let identity = certs::Identity::generate_self_signed(name)
        .map_err(|e| KvClientError::Refused(e.to_string()))?;
    let mut config = EndpointConfig::new(bind, InboundTrust::Open, &[]);
    config.connect_timeout = Duration::from_millis(500);
    Ok(Endpoint::bind(identity, config)?)
}

/// The fingerprint of the cluster CA certificate in `path`: what clients check servers by.
pub fn ca_fingerprint(path: &std::path::Path) -> Result<Fingerprint, certs::CertError> {
    Fingerprint::of_certificate(&certs::ClusterCa::load_certificate(path)?)
}

impl KvClient {
    /// A client for `servers`, which must prove membership of the cluster whose CA has
    /// fingerprint `ca`. Must be called inside a tokio runtime.
    pub fn new(servers: Vec<SocketAddr>, ca: Fingerprint) -> Result<Self, KvClientError> {
        Ok(Self::with_endpoint(
            client_endpoint("kv-client")?,
            servers,
            ca,
        ))
    }

    /// A client sharing an existing endpoint (many clients, one socket).
    pub fn with_endpoint(endpoint: Endpoint, servers: Vec<SocketAddr>, ca: Fingerprint) -> Self {
        // Connections are reused; a server that does not answer is skipped for a short
        // while, so fail-over moves on without waiting for its timeout again.
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        Self::with_dialer(Dialer::new(endpoint, backoff), servers, ca)
    }

    /// A client sharing a dialer (many clients, shared connections).
    pub fn with_dialer(dialer: Dialer, servers: Vec<SocketAddr>, ca: Fingerprint) -> Self {
        KvClient {
            dialer,
            servers,
            expect: Expect::ClusterMember(ca),
            current: 0,
            id: rand::random(),
            next_seq: 1,
            attempt_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(30),
        }
    }

    /// Prefers server `index` for the next request.
    pub fn prefer(&mut self, index: usize) {
        self.current = index % self.servers.len().max(1);
    }

    /// The servers this client knows.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    async fn attempt(&self, addr: SocketAddr, request: &KvRequest) -> Result<KvResponse, String> {
        let work = async {
            let connection = self
                .dialer
                .dial(addr, &self.expect, ALPN_KV)
                .await
                .map_err(|e| e.to_string())?;
            let mux = Mux::for_connection(&self.dialer, connection)
                .await
                .map_err(|e| e.to_string())?;
            mux.call(request.clone()).await
        };
        match tokio::time::timeout(self.attempt_timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                self.dialer.report_failure(addr);
                Err(format!(
                    "{addr}: no answer within {:?}",
                    self.attempt_timeout
                ))
            }
        }
    }

    /// Sends `request` to the current server, moving to the next one on any failure, until
    /// an answer that is not `Retry` arrives or the deadline passes.
    async fn call(&mut self, request: &KvRequest) -> Result<KvResponse, KvClientError> {
        let started = tokio::time::Instant::now();
        loop {
            let addr = self.servers[self.current];
            let last_error = match self.attempt(addr, request).await {
                Ok(KvResponse::Retry(reason)) => format!("{addr}: {reason}"),
                Ok(KvResponse::Error(reason)) => return Err(KvClientError::Refused(reason)),
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            self.current = (self.current + 1) % self.servers.len();
            if started.elapsed() >= self.deadline {
                return Err(KvClientError::Timeout(self.deadline, last_error));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Writes `key`; returns the slot it was applied at. Retried across servers with one
    /// sequence number, so it is applied once.
    pub async fn put(&mut self, key: String, value: Vec<u8>) -> Result<u64, KvClientError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = KvRequest::Put {
            client: self.id,
            seq,
            key,
            value,
        };
        match self.call(&request).await? {
            KvResponse::Written(slot) => Ok(slot),
            other => Err(KvClientError::Refused(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Reads `key` (linearizable).
    pub async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvClientError> {
        match self.call(&KvRequest::Get { key }).await? {
            KvResponse::Value(v) => Ok(v),
            other => Err(KvClientError::Refused(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// The status of one server, in one attempt.
    pub async fn status(&self, addr: SocketAddr) -> Result<KvResponse, String> {
        self.attempt(addr, &KvRequest::Status).await
    }

    /// Replaces the servers this client knows (the membership changed), from the next
    /// request on. The client stays with the server it was using if that one is still
    /// listed (it is likely the leader), else starts with the first. An empty list is
    /// ignored: a client always needs a server to try.
    pub fn set_servers(&mut self, servers: Vec<SocketAddr>) {
        if servers.is_empty() {
            return;
        }
        let using = self.servers.get(self.current).copied();
        self.current = using
            .and_then(|addr| servers.iter().position(|s| *s == addr))
            .unwrap_or(0);
        self.servers = servers;
    }
}

/// Request channels in use, one per connection, shared by every client of the process
/// that dials through the same endpoint: keyed by (local endpoint address, server
/// address, quinn's id of the connection within its endpoint).
static MUXES: LazyLock<Mutex<HashMap<MuxKey, Arc<Mux>>>> = LazyLock::new(Default::default);

type MuxKey = (SocketAddr, SocketAddr, usize);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<KvResponse>>>>;

/// One request channel over one connection. Callers register a oneshot under a fresh
/// request id and queue the request; a writer task sends everything queued in one write,
/// a reader task hands each tagged response to its caller. When the channel fails, every
/// pending caller sees an error (and retries, with the same sequence number).
struct Mux {
    key: MuxKey,
    requests: mpsc::UnboundedSender<(u64, KvRequest)>,
    pending: Pending,
    next_id: AtomicU64,
    dead: Arc<AtomicBool>,
}

/// Most requests written in one flush.
const MUX_BATCH: usize = 1024;

impl Mux {
    async fn for_connection(
        dialer: &Dialer,
        connection: Connection,
    ) -> Result<Arc<Mux>, TransportError> {
        let key = (
            dialer.endpoint().local_addr(),
            connection.remote_address(),
            connection.quinn().stable_id(),
        );
        if let Some(mux) = MUXES.lock().expect("mux registry").get(&key)
            && !mux.dead.load(Ordering::Acquire)
            && !connection.is_closed()
        {
            return Ok(mux.clone());
        }
        let (send, recv) = connection.open_channel().await?;
        let mut muxes = MUXES.lock().expect("mux registry");
        if let Some(mux) = muxes.get(&key)
            && !mux.dead.load(Ordering::Acquire)
        {
            // Another client opened one meanwhile; ours is dropped (finished).
            return Ok(mux.clone());
        }
        let (requests, queue) = mpsc::unbounded_channel();
        let mux = Arc::new(Mux {
            key,
            requests,
            pending: Pending::default(),
            next_id: AtomicU64::new(1),
            dead: Arc::new(AtomicBool::new(false)),
        });
        tokio::spawn(write_loop(
            send,
            queue,
            mux.pending.clone(),
            mux.dead.clone(),
        ));
        tokio::spawn(read_loop(recv, key, mux.pending.clone(), mux.dead.clone()));
        muxes.insert(key, mux.clone());
        Ok(mux)
    }

    /// Sends `request` and waits for its answer. Dropping the future forgets the request.
    async fn call(&self, request: KvRequest) -> Result<KvResponse, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, tx);
        let forget = Forget {
            pending: &self.pending,
            id,
        };
        if self.dead.load(Ordering::Acquire) || self.requests.send((id, request)).is_err() {
            return Err(format!("{}: request channel closed", self.key.1));
        }
        let answer = rx
            .await
            .map_err(|_| format!("{}: request channel failed", self.key.1));
        drop(forget);
        answer
    }
}

/// Removes a request's entry when its caller stops waiting (answer, error or timeout).
struct Forget<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.lock().expect("pending").remove(&self.id);
    }
}

fn fail_all(key: MuxKey, pending: &Pending, dead: &AtomicBool) {
    dead.store(true, Ordering::Release);
    // Dropping the senders wakes every caller with an error.
    pending.lock().expect("pending").clear();
    let mut muxes = MUXES.lock().expect("mux registry");
    if muxes
        .get(&key)
        .is_some_and(|m| m.dead.load(Ordering::Acquire))
    {
        muxes.remove(&key);
    }
}

async fn write_loop(
    mut send: ChannelSender,
    mut queue: mpsc::UnboundedReceiver<(u64, KvRequest)>,
    pending: Pending,
    dead: Arc<AtomicBool>,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, MUX_BATCH).await > 0 {
        for (id, request) in batch.drain(..) {
            if send.push(&(id, &request)).is_err() {
                // Cannot happen for our own types; the caller would wait for its timeout.
                pending.lock().expect("pending").remove(&id);
            }
        }
        if send.flush().await.is_err() || dead.load(Ordering::Acquire) {
            break;
        }
    }
    dead.store(true, Ordering::Release);
    pending.lock().expect("pending").clear();
}

async fn read_loop(
    mut recv: ChannelReceiver,
    key: MuxKey,
    pending: Pending,
    dead: Arc<AtomicBool>,
) {
    // Ends at the end of the channel or on any error.
    while let Ok(Some((id, response))) = recv.recv::<(u64, KvResponse)>().await {
        if let Some(tx) = pending.lock().expect("pending").remove(&id) {
            let _ = tx.send(response);
        }
    }
    fail_all(key, &pending, &dead);
}
