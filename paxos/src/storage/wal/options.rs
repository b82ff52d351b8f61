//! Tuning of the write-ahead log: [`WalOptions`].

#[cfg(doc)]
use super::Wal;
use super::WalError;

/// The largest record size [`WalOptions::max_record_bytes`] may be set to.
pub const MAX_RECORD_BYTES_LIMIT: usize = 1 << 30;

/// Tuning for a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when the next record would make the active
    /// one larger than this. Default 64 MiB: big enough that starting a
    /// segment (an extra `fdatasync`, a file creation and a directory fsync)
    /// is rare, small enough that a snapshot soon frees disk space, since only
    /// whole segments behind the snapshot are deleted.
    pub segment_bytes: u64,
    /// The largest payload [`Wal::append`] accepts. Default 64 MiB: far above
    /// any paxos record (a batch of commands), yet it keeps one record within
    /// one default-sized segment. At most [`MAX_RECORD_BYTES_LIMIT`].
    pub max_record_bytes: usize,
    /// Appended records are handed to the OS (without `fdatasync`) once this
    /// many bytes are buffered, so a huge group commit does not hold
    /// everything in memory until [`Wal::sync`]. Default 1 MiB: large writes
    /// are efficient, and the memory is negligible.
    pub write_buffer_bytes: usize,
    /// The active segment is kept zero-filled this many bytes beyond its last
    /// record (never beyond `segment_bytes`), so that appending overwrites
    /// blocks that already exist and `fdatasync` has no file-size change to
    /// commit. Default 1 MiB: measured on ext4 here, a 4 KiB append plus
    /// `fdatasync` takes 0.22 ms when it grows the file and 0.14 ms when it
    /// does not, while writing and syncing 1 MiB of zeros takes about 1 ms,
    /// once per MiB of log (4 MiB took 15 ms, long enough to show in a
    /// commit's tail latency). 0 turns preallocation off: the file then grows
    /// with every write.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            max_record_bytes: 64 << 20,
            write_buffer_bytes: 1 << 20,
            preallocate_bytes: 1 << 20,
        }
    }
}

impl WalOptions {
    /// Refuses options the log cannot work with.
    pub(super) fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes == 0 {
            return Err(WalError::InvalidOptions("segment_bytes must be positive"));
        }
        if self.max_record_bytes > MAX_RECORD_BYTES_LIMIT {
            return Err(WalError::InvalidOptions(
                "max_record_bytes exceeds MAX_RECORD_BYTES_LIMIT",
            ));
        }
        Ok(())
    }
}
