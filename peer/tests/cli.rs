//! The `bt` command line: every mistake gets an error a person understands.

use std::process::{Command, Output};

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
