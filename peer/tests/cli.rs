//! The `bt` command line: every mistake gets an error a person understands.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tracker::dev::DevCluster;

fn bt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bt"))
        .args(args)
        .output()
        .expect("bt runs")
}

fn error_of(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    String::from_utf8_lossy(&output.stderr).to_string()
}

const CA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn a_missing_torrent_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.torrent");
    let err = error_of(&bt(&["get", missing.to_str().unwrap(), "-o", "."]));
    assert!(err.contains("no such torrent file"), "{err}");
    assert!(err.contains("nothing.torrent"), "{err}");
}

#[test]
fn a_bad_torrent_file_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"this is not a torrent").unwrap();
    let err = error_of(&bt(&["get", bad.to_str().unwrap(), "-o", "."]));
    assert!(err.contains("not a valid torrent file"), "{err}");
    assert!(err.contains("BTTORENT"), "{err}");
}

#[test]
fn a_missing_path_to_share_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = dir.path().join("x.torrent");
    let err = error_of(&bt(&[
        "create",
        missing.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tracker",
        "127.0.0.1:1",
        "--ca",
        CA,
    ]));
    assert!(
        err.contains("nope") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn unreachable_trackers_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let torrent = dir.path().join("f.torrent");
    // Two loopback ports with nothing behind them.
    let ports: Vec<String> = (0..2)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .to_string()
        })
        .collect();
    let created = bt(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        &ports[0],
        "--tracker",
        &ports[1],
        "--ca",
        CA,
    ]);
    assert!(created.status.success(), "{created:?}");
    let state = dir.path().join("state");
    let err = error_of(&bt(&[
        "--state",
        state.to_str().unwrap(),
        "publish",
        torrent.to_str().unwrap(),
        "--token",
        "t",
    ]));
    assert!(err.contains("no tracker node answered"), "{err}");
    assert!(err.contains(&ports[0]) && err.contains(&ports[1]), "{err}");
}

#[test]
fn a_bad_fingerprint_argument_is_explained() {
    let err = error_of(&bt(&[
        "create",
        ".",
        "-o",
        "x.torrent",
        "--tracker",
        "127.0.0.1:1",
        "--ca",
        "XYZ",
    ]));
    assert!(err.contains("--ca"), "{err}");
}

#[test]
fn the_dashboard_refuses_a_non_loopback_address_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![1u8; 50_000]).unwrap();
    let err = error_of(&bt(&[
        "--state",
        state.to_str().unwrap(),
        "seed",
        file.to_str().unwrap(),
        "--tracker",
        "127.0.0.1:1",
        "--ca",
        CA,
        "--token",
        "t",
        "--web",
        "0.0.0.0:0",
    ]));
    // Refused at once, before anything is hashed or published.
    assert!(err.contains("not a loopback address"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Against a real tracker cluster (in this process) and real `bt` processes.

/// A `bt` process, killed when dropped (also when a test fails half-way).
struct BtProc(Child);

impl std::ops::Deref for BtProc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for BtProc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for BtProc {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bt` with `--state STATE` and `args`, stdout and stderr piped.
fn spawn_bt(state: &Path, args: &[&str]) -> BtProc {
    BtProc(
        Command::new(env!("CARGO_BIN_EXE_bt"))
            .arg("--state")
            .arg(state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bt runs"),
    )
}

/// The lines a child prints on stdout, as they come.
fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `text`; panics after `limit`.
fn wait_line(lines: &std::sync::mpsc::Receiver<String>, text: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {text:?} within {limit:?}: {e}"),
        }
    }
}

/// Waits for the child to exit; kills it and panics after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bt did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// A free loopback port for a server to bind later (TCP).
fn free_tcp() -> std::net::SocketAddr {
    transport::ports::unused_loopback_addr().expect("a free loopback port")
}

/// `--tracker A --tracker B ... --ca CA` of the cluster.
fn cluster_args(cluster: &DevCluster, ca: &str) -> Vec<String> {
    let mut args = Vec::new();
    for addr in cluster.peer_addrs() {
        args.push("--tracker".to_string());
        args.push(addr.to_string());
    }
    args.push("--ca".into());
    args.push(ca.into());
    args
}

/// An HTTP GET of `/` at `addr`: the status line and body, or None if nothing answers.
fn http_get(addr: std::net::SocketAddr) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// A seeding `bt seed` process of a 4 MiB file; returns it once it seeds.
fn start_bt_seeder(
    dir: &Path,
    cluster: &DevCluster,
    extra: &[&str],
) -> (BtProc, std::path::PathBuf) {
    let file = dir.join("share").join("payload.bin");
    common::write_random_file(&file, 4 << 20, 11);
    let torrent = dir.join("payload.torrent");
    let mut args: Vec<String> = vec![
        "seed".into(),
        file.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--token".into(),
        cluster.token().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(cluster_args(cluster, &cluster.ca_fingerprint().to_string()));
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut seeder = spawn_bt(&dir.join("seeder-state"), &args);
    let lines = stdout_lines(&mut seeder);
    wait_line(&lines, "seeding", Duration::from_secs(60));
    (seeder, torrent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_serves_the_dashboard_given_with_web() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let web = free_tcp();
    let (mut seeder, _torrent) =
        start_bt_seeder(dir.path(), &cluster, &["--web", &web.to_string()]);
    let page = common::eventually(Duration::from_secs(10), "the dashboard answers", || async {
        http_get(web)
    })
    .await;
    let _ = seeder.kill();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_plain_progress_lines_when_stdout_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let (torrent, original, _seeder, _handle) =
        common::seeded_torrent(dir.path(), &cluster, 3 << 20, 256 << 10).await;
    let torrent_file = dir.path().join("t.torrent");
    std::fs::write(&torrent_file, torrent.encode()).unwrap();
    let out = dir.path().join("downloads");
    let state = dir.path().join("state");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bt"))
            .arg("--state")
            .arg(&state)
            .args(["get", torrent_file.to_str().unwrap(), "-o"])
            .arg(&out)
            .args(["--no-seed", "--listen", "127.0.0.1:0"])
            .output()
            .expect("bt runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.lines().any(|l| l.contains("complete: ")),
        "no completion line: {stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "escape codes on a pipe: {stdout:?}"
    );
    assert!(common::same_bytes(
        &original,
        &dir.path().join("downloads").join("payload.bin")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_completion_fails_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let (mut seeder, torrent) = start_bt_seeder(dir.path(), &cluster, &[]);
    // The only seeder stalls: the download cannot make progress.
    signal(&seeder, "STOP");
    let out = dir.path().join("downloads");
    let mut get = spawn_bt(
        &dir.path().join("state"),
        &[
            "get",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-seed",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let lines = stdout_lines(&mut get);
    // It prints where the download goes once it has joined the swarm.
    wait_line(&lines, "into", Duration::from_secs(30));
    signal(&get, "INT");
    let status = wait_exit(&mut get, Duration::from_secs(20));
    let err = stderr_of(&mut get);
    signal(&seeder, "CONT");
    let _ = seeder.kill();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted before the download completed"),
        "{err}"
    );
    assert!(err.contains("resume with"), "{err}");
    let resume = err.lines().last().unwrap_or_default().trim();
    assert!(
        resume.contains(" get ") && resume.contains(torrent.to_str().unwrap()),
        "{err}"
    );
    assert!(resume.contains(out.to_str().unwrap()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_fails_at_once_with_a_sentence_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![3u8; 300_000]).unwrap();
    let torrent = dir.path().join("f.torrent");
    // A torrent naming the cluster's nodes but another CA.
    let mut args = vec![
        "create".to_string(),
        file.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
    ];
    args.extend(cluster_args(&cluster, CA));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(bt(&args).status.success());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let out = downloads.join("new").join("deeper");
    let state = dir.path().join("state");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let (torrent, out) = (torrent.clone(), out.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_bt"))
                .arg("--state")
                .arg(&state)
                .args(["get", torrent.to_str().unwrap(), "-o"])
                .arg(&out)
                .args(["--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "tracker::client=debug")
                .output()
                .expect("bt runs")
        }
    })
    .await
    .unwrap();
    let err = error_of(&output);
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert!(
        err.contains(&format!(
            "the tracker's certificate is not signed by the CA {CA} named in the torrent; \
             check --ca"
        )),
        "{err}"
    );
    assert!(!err.contains("OtherError"), "debug text: {err}");
    // One try per tracker node, no retries.
    assert_eq!(
        err.matches("tracker node refused").count(),
        cluster.peer_addrs().len(),
        "{err}"
    );
    // The directories and the sparse file it made are gone; what was there stays.
    assert!(!downloads.join("new").exists(), "left behind: {err}");
    assert!(downloads.is_dir());
}

#[test]
fn get_into_an_existing_file_says_o_must_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![3u8; 100_000]).unwrap();
    let torrent = dir.path().join("f.torrent");
    let created = bt(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        "127.0.0.1:1",
        "--ca",
        CA,
    ]);
    assert!(created.status.success(), "{created:?}");
    let err = error_of(&bt(&[
        "--state",
        dir.path().join("state").to_str().unwrap(),
        "get",
        torrent.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]));
    assert!(
        err.contains(&format!("-o {} is a file", file.display())),
        "{err}"
    );
    assert!(err.contains("directory"), "{err}");
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn error_chains_name_each_cause_once() {
    use peer::runtime::PeerError;
    use peer::storage::StorageError;
    use tracker::api::ApiError;
    use tracker::client::TrackerError;
    let cases: Vec<(anyhow::Error, &str)> = vec![
        (
            PeerError::from(TrackerError::Refused(ApiError::Unauthorized)).into(),
            "the API token is not valid",
        ),
        (
            PeerError::from(StorageError::Io {
                action: "reading",
                path: "/data/big.iso".into(),
                error: std::io::Error::other("bad sector"),
            })
            .into(),
            "bad sector",
        ),
        (
            transport::TransportError::Bind {
                addr: "127.0.0.1:9".parse().unwrap(),
                error: std::io::Error::other("port taken"),
            }
            .into(),
            "port taken",
        ),
        (
            certs::CertError::Io {
                path: "/etc/node.key".into(),
                error: std::io::Error::other("no such key"),
            }
            .into(),
            "no such key",
        ),
    ];
    for (error, cause) in cases {
        // As `bt` prints an error: the message, then each cause.
        let text = format!("{:#}", error.context("doing something"));
        assert_eq!(text.matches(cause).count(), 1, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeders_status_counts_the_neighbours_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::tracker_cluster(dir.path()).await;
    let (torrent, _original, seeder, seeder_handle) =
        common::seeded_torrent(dir.path(), &cluster, 2 << 20, 256 << 10).await;
    // A neighbour that has nothing and stays (a leecher would finish and let go at once).
    let leecher = common::raw::probe(seeder.fingerprint(), seeder.addr(), &torrent).await;
    let leecher_id = leecher.endpoint.fingerprint().to_string();
    // The seeder downloads nothing, yet the neighbour linked to it is counted.
    common::wait_status(
        &seeder_handle,
        Duration::from_secs(20),
        "the seeder shows the leecher as a connected neighbour",
        |s| {
            s.neighbours
                .iter()
                .any(|n| n.fingerprint == leecher_id && n.state == "connected")
        },
    )
    .await;
}
