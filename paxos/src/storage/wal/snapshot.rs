//! The snapshot file: `[magic 8][version u32][crc u32][index u64][len u64][data]`.
//!
//! The CRC-32 covers the index, the length and the data. A snapshot is written
//! to [`SNAPSHOT_TMP`], fsynced, renamed over [`SNAPSHOT_FILE`], and then the
//! directory is fsynced, so the file is always either the old snapshot or the
//! new one, whole.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use super::MAX_INDEX;
use super::error::{WalError, io_err};
use super::segment::sync_dir;

/// The current snapshot's file name.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
/// The file name a new snapshot is written under before it is renamed.
pub(crate) const SNAPSHOT_TMP: &str = "snapshot.tmp";
/// Magic bytes at the start of a snapshot file.
const SNAPSHOT_MAGIC: [u8; 8] = *b"BTWALSNP";
/// The snapshot format version.
const SNAPSHOT_VERSION: u32 = 1;
/// Bytes before the snapshot data.
const SNAPSHOT_HEADER_LEN: usize = 32;

fn checksum(index: u64, data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(&(data.len() as u64).to_le_bytes());
    hasher.update(data);
    hasher.finalize()
}

/// Atomically replaces the snapshot in `dir`.
pub(crate) fn write_snapshot(dir: &Path, index: u64, data: &[u8]) -> Result<(), WalError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let dst = dir.join(SNAPSHOT_FILE);
    let mut header = [0u8; SNAPSHOT_HEADER_LEN];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&checksum(index, data).to_le_bytes());
    header[16..24].copy_from_slice(&index.to_le_bytes());
    header[24..32].copy_from_slice(&(data.len() as u64).to_le_bytes());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(&header).map_err(io_err("write", &tmp))?;
    file.write_all(data).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &dst).map_err(io_err("rename snapshot into place", &dst))?;
    sync_dir(dir)
}

/// Reads and verifies the snapshot in `dir`, if there is one.
pub(crate) fn read_snapshot(dir: &Path) -> Result<Option<(u64, Vec<u8>)>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    let buf = match fs::read(&path) {
        Ok(buf) => buf,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let corrupt = |reason: String| WalError::CorruptSnapshot {
        file: path.clone(),
        reason,
    };
    if buf.len() < SNAPSHOT_HEADER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than its {SNAPSHOT_HEADER_LEN}-byte header",
            buf.len()
        )));
    }
    if buf[0..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("bad snapshot magic".to_owned()));
    }
    let u32_at = |pos: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&buf[pos..pos + 4]);
        u32::from_le_bytes(b)
    };
    let u64_at = |pos: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[pos..pos + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32_at(8);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!("unsupported snapshot version {version}")));
    }
    let crc = u32_at(12);
    let index = u64_at(16);
    let len = u64_at(24);
    let data = &buf[SNAPSHOT_HEADER_LEN..];
    if len != data.len() as u64 {
        return Err(corrupt(format!(
            "header says {len} data bytes, file holds {}",
            data.len()
        )));
    }
    if checksum(index, data) != crc {
        return Err(corrupt("snapshot checksum mismatch".to_owned()));
    }
    if index >= MAX_INDEX {
        return Err(corrupt(format!(
            "snapshot index {index} is past the largest index a log can have"
        )));
    }
    Ok(Some((index, data.to_vec())))
}

/// Removes a temporary snapshot left by a crash during
/// [`write_snapshot`], if any.
pub(crate) fn remove_stale_tmp(dir: &Path) -> Result<(), WalError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &tmp)(e)),
    }
}
