//! Fuzz target `status_file`: see `bytetorrent_fuzz::targets::status_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::status_file(data));
