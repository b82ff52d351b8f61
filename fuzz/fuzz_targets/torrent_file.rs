//! Fuzz target `torrent_file`: see `bytetorrent_fuzz::targets::torrent_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bytetorrent_fuzz::targets::torrent_file(data));
