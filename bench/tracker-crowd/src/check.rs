//! The end-of-run check: every acknowledged report is in every node's own state, the
//! peers that left are gone, and so are the killed peers, expired by their time to live.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::bail;
use certs::Fingerprint;
use tracker::Bitfield;
use tracker::admin::AdminClient;
use tracker::torrent::InfoHash;

use crate::cluster::{self, Cluster};
use crate::plan::{Fate, Plan, WorkerResult};

/// What the nodes should hold.
pub struct Expected<'a> {
    /// The crowd's plan (any worker's: they share the torrents and how peers map to them).
    pub plan: &'a Plan,
    /// The surviving workers' results.
    pub results: &'a [WorkerResult],
    /// The killed worker's peers.
    pub victims: &'a [Fingerprint],
    /// The nodes' peer time to live, ms.
    pub ttl_ms: u64,
}

/// One node's findings.
#[derive(Clone, Debug, Default)]
pub struct NodeVerdict {
    /// Node id.
    pub id: u64,
    /// Members of the big swarm on this node.
    pub members: usize,
    /// Staying peers checked.
    pub staying: usize,
    /// Acknowledged pieces checked.
    pub acked_pieces: u64,
    /// Acknowledged pieces that a staying peer present on this node is not shown to hold.
    pub lost_pieces: u64,
    /// Staying peers absent from the big swarm that were refreshed within every time to
    /// live: lost.
    pub staying_absent: usize,
    /// Staying peers absent from the big swarm after going a whole time to live without
    /// an acknowledged refresh (an overloaded cluster): rightly expired, not yet back.
    pub staying_expired: usize,
    /// Staying peers absent from their small swarm although refreshed within every time to
    /// live: lost.
    pub small_absent: usize,
    /// Staying peers rightly expired from their small swarm, not yet back.
    pub small_expired: usize,
    /// Peers that left (acknowledged) but are still members somewhere.
    pub leavers_present: usize,
    /// Killed peers still members somewhere.
    pub victims_present: usize,
}

impl NodeVerdict {
    fn passed(&self) -> bool {
        self.lost_pieces == 0
            && self.staying_absent == 0
            && self.small_absent == 0
            && self.leavers_present == 0
            && self.victims_present == 0
    }
}

/// Every node's findings.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// By node.
    pub nodes: Vec<NodeVerdict>,
    /// Leaves acknowledged.
    pub leavers: usize,
    /// Killed peers.
    pub victims: usize,
    /// How long the slowest node took to apply everything decided before the check.
    pub catch_up: Duration,
}

impl Verdict {
    /// Whether nothing acknowledged was lost and every departed peer is gone everywhere.
    pub fn passed(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.iter().all(NodeVerdict::passed)
    }
}

/// Waits until every node has applied everything decided, then reads each node's own
/// state through the operator protocol and checks it.
pub async fn every_node(
    cluster: &Cluster,
    admin: &AdminClient,
    expected: &Expected<'_>,
) -> anyhow::Result<Verdict> {
    let started = std::time::Instant::now();
    caught_up(cluster).await?;
    let catch_up = started.elapsed();

    let outcomes: Vec<_> = expected.results.iter().flat_map(|r| &r.peers).collect();
    let mut verdict = Verdict {
        leavers: outcomes.iter().filter(|o| o.fate == Fate::Left).count(),
        victims: expected.victims.len(),
        catch_up,
        ..Verdict::default()
    };
    for (&id, addrs) in &cluster.nodes {
        let main: HashMap<Fingerprint, Bitfield> =
            members_of(admin, addrs.cluster, expected.plan.main)
                .await?
                .into_iter()
                .map(|m| (m.fingerprint, m.have))
                .collect();
        let mut small: Vec<HashSet<Fingerprint>> = Vec::with_capacity(expected.plan.small.len());
        for &hash in &expected.plan.small {
            let members = members_of(admin, addrs.cluster, hash).await?;
            small.push(members.into_iter().map(|m| m.fingerprint).collect());
        }
        // When this node's state was read: a peer's quiet time runs up to here.
        let read_unix_ms = crate::worker::unix_ms();
        let in_any = |f: &Fingerprint| main.contains_key(f) || small.iter().any(|s| s.contains(f));
        let mut node = NodeVerdict {
            id,
            members: main.len(),
            ..NodeVerdict::default()
        };
        for outcome in &outcomes {
            match outcome.fate {
                Fate::Stays if outcome.joined => {
                    node.staying += 1;
                    let acked = outcome.acked.count() as u64;
                    node.acked_pieces += acked;
                    match main.get(&outcome.fingerprint) {
                        Some(have) => {
                            node.lost_pieces +=
                                outcome.acked.ones().filter(|&p| !have.get(p)).count() as u64;
                        }
                        None if quiet_ms(outcome, 0, read_unix_ms) >= expected.ttl_ms => {
                            node.staying_expired += 1
                        }
                        None => node.staying_absent += 1,
                    }
                    let small_swarm = expected.plan.small_of(outcome.index).map(|t| &small[t]);
                    if let Some(swarm) = small_swarm
                        && outcome.in_small
                        && !swarm.contains(&outcome.fingerprint)
                    {
                        if quiet_ms(outcome, 1, read_unix_ms) >= expected.ttl_ms {
                            node.small_expired += 1;
                        } else {
                            node.small_absent += 1;
                        }
                    }
                }
                Fate::Left => node.leavers_present += usize::from(in_any(&outcome.fingerprint)),
                _ => {}
            }
        }
        node.victims_present = expected.victims.iter().filter(|f| in_any(f)).count();
        verdict.nodes.push(node);
    }
    Ok(verdict)
}

/// A node's members of a swarm, asked up to 6 times: a node still busy with the crowd
/// (its staying peers heartbeat on) may answer an operator late.
async fn members_of(
    admin: &AdminClient,
    node: std::net::SocketAddr,
    swarm: InfoHash,
) -> anyhow::Result<Vec<tracker::api::SwarmMember>> {
    let mut tries = 0;
    loop {
        match admin.swarm_members_of(node, swarm).await {
            Ok(members) => return Ok(members),
            Err(e) if tries < 5 => {
                tries += 1;
                eprintln!("reading the members of {swarm} from {node}: {e}; trying again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long the tracker may have gone without hearing from a peer in swarm `swarm`
/// (0: main, 1: small), at most: the longest gap the worker saw, or the time from
/// sending its last acknowledged refresh to the check (refreshes after the end of the load
/// are not recorded, so this errs towards "may have expired", never towards "lost").
fn quiet_ms(outcome: &crate::plan::PeerOutcome, swarm: usize, check_unix_ms: u64) -> u64 {
    let since_last = check_unix_ms.saturating_sub(outcome.last_refresh_unix_ms[swarm]);
    outcome.longest_quiet_ms[swarm].max(since_last)
}

/// Waits (up to 60 s) until every node's applied slot reaches the highest decided slot
/// any node reported when the wait began.
async fn caught_up(cluster: &Cluster) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut target = 0;
    for addrs in cluster.nodes.values() {
        if let Some(h) = cluster::health(addrs.http).await {
            target = target.max(h.decided);
        }
    }
    loop {
        let mut behind = Vec::new();
        for (id, addrs) in &cluster.nodes {
            match cluster::health(addrs.http).await {
                Some(h) if h.applied >= target => {}
                other => behind.push((*id, other.map(|h| h.applied))),
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("nodes did not apply slot {target} within 60 s: {behind:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
