//! Changing the tracker cluster's membership with `bt-tracker member` and `leader
//! transfer`, on real `bt-tracker` processes, under a steady write load: replacing a node
//! killed with SIGKILL by a fresh one, growing from 3 to 5 nodes and back, and removing
//! the leader. In each, every acknowledged write is on every remaining node afterwards,
//! and the longest stretch without an acknowledged write is printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use tokio::sync::Notify;
use tracker::Bitfield;
use tracker::admin::AdminClient;
use tracker::api::ClusterStatus;
use tracker::torrent::{InfoHash, Torrent};

/// Writers, each a peer of its own reporting one new piece per write.
const WRITERS: usize = 4;

/// Each writer writes at most once per this interval, so that the torrent's pieces last
/// through every scenario (about 20 s) on a fast machine.
const WRITE_INTERVAL: Duration = Duration::from_millis(5);

/// A steady load of writes: `WRITERS` peers, each reporting one more piece of one
/// torrent per write, one write at a time.
struct WriteLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Writer>>,
    /// Writes acknowledged so far, by every writer, and a wake-up at each.
    acks: Arc<(AtomicUsize, Notify)>,
    started: Instant,
}

/// What one writer had acknowledged.
struct Writer {
    fingerprint: certs::Fingerprint,
    acked: Vec<u32>,
    ack_times: Vec<Instant>,
}

impl WriteLoad {
    async fn start(cluster: &ProcessCluster, torrent: &Torrent) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new((AtomicUsize::new(0), Notify::new()));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let endpoint = peer_endpoint();
            let fingerprint = endpoint.fingerprint();
            let client = quick_client(endpoint, cluster.peer_addrs(), cluster.ca);
            let hash = torrent.info_hash();
            let pieces = torrent.piece_count();
            let addr = format!("127.0.0.1:{}", 9000 + w).parse().unwrap();
            client
                .join(hash, addr, Bitfield::new(pieces), 0)
                .await
                .expect("join the swarm");
            let (stop, acks) = (stop.clone(), acks.clone());
            tasks.push(tokio::spawn(async move {
                let mut writer = Writer {
                    fingerprint,
                    acked: Vec::new(),
                    ack_times: Vec::new(),
                };
                let mut next = 0;
                let mut pace = tokio::time::interval(WRITE_INTERVAL);
                while !stop.load(Ordering::Relaxed) && next < pieces {
                    pace.tick().await;
                    // An error is a write not acknowledged: it may or may not be applied,
                    // so only acknowledged writes are checked.
                    if client.have(hash, vec![next]).await.is_ok() {
                        writer.acked.push(next);
                        writer.ack_times.push(Instant::now());
                        acks.0.fetch_add(1, Ordering::Relaxed);
                        acks.1.notify_waiters();
                    }
                    next += 1;
                }
                writer
            }));
        }
        WriteLoad {
            stop,
            tasks,
            acks,
            started: Instant::now(),
        }
    }

    /// Waits until `more` writes have been acknowledged from now on: the writes flow
    /// again after a membership change.
    async fn flows(&self, more: usize) {
        let (count, acked) = &*self.acks;
        let target = count.load(Ordering::Relaxed) + more;
        let resumed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let notified = acked.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if count.load(Ordering::Relaxed) >= target {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(resumed.is_ok(), "writes did not flow within 15 s");
    }

    /// Stops the load; prints its longest write gap and returns every writer's acks.
    ///
    /// The gap is measured up to the stop: a write still waiting then (on a killed
    /// node, until its client's attempt times out) is checked when it is acknowledged
    /// but does not stretch the gap past the end of the load.
    async fn finish(self, scenario: &str) -> Vec<Writer> {
        self.flows(4 * WRITERS).await;
        let stopped = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        let mut writers = Vec::new();
        for t in self.tasks {
            writers.push(t.await.unwrap());
        }
        let mut times: Vec<Instant> = writers
            .iter()
            .flat_map(|w| w.ack_times.iter().copied())
            .collect();
        times.sort();
        let acked = times.len();
        times.retain(|t| *t <= stopped);
        times.push(stopped);
        let mut gap = Duration::ZERO;
        let mut gap_start = self.started;
        let mut last = self.started;
        for t in times {
            if t - last > gap {
                gap = t - last;
                gap_start = last;
            }
            last = t;
        }
        eprintln!(
            "gap starts {:?} after the load started",
            gap_start - self.started
        );
        println!(
            "{scenario}: {acked} writes acknowledged in {:.1} s; longest write gap {} ms, \
             from {} ms after the load began",
            self.started.elapsed().as_secs_f64(),
            gap.as_millis(),
            (gap_start - self.started).as_millis()
        );
        assert!(acked > 0, "the load wrote nothing");
        writers
    }
}

/// Three `bt-tracker` processes, a torrent with many pieces published on them, and the
/// write load on that torrent (the directory holds the torrent's file).
async fn three_nodes_under_load() -> (ProcessCluster, tempfile::TempDir, Torrent, WriteLoad) {
    let cluster = ProcessCluster::start(3, 300);
    let files = tempfile::tempdir().unwrap();
    let torrent = load_torrent(&cluster, files.path());
    let token = cluster.create_token("alice");
    let client = quick_client(peer_endpoint(), cluster.peer_addrs(), cluster.ca);
    client.publish(&token, torrent.encode()).await.unwrap();
    let load = WriteLoad::start(&cluster, &torrent).await;
    (cluster, files, torrent, load)
}

/// A torrent with many pieces, so every write of the load reports a new one.
fn load_torrent(cluster: &ProcessCluster, dir: &std::path::Path) -> Torrent {
    make_torrent(
        dir,
        "load.bin",
        4096 * 16 * 1024,
        cluster.peer_addrs(),
        cluster.ca,
    )
}

/// Every node of `nodes` holds every acknowledged write (waiting for it to catch up).
async fn assert_no_acknowledged_write_lost(
    cluster: &ProcessCluster,
    nodes: &[u64],
    hash: InfoHash,
    writers: &[Writer],
) {
    let admin = AdminClient::new(&cluster.certs(), cluster.cluster_addrs()).unwrap();
    for id in nodes {
        let addr = cluster.nodes[id].cluster;
        let missing = eventually(Duration::from_secs(15), || async {
            let members = admin.swarm_members_of(addr, hash).await.ok()?;
            let have: BTreeMap<_, _> = members.iter().map(|m| (m.fingerprint, &m.have)).collect();
            let missing: usize = writers
                .iter()
                .map(|w| match have.get(&w.fingerprint) {
                    Some(bits) => w.acked.iter().filter(|p| !bits.get(**p)).count(),
                    None => w.acked.len(),
                })
                .sum();
            (missing == 0).then_some(())
        })
        .await;
        assert!(
            missing.is_some(),
            "node {id} lacks acknowledged writes (or never caught up)"
        );
    }
}

/// Runs `bt-tracker ARGS` plus the operator flags, off the async workers.
async fn operator(cluster: &ProcessCluster, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(cluster.operator_args());
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_cli(&refs, None)
    })
    .await
    .unwrap()
}

/// The leader's view of the membership.
async fn membership(cluster: &ProcessCluster) -> ClusterStatus {
    let admin = AdminClient::new(&cluster.certs(), cluster.cluster_addrs()).unwrap();
    eventually(Duration::from_secs(10), || async {
        admin
            .cluster_view()
            .await
            .ok()
            .filter(|v| v.leader == Some(v.id))
    })
    .await
    .expect("a leader answers")
}

async fn leader(cluster: &ProcessCluster) -> u64 {
    membership(cluster).await.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_is_replaced_by_a_fresh_node_under_load() {
    let (mut cluster, _files, torrent, load) = three_nodes_under_load().await;

    let lead = leader(&cluster).await;
    let dead = (1..=3).rev().find(|n| *n != lead).unwrap();
    cluster.kill(dead);
    eprintln!("killed at {:?}", load.started.elapsed());
    // A new machine: new id, new name, new certificate, empty data directory.
    cluster.spawn_joiner(4);
    eprintln!("spawned at {:?}", load.started.elapsed());
    // It votes in place of the dead node (one change); removing the dead node after
    // that is a no-op that succeeds.
    let dead_id = dead.to_string();
    let add = [
        "member",
        "add",
        &cluster.member_arg(4),
        "--replacing",
        &dead_id,
    ];
    let added = operator(&cluster, &add).await;
    eprintln!("added at {:?}", load.started.elapsed());
    let expected = format!("node 4 is a voter in place of node {dead}");
    assert!(added.contains(&expected), "{added}");
    let removed = operator(&cluster, &["member", "remove", &dead_id]).await;
    eprintln!("removed at {:?}", load.started.elapsed());
    assert!(
        removed.contains(&format!("node {dead} was already removed")),
        "{removed}"
    );

    let writers = load.finish("replace a killed node").await;
    let view = membership(&cluster).await;
    let mut voters: Vec<u64> = (1..=4).filter(|n| *n != dead).collect();
    voters.sort();
    assert_eq!(view.voters, voters);
    assert_eq!(view.retired, vec![dead]);
    assert_no_acknowledged_write_lost(&cluster, &voters, torrent.info_hash(), &writers).await;
    let listed = operator(&cluster, &["member", "list"]).await;
    assert!(listed.contains("4\tvoter\tnode4@"), "{listed}");
    assert!(listed.contains(&format!("{dead}\tremoved")), "{listed}");
    // The cluster page of a node started before node 4 existed shows it, and the roles.
    let http = cluster.nodes[&1].http;
    let (status, body) = http_get(http, "/api/cluster").await.unwrap();
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let role = |id: u64| {
        answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| n["role"].as_str().unwrap().to_string())
    };
    assert_eq!(role(4).as_deref(), Some("voter"), "{body}");
    assert_eq!(role(dead).as_deref(), Some("removed"), "{body}");
    let (_, page) = http_get(http, "/cluster").await.unwrap();
    assert!(page.contains("<td class=\"member\">voter</td>"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_grows_from_three_to_five_nodes_and_shrinks_back_under_load() {
    let (mut cluster, _files, torrent, load) = three_nodes_under_load().await;

    for id in [4, 5] {
        cluster.spawn_joiner(id);
        let added = operator(&cluster, &["member", "add", &cluster.member_arg(id)]).await;
        assert!(added.contains(&format!("node {id} is a voter")), "{added}");
    }
    assert_eq!(membership(&cluster).await.voters, vec![1, 2, 3, 4, 5]);
    for id in [4, 5] {
        operator(&cluster, &["member", "remove", &id.to_string()]).await;
    }
    let writers = load.finish("grow 3 -> 5 -> 3").await;
    let view = membership(&cluster).await;
    assert_eq!(view.voters, vec![1, 2, 3]);
    assert_eq!(view.retired, vec![4, 5]);
    assert_no_acknowledged_write_lost(&cluster, &[1, 2, 3], torrent.info_hash(), &writers).await;
    // The removed nodes learn it and exit by themselves.
    for id in [4, 5] {
        let mut child = cluster.children.remove(&id).unwrap();
        let exited = eventually(Duration::from_secs(10), || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await;
        assert!(exited.is_some_and(|s| s.success()), "node {id} stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_hands_over_and_writes_go_on() {
    let (mut cluster, _files, torrent, load) = three_nodes_under_load().await;

    // First a transfer on request, then the removal of whichever node leads.
    let before = leader(&cluster).await;
    let to = (1..=3).find(|n| *n != before).unwrap();
    let t0 = Instant::now();
    let moved = operator(&cluster, &["leader", "transfer", "--to", &to.to_string()]).await;
    eprintln!("transfer took {:?}", t0.elapsed());
    assert!(moved.contains(&format!("node {to} leads")), "{moved}");
    let old = leader(&cluster).await;
    assert_eq!(old, to);
    let t0 = Instant::now();
    operator(&cluster, &["member", "remove", &old.to_string()]).await;
    eprintln!(
        "removal took {:?}, began {:?} after the load",
        t0.elapsed(),
        t0 - load.started
    );

    let writers = load.finish("remove the leader").await;
    let view = membership(&cluster).await;
    assert_ne!(view.id, old, "another node leads");
    let rest: Vec<u64> = (1..=3).filter(|n| *n != old).collect();
    assert_eq!(view.voters, rest);
    assert_no_acknowledged_write_lost(&cluster, &rest, torrent.info_hash(), &writers).await;
    let mut child = cluster.children.remove(&old).unwrap();
    let exited = eventually(Duration::from_secs(10), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(
        exited.is_some_and(|s| s.success()),
        "the removed leader stopped"
    );
}
