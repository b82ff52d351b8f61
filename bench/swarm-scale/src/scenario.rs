//! What a simulated swarm is made of: the file, the peers' links, when they come and go,
//! and who misbehaves. Every scenario is seeded and replays exactly.

use std::time::Duration;

use peer::swarm::SwarmConfig;

/// Bytes per second of `mbit` megabits per second.
pub fn mbit(mbit: f64) -> f64 {
    mbit * 1e6 / 8.0
}

/// When leechers start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// All at t = 0.
    FlashCrowd,
    /// A Poisson process spread over this long (exponential gaps, mean = span / N).
    Poisson(Duration),
}

/// A share of the leechers with one uplink speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UplinkClass {
    /// Fraction of the leechers (the classes' shares add up to 1).
    pub share: f64,
    /// Uplink, bytes per second.
    pub up: f64,
}

/// One simulated swarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name for tables and file names.
    pub name: String,
    /// Honest leechers.
    pub leechers: usize,
    /// Bytes per piece.
    pub piece_len: u64,
    /// Pieces in the file.
    pub pieces: u32,
    /// The first seeder's uplink, bytes per second.
    pub seeder_up: f64,
    /// The leechers' uplinks.
    pub classes: Vec<UplinkClass>,
    /// Every downlink is this many times its peer's uplink.
    pub down_factor: f64,
    /// When leechers start.
    pub arrivals: Arrivals,
    /// Fraction of leechers that leave before completing (half of them say goodbye, half
    /// just vanish).
    pub churn: f64,
    /// The first seeder leaves after uploading this many copies' worth of the file.
    pub seeder_leaves_after_copies: Option<f64>,
    /// Peers that claim every piece and serve corrupt data.
    pub corrupt_peers: usize,
    /// Peers that claim every piece and have none.
    pub liars: usize,
    /// One-way latency of each peer's access link, uniform in this range (ms); a message
    /// takes the sum of both ends'.
    pub latency_ms: (u64, u64),
    /// Seed of every random choice.
    pub seed: u64,
    /// Simulated time after which the run gives up.
    pub deadline: Duration,
    /// Every honest peer's swarm settings (each gets its own seed): the defaults, unless
    /// an experiment changes them.
    pub swarm: SwarmConfig,
}

impl Scenario {
    /// The issue's flash crowd: N leechers at t = 0, uplinks 50 % at 20 Mbit/s, 40 % at
    /// 100 Mbit/s, 10 % at 1 Gbit/s, seeder 1 Gbit/s, downlinks 10x uplinks, 1 MiB pieces.
    pub fn flash_crowd(leechers: usize, pieces: u32, seed: u64) -> Scenario {
        Scenario {
            name: format!("flash-crowd-{leechers}"),
            leechers,
            piece_len: 1 << 20,
            pieces,
            seeder_up: mbit(1000.0),
            classes: vec![
                UplinkClass {
                    share: 0.5,
                    up: mbit(20.0),
                },
                UplinkClass {
                    share: 0.4,
                    up: mbit(100.0),
                },
                UplinkClass {
                    share: 0.1,
                    up: mbit(1000.0),
                },
            ],
            down_factor: 10.0,
            arrivals: Arrivals::FlashCrowd,
            churn: 0.0,
            seeder_leaves_after_copies: None,
            corrupt_peers: 0,
            liars: 0,
            latency_ms: (5, 50),
            seed,
            deadline: Duration::from_secs(3600),
            swarm: SwarmConfig::default(),
        }
    }

    /// Poisson arrivals over 5 minutes, 20 % of the leechers leaving mid-download, the
    /// seeder leaving after 2 copies' worth.
    pub fn arrivals_with_churn(leechers: usize, pieces: u32, seed: u64) -> Scenario {
        Scenario {
            name: format!("poisson-churn-{leechers}"),
            arrivals: Arrivals::Poisson(Duration::from_secs(300)),
            churn: 0.2,
            seeder_leaves_after_copies: Some(2.0),
            ..Scenario::flash_crowd(leechers, pieces, seed)
        }
    }

    /// A flash crowd with one peer serving corrupt data and one advertising pieces it
    /// does not have.
    pub fn adversarial(leechers: usize, pieces: u32, seed: u64) -> Scenario {
        Scenario {
            name: format!("adversarial-{leechers}"),
            corrupt_peers: 1,
            liars: 1,
            ..Scenario::flash_crowd(leechers, pieces, seed)
        }
    }

    /// The topology of the real capped swarm (`bench/swarm-capped.sh`): 23 leechers with
    /// uplinks evenly spread over 10-20 Mbit/s, a 30 Mbit/s seeder, downlinks 10x, 256 MiB
    /// in 256 KiB pieces, and links of a millisecond or two (the bridge adds no delay; the
    /// real run's queues are not modelled). It tells the swarm core's schedule apart from
    /// what the network adds.
    pub fn capped(seed: u64) -> Scenario {
        const LEECHERS: usize = 23;
        let classes = (0..LEECHERS)
            .map(|i| UplinkClass {
                share: 1.0 / LEECHERS as f64,
                up: mbit(10.0 + 10.0 * i as f64 / (LEECHERS - 1) as f64),
            })
            .collect();
        Scenario {
            name: format!("capped-{LEECHERS}"),
            leechers: LEECHERS,
            piece_len: 256 << 10,
            pieces: 1024,
            seeder_up: mbit(30.0),
            classes,
            latency_ms: (1, 2),
            ..Scenario::flash_crowd(LEECHERS, 1024, seed)
        }
    }

    /// Bytes in the file.
    pub fn file_len(&self) -> u64 {
        self.piece_len * u64::from(self.pieces)
    }

    /// The uplink of every leecher, in a seeded order that gives each class exactly its
    /// share (rounded).
    pub fn leecher_uplinks(&self, rng: &mut impl rand::Rng) -> Vec<f64> {
        use rand::seq::SliceRandom;
        let mut ups = Vec::with_capacity(self.leechers);
        for (k, class) in self.classes.iter().enumerate() {
            let count = if k + 1 == self.classes.len() {
                self.leechers - ups.len()
            } else {
                ((class.share * self.leechers as f64).round() as usize)
                    .min(self.leechers - ups.len())
            };
            ups.extend(std::iter::repeat_n(class.up, count));
        }
        ups.shuffle(rng);
        ups
    }
}

/// The fluid lower bound on the time for every one of the leechers to hold the file when
/// all start at t = 0 (Kumar and Ross, 2006): the seeder must send every byte once, the
/// slowest downlink must receive every byte, and the swarm as a whole must upload N
/// copies. `ups` and `downs` are the leechers' links in bytes per second.
pub fn fluid_bound(file_len: u64, seeder_up: f64, ups: &[f64], downs: &[f64]) -> f64 {
    let f = file_len as f64;
    let n = ups.len() as f64;
    let total_up: f64 = seeder_up + ups.iter().sum::<f64>();
    let min_down = downs.iter().copied().fold(f64::INFINITY, f64::min);
    (f / seeder_up).max(f / min_down).max(n * f / total_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_issue_flash_crowd_has_a_bound_of_about_57_seconds() {
        let s = Scenario::flash_crowd(10_000, 1024, 1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let ups = s.leecher_uplinks(&mut rng);
        assert_eq!(ups.iter().filter(|&&u| u == mbit(20.0)).count(), 5_000);
        assert_eq!(ups.iter().filter(|&&u| u == mbit(1000.0)).count(), 1_000);
        let downs: Vec<f64> = ups.iter().map(|u| u * s.down_factor).collect();
        let t = fluid_bound(s.file_len(), s.seeder_up, &ups, &downs);
        assert!((t - 57.2).abs() < 0.1, "{t}");
    }

    #[test]
    fn the_capped_scenario_has_the_real_capped_runs_links_and_bound() {
        let s = Scenario::capped(1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut ups = s.leecher_uplinks(&mut rng);
        ups.sort_by(f64::total_cmp);
        let expected: Vec<f64> = (0..23)
            .map(|i| mbit(10.0 + 10.0 * f64::from(i) / 22.0))
            .collect();
        assert_eq!(ups, expected);
        let downs: Vec<f64> = ups.iter().map(|u| u * s.down_factor).collect();
        let t = fluid_bound(s.file_len(), s.seeder_up, &ups, &downs);
        // bench/swarm-capped.sh prints T* = 131.71 s for the same links and file.
        assert!((t - 131.71).abs() < 0.01, "{t}");
    }

    #[test]
    fn a_slow_seeder_or_downlink_sets_the_bound() {
        let f = 100;
        assert_eq!(fluid_bound(f, 1.0, &[1000.0], &[1000.0]), 100.0);
        assert_eq!(fluid_bound(f, 1000.0, &[1000.0], &[2.0]), 50.0);
    }
}
