//! Fault injection: partitions of every shape, crashes, power failures,
//! message loss and duplication.

use rand::Rng;

use super::{Kind, MS, Scenario, World};

impl World {
    pub(super) fn next_fault_delay(&mut self) -> u64 {
        let m = self.cfg.fault_every_ms.max(1);
        self.rng.random_range(m / 2..=m * 3 / 2) * MS
    }

    pub(super) fn leader_or_random(&mut self) -> usize {
        let n = self.nodes.len();
        self.nodes
            .iter()
            .position(|x| x.replica.as_ref().is_some_and(|r| r.is_leader()))
            .unwrap_or_else(|| self.rng.random_range(0..n))
    }

    /// Installs one of the OmniPaxos paper's partial-connectivity topologies
    /// around the current leader.
    pub(super) fn apply_scenario(&mut self, sc: Scenario) {
        let n = self.nodes.len();
        let l = self.leader_or_random();
        let b = (l + 1) % n;
        match sc {
            Scenario::QuorumLoss => {
                // Only `b` reaches everyone; everyone else reaches only `b`.
                self.set_all_links(false);
                for a in 0..n {
                    self.link[a][a] = true;
                    self.link[a][b] = true;
                    self.link[b][a] = true;
                }
            }
            Scenario::Constrained => {
                // The leader is isolated; `b` reaches the rest, which do not
                // reach each other.
                self.set_all_links(false);
                for a in 0..n {
                    self.link[a][a] = true;
                    if a != l {
                        self.link[a][b] = true;
                        self.link[b][a] = true;
                    }
                }
            }
            Scenario::Chained => {
                // The leader loses its link to one replica only.
                let c = (l + 2) % n;
                self.link[l][c] = false;
                self.link[c][l] = false;
            }
        }
    }

    pub(super) fn set_all_links(&mut self, up: bool) {
        for row in self.link.iter_mut() {
            row.iter_mut().for_each(|l| *l = up);
        }
    }

    pub(super) fn inject_fault(&mut self) {
        let n = self.nodes.len();
        let choice = self.rng.random_range(0..10u32);
        match choice {
            0 => self.set_all_links(true),
            1..=5 if self.cfg.partitions => {
                self.set_all_links(true);
                match choice {
                    1 => {
                        // Symmetric split into two random groups.
                        let side: Vec<bool> = (0..n).map(|_| self.rng.random_bool(0.5)).collect();
                        for a in 0..n {
                            for b in 0..n {
                                self.link[a][b] = side[a] == side[b];
                            }
                        }
                    }
                    2 => {
                        // Asymmetric: some directed links drop.
                        for a in 0..n {
                            for b in 0..n {
                                if a != b && self.rng.random_bool(0.3) {
                                    self.link[a][b] = false;
                                }
                            }
                        }
                    }
                    3 => {
                        // Quorum-loss: the leader only reaches one hub, which
                        // reaches everyone; the others only reach the hub.
                        let l = self.leader_or_random();
                        let hub = (l + 1 + self.rng.random_range(0..n - 1)) % n;
                        self.set_all_links(false);
                        for a in 0..n {
                            self.link[a][a] = true;
                            self.link[a][hub] = true;
                            self.link[hub][a] = true;
                        }
                    }
                    4 => {
                        // Chained: a random line topology.
                        let mut order: Vec<usize> = (0..n).collect();
                        for i in (1..n).rev() {
                            let j = self.rng.random_range(0..=i);
                            order.swap(i, j);
                        }
                        self.set_all_links(false);
                        for a in 0..n {
                            self.link[a][a] = true;
                        }
                        for w in order.windows(2) {
                            self.link[w[0]][w[1]] = true;
                            self.link[w[1]][w[0]] = true;
                        }
                    }
                    _ => {
                        // Constrained: the leader is cut off completely.
                        let l = self.leader_or_random();
                        for a in 0..n {
                            if a != l {
                                self.link[a][l] = false;
                                self.link[l][a] = false;
                            }
                        }
                    }
                }
            }
            6 | 7 if self.cfg.crashes => {
                // Crash one node; it restarts after a while.
                let i = self.rng.random_range(0..n);
                if self.is_up(i) {
                    self.crash(i);
                    let d = self.rng.random_range(10..400) * MS;
                    self.schedule(d, Kind::Restart { node: i });
                }
            }
            8 if self.cfg.crashes => {
                // Power failure of a majority at once.
                let k = n / 2 + 1;
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    let j = self.rng.random_range(0..=i);
                    order.swap(i, j);
                }
                for &i in order.iter().take(k) {
                    self.crash(i);
                    let d = self.rng.random_range(5..100) * MS;
                    self.schedule(d, Kind::Restart { node: i });
                }
            }
            _ => {
                self.loss = self.rng.random_range(0.0..=self.cfg.max_loss);
                self.dup = self.rng.random_range(0.0..=self.cfg.max_dup);
            }
        }
    }
}
