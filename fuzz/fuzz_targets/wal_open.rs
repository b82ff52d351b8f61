//! Fuzz target `wal_open`: see `bytetorrent_fuzz::targets::wal_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::wal_open(data));
