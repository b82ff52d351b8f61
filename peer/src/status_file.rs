//! How `bt status` sees what other `bt` processes are doing: each process that downloads
//! or seeds writes its torrents' statuses to `STATE/status/PID.json` (replaced atomically,
//! every second) and removes the file when it exits. `bt status` reads the files whose
//! process is still alive and removes the others.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::TorrentStatus;

/// What one process reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// Its process id.
    pub pid: u32,
    /// The address other peers dial.
    pub addr: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its torrents.
    pub torrents: Vec<TorrentStatus>,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("status")
}

/// Writes this process's status (temporary file, then rename, so readers never see half
/// a file).
pub fn write(state_dir: &Path, status: &ProcessStatus) -> std::io::Result<()> {
    let dir = dir(state_dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", status.pid));
    let temp = dir.join(format!(".{}.json.tmp", status.pid));
    let bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, &path)
}

/// Reads a status file's bytes (JSON).
pub(crate) fn decode(bytes: &[u8]) -> serde_json::Result<ProcessStatus> {
    serde_json::from_slice(bytes)
}

/// Removes this process's status file.
pub fn remove(state_dir: &Path, pid: u32) {
    let _ = std::fs::remove_file(dir(state_dir).join(format!("{pid}.json")));
}

/// The statuses of the live processes, oldest pid first; files of dead processes are
/// removed.
pub fn read_all(state_dir: &Path) -> Vec<ProcessStatus> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(status) = decode(&bytes)
        {
            all.push(status);
        }
    }
    all.sort_by_key(|s| s.pid);
    all
}
