//! Crash test of the write-ahead log: a writer process is killed with SIGKILL
//! at random moments, many times over the same directory, and after every kill
//! each acknowledged record must come back intact.
//!
//! The writer is this test binary itself, re-executed to run the ignored test
//! `wal_writer_process`. It appends records whose length and bytes are derived
//! from their index, in random batches with one `sync` each, prints
//! `@@ACK <last index>` after each `sync` returns, and now and then saves a
//! snapshot and prints `@@SNAP <index>`; before each `sync` it prints
//! `@@SYNCING <batch bytes>`. The parent waits for a random number of those
//! lines (the lines are the synchronisation; a random delay of up to a few
//! milliseconds after them only spreads the kill points), kills the child,
//! reads any lines it printed before dying, reopens the log in-process and
//! checks: the snapshot is at least the last acknowledged one, the records
//! after it are contiguous with the right content, the last acknowledged index
//! is there, and a second open finds exactly the same log with nothing to cut.
//! Kills land during start-up and recovery, while a batch is appended, during
//! the long `write` of a multi-MiB batch (which the kernel may cut short at a
//! page-cache folio boundary, leaving a torn record), and during `fdatasync`.
//! Everything recovered then counts as acknowledged for later runs, which go on
//! in the same directory with other segment and buffer sizes.
//!
//! `WAL_CRASH_ITERS=N` sets the number of kills (default 50);
//! `WAL_CRASH_SEED=n` replays a run (the seed is printed).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paxos::wal::{Recovered, Wal, WalOptions};

/// Tells the writer process which directory to use.
const DIR_ENV: &str = "WAL_CRASH_WRITER_DIR";
/// Seeds the writer process's choices.
const SEED_ENV: &str = "WAL_CRASH_WRITER_SEED";
/// The writer's `segment_bytes`, `write_buffer_bytes` and `preallocate_bytes`,
/// comma-separated.
const OPTIONS_ENV: &str = "WAL_CRASH_WRITER_OPTIONS";
/// Marks the writer's protocol lines among the test harness's output.
const ACK: &str = "@@ACK ";
const SNAP: &str = "@@SNAP ";
const OPENING: &str = "@@OPENING";
const SYNCING: &str = "@@SYNCING ";
/// In kill mode 3 the kill comes as soon as `sync` starts writing a batch of at
/// least this many bytes in one `write` (the writer's buffer is 4 MiB then).
const BIG_WRITE: u64 = 1 << 20;
/// The writer stops by itself after this many batches.
const MAX_BATCHES: u64 = 5_000;

/// SplitMix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Fills `len` bytes from a generator seeded with `key`.
fn bytes_from(key: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(key);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The content of record `index`: 1 B to 64 KiB (mostly small), derived from
/// the index alone, so that any process can check it.
fn record_bytes(index: u64) -> Vec<u8> {
    let mut rng = Rng(index ^ 0xA5A5_5A5A_C3C3_3C3C);
    let len = match rng.below(100) {
        0..70 => 1 + rng.below(256),
        70..95 => 1 + rng.below(4096),
        _ => 1 + rng.below(64 << 10),
    };
    bytes_from(rng.next(), len as usize)
}

/// The content of a snapshot through `index`.
fn snapshot_bytes(index: u64) -> Vec<u8> {
    let mut rng = Rng(!index);
    let len = 1 + rng.below(4096);
    bytes_from(rng.next(), len as usize)
}

/// The writer process. Does nothing unless started by the crash test.
#[test]
#[ignore = "the writer process of wal_crash_keeps_every_acknowledged_record"]
fn wal_writer_process() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let mut rng = Rng(seed);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        // The parent is gone if this fails: stop.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    };
    say(OPENING.to_owned());
    let options: Vec<u64> = std::env::var(OPTIONS_ENV)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let options = WalOptions {
        segment_bytes: options[0],
        write_buffer_bytes: options[1] as usize,
        preallocate_bytes: options[2],
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(Path::new(&dir), options).expect("writer: open");
    for _ in 0..MAX_BATCHES {
        // Mostly small batches, sometimes a few MiB.
        let batch = if rng.below(4) == 0 {
            64 + rng.below(1024)
        } else {
            1 + rng.below(64)
        };
        let mut bytes = 0;
        for _ in 0..batch {
            let index = wal.next_index();
            let record = record_bytes(index);
            bytes += record.len() as u64 + 16;
            assert_eq!(wal.append(&record).unwrap(), index);
        }
        say(format!("{SYNCING}{bytes}"));
        wal.sync().expect("writer: sync");
        say(format!("{ACK}{}", wal.last_index()));
        if rng.below(20) == 0 {
            let last = wal.last_index();
            let back = rng.below((last - wal.snapshot_index()).min(300) + 1);
            let index = last - back;
            wal.save_snapshot(index, &snapshot_bytes(index))
                .expect("writer: snapshot");
            say(format!("{SNAP}{index}"));
        }
    }
}

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if the test fails while it runs.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the writer has acknowledged so far.
#[derive(Default)]
struct Acked {
    /// The highest acknowledged record index.
    record: u64,
    /// The highest acknowledged snapshot index.
    snapshot: u64,
}

impl Acked {
    /// Takes note of one line of the writer's output; true for an ack.
    fn note(&mut self, line: &str) -> bool {
        let number = |marker: &str| -> Option<u64> {
            let rest = &line[line.find(marker)? + marker.len()..];
            Some(
                rest.split_whitespace()
                    .next()?
                    .parse()
                    .expect("bad ack line"),
            )
        };
        if let Some(index) = number(ACK) {
            assert!(index >= self.record, "acks went backwards: {line}");
            self.record = index;
            true
        } else if let Some(index) = number(SNAP) {
            self.snapshot = self.snapshot.max(index);
            false
        } else {
            false
        }
    }
}

/// The batch size in a `@@SYNCING <bytes>` line.
fn syncing_bytes(line: &str) -> Option<u64> {
    let rest = &line[line.find(SYNCING)? + SYNCING.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Checks a recovered log against everything acknowledged; returns the index
/// of the last surviving record.
fn check(recovered: &Recovered, acked: &Acked, context: &str) -> u64 {
    let snapshot_index = match &recovered.snapshot {
        Some((index, data)) => {
            assert_eq!(
                *data,
                snapshot_bytes(*index),
                "{context}: snapshot {index} has wrong content"
            );
            *index
        }
        None => 0,
    };
    assert!(
        snapshot_index >= acked.snapshot,
        "{context}: acknowledged snapshot {} lost (found {snapshot_index})",
        acked.snapshot
    );
    for (k, (index, data)) in recovered.records.iter().enumerate() {
        assert_eq!(
            *index,
            snapshot_index + 1 + k as u64,
            "{context}: records not contiguous after snapshot {snapshot_index}"
        );
        assert!(
            *data == record_bytes(*index),
            "{context}: record {index} has wrong content ({} bytes)",
            data.len()
        );
    }
    let last = recovered.records.last().map_or(snapshot_index, |r| r.0);
    assert!(
        last >= acked.record,
        "{context}: acknowledged record {} lost: the log ends at {last}",
        acked.record
    );
    last
}

#[test]
fn wal_crash_keeps_every_acknowledged_record() {
    let iters: u64 = std::env::var("WAL_CRASH_ITERS")
        .map(|v| v.parse().expect("WAL_CRASH_ITERS"))
        .unwrap_or(50);
    let seed: u64 = std::env::var("WAL_CRASH_SEED")
        .map(|v| v.parse().expect("WAL_CRASH_SEED"))
        .unwrap_or_else(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("wal_crash: seed {seed} (WAL_CRASH_SEED={seed} replays), {iters} kills");
    let dir = Scratch(std::env::temp_dir().join(format!(
        "bytetorrent-wal-crash-{}-{seed}",
        std::process::id()
    )));
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(seed);
    let mut acked = Acked::default();
    let started = Instant::now();
    let (mut torn_tails, mut removed_segments, mut unacked_survivors, mut snapshots) =
        (0u64, 0u64, 0u64, 0u64);

    for iter in 0..iters {
        let context = format!("seed {seed}, kill {iter}");
        // Where to kill: 0 during start-up and recovery; 1 right after an ack
        // (while the next batch is being appended, maybe written); 2 a little
        // after an ack; 3 right as `sync` starts one long write of a batch.
        let mode = rng.below(4);
        // Small segments, so that roll-over and snapshot cleanup happen often.
        // Small write buffers make appends write unsynced data; a large one
        // makes `sync` write a whole batch at once.
        let segment_bytes = match mode {
            3 => 16 << 20,
            _ => [64 << 10, 256 << 10, 1 << 20][rng.below(3) as usize],
        };
        let write_buffer_bytes = match mode {
            3 => 4 << 20,
            _ => [4 << 10, 64 << 10, 4 << 20][rng.below(3) as usize],
        };
        let wait_acks = match mode {
            0 => 0,
            3 => 1 + rng.below(3),
            _ => 1 + rng.below(8),
        };
        // Files that grow with every write, or that are zero-filled ahead of
        // the records (so a kill leaves records, maybe a torn one, then zeros).
        let preallocate_bytes = [0, 4 << 10, 1 << 20][rng.below(3) as usize];
        let delay = Duration::from_micros(match mode {
            0 | 2 => rng.below(2_000),
            3 => rng.below(1_000),
            _ => 0,
        });

        let child = Command::new(&exe)
            .args([
                "wal_writer_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, &dir.0)
            .env(SEED_ENV, rng.next().to_string())
            .env(
                OPTIONS_ENV,
                format!("{segment_bytes},{write_buffer_bytes},{preallocate_bytes}"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the writer");
        let mut writer = Writer(child);
        let mut lines = BufReader::new(writer.0.stdout.take().unwrap()).lines();
        let mut next_line = |writer: &mut Writer| match lines.next() {
            Some(Ok(line)) => line,
            _ => {
                let _ = writer.0.wait();
                let mut err = String::new();
                let _ = writer.0.stderr.take().unwrap().read_to_string(&mut err);
                panic!("{context}: the writer exited early:\n{err}");
            }
        };
        if wait_acks == 0 {
            while !next_line(&mut writer).contains(OPENING) {}
        }
        let mut seen = 0;
        while seen < wait_acks {
            let line = next_line(&mut writer);
            let is_ack = acked.note(&line);
            let event = if mode == 3 {
                syncing_bytes(&line).is_some_and(|b| b >= BIG_WRITE)
            } else {
                is_ack
            };
            if event {
                seen += 1;
            }
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        writer.0.kill().expect("SIGKILL the writer");
        writer.0.wait().unwrap();
        // Lines printed before the kill landed are acknowledgements too.
        for line in lines.map_while(Result::ok) {
            acked.note(&line);
        }
        drop(writer);

        let (wal, recovered) = Wal::open(&dir.0, WalOptions::default())
            .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
        let last = check(&recovered, &acked, &context);
        assert_eq!(wal.next_index(), last + 1, "{context}");
        torn_tails += recovered
            .cut_tails
            .iter()
            .filter(|c| !c.segment_removed)
            .count() as u64;
        removed_segments += recovered
            .cut_tails
            .iter()
            .filter(|c| c.segment_removed)
            .count() as u64;
        unacked_survivors += u64::from(last > acked.record);
        snapshots += u64::from(recovered.snapshot.is_some());
        drop(wal);

        // Recovery left nothing behind the last record: a second open finds
        // exactly the same log and nothing to cut.
        let (_, again) = Wal::open(&dir.0, WalOptions::default())
            .unwrap_or_else(|e| panic!("{context}: second recovery failed: {e}"));
        assert!(
            again.cut_tails.is_empty(),
            "{context}: {:?}",
            again.cut_tails
        );
        assert_eq!(
            again,
            Recovered {
                cut_tails: Vec::new(),
                ..recovered
            },
            "{context}"
        );

        // What recovery returned is durable now: later runs must keep it.
        acked.record = last;
    }
    eprintln!(
        "wal_crash: {iters} kills in {:.1?}: {} records acknowledged, {torn_tails} torn tails cut, \
         {removed_segments} half-created segments removed, {unacked_survivors} recoveries with \
         unacknowledged records, {snapshots} recoveries from a snapshot",
        started.elapsed(),
        acked.record
    );
    // About half the kills land between a batch's first write and the end of
    // its fdatasync; make sure the run really exercised that.
    assert!(
        iters < 20 || torn_tails + unacked_survivors > 0,
        "seed {seed}: no kill landed while a batch was being written"
    );
}
