//! What must be one process's alone: the peer identity made on a first run, and a
//! torrent's state and output files. Real `bt` processes against tracker node processes.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::common::bt::{BtProc, torrent_written};
use crate::common::procs::ProcessTrackers;
use crate::common::*;

/// A tracker node process of these tests. Does nothing unless started by one of them.
#[test]
#[ignore = "a tracker node process that these tests start"]
fn tracker_node_process() {
    common::procs::tracker_node_process_main();
}

#[test]
fn many_first_runs_at_once_on_one_state_directory_share_one_valid_identity() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (state, barrier) = (state.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    peer::runtime::load_or_create_identity(&state)
                        .map(|id| id.fingerprint())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let fingerprints: Vec<_> = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"))
            })
            .collect();
        assert!(
            fingerprints.iter().all(|f| *f == fingerprints[0]),
            "round {round}: {fingerprints:?}"
        );
        let loaded =
            certs::Identity::load(&state.join("identity.crt"), &state.join("identity.key"))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(loaded.fingerprint(), fingerprints[0], "round {round}");
    }
}

#[test]
fn an_identity_saved_by_an_older_version_keeps_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let old = certs::Identity::generate_self_signed("bytetorrent-peer").unwrap();
    old.save(
        &dir.path().join("identity.crt"),
        &dir.path().join("identity.key"),
    )
    .unwrap();
    let loaded = peer::runtime::load_or_create_identity(dir.path()).unwrap();
    assert_eq!(loaded.fingerprint(), old.fingerprint());
}

/// A tracker cluster, a `bt seed` of a 4 MiB payload, and its torrent file.
async fn seeded(
    dir: &Path,
) -> (
    ProcessTrackers,
    BtProc,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let trackers =
        ProcessTrackers::start(&dir.join("trackers"), "exclusive::tracker_node_process", 3).await;
    let original = dir.join("share").join("payload.bin");
    write_random_file(&original, 4 << 20, 31);
    let torrent_file = dir.join("payload.torrent");
    let seeder = BtProc::seed(&dir.join("seeder"), &trackers, &original, &torrent_file);
    torrent_written(&torrent_file, Duration::from_secs(20)).await;
    (trackers, seeder, original, torrent_file)
}

/// Waits until `file` holds the same bytes as `original`.
async fn completes(original: &Path, file: &Path) {
    eventually(
        Duration::from_secs(60),
        "the download completes",
        || async { same_bytes(original, file).then_some(()) },
    )
    .await;
}

/// Waits until `bt` holds the torrent's lock: its lock file names its pid.
async fn holds_lock(bt: &BtProc, output: &Path) {
    let pid = bt.pid().to_string();
    eventually(
        Duration::from_secs(30),
        "the first bt locks the output",
        || async {
            let entries = std::fs::read_dir(output).ok()?;
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t == pid))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_for_the_same_torrent_and_state_is_refused_and_harms_nothing() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (_trackers, _seeder, original, torrent_file) = seeded(dir).await;
    let (state, output) = (dir.join("state"), dir.join("got"));
    let mut first = BtProc::get(&state, &torrent_file, &output, &[]);
    holds_lock(&first, &output).await;

    let mut second = BtProc::get(&state, &torrent_file, &output, &[]);
    let (status, stderr) = second.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success(), "the second bt must fail");
    assert!(
        stderr.contains(&format!(
            "already being downloaded by process {}",
            first.pid()
        )),
        "{stderr}"
    );
    // The first goes on undisturbed and completes.
    completes(&original, &output.join("payload.bin")).await;

    // Killed, it leaves no lock behind: a new process resumes and finishes.
    first.kill();
    let mut again = BtProc::get(&state, &torrent_file, &output, &["--no-seed"]);
    let (status, stderr) = again.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{stderr}");
    assert!(same_bytes(&original, &output.join("payload.bin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_writing_the_same_output_from_another_state_is_refused() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (_trackers, _seeder, original, torrent_file) = seeded(dir).await;
    let output = dir.join("got");
    let mut first = BtProc::get(&dir.join("state-a"), &torrent_file, &output, &[]);
    holds_lock(&first, &output).await;

    let mut second = BtProc::get(&dir.join("state-b"), &torrent_file, &output, &[]);
    let (status, stderr) = second.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success(), "the second bt must fail");
    assert!(
        stderr.contains(&format!(
            "already being downloaded by process {}",
            first.pid()
        )),
        "{stderr}"
    );
    completes(&original, &output.join("payload.bin")).await;

    first.kill();
    let mut again = BtProc::get(&dir.join("state-b"), &torrent_file, &output, &["--no-seed"]);
    let (status, stderr) = again.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{stderr}");
    assert!(same_bytes(&original, &output.join("payload.bin")));
}
