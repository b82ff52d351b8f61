//! Fuzz target `web_forms`: see `bytetorrent_fuzz::targets::web_forms`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::web_forms(data));
