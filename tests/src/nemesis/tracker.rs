//! The tracker under the nemesis: `bt-tracker run` nodes in the namespaces, peers that
//! report pieces and clients that ask who holds a piece. Each piece's holders form a
//! grow-only set (a report adds the peer, a query reads the set), checked with
//! [`linearizability::set`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::{Fingerprint, Identity};
use linearizability::set::{SetOp, SetOperation, check_grow_only_sets};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracker::client::{ClientConfig, TrackerClient};
use tracker::torrent::{FileEntry, Info, InfoHash, MIN_PIECE_LENGTH, Torrent};
use transport::{Endpoint, EndpointConfig, InboundTrust};

use super::net::run;
use super::workload::Counts;

/// The node's cluster (Paxos and operator) port.
pub const CLUSTER_PORT: u16 = 7000;
/// The node's port for peers.
pub const PEER_PORT: u16 = 7001;
/// The node's web port.
const HTTP_PORT: u16 = 8080;
/// Pieces of the torrent the peers report: enough that a peer reporting one every 60 ms
/// on average still has pieces left at the end of a 60-second run.
const PIECES: u32 = 1024;
/// How many of the latest reported pieces the askers choose from, most of the time. A
/// stale read shows only in a query of a piece reported moments before, and a random
/// piece of 1,024 is almost never one.
const RECENT: usize = 4;

/// The pieces the peers began reporting last, shared by the reporters and the askers.
#[derive(Debug, Default)]
struct RecentPieces(Mutex<VecDeque<u32>>);

impl RecentPieces {
    fn push(&self, piece: u32) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(piece);
    }

    /// Three times in four one of the latest pieces, else any piece.
    fn choose(&self, rng: &mut ChaCha8Rng) -> u32 {
        let recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if recent.is_empty() || rng.random_range(0..4) == 0 {
            rng.random_range(0..PIECES)
        } else {
            recent[rng.random_range(0..recent.len())]
        }
    }
}

/// Makes the CA and every node's certificate with `bt-tracker certs` (the runner reads
/// the CA's fingerprint from `ca.crt`).
pub fn make_certs(bt_tracker: &Path, certs: &Path, nodes: u64) -> Result<(), String> {
    let binary = bt_tracker.to_str().ok_or("bt-tracker path is not UTF-8")?;
    let dir = certs.display().to_string();
    run(binary, &["certs", "ca", "--dir", &dir])?;
    for id in 1..=nodes {
        run(
            binary,
            &["certs", "node", &format!("node{id}"), "--dir", &dir],
        )?;
    }
    Ok(())
}

/// The arguments of `bt-tracker run` for node `id`: its data on `disk`, its replica's
/// clock following `clock_file`, peers kept for an hour (no peer of a run may expire),
/// every member at its namespace's address.
pub fn node_args(
    id: u64,
    ips: &BTreeMap<u64, IpAddr>,
    certs: &Path,
    disk: &Path,
    clock_file: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--id".into(),
        id.to_string(),
        "--data".into(),
        disk.join("data").display().to_string(),
        "--certs".into(),
        certs.display().to_string(),
        "--http".into(),
        SocketAddr::new(ips[&id], HTTP_PORT).to_string(),
        "--peer-ttl-secs".into(),
        "3600".into(),
        "--clock-control".into(),
        clock_file.display().to_string(),
    ];
    for (member, ip) in ips {
        args.push("--member".into());
        args.push(format!(
            "{member}=node{member},{},{}",
            SocketAddr::new(*ip, CLUSTER_PORT),
            SocketAddr::new(*ip, PEER_PORT)
        ));
    }
    args
}

/// A peer's endpoint, bound in the hub namespace, with a fresh identity.
fn peer_endpoint() -> Result<Endpoint, String> {
    let identity = Identity::generate_self_signed("peer").map_err(|e| e.to_string())?;
    let config = EndpointConfig::new(
        "0.0.0.0:0".parse().expect("constant address"),
        InboundTrust::Open,
        &[],
    );
    Endpoint::bind(identity, config).map_err(|e| e.to_string())
}

/// A client of one node only (as the KV clients are bound), giving up on an attempt
/// after 500 ms and on a request after 2 s; and its key's fingerprint.
fn client(node: SocketAddr, ca: Fingerprint) -> Result<(TrackerClient, Fingerprint), String> {
    let config = ClientConfig {
        attempt_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let endpoint = peer_endpoint()?;
    let fingerprint = endpoint.fingerprint();
    Ok((
        TrackerClient::with_config(endpoint, vec![node], ca, config),
        fingerprint,
    ))
}

/// Creates a user and a token with the operator CLI and publishes the run's torrent;
/// returns its info hash.
pub async fn publish(
    bt_tracker: &Path,
    certs: &Path,
    cluster: &[SocketAddr],
    peers: &[SocketAddr],
    ca: Fingerprint,
) -> Result<InfoHash, String> {
    let mut operator = vec!["--certs".to_string(), certs.display().to_string()];
    for addr in cluster {
        operator.extend(["--tracker".into(), addr.to_string()]);
    }
    let cli = |args: Vec<String>, stdin: Option<&'static str>| {
        let bt_tracker = bt_tracker.to_path_buf();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new(&bt_tracker)
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
                input
                    .write_all(text.as_bytes())
                    .map_err(|e| e.to_string())?;
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "bt-tracker {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
    };
    let with = |verb: [&str; 2]| {
        let mut args: Vec<String> = vec![verb[0].into(), verb[1].into(), "nemesis".into()];
        args.extend(operator.iter().cloned());
        args
    };
    cli(
        with(["user", "add"]),
        Some("correct horse battery staple\n"),
    )
    .await
    .map_err(|e| e.to_string())??;
    let token = cli(with(["token", "create"]), None)
        .await
        .map_err(|e| e.to_string())??;
    let content = vec![0u8; (PIECES * MIN_PIECE_LENGTH) as usize];
    let info = Info {
        name: "nemesis".into(),
        piece_length: MIN_PIECE_LENGTH,
        files: vec![FileEntry {
            path: vec!["nemesis.bin".into()],
            length: content.len() as u64,
        }],
        pieces: content
            .chunks(MIN_PIECE_LENGTH as usize)
            .flat_map(|piece| *blake3::hash(piece).as_bytes())
            .collect(),
    };
    let torrent =
        Torrent::new(info, peers.to_vec(), ca, 1_700_000_000, None).map_err(|e| e.to_string())?;
    let publisher = TrackerClient::new(peer_endpoint()?, peers.to_vec(), ca);
    publisher
        .publish(&token, torrent.encode())
        .await
        .map_err(|e| format!("publishing the run's torrent: {e}"))
}

/// The history of the tracker clients.
#[derive(Debug, Default)]
pub struct SetHistory {
    operations: Mutex<Vec<SetOperation>>,
}

impl SetHistory {
    fn record(&self, operation: SetOperation) {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(operation);
    }

    /// Counts by kind and outcome (reports are the writes, queries the reads).
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for o in self
            .operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            match (&o.op, o.ret.is_some()) {
                (SetOp::Add { .. }, true) => counts.writes_ok += 1,
                (SetOp::Add { .. }, false) => counts.writes_unknown += 1,
                (SetOp::Read { .. }, true) => counts.reads_ok += 1,
                (SetOp::Read { .. }, false) => counts.reads_failed += 1,
            }
        }
        counts
    }

    /// Checks the history (see [`linearizability::set`]).
    pub fn check(&self) -> Result<(), String> {
        check_grow_only_sets(&self.operations.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The tracker's clients: one reporting peer and one asking client per node.
#[derive(Clone, Debug)]
pub struct TrackerWorkload {
    /// Every node's peer address.
    pub peers: Vec<SocketAddr>,
    /// The cluster CA.
    pub ca: Fingerprint,
    /// The run's torrent.
    pub info_hash: InfoHash,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Time zero of the history.
    pub start: Instant,
}

fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

impl TrackerWorkload {
    /// Joins one peer per node (retrying until the cluster answers), then runs the
    /// reporting peers and the asking clients until `stop` is set. Returns the peers'
    /// fingerprints with their numbers in the history.
    pub async fn run(
        &self,
        history: Arc<SetHistory>,
        stop: Arc<AtomicBool>,
    ) -> Result<BTreeMap<Fingerprint, u64>, String> {
        let mut known: BTreeMap<Fingerprint, u64> = BTreeMap::new();
        let mut reporters = Vec::new();
        for (index, &node) in self.peers.iter().enumerate() {
            let (peer, fingerprint) = client(node, self.ca)?;
            let listen = SocketAddr::new(node.ip(), 9000 + index as u16);
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Err(e) = peer
                .join(
                    self.info_hash,
                    listen,
                    tracker::bitfield::Bitfield::new(PIECES),
                    0,
                )
                .await
            {
                if Instant::now() > deadline {
                    return Err(format!("peer {index} could not join: {e}"));
                }
            }
            known.insert(fingerprint, index as u64);
            reporters.push(peer);
        }
        let known = Arc::new(known);
        let recent = Arc::new(RecentPieces::default());
        let mut tasks = Vec::new();
        for (index, peer) in reporters.into_iter().enumerate() {
            let (history, stop, info_hash, start, recent) = (
                history.clone(),
                stop.clone(),
                self.info_hash,
                self.start,
                recent.clone(),
            );
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (index as u64 + 1));
            tasks.push(tokio::spawn(async move {
                let mut unreported: Vec<u32> = (0..PIECES).collect();
                while !stop.load(Ordering::Relaxed) && !unreported.is_empty() {
                    let piece = unreported.swap_remove(rng.random_range(0..unreported.len()));
                    recent.push(piece);
                    let call = nanos_since(start);
                    let done = peer.have(info_hash, vec![piece]).await.is_ok();
                    history.record(SetOperation {
                        client: index as u64,
                        call,
                        ret: done.then(|| nanos_since(start)),
                        op: SetOp::Add {
                            set: piece as u64,
                            element: index as u64,
                        },
                        result: done.then(BTreeSet::new),
                    });
                    // A piece about every 60 ms, as a peer downloading at a few MB/s.
                    tokio::time::sleep(Duration::from_millis(rng.random_range(20..100))).await;
                }
                Ok::<(), String>(())
            }));
        }
        for (index, &node) in self.peers.iter().enumerate() {
            let (asker, _) = client(node, self.ca)?;
            let (history, stop, info_hash, start, known, recent) = (
                history.clone(),
                stop.clone(),
                self.info_hash,
                self.start,
                known.clone(),
                recent.clone(),
            );
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (0x5eed + index as u64));
            let client_id = (self.peers.len() + index) as u64;
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let piece = recent.choose(&mut rng);
                    let operation = ask(&asker, client_id, info_hash, piece, start, &known).await?;
                    history.record(operation);
                }
                Ok(())
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(Arc::unwrap_or_clone(known))
    }

    /// Asks the cluster (any node) who holds each piece the peers reported, with a long
    /// deadline, after the faults healed; the answers join the history.
    pub async fn final_reads(
        &self,
        history: &SetHistory,
        known: &BTreeMap<Fingerprint, u64>,
    ) -> Result<(), String> {
        let config = ClientConfig {
            attempt_timeout: Duration::from_millis(500),
            deadline: Duration::from_secs(20),
            ..ClientConfig::default()
        };
        let asker =
            TrackerClient::with_config(peer_endpoint()?, self.peers.clone(), self.ca, config);
        let reported: BTreeSet<u32> = history
            .operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|o| match o.op {
                SetOp::Add { set, .. } => Some(set as u32),
                SetOp::Read { .. } => None,
            })
            .collect();
        for piece in reported {
            let operation = ask(&asker, u64::MAX, self.info_hash, piece, self.start, known).await?;
            if operation.ret.is_none() {
                return Err(format!(
                    "the tracker did not answer who holds piece {piece} within 20 s after the faults healed"
                ));
            }
            history.record(operation);
        }
        Ok(())
    }
}

/// One query of the holders of `piece`, as a history record. Errors for holders nobody
/// of this run is (no correct tracker invents peers).
async fn ask(
    asker: &TrackerClient,
    client: u64,
    info_hash: InfoHash,
    piece: u32,
    start: Instant,
    known: &BTreeMap<Fingerprint, u64>,
) -> Result<SetOperation, String> {
    let call = nanos_since(start);
    let answer = asker.peers_with_piece(info_hash, piece, 1_000).await;
    let ret = nanos_since(start);
    let result = match answer {
        Ok(holders) => Some(
            holders
                .iter()
                .map(|h| {
                    known.get(&h.fingerprint).copied().ok_or_else(|| {
                        format!(
                            "the tracker named a holder nobody joined: {}",
                            h.fingerprint
                        )
                    })
                })
                .collect::<Result<BTreeSet<u64>, String>>()?,
        ),
        Err(_) => None,
    };
    Ok(SetOperation {
        client,
        call,
        ret: result.as_ref().map(|_| ret),
        op: SetOp::Read { set: piece as u64 },
        result,
    })
}
