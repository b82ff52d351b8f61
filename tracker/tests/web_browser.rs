//! The tracker's web site in a real browser (headless Chromium through chromedriver),
//! against a three-node cluster in this process, plus the forged requests a browser would
//! never send, with a plain HTTP client. Screenshots of every page go to
//! `target/web-screenshots/`.

use crate::browser;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use browser::Browser;
use browser::plain_http::{self, Answer};
use certs::Fingerprint;
use tracker::Bitfield;
use tracker::api::{AdminRequest, AdminResponse, Request, Response, WriteId};
use tracker::dev::{DevCluster, DevOptions};
use tracker::state::{Output, Query};
use tracker::torrent::{InfoHash, Torrent};

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

fn http_addr(cluster: &DevCluster, id: u64) -> SocketAddr {
    cluster
        .http_addrs()
        .into_iter()
        .find(|(n, _)| *n == id)
        .map(|(_, a)| a)
        .expect("the node serves HTTP")
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A torrent of a generated file named `name`, listing the cluster's nodes.
fn make_torrent(dir: &Path, cluster: &DevCluster, name: &str, comment: Option<&str>) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join(name);
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, bytes).unwrap();
    let torrent = tracker::torrent::create::from_path(
        &file,
        16 * 1024,
        cluster.peer_addrs(),
        cluster.ca_fingerprint(),
        comment.map(str::to_owned),
    )
    .unwrap();
    let out = dir.join(format!(
        "{}.torrent",
        name.replace(['<', '>', ' ', '='], "_")
    ));
    std::fs::write(&out, torrent.encode()).unwrap();
    out
}

/// Answers a request in-process, retrying while the cluster elects a leader (a loaded
/// machine may delay heartbeats enough for an election).
async fn answer(cluster: &DevCluster, fp: Fingerprint, request: Request) -> Response {
    let service = cluster.node(1).expect("node 1").service().clone();
    for _ in 0..50 {
        match service.answer(fp, request.clone()).await {
            Response::Unavailable(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            other => return other,
        }
    }
    panic!("no answer to {request:?} within 10 s");
}

/// Publishes with the dev user's API token, in-process.
async fn publish_with_token(cluster: &DevCluster, bytes: Vec<u8>) -> InfoHash {
    let request = Request::Publish {
        id: WriteId {
            client: rand::random(),
            seq: 1,
        },
        token: cluster.token().to_owned(),
        torrent: bytes,
    };
    match answer(cluster, Fingerprint::from_bytes([1; 32]), request).await {
        Response::Published(hash) => hash,
        other => panic!("publish: {other:?}"),
    }
}

/// Puts a few made-up peers with different pieces in the swarm, so the availability
/// picture has something to show.
async fn fake_swarm(cluster: &DevCluster, hash: InfoHash, pieces: u32) {
    for peer in 0..4u8 {
        let mut have = Bitfield::new(pieces);
        // Peer 0 seeds; the others hold different, partly overlapping parts.
        for i in 0..pieces {
            if peer == 0 || (i + u32::from(peer) * 3) % (u32::from(peer) + 2) != 0 {
                have.set(i);
            }
        }
        let request = Request::Join {
            id: WriteId {
                client: rand::random(),
                seq: 1,
            },
            info_hash: hash,
            addr: SocketAddr::from(([192, 0, 2, 10 + peer], 7000)).to_string(),
            have,
            want: 5,
        };
        let fp = Fingerprint::from_bytes([20 + peer; 32]);
        match answer(cluster, fp, request).await {
            Response::Joined { .. } => {}
            other => panic!("join: {other:?}"),
        }
    }
}

/// A linearizable read in-process, retried through elections.
async fn read(cluster: &DevCluster, query: Query) -> Output {
    let service = cluster.node(1).expect("node 1").service().clone();
    for _ in 0..50 {
        match service.read(query.clone()).await {
            Ok(output) => return output,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("no answer to {query:?} within 10 s");
}

async fn search_total(cluster: &DevCluster) -> u64 {
    let query = Query::Search {
        words: String::new(),
        page: 0,
        per_page: 50,
        order: Default::default(),
    };
    match read(cluster, query).await {
        Output::Search(page) => page.total,
        other => panic!("search: {other:?}"),
    }
}

async fn sign_up_in_browser(b: &Browser, addr: SocketAddr, name: &str, shot: Option<&str>) {
    b.goto(&url(addr, "/signup")).await;
    b.fill("#name", name).await;
    b.fill("#password", "correct horse battery").await;
    b.fill("#confirm", "correct horse battery").await;
    if let Some(shot) = shot {
        b.screenshot(shot).await;
    }
    b.click("#account-form button[type=submit]").await;
    b.wait_until(Duration::from_secs(10), "the signed-in header", || async {
        b.has("nav .user").await
    })
    .await;
    assert_eq!(b.text("nav .user").await, name);
}

fn downloaded(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "torrent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_signs_up_uploads_finds_and_downloads_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let (one, two) = (http_addr(&cluster, 1), http_addr(&cluster, 2));
    let name = "Debian netinst 13.1 amd64.iso";
    let torrent_path = make_torrent(dir.path(), &cluster, name, Some("Fresh from the mirror."));
    let original = std::fs::read(&torrent_path).unwrap();
    let b = Browser::start("site").await;

    sign_up_in_browser(&b, one, "alice", Some("signup")).await;

    // An invalid file is refused with a clear message, and nothing is stored.
    let junk = dir.path().join("notes.torrent");
    std::fs::write(&junk, b"these are not the bytes you are looking for").unwrap();
    b.goto(&url(one, "/upload")).await;
    b.find("#torrent-file")
        .await
        .send_keys(&junk.display().to_string())
        .await
        .unwrap();
    b.click("#upload-form button[type=submit]").await;
    let message = b.text(".notice.error").await;
    assert!(
        message.contains("not a valid torrent file"),
        "message: {message}"
    );
    b.screenshot("upload-invalid").await;
    assert_eq!(search_total(&cluster).await, 0);

    // A valid one is stored and its page shown.
    b.find("#torrent-file")
        .await
        .send_keys(&torrent_path.display().to_string())
        .await
        .unwrap();
    b.click("#upload-form button[type=submit]").await;
    b.wait_until(Duration::from_secs(10), "the torrent page", || async {
        b.has("h1.torrent-name").await
    })
    .await;
    assert_eq!(b.text("h1.torrent-name").await, name);
    let hash: InfoHash = b.text("#info-hash").await.parse().unwrap();
    assert_eq!(hash, Torrent::parse(&original).unwrap().info_hash());
    fake_swarm(
        &cluster,
        hash,
        Torrent::parse(&original).unwrap().piece_count(),
    )
    .await;

    // Found by searching on another node (the session works there too), then downloaded.
    b.goto(&url(two, "/")).await;
    assert_eq!(b.text("nav .user").await, "alice");
    b.fill("form.search input[name=q]", "netinst AMD64").await;
    b.click("form.search button").await;
    // The home page lists every torrent in a #results table too: wait for the search's
    // own page, checked in one script so the old page cannot answer half of it.
    b.wait_until(Duration::from_secs(10), "search results", || async {
        let check =
            "return location.search.includes('q=') && !!document.querySelector('#results td.name')";
        b.eval(check).await == serde_json::Value::Bool(true)
    })
    .await;
    assert_eq!(b.text("#results td.name").await, name);
    assert_eq!(b.text("#results td.seeders").await, "1");
    assert_eq!(b.text("#results td.leechers").await, "3");
    b.screenshot("search").await;
    b.click("#results td.name a").await;
    b.wait_until(
        Duration::from_secs(10),
        "the availability picture",
        || async {
            b.eval("return document.getElementById('availability')?.dataset.drawn === 'true'")
                .await
                == serde_json::json!(true)
        },
    )
    .await;
    b.screenshot("torrent").await;
    b.click("#download").await;
    let downloads = b.downloads.clone();
    b.wait_until(
        Duration::from_secs(20),
        "the downloaded torrent file",
        || {
            let downloads = downloads.clone();
            async move { downloaded(&downloads).is_some() }
        },
    )
    .await;
    let file = downloaded(&b.downloads).unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "{}",
        file.display()
    );

    // An API token is shown once, listed by its label, and can be revoked.
    b.goto(&url(one, "/tokens")).await;
    b.fill("#token-label", "build server").await;
    b.click("#token-form button[type=submit]").await;
    let token = b.text("#new-token").await;
    assert_eq!(token.len(), 52, "{token}");
    b.screenshot("tokens").await;
    b.goto(&url(two, "/tokens")).await;
    assert!(!b.has("#new-token").await);
    assert!(b.text("#tokens").await.contains("build server"));
    b.click("#tokens button.danger").await;
    b.find("#no-tokens").await;

    // Signing out ends the session on every node.
    b.click("nav form button").await;
    b.wait_until(Duration::from_secs(10), "the signed-out header", || async {
        !b.has("nav .user").await
    })
    .await;
    b.goto(&url(one, "/")).await;
    assert!(!b.has("nav .user").await);
    b.close().await;
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_without_a_session_or_a_csrf_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster, 1);
    let torrent = std::fs::read(make_torrent(dir.path(), &cluster, "payload.bin", None)).unwrap();

    // In a browser: signed out, the upload page asks to sign in.
    let b = Browser::start("refusals").await;
    b.goto(&url(addr, "/upload")).await;
    assert!(
        b.text("#sign-in-needed")
            .await
            .contains("You must sign in to upload")
    );
    b.screenshot("upload-signed-out").await;

    // Signed in, a form whose CSRF token was stripped is refused.
    sign_up_in_browser(&b, addr, "carol", None).await;
    b.goto(&url(addr, "/upload")).await;
    b.eval("document.querySelector('#upload-form input[name=csrf]').remove(); return true")
        .await;
    let path = dir.path().join("payload.bin.torrent");
    b.find("#torrent-file")
        .await
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    b.click("#upload-form button[type=submit]").await;
    assert!(b.text(".notice.error").await.contains("security token"));
    b.screenshot("upload-forged").await;
    b.close().await;
    assert_eq!(search_total(&cluster).await, 0);

    // With a plain HTTP client.
    let get = |path: &'static str, cookies: Vec<String>| async move {
        let headers = [("Cookie", cookies.join("; "))];
        plain_http::request(addr, "GET", path, &headers, b"").await
    };
    let post_form = |path: &'static str, cookies: Vec<String>, body: String| async move {
        let headers = [
            ("Cookie", cookies.join("; ")),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ];
        plain_http::request(addr, "POST", path, &headers, body.as_bytes()).await
    };

    // A visitor's browser cookie and form token.
    let page = get("/signup", vec![]).await;
    let mut cookies = page.cookies();
    let csrf = page.csrf().expect("a csrf field");
    assert!(
        page.header_values("content-security-policy")[0].contains("script-src 'self'"),
        "{:?}",
        page.headers
    );

    // Sign-up without the token: refused, no user.
    let forged = post_form(
        "/signup",
        cookies.clone(),
        "name=mallory&password=password1&confirm=password1".into(),
    )
    .await;
    assert_eq!(forged.status, 403);
    let service = cluster.node(1).unwrap().service().clone();
    assert_eq!(
        read(&cluster, Query::User("mallory".into())).await,
        Output::User(None)
    );

    // Upload with a token but no session: refused.
    let (content_type, body) =
        plain_http::multipart(&[("csrf", &csrf)], Some(("torrent", &torrent)));
    let headers = [
        ("Cookie", cookies.join("; ")),
        ("Content-Type", content_type.clone()),
    ];
    let anonymous = plain_http::request(addr, "POST", "/upload", &headers, &body).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.body.contains("You must sign in to upload"));

    // Signed in, but without the token: refused.
    let signed_up = post_form(
        "/signup",
        cookies.clone(),
        format!("csrf={csrf}&name=dave&password=password1&confirm=password1"),
    )
    .await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.body);
    cookies.extend(signed_up.cookies());
    let (content_type, body) = plain_http::multipart(&[], Some(("torrent", &torrent)));
    let headers = [
        ("Cookie", cookies.join("; ")),
        ("Content-Type", content_type),
    ];
    let forged = plain_http::request(addr, "POST", "/upload", &headers, &body).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The JSON API likewise wants the header.
    let headers = [("Cookie", cookies.join("; "))];
    let forged = plain_http::request(addr, "POST", "/api/torrents", &headers, &torrent).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(search_total(&cluster).await, 0, "nothing was stored");

    // With the session's token it works.
    let me = get("/api/me", cookies.clone()).await;
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["user"]["name"], "dave");
    let token = me["csrf"].as_str().unwrap().to_owned();
    let headers = [
        ("Cookie", cookies.join("; ")),
        ("X-CSRF-Token", token.clone()),
    ];
    let published = plain_http::request(addr, "POST", "/api/torrents", &headers, &torrent).await;
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(search_total(&cluster).await, 1);

    // Sign-in attempts are rate-limited.
    let fresh = get("/signin", vec![]).await;
    let (guesser, guess_csrf) = (fresh.cookies(), fresh.csrf().unwrap());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer: Answer = post_form(
            "/signin",
            guesser.clone(),
            format!("csrf={guess_csrf}&name=dave&password=wrong-password"),
        )
        .await;
        statuses.push(answer.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);

    // An administrator disables dave: his session stops working on every node.
    let admin = AdminRequest::AddUser {
        id: WriteId {
            client: rand::random(),
            seq: 1,
        },
        name: "root".into(),
        password: "administrator".into(),
        admin: true,
    };
    let mut answer = service.answer_admin(admin.clone()).await;
    for _ in 0..20 {
        if !matches!(answer, AdminResponse::Unavailable(_)) {
            break;
        }
        answer = service.answer_admin(admin.clone()).await;
    }
    assert_eq!(answer, AdminResponse::Done);
    let page = get("/signin", vec![]).await;
    let mut admin_cookies = page.cookies();
    let signed_in = post_form(
        "/signin",
        admin_cookies.clone(),
        format!(
            "csrf={}&name=root&password=administrator",
            page.csrf().unwrap()
        ),
    )
    .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    admin_cookies.extend(signed_in.cookies());
    let users = get("/admin/users", admin_cookies.clone()).await;
    assert_eq!(users.status, 200);
    let disable = post_form(
        "/admin/users/disabled",
        admin_cookies.clone(),
        format!("csrf={}&name=dave&disabled=true", users.csrf().unwrap()),
    )
    .await;
    assert_eq!(disable.status, 303, "{}", disable.body);
    let me = get("/api/me", cookies.clone()).await;
    assert!(me.body.contains("\"user\":null"), "{}", me.body);
    let not_admin = get("/admin/users", cookies).await;
    assert_eq!(not_admin.status, 403);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_in_a_torrent_name_shows_as_text_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir.path().join("cluster")).await;
    let addr = http_addr(&cluster, 3);
    // A name cannot hold '/', so the name carries an event handler and the comment a
    // whole script element.
    let name = "<img src=x onerror=alert(1)><b>bold";
    let comment = "<script>alert(1)</script><script>window.pwned=1</script>";
    let path = make_torrent(dir.path(), &cluster, name, Some(comment));
    let hash = publish_with_token(&cluster, std::fs::read(path).unwrap()).await;

    let b = Browser::start("xss").await;
    b.goto(&url(addr, "/?q=onerror")).await;
    assert_eq!(b.text("#results td.name").await, name);
    b.screenshot("search").await;
    b.goto(&url(addr, &format!("/torrents/{hash}"))).await;
    assert_eq!(b.text("h1.torrent-name").await, name);
    assert_eq!(b.text("p.comment").await, comment);
    assert!(
        b.client.get_alert_text().await.is_err(),
        "an alert is open: a script ran"
    );
    let injected = b
        .eval(
            "return [document.querySelectorAll('main img, main b, main script').length, \
             typeof window.pwned]",
        )
        .await;
    assert_eq!(injected, serde_json::json!([0, "undefined"]));
    // The page's own script did run (the CSP allows it): the picture is drawn.
    b.wait_until(
        Duration::from_secs(10),
        "the availability picture",
        || async {
            b.eval("return document.getElementById('availability').dataset.drawn === 'true'")
                .await
                == serde_json::json!(true)
        },
    )
    .await;
    b.screenshot("torrent").await;
    b.close().await;
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_page_shows_every_node_and_a_new_leader_after_the_leader_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(&dir.path().join("cluster")).await;
    let b = Browser::start("cluster").await;
    // Watch from a node that does not lead (leadership may move under a loaded machine,
    // so wait until the page and the cluster agree on who leads).
    let seen = std::sync::atomic::AtomicU64::new(0);
    b.wait_until(
        Duration::from_secs(30),
        "the page naming the leader",
        || {
            let b = &b;
            let cluster = &cluster;
            let seen = &seen;
            async move {
                let Some(now) = cluster.leader() else {
                    return false;
                };
                seen.store(now, std::sync::atomic::Ordering::Relaxed);
                let watcher = cluster.ids().into_iter().find(|&id| id != now).unwrap();
                b.goto(&url(http_addr(cluster, watcher), "/cluster")).await;
                b.has("#leader").await && b.text("#leader").await == now.to_string()
            }
        },
    )
    .await;
    let leader = seen.load(std::sync::atomic::Ordering::Relaxed);
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#cluster tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        b.eval(
            "return [...document.querySelectorAll('#cluster td.health')].map(e => e.textContent)"
        )
        .await,
        serde_json::json!(["up", "up", "up"])
    );
    b.screenshot("before").await;

    cluster.stop(leader);
    let old = leader.to_string();
    b.wait_until(Duration::from_secs(30), "a new leader on the page", || {
        let old = old.clone();
        let b = &b;
        async move {
            let now = b
                .eval("return document.getElementById('leader')?.textContent ?? ''")
                .await;
            let down = b
                .eval(&format!(
                    "return document.querySelector('#cluster tr[data-node=\"{old}\"] td.health')?.textContent"
                ))
                .await;
            now.as_str().is_some_and(|s| !s.is_empty() && s != old) && down == "down"
        }
    })
    .await;
    let new_leader: u64 = b.text("#leader").await.parse().unwrap();
    assert!(
        new_leader != leader && cluster.node(new_leader).is_some(),
        "the new leader {new_leader} is a running node"
    );
    b.screenshot("after").await;
    b.close().await;
    cluster.shutdown();
}
