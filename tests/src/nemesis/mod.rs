//! A Jepsen-style nemesis on real processes: a cluster of `kv-server` or `bt-tracker`
//! nodes, each in its own network namespace, clients recording every operation, and faults drawn from a
//! printed seed (partitions and one-way loss, kill -9, pauses, clock skew and steps, full
//! disks). After the faults heal, the history is checked for linearizability.
//!
//! The binary is `nemesis` (`src/bin/nemesis.rs`); `bench/nemesis.sh` runs it, and
//! `SOAK=1 bench/nemesis.sh` runs the soak. It needs root (namespaces, nftables, tmpfs).
//!
//! * `net.rs`: the namespaces, the bridge and the nftables cuts.
//! * `faults.rs`: the fault families and the seeded schedule.
//! * `workload.rs`: the key-value clients and their recorded history.
//! * `tracker.rs`: the tracker's nodes, peers and clients, and their history.
//! * `runner.rs`: one run: nodes, clients and schedule side by side, heal, check.

pub mod faults;
pub mod net;
pub mod runner;
pub mod tracker;
pub mod workload;
