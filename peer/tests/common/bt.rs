//! Real `bt` processes, as a user runs them, against a tracker cluster of node processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tracker::torrent::Torrent;

use super::procs::ProcessTrackers;

/// A running `bt` process, killed (`kill -9`) when dropped.
pub struct BtProc {
    child: Child,
    stderr: PathBuf,
}

/// `bt --state STATE ARGS...`, standard output discarded, standard error kept in
/// `STATE.stderr`.
pub fn bt_command(state: &Path, args: &[&str]) -> (Command, PathBuf) {
    let stderr = state.with_extension("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bt"));
    command
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("create the stderr file"));
    (command, stderr)
}

impl BtProc {
    /// Starts `bt --state STATE ARGS...`.
    pub fn spawn(state: &Path, args: &[&str]) -> BtProc {
        let (mut command, stderr) = bt_command(state, args);
        let child = command.spawn().expect("start bt");
        BtProc { child, stderr }
    }

    /// `bt seed PATH` with the trackers' addresses, CA and token, writing the torrent file
    /// to `torrent_file`, listening on loopback.
    pub fn seed(
        state: &Path,
        trackers: &ProcessTrackers,
        path: &Path,
        torrent_file: &Path,
    ) -> Self {
        let mut args = vec![
            "seed".to_owned(),
            path.display().to_string(),
            "-o".to_owned(),
            torrent_file.display().to_string(),
            "--ca".to_owned(),
            trackers.ca().to_string(),
            "--token".to_owned(),
            trackers.token().to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        for addr in trackers.peer_addrs() {
            args.push("--tracker".to_owned());
            args.push(addr.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        BtProc::spawn(state, &args)
    }

    /// `bt get TORRENT_FILE -o OUTPUT`, listening on loopback, then `extra` arguments.
    pub fn get(state: &Path, torrent_file: &Path, output: &Path, extra: &[&str]) -> Self {
        let (torrent_file, output) = (
            torrent_file.display().to_string(),
            output.display().to_string(),
        );
        let mut args = vec![
            "get",
            &torrent_file,
            "-o",
            &output,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        BtProc::spawn(state, &args)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` ("STOP", "CONT", ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {}", self.pid());
    }

    /// Waits for it to exit, polling; panics after `limit` (after killing it).
    pub async fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, String) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for bt") {
                return (status, self.stderr());
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill();
                panic!(
                    "bt did not exit within {limit:?}; its stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it wrote on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BtProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The torrent file `bt seed -o` writes, once it is complete.
pub async fn torrent_written(path: &Path, limit: Duration) -> Torrent {
    super::eventually(limit, "bt seed writes the torrent file", || async {
        std::fs::read(path)
            .ok()
            .and_then(|b| Torrent::parse(&b).ok())
    })
    .await
}

/// The output of `bt --state STATE status`.
pub fn status_of(state: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bt"))
        .arg("--state")
        .arg(state)
        .arg("status")
        .output()
        .expect("run bt status");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
