//! The web site over real HTTP against a three-node cluster in this process, without a
//! browser: uploads that are too large, for another cluster or already there, sorting,
//! the `bt get` line and the icon.

use crate::browser::plain_http;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use certs::Fingerprint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracker::api::{ApiError, Request, Response, WriteId};
use tracker::dev::{DevCluster, DevOptions};
use tracker::torrent::Torrent;

async fn cluster(dir: &Path) -> DevCluster {
    DevCluster::start(
        dir,
        DevOptions {
            http: true,
            ..DevOptions::default()
        },
    )
    .await
    .expect("a dev cluster")
}

fn http_addr(cluster: &DevCluster) -> SocketAddr {
    cluster
        .http_addrs()
        .into_iter()
        .find(|(n, _)| *n == 1)
        .map(|(_, a)| a)
        .expect("node 1 serves HTTP")
}

/// A torrent of a generated file of `len` bytes named `name`, for `ca`.
fn torrent(dir: &Path, cluster: &DevCluster, name: &str, len: usize, ca: Fingerprint) -> Torrent {
    let file = dir.join(name);
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i * 7 % 251) as u8 ^ name.len() as u8)
        .collect();
    std::fs::write(&file, bytes).unwrap();
    tracker::torrent::create::from_path(&file, 16 * 1024, cluster.peer_addrs(), ca, None).unwrap()
}

/// A signed-in visitor: cookies and the CSRF token for forms and the JSON API.
struct Session {
    cookies: String,
    csrf: String,
}

async fn sign_up(addr: SocketAddr, name: &str) -> Session {
    let page = plain_http::request(addr, "GET", "/signup", &[], b"").await;
    let mut cookies = page.cookies();
    let csrf = page.csrf().expect("a csrf field");
    let body = format!("csrf={csrf}&name={name}&password=password1&confirm=password1");
    let headers = [
        ("Cookie", cookies.join("; ")),
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let signed_up = plain_http::request(addr, "POST", "/signup", &headers, body.as_bytes()).await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.body);
    cookies.extend(signed_up.cookies());
    let cookies = cookies.join("; ");
    let upload =
        plain_http::request(addr, "GET", "/upload", &[("Cookie", cookies.clone())], b"").await;
    let csrf = upload.csrf().expect("the upload form's csrf field");
    Session { cookies, csrf }
}

async fn upload_form(addr: SocketAddr, session: &Session, file: &[u8]) -> plain_http::Answer {
    let (content_type, body) =
        plain_http::multipart(&[("csrf", &session.csrf)], Some(("torrent", file)));
    let headers = [
        ("Cookie", session.cookies.clone()),
        ("Content-Type", content_type),
    ];
    plain_http::request(addr, "POST", "/upload", &headers, &body).await
}

async fn upload_api(addr: SocketAddr, session: &Session, file: &[u8]) -> plain_http::Answer {
    let headers = [
        ("Cookie", session.cookies.clone()),
        ("X-CSRF-Token", session.csrf.clone()),
    ];
    plain_http::request(addr, "POST", "/api/torrents", &headers, file).await
}

/// Sends a request head announcing a `len`-byte body and only the first 64 KiB of it,
/// then waits for the answer: it must come before the body does.
async fn announce_large_body(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    start: &[u8],
    len: u64,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(start).await.unwrap();
    stream.write_all(&vec![0u8; 64 * 1024]).await.unwrap();
    // Read until the end of the answer's body (its Content-Length).
    let mut raw = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await.expect("read the answer");
            assert!(n > 0, "the connection closed without an answer");
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                });
                if length.is_some_and(|n| body.len() >= n) {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, body.to_string());
                }
            }
        }
    })
    .await;
    answer.expect("an answer before the body was sent: the server waited for the body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_larger_than_any_torrent_file_is_refused_in_words_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster);
    let session = sign_up(addr, "erin").await;
    let hundred_mb = 100 * 1000 * 1000;

    // The form: an HTML page with the limit.
    let (content_type, start) =
        plain_http::multipart(&[("csrf", &session.csrf)], Some(("torrent", b"")));
    let start = &start[..start.len() - "\r\n------bytetorrent-test-boundary--\r\n".len()];
    let headers = [
        ("Cookie", session.cookies.clone()),
        ("Content-Type", content_type),
    ];
    let (status, body) = announce_large_body(addr, "/upload", &headers, start, hundred_mb).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("<html"), "{body}");
    assert!(
        body.contains("too large: a torrent file is at most 16 MiB"),
        "{body}"
    );
    assert!(body.contains("95.4 MiB"), "{body}");

    // The JSON API: its JSON error.
    let headers = [
        ("Cookie", session.cookies.clone()),
        ("X-CSRF-Token", session.csrf.clone()),
    ];
    let (status, body) =
        announce_large_body(addr, "/api/torrents", &headers, b"", hundred_mb).await;
    assert_eq!(status, 413, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        error["error"].as_str().unwrap().contains("at most 16 MiB"),
        "{body}"
    );

    // A body that lies about its length, or has none, is cut at the limit, and the answer
    // is the same JSON error.
    let big = vec![7u8; 17 << 20];
    let answer = upload_api(addr, &session, &big).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.body.contains("at most 16 MiB"), "{}", answer.body);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_torrent_for_another_cluster_is_refused_on_the_form_the_api_and_quic() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster);
    let session = sign_up(addr, "frank").await;
    let other_ca = Fingerprint::from_bytes([7; 32]);
    let foreign = torrent(dir.path(), &cluster, "foreign.bin", 50_000, other_ca).encode();

    let form = upload_form(addr, &session, &foreign).await;
    assert_eq!(form.status, 400, "{}", form.body);
    assert!(
        form.body.contains("made for another tracker cluster"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains(&cluster.ca_fingerprint().to_string()),
        "{}",
        form.body
    );

    let api = upload_api(addr, &session, &foreign).await;
    assert_eq!(api.status, 400, "{}", api.body);
    let error: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("another tracker cluster"),
        "{}",
        api.body
    );

    let service = cluster.node(1).unwrap().service().clone();
    let request = Request::Publish {
        id: WriteId {
            client: rand::random(),
            seq: 1,
        },
        token: cluster.token().to_owned(),
        torrent: foreign,
    };
    match service
        .answer(Fingerprint::from_bytes([1; 32]), request)
        .await
    {
        Response::Error(ApiError::InvalidTorrent(why)) => {
            assert!(why.contains("another tracker cluster"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Nothing was stored; a torrent for this cluster goes through.
    let search = plain_http::request(addr, "GET", "/api/search", &[], b"").await;
    assert!(search.body.contains("\"total\":0"), "{}", search.body);
    let ours = torrent(
        dir.path(),
        &cluster,
        "ours.bin",
        50_000,
        cluster.ca_fingerprint(),
    )
    .encode();
    let api = upload_api(addr, &session, &ours).await;
    assert_eq!(api.status, 201, "{}", api.body);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploading_a_torrent_again_says_it_exists_and_links_it() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster);
    let session = sign_up(addr, "grace").await;
    let t = torrent(
        dir.path(),
        &cluster,
        "twice.bin",
        50_000,
        cluster.ca_fingerprint(),
    );
    let hash = t.info_hash().to_string();
    let file = t.encode();

    let first = upload_api(addr, &session, &file).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let answer: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(answer["already_published"], false);

    let again = upload_api(addr, &session, &file).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let answer: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(answer["info_hash"], hash.as_str());
    assert_eq!(answer["already_published"], true);
    assert_eq!(answer["url"], format!("/torrents/{hash}").as_str());
    assert!(
        answer["message"].as_str().unwrap().contains("already"),
        "{}",
        again.body
    );

    let form = upload_form(addr, &session, &file).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("already on the tracker"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains(&format!("href=\"/torrents/{hash}\"")),
        "{}",
        form.body
    );
    cluster.shutdown();
}

/// The torrent names in the order the search page lists them.
async fn listed(addr: SocketAddr, query: &str) -> Vec<String> {
    let page = plain_http::request(addr, "GET", &format!("/{query}"), &[], b"").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
        .split("<td class=\"name\">")
        .skip(1)
        .map(|row| {
            let link_text = row.split('>').nth(1).unwrap();
            link_text.split('<').next().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_results_sort_by_the_column_a_header_link_names() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster);
    let session = sign_up(addr, "heidi").await;
    // Published in this order, so newest first is c, a, b.
    for (name, len) in [
        ("b-medium", 60_000),
        ("a-large", 90_000),
        ("c-small", 20_000),
    ] {
        let file = torrent(dir.path(), &cluster, name, len, cluster.ca_fingerprint()).encode();
        // A torrent's time is the node's clock in milliseconds, and torrents of the
        // same millisecond are listed by info hash: an upload can take less than a
        // millisecond, so each one starts in a millisecond of its own.
        let started = unix_ms();
        while unix_ms() == started {
            std::hint::spin_loop();
        }
        assert_eq!(upload_api(addr, &session, &file).await.status, 201);
    }
    assert_eq!(listed(addr, "").await, ["c-small", "a-large", "b-medium"]);
    assert_eq!(
        listed(addr, "?sort=name").await,
        ["a-large", "b-medium", "c-small"]
    );
    assert_eq!(
        listed(addr, "?sort=name&order=desc").await,
        ["c-small", "b-medium", "a-large"]
    );
    assert_eq!(
        listed(addr, "?sort=size").await,
        ["a-large", "b-medium", "c-small"]
    );
    assert_eq!(
        listed(addr, "?sort=size&order=asc").await,
        ["c-small", "b-medium", "a-large"]
    );
    assert_eq!(
        listed(addr, "?sort=added&order=asc").await,
        ["b-medium", "a-large", "c-small"]
    );

    // The headers link to each order; the sorted column's link reverses it.
    let page = plain_http::request(addr, "GET", "/?q=&sort=size", &[], b"").await;
    assert!(
        page.body
            .contains("href=\"/?q=&amp;sort=name&amp;order=asc\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("href=\"/?q=&amp;sort=size&amp;order=asc\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("href=\"/?q=&amp;sort=seeders&amp;order=desc\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("aria-sort=\"descending\""),
        "{}",
        page.body
    );

    // The JSON API sorts alike; an unknown key is refused in words.
    let api = plain_http::request(addr, "GET", "/api/search?sort=name", &[], b"").await;
    let answer: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    let names: Vec<&str> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-large", "b-medium", "c-small"]);
    let bad = plain_http::request(addr, "GET", "/?sort=colour", &[], b"").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("cannot be sorted by"), "{}", bad.body);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_torrent_page_shows_the_bt_get_line_and_every_page_has_an_icon() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster);
    let session = sign_up(addr, "ivan").await;
    let t = torrent(
        dir.path(),
        &cluster,
        "get-me.bin",
        40_000,
        cluster.ca_fingerprint(),
    );
    assert_eq!(upload_api(addr, &session, &t.encode()).await.status, 201);

    let page = plain_http::request(
        addr,
        "GET",
        &format!("/torrents/{}", t.info_hash()),
        &[],
        b"",
    )
    .await;
    assert_eq!(page.status, 200);
    let mut line = format!("bt get {}", t.info_hash());
    for tracker in cluster.peer_addrs() {
        line.push_str(&format!(" --tracker {tracker}"));
    }
    line.push_str(&format!(" --ca {}", cluster.ca_fingerprint()));
    assert!(
        page.body
            .contains(&format!("<code id=\"bt-get\">{line}</code>")),
        "{}",
        page.body
    );

    assert!(page.body.contains("rel=\"icon\""), "{}", page.body);
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let icon = plain_http::request(addr, "GET", path, &[], b"").await;
        assert_eq!(icon.status, 200, "{path}");
        assert_eq!(
            icon.header_values("content-type"),
            ["image/svg+xml"],
            "{path}"
        );
        assert!(icon.body.starts_with("<svg"), "{path}");
    }
    cluster.shutdown();
}

/// The wall clock in milliseconds since the Unix epoch, as the nodes stamp torrents.
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}
