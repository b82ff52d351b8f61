//! Fuzz target `tracker_messages`: see `bytetorrent_fuzz::targets::tracker_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::tracker_messages(data));
