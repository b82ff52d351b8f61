//! Fuzz target `paxos_replica`: see `bytetorrent_fuzz::targets::paxos_replica`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::paxos_replica(data));
