//! Fuzz target `transport_frames`: see `bytetorrent_fuzz::targets::transport_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::transport_frames(data));
