//! Cross-crate, multi-process and fault tests for ByteTorrent live in `tests/tests/`.
//! This library holds the helpers they share.
