//! Fuzz target `wal_segment`: see `bytetorrent_fuzz::targets::wal_segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::wal_segment(data));
