//! Durability: what the acceptor must remember across crashes, and where it is kept.
//!
//! The replica never touches storage itself. It emits
//! [`Output::Persist`](crate::Output::Persist) with a batch of [`Record`]s; the
//! driver appends them to a [`Storage`] (one fsync for the batch is enough) and
//! then calls [`Replica::persisted`](crate::Replica::persisted). On restart the
//! driver calls [`Storage::load`] and passes the [`DurableState`] to
//! [`Replica::new`](crate::Replica::new).
//!
//! # Layout
//!
//! * `mod.rs`: the [`Storage`] trait and its durability and failure contract.
//! * `durable_state.rs`: [`Record`] (one durable change) and [`DurableState`] (what
//!   the records add up to).
//! * `memory.rs`: [`MemStorage`], kept in memory (tests and the simulator).
//! * `file.rs`: [`FileStorage`], the records in the write-ahead log on disk.
//! * `wal/`: the write-ahead log itself, a checksummed segmented log of byte records
//!   with group commit, torn-tail recovery and atomic snapshots; it knows nothing
//!   of Paxos.

mod durable_state;
pub(crate) mod file;
mod memory;
pub mod wal;

pub use durable_state::{DurableState, Record};
pub use file::FileStorage;
pub use memory::MemStorage;

use crate::error::StorageError;

/// A durable store for an acceptor. Implementations must make all records of
/// one `append` durable before returning (group commit: one sync per call).
///
/// # Failure contract
///
/// An `Err` from [`Storage::append`] means the records may or may not be durable.
/// The caller must then stop driving the replica: continuing would acknowledge
/// promises and accepts that a crash could lose (the runtime stops its driver on the
/// first failure). Restarting means [`Storage::load`] again, which returns what is
/// really durable; an implementation may refuse further appends after a failure
/// (the [`wal`] does).
pub trait Storage<C, O> {
    /// Loads the durable state (empty for a new replica).
    fn load(&self) -> Result<DurableState<C, O>, StorageError>;
    /// Durably appends records, in order.
    fn append(&mut self, records: &[Record<C, O>]) -> Result<(), StorageError>;

    /// [`Storage::append`] for a caller that no longer needs the records: an
    /// implementation that keeps them in memory may move them instead of cloning.
    /// Same durability contract.
    fn append_owned(&mut self, records: Vec<Record<C, O>>) -> Result<(), StorageError> {
        self.append(&records)
    }
}
