//! The decoders of what the web site reads from browsers and scripts, callable on plain
//! bytes by the fuzz targets in `fuzz/` (the `fuzzing` feature). Not part of the crate's
//! API: nothing else may use it.
//!
//! The forms are decoded by the same axum extractors the handlers use (`Form<...>` for a
//! POST body, `Query<...>` for a query string), run to completion at once: their bodies are
//! in memory, so they never wait. Uploads, whose handler needs the replicated state (who is
//! signed in, what is published), go to the real site of a one-node cluster in this
//! process ([`UploadSite`]). The wire protocol's types ([`crate::api`]), torrent files
//! ([`crate::torrent::Torrent::parse`]) and snapshots (the state machine's `restore`) are
//! public already and need no wrapper here.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Query};
use axum::http::{Request, Uri, header};
use certs::{Fingerprint, Identity};
use paxos::runtime::{Network, RuntimeConfig};
use serde::de::DeserializeOwned;
use transport::{Endpoint, EndpointConfig, InboundTrust};

use crate::api::{ALPN_TRACKER, SearchOrder, WriteId};
use crate::node::MemberConfig;
use crate::service::{Service, ServiceConfig, now_ms};
use crate::state::{Command, Output, Role, StateConfig, TokenHash, TrackerState};
use crate::web::account::{AccountForm, DisableForm, TokenForm};
use crate::web::actions::SearchParams;
use crate::web::api::NewToken;
use crate::web::pages::CsrfForm;
use crate::web::{Site, SiteConfig};

/// A form the web site accepts as a `POST` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    /// Sign up and sign in.
    Account,
    /// Create and revoke an API token.
    Token,
    /// Disable or enable a user.
    Disable,
    /// Any other POST: the CSRF field alone.
    Csrf,
}

impl FormKind {
    /// Every form.
    pub const ALL: [FormKind; 4] = [
        FormKind::Account,
        FormKind::Token,
        FormKind::Disable,
        FormKind::Csrf,
    ];
}

/// Decodes `body` as the `application/x-www-form-urlencoded` body of form `kind`, as the
/// handler's `Form` extractor does: the decoded fields (their `Debug` form), or the
/// rejection's text.
pub fn decode_form(kind: FormKind, body: &[u8]) -> Result<String, String> {
    match kind {
        FormKind::Account => form::<AccountForm>(body),
        FormKind::Token => form::<TokenForm>(body),
        FormKind::Disable => form::<DisableForm>(body),
        FormKind::Csrf => form::<CsrfForm>(body),
    }
}

fn form<T: DeserializeOwned + std::fmt::Debug>(body: &[u8]) -> Result<String, String> {
    let request = Request::post("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_vec()))
        .map_err(|e| e.to_string())?;
    match ready(axum::Form::<T>::from_request(request, &())) {
        Ok(axum::Form(value)) => Ok(format!("{value:?}")),
        Err(rejection) => Err(rejection.to_string()),
    }
}

/// A search as the search page and `GET /api/search` read it from a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The words.
    pub q: String,
    /// The page, from 0.
    pub page: u32,
    /// The order asked for, or why it cannot be.
    pub order: Result<SearchOrder, String>,
}

/// Decodes the query string `query` (what follows `?`) of a search, as the handlers'
/// `Query` extractor does, and the order it asks for; `Err` for a query string the
/// extractor rejects (or that is no part of a URI at all).
pub fn decode_search(query: &str) -> Result<Search, String> {
    let uri: Uri = format!("/?{query}").parse().map_err(|e| format!("{e}"))?;
    let Query(params) = Query::<SearchParams>::try_from_uri(&uri).map_err(|e| e.to_string())?;
    Ok(Search {
        order: params.order().map_err(|e| e.message),
        q: params.q,
        page: params.page,
    })
}

/// Decodes the JSON body of `POST /api/tokens`: the label (its `Debug` form), or the
/// error the client is answered with.
pub fn decode_new_token(body: &[u8]) -> Result<String, String> {
    NewToken::parse(body)
        .map(|new| format!("{new:?}"))
        .map_err(|e| e.message)
}

/// The browser id of [`UploadSite`]'s visitor: 52 lowercase base32 characters, as the
/// site makes them.
const BROWSER_ID: &str = "fuzzbrowserfuzzbrowserfuzzbrowserfuzzbrowserfuzzbrow";

/// The session id of [`UploadSite`]'s signed-in user, shaped like the browser id.
const SESSION_ID: &str = "fuzzsessionfuzzsessionfuzzsessionfuzzsessionfuzzsess";

/// The signed-in user of [`UploadSite`].
pub const UPLOADER: &str = "uploader";

/// The web site of a tracker cluster of one node, running in this process, with one
/// user ([`UPLOADER`]) signed in: where the `web_upload` fuzz target sends uploads.
///
/// The node is a real replica (the Paxos runtime, storage in memory, no network: alone,
/// it leads) behind a real [`Service`]; [`UploadSite::router`] is the site's real router,
/// so a request goes through the same middleware, extractors and handler as one from a
/// browser, and a valid upload is published through consensus. The node runs on a
/// runtime of its own, so it keeps leading between requests whatever runtime sends them.
pub struct UploadSite {
    router: Router,
    /// The node's runtime: dropping the site stops the node.
    _runtime: tokio::runtime::Runtime,
}

/// A network that reaches nobody: the only member sends only to itself, which the
/// replica does without the network.
struct Alone;

impl<M> Network<M> for Alone {
    fn send(&self, _to: u64, _message: M) {}
}

impl UploadSite {
    /// Starts the node, whose cluster's CA is `ca` (torrents naming another are refused),
    /// waits until it leads, and signs [`UPLOADER`] in.
    pub fn start(ca: Fingerprint) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let site = runtime.block_on(one_node_site(ca))?;
        Ok(UploadSite {
            router: crate::web::router(site),
            _runtime: runtime,
        })
    }

    /// The site's router.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The `Cookie` header of the signed-in user's browser.
    pub fn cookies() -> String {
        format!("bt_browser={BROWSER_ID}; bt_session={SESSION_ID}")
    }

    /// The CSRF token of the signed-in user's forms.
    pub fn csrf_token() -> String {
        crate::web::auth::csrf_hash(BROWSER_ID, Some(SESSION_ID))
            .to_hex()
            .to_string()
    }
}

/// The site of a new one-node cluster whose CA is `ca`, once the node leads and
/// [`UPLOADER`] is signed in.
async fn one_node_site(ca: Fingerprint) -> Result<Site, String> {
    let config = paxos::Config {
        id: 1,
        members: vec![1],
        election_timeout: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(10),
        lease_duration: Duration::from_millis(40),
        max_clock_drift: Duration::from_millis(5),
        seed: 1,
        ..paxos::Config::default()
    };
    let state = TrackerState::new(StateConfig::default());
    let storage = paxos::MemStorage::new();
    let node = paxos::runtime::start(config, state, storage, Alone, RuntimeConfig::default())
        .map_err(|e| e.to_string())?;
    let service = Service::new(
        node,
        ServiceConfig {
            cluster_ca: Some(ca),
            ..ServiceConfig::default()
        },
    );
    for _ in 0..1000 {
        if service.status().is_leader {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sign_in(&service).await?;
    // The cluster page dials the other members from this endpoint; there are none.
    let identity = Identity::generate_self_signed("node1").map_err(|e| e.to_string())?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let endpoint = Endpoint::bind(
        identity,
        EndpointConfig::new(loopback, InboundTrust::Open, &[ALPN_TRACKER]),
    )
    .map_err(|e| e.to_string())?;
    let member = MemberConfig {
        name: "node1".into(),
        cluster_addr: loopback,
        peer_addr: loopback,
    };
    let members = BTreeMap::from([(1, member)]);
    Ok(Site::new(
        service,
        SiteConfig::new(1, members, ca, endpoint),
    ))
}

/// Adds [`UPLOADER`] and opens its session.
async fn sign_in(service: &Service) -> Result<(), String> {
    let now_ms = now_ms();
    let commands = [
        Command::AddUser {
            name: UPLOADER.into(),
            password_hash: "not a password hash: nobody signs in with a password here".into(),
            role: Role::User,
            now_ms,
        },
        Command::CreateSession {
            session_hash: TokenHash::of(SESSION_ID),
            user: UPLOADER.into(),
            expires_ms: now_ms + 365 * 24 * 3600 * 1000,
            now_ms,
        },
    ];
    for (seq, command) in (1..).zip(commands) {
        let id = WriteId { client: 1, seq };
        match service.propose(id, command).await {
            Ok(Output::Done) => {}
            other => return Err(format!("signing the uploader in: {other:?}")),
        }
    }
    Ok(())
}

/// Runs a future whose inputs are all in memory to completion. Extracting from an
/// in-memory body never waits; a future that did would be a bug in this harness, and
/// panics after a while rather than spinning.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("an extractor waited on an in-memory body");
}
