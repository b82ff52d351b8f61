//! Cross-crate, multi-process and fault tests for ByteTorrent live in `tests/tests/`.
//! This library holds what they share: a small replicated key-value state machine.

pub mod cluster;
pub mod kv;
pub mod kv_client;
pub mod kv_service;
