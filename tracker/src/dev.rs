//! A local tracker cluster on loopback in one process, for trying things out (`bt-tracker
//! dev`), for the `bt-demo` walkthrough and for tests: certificates generated, every node
//! on free ports, a user `dev` with an API token ready to publish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::Fingerprint;

use crate::admin::{self, AdminError};
use crate::api::{AdminRequest, AdminResponse, WriteId};
use crate::cert_files::CertDir;
use crate::node::{self, CertPaths, MemberConfig, NodeConfig, NodeError, RunningNode};

/// Why a dev cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Certificates could not be made.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A node could not start.
    #[error("node {id}: {error}")]
    Node {
        /// Which node.
        id: u64,
        /// What failed (its message is part of this one, so it is not a `source()`).
        error: NodeError,
    },
    /// No free port.
    #[error("cannot find a free port on loopback: {0}")]
    Ports(std::io::Error),
    /// The cluster did not elect a leader or refused the dev user.
    #[error("the dev cluster did not become ready: {0}")]
    NotReady(String),
}

/// Options of a dev cluster.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// Number of nodes. 3: the smallest cluster that survives the loss of a node.
    pub nodes: usize,
    /// Whether each node serves HTTP on a free loopback port.
    pub http: bool,
    /// A peer's time to live (ms); shorter values make expiry visible in tests.
    pub peer_ttl_ms: u64,
    /// Peer requests each node answers at once ([`NodeConfig::max_requests_in_flight`]).
    pub max_requests_in_flight: usize,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            nodes: 3,
            http: true,
            peer_ttl_ms: crate::state::StateConfig::default().peer_ttl_ms,
            max_requests_in_flight: crate::service::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// A running local cluster.
pub struct DevCluster {
    dir: PathBuf,
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<RunningNode>>,
    ca: Fingerprint,
    token: String,
}

/// A loopback port nothing else in this process can take before the node binds it.
fn free_port() -> Result<SocketAddr, DevError> {
    transport::ports::unused_loopback_addr().map_err(DevError::Ports)
}

impl DevCluster {
    /// Makes certificates in `dir` (reusing a CA already there), starts the nodes, waits
    /// for a leader and creates the user `dev` with an API token.
    pub async fn start(dir: &Path, options: DevOptions) -> Result<Self, DevError> {
        let certs = CertDir(dir.join("certs"));
        let ca = if certs.ca_key().exists() {
            admin::ca_fingerprint(&certs.0)?
        } else {
            admin::create_ca(&certs.0)?
        };
        let mut members = std::collections::BTreeMap::new();
        for id in 1..=options.nodes as u64 {
            let name = format!("node{id}");
            if !certs.cert(&name).exists() {
                admin::create_node_cert(&certs.0, &name)?;
            }
            members.insert(
                id,
                MemberConfig {
                    name,
                    cluster_addr: free_port()?,
                    peer_addr: free_port()?,
                },
            );
        }
        let mut configs = Vec::new();
        for (&id, member) in &members {
            let mut config = NodeConfig::new(
                id,
                members.clone(),
                dir.join(format!("data-{}", member.name)),
                CertPaths::in_dir(&certs.0, &member.name),
            );
            if options.http {
                config.http_listen = Some(free_port()?);
            }
            config.peer_ttl_ms = options.peer_ttl_ms;
            config.max_requests_in_flight = options.max_requests_in_flight;
            // Expire at least four times per time to live, so short test TTLs are honoured.
            config.expire_interval_ms = config
                .expire_interval_ms
                .min(options.peer_ttl_ms / 4)
                .max(50);
            configs.push(config);
        }
        let mut cluster = DevCluster {
            dir: dir.to_path_buf(),
            configs,
            nodes: Vec::new(),
            ca,
            token: admin::new_token(),
        };
        for i in 0..cluster.configs.len() {
            let running = cluster.start_node(i).await?;
            cluster.nodes.push(Some(running));
        }
        cluster.wait_for_leader(Duration::from_secs(10)).await?;
        cluster.create_dev_user().await?;
        Ok(cluster)
    }

    async fn start_node(&self, index: usize) -> Result<RunningNode, DevError> {
        let config = self.configs[index].clone();
        let id = config.id;
        node::start(config)
            .await
            .map_err(|error| DevError::Node { id, error })
    }

    async fn create_dev_user(&self) -> Result<(), DevError> {
        let service = self
            .nodes
            .iter()
            .flatten()
            .next()
            .ok_or_else(|| DevError::NotReady("no node running".into()))?
            .service()
            .clone();
        let session: u64 = rand::random();
        let requests = [
            AdminRequest::AddUser {
                id: WriteId {
                    client: session,
                    seq: 1,
                },
                name: "dev".into(),
                password: admin::new_token(),
                admin: true,
            },
            AdminRequest::CreateToken {
                id: WriteId {
                    client: session,
                    seq: 2,
                },
                user: "dev".into(),
                label: "dev cluster".into(),
                token: self.token.clone(),
            },
        ];
        for request in requests {
            let mut answer = service.answer_admin(request.clone()).await;
            for _ in 0..50 {
                if !matches!(answer, AdminResponse::Unavailable(_)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                answer = service.answer_admin(request.clone()).await;
            }
            match answer {
                AdminResponse::Done => {}
                // A CA reused from an earlier run keeps its data: the user exists.
                AdminResponse::Error(crate::api::ApiError::UserExists(_)) => {}
                other => {
                    return Err(DevError::NotReady(format!(
                        "creating the dev user: {other:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits until some running node leads and every running node knows it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, DevError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let statuses: Vec<_> = self
                .nodes
                .iter()
                .flatten()
                .map(|n| n.service().status())
                .collect();
            if let Some(leader) = statuses.iter().find(|s| s.is_leader).map(|s| s.id)
                && statuses.iter().all(|s| s.leader == Some(leader))
            {
                return Ok(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DevError::NotReady(format!(
                    "no leader within {timeout:?}: {statuses:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node ids, in order.
    pub fn ids(&self) -> Vec<u64> {
        self.configs.iter().map(|c| c.id).collect()
    }

    /// The running node with this id.
    pub fn node(&self, id: u64) -> Option<&RunningNode> {
        let index = self.configs.iter().position(|c| c.id == id)?;
        self.nodes.get(index)?.as_ref()
    }

    /// The id of the running node that currently leads, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.service().status())
            .find(|s| s.is_leader)
            .map(|s| s.id)
    }

    /// Stops a node abruptly: its endpoints close at once, as if its machine died. (To
    /// restart a node, run it as its own process: `bt-tracker run`.)
    pub fn stop(&mut self, id: u64) {
        if let Some(index) = self.configs.iter().position(|c| c.id == id)
            && let Some(node) = self.nodes[index].take()
        {
            node.shutdown();
        }
    }

    /// The peer-facing addresses (what torrent files list), in node order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.configs
            .iter()
            .map(|c| c.members[&c.id].peer_addr)
            .collect()
    }

    /// The cluster addresses (for operators), in node order.
    pub fn cluster_addrs(&self) -> Vec<SocketAddr> {
        self.configs
            .iter()
            .map(|c| c.members[&c.id].cluster_addr)
            .collect()
    }

    /// The HTTP addresses of the running nodes, with their ids.
    pub fn http_addrs(&self) -> Vec<(u64, SocketAddr)> {
        self.nodes
            .iter()
            .flatten()
            .filter_map(|n| Some((n.service().status().id, n.http_addr()?)))
            .collect()
    }

    /// The cluster CA's fingerprint (what torrent files carry).
    pub fn ca_fingerprint(&self) -> Fingerprint {
        self.ca
    }

    /// The API token of the user `dev`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The directory holding certificates (`certs/`) and data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops every node.
    pub fn shutdown(mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(node) = node.take() {
                node.shutdown();
            }
        }
    }
}

/// A working directory: `dir` if given (kept), else a fresh temporary one named
/// `prefix...`, removed when the returned guard is dropped.
pub fn dir_or_temp(
    dir: Option<PathBuf>,
    prefix: &str,
) -> std::io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(dir) => Ok((dir, None)),
        None => {
            let temp = tempfile::Builder::new().prefix(prefix).tempdir()?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}
