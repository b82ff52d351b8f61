//! The paxos crate run for real: three `kv-server` processes on loopback, QUIC with mutual
//! TLS, durable logs, SIGKILL, an empty data directory, and a network partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certs::Fingerprint;
use tests::cluster::Cluster;
use tests::kv::{KvClient, KvResponse};
use tokio::sync::{Notify, watch};

const SERVER: &str = env!("CARGO_BIN_EXE_kv-server");

/// These tests each run a cluster of processes; one at a time keeps elections honest on a
/// 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn ca_fingerprint(cluster: &Cluster) -> Fingerprint {
    tests::kv::ca_fingerprint(&cluster.ca).unwrap()
}

fn client(cluster: &Cluster) -> KvClient {
    KvClient::new(cluster.client_addrs(), ca_fingerprint(cluster)).unwrap()
}

/// The node that leads, asked of every running node until one says so.
async fn leader(cluster: &Cluster) -> u64 {
    let probe = client(cluster);
    let deadline = tokio::time::Instant::now() + Cluster::PATIENCE;
    loop {
        for server in cluster.servers.iter().filter(|s| s.is_running()) {
            if let Ok(KvResponse::Status {
                id,
                is_leader: true,
                ..
            }) = probe.status(server.client_addr).await
            {
                return id;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader emerged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(cluster: &Cluster, id: u64) -> KvResponse {
    client(cluster)
        .status(cluster.servers[id as usize - 1].client_addr)
        .await
        .unwrap()
}

/// Writers putting keys `w{writer}-{i}` one at a time until stopped, recording each
/// acknowledged put (a put that fails may or may not be applied, so it is not checked).
struct WriteLoad {
    acknowledged: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    /// Notified at every acknowledged put.
    acked: Arc<Notify>,
    stop: watch::Sender<bool>,
    writers: tokio::task::JoinSet<()>,
}

impl WriteLoad {
    fn start(cluster: &Cluster, writers: u64) -> WriteLoad {
        let acknowledged: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let acked = Arc::new(Notify::new());
        let (stop_tx, stop) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..writers {
            let mut client = client(cluster);
            let (acknowledged, acked, stop) = (acknowledged.clone(), acked.clone(), stop.clone());
            tasks.spawn(async move {
                let mut i = 0u64;
                while !*stop.borrow() {
                    let (key, value) = (format!("w{w}-{i}"), format!("value {w} {i}").into_bytes());
                    if client.put(key.clone(), value.clone()).await.is_ok() {
                        acknowledged.lock().unwrap().insert(key, value);
                        acked.notify_waiters();
                    }
                    i += 1;
                }
            });
        }
        WriteLoad {
            acknowledged,
            acked,
            stop: stop_tx,
            writers: tasks,
        }
    }

    /// Waits until more than `count` puts are acknowledged in all; false if that takes
    /// longer than `patience`.
    async fn acknowledged_beyond(&self, count: usize, patience: Duration) -> bool {
        let waited = tokio::time::timeout(patience, async {
            loop {
                let notified = self.acked.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.acknowledged.lock().unwrap().len() > count {
                    return;
                }
                notified.await;
            }
        });
        waited.await.is_ok()
    }

    /// Stops the writers and waits for their last puts.
    async fn stop(mut self) {
        self.stop.send(true).unwrap();
        while self.writers.join_next().await.is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_20_times_under_load_loses_no_acknowledged_write() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(Path::new(SERVER), 1_000).await.unwrap();
    let load = WriteLoad::start(&cluster, 4);
    let acknowledged = load.acknowledged.clone();
    for round in 0..20 {
        let victim = leader(&cluster).await;
        cluster.servers[victim as usize - 1].kill();
        let before = acknowledged.lock().unwrap().len();
        let killed = std::time::Instant::now();
        // Writes resume: wait for acknowledgements after the kill.
        if !load
            .acknowledged_beyond(before + 3, Cluster::PATIENCE)
            .await
        {
            let mut statuses = Vec::new();
            for id in (1..=3).filter(|id| *id != victim) {
                statuses.push(status(&cluster, id).await);
            }
            panic!(
                "round {round}: writes did not resume after killing node {victim}: {statuses:?}"
            );
        }
        eprintln!(
            "round {round}: killed node {victim}, writes resumed after {:?}",
            killed.elapsed()
        );
        cluster.restart(victim).unwrap();
    }
    load.stop().await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "only {} writes acknowledged",
        acknowledged.len()
    );
    let mut reader = client(&cluster);
    for (key, value) in &acknowledged {
        let read = reader.get(key.clone()).await.unwrap();
        assert_eq!(read.as_ref(), Some(value), "acknowledged write {key} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_an_empty_data_directory_catches_up_through_a_snapshot() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(Path::new(SERVER), 50).await.unwrap();
    let mut writer = client(&cluster);
    for i in 0..300 {
        writer.put(format!("k{i}"), vec![i as u8]).await.unwrap();
    }
    let lagging = (leader(&cluster).await % 3) + 1;
    let node = &mut cluster.servers[lagging as usize - 1];
    node.kill();
    node.wipe_data().unwrap();
    for i in 300..400 {
        writer.put(format!("k{i}"), vec![i as u8]).await.unwrap();
    }
    cluster.restart(lagging).unwrap();
    let target = writer.put("last".into(), b"x".to_vec()).await.unwrap();
    // It catches up: its applied slot reaches the last write, from a snapshot (the log
    // before it was truncated on the others, so a snapshot is the only way).
    let deadline = tokio::time::Instant::now() + Cluster::PATIENCE;
    loop {
        if let KvResponse::Status {
            applied,
            snapshot_slot,
            ..
        } = status(&cluster, lagging).await
            && applied >= target
        {
            assert!(snapshot_slot > 0, "caught up without a snapshot");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {lagging} did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And it serves: reads through it see every write.
    let mut via_lagging = client(&cluster);
    via_lagging.prefer(lagging as usize - 1);
    for i in [0, 150, 299, 350, 399] {
        assert_eq!(
            via_lagging.get(format!("k{i}")).await.unwrap(),
            Some(vec![i as u8])
        );
    }
    assert_eq!(
        via_lagging.get("last".into()).await.unwrap(),
        Some(b"x".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_makes_no_progress_and_catches_up_after_healing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(Path::new(SERVER), 1_000).await.unwrap();
    let mut writer = client(&cluster);
    writer.put("before".into(), b"1".to_vec()).await.unwrap();
    let minority = (leader(&cluster).await % 3) + 1;
    cluster.isolate(minority, true);

    // The majority makes progress.
    let majority: Vec<usize> = (0..3).filter(|i| *i != minority as usize - 1).collect();
    writer.prefer(majority[0]);
    let mut last = 0;
    for i in 0..50 {
        last = writer
            .put(format!("during{i}"), b"2".to_vec())
            .await
            .unwrap();
    }
    // The minority does not: a write through it alone is never acknowledged.
    let mut isolated = KvClient::new(
        vec![cluster.servers[minority as usize - 1].client_addr],
        ca_fingerprint(&cluster),
    )
    .unwrap();
    isolated.deadline = Duration::from_secs(3);
    assert!(
        isolated
            .put("minority".into(), b"3".to_vec())
            .await
            .is_err()
    );
    let KvResponse::Status { applied: stuck, .. } = status(&cluster, minority).await else {
        panic!("no status")
    };
    assert!(
        stuck < last,
        "the minority applied slot {stuck} while partitioned"
    );

    // After healing, it catches up and serves the majority's writes.
    cluster.isolate(minority, false);
    let deadline = tokio::time::Instant::now() + Cluster::PATIENCE;
    loop {
        if let KvResponse::Status { applied, .. } = status(&cluster, minority).await
            && applied >= last
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the minority did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    isolated.deadline = Cluster::PATIENCE;
    assert_eq!(
        isolated.get("during49".into()).await.unwrap(),
        Some(b"2".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_replaced_by_a_new_one_under_load_and_no_acknowledged_write_is_lost() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(Path::new(SERVER), 200).await.unwrap();
    let load = WriteLoad::start(&cluster, 4);
    let acknowledged = load.acknowledged.clone();
    let dead = leader(&cluster).await % 3 + 1;
    cluster.servers[dead as usize - 1].kill();

    // The operator's replacement: a new node with a new id and an empty disk joins, is
    // added as a learner, catches up, and votes in place of the dead node. Removing the
    // dead node again is a no-op that succeeds.
    let new = cluster.join_node().unwrap();
    let address = cluster.paxos[new as usize - 1].to_string();
    let (new_id, dead_id) = (new.to_string(), dead.to_string());
    let add = [
        "member",
        "add",
        "--id",
        &new_id,
        "--address",
        &address,
        "--replacing",
        &dead_id,
    ];
    let added = cluster.operator(&add).unwrap();
    let expected = format!("node {new} is a voter in place of node {dead}");
    assert!(added.contains(&expected), "{added}");
    let removed = cluster
        .operator(&["member", "remove", "--id", &dead_id])
        .unwrap();
    assert!(
        removed.contains(&format!("node {dead} removed")),
        "{removed}"
    );
    let list = cluster.operator(&["member", "list"]).unwrap();
    for line in [
        format!("{new}\tvoter\tnode{new}@{address}\t"),
        format!("{dead}\tremoved\t"),
    ] {
        assert!(
            list.contains(&line),
            "no {line:?} in the member list:\n{list}"
        );
    }
    assert_eq!(list.matches("\tvoter\t").count(), 3, "{list}");

    // The new node votes: with one more original node gone, the two voters left of the
    // three (the other original and the new node) still make a quorum. Writes flow first
    // (awaited: the writers may still be retrying past the dead node).
    assert!(
        load.acknowledged_beyond(0, Cluster::PATIENCE).await,
        "no write was acknowledged after the replacement"
    );
    let before = acknowledged.lock().unwrap().len();
    let original = (1..=3).find(|id| *id != dead && cluster.servers[*id as usize - 1].is_running());
    let original = original.unwrap();
    let other = (1..=3).find(|id| *id != dead && *id != original).unwrap();
    cluster.servers[original as usize - 1].kill();
    let mut survivor = client(&cluster);
    survivor.set_servers(vec![
        cluster.servers[other as usize - 1].client_addr,
        cluster.servers[new as usize - 1].client_addr,
    ]);
    survivor
        .put("after".into(), b"two of three".to_vec())
        .await
        .unwrap();

    load.stop().await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > before && before > 0,
        "writes did not flow: {before} then {}",
        acknowledged.len()
    );
    // Read through the new node: it has every acknowledged write.
    survivor.prefer(1);
    for (key, value) in &acknowledged {
        let read = survivor.get(key.clone()).await.unwrap();
        assert_eq!(read.as_ref(), Some(value), "acknowledged write {key} lost");
    }
    assert_eq!(
        survivor.get("after".into()).await.unwrap(),
        Some(b"two of three".to_vec())
    );
}
