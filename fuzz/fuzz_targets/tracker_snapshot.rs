//! Fuzz target `tracker_snapshot`: see `bytetorrent_fuzz::targets::tracker_snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::tracker_snapshot(data));
