//! The resume file: which pieces were verified and made durable at the last checkpoint,
//! and what the data files looked like then.
//!
//! See the [module docs](super) for the byte layout. The file is replaced atomically
//! (temporary file, fsync, rename, fsync of the directory), so a crash leaves either the
//! old or the new one; the checksum catches anything else (a disk that lies, a person
//! editing it), and any file that fails a check is ignored as a whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use tracker::Bitfield;
use tracker::torrent::{InfoHash, Torrent};

use super::StorageError;

/// The first 8 bytes of a resume file: ASCII `BTRESUME`.
pub const RESUME_MAGIC: [u8; 8] = *b"BTRESUME";

/// The resume-file version this implementation reads and writes.
pub const RESUME_VERSION: u16 = 1;

/// Magic, version and body length.
const HEADER_LEN: usize = RESUME_MAGIC.len() + 2 + 4;

/// Bytes of the trailing BLAKE3 checksum.
const CHECKSUM_LEN: usize = 32;

/// Largest resume file read: 32 MiB. A torrent has at most 100,000 files (about 25 bytes
/// each here) and about 500,000 pieces (one bit each), so a real one is a few MiB at most;
/// the limit keeps a damaged or planted file from claiming unbounded memory.
const MAX_RESUME_LEN: u64 = 32 << 20;

/// What a data file looked like: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileStamp {
    /// Length in bytes.
    pub(crate) len: u64,
    /// Modification time as seconds and nanoseconds since the Unix epoch; `None` where the
    /// file system has none or it is before the epoch.
    pub(crate) mtime: Option<(u64, u32)>,
}

impl FileStamp {
    /// The stamp of a file from its metadata.
    pub(crate) fn of(metadata: &fs::Metadata) -> FileStamp {
        let mtime = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| (d.as_secs(), d.subsec_nanos()));
        FileStamp {
            len: metadata.len(),
            mtime,
        }
    }

    /// The stamp for a time, for tests.
    #[cfg(test)]
    pub(crate) fn at(len: u64, time: std::time::SystemTime) -> FileStamp {
        let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        FileStamp {
            len,
            mtime: Some((d.as_secs(), d.subsec_nanos())),
        }
    }
}

/// The content of a resume file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resume {
    /// The torrent it belongs to.
    pub(crate) info_hash: InfoHash,
    /// The pieces verified and durable when it was written.
    pub(crate) have: Bitfield,
    /// Every data file's stamp after its data was synced, in the torrent's file order.
    pub(crate) files: Vec<FileStamp>,
}

/// The outcome of reading a resume file.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// There is none.
    Missing,
    /// A valid one for this torrent.
    Valid(Resume),
    /// One that failed a check, and why.
    Invalid(String),
}

/// The bytes of a resume file.
pub(crate) fn encode(resume: &Resume) -> Vec<u8> {
    // Encoding plain structs of integers and byte strings into a Vec cannot fail.
    frame(&rmp_serde::to_vec_named(resume).unwrap_or_default())
}

/// A resume file around `body`: the header, the body, the checksum.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(&RESUME_MAGIC);
    out.extend_from_slice(&RESUME_VERSION.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// Checks and decodes a resume file's bytes for `torrent`; the error says, for people,
/// which check failed.
pub(crate) fn decode(bytes: &[u8], torrent: &Torrent) -> Result<Resume, String> {
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(format!("it is too short ({} bytes)", bytes.len()));
    }
    if bytes[..8] != RESUME_MAGIC {
        return Err("it is not a resume file (wrong magic)".into());
    }
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    if version != RESUME_VERSION {
        return Err(format!(
            "it has format version {version}, this program reads version {RESUME_VERSION}"
        ));
    }
    let body_len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
    if bytes.len() != HEADER_LEN + body_len + CHECKSUM_LEN {
        return Err(format!(
            "its length ({} bytes) does not match its header (body of {body_len} bytes): \
             it was truncated or extended",
            bytes.len()
        ));
    }
    let (content, checksum) = bytes.split_at(HEADER_LEN + body_len);
    if blake3::hash(content).as_bytes() != checksum {
        return Err("its checksum does not match: it is damaged".into());
    }
    let resume: Resume = rmp_serde::from_slice(&content[HEADER_LEN..])
        .map_err(|e| format!("its content does not decode: {e}"))?;
    if resume.info_hash != torrent.info_hash() {
        return Err(format!(
            "it belongs to another torrent ({})",
            resume.info_hash
        ));
    }
    if resume.have.len() != torrent.piece_count() {
        return Err(format!(
            "it lists {} pieces, the torrent has {}",
            resume.have.len(),
            torrent.piece_count()
        ));
    }
    if resume.files.len() != torrent.files().len() {
        return Err(format!(
            "it lists {} files, the torrent has {}",
            resume.files.len(),
            torrent.files().len()
        ));
    }
    Ok(resume)
}

/// Reads the resume file at `path` for `torrent`.
///
/// A missing file is [`Loaded::Missing`]; one that cannot be read or fails a check is
/// [`Loaded::Invalid`]: the caller then trusts nothing and re-verifies what is on disk.
pub(crate) fn load(path: &Path, torrent: &Torrent) -> Loaded {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => return Loaded::Invalid(format!("it cannot be opened: {e}")),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_RESUME_LEN + 1).read_to_end(&mut bytes) {
        return Loaded::Invalid(format!("it cannot be read: {e}"));
    }
    if bytes.len() as u64 > MAX_RESUME_LEN {
        return Loaded::Invalid(format!("it is larger than {MAX_RESUME_LEN} bytes"));
    }
    match decode(&bytes, torrent) {
        Ok(resume) => Loaded::Valid(resume),
        Err(reason) => Loaded::Invalid(reason),
    }
}

/// Replaces the resume file at `path` atomically and durably: writes a temporary file
/// beside it, fsyncs it, renames it over `path` and fsyncs the directory.
pub(crate) fn store(path: &Path, resume: &Resume) -> Result<(), StorageError> {
    let tmp = tmp_path(path);
    let bytes = encode(resume);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StorageError::io_with("creating", &tmp))?;
    file.write_all(&bytes)
        .map_err(StorageError::io_with("writing", &tmp))?;
    file.sync_all()
        .map_err(StorageError::io_with("syncing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(StorageError::io_with("renaming into place", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Where a new resume file is written before it is renamed over `path`.
pub(crate) fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a directory's entries (created and renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StorageError::io_with("syncing directory", dir))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracker::torrent::{FileEntry, Fingerprint, Info, MIN_PIECE_LENGTH};

    fn torrent(name: &str) -> Torrent {
        let info = Info {
            name: name.into(),
            piece_length: MIN_PIECE_LENGTH,
            files: vec![FileEntry {
                path: vec![],
                length: 40_000,
            }],
            pieces: vec![0; 3 * 32],
        };
        Torrent::new(
            info,
            vec!["192.0.2.1:7000".parse().unwrap()],
            Fingerprint::from_bytes([1; 32]),
            0,
            None,
        )
        .unwrap()
    }

    fn resume(t: &Torrent) -> Resume {
        let mut have = Bitfield::new(3);
        have.set(1);
        Resume {
            info_hash: t.info_hash(),
            have,
            files: vec![FileStamp::at(40_000, std::time::SystemTime::now())],
        }
    }

    #[test]
    fn round_trips() {
        let t = torrent("a");
        let r = resume(&t);
        assert_eq!(decode(&encode(&r), &t).unwrap(), r);
    }

    #[test]
    fn every_damage_is_refused_with_a_reason() {
        let t = torrent("a");
        let bytes = encode(&resume(&t));
        // Every single-byte change and every truncation is caught; none panics.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, &t).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i], &t).is_err(), "cut at {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode(&longer, &t)
                .unwrap_err()
                .contains("truncated or extended")
        );
        let other = torrent("b");
        assert!(
            decode(&bytes, &other)
                .unwrap_err()
                .contains("another torrent")
        );
    }

    #[test]
    fn a_resume_with_the_wrong_piece_count_is_refused() {
        let t = torrent("a");
        let mut r = resume(&t);
        r.have = Bitfield::new(4);
        assert!(decode(&encode(&r), &t).unwrap_err().contains("4 pieces"));
        let mut r = resume(&t);
        r.files.push(r.files[0]);
        assert!(decode(&encode(&r), &t).unwrap_err().contains("2 files"));
    }

    #[test]
    fn store_replaces_and_load_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.resume");
        let t = torrent("a");
        assert!(matches!(load(&path, &t), Loaded::Missing));
        let mut r = resume(&t);
        store(&path, &r).unwrap();
        r.have.set(2);
        store(&path, &r).unwrap();
        assert!(matches!(load(&path, &t), Loaded::Valid(got) if got == r));
        assert!(!tmp_path(&path).exists());
        fs::write(&path, b"garbage").unwrap();
        assert!(matches!(load(&path, &t), Loaded::Invalid(_)));
    }
}
