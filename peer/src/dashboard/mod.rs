//! The peer's dashboard: a local web page listing each torrent downloading or seeding,
//! with its progress, download and upload rates over the last minute, neighbours and piece
//! map, and pause, resume and remove buttons.
//!
//! The page (`peer/assets/dashboard.*`, embedded) polls `GET /api/torrents` every second
//! and draws with canvas; it writes every string with `textContent`, and a strict
//! Content-Security-Policy allows no inline script. Actions are `POST
//! /api/torrents/{info_hash}/{pause|resume|remove}` with the page's CSRF token in the
//! `X-CSRF-Token` header: a random secret made at start, which only a page read from this
//! dashboard knows.
//!
//! The dashboard controls the peer, so it listens on loopback only: [`serve`] refuses any
//! other address unless [`DashboardOptions::allow_remote`] is set (the CLI's explicit
//! flag), and requests whose `Host` is not a loopback name are refused, so a web page
//! elsewhere cannot reach it through DNS rebinding.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::runtime::{TorrentHandle, TorrentStatus};

/// How the dashboard may be reached.
#[derive(Clone, Debug, Default)]
pub struct DashboardOptions {
    /// Serve on a non-loopback address too (anyone who can reach it controls the peer).
    /// Off by default: the dashboard is for the person at this machine.
    pub allow_remote: bool,
}

/// Why the dashboard cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The address is not loopback and remote access was not allowed.
    #[error(
        "the dashboard would listen on {0}, which is not a loopback address; anyone who can \
         reach it could pause or remove torrents. Use 127.0.0.1 or [::1], or allow remote \
         access explicitly"
    )]
    NotLoopback(SocketAddr),
    /// The listener failed.
    #[error("dashboard: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for DashboardError {
    fn from(e: std::io::Error) -> Self {
        DashboardError::Io(e)
    }
}

/// The torrents the dashboard shows and its secret. Cheap to clone.
#[derive(Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

struct Inner {
    torrents: Mutex<Vec<TorrentHandle>>,
    csrf: String,
    options: DashboardOptions,
}

impl Default for DashboardState {
    fn default() -> Self {
        Self::new(DashboardOptions::default())
    }
}

impl DashboardState {
    /// An empty dashboard.
    pub fn new(options: DashboardOptions) -> Self {
        let secret: [u8; 32] = rand::random();
        DashboardState {
            inner: Arc::new(Inner {
                torrents: Mutex::new(Vec::new()),
                csrf: secret.iter().map(|b| format!("{b:02x}")).collect(),
                options,
            }),
        }
    }

    /// Shows a torrent.
    pub fn add(&self, handle: TorrentHandle) {
        let mut torrents = self.torrents();
        if !torrents.iter().any(|t| t.info_hash() == handle.info_hash()) {
            torrents.push(handle);
        }
    }

    /// The torrents shown.
    pub fn handles(&self) -> Vec<TorrentHandle> {
        self.torrents().clone()
    }

    fn torrents(&self) -> MutexGuard<'_, Vec<TorrentHandle>> {
        self.inner
            .torrents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The dashboard's routes.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/static/{file}", get(asset))
        .route("/api/torrents", get(torrents))
        .route("/api/torrents/{hash}/{action}", post(action))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Serves the dashboard on `listener` until the task is dropped. Refuses a non-loopback
/// address unless the state's options allow it.
pub async fn serve(listener: TcpListener, state: DashboardState) -> Result<(), DashboardError> {
    let addr = listener.local_addr()?;
    check_address(addr, &state.inner.options)?;
    axum::serve(listener, router(state)).await?;
    Ok(())
}

/// Whether the dashboard may listen on `addr`.
pub fn check_address(addr: SocketAddr, options: &DashboardOptions) -> Result<(), DashboardError> {
    if addr.ip().is_loopback() || options.allow_remote {
        Ok(())
    } else {
        Err(DashboardError::NotLoopback(addr))
    }
}

/// Whether a `Host` header names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests for other host names (DNS rebinding) unless remote access is on, and
/// sets the security headers.
async fn guard(State(state): State<DashboardState>, request: Request, next: Next) -> Response {
    if !state.inner.options.allow_remote {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !loopback_host(host) {
            return (
                StatusCode::FORBIDDEN,
                "the dashboard answers only to localhost",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const PAGE: &str = include_str!("../../assets/dashboard.html");
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    ),
];

async fn page(State(state): State<DashboardState>) -> Response {
    // The token is hexadecimal: nothing to escape.
    let html = PAGE.replace("{{CSRF}}", &state.inner.csrf);
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Html(html),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// One torrent as `/api/torrents` gives it.
#[derive(Serialize)]
struct TorrentView {
    /// Progress from 0 to 1.
    progress: f64,
    /// The phase's name (`Downloading`, `Seeding`, `Paused`, ..., `Failed`).
    state: String,
    /// Why it failed, if it did.
    error: Option<String>,
    #[serde(flatten)]
    status: TorrentStatus,
}

async fn torrents(State(state): State<DashboardState>) -> Response {
    let views: Vec<TorrentView> = state
        .handles()
        .iter()
        .map(|h| {
            let status = h.status();
            let (state, error) = match &status.phase {
                crate::runtime::Phase::Failed(why) => ("Failed".to_owned(), Some(why.clone())),
                other => (format!("{other:?}"), None),
            };
            TorrentView {
                progress: status.fraction(),
                state,
                error,
                status,
            }
        })
        .collect();
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(views),
    )
        .into_response()
}

async fn action(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Path((hash, action)): Path<(String, String)>,
) -> Response {
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Equal length and every byte compared, whatever matches first.
    let expected = state.inner.csrf.as_bytes();
    let ok = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return (
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token; reload the dashboard",
        )
            .into_response();
    }
    let Some(handle) = state
        .handles()
        .into_iter()
        .find(|h| h.info_hash().to_string() == hash)
    else {
        return (StatusCode::NOT_FOUND, "no such torrent").into_response();
    };
    match action.as_str() {
        "pause" => handle.pause(),
        "resume" => handle.resume(),
        "remove" => {
            handle.remove();
            state
                .torrents()
                .retain(|h| h.info_hash() != handle.info_hash());
        }
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_allowed() {
        let strict = DashboardOptions::default();
        assert!(check_address("127.0.0.1:9000".parse().unwrap(), &strict).is_ok());
        assert!(check_address("[::1]:9000".parse().unwrap(), &strict).is_ok());
        assert!(check_address("0.0.0.0:9000".parse().unwrap(), &strict).is_err());
        assert!(check_address("192.0.2.1:9000".parse().unwrap(), &strict).is_err());
        let open = DashboardOptions { allow_remote: true };
        assert!(check_address("0.0.0.0:9000".parse().unwrap(), &open).is_ok());
        for host in ["localhost:8080", "127.0.0.1:1", "[::1]:80", "LOCALHOST"] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "192.0.2.1",
            "",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
