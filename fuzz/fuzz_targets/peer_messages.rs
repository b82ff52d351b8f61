//! Fuzz target `peer_messages`: see `bytetorrent_fuzz::targets::peer_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::peer_messages(data));
