//! Proof that the simulator's checkers can fail: each test plants a known
//! bug and asserts that the simulator finds a failing seed within the
//! default seed budget.

mod sim;

use paxos::PlantedBugs;
use sim::world::{SimConfig, run_seed, total_seeds};

/// Runs seeds until one fails; returns the seed and the failure.
fn first_failure(cfg: &SimConfig, base: u64) -> Option<(u64, String)> {
    (base..base + total_seeds()).find_map(|seed| run_seed(seed, cfg).err().map(|e| (seed, e)))
}

fn assert_found(name: &str, planted: PlantedBugs, nodes: usize, base: u64) {
    assert_found_in(name, planted, SimConfig::standard(nodes), base);
}

/// Runs `cfg` with `planted` until a seed fails; panics if none does.
fn assert_found_in(name: &str, planted: PlantedBugs, mut cfg: SimConfig, base: u64) {
    cfg.planted = planted;
    match first_failure(&cfg, base) {
        Some((seed, e)) => {
            let first_line = e.lines().next().unwrap_or_default().to_string();
            println!("{name}: found at PAXOS_SEED={seed}: {first_line}");
        }
        None => panic!(
            "{name}: the simulator did not detect the planted bug in {} seeds",
            total_seeds()
        ),
    }
}

#[test]
fn simulator_detects_acknowledging_before_persisting() {
    let bug = PlantedBugs {
        ack_before_persist: true,
        ..PlantedBugs::default()
    };
    assert_found("ack_before_persist", bug, 3, 10_000_000);
}

#[test]
fn simulator_detects_skipping_phase1_after_leader_change() {
    let bug = PlantedBugs {
        skip_phase1: true,
        ..PlantedBugs::default()
    };
    assert_found("skip_phase1", bug, 3, 11_000_000);
}

#[test]
fn simulator_detects_applying_a_retried_command_twice() {
    let bug = PlantedBugs {
        apply_retry_twice: true,
        ..PlantedBugs::default()
    };
    assert_found("apply_retry_twice", bug, 3, 12_000_000);
}

#[test]
fn linearizability_checker_detects_stale_local_reads() {
    let bug = PlantedBugs {
        local_reads: true,
        ..PlantedBugs::default()
    };
    assert_found("local_reads", bug, 3, 13_000_000);
}

#[test]
fn failing_seed_replays_exactly() {
    let mut cfg = SimConfig::standard(3);
    cfg.planted = PlantedBugs {
        skip_phase1: true,
        ..PlantedBugs::default()
    };
    let (seed, first) = first_failure(&cfg, 15_000_000).expect("planted bug found");
    let again = run_seed(seed, &cfg).expect_err("replay fails too");
    assert_eq!(first, again);
}

#[test]
fn passing_seed_replays_exactly() {
    let cfg = SimConfig::standard(5);
    let a = run_seed(42, &cfg).expect("seed 42 passes");
    let b = run_seed(42, &cfg).expect("seed 42 passes");
    assert_eq!(
        (a.events, a.ops, a.applied, a.recovery_us),
        (b.events, b.ops, b.applied, b.recovery_us)
    );
}

#[test]
fn linearizability_checker_detects_leases_without_follower_promises() {
    let bug = PlantedBugs {
        no_stickiness: true,
        ..PlantedBugs::default()
    };
    assert_found("no_stickiness", bug, 3, 16_000_000);
}

#[test]
fn simulator_detects_phase1_that_ignores_later_memberships() {
    let bug = PlantedBugs {
        phase1_applied_membership_only: true,
        ..PlantedBugs::default()
    };
    let cfg = SimConfig::reconfiguring(3);
    assert_found_in("phase1_applied_membership_only", bug, cfg, 17_000_000);
}

#[test]
fn simulator_detects_pipelining_across_a_membership_change() {
    let bug = PlantedBugs {
        no_change_barrier: true,
        ..PlantedBugs::default()
    };
    let cfg = SimConfig::reconfiguring(3);
    assert_found_in("no_change_barrier", bug, cfg, 18_000_000);
}
