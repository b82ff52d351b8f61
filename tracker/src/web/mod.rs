//! The tracker's web site, served by every node on its HTTP address: search, torrent pages
//! with the swarm's piece availability, upload, accounts, API tokens, user administration,
//! the cluster's health, and the JSON API the pages use (PROTOCOL.md section 7).
//!
//! Every node serves the same site from the same replicated state, so a load balancer may
//! send each request to another node:
//! * sessions live in the replicated state ([`Command::CreateSession`](crate::state::Command));
//!   the browser holds a random session id in an `HttpOnly`, `SameSite=Lax` cookie and the
//!   nodes store only its hash (`auth`);
//! * forms and JSON writes carry a CSRF token derived from a per-browser random cookie and
//!   the session id, so any node can check it without shared secrets (`auth`);
//! * writes go through a small pool of Paxos client sessions of this node, each with its
//!   own random client id and increasing sequence numbers, so a write retried after a
//!   leader change is applied once (`writer`).
//!
//! Pages are HTML rendered with `maud`, which escapes every interpolated string; the
//! embedded CSS and JavaScript are plain files (`tracker/assets/`) and a strict
//! Content-Security-Policy allows no inline script.

pub(crate) mod account;
pub(crate) mod actions;
pub(crate) mod api;
mod assets;
pub(crate) mod auth;
mod cluster;
mod format;
mod layout;
pub(crate) mod pages;
mod upload_limit;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::{get, post};
use certs::Fingerprint;
use transport::Endpoint;

use crate::node::MemberConfig;
use crate::service::Service;
use crate::torrent::MAX_TORRENT_FILE_LEN;

pub use auth::RateLimit;

/// The largest request body: a torrent file of the largest size in a multipart form.
const MAX_UPLOAD_BODY: usize = MAX_TORRENT_FILE_LEN + 64 * 1024;

/// What a node's web site needs besides its service.
#[derive(Clone)]
pub struct SiteConfig {
    /// This node's id.
    pub id: u64,
    /// Every member of the cluster (for the cluster page).
    pub members: BTreeMap<u64, MemberConfig>,
    /// The cluster CA's fingerprint: other members' peer addresses are dialled expecting
    /// a certificate from this CA.
    pub ca: Fingerprint,
    /// An endpoint to dial the other members from (the node's peer endpoint will do).
    pub endpoint: Endpoint,
    /// How long a sign-in lasts. 7 days: long enough that people are not asked to sign in
    /// every day, short enough that a forgotten browser does not stay signed in forever.
    pub session_ttl: Duration,
    /// Failed sign-ins allowed per client address and per user name.
    pub sign_in_limit: RateLimit,
}

impl SiteConfig {
    /// The defaults for node `id` of `members`.
    pub fn new(
        id: u64,
        members: BTreeMap<u64, MemberConfig>,
        ca: Fingerprint,
        endpoint: Endpoint,
    ) -> Self {
        SiteConfig {
            id,
            members,
            ca,
            endpoint,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            sign_in_limit: RateLimit::default(),
        }
    }
}

/// A node's web site. Cheap to clone.
#[derive(Clone)]
pub struct Site {
    inner: Arc<Inner>,
}

struct Inner {
    service: Service,
    config: SiteConfig,
    writers: writer::Writers,
    limiter: auth::Limiter,
    cluster: cluster::Members,
}

impl Site {
    /// The site of the node serving `service`.
    pub fn new(service: Service, config: SiteConfig) -> Self {
        let writers = writer::Writers::new(service.node());
        let limiter = auth::Limiter::new(config.sign_in_limit);
        let cluster = cluster::Members::new(&config);
        Site {
            inner: Arc::new(Inner {
                service,
                config,
                writers,
                limiter,
                cluster,
            }),
        }
    }

    fn service(&self) -> &Service {
        &self.inner.service
    }
}

/// The site's router: pages, the JSON API under `/api/` and the embedded assets.
pub fn router(site: Site) -> Router {
    let pages = Router::new()
        .route("/", get(pages::search))
        .route("/torrents/{hash}", get(pages::torrent))
        .route("/torrents/{hash}/file", get(pages::torrent_file))
        .route("/upload", get(pages::upload_form).post(pages::upload))
        .route("/signup", get(account::sign_up_form).post(account::sign_up))
        .route("/signin", get(account::sign_in_form).post(account::sign_in))
        .route("/signout", post(account::sign_out))
        .route("/tokens", get(account::tokens).post(account::create_token))
        .route("/tokens/revoke", post(account::revoke_token))
        .route("/admin/users", get(account::users))
        .route("/admin/users/disabled", post(account::set_user_disabled))
        .route("/cluster", get(pages::cluster));
    let api = Router::new()
        .route("/api/me", get(api::me))
        .route("/api/search", get(api::search))
        .route("/api/torrents", post(api::publish))
        .route("/api/torrents/{hash}", get(api::details))
        .route("/api/torrents/{hash}/file", get(pages::torrent_file))
        .route("/api/tokens", get(api::tokens).post(api::create_token))
        .route(
            "/api/tokens/{hash}",
            axum::routing::delete(api::revoke_token),
        )
        .route("/api/cluster", get(api::cluster));
    Router::new()
        .merge(pages)
        .merge(api)
        .route("/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY))
        .layer(middleware::from_fn(auth::ensure_browser_cookie))
        .layer(middleware::map_response(security_headers))
        .with_state(site)
}

/// Headers on every answer of the site: no inline script or style, no framing, no
/// content-type sniffing, no referrer to other sites.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
