//! The tracker web site's upload page as the `web_upload` target posts to it: the real
//! router of a one-node cluster in this process (`tracker::fuzzing::UploadSite`, whose
//! cluster CA is [`tracker_ca`]), called with `tower::ServiceExt::oneshot` on a
//! current-thread runtime, as a server's connection task calls it; and the
//! `multipart/form-data` bodies a browser sends, which the target and the seed generator
//! build.

use std::convert::Infallible;
use std::sync::{Mutex, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;
use tracker::fuzzing::UploadSite;

use crate::fixtures::tracker_ca;

/// New torrents one site publishes before it is replaced by a new one: every torrent it
/// publishes stays in its memory, and a fuzzer finds new valid ones all the time.
const MAX_PUBLISHED: u32 = 500;

/// The site, and how many torrents it published.
static SITE: Mutex<Option<(UploadSite, u32)>> = Mutex::new(None);

/// What the site answered.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// Where it redirects to, if it does.
    pub location: Option<String>,
    /// The page, as text.
    pub body: String,
}

/// Posts `body` to `/upload` with `headers`, in chunks of `chunks` bytes (the last one
/// takes the rest; none: in one piece).
pub fn post_upload(
    headers: HeaderMap,
    body: Vec<u8>,
    chunks: Option<&mut dyn Iterator<Item = usize>>,
) -> Answer {
    let router = {
        let mut site = SITE.lock().unwrap_or_else(|p| p.into_inner());
        if site.as_ref().is_none_or(|(_, n)| *n >= MAX_PUBLISHED) {
            // The old site (and its node) stops before the new one starts.
            *site = None;
            let started = UploadSite::start(tracker_ca()).expect("a one-node site starts");
            *site = Some((started, 0));
        }
        site.as_ref().expect("just started").0.router()
    };
    let body = match chunks {
        None => Body::from(body),
        Some(sizes) => Body::from_stream(futures_util::stream::iter(cut(body, sizes))),
    };
    let mut request = Request::post("/upload")
        .body(body)
        .expect("a request with a path and a body");
    *request.headers_mut() = headers;
    let answer = requests().block_on(async move {
        let response = router
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("a page in memory reads");
        Answer {
            status: parts.status,
            location: parts
                .headers
                .get(header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned()),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    });
    if answer.status == StatusCode::SEE_OTHER {
        let mut site = SITE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, published)) = site.as_mut() {
            *published += 1;
        }
    }
    answer
}

/// `body` in chunks of the given sizes (at least 1 byte each).
fn cut(body: Vec<u8>, sizes: &mut dyn Iterator<Item = usize>) -> Vec<Result<Bytes, Infallible>> {
    let mut body = Bytes::from(body);
    let mut chunks = Vec::new();
    while !body.is_empty() {
        let size = sizes.next().unwrap_or(body.len()).clamp(1, body.len());
        chunks.push(Ok(body.split_to(size)));
    }
    chunks
}

/// The runtime requests run on: one thread, like the fuzzer's.
fn requests() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// The text of the error notice on a page, as a person reads it (entities left as
/// they are), if the page has one.
pub fn error_notice(page: &str) -> Option<&str> {
    let start = page.find("<p class=\"notice error\">")? + "<p class=\"notice error\">".len();
    let len = page[start..].find("</p>")?;
    Some(&page[start..start + len])
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub enum Field<'a> {
    /// A text field.
    Text {
        /// Its name.
        name: &'a str,
        /// Its value.
        value: &'a [u8],
    },
    /// A file.
    File {
        /// The field's name.
        name: &'a str,
        /// The file's name.
        filename: &'a str,
        /// Its content.
        content: &'a [u8],
    },
    /// A part's header lines and content, as they are.
    Raw(&'a [u8]),
}

/// A `multipart/form-data` body with `boundary`, as a browser writes one.
pub fn form_body(boundary: &str, fields: &[Field<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for field in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match field {
            Field::Text { name, value } => {
                let disposition = format!("Content-Disposition: form-data; name=\"{name}\"\r\n");
                body.extend_from_slice(disposition.as_bytes());
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(value);
            }
            Field::File {
                name,
                filename,
                content,
            } => {
                let disposition = format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                );
                body.extend_from_slice(disposition.as_bytes());
                body.extend_from_slice(b"Content-Type: application/x-bittorrent\r\n\r\n");
                body.extend_from_slice(content);
            }
            Field::Raw(raw) => body.extend_from_slice(raw),
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}
