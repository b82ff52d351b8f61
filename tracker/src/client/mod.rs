//! The tracker client library: talks to any node of a tracker cluster, fails over to the
//! next node when the current one dies, stalls or cannot reach a majority, and makes every
//! write exactly-once across fail-over.
//!
//! A client knows the cluster from a torrent file (its tracker addresses and the CA
//! fingerprint that authenticates them) or from explicit arguments. It keeps one session
//! id for its lifetime; every write takes the next sequence number and keeps it through
//! every retry, so a write whose answer was lost with a dying node and retried through
//! another is applied once. Writes are sent one at a time, in order (the session's rule).
//!
//! ```no_run
//! # async fn example(endpoint: transport::Endpoint, torrent: tracker::torrent::Torrent) {
//! use tracker::client::TrackerClient;
//! let client = TrackerClient::for_torrent(endpoint.clone(), &torrent);
//! let have = tracker::Bitfield::new(torrent.piece_count());
//! let joined = client
//!     .join(torrent.info_hash(), endpoint.local_addr(), have, 5)
//!     .await
//!     .unwrap();
//! println!("dial {} neighbours", joined.neighbours.len());
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certs::Fingerprint;
use futures_util::stream::{FuturesUnordered, StreamExt};
use transport::{Backoff, Dialer, Endpoint, Expect, TransportError};

use crate::api::{
    ALPN_TRACKER, ApiError, NodeStatus, PeerInfo, Request, Response, SearchOrder, SearchPage,
    WriteId,
};
use crate::bitfield::Bitfield;
use crate::torrent::{InfoHash, Torrent};

mod hedging;
use hedging::Hedging;

/// Settings of a [`TrackerClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// How long one attempt at one node may take before the client tries the next node.
    /// 2.5 s: a node answers within its own 1.5 s request timeout even when it cannot
    /// decide, so a node silent for longer is dead or stalled.
    pub attempt_timeout: Duration,
    /// How long a request keeps trying nodes before it fails. 20 s: rides out the loss of
    /// a node and a leader election with room to spare, yet a tracker that is really gone
    /// is reported while a person still waits.
    pub deadline: Duration,
    /// Back-off from a node that failed (exponential with jitter, from the transport's one
    /// back-off policy): 100 ms doubling to 5 s.
    pub backoff: Backoff,
    /// A request unanswered for this long, or for three times this client's usual answer
    /// time if that is longer, is also sent to the next node (a hedged request), and the
    /// first answer wins, unless the node asked has sent something since the request
    /// (it is alive, only slow). 150 ms: a node that was SIGKILLed never answers, and
    /// waiting out `attempt_timeout` on it would stall every one of its clients for
    /// seconds; a healthy node answers in a few ms. Hedges are rationed (about one per
    /// ten answered requests), so an overloaded cluster is not sent twice the load.
    /// Writes keep their write id, so a hedged write is applied once.
    pub hedge_after: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            attempt_timeout: Duration::from_millis(2500),
            deadline: Duration::from_secs(20),
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
            },
            hedge_after: Duration::from_millis(150),
        }
    }
}

/// Why a tracker request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// A node refused the request for good.
    #[error("the tracker refused the request: {0}")]
    Refused(ApiError),
    /// No node answered before the deadline.
    #[error(
        "no tracker node answered within {after:?}; tried: {}",
        describe(tried)
    )]
    Unreachable {
        /// How long the client tried.
        after: Duration,
        /// Each node tried and its last failure.
        tried: Vec<(SocketAddr, String)>,
    },
    /// Every node presented a certificate this client refused: not signed by the CA the
    /// torrent names (or the one given with `--ca`). Not retried: it cannot succeed.
    #[error(
        "the tracker's certificate is not signed by the CA {ca} named in the torrent; check \
         --ca (tried {})",
        describe(refused)
    )]
    Untrusted {
        /// The CA fingerprint expected.
        ca: Fingerprint,
        /// Each node and why its certificate was refused.
        refused: Vec<(SocketAddr, String)>,
    },
    /// Every node refused the handshake because it speaks another version of the tracker
    /// protocol (it does not serve this client's ALPN). Not retried: it cannot succeed.
    #[error(
        "the tracker speaks another protocol version than this client ({}); run the same \
         ByteTorrent version as the tracker (tried {})",
        String::from_utf8_lossy(ALPN_TRACKER),
        describe(nodes)
    )]
    OtherVersion {
        /// Each node and what it answered.
        nodes: Vec<(SocketAddr, String)>,
    },
    /// A node answered something that does not fit the request.
    #[error("unexpected answer from the tracker: {0}")]
    Protocol(String),
}

impl From<ApiError> for TrackerError {
    fn from(e: ApiError) -> Self {
        TrackerError::Refused(e)
    }
}

fn describe(tried: &[(SocketAddr, String)]) -> String {
    if tried.is_empty() {
        return "no tracker addresses".into();
    }
    tried
        .iter()
        .map(|(addr, why)| format!("{addr} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What joining a swarm gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// Neighbours to dial.
    pub neighbours: Vec<PeerInfo>,
    /// Heartbeat well within this.
    pub ttl: Duration,
}

/// A client of one tracker cluster. Share it (it is `Sync`); writes are serialised inside.
pub struct TrackerClient {
    dialer: Dialer,
    nodes: Vec<SocketAddr>,
    expect: Expect,
    /// The cluster CA's fingerprint (what `expect` checks).
    ca: Fingerprint,
    config: ClientConfig,
    /// Index in `nodes` of the node that answered last: tried first.
    preferred: AtomicUsize,
    session: u64,
    /// The last sequence number used; the lock also keeps writes one at a time.
    seq: tokio::sync::Mutex<u64>,
    /// Node addresses in the order they last failed, newest last (for error messages).
    last_failures: Mutex<Vec<(SocketAddr, String)>>,
    /// Requests answered by another node than the one tried first.
    failovers: AtomicU64,
    /// Attempts at a node that gave no answer (see `failed_attempts()`).
    failed_attempts: AtomicU64,
    /// When slow requests go to a second node as well (see [`ClientConfig::hedge_after`]).
    hedging: Hedging,
}

impl std::fmt::Debug for TrackerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerClient")
            .field("nodes", &self.nodes)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl TrackerClient {
    /// A client of the nodes `nodes`, authenticated by the cluster CA with fingerprint
    /// `ca`, dialling from `endpoint` (whose key is this peer's identity).
    pub fn new(endpoint: Endpoint, nodes: Vec<SocketAddr>, ca: Fingerprint) -> Self {
        Self::with_config(endpoint, nodes, ca, ClientConfig::default())
    }

    /// A client of the tracker cluster a torrent names.
    pub fn for_torrent(endpoint: Endpoint, torrent: &Torrent) -> Self {
        Self::new(endpoint, torrent.trackers().to_vec(), torrent.tracker_ca())
    }

    /// [`TrackerClient::new`] with explicit settings.
    pub fn with_config(
        endpoint: Endpoint,
        nodes: Vec<SocketAddr>,
        ca: Fingerprint,
        config: ClientConfig,
    ) -> Self {
        TrackerClient {
            dialer: Dialer::new(endpoint, config.backoff),
            expect: Expect::ClusterMember(ca),
            ca,
            config,
            // A random first node: a crowd of clients of one torrent spreads its
            // connections over the cluster instead of all dialling the first address.
            preferred: AtomicUsize::new(rand::random_range(0..nodes.len().max(1))),
            session: rand::random(),
            seq: tokio::sync::Mutex::new(0),
            last_failures: Mutex::new(Vec::new()),
            failovers: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            hedging: Hedging::new(),
            nodes,
        }
    }

    /// The node tried first: the one that answered last.
    pub fn current_node(&self) -> Option<SocketAddr> {
        self.nodes
            .get(self.preferred.load(Ordering::Relaxed) % self.nodes.len().max(1))
            .copied()
    }

    /// Tries `node` first from now on (until it fails), if it is one of the nodes: for a
    /// client that knows which node is nearest, or a test that needs a given one.
    pub fn prefer(&self, node: SocketAddr) {
        if let Some(index) = self.nodes.iter().position(|n| *n == node) {
            self.preferred.store(index, Ordering::Relaxed);
        }
    }

    /// How many requests were answered by another node than the one tried first: each is
    /// a fail-over from a node that died, stalled or could not reach a majority.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// How many attempts at a node gave no answer so far: the node was unavailable
    /// (no majority, no leader), the connection failed, or it did not answer within the
    /// attempt timeout. Each is retried at the next node until the deadline, so for a
    /// request that succeeded this counts its retries.
    pub fn failed_attempts(&self) -> u64 {
        self.failed_attempts.load(Ordering::Relaxed)
    }

    /// How many requests were also sent to a second node because the first had not
    /// answered within the hedge delay (see [`ClientConfig::hedge_after`]).
    pub fn hedges(&self) -> u64 {
        self.hedging.sent()
    }

    /// This client's session id (the `client` of its [`WriteId`]s).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Publishes a torrent file with an API token.
    pub async fn publish(&self, token: &str, torrent: Vec<u8>) -> Result<InfoHash, TrackerError> {
        let response = self
            .write(|id| Request::Publish {
                id,
                token: token.to_string(),
                torrent: torrent.clone(),
            })
            .await?;
        match response {
            Response::Published(hash) => Ok(hash),
            other => Err(unexpected(other)),
        }
    }

    /// The torrent file with this info hash, byte for byte as published.
    pub async fn get_torrent(&self, info_hash: InfoHash) -> Result<Vec<u8>, TrackerError> {
        match self.call(&Request::GetTorrent { info_hash }).await? {
            Response::Torrent(bytes) => Ok(bytes),
            other => Err(unexpected(other)),
        }
    }

    /// One page of torrents whose names hold every word, in `order` (newest first by
    /// default).
    pub async fn search(
        &self,
        words: &str,
        page: u32,
        order: SearchOrder,
    ) -> Result<SearchPage, TrackerError> {
        let request = Request::Search {
            words: words.to_string(),
            page,
            order,
        };
        match self.call(&request).await? {
            Response::Search(page) => Ok(page),
            other => Err(unexpected(other)),
        }
    }

    /// Joins a swarm, saying where this peer accepts connections and what it has.
    pub async fn join(
        &self,
        info_hash: InfoHash,
        addr: SocketAddr,
        have: Bitfield,
        want: u32,
    ) -> Result<Joined, TrackerError> {
        let response = self
            .write(|id| Request::Join {
                id,
                info_hash,
                addr: addr.to_string(),
                have: have.clone(),
                want,
            })
            .await?;
        match response {
            Response::Joined { neighbours, ttl_ms } => Ok(Joined {
                neighbours,
                ttl: Duration::from_millis(ttl_ms),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Reports pieces gained.
    pub async fn have(&self, info_hash: InfoHash, pieces: Vec<u32>) -> Result<(), TrackerError> {
        self.write_done(|id| Request::Have {
            id,
            info_hash,
            pieces: pieces.clone(),
        })
        .await
    }

    /// Reports pieces this peer does not have after all.
    pub async fn not_have(
        &self,
        info_hash: InfoHash,
        pieces: Vec<u32>,
    ) -> Result<(), TrackerError> {
        self.write_done(|id| Request::NotHave {
            id,
            info_hash,
            pieces: pieces.clone(),
        })
        .await
    }

    /// Leaves a swarm.
    pub async fn leave(&self, info_hash: InfoHash) -> Result<(), TrackerError> {
        self.write_done(|id| Request::Leave { id, info_hash }).await
    }

    /// Tells the tracker this peer is alive (for every swarm it is in). Refused with
    /// [`ApiError::NotInSwarm`] if the peer is not in the swarm of `info_hash` (expired,
    /// say): join it again.
    pub async fn heartbeat(&self, info_hash: InfoHash) -> Result<(), TrackerError> {
        self.write_done(|id| Request::Heartbeat {
            id,
            info_hash: Some(info_hash),
        })
        .await
    }

    /// More neighbours, other than `exclude`.
    pub async fn more_peers(
        &self,
        info_hash: InfoHash,
        exclude: Vec<Fingerprint>,
        want: u32,
    ) -> Result<Vec<PeerInfo>, TrackerError> {
        let request = Request::MorePeers {
            info_hash,
            exclude,
            want,
        };
        match self.call(&request).await? {
            Response::Peers(peers) => Ok(peers),
            other => Err(unexpected(other)),
        }
    }

    /// Peers holding `piece`.
    pub async fn peers_with_piece(
        &self,
        info_hash: InfoHash,
        piece: u32,
        want: u32,
    ) -> Result<Vec<PeerInfo>, TrackerError> {
        let request = Request::PeersWithPiece {
            info_hash,
            piece,
            want,
        };
        match self.call(&request).await? {
            Response::Peers(peers) => Ok(peers),
            other => Err(unexpected(other)),
        }
    }

    /// The status of the node that answers (no fail-over preference).
    pub async fn status(&self) -> Result<NodeStatus, TrackerError> {
        match self.call(&Request::Status).await? {
            Response::Status(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    async fn write_done(&self, make: impl Fn(WriteId) -> Request) -> Result<(), TrackerError> {
        match self.write(make).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Sends a write under the next sequence number, retrying it unchanged until a node
    /// answers. Holding the lock keeps this session's writes in order, one at a time.
    async fn write(&self, make: impl Fn(WriteId) -> Request) -> Result<Response, TrackerError> {
        let mut seq = self.seq.lock().await;
        *seq += 1;
        let id = WriteId {
            client: self.session,
            seq: *seq,
        };
        self.call(&make(id)).await
    }

    /// Sends `request` to the preferred node, then to the others in turn, until one gives
    /// a definite answer or the deadline passes. A node that fails is asked again after
    /// its back-off. A node slow to answer is not waited out: after the hedge delay the
    /// next node is asked as well, and the first answer wins.
    async fn call(&self, request: &Request) -> Result<Response, TrackerError> {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        let first = self.preferred.load(Ordering::Relaxed);
        // The nodes from the preferred one on, each with where it stands in this call.
        let mut nodes: Vec<NodeTurn> = (0..self.nodes.len())
            .map(|k| NodeTurn::new((first + k) % self.nodes.len()))
            .collect();
        let mut tried: Vec<(SocketAddr, String)> = Vec::new();
        // Nodes whose certificate was refused: tried once, never again.
        let mut refused: Vec<(SocketAddr, String)> = Vec::new();
        // Nodes that speak another protocol version: tried once, never again.
        let mut other_version: Vec<(SocketAddr, String)> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        // When the newest attempt was sent: the next node is asked as well once it has
        // waited for the hedge delay.
        let mut last_sent: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let hedge_due = last_sent.map(|t| {
                t + self
                    .hedging
                    .delay(self.config.hedge_after, self.config.attempt_timeout)
            });
            if !in_flight.is_empty()
                && hedge_due.is_some_and(|due| now >= due)
                && nodes.iter().any(|n| n.in_flight && self.shows_life(n))
            {
                // A node that is asked is alive, only slow: it answers by itself (at
                // the latest within its own request timeout), and a hedge would only
                // add a handshake to a loaded cluster. Look again a hedge delay later.
                last_sent = Some(now);
                continue;
            }
            let may_send = in_flight.is_empty() || hedge_due.is_some_and(|due| now >= due);
            if may_send
                && now < deadline
                && let Some(turn) = nodes.iter_mut().find(|n| n.ready(now))
                && (in_flight.is_empty() || self.hedging.take())
            {
                turn.in_flight = true;
                turn.received_at_send = self
                    .dialer
                    .datagrams_received(self.nodes[turn.index], ALPN_TRACKER);
                in_flight.push(self.timed_attempt(turn.index, request));
                last_sent = Some(now);
                continue;
            }
            if in_flight.is_empty() {
                if nodes.iter().all(|n| n.excluded) && !nodes.is_empty() {
                    if refused.is_empty() {
                        return Err(TrackerError::OtherVersion {
                            nodes: other_version,
                        });
                    }
                    return Err(TrackerError::Untrusted {
                        ca: self.ca,
                        refused,
                    });
                }
                if now >= deadline || nodes.is_empty() {
                    return Err(TrackerError::Unreachable {
                        after: now - started,
                        tried,
                    });
                }
            }
            // Nothing to send now: wait for an answer, for the hedge delay to pass, or
            // for a node's back-off to end.
            let retry = nodes
                .iter()
                .filter(|n| !n.in_flight && !n.excluded)
                .map(|n| n.retry_at.unwrap_or(now))
                .min();
            let hedge_wake = hedge_due.filter(|_| !in_flight.is_empty());
            // Past the deadline only the attempts under way are waited for.
            let wake = [retry, hedge_wake, Some(deadline)]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min();
            let (index, took, result) = tokio::select! {
                Some(outcome) = in_flight.next() => outcome,
                () = sleep_until_some(wake) => continue,
            };
            let addr = self.nodes[index];
            let turn = nodes
                .iter_mut()
                .find(|n| n.index == index)
                .expect("an attempt is at one of the nodes");
            turn.in_flight = false;
            let failure = match result {
                Ok(Response::Unavailable(why)) => why,
                Ok(Response::Error(e)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Err(TrackerError::Refused(e));
                }
                Ok(response) => {
                    self.hedging.answered_in(took);
                    if index != first {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(AttemptError::BackedOff(retry_in)) => {
                    turn.retry_at = Some(Instant::now() + retry_in);
                    continue;
                }
                Err(AttemptError::Failed(why)) => {
                    self.dialer.report_failure(addr);
                    why
                }
                Err(AttemptError::TimedOut(why)) => {
                    self.dialer.back_off(addr);
                    why
                }
                Err(AttemptError::Refused(why)) => {
                    tracing::debug!(%addr, "tracker node refused: {why}");
                    refused.push((addr, why.clone()));
                    turn.excluded = true;
                    why
                }
                Err(AttemptError::OtherVersion(why)) => {
                    tracing::debug!(%addr, "tracker node speaks another version: {why}");
                    other_version.push((addr, why.clone()));
                    turn.excluded = true;
                    why
                }
            };
            // Busy, no majority, failed or silent: back off from this node exponentially
            // (per failure in this request), so that a crowd of clients facing an
            // overloaded cluster does not come back at once and every time faster.
            turn.failures += 1;
            let backoff = self.config.backoff.delay(turn.failures, &mut rand::rng());
            turn.retry_at = Some(Instant::now() + retry_wait(backoff));
            tracing::debug!(%addr, "tracker node failed: {failure}");
            self.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tried.retain(|(a, _)| *a != addr);
            tried.push((addr, failure.clone()));
            if let Ok(mut last) = self.last_failures.lock() {
                last.retain(|(a, _)| *a != addr);
                last.push((addr, failure));
            }
        }
    }

    /// One attempt at the node `index`, with how long it took.
    async fn timed_attempt(
        &self,
        index: usize,
        request: &Request,
    ) -> (usize, Duration, Result<Response, AttemptError>) {
        let start = Instant::now();
        let result = self.attempt(self.nodes[index], request).await;
        (index, start.elapsed(), result)
    }

    /// Whether the node of `turn`, asked over a connection that was already open, has
    /// sent anything since: at least the acknowledgement of the request.
    fn shows_life(&self, turn: &NodeTurn) -> bool {
        let received = self
            .dialer
            .datagrams_received(self.nodes[turn.index], ALPN_TRACKER);
        matches!((turn.received_at_send, received), (Some(then), Some(now)) if now > then)
    }

    async fn attempt(&self, addr: SocketAddr, request: &Request) -> Result<Response, AttemptError> {
        let timeout = self.config.attempt_timeout;
        let work = async {
            let connection = self.dialer.dial(addr, &self.expect, ALPN_TRACKER).await?;
            connection.request::<_, Response>(request).await
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(TransportError::BackedOff { retry_in, .. })) => {
                Err(AttemptError::BackedOff(retry_in))
            }
            Ok(Err(TransportError::CertificateRefused { reason, .. })) => {
                Err(AttemptError::Refused(reason))
            }
            Ok(Err(e @ TransportError::NoCommonProtocol { .. })) => {
                Err(AttemptError::OtherVersion(e.to_string()))
            }
            Ok(Err(e)) => Err(AttemptError::Failed(e.to_string())),
            Err(_) => Err(AttemptError::TimedOut(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }
}

/// How long to wait before asking a node that failed again: its back-off `wait`, but at
/// least a moment, so that a loop of instant refusals does not spin.
fn retry_wait(wait: Duration) -> Duration {
    wait.max(Duration::from_millis(10))
}

/// Sleeps until `at`, or forever if there is no `at`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Where one node stands within one request.
struct NodeTurn {
    /// Its index in the client's node list.
    index: usize,
    /// An attempt at it is under way.
    in_flight: bool,
    /// It failed this many times in this request.
    failures: u32,
    /// Not to be asked again before this (its back-off after a failure).
    retry_at: Option<Instant>,
    /// Never to be asked again in this request (refused certificate, other version).
    excluded: bool,
    /// Datagrams received on the open connection to the node when the attempt was sent
    /// (`None`: no connection was open, the attempt dials).
    received_at_send: Option<u64>,
}

impl NodeTurn {
    fn new(index: usize) -> Self {
        NodeTurn {
            index,
            in_flight: false,
            failures: 0,
            retry_at: None,
            excluded: false,
            received_at_send: None,
        }
    }

    /// Whether the node may be asked at `now`.
    fn ready(&self, now: Instant) -> bool {
        !self.in_flight && !self.excluded && self.retry_at.is_none_or(|t| t <= now)
    }
}

enum AttemptError {
    BackedOff(Duration),
    /// The dial or the connection failed: the connection is dropped.
    Failed(String),
    /// No answer within the attempt timeout: the node is backed off, but its connection
    /// is kept (if it is dead, QUIC closes it by itself), so that an overloaded node is
    /// not also asked for a new handshake.
    TimedOut(String),
    /// The node's certificate was refused: trying it again cannot help.
    Refused(String),
    /// The node does not serve our ALPN: trying it again cannot help.
    OtherVersion(String),
}

fn unexpected(response: Response) -> TrackerError {
    TrackerError::Protocol(format!("{response:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_its_back_off_but_at_least_a_moment() {
        let ms = Duration::from_millis;
        assert_eq!(retry_wait(ms(1)), ms(10));
        assert_eq!(retry_wait(ms(300)), ms(300));
    }

    #[test]
    fn a_node_is_ready_unless_asked_excluded_or_backing_off() {
        let now = Instant::now();
        let mut turn = NodeTurn::new(0);
        assert!(turn.ready(now));
        turn.in_flight = true;
        assert!(!turn.ready(now));
        turn.in_flight = false;
        turn.retry_at = Some(now + Duration::from_millis(5));
        assert!(!turn.ready(now));
        assert!(turn.ready(now + Duration::from_millis(5)));
        turn.excluded = true;
        assert!(!turn.ready(now + Duration::from_secs(1)));
    }
}
