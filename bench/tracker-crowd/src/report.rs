//! The figures of a run, from the workers' samples and the coordinator's samples of the
//! nodes, and the table they are printed as.

use std::collections::{BTreeMap, HashMap, HashSet};

use certs::Fingerprint;

use crate::check::Verdict;
use crate::cluster::{Cluster, Health};
use crate::coordinator::Settings;
use crate::plan::{Fate, KINDS, PeerOutcome, Sample, WorkerResult};

/// What the coordinator read from every node at one moment.
pub struct NodeSample<T> {
    /// When, µs since the Unix epoch.
    pub at_us: u64,
    /// By node (None: down, or for `/health` without a leader).
    pub nodes: Vec<Option<T>>,
}

/// The nodes' `/health`, read every 10 ms.
pub type HealthSample = NodeSample<Health>;

/// The nodes' `/metrics` gauges, read every second.
pub type MetricsSample = NodeSample<BTreeMap<String, f64>>;

/// The run's timeline, ms after the start.
pub struct Timeline {
    /// End of the join window.
    pub join_window_ms: u64,
    /// The leader's kill, if it is killed.
    pub kill_leader_ms: Option<u64>,
    /// End of the load.
    pub end_ms: u64,
    /// The start, µs since the Unix epoch.
    pub t0_unix_us: u64,
    /// Which node was killed.
    pub killed_leader: Option<u64>,
    /// The nodes' peer time to live.
    pub peer_ttl_ms: u64,
}

impl Timeline {
    /// The end of the steady phase: the leader's kill, or the end of the load.
    fn steady_end_ms(&self) -> u64 {
        self.kill_leader_ms.unwrap_or(self.end_ms)
    }
}

/// Latency figures of one kind of request in one phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct KindStats {
    /// Requests.
    pub count: usize,
    /// Failed after every retry.
    pub errors: usize,
    /// Attempts at a node that gave no answer.
    pub retries: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl KindStats {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> KindStats {
        let mut latencies = Vec::new();
        let mut stats = KindStats::default();
        for s in samples {
            latencies.push(s.latency_us);
            stats.errors += usize::from(!s.ok);
            stats.retries += u64::from(s.retries);
        }
        latencies.sort_unstable();
        stats.count = latencies.len();
        stats.p50_ms = percentile(&latencies, 0.50) as f64 / 1000.0;
        stats.p99_ms = percentile(&latencies, 0.99) as f64 / 1000.0;
        stats.max_ms = latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
        stats
    }
}

/// The `q` quantile of sorted values (0 if none).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One node's costs.
#[derive(Clone, Debug, Default)]
pub struct NodeFigures {
    /// Node id.
    pub id: u64,
    /// CPU seconds over the run, every incarnation.
    pub cpu_s: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Latest snapshot, MiB.
    pub snapshot_mib: f64,
    /// Time the latest snapshot took to write and sync, s.
    pub snapshot_write_s: f64,
    /// Snapshots written by the current incarnation.
    pub snapshots: f64,
    /// Requests answered "busy" by the current incarnation.
    pub busy: f64,
}

/// Everything a run measured.
pub struct Figures {
    /// Phase name and its span, ms after the start.
    pub phases: Vec<(&'static str, u64, u64)>,
    /// Per phase, per kind.
    pub stats: Vec<Vec<KindStats>>,
    /// Per phase, every kind together.
    pub totals: Vec<KindStats>,
    /// `have` p99 per second around the leader's kill: (s after the kill, count, p99 ms).
    pub around_kill: Vec<(i64, usize, f64)>,
    /// Seconds after the kill from which `have` p99 stayed within the steady bound.
    pub recovered_after_s: Option<i64>,
    /// The steady bound used: max(2 × steady `have` p99, 50 ms).
    pub recovery_bound_ms: f64,
    /// Delay from sending a report to its being applied on every running node:
    /// (timed reports, p50 ms, p99 ms, max ms, unresolved).
    pub visibility: (usize, f64, f64, f64, usize),
    /// Decided slots per second in the steady phase.
    pub slots_per_s: f64,
    /// Commands per slot in the steady phase.
    pub commands_per_slot: f64,
    /// Piece reports applied per second in the steady phase.
    pub pieces_per_s: f64,
    /// Pieces acknowledged to the clients per second of the steady phase, by the second
    /// of the acknowledgement: (mean, lowest second, highest second).
    pub acked_per_s: (f64, u64, u64),
    /// The same, second by second.
    pub acked_each_second: Vec<u64>,
    /// Peers that had reported every piece by the end (in a closed-loop run, the seconds
    /// after the first of them ran out measure fewer senders).
    pub reported_all: usize,
    /// By node.
    pub nodes: Vec<NodeFigures>,
    /// Peers that joined, and peers that rejoined after being told they were not in
    /// the swarm.
    pub joined: usize,
    /// Rejoins.
    pub rejoins: u64,
    /// Which node was killed.
    pub killed_leader: Option<u64>,
    /// The neighbour graph the joins handed out.
    pub graph: Graph,
}

/// The neighbour graph of the peers still in the swarm at the end: an edge from each
/// present peer to each neighbour its last join of the main swarm was given, if that
/// neighbour is present too. Present: joined, stayed, and never a whole time to live
/// without an acknowledged refresh up to the end of the load. Peers that left, were
/// killed or may have expired are gone from the tracker with their handouts (it counts
/// only live ones), so counting their edges would overstate the in-degree peers see.
#[derive(Clone, Copy, Debug, Default)]
pub struct Graph {
    /// Peers with at least one edge.
    pub peers: usize,
    /// Edges.
    pub edges: usize,
    /// The most joiners given one peer as a neighbour.
    pub max_in_degree: usize,
    /// Connected components, edges taken both ways.
    pub components: usize,
    /// Peers in the largest component.
    pub largest: usize,
}

impl Graph {
    fn of(results: &[WorkerResult], timeline: &Timeline) -> Graph {
        let end_unix_ms = timeline.t0_unix_us / 1000 + timeline.end_ms;
        let ttl = timeline.peer_ttl_ms;
        let is_present = |o: &PeerOutcome| {
            o.joined
                && o.fate == Fate::Stays
                && o.longest_quiet_ms[0] < ttl
                && end_unix_ms.saturating_sub(o.last_refresh_unix_ms[0]) < ttl
        };
        let mut index: HashMap<Fingerprint, usize> = HashMap::new();
        let id = |f: Fingerprint, index: &mut HashMap<Fingerprint, usize>| {
            let next = index.len();
            *index.entry(f).or_insert(next)
        };
        let present: Vec<&PeerOutcome> = results
            .iter()
            .flat_map(|r| &r.peers)
            .filter(|o| is_present(o))
            .collect();
        let present_set: HashSet<Fingerprint> = present.iter().map(|o| o.fingerprint).collect();
        let mut edges = Vec::new();
        for o in present {
            let from = id(o.fingerprint, &mut index);
            for &n in o.neighbours.iter().filter(|n| present_set.contains(n)) {
                edges.push((from, id(n, &mut index)));
            }
        }
        let mut parent: Vec<usize> = (0..index.len()).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let mut in_degree = vec![0usize; index.len()];
        for &(a, b) in &edges {
            in_degree[b] += 1;
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
        let mut sizes: HashMap<usize, usize> = HashMap::new();
        for x in 0..index.len() {
            *sizes.entry(root(&mut parent, x)).or_default() += 1;
        }
        Graph {
            peers: index.len(),
            edges: edges.len(),
            max_in_degree: in_degree.into_iter().max().unwrap_or(0),
            components: sizes.len(),
            largest: sizes.values().copied().max().unwrap_or(0),
        }
    }
}

impl Figures {
    /// Computes the figures of a run.
    pub fn compute(
        timeline: &Timeline,
        results: &[WorkerResult],
        health: &[HealthSample],
        metrics: &[MetricsSample],
        cluster: &Cluster,
    ) -> Figures {
        let k = timeline.steady_end_ms();
        let mut phases = vec![
            ("join window", 0, timeline.join_window_ms),
            ("steady", timeline.join_window_ms, k),
        ];
        if timeline.kill_leader_ms.is_some() {
            phases.push(("kill +5 s", k, k + 5000));
            phases.push(("after", k + 5000, timeline.end_ms));
        }
        let samples: Vec<&Sample> = results.iter().flat_map(|r| &r.samples).collect();
        let in_phase = |s: &&&Sample, from: u64, to: u64| {
            u64::from(s.at_ms) >= from && u64::from(s.at_ms) < to
        };
        let mut stats: Vec<Vec<KindStats>> = Vec::new();
        let mut totals = Vec::new();
        for &(_, from, to) in &phases {
            stats.push(
                (0..KINDS.len())
                    .map(|kind| {
                        KindStats::of(
                            samples
                                .iter()
                                .filter(|s| in_phase(s, from, to) && s.kind as usize == kind)
                                .copied(),
                        )
                    })
                    .collect(),
            );
            totals.push(KindStats::of(
                samples.iter().filter(|s| in_phase(s, from, to)).copied(),
            ));
        }

        let steady_have: &KindStats = &stats[1][1];
        let recovery_bound_ms = f64::max(2.0 * steady_have.p99_ms, 50.0);
        let mut around_kill = Vec::new();
        // The seconds around the leader's kill, none if it was not killed.
        let seconds = timeline.kill_leader_ms.map(|_| -3i64..=20);
        for second in seconds.into_iter().flatten() {
            let from = (k as i64 + second * 1000).max(0) as u64;
            let s = KindStats::of(
                samples
                    .iter()
                    .filter(|s| s.kind == 1 && in_phase(s, from, from + 1000))
                    .copied(),
            );
            around_kill.push((second, s.count, s.p99_ms));
        }
        let after: Vec<_> = around_kill.iter().filter(|(s, _, _)| *s >= 0).collect();
        let recovered_after_s = (0..after.len()).find_map(|i| {
            let window = &after[i..(i + 3).min(after.len())];
            (window.len() == 3 && window.iter().all(|(_, _, p99)| *p99 <= recovery_bound_ms))
                .then(|| after[i].0)
        });

        let visibility = visibility(results, health);
        let (slots_per_s, commands_per_slot, pieces_per_s) = consensus(timeline, health, metrics);
        let acked_each_second = acked_each_second(&samples, timeline.join_window_ms, k);
        let acked_per_s = (
            acked_each_second.iter().sum::<u64>() as f64 / acked_each_second.len().max(1) as f64,
            acked_each_second.iter().copied().min().unwrap_or(0),
            acked_each_second.iter().copied().max().unwrap_or(0),
        );
        let last_metrics = metrics
            .iter()
            .rev()
            .find(|m| m.nodes.iter().all(Option::is_some));
        let nodes = cluster
            .costs
            .iter()
            .map(|(&id, cost)| {
                let gauges = last_metrics.and_then(|m| m.nodes.get(id as usize - 1)?.as_ref());
                let gauge = |name: &str| gauges.and_then(|g| g.get(name).copied()).unwrap_or(0.0);
                NodeFigures {
                    id,
                    cpu_s: cost.cpu(),
                    peak_rss_mib: cost.peak_rss as f64 / (1 << 20) as f64,
                    snapshot_mib: gauge("snapshot_bytes") / (1 << 20) as f64,
                    snapshot_write_s: gauge("snapshot_write_seconds"),
                    snapshots: gauge("snapshots"),
                    busy: gauge("busy"),
                }
            })
            .collect();
        let outcomes = results.iter().flat_map(|r| &r.peers);
        Figures {
            phases,
            stats,
            totals,
            around_kill,
            recovered_after_s,
            recovery_bound_ms,
            visibility,
            slots_per_s,
            commands_per_slot,
            pieces_per_s,
            acked_per_s,
            acked_each_second,
            reported_all: outcomes.clone().filter(|o| o.acked.is_full()).count(),
            nodes,
            joined: outcomes.clone().filter(|o| o.joined).count(),
            rejoins: outcomes.map(|o| u64::from(o.rejoins)).sum(),
            killed_leader: timeline.killed_leader,
            graph: Graph::of(results, timeline),
        }
    }

    /// Prints the table and the check.
    pub fn print(&self, settings: &Settings, verdict: &Verdict) {
        println!(
            "\n## tracker-crowd: {} peers in {} + 1 processes, 1 torrent of {} pieces + {} small \
             torrents of {} peers, TTL {} s, seed {}",
            settings.peers,
            settings.procs,
            settings.pieces,
            settings.small_torrents,
            settings.small_peers,
            settings.peer_ttl_secs,
            settings.seed
        );
        if settings.closed_loop {
            println!(
                "closed loop: every peer reports {} pieces as soon as its last report is \
                 acknowledged, until it has reported all {}",
                settings.pieces_per_report, settings.pieces
            );
        }
        println!(
            "joined {}; rejoins after `not in swarm` {}; leader killed: node {}",
            self.joined,
            self.rejoins,
            self.killed_leader.map_or("none".into(), |n| n.to_string())
        );
        println!("\n| phase | kind | count | p50 ms | p99 ms | max ms | retries | errors |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for (p, &(name, from, to)) in self.phases.iter().enumerate() {
            let label = format!("{name} ({}-{} s)", from / 1000, to / 1000);
            for (kind, s) in self.stats[p].iter().enumerate() {
                if s.count > 0 {
                    row(&label, KINDS[kind], s);
                }
            }
            row(&label, "all", &self.totals[p]);
        }
        if self.killed_leader.is_some() {
            println!(
                "\n`have` p99 per second around the leader kill (s after the kill: p99 ms): {}",
                self.around_kill
                    .iter()
                    .map(|(s, n, p99)| format!("{s:+}: {p99:.0} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "back within {:.0} ms (2 × steady p99, at least 50 ms) for 3 s running: {}",
                self.recovery_bound_ms,
                self.recovered_after_s
                    .map_or("never within 20 s".into(), |s| format!(
                        "{s} s after the kill"
                    ))
            );
        }
        let (n, p50, p99, max, unresolved) = self.visibility;
        println!(
            "report acknowledged → applied on every running node: {n} timed, p50 {p50:.1} ms, \
             p99 {p99:.1} ms, max {max:.1} ms ({unresolved} unresolved)"
        );
        println!(
            "consensus in the steady phase: {:.0} slots/s, {:.1} commands per slot, {:.0} \
             piece reports applied per second",
            self.slots_per_s, self.commands_per_slot, self.pieces_per_s
        );
        let (mean, low, high) = self.acked_per_s;
        println!(
            "pieces acknowledged to the peers per second of the steady phase: mean {mean:.0}, \
             lowest second {low}, highest second {high}"
        );
        if settings.closed_loop {
            println!(
                "peers that had reported every piece by the end: {} (they stopped sending)",
                self.reported_all
            );
            println!(
                "second by second: {}",
                self.acked_each_second
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        println!(
            "\n| node | CPU s | peak RSS MiB | snapshot MiB | snapshot write s | snapshots | \
             busy answers |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for n in &self.nodes {
            println!(
                "| {} | {:.1} | {:.1} | {:.2} | {:.3} | {:.0} | {:.0} |",
                n.id,
                n.cpu_s,
                n.peak_rss_mib,
                n.snapshot_mib,
                n.snapshot_write_s,
                n.snapshots,
                n.busy
            );
        }
        let g = self.graph;
        println!(
            "neighbour graph of the peers present at the end: {} peers, {} edges, max \
             in-degree {} (each join asks for {}), {} connected component(s), the largest of \
             {} peers",
            g.peers,
            g.edges,
            g.max_in_degree,
            tracker::api::DEFAULT_NEIGHBOURS,
            g.components,
            g.largest
        );
        println!(
            "\ncheck after {:.1} s of catching up: {} leaves acknowledged, {} peers killed",
            verdict.catch_up.as_secs_f64(),
            verdict.leavers,
            verdict.victims
        );
        println!(
            "| node | members | staying peers | acked pieces | lost | staying absent | staying \
             expired | small absent | small expired | leavers present | killed present |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for n in &verdict.nodes {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                n.id,
                n.members,
                n.staying,
                n.acked_pieces,
                n.lost_pieces,
                n.staying_absent,
                n.staying_expired,
                n.small_absent,
                n.small_expired,
                n.leavers_present,
                n.victims_present
            );
        }
        println!(
            "(absent: refreshed within every TTL yet missing, a loss; expired: went a whole \
             TTL without an acknowledged refresh, so the tracker rightly dropped it)"
        );
        println!(
            "\ncheck: {}",
            if verdict.passed() {
                "PASSED (every acknowledged report of a present peer on every node, no peer \
                 refreshed within its TTL missing, departed peers gone)"
            } else {
                "FAILED"
            }
        );
    }

    /// The figures as one JSON object.
    pub fn json(&self, settings: &Settings, verdict: &Verdict) -> String {
        let phases: Vec<_> = self
            .phases
            .iter()
            .enumerate()
            .map(|(p, &(name, from, to))| {
                let kinds: serde_json::Map<String, serde_json::Value> = self.stats[p]
                    .iter()
                    .enumerate()
                    .chain(std::iter::once((KINDS.len(), &self.totals[p])))
                    .map(|(kind, s)| {
                        (
                            KINDS.get(kind).copied().unwrap_or("all").to_string(),
                            serde_json::json!({
                                "count": s.count, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms,
                                "max_ms": s.max_ms, "retries": s.retries, "errors": s.errors,
                            }),
                        )
                    })
                    .collect();
                serde_json::json!({"phase": name, "from_s": from / 1000, "to_s": to / 1000, "kinds": kinds})
            })
            .collect();
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "id": n.id, "cpu_s": n.cpu_s, "peak_rss_mib": n.peak_rss_mib,
                    "snapshot_mib": n.snapshot_mib, "snapshot_write_s": n.snapshot_write_s,
                    "busy": n.busy,
                })
            })
            .collect();
        let (n, p50, p99, max, unresolved) = self.visibility;
        serde_json::json!({
            "bench": "tracker-crowd",
            "peers": settings.peers, "procs": settings.procs, "pieces": settings.pieces,
            "small_torrents": settings.small_torrents, "seed": settings.seed,
            "closed_loop": settings.closed_loop, "pieces_per_report": settings.pieces_per_report,
            "phases": phases,
            "recovered_after_s": self.recovered_after_s,
            "visibility": {"timed": n, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "unresolved": unresolved},
            "slots_per_s": self.slots_per_s, "commands_per_slot": self.commands_per_slot,
            "pieces_per_s": self.pieces_per_s,
            "acked_pieces_per_s": {"mean": self.acked_per_s.0, "lowest_second": self.acked_per_s.1,
                                   "highest_second": self.acked_per_s.2},
            "graph": {"peers": self.graph.peers, "edges": self.graph.edges,
                      "max_in_degree": self.graph.max_in_degree,
                      "components": self.graph.components, "largest": self.graph.largest},
            "nodes": nodes,
            "lost_pieces": verdict.nodes.iter().map(|n| n.lost_pieces).sum::<u64>(),
            "passed": verdict.passed(),
        })
        .to_string()
    }
}

fn row(phase: &str, kind: &str, s: &KindStats) {
    println!(
        "| {phase} | {kind} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
        s.count, s.p50_ms, s.p99_ms, s.max_ms, s.retries, s.errors
    );
}

/// The delay from sending a timed report to its being applied on every running node.
///
/// For a report acknowledged at `a`, `S` is the highest `decided` of any node in the first
/// sample taken after `a` (the report's slot is at most `S`: some node applied it before
/// answering). The report is visible everywhere by the first later sample in which every
/// node that answers has applied `S`. An upper bound, by the 10 ms sampling period.
fn visibility(results: &[WorkerResult], health: &[HealthSample]) -> (usize, f64, f64, f64, usize) {
    let mut delays = Vec::new();
    let mut unresolved = 0;
    for &(sent, acked) in results.iter().flat_map(|r| &r.visibility) {
        let first = health.partition_point(|h| h.at_us < acked);
        let Some(s) = health.get(first).map(|h| {
            h.nodes
                .iter()
                .flatten()
                .map(|n| n.decided)
                .max()
                .unwrap_or(0)
        }) else {
            unresolved += 1;
            continue;
        };
        let visible = health[first..].iter().find(|h| {
            h.nodes.iter().flatten().next().is_some()
                && h.nodes.iter().flatten().all(|n| n.applied >= s)
        });
        match visible {
            Some(h) => delays.push(h.at_us.saturating_sub(sent).min(u64::from(u32::MAX)) as u32),
            None => unresolved += 1,
        }
    }
    delays.sort_unstable();
    (
        delays.len(),
        percentile(&delays, 0.5) as f64 / 1000.0,
        percentile(&delays, 0.99) as f64 / 1000.0,
        delays.last().copied().unwrap_or(0) as f64 / 1000.0,
        unresolved,
    )
}

/// Pieces acknowledged in each whole second of `[from_ms, to_ms)`, by when the answer
/// came.
fn acked_each_second(samples: &[&Sample], from_ms: u64, to_ms: u64) -> Vec<u64> {
    let seconds = (to_ms.saturating_sub(from_ms) / 1000) as usize;
    let mut per_second = vec![0u64; seconds];
    for s in samples {
        let answered_ms = u64::from(s.at_ms) + u64::from(s.latency_us) / 1000;
        if let Some(second) = answered_ms
            .checked_sub(from_ms)
            .map(|d| (d / 1000) as usize)
            && let Some(count) = per_second.get_mut(second)
        {
            *count += u64::from(s.pieces);
        }
    }
    per_second
}

/// Slots decided per second, commands per slot and piece reports applied per second over
/// the steady phase (from the join window to the leader's kill or the end).
fn consensus(
    timeline: &Timeline,
    health: &[HealthSample],
    metrics: &[MetricsSample],
) -> (f64, f64, f64) {
    let from = timeline.t0_unix_us + timeline.join_window_ms * 1000;
    let to = timeline.t0_unix_us + timeline.steady_end_ms() * 1000;
    let decided = |h: &HealthSample| h.nodes.iter().flatten().map(|n| n.decided).max();
    let window: Vec<_> = health
        .iter()
        .filter(|h| h.at_us >= from && h.at_us < to)
        .filter_map(|h| Some((h.at_us, decided(h)?)))
        .collect();
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return (0.0, 0.0, 0.0);
    };
    let secs = (last.0 - first.0) as f64 / 1e6;
    let slots = last.1.saturating_sub(first.1) as f64;
    let in_window: Vec<_> = metrics
        .iter()
        .filter(|m| m.at_us >= from && m.at_us < to && m.nodes.iter().all(Option::is_some))
        .collect();
    let (mut commands, mut pieces, mut metric_secs) = (0.0, 0.0, 0.0);
    if let (Some(a), Some(b)) = (in_window.first(), in_window.last()) {
        metric_secs = (b.at_us - a.at_us) as f64 / 1e6;
        for (x, y) in a.nodes.iter().zip(&b.nodes) {
            let (Some(x), Some(y)) = (x, y) else { continue };
            let delta = |name: &str| y.get(name).unwrap_or(&0.0) - x.get(name).unwrap_or(&0.0);
            commands += delta("commits");
            pieces = f64::max(pieces, delta("piece_reports"));
        }
    }
    let rate = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
    let commands_per_slot = if slots > 0.0 && metric_secs > 0.0 {
        rate(commands, metric_secs) / rate(slots, secs)
    } else {
        0.0
    };
    (
        rate(slots, secs),
        commands_per_slot,
        rate(pieces, metric_secs),
    )
}
