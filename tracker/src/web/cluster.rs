//! The cluster page's data: every member's own view, asked over its peer address with the
//! `Status` request (dialled expecting a certificate of the cluster CA), or from this
//! node's replica for itself. A member that does not answer within a second is down.
//! The members are those of this node's configuration and those added since (read from
//! the replicated membership), each with its role: voter, learner or removed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::api::NodeStatus;
use crate::client::{ClientConfig, TrackerClient};
use crate::service::Service;
use transport::Backoff;

use super::SiteConfig;

/// How long a member may take to answer. 1 s: a live member answers `Status` from memory
/// in a round trip, and the page should not hang on a dead one.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// One member as the cluster page shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MemberView {
    /// Its id.
    pub(crate) id: u64,
    /// Its certificate name.
    pub(crate) name: String,
    /// Its peer-facing address.
    pub(crate) peer_addr: SocketAddr,
    /// Whether this is the node serving the page.
    pub(crate) this_node: bool,
    /// `voter`, `learner` or `removed`, as this node's replica knows the membership.
    pub(crate) role: &'static str,
    /// Whether it answered.
    pub(crate) up: bool,
    /// Its answer.
    pub(crate) status: Option<NodeStatus>,
    /// Why it did not answer.
    pub(crate) error: Option<String>,
}

/// One member and a client of its own (none for this node).
type Member = (u64, String, SocketAddr, Option<Arc<TrackerClient>>);

/// The members, each with a client of its own (one node, short timeouts).
pub(crate) struct Members {
    me: u64,
    members: Mutex<Vec<Member>>,
    endpoint: transport::Endpoint,
    ca: certs::Fingerprint,
}

impl Members {
    pub(crate) fn new(config: &SiteConfig) -> Self {
        let members = Members {
            me: config.id,
            members: Mutex::new(Vec::new()),
            endpoint: config.endpoint.clone(),
            ca: config.ca,
        };
        for (&id, m) in &config.members {
            members.add(id, m.name.clone(), m.peer_addr);
        }
        members
    }

    fn add(&self, id: u64, name: String, peer_addr: SocketAddr) {
        let client_config = ClientConfig {
            attempt_timeout: STATUS_TIMEOUT,
            deadline: STATUS_TIMEOUT,
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(2),
            },
            ..ClientConfig::default()
        };
        let client = (id != self.me).then(|| {
            Arc::new(TrackerClient::with_config(
                self.endpoint.clone(),
                vec![peer_addr],
                self.ca,
                client_config,
            ))
        });
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.push((id, name, peer_addr, client));
        members.sort_by_key(|m| m.0);
    }

    /// Every member's view, asked at once.
    pub(crate) async fn views(&self, service: &Service) -> Vec<MemberView> {
        let membership = service
            .node()
            .cluster_view()
            .await
            .map(|v| v.membership)
            .unwrap_or_default();
        // Members added since this node started.
        for (&id, address) in &membership.addresses {
            let known = self
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|m| m.0 == id);
            if !known && let Ok(m) = crate::node::MemberConfig::from_address(address) {
                self.add(id, m.name, m.peer_addr);
            }
        }
        let role = |id: u64| {
            if membership.voters.contains(&id) {
                "voter"
            } else if membership.learners.contains(&id) {
                "learner"
            } else if membership.retired.contains(&id) {
                "removed"
            } else {
                "unknown"
            }
        };
        let members = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let asks = members
            .into_iter()
            .map(|(id, name, addr, client)| async move {
                let answer = match &client {
                    None => Ok(service.status()),
                    Some(client) => {
                        match tokio::time::timeout(STATUS_TIMEOUT, client.status()).await {
                            Ok(Ok(status)) => Ok(status),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err(format!("no answer within {STATUS_TIMEOUT:?}")),
                        }
                    }
                };
                let (status, error) = match answer {
                    Ok(status) => (Some(status), None),
                    Err(e) => (None, Some(e)),
                };
                MemberView {
                    id,
                    name,
                    peer_addr: addr,
                    this_node: id == self.me,
                    role: role(id),
                    up: status.is_some(),
                    status,
                    error,
                }
            });
        futures_util::future::join_all(asks).await
    }
}
