//! The faults, and the random schedule that picks them from a seed.
//!
//! Each fault is drawn when the previous one has healed: its kind from the enabled
//! families, its victims (the leader or a random node), how long it holds. The draws
//! come from one seeded generator, so a seed replays the same choices; when they land
//! depends on the cluster (who leads, how fast it recovers), as in any real test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A family of faults; `./test` runs one short run of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Partitions (majority/minority, isolated leader, bridge, ring) and one-way loss.
    Network,
    /// kill -9 and restart; SIGSTOP/SIGCONT pauses longer than the election timeout.
    Process,
    /// One node's clock running fast or slow within the drift bound, and steps of its
    /// time of day, each while the node is cut off (when its lease is what matters).
    Clock,
    /// One node's data directory, a small tmpfs, filled up.
    Disk,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] = [
        Family::Network,
        Family::Process,
        Family::Clock,
        Family::Disk,
    ];

    /// Parses a family's name (`network`, `process`, `clock`, `disk`).
    pub fn parse(name: &str) -> Result<Family, String> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                format!("unknown fault family {name:?}: expected network, process, clock or disk")
            })
    }

    /// The family's name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Network => "network",
            Family::Process => "process",
            Family::Clock => "clock",
            Family::Disk => "disk",
        }
    }
}

/// Whom a fault strikes, resolved when it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The node that says it leads (a random node if none does).
    Leader,
    /// This node.
    Node(u64),
}

/// The shape of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// A random minority cut from the majority, both ways.
    MajorityMinority,
    /// The leader cut from everyone, both ways.
    IsolateLeader,
    /// Two halves cut from each other; one node sees both.
    Bridge,
    /// Each node hears only its two neighbours on a ring (five nodes or more).
    Ring,
    /// The victim hears nobody, but everyone hears it.
    DeafVictim,
    /// Nobody hears the victim, but it hears everyone.
    MuteVictim,
}

/// One fault, as drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Cuts between nodes; the random order `shuffle` places the nodes in groups.
    Partition {
        /// Which partition.
        kind: PartitionKind,
        /// The nodes in a random order (groups are taken from its front).
        shuffle: Vec<u64>,
        /// For the kinds with a victim.
        victim: Target,
    },
    /// kill -9, restarted at the heal.
    Kill(Target),
    /// SIGSTOP, SIGCONT at the heal.
    Pause(Target),
    /// The node's clock runs at `rate` until the heal, while the node is cut off.
    Skew(Target, f64),
    /// The node's time of day is set by `ms` (back when negative), while it is cut off.
    Jump(Target, i64),
    /// The node's data directory is filled up until the heal.
    FillDisk(Target),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { kind, .. } => write!(f, "partition {kind:?}"),
            Fault::Kill(t) => write!(f, "kill -9 {t:?}"),
            Fault::Pause(t) => write!(f, "SIGSTOP {t:?}"),
            Fault::Skew(t, rate) => write!(f, "clock rate {rate:.3} on {t:?}, cut off"),
            Fault::Jump(t, ms) => write!(f, "time of day {ms:+} ms on {t:?}, cut off"),
            Fault::FillDisk(t) => write!(f, "disk full on {t:?}"),
        }
    }
}

/// The largest clock-rate deviation the schedule draws: under the drift bound of the
/// default configuration (16 ms of a 160 ms lease, 10 %).
pub const MAX_RATE_DEVIATION: f64 = 0.08;

/// How far from real time the clock family may set a node's clock rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockRange {
    /// 2-8 % fast or slow: within the drift bound the lease's safety assumes.
    WithinBound,
    /// 30-70 % fast or slow: beyond it, where lease reads may be stale by design. For
    /// showing that the bound matters, not for the soak.
    BeyondBound,
}

/// Draws the next fault of `families` for a cluster of `nodes`, and how long it holds.
pub fn draw(
    rng: &mut ChaCha8Rng,
    families: &[Family],
    nodes: u64,
    clock: ClockRange,
) -> (Fault, Duration) {
    let family = families[rng.random_range(0..families.len())];
    let target = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            Target::Leader
        } else {
            Target::Node(rng.random_range(1..=nodes))
        }
    };
    let fault = match family {
        Family::Network => {
            let mut kinds = vec![
                PartitionKind::MajorityMinority,
                PartitionKind::IsolateLeader,
                PartitionKind::Bridge,
                PartitionKind::DeafVictim,
                PartitionKind::MuteVictim,
            ];
            if nodes >= 5 {
                kinds.push(PartitionKind::Ring);
            }
            let kind = kinds[rng.random_range(0..kinds.len())];
            let mut shuffle: Vec<u64> = (1..=nodes).collect();
            shuffle.shuffle(rng);
            Fault::Partition {
                kind,
                shuffle,
                victim: target(rng),
            }
        }
        Family::Process => {
            if rng.random_bool(0.5) {
                Fault::Kill(target(rng))
            } else {
                Fault::Pause(target(rng))
            }
        }
        Family::Clock => {
            if rng.random_bool(0.5) {
                let deviation = match clock {
                    ClockRange::WithinBound => rng.random_range(0.02..=MAX_RATE_DEVIATION),
                    ClockRange::BeyondBound => rng.random_range(0.3..=0.7),
                };
                let rate = if rng.random_bool(0.5) {
                    1.0 + deviation
                } else {
                    1.0 - deviation
                };
                Fault::Skew(target(rng), rate)
            } else {
                let ms = rng.random_range(1_000..=5_000);
                Fault::Jump(target(rng), if rng.random_bool(0.7) { -ms } else { ms })
            }
        }
        Family::Disk => Fault::FillDisk(target(rng)),
    };
    // Longer than the election timeout (200-400 ms) and the lease, so that leadership
    // moves during most faults.
    let hold = Duration::from_millis(rng.random_range(1_000..=5_000));
    (fault, hold)
}

/// The cuts of a partition: for each node, the nodes it does not hear. `victim` is the
/// resolved victim (or leader) for the kinds that have one.
pub fn cuts(kind: PartitionKind, shuffle: &[u64], victim: u64) -> BTreeMap<u64, BTreeSet<u64>> {
    let mut cuts: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut cut_both = |a: &[u64], b: &[u64]| {
        for &x in a {
            for &y in b {
                cuts.entry(x).or_default().insert(y);
                cuts.entry(y).or_default().insert(x);
            }
        }
    };
    let n = shuffle.len();
    let others: Vec<u64> = shuffle.iter().copied().filter(|&x| x != victim).collect();
    match kind {
        PartitionKind::MajorityMinority => {
            let (minority, majority) = shuffle.split_at((n - 1) / 2);
            cut_both(minority, majority);
        }
        PartitionKind::IsolateLeader => cut_both(&[victim], &others),
        PartitionKind::Bridge => {
            // The first node is the bridge: it hears both halves of the rest.
            let rest = &shuffle[1..];
            let (left, right) = rest.split_at(rest.len() / 2);
            cut_both(left, right);
        }
        PartitionKind::Ring => {
            for (i, &x) in shuffle.iter().enumerate() {
                let left = shuffle[(i + n - 1) % n];
                let right = shuffle[(i + 1) % n];
                for &y in shuffle {
                    if y != x && y != left && y != right {
                        cuts.entry(x).or_default().insert(y);
                    }
                }
            }
        }
        PartitionKind::DeafVictim => {
            cuts.entry(victim)
                .or_default()
                .extend(others.iter().copied());
        }
        PartitionKind::MuteVictim => {
            for &x in &others {
                cuts.entry(x).or_default().insert(victim);
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn hears(cuts: &BTreeMap<u64, BTreeSet<u64>>, x: u64, y: u64) -> bool {
        !cuts.get(&x).is_some_and(|c| c.contains(&y))
    }

    #[test]
    fn a_seed_replays_the_same_schedule() {
        let draws = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| draw(&mut rng, &Family::ALL, 5, ClockRange::WithinBound))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn partitions_cut_what_they_name() {
        let order = [3, 1, 4, 5, 2];
        let mm = cuts(PartitionKind::MajorityMinority, &order, 0);
        assert!(!hears(&mm, 3, 4) && !hears(&mm, 4, 3) && hears(&mm, 4, 5) && hears(&mm, 3, 1));
        let bridge = cuts(PartitionKind::Bridge, &order, 0);
        assert!(hears(&bridge, 3, 2) && hears(&bridge, 2, 3) && !hears(&bridge, 1, 5));
        let ring = cuts(PartitionKind::Ring, &order, 0);
        assert!(hears(&ring, 3, 1) && hears(&ring, 3, 2) && !hears(&ring, 3, 4));
        let deaf = cuts(PartitionKind::DeafVictim, &order, 4);
        assert!(!hears(&deaf, 4, 1) && hears(&deaf, 1, 4));
        let mute = cuts(PartitionKind::MuteVictim, &order, 4);
        assert!(hears(&mute, 4, 1) && !hears(&mute, 1, 4));
        let iso = cuts(PartitionKind::IsolateLeader, &order, 2);
        assert!(
            (1..=5)
                .filter(|&x| x != 2)
                .all(|x| !hears(&iso, x, 2) && !hears(&iso, 2, x))
        );
    }

    #[test]
    fn clock_rates_stay_within_the_drift_bound() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1_000 {
            if let (Fault::Skew(_, rate), _) =
                draw(&mut rng, &[Family::Clock], 3, ClockRange::WithinBound)
            {
                assert!((rate - 1.0).abs() <= MAX_RATE_DEVIATION + 1e-9);
            }
        }
    }
}
