//! Fuzz target `kv_snapshot`: see `bytetorrent_fuzz::targets::kv_snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::kv_snapshot(data));
