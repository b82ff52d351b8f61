//! The key-value example's state machine and client protocol (`tests/src/kv/`),
//! compiled from that crate's own source files: the `tests` crate as a whole builds the
//! whole system (processes, the tracker, the peer, test support), while these two files
//! need only `paxos` and serde. Its operator protocol needs the Paxos runtime and is not
//! fuzzed here.

#[path = "../../tests/src/kv/protocol.rs"]
mod protocol;
#[path = "../../tests/src/kv/state_machine.rs"]
mod state_machine;

pub use protocol::{ALPN_KV, KvRequest, KvResponse};
pub use state_machine::{Kv, KvCommand, KvOutput};
