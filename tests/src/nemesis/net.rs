//! The nemesis's network: one network namespace per node, joined by veth pairs to a
//! bridge in a hub namespace, where the clients and the nemesis itself run. Partitions
//! and one-way loss are nftables rules in the nodes' namespaces: a node drops what
//! arrives from the nodes it is cut from. Clients are never cut off.
//!
//! Everything is made by [`Topology::create`] and removed by [`Topology::remove`] (also
//! on drop), so no traffic leaves the namespaces and nothing outlives a run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

/// The subnet of every run: runs are isolated by their namespaces, so they may share it.
const SUBNET: [u8; 3] = [10, 99, 0];
/// The hub's address (clients and the nemesis).
const HUB_HOST: u8 = 254;

/// Runs `program args`, failing with what it printed.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces and links of one run.
#[derive(Debug)]
pub struct Topology {
    /// Prefix of every name this run made (at most 6 characters).
    tag: String,
    nodes: u64,
    /// Whether this handle made the namespaces (and removes them when dropped).
    owned: bool,
    removed: bool,
}

impl Topology {
    /// Makes the hub namespace with its bridge and `nodes` node namespaces, each linked
    /// to the bridge. `tag` names them (unique among running runs, at most 6
    /// characters, so interface names fit in 15).
    pub fn create(tag: &str, nodes: u64) -> Result<Topology, String> {
        assert!(tag.len() <= 6, "tag {tag:?} is longer than 6 characters");
        let topology = Topology {
            tag: tag.to_string(),
            nodes,
            owned: true,
            removed: false,
        };
        // On failure half-way, Drop removes what was made.
        topology.build()?;
        Ok(topology)
    }

    /// A handle on the namespaces another process made with `tag` (it does not remove
    /// them).
    pub fn attach(tag: &str, nodes: u64) -> Topology {
        Topology {
            tag: tag.to_string(),
            nodes,
            owned: false,
            removed: false,
        }
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        run("ip", &["netns", "add", &hub])?;
        run("ip", &["-n", &hub, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        let hub_addr = format!("{}/24", ip(HUB_HOST));
        run("ip", &["-n", &hub, "addr", "add", &hub_addr, "dev", "br0"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        for id in 1..=self.nodes {
            let ns = self.node_namespace(id);
            let (outside, inside) = (format!("{}h{id}", self.tag), format!("{}n{id}", self.tag));
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            run(
                "ip",
                &[
                    "-n", &hub, "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                    "netns", &ns,
                ],
            )?;
            run(
                "ip",
                &["-n", &hub, "link", "set", &outside, "master", "br0"],
            )?;
            run("ip", &["-n", &hub, "link", "set", &outside, "up"])?;
            let addr = format!("{}/24", ip(id as u8));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", &inside])?;
            run("ip", &["-n", &ns, "link", "set", &inside, "up"])?;
            // The table the partitions fill; empty means no fault.
            run(
                "ip",
                &[
                    "netns", "exec", &ns, "nft", "add", "table", "inet", "nemesis",
                ],
            )?;
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "nft",
                    "add chain inet nemesis input { type filter hook input priority 0 ; policy accept ; }",
                ],
            )?;
        }
        Ok(())
    }

    /// The hub namespace's name.
    pub fn hub(&self) -> String {
        format!("btnem-{}-hub", self.tag)
    }

    /// Node `id`'s namespace.
    pub fn node_namespace(&self, id: u64) -> String {
        format!("btnem-{}-n{id}", self.tag)
    }

    /// Node `id`'s address.
    pub fn node_ip(&self, id: u64) -> IpAddr {
        IpAddr::V4(ip(id as u8))
    }

    /// Makes every node drop what arrives from the nodes `cuts[node]` lists, and only
    /// that: the rules of the last call are replaced.
    pub fn set_cuts(&self, cuts: &BTreeMap<u64, BTreeSet<u64>>) -> Result<(), String> {
        for id in 1..=self.nodes {
            let ns = self.node_namespace(id);
            run(
                "ip",
                &[
                    "netns", "exec", &ns, "nft", "flush", "chain", "inet", "nemesis", "input",
                ],
            )?;
            let from: Vec<String> = cuts
                .get(&id)
                .into_iter()
                .flatten()
                .map(|&other| self.node_ip(other).to_string())
                .collect();
            if !from.is_empty() {
                let rule = format!(
                    "add rule inet nemesis input ip saddr {{ {} }} drop",
                    from.join(", ")
                );
                run("ip", &["netns", "exec", &ns, "nft", &rule])?;
            }
        }
        Ok(())
    }

    /// Kills every process left in this run's namespaces and deletes them (their links
    /// go with them).
    pub fn remove(&mut self) {
        if self.removed || !self.owned {
            return;
        }
        self.removed = true;
        let namespaces = (1..=self.nodes)
            .map(|id| self.node_namespace(id))
            .chain([self.hub()]);
        for ns in namespaces {
            kill_all_in(&ns);
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.remove();
    }
}

/// SIGKILLs every process in namespace `ns` (a node or client that outlived its run).
fn kill_all_in(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = run("kill", &["-KILL", pid]);
    }
}

/// Removes the namespaces of runs that ended without cleaning up (killed with SIGKILL).
pub fn remove_leftovers() -> Result<usize, String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|e| format!("ip netns list: {e}"))?;
    let mut removed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if ns.starts_with("btnem-") {
            kill_all_in(ns);
            run("ip", &["netns", "del", ns])?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn ip(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], host)
}
