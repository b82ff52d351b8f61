//! Fuzz target `resume_file`: see `bytetorrent_fuzz::targets::resume_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::resume_file(data));
