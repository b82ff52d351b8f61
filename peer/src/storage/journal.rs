//! The written-pieces journal: which pieces may have been written since the last
//! checkpoint.
//!
//! Before a verified piece's bytes go to the data files, its index is appended to this
//! file (one `write` of 8 bytes, not synced). After the process is killed the page cache
//! still holds it, so on the next open exactly the pieces written since the last
//! checkpoint are re-hashed, and the journal explains why the data files' modification
//! times changed. After a power cut the journal may have lost records: a piece it forgot
//! is then simply downloaded again, and a file whose change it cannot explain has its
//! pieces re-hashed. The journal is emptied after each checkpoint.
//!
//! A record is the piece index (`u32`, little-endian) and the first 4 bytes of the keyed
//! BLAKE3 hash of those 4 bytes, keyed with the info hash, so that damage or a record of
//! another torrent is skipped. A partial record at the end is ignored.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tracker::Bitfield;
use tracker::torrent::InfoHash;

use super::StorageError;

/// Bytes per record.
const RECORD_LEN: usize = 8;

/// The journal of one torrent, open for appending.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    key: [u8; 32],
}

impl Journal {
    /// Opens (creating it if needed) the journal at `path` and reads the pieces recorded
    /// in it, ignoring damaged records and pieces past `piece_count`.
    pub(crate) fn open(
        path: &Path,
        info_hash: InfoHash,
        piece_count: u32,
    ) -> Result<(Journal, Bitfield), StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(StorageError::io_with("opening", path))?;
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            key: *info_hash.as_bytes(),
        };
        let written = journal
            .read(piece_count)
            .map_err(StorageError::io_with("reading", path))?;
        Ok((journal, written))
    }

    /// Reads every valid record, in bounded memory.
    fn read(&self, piece_count: u32) -> io::Result<Bitfield> {
        let mut written = Bitfield::new(piece_count);
        let mut reader = io::BufReader::with_capacity(64 << 10, &self.file);
        let mut record = [0u8; RECORD_LEN];
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let index = [record[0], record[1], record[2], record[3]];
            if record[4..] == self.check(index) {
                written.set(u32::from_le_bytes(index));
            }
        }
        Ok(written)
    }

    fn check(&self, index: [u8; 4]) -> [u8; 4] {
        let hash = blake3::keyed_hash(&self.key, &index);
        let b = hash.as_bytes();
        [b[0], b[1], b[2], b[3]]
    }

    /// Records that `piece` is about to be written.
    pub(crate) fn record(&self, piece: u32) -> Result<(), StorageError> {
        let index = piece.to_le_bytes();
        let mut record = [0u8; RECORD_LEN];
        record[..4].copy_from_slice(&index);
        record[4..].copy_from_slice(&self.check(index));
        // One write of the whole record: appends from several threads never interleave.
        (&self.file)
            .write_all(&record)
            .map_err(StorageError::io_with("writing", &self.path))
    }

    /// Forgets every record (after a checkpoint made them redundant).
    pub(crate) fn reset(&self) -> Result<(), StorageError> {
        self.file
            .set_len(0)
            .map_err(StorageError::io_with("truncating", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_damage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let hash = InfoHash::from_bytes([3; 32]);
        let (journal, written) = Journal::open(&path, hash, 100).unwrap();
        assert_eq!(written.count(), 0);
        for piece in [5, 99, 7, 5, 1000] {
            journal.record(piece).unwrap();
        }
        drop(journal);
        // A damaged record and a torn tail.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8 + 5] ^= 1;
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let (journal, written) = Journal::open(&path, hash, 100).unwrap();
        assert_eq!(written.ones().collect::<Vec<_>>(), vec![5, 7]);
        // Another torrent's key makes every record invalid.
        let (_, foreign) = Journal::open(&path, InfoHash::from_bytes([4; 32]), 100).unwrap();
        assert_eq!(foreign.count(), 0);
        journal.reset().unwrap();
        journal.record(3).unwrap();
        let (_, written) = Journal::open(&path, hash, 100).unwrap();
        assert_eq!(written.ones().collect::<Vec<_>>(), vec![3]);
    }
}
