//! The key-value example's state machine, client protocol and operator protocol
//! (`tests/src/kv/`), compiled from that crate's own source files: the `tests` crate as a
//! whole builds the whole system (processes, the tracker, the peer, test support), while
//! these files need only `paxos` and serde. The operator protocol's messages are in a
//! file of their own for this reason; the code that serves them needs the Paxos
//! runtime's node and is not compiled here.

#[path = "../../tests/src/kv/admin_protocol.rs"]
mod admin_protocol;
#[path = "../../tests/src/kv/protocol.rs"]
mod protocol;
#[path = "../../tests/src/kv/state_machine.rs"]
mod state_machine;

pub use admin_protocol::{KvAdminRequest, KvAdminResponse};
pub use protocol::{ALPN_KV, KvRequest, KvResponse};
pub use state_machine::{Kv, KvCommand, KvOutput, KvQuery};
