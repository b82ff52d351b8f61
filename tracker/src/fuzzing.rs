//! The decoders of what the web site reads from browsers and scripts, callable on plain
//! bytes by the fuzz targets in `fuzz/` (the `fuzzing` feature). Not part of the crate's
//! API: nothing else may use it.
//!
//! The forms are decoded by the same axum extractors the handlers use (`Form<...>` for a
//! POST body, `Query<...>` for a query string), run to completion at once: their bodies are
//! in memory, so they never wait. The wire protocol's types ([`crate::api`]), torrent files
//! ([`crate::torrent::Torrent::parse`]) and snapshots (the state machine's `restore`) are
//! public already and need no wrapper here.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::{FromRequest, Query};
use axum::http::{Request, Uri, header};
use serde::de::DeserializeOwned;

use crate::api::SearchOrder;
use crate::web::account::{AccountForm, DisableForm, TokenForm};
use crate::web::actions::SearchParams;
use crate::web::api::NewToken;
use crate::web::pages::CsrfForm;

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
