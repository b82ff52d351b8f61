//! Three paxos replicas in one process, talking real QUIC with mutual TLS on loopback.

use std::collections::BTreeMap;

use certs::ClusterCa;
use paxos::runtime::{ClientConfig, Node, RuntimeConfig, start};
use paxos::{Config, MemStorage};
use tests::kv::{Kv, KvCommand, KvOutput, KvQuery};
use transport::Endpoint;
use transport::paxos_network::{
    ClusterMember, MemberDirectory, QuicNetwork, cluster_endpoint_config, serve,
};

/// Binds three endpoints first (port 0) so that every node knows every address.
async fn cluster(ca: &ClusterCa) -> Vec<(Node<Kv>, Endpoint)> {
    // Trust needs only the member names, so endpoints can be bound before the addresses
    // are known.
    let names: BTreeMap<u64, ClusterMember> = (1..=3u64)
        .map(|i| {
            let addr = "127.0.0.1:0".parse().unwrap();
            (
                i,
                ClusterMember {
                    name: format!("node{i}"),
                    addr,
                },
            )
        })
        .collect();
    let mut endpoints = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let name = format!("node{id}");
        let config = cluster_endpoint_config(
            "127.0.0.1:0".parse().unwrap(),
            ca.certificate().clone(),
            &MemberDirectory::new(&names),
        );
        let endpoint = Endpoint::bind(ca.issue(&name).unwrap(), config).unwrap();
        members.insert(
            id,
            ClusterMember {
                name,
                addr: endpoint.local_addr(),
            },
        );
        endpoints.push((id, endpoint));
    }
    let directory = MemberDirectory::new(&members);
    let mut nodes = Vec::new();
    for (id, endpoint) in endpoints {
        let config = Config {
            id,
            members: vec![1, 2, 3],
            seed: id,
            snapshot_log_len: 25,
            ..Config::default()
        };
        let network = QuicNetwork::new(id, endpoint.clone(), &directory);
        let node = start(
            config,
            Kv::default(),
            MemStorage::new(),
            network,
            RuntimeConfig::default(),
        )
        .unwrap();
        tokio::spawn(serve(endpoint.clone(), node.clone(), directory.clone()));
        nodes.push((node, endpoint));
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_replica_are_applied_and_readable_everywhere() {
    let ca = ClusterCa::generate("test").unwrap();
    let nodes = cluster(&ca).await;
    let mut clients: Vec<_> = nodes
        .iter()
        .map(|(node, _)| node.client(ClientConfig::default()))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        for j in 0..20 {
            let out = client
                .propose(KvCommand::Put {
                    key: format!("k{i}-{j}"),
                    value: vec![i as u8, j as u8],
                })
                .await
                .unwrap();
            assert!(matches!(out, KvOutput::Written(_)));
        }
    }
    for client in clients.iter_mut() {
        assert_eq!(client.read(KvQuery::Len).await.unwrap(), KvOutput::Len(60));
        assert_eq!(
            client.read(KvQuery::Get("k2-19".into())).await.unwrap(),
            KvOutput::Value(Some(vec![2, 19]))
        );
    }
    let leaders: Vec<_> = nodes
        .iter()
        .filter(|(n, _)| n.metrics().is_leader)
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader");
    let leader_metrics = leaders[0].0.metrics();
    assert!(leader_metrics.decided >= 60);
    assert!(leader_metrics.records_persisted > 0);
    for (node, _) in &nodes {
        let m = node.metrics();
        assert_eq!(m.leader, leader_metrics.leader);
        assert!(m.leader_changes >= 1);
        assert_eq!(m.commit_latency.count, 20, "node {}", m.id);
        assert!(m.commit_latency.p50 > std::time::Duration::ZERO);
        assert!(m.commit_latency.p99 >= m.commit_latency.p50);
        // 60 slots with a snapshot every 25: each replica snapshotted and truncated.
        assert!(
            m.snapshot_slot >= 25,
            "node {} snapshot at {}",
            m.id,
            m.snapshot_slot
        );
        assert!(m.snapshot_bytes.is_some_and(|b| b > 0));
        assert!(m.snapshot_age.is_some());
        assert!(m.log_len < 60);
    }
}
