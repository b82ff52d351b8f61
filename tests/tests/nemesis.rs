//! The nemesis on real processes: one short run per fault family must find the history
//! linearizable, and a run of a node with a planted lease bug must find it is not.
//!
//! Each run is a `nemesis run` process: three `kv-server` (or `bt-tracker`) processes in
//! network namespaces of their own (so these tests need root, `ip` and `nft`), clients bound to
//! each node, and faults drawn from a fixed seed. The seeds are fixed so that a failure
//! here replays with the command it prints.

use std::process::Command;

const NEMESIS: &str = env!("CARGO_BIN_EXE_nemesis");
const SERVER: &str = env!("CARGO_BIN_EXE_kv-server");

/// These runs each start a cluster and a client load; one at a time keeps a 2-core
/// machine responsive enough that faults, not starvation, move the leadership.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a run printed, and its exit code.
struct Run {
    code: Option<i32>,
    output: String,
}

/// `--server` for the KV runs; a tracker run finds `bt-tracker` beside `nemesis`, where
/// building the workspace puts it.
fn extra_server(args: &[&str]) -> Vec<&'static str> {
    if args.contains(&"tracker") {
        Vec::new()
    } else {
        vec!["--server", SERVER]
    }
}

fn nemesis(args: &[&str]) -> Run {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new(NEMESIS)
        .arg("run")
        .args(args)
        .args(extra_server(args))
        .output()
        .expect("nemesis runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        code: out.status.code(),
        output,
    }
}

/// The number after `label` in the run's `result:` line (e.g. `applied=`).
fn figure(run: &Run, label: &str) -> u64 {
    let line = run
        .output
        .lines()
        .find(|l| l.starts_with("result:"))
        .unwrap_or_else(|| panic!("no result line in:\n{}", run.output));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(label))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {line:?}"))
}

/// The run passed: linearizable, with faults applied and operations completed.
fn assert_passed(run: &Run, what: &str) {
    assert!(
        run.code == Some(0) && run.output.contains("verdict: linearizable"),
        "nemesis run {what} failed:\n{}",
        run.output
    );
    assert!(
        figure(run, "applied=") >= 2,
        "too few faults:\n{}",
        run.output
    );
    assert!(
        figure(run, "ops=") >= 1_000,
        "too few operations:\n{}",
        run.output
    );
}

/// A run of the KV cluster with the faults of `family` and `seed` passes.
fn family_passes(family: &str, seed: &str) {
    let run = nemesis(&["--faults", family, "--seed", seed, "--duration", "20"]);
    assert_passed(&run, &format!("--faults {family} --seed {seed}"));
}

#[test]
fn partitions_and_one_way_loss_keep_the_history_linearizable() {
    family_passes("network", "101");
}

#[test]
fn kills_and_pauses_keep_the_history_linearizable() {
    family_passes("process", "102");
}

#[test]
fn clock_skew_and_steps_within_the_bound_keep_the_history_linearizable() {
    family_passes("clock", "103");
}

#[test]
fn full_disks_keep_the_history_linearizable() {
    family_passes("disk", "104");
}

/// The tracker under every family (partitions, kills, pauses, clock skew and steps, a
/// full disk): every query of a piece's holders agrees with the reports acknowledged
/// around it.
#[test]
fn the_tracker_keeps_its_swarm_state_linearizable_under_faults() {
    let tracker = std::path::Path::new(NEMESIS).with_file_name("bt-tracker");
    assert!(
        tracker.exists(),
        "{} is missing: build the workspace (./test does), or cargo build --release -p tracker",
        tracker.display()
    );
    let run = nemesis(&[
        "--system",
        "tracker",
        "--faults",
        "all",
        "--seed",
        "105",
        "--duration",
        "20",
    ]);
    assert_passed(&run, "--system tracker --seed 105");
}

/// The planted bug: nodes that measure their lease with the time of day. A step back
/// of a cut-off leader's clock stretches its lease, and it answers reads the majority's
/// new leader has overwritten. The checker must say so.
#[test]
fn a_lease_measured_with_the_time_of_day_is_caught() {
    let run = nemesis(&[
        "--faults",
        "clock",
        "--seed",
        "2",
        "--duration",
        "30",
        "--planted-bug",
        "time-of-day-clock",
    ]);
    assert!(
        run.code == Some(1) && run.output.contains("verdict: NOT linearizable"),
        "the planted bug was not caught:\n{}",
        run.output
    );
}
