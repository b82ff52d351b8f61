//! Operating a cluster: making its certificates and the operator's client.
//!
//! `bt-tracker certs ca` makes the cluster CA and an operator certificate named
//! [`ADMIN_NAME`]; `bt-tracker certs node NAME` issues a
//! node's certificate (file names in [`cert_files`](crate::cert_files)). The operator's
//! client dials a node's cluster address with the operator certificate and speaks the
//! [`AdminRequest`] protocol; the node's mutual-TLS handshake checks the certificate
//! against the cluster CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::{ClusterCa, Fingerprint, Identity};
use transport::{Endpoint, EndpointConfig, Expect, InboundTrust};

use crate::api::{
    ALPN_TRACKER_ADMIN, AdminRequest, AdminResponse, MAX_MEMBERS_PER_PAGE, SwarmMember, UserInfo,
    WriteId,
};
use crate::cert_files::{ADMIN_NAME, CertDir};
use crate::torrent::InfoHash;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A certificate problem.
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    /// A file system problem.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed (its message is part of this one, so it is not a `source()`).
        error: std::io::Error,
    },
    /// A name that cannot be a node's.
    #[error(
        "{0:?} cannot name a node: use 1 to 63 lowercase letters, digits and '-', not {ADMIN_NAME:?}"
    )]
    BadNodeName(String),
    /// The cluster refused.
    #[error("the tracker refused: {0}")]
    Refused(crate::api::ApiError),
    /// No node answered.
    #[error("no tracker node answered; tried: {0}")]
    Unreachable(String),
    /// A node answered with something other than what the request calls for.
    #[error("unexpected answer from the tracker: {0}")]
    Unexpected(String),
    /// A transport problem setting up the client.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
}

/// Creates the cluster CA and the operator certificate in `dir`; returns the CA's
/// fingerprint (what torrent files carry). Refuses to overwrite an existing CA.
pub fn create_ca(dir: &Path) -> Result<Fingerprint, AdminError> {
    let files = CertDir::new(dir);
    std::fs::create_dir_all(dir).map_err(|error| AdminError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    if files.ca_key().exists() {
        return Err(AdminError::Io {
            path: files.ca_key(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a CA already exists here; remove it first to make a new one",
            ),
        });
    }
    let ca = ClusterCa::generate("ByteTorrent tracker cluster")?;
    ca.save(&files.ca_cert(), &files.ca_key())?;
    ca.issue(ADMIN_NAME)?
        .save(&files.cert(ADMIN_NAME), &files.key(ADMIN_NAME))?;
    Ok(ca.fingerprint())
}

/// Issues the certificate of node `name` with the CA in `dir`.
pub fn create_node_cert(dir: &Path, name: &str) -> Result<(), AdminError> {
    let valid = !name.is_empty()
        && name.len() < 64
        && name != ADMIN_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if !valid {
        return Err(AdminError::BadNodeName(name.to_string()));
    }
    let files = CertDir::new(dir);
    let ca = ClusterCa::load(&files.ca_cert(), &files.ca_key())?;
    ca.issue(name)?.save(&files.cert(name), &files.key(name))?;
    Ok(())
}

/// The fingerprint of the CA certificate in `dir`.
pub fn ca_fingerprint(dir: &Path) -> Result<Fingerprint, AdminError> {
    let cert = ClusterCa::load_certificate(&CertDir::new(dir).ca_cert())?;
    Ok(Fingerprint::of_certificate(&cert)?)
}

/// An operator's client: tries each cluster address in turn.
pub struct AdminClient {
    endpoint: Endpoint,
    nodes: Vec<SocketAddr>,
    expect: Expect,
    session: u64,
    seq: u64,
}

impl AdminClient {
    /// A client using the operator certificate in `dir`, for the nodes' cluster addresses.
    pub fn new(dir: &Path, nodes: Vec<SocketAddr>) -> Result<Self, AdminError> {
        let files = CertDir::new(dir);
        let identity = Identity::load(&files.cert(ADMIN_NAME), &files.key(ADMIN_NAME))?;
        let ca = ca_fingerprint(dir)?;
        let mut config =
            EndpointConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)), InboundTrust::Open, &[]);
        config.connect_timeout = Duration::from_secs(2);
        config.max_frame = crate::api::MAX_FRAME_LEN;
        let endpoint = Endpoint::bind(identity, config)?;
        Ok(AdminClient {
            endpoint,
            nodes,
            expect: Expect::ClusterMember(ca),
            session: rand::random(),
            seq: 0,
        })
    }

    /// The next write identity of this client's session.
    pub fn next_id(&mut self) -> WriteId {
        self.seq += 1;
        WriteId {
            client: self.session,
            seq: self.seq,
        }
    }

    /// Sends `request` to the node at `addr` once.
    async fn ask(&self, addr: SocketAddr, request: &AdminRequest) -> Result<AdminResponse, String> {
        let attempt = async {
            let connection = self
                .endpoint
                .connect(addr, &self.expect, ALPN_TRACKER_ADMIN)
                .await?;
            connection.request::<_, AdminResponse>(request).await
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 5 s".into()),
        }
    }

    /// Every member of a swarm with its pieces, as the node at `node` (a cluster address)
    /// holds them in its own applied state, read page by page. Meant for comparing the
    /// replicas of a quiet swarm: pages are separate reads, so a member that joins or
    /// leaves between two of them may be missed or seen once.
    pub async fn swarm_members_of(
        &self,
        node: SocketAddr,
        info_hash: InfoHash,
    ) -> Result<Vec<SwarmMember>, AdminError> {
        let mut members: Vec<SwarmMember> = Vec::new();
        loop {
            let request = AdminRequest::SwarmMembers {
                info_hash,
                after: members.last().map(|m| m.fingerprint),
                limit: MAX_MEMBERS_PER_PAGE,
            };
            match self.ask(node, &request).await {
                Ok(AdminResponse::Members(page)) => {
                    let last = (page.members.len() as u32) < MAX_MEMBERS_PER_PAGE;
                    members.extend(page.members);
                    if last {
                        return Ok(members);
                    }
                }
                Ok(AdminResponse::Error(e)) => return Err(AdminError::Refused(e)),
                Ok(other) => return Err(AdminError::Unexpected(format!("{other:?}"))),
                Err(why) => return Err(AdminError::Unreachable(format!("{node}: {why}"))),
            }
        }
    }

    /// Sends `request` to each node in turn until one answers for good; retries for up to
    /// 15 s while nodes are unavailable.
    pub async fn call(&self, request: &AdminRequest) -> Result<AdminResponse, AdminError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut failures = Vec::new();
        loop {
            for &addr in &self.nodes {
                match self.ask(addr, request).await {
                    Ok(AdminResponse::Unavailable(why)) => failures.push(format!("{addr}: {why}")),
                    Ok(AdminResponse::Error(e)) => return Err(AdminError::Refused(e)),
                    Ok(response) => return Ok(response),
                    Err(why) => failures.push(format!("{addr}: {why}")),
                }
            }
            if tokio::time::Instant::now() >= deadline || self.nodes.is_empty() {
                failures.dedup();
                return Err(AdminError::Unreachable(failures.join("; ")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl AdminClient {
    /// Adds user `name` with `password` (hashed by the node), as an administrator if
    /// `admin`.
    pub async fn add_user(
        &mut self,
        name: &str,
        password: String,
        admin: bool,
    ) -> Result<(), AdminError> {
        let id = self.next_id();
        let request = AdminRequest::AddUser {
            id,
            name: name.to_string(),
            password,
            admin,
        };
        expect_done(self.call(&request).await?)
    }

    /// Disables user `name` (their tokens stop working), or enables them again.
    pub async fn set_user_disabled(
        &mut self,
        name: &str,
        disabled: bool,
    ) -> Result<(), AdminError> {
        let id = self.next_id();
        let request = AdminRequest::SetUserDisabled {
            id,
            name: name.to_string(),
            disabled,
        };
        expect_done(self.call(&request).await?)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserInfo>, AdminError> {
        match self.call(&AdminRequest::Users).await? {
            AdminResponse::Users(users) => Ok(users),
            other => Err(AdminError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Creates a new API token for `user`, recognised by `label`, and returns it: the
    /// cluster keeps only its hash, so this is the one time it is shown.
    pub async fn create_token(&mut self, user: &str, label: &str) -> Result<String, AdminError> {
        let token = new_token();
        let id = self.next_id();
        let request = AdminRequest::CreateToken {
            id,
            user: user.to_string(),
            label: label.to_string(),
            token: token.clone(),
        };
        expect_done(self.call(&request).await?)?;
        Ok(token)
    }
}

impl AdminClient {
    /// The view of the cluster of the node at `node` (a cluster address).
    pub async fn cluster_view_of(
        &self,
        node: SocketAddr,
    ) -> Result<crate::api::ClusterStatus, AdminError> {
        match self.ask(node, &AdminRequest::Cluster).await {
            Ok(AdminResponse::Cluster(view)) => Ok(view),
            Ok(AdminResponse::Error(e)) => Err(AdminError::Refused(e)),
            Ok(other) => Err(AdminError::Unexpected(format!("{other:?}"))),
            Err(why) => Err(AdminError::Unreachable(format!("{node}: {why}"))),
        }
    }

    /// The leader's view of the cluster (with each member's progress), or, when no
    /// leader answers, the first view any node gives. Every node is asked at once and
    /// the leader's answer taken as soon as it comes, so a dead node costs nothing.
    pub async fn cluster_view(&self) -> Result<crate::api::ClusterStatus, AdminError> {
        use futures_util::StreamExt;
        let mut answers: futures_util::stream::FuturesUnordered<_> = self
            .nodes
            .iter()
            .map(|&addr| self.cluster_view_of(addr))
            .collect();
        let mut first = None;
        let mut failures = Vec::new();
        while let Some(answer) = answers.next().await {
            match answer {
                Ok(view) if view.leader == Some(view.id) => return Ok(view),
                Ok(view) => {
                    first.get_or_insert(view);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        first.ok_or_else(|| AdminError::Unreachable(failures.join("; ")))
    }

    /// Applies a membership change through whichever node leads.
    pub async fn change_membership(
        &self,
        change: crate::api::MemberChange,
    ) -> Result<(), AdminError> {
        expect_done(
            self.call(&AdminRequest::ChangeMembership { change })
                .await?,
        )
    }

    /// Asks the leader to hand its leadership to `to` (or the most up-to-date voter).
    pub async fn transfer_leader(&self, to: Option<u64>) -> Result<(), AdminError> {
        expect_done(self.call(&AdminRequest::TransferLeader { to }).await?)
    }
}

fn expect_done(response: AdminResponse) -> Result<(), AdminError> {
    match response {
        AdminResponse::Done => Ok(()),
        other => Err(AdminError::Unexpected(format!("{other:?}"))),
    }
}

/// A new API token: 256 random bits as 52 characters of lowercase base32, which survive
/// any shell, URL or configuration file unquoted.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
}
