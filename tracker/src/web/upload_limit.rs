//! Uploads larger than any torrent file: refused from their `Content-Length` before a byte
//! of the body is read, with the limit in words, in the form's HTML page or the API's JSON.
//!
//! The body is then read and thrown away in the background (up to [`DISCARD_LIMIT`]), so
//! the answer reaches the browser: closing a connection whose request is still arriving
//! resets it, and the browser shows "connection reset" instead of the answer.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;

use crate::torrent::MAX_TORRENT_FILE_LEN;

use super::actions::WebError;
use super::format;

/// Most bytes of a refused body read and thrown away: 1 GiB. Beyond it the connection is
/// closed; whoever sends more than that to a form for a file of at most 16 MiB gets a reset.
const DISCARD_LIMIT: u64 = 1 << 30;

/// Longest time spent throwing a refused body away. 5 minutes: 1 GiB at 30 Mbit/s.
const DISCARD_TIME: Duration = Duration::from_secs(300);

/// The refusal of an upload of `len` bytes (unknown without a `Content-Length`).
pub(crate) fn too_large(len: Option<u64>) -> WebError {
    let size = len
        .map(|n| format!(" (this upload is {})", format::size(n)))
        .unwrap_or_default();
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "This file is too large: a torrent file is at most {} MiB{size}. A torrent file \
             only describes the content; upload the .torrent file that `bt create` makes, \
             not the content itself.",
            MAX_TORRENT_FILE_LEN >> 20
        ),
    )
}

/// The declared body length when it exceeds `limit`.
pub(crate) fn declared_over(headers: &HeaderMap, limit: usize) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&len| len > limit as u64)
}

/// Reads and throws away the rest of `body` in the background.
pub(crate) fn discard(body: Body) {
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut read = 0u64;
        let drain = async {
            while let Some(Ok(chunk)) = stream.next().await {
                read += chunk.len() as u64;
                if read > DISCARD_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
    });
}

/// Reads a body of at most `limit` bytes (one without a `Content-Length`, or one that
/// lied about it); past the limit, the rest is thrown away and the answer is the refusal.
pub(crate) async fn read_at_most(body: Body, limit: usize) -> Result<Vec<u8>, WebError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            WebError::new(
                StatusCode::BAD_REQUEST,
                format!("The upload could not be read: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > limit {
            discard(Body::from_stream(stream));
            return Err(too_large(None));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
