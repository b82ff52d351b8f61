//! Deterministic simulation of paxos clusters under faults.
//!
//! `PAXOS_SEEDS=N` sets the total number of seeds across the configurations
//! (default 10 000 with `--release`, 2 000 without); `PAXOS_SEED=n` replays
//! one seed exactly.

mod sim;

use sim::world::{Scenario, SimConfig, SimStats, replay_seed, run_seed, total_seeds};

/// Runs `count` seeds starting at `base` (or only the replay seed) and panics
/// with the failing seed and a replay command on the first violation.
fn run_many(test: &str, base: u64, count: u64, cfg: &SimConfig) -> Vec<SimStats> {
    let seeds: Vec<u64> = match replay_seed() {
        Some(s) => vec![s],
        None => (base..base + count).collect(),
    };
    let mut stats = Vec::new();
    for seed in seeds {
        match run_seed(seed, cfg) {
            Ok(s) => stats.push(s),
            Err(e) => panic!(
                "simulation failed: {e}\nPAXOS_SEED={seed}\nreplay: PAXOS_SEED={seed} cargo test -p paxos --release --test simulation {test} -- --nocapture"
            ),
        }
    }
    report(test, &stats);
    stats
}

fn report(test: &str, stats: &[SimStats]) {
    if stats.is_empty() {
        return;
    }
    let mut rec: Vec<u64> = stats.iter().map(|s| s.recovery_us / 1_000).collect();
    rec.sort_unstable();
    let pct = |p: usize| rec[(rec.len() - 1) * p / 100];
    let ops: usize = stats.iter().map(|s| s.ops).sum();
    let done: usize = stats.iter().map(|s| s.completed).sum();
    let events: u64 = stats.iter().map(|s| s.events).sum();
    let changes: usize = stats.iter().map(|s| s.changes).sum();
    println!(
        "{test}: {} seeds, {ops} client ops ({done} completed), {events} events, \
         {changes} membership changes; commit after heal (ms): p50={} p90={} p99={} max={}",
        stats.len(),
        pct(50),
        pct(90),
        pct(99),
        rec[rec.len() - 1]
    );
    let bounds = [25, 50, 100, 200, 300, 500, 1_000, u64::MAX];
    let mut line = format!("{test}: commit-after-heal histogram (ms):");
    let mut lo = 0;
    for hi in bounds {
        let n = rec.iter().filter(|&&r| r >= lo && r < hi).count();
        if hi == u64::MAX {
            line.push_str(&format!(" [{lo},inf)={n}"));
        } else {
            line.push_str(&format!(" [{lo},{hi})={n}"));
        }
        lo = hi;
    }
    println!("{line}");
}

#[test]
fn three_replicas_stay_safe_and_live_under_random_faults() {
    let n = total_seeds() * 45 / 100;
    run_many(
        "three_replicas_stay_safe_and_live_under_random_faults",
        0,
        n,
        &SimConfig::standard(3),
    );
}

#[test]
fn five_replicas_stay_safe_and_live_under_random_faults() {
    let n = total_seeds() * 35 / 100;
    run_many(
        "five_replicas_stay_safe_and_live_under_random_faults",
        1_000_000,
        n,
        &SimConfig::standard(5),
    );
}

#[test]
fn three_replicas_under_heavy_load_with_snapshots_and_batching() {
    let mut cfg = SimConfig::standard(3);
    cfg.clients = 8;
    cfg.snapshot_log_len = 10;
    cfg.max_batch = 64;
    cfg.max_inflight = 8;
    let n = total_seeds() * 20 / 100;
    run_many(
        "three_replicas_under_heavy_load_with_snapshots_and_batching",
        2_000_000,
        n,
        &cfg,
    );
}

#[test]
fn quorum_loss_partial_connectivity_does_not_livelock() {
    let n = total_seeds() * 5 / 100;
    let cfg = SimConfig::scenario(5, Scenario::QuorumLoss);
    run_many(
        "quorum_loss_partial_connectivity_does_not_livelock",
        3_000_000,
        n,
        &cfg,
    );
}

#[test]
fn constrained_election_partial_connectivity_does_not_livelock() {
    let n = total_seeds() * 5 / 100;
    let cfg = SimConfig::scenario(5, Scenario::Constrained);
    run_many(
        "constrained_election_partial_connectivity_does_not_livelock",
        4_000_000,
        n,
        &cfg,
    );
}

#[test]
fn chained_partial_connectivity_does_not_livelock() {
    let n = total_seeds() * 5 / 100;
    let cfg = SimConfig::scenario(3, Scenario::Chained);
    run_many(
        "chained_partial_connectivity_does_not_livelock",
        5_000_000,
        n,
        &cfg,
    );
}

#[test]
fn replicas_stay_safe_under_harsh_network_and_disk_latency() {
    let mut cfg = SimConfig::standard(3);
    cfg.max_loss = 0.3;
    cfg.max_dup = 0.2;
    cfg.max_delay_us = 40_000;
    cfg.persist_delay_max_us = 20_000;
    cfg.client_timeout_ms = 30;
    cfg.fault_every_ms = 60;
    cfg.snapshot_log_len = 5;
    cfg.clients = 6;
    cfg.keys = 3;
    let n = total_seeds() * 10 / 100;
    run_many(
        "replicas_stay_safe_under_harsh_network_and_disk_latency",
        6_000_000,
        n,
        &cfg,
    );
}

#[test]
fn three_replicas_stay_safe_and_live_while_the_membership_changes() {
    let n = total_seeds() * 20 / 100;
    run_many(
        "three_replicas_stay_safe_and_live_while_the_membership_changes",
        7_000_000,
        n,
        &SimConfig::reconfiguring(3),
    );
}

#[test]
fn five_replicas_stay_safe_and_live_while_the_membership_changes() {
    let n = total_seeds() * 10 / 100;
    run_many(
        "five_replicas_stay_safe_and_live_while_the_membership_changes",
        8_000_000,
        n,
        &SimConfig::reconfiguring(5),
    );
}
