//! The JSON API under `/api/` (PROTOCOL.md section 7). Reads need nothing; writes need a
//! session cookie and the page's CSRF token in the `X-CSRF-Token` header. Errors are
//! `{"error": "..."}` with a fitting status code.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as Params, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::{SEARCH_PAGE_LEN, TorrentSummary};
use crate::service::now_ms;
use crate::state::TokenRecord;

use super::Site;
use super::actions::{Publish, SearchParams, WebError, parse_token_hash, token_hash_hex};
use super::auth::{CSRF_HEADER, Visitor};
use super::upload_limit;
use crate::torrent::MAX_TORRENT_FILE_LEN;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct ErrorBody {
            error: String,
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// Checks the CSRF header of a JSON write and returns the signed-in user.
fn writer<'a>(visitor: &'a Visitor, headers: &HeaderMap, what: &str) -> Result<&'a str, WebError> {
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    visitor.writer(given, what)
}

#[derive(Serialize)]
struct Me<'a> {
    user: Option<MeUser<'a>>,
    csrf: String,
    node: u64,
}

#[derive(Serialize)]
struct MeUser<'a> {
    name: &'a str,
    admin: bool,
}

/// `GET /api/me`: who is signed in, and the CSRF token for writes.
pub(crate) async fn me(State(site): State<Site>, visitor: Visitor) -> Response {
    Json(Me {
        user: visitor.name().map(|name| MeUser {
            name,
            admin: visitor.is_admin(),
        }),
        csrf: visitor.csrf_token(),
        node: site.inner.config.id,
    })
    .into_response()
}

#[derive(Serialize)]
struct SearchAnswer {
    total: u64,
    page: u32,
    per_page: u32,
    hits: Vec<TorrentSummary>,
}

/// `GET /api/search?q=WORDS&page=N&sort=KEY&order=asc|desc`.
pub(crate) async fn search(
    State(site): State<Site>,
    Params(params): Params<SearchParams>,
) -> Result<Response, WebError> {
    let order = params.order()?;
    let page = site.search(&params.q, params.page, order).await?;
    Ok(Json(SearchAnswer {
        total: page.total,
        page: params.page,
        per_page: SEARCH_PAGE_LEN,
        hits: page.hits,
    })
    .into_response())
}

#[derive(Serialize)]
struct FileView {
    path: String,
    length: u64,
}

#[derive(Serialize)]
struct PeerView {
    fingerprint: String,
    addr: String,
    pieces: u32,
    last_heard_ms: u64,
}

#[derive(Serialize)]
struct DetailsAnswer {
    #[serde(flatten)]
    summary: TorrentSummary,
    piece_length: u32,
    comment: Option<String>,
    trackers: Vec<String>,
    files: Vec<FileView>,
    availability: Vec<u32>,
    peers: Vec<PeerView>,
    now_ms: u64,
}

/// `GET /api/torrents/{hash}`: the torrent's facts, files, per-piece availability and
/// peers.
pub(crate) async fn details(
    State(site): State<Site>,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    let info_hash = hash
        .parse()
        .map_err(|_| WebError::not_found("such torrent"))?;
    let (details, torrent) = site.torrent(info_hash).await?;
    let files = torrent
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| FileView {
            path: torrent.display_path(i).unwrap_or_default(),
            length: f.length,
        })
        .collect();
    Ok(Json(DetailsAnswer {
        piece_length: torrent.piece_length(),
        comment: torrent.comment().map(str::to_owned),
        trackers: torrent.trackers().iter().map(|a| a.to_string()).collect(),
        files,
        availability: details.availability,
        peers: details
            .peers
            .into_iter()
            .map(|p| PeerView {
                fingerprint: p.info.fingerprint.to_string(),
                addr: p.info.addr.to_string(),
                pieces: p.info.pieces,
                last_heard_ms: p.last_heard_ms,
            })
            .collect(),
        summary: details.summary,
        now_ms: now_ms(),
    })
    .into_response())
}

#[derive(Serialize)]
struct Published {
    info_hash: String,
    /// True when the torrent was already on the tracker (the answer is then 200, not 201).
    already_published: bool,
    /// The torrent's page.
    url: String,
    message: &'static str,
}

/// `POST /api/torrents` with the torrent file as the body: 201 when stored, 200 when the
/// torrent was already there (nothing changes). A body larger than any torrent file is
/// refused from its `Content-Length`, before it is read.
pub(crate) async fn publish(
    State(site): State<Site>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    if let Some(len) = upload_limit::declared_over(&headers, MAX_TORRENT_FILE_LEN) {
        upload_limit::discard(body);
        return Err(upload_limit::too_large(Some(len)));
    }
    let user = writer(&visitor, &headers, "upload")?;
    let body = upload_limit::read_at_most(body, MAX_TORRENT_FILE_LEN).await?;
    let (status, hash, already_published, message) = match site.publish(user, body).await? {
        Publish::New(hash) => (StatusCode::CREATED, hash, false, "Published."),
        Publish::Existing(hash) => (
            StatusCode::OK,
            hash,
            true,
            "This torrent was already on the tracker; nothing changed.",
        ),
    };
    Ok((
        status,
        Json(Published {
            info_hash: hash.to_string(),
            already_published,
            url: format!("/torrents/{hash}"),
            message,
        }),
    )
        .into_response())
}

#[derive(Serialize)]
struct TokenView {
    token_hash: String,
    label: String,
    created_ms: u64,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        TokenView {
            token_hash: token_hash_hex(&t.token_hash),
            label: t.label,
            created_ms: t.created_ms,
        }
    }
}

/// `GET /api/tokens`: the signed-in user's tokens (never the tokens themselves).
pub(crate) async fn tokens(
    State(site): State<Site>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let user = visitor
        .name()
        .ok_or_else(|| WebError::sign_in("list API tokens"))?;
    let tokens: Vec<TokenView> = site
        .tokens(user)
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(Json(tokens).into_response())
}

/// The body of `POST /api/tokens`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewToken {
    label: String,
}

impl NewToken {
    /// Reads the JSON body `{"label": ...}`.
    pub(crate) fn parse(body: &[u8]) -> Result<NewToken, WebError> {
        serde_json::from_slice(body).map_err(|e| {
            WebError::new(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"label\": \"...\"}}: {e}"),
            )
        })
    }
}

#[derive(Serialize)]
struct CreatedToken {
    token: String,
    token_hash: String,
    label: String,
}

/// `POST /api/tokens` `{"label": ...}`: a new token, shown in this answer only.
pub(crate) async fn create_token(
    State(site): State<Site>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let user = writer(&visitor, &headers, "create API tokens")?;
    let new = NewToken::parse(&body)?;
    let (token, hash) = site.create_token(user, &new.label).await?;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(CreatedToken {
            token,
            token_hash: token_hash_hex(&hash),
            label: new.label.trim().to_owned(),
        }),
    )
        .into_response())
}

/// `DELETE /api/tokens/{token_hash}`.
pub(crate) async fn revoke_token(
    State(site): State<Site>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    let user = writer(&visitor, &headers, "revoke API tokens")?;
    let hash = parse_token_hash(&hash).ok_or_else(|| WebError::not_found("such token"))?;
    site.revoke_token(user, hash).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
struct ClusterAnswer {
    this_node: u64,
    leader: Option<u64>,
    nodes: Vec<super::cluster::MemberView>,
}

/// `GET /api/cluster`: every member's health and view.
pub(crate) async fn cluster(State(site): State<Site>) -> Response {
    let nodes = site.inner.cluster.views(site.service()).await;
    let leader = nodes
        .iter()
        .filter_map(|v| v.status.as_ref())
        .find(|s| s.is_leader)
        .map(|s| s.id);
    Json(ClusterAnswer {
        this_node: site.inner.config.id,
        leader,
        nodes,
    })
    .into_response()
}
