//! Dialling with connection reuse and back-off from remotes that do not answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::trust::Expect;
use crate::{Connection, Endpoint, TransportError};
use backoff::{Backoff, BackoffState};

/// Dials remotes through an [`Endpoint`], reusing live connections and backing off
/// exponentially (with jitter) from remotes whose dials fail. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dialer {
    endpoint: Endpoint,
    policy: Backoff,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    connections: HashMap<(SocketAddr, Vec<u8>), (Expect, Connection)>,
    backoff: HashMap<SocketAddr, BackoffState>,
    rng: StdRng,
}

impl Dialer {
    /// A dialer over `endpoint` with the back-off `policy`.
    pub fn new(endpoint: Endpoint, policy: Backoff) -> Self {
        Dialer {
            endpoint,
            policy,
            state: Arc::new(Mutex::new(State {
                connections: HashMap::new(),
                backoff: HashMap::new(),
                rng: StdRng::from_os_rng(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent (each update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoint dials go through.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Returns a live connection to `addr` for protocol `alpn` whose remote satisfied
    /// `expect`, dialling if there is none. Fails fast with
    /// [`TransportError::BackedOff`] while `addr` is backed off.
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expect: &Expect,
        alpn: &[u8],
    ) -> Result<Connection, TransportError> {
        let key = (addr, alpn.to_vec());
        {
            let mut state = self.state();
            if let Some((cached_expect, connection)) = state.connections.get(&key) {
                if cached_expect == expect && !connection.is_closed() {
                    return Ok(connection.clone());
                }
                state.connections.remove(&key);
            }
            let now = Instant::now();
            if let Some(backoff) = state.backoff.get(&addr)
                && let Some(until) = backoff.backed_off_until(now)
            {
                return Err(TransportError::BackedOff {
                    addr,
                    failures: backoff.failures(),
                    retry_in: until - now,
                });
            }
        }
        match self.endpoint.connect(addr, expect, alpn).await {
            Ok(connection) => {
                let mut state = self.state();
                state.backoff.remove(&addr);
                state
                    .connections
                    .insert(key, (expect.clone(), connection.clone()));
                Ok(connection)
            }
            Err(e) => {
                if e.is_remote_failure() {
                    self.report_failure(addr);
                }
                Err(e)
            }
        }
    }

    /// Records that `addr` failed (a dial, or a request the application gave up on) and
    /// backs it off. Returns until when.
    pub fn report_failure(&self, addr: SocketAddr) -> Instant {
        let mut state = self.state();
        let State {
            backoff,
            rng,
            connections,
        } = &mut *state;
        connections.retain(|(a, _), _| *a != addr);
        backoff
            .entry(addr)
            .or_default()
            .fail(&self.policy, Instant::now(), rng)
    }

    /// Backs `addr` off without dropping its connection: for a request that took too long
    /// (an overloaded remote, not necessarily a dead one). While the connection stays open,
    /// [`Dialer::dial`] still returns it; new dials wait for the back-off. Dropping the
    /// connection would make the next attempt pay for a new handshake, the most expensive
    /// thing a loaded server does; QUIC's own idle timeout and stateless resets still end
    /// the connection if the remote is really gone. Returns until when.
    pub fn back_off(&self, addr: SocketAddr) -> Instant {
        let mut state = self.state();
        let State { backoff, rng, .. } = &mut *state;
        backoff
            .entry(addr)
            .or_default()
            .fail(&self.policy, Instant::now(), rng)
    }

    /// How many datagrams the open connection to `addr` for `alpn` has received so far,
    /// if there is one. A caller waiting for an answer can tell a remote that is alive but
    /// slow (the count grows: QUIC acknowledges what it receives within milliseconds)
    /// from one that is gone (it does not).
    pub fn datagrams_received(&self, addr: SocketAddr, alpn: &[u8]) -> Option<u64> {
        self.state()
            .connections
            .get(&(addr, alpn.to_vec()))
            .filter(|(_, c)| !c.is_closed())
            .map(|(_, c)| c.quinn().stats().udp_rx.datagrams)
    }

    /// If `addr` is backed off now, until when.
    pub fn backed_off_until(&self, addr: SocketAddr) -> Option<Instant> {
        self.state()
            .backoff
            .get(&addr)
            .and_then(|b| b.backed_off_until(Instant::now()))
    }
}
