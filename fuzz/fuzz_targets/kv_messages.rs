//! Fuzz target `kv_messages`: see `bytetorrent_fuzz::targets::kv_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::kv_messages(data));
