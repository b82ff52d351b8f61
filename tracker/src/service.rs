//! The tracker's QUIC service: turns [`Request`]s from peers and [`AdminRequest`]s from
//! operators into Paxos proposals and lease reads on the local replica.
//!
//! Any node answers any request. Writes are proposed with the client's own
//! [`WriteId`](crate::api::WriteId) as the Paxos session, so a write retried through
//! another node is applied once; the replica forwards proposals to the leader, and reads
//! are served under the leader's lease. A node that cannot get an answer in
//! [`ServiceConfig::request_timeout`] (it cannot reach a majority, or knows no leader)
//! answers [`Response::Unavailable`] and the client moves on to another node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certs::Fingerprint;
use paxos::runtime::{Node, RequestError};
use paxos::{ClientError, Command as PaxosCommand};
use transport::{Connection, Endpoint, Received, StreamKind};

use crate::api::{
    AdminRequest, AdminResponse, ApiError, ClusterStatus, MAX_PEERS_PER_ANSWER, MAX_SEARCH_LEN,
    MIN_TOKEN_LEN, MemberChange, NodeStatus, Request, Response, SEARCH_PAGE_LEN, UserInfo, WriteId,
};
use crate::password;
use crate::state::{Command, Output, Query, Role, StateConfig, TokenHash, TrackerState, Uploader};
use crate::torrent::Torrent;

/// Settings of the service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// How long one request may wait for the replica. 1.5 s: a leader election after a
    /// crash takes 0.2–0.6 s with the default paxos timeouts, so a request that outlives
    /// one still succeeds here; a node cut off from the majority answers within this time
    /// and the client tries another node.
    pub request_timeout: Duration,
    /// The settings the replicated state machine runs with; joining peers are told its
    /// [`peer_ttl_ms`](StateConfig::peer_ttl_ms) so they heartbeat in time.
    pub state: StateConfig,
    /// The cluster CA's fingerprint; a torrent naming another CA is not published. None
    /// (the default, for a service tested without certificates) accepts any CA; a node
    /// always sets it.
    pub cluster_ca: Option<Fingerprint>,
    /// Peer requests this node works on at once; one more is answered at once with
    /// [`Response::Unavailable`] ("busy"), which a client retries after a back-off. Without
    /// a bound, a flash crowd queues requests past the clients' attempt timeout, and every
    /// timed-out request is sent again to another node: a retry storm.
    pub max_in_flight: usize,
}

/// The default of [`ServiceConfig::max_in_flight`]: 4,096. Measured with
/// `bench/tracker-crowd.sh --peers 5000` on a 2-core machine (about 5,300 requests/s):
/// with 512, two nodes answered about 9,000 requests busy each and the steady-phase
/// latency of all requests was p50 475 ms, p99 8.7 s (the back-off of the refused); with
/// 4,096, none was refused and it was p50 40 ms, p99 270 ms. The bound is for a crowd
/// beyond the cluster's capacity.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            request_timeout: Duration::from_millis(1500),
            state: StateConfig::default(),
            cluster_ca: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// The service of one node: its replica and settings. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    node: Node<TrackerState>,
    config: Arc<ServiceConfig>,
    counters: Arc<RequestCounters>,
    /// Permits for peer requests being answered (see [`ServiceConfig::max_in_flight`]).
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// Requests answered since start, by kind, for `/metrics`.
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: [AtomicU64; REQUEST_KINDS.len()],
    busy: AtomicU64,
}

/// The kinds of request counted, in [`Request`]'s order; `admin` counts operator requests.
pub const REQUEST_KINDS: [&str; 12] = [
    "publish",
    "get_torrent",
    "search",
    "join",
    "have",
    "not_have",
    "leave",
    "heartbeat",
    "more_peers",
    "peers_with_piece",
    "status",
    "admin",
];

impl RequestCounters {
    fn count(&self, kind: usize) {
        self.counts[kind].fetch_add(1, Ordering::Relaxed);
    }

    /// Peer requests answered "busy" because [`ServiceConfig::max_in_flight`] were
    /// being answered already.
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    /// Each kind's name and count.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        REQUEST_KINDS
            .iter()
            .zip(&self.counts)
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
            .collect()
    }
}

fn kind_of(request: &Request) -> usize {
    match request {
        Request::Publish { .. } => 0,
        Request::GetTorrent { .. } => 1,
        Request::Search { .. } => 2,
        Request::Join { .. } => 3,
        Request::Have { .. } => 4,
        Request::NotHave { .. } => 5,
        Request::Leave { .. } => 6,
        Request::Heartbeat { .. } => 7,
        Request::MorePeers { .. } => 8,
        Request::PeersWithPiece { .. } => 9,
        Request::Status => 10,
    }
}

/// Milliseconds since the Unix epoch by this node's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Service {
    /// A service answering from `node`.
    pub fn new(node: Node<TrackerState>, config: ServiceConfig) -> Self {
        Service {
            node,
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            config: Arc::new(config),
            counters: Arc::default(),
        }
    }

    /// Requests answered so far, by kind.
    pub fn counters(&self) -> &RequestCounters {
        &self.counters
    }

    /// The replica behind the service.
    pub fn node(&self) -> &Node<TrackerState> {
        &self.node
    }

    /// Serves peers on `endpoint` (ALPN [`ALPN_TRACKER`](crate::api::ALPN_TRACKER)) until
    /// it closes.
    pub async fn serve_peers(self, endpoint: Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            match incoming {
                Ok(connection) => {
                    tokio::spawn(self.clone().serve_peer_connection(connection));
                }
                Err(e) => tracing::debug!("refused a peer connection: {e}"),
            }
        }
    }

    async fn serve_peer_connection(self, connection: Connection) {
        loop {
            let stream = match connection.accept().await {
                Ok(stream) => stream,
                Err(_) => return,
            };
            let service = self.clone();
            let peer = connection.clone();
            tokio::spawn(async move {
                match stream.read_kinds::<Request>(&[StreamKind::Request]).await {
                    Ok(Received::Request(request, responder)) => {
                        let response = service.answer(peer.remote_fingerprint(), request).await;
                        let _ = responder.respond(&response).await;
                    }
                    // Other kinds were refused with UNKNOWN_STREAM_KIND by the transport.
                    Ok(_) => {}
                    // A malformed or oversized frame: the transport has reset the stream
                    // with its error code; the connection carries on.
                    Err(e) => tracing::debug!("bad request from a peer: {e}"),
                }
            });
        }
    }

    /// Serves one operator connection (ALPN
    /// [`ALPN_TRACKER_ADMIN`](crate::api::ALPN_TRACKER_ADMIN)); the handshake has checked
    /// its certificate against the cluster CA.
    pub async fn serve_admin_connection(self, connection: Connection) {
        connection
            .serve_requests(move |request: AdminRequest| {
                let service = self.clone();
                async move { service.answer_admin(request).await }
            })
            .await
    }

    /// Answers one request of the peer whose key has `fingerprint` (proved in the TLS
    /// handshake of the connection the request came on).
    pub async fn answer(&self, fingerprint: Fingerprint, request: Request) -> Response {
        self.counters.count(kind_of(&request));
        let Ok(_admitted) = self.in_flight.clone().try_acquire_owned() else {
            self.counters.busy.fetch_add(1, Ordering::Relaxed);
            return Response::Unavailable(format!(
                "busy: this node is answering {} requests already; retry after a back-off",
                self.config.max_in_flight
            ));
        };
        match request {
            Request::Publish { id, token, torrent } => {
                // Refuse what can never be stored before it costs a consensus round.
                let admitted = match &self.config.cluster_ca {
                    Some(ca) => crate::admission::admit(&torrent, ca).map(drop),
                    None => Torrent::parse(&torrent)
                        .map(drop)
                        .map_err(crate::admission::NotAdmitted::Invalid),
                };
                if let Err(e) = admitted {
                    return Response::Error(ApiError::InvalidTorrent(e.to_string()));
                }
                let op = Command::Publish {
                    torrent,
                    by: Uploader::Token(TokenHash::of(&token)),
                    now_ms: now_ms(),
                };
                match self.propose(id, op).await {
                    Ok(Output::Published(hash) | Output::AlreadyPublished(hash)) => {
                        Response::Published(hash)
                    }
                    other => self.unexpected(other),
                }
            }
            Request::GetTorrent { info_hash } => {
                match self.read(Query::TorrentFile(info_hash)).await {
                    Ok(Output::TorrentFile(Some(bytes))) => Response::Torrent(bytes),
                    Ok(Output::TorrentFile(None)) => {
                        Response::Error(ApiError::UnknownTorrent(info_hash))
                    }
                    other => self.unexpected(other),
                }
            }
            Request::Search { words, page, order } => {
                if words.len() > MAX_SEARCH_LEN {
                    return bad_request(&format!(
                        "search words longer than {MAX_SEARCH_LEN} bytes"
                    ));
                }
                let query = Query::Search {
                    words,
                    page,
                    per_page: SEARCH_PAGE_LEN,
                    order,
                };
                match self.read(query).await {
                    Ok(Output::Search(page)) => Response::Search(page),
                    other => self.unexpected(other),
                }
            }
            Request::Join {
                id,
                info_hash,
                addr,
                have,
                want,
            } => {
                let Ok(addr) = addr.parse() else {
                    return bad_request(&format!(
                        "addr {addr:?} is not an IP address and port like 203.0.113.7:7000 \
                         or [2001:db8::1]:7000"
                    ));
                };
                let op = Command::Join {
                    info_hash,
                    fingerprint,
                    addr,
                    have,
                    want: want.min(MAX_PEERS_PER_ANSWER),
                    now_ms: now_ms(),
                };
                match self.propose(id, op).await {
                    Ok(Output::Joined(neighbours)) => Response::Joined {
                        neighbours,
                        ttl_ms: self.config.state.peer_ttl_ms,
                    },
                    other => self.unexpected(other),
                }
            }
            Request::Have {
                id,
                info_hash,
                pieces,
            } => {
                let op = Command::Have {
                    info_hash,
                    fingerprint,
                    pieces,
                    now_ms: now_ms(),
                };
                self.done(self.propose(id, op).await)
            }
            Request::NotHave {
                id,
                info_hash,
                pieces,
            } => {
                let op = Command::NotHave {
                    info_hash,
                    fingerprint,
                    pieces,
                    now_ms: now_ms(),
                };
                self.done(self.propose(id, op).await)
            }
            Request::Leave { id, info_hash } => {
                let op = Command::Leave {
                    info_hash,
                    fingerprint,
                };
                self.done(self.propose(id, op).await)
            }
            Request::Heartbeat { id, info_hash } => {
                let op = Command::Heartbeat {
                    fingerprint,
                    now_ms: now_ms(),
                    info_hash,
                };
                self.done(self.propose(id, op).await)
            }
            Request::MorePeers {
                info_hash,
                exclude,
                want,
            } => {
                if exclude.len() > 10_000 {
                    return bad_request("more than 10,000 peers to exclude");
                }
                let query = Query::MorePeers {
                    info_hash,
                    asker: fingerprint,
                    exclude,
                    want: want.min(MAX_PEERS_PER_ANSWER),
                    seed: rand::random(),
                };
                self.peers(self.read(query).await)
            }
            Request::PeersWithPiece {
                info_hash,
                piece,
                want,
            } => {
                let query = Query::PeersWithPiece {
                    info_hash,
                    asker: fingerprint,
                    piece,
                    want: want.min(MAX_PEERS_PER_ANSWER),
                    seed: rand::random(),
                };
                self.peers(self.read(query).await)
            }
            Request::Status => Response::Status(self.status()),
        }
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.node.metrics();
        NodeStatus {
            id: m.id,
            is_leader: m.is_leader,
            leader: m.leader,
            decided: m.decided,
            applied: m.applied,
        }
    }

    /// Answers one operator request.
    pub async fn answer_admin(&self, request: AdminRequest) -> AdminResponse {
        self.counters.count(REQUEST_KINDS.len() - 1);
        let result = match request {
            AdminRequest::AddUser {
                id,
                name,
                password,
                admin,
            } => {
                if let Some(why) = password::refuse(&password) {
                    return AdminResponse::Error(ApiError::BadRequest(why));
                }
                let password_hash = match password::hash(password).await {
                    Ok(hash) => hash,
                    Err(e) => return AdminResponse::Unavailable(e),
                };
                let role = if admin { Role::Admin } else { Role::User };
                let op = Command::AddUser {
                    name,
                    password_hash,
                    role,
                    now_ms: now_ms(),
                };
                self.propose(id, op).await
            }
            AdminRequest::SetUserDisabled { id, name, disabled } => {
                self.propose(id, Command::SetUserDisabled { name, disabled })
                    .await
            }
            AdminRequest::CreateToken {
                id,
                user,
                label,
                token,
            } => {
                if token.len() < MIN_TOKEN_LEN {
                    return AdminResponse::Error(ApiError::BadRequest(format!(
                        "an API token needs at least {MIN_TOKEN_LEN} characters"
                    )));
                }
                let op = Command::CreateToken {
                    user,
                    token_hash: TokenHash::of(&token),
                    label,
                    now_ms: now_ms(),
                };
                self.propose(id, op).await
            }
            AdminRequest::Users => match self.read(Query::Users).await {
                Ok(Output::Users(users)) => {
                    return AdminResponse::Users(
                        users
                            .into_iter()
                            .map(|u| UserInfo {
                                name: u.name,
                                admin: u.role == Role::Admin,
                                disabled: u.disabled,
                            })
                            .collect(),
                    );
                }
                other => other,
            },
            AdminRequest::SwarmMembers {
                info_hash,
                after,
                limit,
            } => match self
                .node
                .read_local(Query::SwarmMembers {
                    info_hash,
                    after,
                    limit,
                })
                .await
            {
                Ok(Output::Members(page)) => return AdminResponse::Members(page),
                other => other,
            },
            AdminRequest::Cluster => {
                return match self.node.cluster_view().await {
                    Ok(view) => AdminResponse::Cluster(cluster_status(view)),
                    Err(e) => AdminResponse::Unavailable(e.to_string()),
                };
            }
            AdminRequest::ChangeMembership { change } => {
                return self.change_membership(change).await;
            }
            AdminRequest::TransferLeader { to } => return self.transfer_leader(to).await,
        };
        match result {
            Ok(Output::Done) => AdminResponse::Done,
            Ok(Output::Error(e)) => AdminResponse::Error(e),
            Ok(other) => AdminResponse::Unavailable(format!("unexpected answer {other:?}")),
            Err(e) => match unavailable(e) {
                Response::Error(e) => AdminResponse::Error(e),
                Response::Unavailable(text) => AdminResponse::Unavailable(text),
                other => AdminResponse::Unavailable(format!("{other:?}")),
            },
        }
    }

    /// Submits a membership change here; only the leader takes it.
    async fn change_membership(&self, change: MemberChange) -> AdminResponse {
        use paxos::MembershipError as E;
        use paxos::runtime::ChangeError;
        let change = match change {
            MemberChange::AddLearner { id, address } => {
                paxos::MembershipChange::AddLearner { id, address }
            }
            MemberChange::SetVoters { voters } => paxos::MembershipChange::SetVoters {
                voters: voters.into_iter().collect(),
            },
            MemberChange::RemoveLearner { id } => paxos::MembershipChange::RemoveLearner { id },
        };
        match self
            .node
            .change_membership(change, self.config.request_timeout)
            .await
        {
            Ok(_) => AdminResponse::Done,
            Err(ChangeError::Refused(e @ (E::Invalid(_) | E::LearnerBehind { .. }))) => {
                AdminResponse::Error(ApiError::BadRequest(e.to_string()))
            }
            // Not the leader, busy, interrupted, timed out, stopped: another node (or
            // this one, later) may take it; the change is idempotent.
            Err(e) => AdminResponse::Unavailable(e.to_string()),
        }
    }

    /// Hands this leader's leadership over and waits (up to the request timeout) until
    /// another node leads.
    async fn transfer_leader(&self, to: Option<u64>) -> AdminResponse {
        use paxos::runtime::ChangeError;
        match self.node.transfer_leadership(to).await {
            Ok(()) => {}
            Err(ChangeError::Refused(e @ paxos::MembershipError::Invalid(_))) => {
                return AdminResponse::Error(ApiError::BadRequest(e.to_string()));
            }
            Err(e) => return AdminResponse::Unavailable(e.to_string()),
        }
        let me = self.node.id();
        if to == Some(me) {
            return AdminResponse::Done;
        }
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        while tokio::time::Instant::now() < deadline {
            ticks.tick().await;
            let metrics = self.node.metrics();
            if !metrics.is_leader && metrics.leader.is_some_and(|l| l != me) {
                return AdminResponse::Done;
            }
        }
        AdminResponse::Unavailable("the handover did not finish in time; ask again".into())
    }

    /// Proposes `op` under the client's session and waits for its output.
    pub async fn propose(&self, id: WriteId, op: Command) -> Result<Output, RequestError> {
        let command = PaxosCommand {
            client: id.client,
            seq: id.seq,
            op,
        };
        self.node
            .propose_command(command, self.config.request_timeout)
            .await
    }

    /// A linearizable read (under the leader's lease).
    pub async fn read(&self, query: Query) -> Result<Output, RequestError> {
        self.node
            .read_query(query, self.config.request_timeout)
            .await
    }

    fn done(&self, result: Result<Output, RequestError>) -> Response {
        match result {
            Ok(Output::Done) => Response::Done,
            other => self.unexpected(other),
        }
    }

    fn peers(&self, result: Result<Output, RequestError>) -> Response {
        match result {
            Ok(Output::Peers(peers)) => Response::Peers(peers),
            other => self.unexpected(other),
        }
    }

    /// Maps a refusal or failure to its response; any other output is a bug, answered
    /// as unavailable so the client retries rather than trusts it.
    fn unexpected(&self, result: Result<Output, RequestError>) -> Response {
        match result {
            Ok(Output::Error(e)) => Response::Error(e),
            Ok(other) => {
                tracing::error!("unexpected state machine output {other:?}");
                Response::Unavailable("internal error: unexpected answer".into())
            }
            Err(e) => unavailable(e),
        }
    }
}

fn bad_request(text: &str) -> Response {
    Response::Error(ApiError::BadRequest(text.into()))
}

fn unavailable(e: RequestError) -> Response {
    match e {
        RequestError::Rejected(ClientError::Stale) => Response::Error(ApiError::Stale),
        RequestError::Rejected(ClientError::NotLeader { hint }) => {
            Response::Unavailable(match hint {
                Some(leader) => format!("this node cannot reach the leader (node {leader})"),
                None => "this node knows no leader: it cannot reach a majority".into(),
            })
        }
        RequestError::Timeout(t) => Response::Unavailable(format!(
            "no decision within {t:?}: this node may be cut off from the majority"
        )),
        RequestError::Stopped => Response::Unavailable("this node is shutting down".into()),
    }
}

/// The operator protocol's form of a replica's view of the cluster.
pub fn cluster_status(view: paxos::runtime::ClusterView) -> ClusterStatus {
    let m = view.membership;
    ClusterStatus {
        id: view.id,
        leader: view.leader,
        decided: view.decided,
        voters: m.voters.into_iter().collect(),
        learners: m.learners.into_iter().collect(),
        retired: m.retired.into_iter().collect(),
        addresses: m.addresses.into_iter().collect(),
        progress: view.progress.into_iter().collect(),
    }
}
