//! The HTML pages. Each works without JavaScript; the script adds the availability
//! picture and live updates from the JSON API.

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Path, Query as Params, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::SEARCH_PAGE_LEN;
use crate::service::now_ms;
use crate::state::{SearchOrder, SortKey};
use crate::torrent::{InfoHash, Torrent};

use super::Site;
use super::actions::{Publish, SearchParams, WebError, search_order_params};
use super::auth::Visitor;
use super::format;
use super::layout::{Page, notice};
use super::{MAX_UPLOAD_BODY, upload_limit};

impl Site {
    pub(crate) fn page<'a>(
        &self,
        visitor: &'a Visitor,
        title: &'a str,
        kind: &'a str,
        body: Markup,
    ) -> Page<'a> {
        Page {
            title,
            visitor,
            node: self.inner.config.id,
            query: "",
            kind,
            body,
        }
    }

    /// An error page.
    pub(crate) fn error_page(&self, visitor: &Visitor, error: &WebError) -> Response {
        self.page(visitor, "Error", "error", notice("error", &error.message))
            .render(error.status)
    }
}

pub(crate) fn hidden_csrf(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(visitor.csrf_token()); }
}

/// The search page's columns: heading, sort key, and whether it is a number.
const COLUMNS: [(&str, SortKey, bool); 6] = [
    ("Name", SortKey::Name, false),
    ("Size", SortKey::Size, true),
    ("Seeders", SortKey::Seeders, true),
    ("Leechers", SortKey::Leechers, true),
    ("Completed", SortKey::Completed, true),
    ("Added", SortKey::Added, false),
];

/// `/`: search by name, newest first or sorted by a column (`sort`, `order`); everything
/// when the query is empty.
pub(crate) async fn search(
    State(site): State<Site>,
    visitor: Visitor,
    Params(params): Params<SearchParams>,
) -> Response {
    let order = params.order();
    let results = match &order {
        Ok(order) => site.search(&params.q, params.page, *order).await,
        Err(e) => Err(e.clone()),
    };
    let order = order.unwrap_or_default();
    let link = |p: u32, order: SearchOrder| {
        let (sort, direction) = search_order_params(order);
        let mut url = String::from("/?q=");
        url.push_str(&percent_encode(&params.q));
        if order != SearchOrder::default() {
            url.push_str(&format!("&sort={sort}&order={direction}"));
        }
        if p > 0 {
            url.push_str(&format!("&page={p}"));
        }
        url
    };
    // A column's heading links to its order; the current column's to the reverse one.
    let column_link = |by: SortKey| {
        let next = if order.by == by {
            SearchOrder {
                by,
                descending: !order.descending,
            }
        } else {
            SearchOrder {
                by,
                descending: by != SortKey::Name,
            }
        };
        link(0, next)
    };
    let body = match &results {
        Err(e) => notice("error", &e.message),
        Ok(page) => {
            let pages = page.total.div_ceil(u64::from(SEARCH_PAGE_LEN)).max(1);
            html! {
                h1 {
                    @if params.q.is_empty() { "All torrents" }
                    @else { "Torrents matching “" (params.q) "”" }
                }
                p.muted #result-count { (page.total) @if page.total == 1 { " torrent" } @else { " torrents" } " · page " (u64::from(params.page) + 1) " of " (pages) }
                @if page.hits.is_empty() {
                    p #no-results { "Nothing found." }
                } @else {
                    table.results #results {
                        thead { tr {
                            @for (heading, by, number) in COLUMNS {
                                @let sorted = order.by == by;
                                th.num[number] aria-sort=[sorted.then_some(if order.descending { "descending" } else { "ascending" })] {
                                    a.sort href=(column_link(by)) data-sort=(search_order_params(SearchOrder { by, descending: false }).0) {
                                        (heading)
                                        @if sorted { @if order.descending { " ▼" } @else { " ▲" } }
                                    }
                                }
                            }
                        } }
                        tbody {
                            @for hit in &page.hits {
                                tr {
                                    td.name { a href={ "/torrents/" (hit.info_hash) } { (hit.name) } }
                                    td.num { (format::size(hit.size)) }
                                    td.num.seeders { (hit.seeders) }
                                    td.num.leechers { (hit.leechers) }
                                    td.num { (hit.completed) }
                                    td { (format::time(hit.added_ms)) }
                                }
                            }
                        }
                    }
                }
                nav.pager {
                    @if params.page > 0 {
                        a rel="prev" href=(link(params.page - 1, order)) { "← Previous" }
                    }
                    @if u64::from(params.page) + 1 < pages {
                        a rel="next" href=(link(params.page + 1, order)) { "Next →" }
                    }
                }
            }
        }
    };
    let status = results.as_ref().err().map_or(StatusCode::OK, |e| e.status);
    let mut page = site.page(&visitor, "Search", "search", body);
    page.query = &params.q;
    page.render(status)
}

/// Percent-encodes a query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_hash(text: &str) -> Result<InfoHash, WebError> {
    text.parse()
        .map_err(|_| WebError::not_found("such torrent (an info hash is 64 hexadecimal digits)"))
}

/// `/torrents/{hash}`: the torrent's facts, files, swarm and download button.
pub(crate) async fn torrent(
    State(site): State<Site>,
    visitor: Visitor,
    Path(hash): Path<String>,
) -> Response {
    let result = match parse_hash(&hash) {
        Ok(info_hash) => site.torrent(info_hash).await,
        Err(e) => Err(e),
    };
    let (details, torrent) = match result {
        Ok(found) => found,
        Err(e) => return site.error_page(&visitor, &e),
    };
    let s = &details.summary;
    let now = now_ms();
    const MAX_FILES_SHOWN: usize = 1000;
    let body = html! {
        h1.torrent-name { (s.name) }
        @if let Some(comment) = torrent.comment() {
            p.comment { (comment) }
        }
        p {
            a.button #download href={ "/torrents/" (s.info_hash) "/file" } download {
                "Download torrent file"
            }
        }
        p.muted { "Or download it with " code { "bt" } " (it fetches the torrent file from the tracker, then downloads into the current directory; add " code { "-o DIR" } " for another):" }
        pre.command { code #bt-get { (bt_get_line(&torrent)) } }
        table.facts {
            tr { th { "Info hash" } td { code #info-hash { (s.info_hash) } } }
            tr { th { "Size" } td { (format::size(s.size)) " (" (s.size) " bytes)" } }
            tr { th { "Pieces" } td #piece-count { (s.piece_count) " × " (format::size(u64::from(torrent.piece_length()))) } }
            tr { th { "Files" } td { (torrent.files().len()) } }
            tr { th { "Seeders / leechers" } td { (s.seeders) " / " (s.leechers) } }
            tr { th { "Completed" } td { (s.completed) } }
            tr { th { "Added" } td { (format::time(s.added_ms)) " by " (s.uploader) } }
        }
        h2 { "Piece availability" }
        p.muted { "How many peers hold each piece: grey where nobody has it, then lighter to darker as more peers hold it." }
        div.availability {
            canvas #availability width="960" height="40" data-hash=(s.info_hash) {}
            p #availability-legend.muted {
                @let max = details.availability.iter().copied().max().unwrap_or(0);
                @let missing = details.availability.iter().filter(|&&n| n == 0).count();
                "Most copies of a piece: " (max) " · pieces nobody holds: " (missing)
            }
        }
        h2 { "Files" }
        table.files {
            thead { tr { th { "Path" } th.num { "Size" } } }
            tbody {
                @for (i, file) in torrent.files().iter().enumerate().take(MAX_FILES_SHOWN) {
                    tr {
                        td { (torrent.display_path(i).unwrap_or_default()) }
                        td.num { (format::size(file.length)) }
                    }
                }
            }
        }
        @if torrent.files().len() > MAX_FILES_SHOWN {
            p.muted { "… and " (torrent.files().len() - MAX_FILES_SHOWN) " more files." }
        }
        h2 { "Peers (" (details.peers.len()) ")" }
        @if details.peers.is_empty() {
            p.muted { "Nobody is in the swarm right now." }
        } @else {
            table.peers {
                thead { tr { th { "Peer" } th { "Address" } th.num { "Pieces" } th { "Last heard" } } }
                tbody {
                    @for peer in &details.peers {
                        @let fp = peer.info.fingerprint.to_string();
                        tr {
                            td { code title=(fp) { (fp.chars().take(16).collect::<String>()) "…" } }
                            td { (peer.info.addr) }
                            td.num { (peer.info.pieces) " / " (s.piece_count) }
                            td { (format::ago(peer.last_heard_ms, now)) }
                        }
                    }
                }
            }
        }
    };
    site.page(&visitor, &s.name, "torrent", body)
        .render(StatusCode::OK)
}

/// `/torrents/{hash}/file`: the torrent file byte for byte, as a download.
pub(crate) async fn torrent_file(State(site): State<Site>, Path(hash): Path<String>) -> Response {
    let result = match parse_hash(&hash) {
        Ok(info_hash) => site.torrent_file(info_hash).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(bytes) => {
            let name = crate::torrent::Torrent::parse(&bytes)
                .map(|t| download_name(t.name()))
                .unwrap_or_else(|_| format!("{hash}.torrent"));
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => (e.status, e.message).into_response(),
    }
}

/// The `bt get` command that downloads `torrent` by its info hash from its trackers.
fn bt_get_line(torrent: &Torrent) -> String {
    let mut line = format!("bt get {}", torrent.info_hash());
    for tracker in torrent.trackers() {
        line.push_str(&format!(" --tracker {tracker}"));
    }
    line.push_str(&format!(" --ca {}", torrent.tracker_ca()));
    line
}

/// A safe download file name: the torrent's name with anything but ASCII letters, digits,
/// `.`, `-` and `_` replaced, and `.torrent` appended.
fn download_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.trim_matches(['.', '_']).is_empty() {
        safe = "download".into();
    }
    format!("{safe}.torrent")
}

/// The form fields every POST carries.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: Option<String>,
}

fn upload_body(visitor: &Visitor, message: Option<Markup>) -> Markup {
    html! {
        h1 { "Upload a torrent file" }
        @if let Some(m) = message { (m) }
        @if visitor.name().is_some() {
            form #upload-form action="/upload" method="post" enctype="multipart/form-data" {
                (hidden_csrf(visitor))
                label { "Torrent file " input #torrent-file type="file" name="torrent" required; }
                button type="submit" { "Upload" }
            }
            p.muted { "Make one with " code { "bt create" } "; it is stored byte for byte and anyone can download it." }
        } @else {
            p #sign-in-needed { "You must " a href="/signin" { "sign in" } " to upload." }
        }
    }
}

/// `GET /upload`.
pub(crate) async fn upload_form(State(site): State<Site>, visitor: Visitor) -> Response {
    let status = if visitor.name().is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    site.page(&visitor, "Upload", "upload", upload_body(&visitor, None))
        .render(status)
}

/// `POST /upload` (multipart: `csrf`, `torrent`). A body larger than any torrent file is
/// refused from its `Content-Length`, before it is read.
pub(crate) async fn upload(
    State(site): State<Site>,
    visitor: Visitor,
    request: Request,
) -> Response {
    let result = match upload_limit::declared_over(request.headers(), MAX_UPLOAD_BODY) {
        Some(len) => {
            upload_limit::discard(request.into_body());
            Err(upload_limit::too_large(Some(len)))
        }
        None => match Multipart::from_request(request, &site).await {
            Ok(multipart) => upload_inner(&site, &visitor, multipart).await,
            Err(rejection) => Err(WebError::new(
                rejection.status(),
                format!("The upload is not a form with a file: {rejection}"),
            )),
        },
    };
    let message = match result {
        Ok(Publish::New(hash)) => {
            return Redirect::to(&format!("/torrents/{hash}")).into_response();
        }
        Ok(Publish::Existing(hash)) => html! {
            p.notice.ok #already-published {
                "This torrent is already on the tracker: "
                a href={ "/torrents/" (hash) } { (hash) }
                ". Nothing changed."
            }
        },
        Err(e) => {
            return site
                .page(
                    &visitor,
                    "Upload",
                    "upload",
                    upload_body(&visitor, Some(notice("error", &e.message))),
                )
                .render(e.status);
        }
    };
    site.page(
        &visitor,
        "Upload",
        "upload",
        upload_body(&visitor, Some(message)),
    )
    .render(StatusCode::OK)
}

async fn upload_inner(
    site: &Site,
    visitor: &Visitor,
    mut multipart: Multipart,
) -> Result<Publish, WebError> {
    let mut csrf = None;
    let mut file = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(unreadable(e)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(unreadable)?;
        match name.as_str() {
            "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "torrent" => file = Some(bytes.to_vec()),
            _ => {}
        }
    }
    let user = visitor.writer(csrf.as_deref(), "upload")?;
    site.publish(user, file.unwrap_or_default()).await
}

/// Why a multipart upload could not be read; past the size limit, the limit in words.
fn unreadable(e: MultipartError) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return upload_limit::too_large(None);
    }
    WebError::new(
        StatusCode::BAD_REQUEST,
        format!("The upload could not be read: {}", e.body_text()),
    )
}

/// `GET /cluster`: every node, which one leads, their health and log positions. The
/// script refreshes the table every two seconds from `/api/cluster`.
pub(crate) async fn cluster(State(site): State<Site>, visitor: Visitor) -> Response {
    let views = site.inner.cluster.views(site.service()).await;
    let leaders: Vec<u64> = views
        .iter()
        .filter_map(|v| v.status.as_ref().filter(|s| s.is_leader).map(|s| s.id))
        .collect();
    let body = html! {
        h1 { "Cluster" }
        p #leader-line {
            @match leaders.as_slice() {
                [] => "No node leads right now: the cluster is electing a leader or cannot reach a majority.",
                [one] => { "Node " span #leader { (one) } " leads." },
                many => { "Nodes " (format!("{many:?}")) " each believe they lead (a leader change is under way)." },
            }
        }
        table.cluster #cluster {
            thead { tr {
                th { "Node" } th { "Name" } th { "Peer address" } th { "Member" } th { "Health" } th { "Role" }
                th { "Believes leader" } th.num { "Decided" } th.num { "Applied" }
            } }
            tbody {
                @for v in &views {
                    tr data-node=(v.id) .down[!v.up] {
                        td { (v.id) @if v.this_node { " (this node)" } }
                        td { (v.name) }
                        td { (v.peer_addr) }
                        td.member { (v.role) }
                        td.health { @if v.up { span.up { "up" } } @else { span.down title=[v.error.as_deref()] { "down" } } }
                        td.role {
                            @match &v.status {
                                Some(s) if s.is_leader => strong { "leader" },
                                Some(_) => "follower",
                                None => "—",
                            }
                        }
                        td { @match v.status.as_ref().and_then(|s| s.leader) { Some(l) => (l), None => "—" } }
                        td.num { @if let Some(s) = &v.status { (s.decided) } @else { "—" } }
                        td.num { @if let Some(s) = &v.status { (s.applied) } @else { "—" } }
                    }
                }
            }
        }
        p.muted #cluster-updated { "Updated every two seconds." }
    };
    site.page(&visitor, "Cluster", "cluster", body)
        .render(StatusCode::OK)
}

/// Anything else.
pub(crate) async fn not_found(State(site): State<Site>, visitor: Visitor) -> Response {
    site.error_page(&visitor, &WebError::not_found("such page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_name("album 1/x"), "album_1_x.torrent");
        assert_eq!(download_name("<script>"), "_script_.torrent");
        assert_eq!(download_name(".."), "download.torrent");
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
    }
}
