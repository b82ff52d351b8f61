//! The cluster page's data: every member's own view, asked over its peer address with the
//! `Status` request (dialled expecting a certificate of the cluster CA), or from this
//! node's replica for itself. A member that does not answer within a second is down.

use std::net::SocketAddr;
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
    /// Whether it answered.
    pub(crate) up: bool,
    /// Its answer.
    pub(crate) status: Option<NodeStatus>,
    /// Why it did not answer.
    pub(crate) error: Option<String>,
}

/// The other members, each with a client of its own (one node, short timeouts).
pub(crate) struct Members {
    me: u64,
    members: Vec<(u64, String, SocketAddr, Option<TrackerClient>)>,
}

impl Members {
    pub(crate) fn new(config: &SiteConfig) -> Self {
        let client_config = ClientConfig {
            attempt_timeout: STATUS_TIMEOUT,
            deadline: STATUS_TIMEOUT,
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(2),
            },
        };
        let members = config
            .members
            .iter()
            .map(|(&id, m)| {
                let client = (id != config.id).then(|| {
                    TrackerClient::with_config(
                        config.endpoint.clone(),
                        vec![m.peer_addr],
                        config.ca,
                        client_config.clone(),
                    )
                });
                (id, m.name.clone(), m.peer_addr, client)
            })
            .collect();
        Members {
            me: config.id,
            members,
        }
    }

    /// Every member's view, asked at once.
    pub(crate) async fn views(&self, service: &Service) -> Vec<MemberView> {
        let asks = self
            .members
            .iter()
            .map(|(id, name, addr, client)| async move {
                let answer = match client {
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
                    id: *id,
                    name: name.clone(),
                    peer_addr: *addr,
                    this_node: *id == self.me,
                    up: status.is_some(),
                    status,
                    error,
                }
            });
        futures_util::future::join_all(asks).await
    }
}
