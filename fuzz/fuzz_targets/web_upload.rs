//! Fuzz target `web_upload`: see `bytetorrent_fuzz::targets::web_upload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::web_upload(data));
