//! Exclusive locks on a torrent's state and output files, so that two processes never
//! write the same files: the second is refused with [`StorageError::Busy`], naming the
//! process that holds the lock.
//!
//! A lock is an operating-system lock on a small file holding the owner's process id
//! (`flock`): it is released when the process ends however it ends, so a killed process
//! never leaves a stale lock. The file is removed when the lock is dropped; one left
//! behind by a killed process is simply locked again by the next one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

/// A held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock at `path` (creating the file) without waiting; `torrent` names the
    /// torrent in the error if another process holds it.
    pub(crate) fn acquire(path: &Path, torrent: &str) -> Result<FileLock, StorageError> {
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(StorageError::io_with("creating the lock file", path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(StorageError::Busy {
                        torrent: torrent.to_owned(),
                        pid: text.trim().parse().ok(),
                        lock: path.to_path_buf(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StorageError::io("locking", path, e));
                }
            }
            // The holder before us may have removed the file between our open and our
            // lock: then we hold a lock on a file nobody else will find. Start over.
            if !same_file(&file, path) {
                continue;
            }
            let pid = std::process::id().to_string();
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(pid.as_bytes()))
                .map_err(StorageError::io_with("writing the lock file", path))?;
            return Ok(FileLock {
                file,
                path: path.to_path_buf(),
            });
        }
    }
}

impl FileLock {
    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked, so nobody can lock the file that is going away
        // and think it holds the lock (see `acquire`).
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_may_lock_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let first = FileLock::acquire(&path, "movie.mkv").unwrap();
        let err = FileLock::acquire(&path, "movie.mkv").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "movie.mkv is already being downloaded by process {}",
                std::process::id()
            )),
            "{text}"
        );
        assert!(text.contains("t.lock"), "{text}");
        drop(first);
        assert!(!path.exists(), "the lock file is removed");
        let again = FileLock::acquire(&path, "movie.mkv").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(again);
    }

    #[test]
    fn a_lock_file_left_behind_unlocked_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        fs::write(&path, "999999999").unwrap();
        let lock = FileLock::acquire(&path, "x").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
    }
}
