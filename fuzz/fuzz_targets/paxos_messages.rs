//! Fuzz target `paxos_messages`: see `bytetorrent_fuzz::targets::paxos_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::paxos_messages(data));
