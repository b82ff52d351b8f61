//! Coverage-guided fuzzing of every decoder of ByteTorrent that reads bytes from outside:
//! frames and the messages they carry (peer, tracker, Paxos, key-value), Paxos messages
//! delivered into real replicas, torrent files, the write-ahead log (records, segments, a
//! whole log directory) and what the file storage decodes from it, state machine
//! snapshots, a peer's resume and status files, and the tracker web site's forms, JSON
//! bodies and uploads.
//!
//! * [`targets`]: one function per fuzz target, each named like the target
//!   (`fuzz_targets/NAME.rs` is a one-line call of it). Each says how it reads its input
//!   and what it asserts: never a panic, a round trip where the format allows one, and
//!   an error (never a panic) for what is refused.
//! * [`fixtures`]: the values a target checks against (the torrents a resume file belongs
//!   to), shared with the seed generator.
//! * [`input`]: the small framing some targets use to carry several byte strings in one
//!   input.
//! * [`kv`]: the key-value example's state machine and protocols, from its sources.
//! * [`web`]: the tracker web site's upload page of a one-node cluster in this process,
//!   and the multipart bodies the `web_upload` target sends it.
//! * [`cluster`]: three real Paxos replicas driven step by step, into which the
//!   `paxos_replica` target delivers messages of its own.
//!
//! The seed corpus in `fuzz/seeds/TARGET/` is made from real encodings by
//! `cargo run --release --example make-seeds` (run in `fuzz/`); `fuzz/smoke.sh` and
//! `fuzz/campaign.sh` run the targets.

pub mod cluster;
pub mod fixtures;
pub mod input;
pub mod kv;
pub mod targets;
pub mod web;

/// A fuzz target's function: it gets one input, and panics on what the decoder must not do.
pub type Target = fn(&[u8]);

/// Every target: its name and the function it calls.
pub const TARGETS: &[(&str, Target)] = &[
    ("transport_frames", targets::transport_frames),
    ("peer_messages", targets::peer_messages),
    ("tracker_messages", targets::tracker_messages),
    ("paxos_messages", targets::paxos_messages),
    ("paxos_replica", targets::paxos_replica),
    ("kv_messages", targets::kv_messages),
    ("torrent_file", targets::torrent_file),
    ("wal_record", targets::wal_record),
    ("wal_segment", targets::wal_segment),
    ("wal_open", targets::wal_open),
    ("paxos_storage", targets::paxos_storage),
    ("tracker_snapshot", targets::tracker_snapshot),
    ("kv_snapshot", targets::kv_snapshot),
    ("resume_file", targets::resume_file),
    ("web_forms", targets::web_forms),
    ("web_upload", targets::web_upload),
    ("status_file", targets::status_file),
];

#[cfg(test)]
mod seed_replay {
    /// Every committed seed passes its target (and the regression inputs with it): what
    /// `cargo fuzz run` checks first, without libFuzzer.
    #[test]
    fn every_seed_passes_its_target() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        for (name, target) in super::TARGETS {
            let dir = seeds.join(name);
            let mut count = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                count += 1;
            }
            assert!(count > 0, "no seeds for {name}");
        }
    }
}
