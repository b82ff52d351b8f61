//! Fuzz target `paxos_storage`: see `bytetorrent_fuzz::targets::paxos_storage`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::paxos_storage(data));
