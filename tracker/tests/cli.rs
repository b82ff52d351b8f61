//! The `bt-tracker` command line.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::bt_tracker;

#[test]
fn dev_cluster_prints_addresses_fingerprint_and_token_then_runs_until_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bt_tracker()
        .args(["dev", "--nodes", "3", "--dir", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let ready = line.starts_with("ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    for id in 1..=3 {
        assert!(
            text.contains(&format!("node {id}: peers 127.0.0.1:")),
            "{text}"
        );
    }
    let fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("CA fingerprint: "))
        .expect("the CA fingerprint");
    assert!(
        fingerprint.parse::<certs::Fingerprint>().is_ok(),
        "{fingerprint}"
    );
    assert!(text.contains("API token of user dev: "), "{text}");
    assert!(dir.path().join("certs").join("ca.crt").exists());
}

#[test]
fn a_malformed_member_is_explained() {
    let out = bt_tracker()
        .args([
            "run", "--id", "1", "--data", "d", "--certs", "c", "--member", "1=node1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ID=NAME,CLUSTER_ADDR,PEER_ADDR"), "{err}");
}

#[test]
fn a_node_name_that_is_not_a_dns_label_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().to_str().unwrap();
    assert!(
        bt_tracker()
            .args(["certs", "ca", "--dir", certs])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = bt_tracker()
        .args(["certs", "node", "Node_1", "--dir", certs])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot name a node"), "{err}");
}

#[test]
fn a_failed_start_names_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-certs");
    let out = bt_tracker()
        .args([
            "run",
            "--id",
            "1",
            "--data",
            dir.path().join("data").to_str().unwrap(),
            "--certs",
            missing.to_str().unwrap(),
            "--member",
            "1=node1,127.0.0.1:1,127.0.0.1:2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.contains("ca.crt"), "{err}");
    // The operating system's words appear once, not again under "Caused by".
    let os_error = "(os error 2)";
    assert_eq!(err.matches(os_error).count(), 1, "{err}");
}

#[test]
fn a_piped_password_is_read_without_a_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bt_tracker()
        .args([
            "user",
            "add",
            "alice",
            "--certs",
            dir.path().join("no-such-certs").to_str().unwrap(),
            "--tracker",
            "127.0.0.1:9",
        ])
        .env_remove("BT_TRACKER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"correct horse battery\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The password was read (the command went on to load the operator certificate,
    // which is missing here), and no prompt was printed for it.
    assert!(err.contains("no-such-certs"), "{err}");
    assert!(!err.contains("password:"), "{err}");
}
