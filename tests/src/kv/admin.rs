//! The key-value service's operator protocol: who the members are, adding and removing
//! them, and handing the leadership over.
//!
//! It is served on each node's paxos endpoint under its own ALPN, [`ALPN_KV_ADMIN`], to
//! holders of the cluster certificate named [`ADMIN_NAME`] only: the endpoint's mutual-TLS
//! handshake checks the certificate against the cluster CA, and the server checks the
//! name. Key-value clients, who connect without a cluster certificate, cannot reach it.
//!
//! Each request is one frame on a one-request stream; the messages, [`KvAdminRequest`]
//! and [`KvAdminResponse`], are in `admin_protocol.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use paxos::runtime::{ChangeError, ClusterView, Node};
use paxos::{MembershipChange, MembershipError, NodeId};
use transport::paxos_network::ClusterMember;
use transport::{Connection, Endpoint, EndpointConfig, Expect, InboundTrust};

pub use super::admin_protocol::{KvAdminRequest, KvAdminResponse};
use super::state_machine::Kv;

/// ALPN of the operator protocol.
pub const ALPN_KV_ADMIN: &[u8] = b"bytetorrent/kv-admin/1";

/// The certificate name an operator's requests must come with.
pub const ADMIN_NAME: &str = "admin";

/// How long a node waits for a membership change to be decided before answering
/// [`KvAdminResponse::Retry`].
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the operator's requests on `connection` (whose peer certificate names
/// [`ADMIN_NAME`]) until it closes.
pub async fn serve_admin_connection(connection: Connection, node: Node<Kv>) {
    connection
        .serve_requests(move |request: KvAdminRequest| {
            let node = node.clone();
            async move { answer(&node, request).await }
        })
        .await
}

/// Whether a connection on the paxos endpoint is an operator's: the admin ALPN and a
/// cluster certificate named [`ADMIN_NAME`] (the CA was checked in the handshake).
pub fn is_operator(connection: &Connection) -> bool {
    connection.alpn() == ALPN_KV_ADMIN && connection.remote_names().iter().any(|n| n == ADMIN_NAME)
}

async fn answer(node: &Node<Kv>, request: KvAdminRequest) -> KvAdminResponse {
    match request {
        KvAdminRequest::Cluster => match node.cluster_view().await {
            Ok(view) => KvAdminResponse::Cluster(view),
            Err(e) => KvAdminResponse::Retry(e.to_string()),
        },
        KvAdminRequest::ChangeMembership(change) => {
            match node.change_membership(change, CHANGE_TIMEOUT).await {
                Ok(_) => KvAdminResponse::Done,
                Err(e) => change_failure(e),
            }
        }
        KvAdminRequest::TransferLeader(to) => match node.transfer_leadership(to).await {
            Ok(()) => KvAdminResponse::Done,
            Err(e) => change_failure(e),
        },
    }
}

fn change_failure(e: ChangeError) -> KvAdminResponse {
    match e {
        ChangeError::Refused(MembershipError::NotLeader { hint }) => {
            KvAdminResponse::NotLeader(hint)
        }
        ChangeError::Refused(MembershipError::Invalid(why)) => KvAdminResponse::Refused(why),
        // Busy, interrupted, a learner still behind, a timeout: later may work.
        other => KvAdminResponse::Retry(other.to_string()),
    }
}

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum KvAdminError {
    /// A certificate could not be read.
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    /// The local endpoint could not be made.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The cluster refused the change for good.
    #[error("refused: {0}")]
    Refused(String),
    /// No node did it before the deadline.
    #[error("not done within {0:?}; last answer: {1}")]
    Timeout(Duration, String),
}

/// An operator's client: asks the nodes at their paxos addresses, in turn, until the
/// leader takes the request.
pub struct KvAdmin {
    endpoint: Endpoint,
    servers: Vec<SocketAddr>,
    expect: Expect,
    /// How long one command keeps trying.
    pub deadline: Duration,
}

impl KvAdmin {
    /// A client with the operator certificate `admin.crt`/`admin.key` and the CA
    /// `ca.crt` in `certs_dir`, for the nodes whose paxos addresses are `servers`.
    pub fn new(certs_dir: &Path, servers: Vec<SocketAddr>) -> Result<Self, KvAdminError> {
        let identity = certs::Identity::load(
            &certs_dir.join(format!("{ADMIN_NAME}.crt")),
            &certs_dir.join(format!("{ADMIN_NAME}.key")),
        )?;
        let ca = super::ca_fingerprint(&certs_dir.join("ca.crt"))?;
        let mut config =
            EndpointConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)), InboundTrust::Open, &[]);
        config.connect_timeout = Duration::from_secs(1);
        // A view is a membership and a few numbers: far below this.
        config.max_frame = 1 << 20;
        Ok(KvAdmin {
            endpoint: Endpoint::bind(identity, config)?,
            servers,
            expect: Expect::ClusterMember(ca),
            deadline: Duration::from_secs(30),
        })
    }

    async fn ask(
        &self,
        server: SocketAddr,
        request: &KvAdminRequest,
    ) -> Result<KvAdminResponse, String> {
        let attempt = async {
            let connection = self
                .endpoint
                .connect(server, &self.expect, ALPN_KV_ADMIN)
                .await?;
            connection.request::<_, KvAdminResponse>(request).await
        };
        match tokio::time::timeout(CHANGE_TIMEOUT + Duration::from_secs(1), attempt).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(format!("{server}: {e}")),
            Err(_) => Err(format!("{server}: no answer in time")),
        }
    }

    /// The leader's view of the cluster (with each member's progress), or the first
    /// view of a node that does not know a leader.
    pub async fn cluster_view(&self) -> Result<ClusterView, KvAdminError> {
        let mut first = None;
        let mut last = String::from("no server configured");
        for &server in &self.servers {
            match self.ask(server, &KvAdminRequest::Cluster).await {
                Ok(KvAdminResponse::Cluster(view)) if view.leader == Some(view.id) => {
                    return Ok(view);
                }
                Ok(KvAdminResponse::Cluster(view)) => {
                    first.get_or_insert(view);
                }
                Ok(other) => last = format!("{other:?}"),
                Err(e) => last = e,
            }
        }
        first.ok_or(KvAdminError::Timeout(Duration::ZERO, last))
    }

    /// The configured servers, then every member added at run time (the leader may be
    /// one the operator did not list): their addresses are in the membership.
    async fn targets(&self) -> Vec<SocketAddr> {
        let mut all = self.servers.clone();
        if let Ok(view) = self.cluster_view().await {
            let m = &view.membership;
            let current = m.addresses.iter().filter(|(id, _)| m.is_member(**id));
            for member in current.filter_map(|(_, a)| a.parse::<ClusterMember>().ok()) {
                if !all.contains(&member.addr) {
                    all.push(member.addr);
                }
            }
        }
        all
    }

    /// Sends `request` to each node in turn, again and again, until one answers
    /// [`KvAdminResponse::Done`] or refuses for good, or the deadline passes.
    async fn until_done(&self, request: KvAdminRequest) -> Result<(), KvAdminError> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut last = String::new();
        loop {
            for server in self.targets().await {
                match self.ask(server, &request).await {
                    Ok(KvAdminResponse::Done) => return Ok(()),
                    Ok(KvAdminResponse::Refused(why)) => return Err(KvAdminError::Refused(why)),
                    Ok(other) => last = format!("{server}: {other:?}"),
                    Err(e) => last = e,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KvAdminError::Timeout(self.deadline, last));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Applies one membership change through the leader.
    pub async fn change(&self, change: MembershipChange) -> Result<(), KvAdminError> {
        self.until_done(KvAdminRequest::ChangeMembership(change))
            .await
    }

    /// Adds node `id` (reachable at `address`, `name@ip:port`) as a learner, waits until
    /// it has caught up (the leader refuses to promote a learner that is behind), and
    /// makes it a voter beside the current ones, or in place of voter `replacing`.
    ///
    /// Replacing in one change keeps the number of voters, and so the quorum, as it
    /// was: adding a fourth voter beside a dead third one would make every write wait
    /// for all three live nodes, the new one included, until the dead one is removed.
    pub async fn add_voter(
        &self,
        id: NodeId,
        address: String,
        replacing: Option<NodeId>,
    ) -> Result<(), KvAdminError> {
        self.change(MembershipChange::AddLearner { id, address })
            .await?;
        let view = self.cluster_view().await?;
        let mut voters = view.membership.voters.clone();
        if let Some(old) = replacing {
            voters.remove(&old);
        }
        voters.insert(id);
        if voters == view.membership.voters {
            return Ok(());
        }
        self.change(MembershipChange::SetVoters { voters }).await
    }

    /// Removes node `id` for good, whether it votes or learns.
    pub async fn remove(&self, id: NodeId) -> Result<(), KvAdminError> {
        let view = self.cluster_view().await?;
        let membership = &view.membership;
        let change = if membership.voters.contains(&id) {
            let mut voters = membership.voters.clone();
            voters.remove(&id);
            MembershipChange::SetVoters { voters }
        } else if membership.learners.contains(&id) {
            MembershipChange::RemoveLearner { id }
        } else if membership.retired.contains(&id) {
            return Ok(());
        } else {
            return Err(KvAdminError::Refused(format!(
                "node {id} is not a member of the cluster"
            )));
        };
        self.change(change).await
    }

    /// Hands the leadership to `to` (or the most up-to-date voter).
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<(), KvAdminError> {
        self.until_done(KvAdminRequest::TransferLeader(to)).await
    }
}
