//! Fuzz target `wal_record`: see `bytetorrent_fuzz::targets::wal_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::wal_record(data));
