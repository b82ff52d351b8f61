//! Which held pieces can be served without hashing them again: those checked against
//! their hash a short while ago whose files nobody else has changed since.
//!
//! A piece is hashed when it is written, and every read used to hash it again, to catch
//! bytes changed on disk behind the store's back. In a swarm every piece is read once per
//! neighbour it is served to, so that second hash was half of a peer's BLAKE3 time. Now a
//! read hashes only when it cannot tell that the bytes are those that were checked:
//!
//! * Each data file has a *run*: a version of the file (see [`FileVersion`]) and when the
//!   run began. A run goes on while the file changes only by this store's own writes:
//!   each write sees the run's version before it and records the version after it. Any
//!   other change (an editor, a truncation, a restored modification time: all change the
//!   change time, which nobody can set back) shows as a version the run does not know,
//!   and the next write or hashed read starts a new run from then.
//! * While this store writes a file, the file's version moves under every reader: a
//!   read then trusts the run if the write began in it (the version it sees may be the
//!   write's own; this store never writes the bytes of a piece it holds), and leaves
//!   the run to the writer. (Without this, readers took the store's own writes for
//!   changes by others: in a 4-leecher swarm of 1 GiB, 85 % of reads hashed.)
//! * A piece is trusted when it was checked (written, or hashed when read) during the
//!   runs its files are in now, less than a set time ago (see
//!   [`StoreOptions::reverify_after`](super::StoreOptions::reverify_after)), so that
//!   faults of the disk itself, under files that look unchanged, are still found within
//!   minutes.
//!
//! Where this can miss a change: a write by another process that lands while this store
//! itself writes the same file (between its two looks at the version) is taken for part
//! of its own write; and on kernels without fine-grained timestamps (Linux before 6.13),
//! a change within the same clock tick as the store's last look at the file can leave
//! its times unchanged. Both windows are a fraction of a millisecond per write, the
//! periodic re-verification bounds how long such a piece is served, and every receiver
//! verifies every piece anyway.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// What a data file is and when it last changed: device and inode, length, and the
/// modification and change times to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileVersion {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileVersion {
    pub(crate) fn of(metadata: &Metadata) -> FileVersion {
        FileVersion {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// A file's version as this store last saw it, after a run of changes that were all its
/// own since `since`.
#[derive(Debug, Clone, Copy)]
struct Run {
    version: FileVersion,
    since: Instant,
}

/// The versions of one piece's files, by file number, as looked at once (`None`: the
/// look failed).
pub(crate) type Versions = [(usize, Option<FileVersion>)];

/// The runs of a torrent's files and when each piece was last checked.
#[derive(Debug)]
pub(crate) struct Checked {
    runs: Vec<Option<Run>>,
    /// For each file this store is writing now: whether the write began in the file's
    /// run (its version before the write was the run's).
    writing: Vec<Option<bool>>,
    checked_at: Vec<Option<Instant>>,
    fresh_for: Duration,
}

impl Checked {
    /// No runs and nothing checked, for `files` files and `pieces` pieces; a check counts
    /// for `fresh_for`.
    pub(crate) fn new(files: usize, pieces: u32, fresh_for: Duration) -> Self {
        Checked {
            runs: vec![None; files],
            writing: vec![None; files],
            checked_at: vec![None; pieces as usize],
            fresh_for,
        }
    }

    /// This store begins a write to files that have versions `before`.
    pub(crate) fn writing(&mut self, before: &Versions) {
        for &(file, before) in before {
            let run = self.runs.get(file).copied().flatten();
            if let Some(slot) = self.writing.get_mut(file) {
                *slot = Some(run.is_some_and(|run| Some(run.version) == before));
            }
        }
    }

    /// The version of `file` may be this store's own: it is looking at `version`, or is
    /// writing the file, having begun in the run.
    fn in_run(&self, file: usize, version: Option<FileVersion>) -> Option<Run> {
        let run = self.runs.get(file).copied().flatten()?;
        let own =
            Some(run.version) == version || self.writing.get(file).copied().flatten() == Some(true);
        own.then_some(run)
    }

    /// Whether `piece`'s bytes, read while its files had `versions` (looked at after the
    /// read), are those it was checked with.
    pub(crate) fn trusts(&self, piece: u32, versions: &Versions, now: Instant) -> bool {
        let Some(Some(at)) = self.checked_at.get(piece as usize).copied() else {
            return false;
        };
        now.saturating_duration_since(at) < self.fresh_for
            && versions.iter().all(|&(file, version)| {
                self.in_run(file, version).is_some_and(|run| at > run.since)
            })
    }

    /// `piece` was read from `started`, between looks at its files that found `before`
    /// and `after`, and matched its hash at `now`. Recorded only if nothing changed
    /// during the read; a file found in a version its run does not know, while this
    /// store is not writing it, starts a new run from `started` (so pieces checked before
    /// no longer count).
    pub(crate) fn read_matched(
        &mut self,
        piece: u32,
        before: &Versions,
        after: &Versions,
        started: Instant,
        now: Instant,
    ) {
        if before != after {
            return;
        }
        let mut all_in_run = true;
        for &(file, version) in after {
            if self.writing.get(file).copied().flatten().is_some() {
                // The writer records the file's next version.
                all_in_run &= self.in_run(file, version).is_some();
            } else {
                all_in_run &= self.follow(file, version, version, started);
            }
        }
        self.set_checked(piece, all_in_run.then_some(now));
    }

    /// This store wrote `piece` (verified; `None` if the write failed part way) from
    /// `started`, to files that had versions `before` and have `after`; it is checked as
    /// of `now`. A file whose version before is its run's goes on in that run; any other
    /// starts a new one.
    pub(crate) fn wrote(
        &mut self,
        piece: Option<u32>,
        before: &Versions,
        after: &Versions,
        started: Instant,
        now: Instant,
    ) {
        let mut all_in_run = true;
        for (&(file, before), &(_, after)) in before.iter().zip(after) {
            if let Some(slot) = self.writing.get_mut(file) {
                *slot = None;
            }
            all_in_run &= self.follow(file, before, after, started);
        }
        if let Some(piece) = piece {
            self.set_checked(piece, all_in_run.then_some(now));
        }
    }

    /// `piece` is no longer held: a later read hashes it.
    pub(crate) fn forget(&mut self, piece: u32) {
        if let Some(at) = self.checked_at.get_mut(piece as usize) {
            *at = None;
        }
    }

    /// Moves `file`'s run from version `before` to `after` (a change that began at
    /// `started`): the run goes on if `before` was its version (or `after` already is),
    /// and starts anew at `started` otherwise. Returns whether the file has a run.
    fn follow(
        &mut self,
        file: usize,
        before: Option<FileVersion>,
        after: Option<FileVersion>,
        started: Instant,
    ) -> bool {
        let Some(slot) = self.runs.get_mut(file) else {
            return false;
        };
        *slot = match (*slot, before, after) {
            (_, _, None) => None,
            (Some(run), _, Some(after)) if run.version == after => Some(run),
            (Some(run), Some(before), Some(after)) if run.version == before => Some(Run {
                version: after,
                since: run.since,
            }),
            (_, _, Some(after)) => Some(Run {
                version: after,
                since: started,
            }),
        };
        slot.is_some()
    }

    fn set_checked(&mut self, piece: u32, at: Option<Instant>) {
        if let Some(slot) = self.checked_at.get_mut(piece as usize) {
            *slot = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ctime: i64) -> Option<FileVersion> {
        Some(FileVersion {
            dev: 1,
            ino: 2,
            len: 100,
            mtime: (5, 0),
            ctime: (ctime, 0),
        })
    }

    fn at(file: usize, ctime: i64) -> Vec<(usize, Option<FileVersion>)> {
        vec![(file, version(ctime))]
    }

    const FRESH: Duration = Duration::from_secs(600);

    #[test]
    fn a_piece_is_trusted_while_its_file_changes_only_by_this_stores_writes() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(1, 4, FRESH);
        assert!(!c.trusts(0, &at(0, 1), t0), "never checked");
        c.wrote(Some(0), &at(0, 1), &at(0, 2), t0, t0 + s);
        assert!(c.trusts(0, &at(0, 2), t0 + 2 * s));
        // Another write of this store: piece 0 is still trusted, and piece 1 too.
        c.wrote(Some(1), &at(0, 2), &at(0, 3), t0 + 3 * s, t0 + 4 * s);
        assert!(c.trusts(0, &at(0, 3), t0 + 5 * s));
        assert!(c.trusts(1, &at(0, 3), t0 + 5 * s));
        assert!(!c.trusts(0, &at(0, 2), t0 + 5 * s), "an older version");
    }

    #[test]
    fn a_change_by_someone_else_makes_every_earlier_check_void() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(1, 4, FRESH);
        c.wrote(Some(0), &at(0, 1), &at(0, 2), t0, t0 + s);
        // Someone changed the file (version 7): not trusted, and our next write starts a
        // new run, in which only what is checked from now on counts.
        assert!(!c.trusts(0, &at(0, 7), t0 + 2 * s));
        c.wrote(Some(1), &at(0, 7), &at(0, 8), t0 + 3 * s, t0 + 4 * s);
        assert!(c.trusts(1, &at(0, 8), t0 + 5 * s));
        assert!(
            !c.trusts(0, &at(0, 8), t0 + 5 * s),
            "checked before the change"
        );
        // Piece 0 hashed again when read: trusted again.
        c.read_matched(0, &at(0, 8), &at(0, 8), t0 + 6 * s, t0 + 7 * s);
        assert!(c.trusts(0, &at(0, 8), t0 + 8 * s));
    }

    #[test]
    fn while_this_store_writes_a_file_readers_trust_the_run_and_leave_it_alone() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(1, 4, FRESH);
        c.wrote(Some(0), &at(0, 1), &at(0, 2), t0, t0 + s);
        // A write begins in the run; readers see its version move.
        c.writing(&at(0, 2));
        assert!(c.trusts(0, &at(0, 3), t0 + 2 * s));
        c.read_matched(1, &at(0, 3), &at(0, 3), t0 + 2 * s, t0 + 3 * s);
        c.wrote(Some(2), &at(0, 2), &at(0, 3), t0 + 2 * s, t0 + 4 * s);
        for piece in [0, 1, 2] {
            assert!(c.trusts(piece, &at(0, 3), t0 + 5 * s), "piece {piece}");
        }
        // A write that began after someone else's change gives no such trust.
        c.writing(&at(0, 7));
        assert!(!c.trusts(0, &at(0, 8), t0 + 6 * s));
        c.wrote(None, &at(0, 7), &at(0, 8), t0 + 6 * s, t0 + 7 * s);
        assert!(!c.trusts(0, &at(0, 8), t0 + 8 * s));
        assert!(!c.trusts(3, &at(0, 8), t0 + 8 * s), "never checked");
    }

    #[test]
    fn a_read_during_a_change_records_nothing() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(1, 4, FRESH);
        c.read_matched(0, &at(0, 1), &at(0, 2), t0, t0 + s);
        assert!(!c.trusts(0, &at(0, 2), t0 + 2 * s));
    }

    #[test]
    fn a_check_counts_only_for_the_fresh_time_and_until_forgotten() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(1, 4, FRESH);
        c.read_matched(2, &at(0, 1), &at(0, 1), t0, t0 + s);
        assert!(c.trusts(2, &at(0, 1), t0 + FRESH));
        assert!(!c.trusts(2, &at(0, 1), t0 + s + FRESH));
        c.read_matched(2, &at(0, 1), &at(0, 1), t0 + 2 * s, t0 + 3 * s);
        c.forget(2);
        assert!(!c.trusts(2, &at(0, 1), t0 + 4 * s));
    }

    #[test]
    fn a_piece_across_files_needs_every_file_unchanged() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Checked::new(2, 4, FRESH);
        let both = |a, b| vec![(0, version(a)), (1, version(b))];
        c.wrote(Some(0), &both(1, 1), &both(2, 2), t0, t0 + s);
        assert!(c.trusts(0, &both(2, 2), t0 + 2 * s));
        assert!(!c.trusts(0, &both(2, 9), t0 + 2 * s));
        // A file that cannot be looked at ends its run.
        c.wrote(
            Some(1),
            &both(2, 2),
            &[(0, version(3)), (1, None)],
            t0 + 3 * s,
            t0 + 4 * s,
        );
        assert!(!c.trusts(1, &both(3, 2), t0 + 5 * s));
    }
}
