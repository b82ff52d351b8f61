//! The web layer's writes: a small pool of Paxos client sessions on this node.
//!
//! Each session has its own random client id and numbers its commands 1, 2, 3, ...; a
//! session sends one command at a time and retries it with the same number until it is
//! answered, so a command caught in a leader change is applied exactly once. A pool of a
//! few sessions lets several people's writes proceed at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use paxos::runtime::{Client, ClientConfig, Node, RequestError};
use tokio::sync::Mutex;

use crate::state::{Command, Output, TrackerState};

/// Sessions in the pool. 4: web writes (sign-ins, uploads, tokens) are rare next to the
/// peers' traffic, and each takes one consensus round.
const SESSIONS: usize = 4;

/// The pool.
pub(crate) struct Writers {
    sessions: Vec<Mutex<Client<TrackerState>>>,
    next: AtomicUsize,
}

impl Writers {
    pub(crate) fn new(node: &Node<TrackerState>) -> Self {
        // An attempt outlives an election (see `ClientConfig`); the deadline stays under
        // what a person waits for a page.
        let config = ClientConfig {
            attempt_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(8),
        };
        Writers {
            sessions: (0..SESSIONS)
                .map(|_| Mutex::new(node.client(config.clone())))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Proposes `op` through a free session (or waits for one) and returns its output.
    pub(crate) async fn propose(&self, op: Command) -> Result<Output, RequestError> {
        for session in &self.sessions {
            if let Ok(mut client) = session.try_lock() {
                return client.propose(op).await;
            }
        }
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        self.sessions[at].lock().await.propose(op).await
    }
}
