//! A small crowd (300 peers in 2 worker processes, plus one worker of 15 peers killed with
//! SIGKILL) against 3 real `bt-tracker run` processes, with the leader killed once: no
//! acknowledged report is lost on any node, the peers that left are gone, and the killed
//! peers expire from every node by their time to live (8 s here).

use std::path::PathBuf;
use std::process::Command;

/// The `bt-tracker` binary next to this package's binary, built if it is not there (as
/// when only this package's tests are run).
fn bt_tracker() -> PathBuf {
    let crowd = PathBuf::from(env!("CARGO_BIN_EXE_tracker-crowd"));
    let binary = crowd.with_file_name("bt-tracker");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "tracker", "--bin", "bt-tracker"]);
        if crowd.parent().and_then(|d| d.file_name()) == Some("release".as_ref()) {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo to build bt-tracker");
        assert!(status.success(), "building bt-tracker failed");
    }
    binary
}

#[test]
fn a_small_crowd_loses_no_acknowledged_report_across_a_leader_kill() {
    let out = Command::new(env!("CARGO_BIN_EXE_tracker-crowd"))
        .args([
            "run",
            "--peers",
            "300",
            "--procs",
            "2",
            "--join-window",
            "5",
            "--steady",
            "16",
            "--peer-ttl-secs",
            "8",
            "--kill-peers-after",
            "2",
            "--small-torrents",
            "20",
            "--seed",
            "7",
        ])
        .arg("--bt-tracker")
        .arg(bt_tracker())
        .output()
        .expect("run tracker-crowd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        stderr.contains("killed the leader, node") && stderr.contains("restarted"),
        "the leader was killed and restarted"
    );
    assert!(
        stderr.contains("killed the worker of 15 peers"),
        "15 peers were killed"
    );
    assert!(
        stdout.contains("check: PASSED"),
        "every acknowledged report is on every node and departed peers are gone"
    );
    assert!(
        out.status.success(),
        "tracker-crowd exits 0 when the check passes"
    );
}
