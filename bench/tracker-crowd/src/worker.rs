//! A worker process: `plan.peers` peers, each with its own key, its own QUIC endpoint and
//! its own [`TrackerClient`], behaving towards the tracker as a downloading `bt` peer does:
//! join, report new pieces in batches, heartbeat, ask for more neighbours and for the
//! holders of a piece, and (some of them) leave.
//!
//! Talks to the coordinator over stdin and stdout: prints `ready` once every endpoint is
//! bound, waits for `go START_UNIX_MS`, prints `done` once its result file is written at
//! the end of the load, then keeps its staying peers heartbeating until stdin says `stop`
//! or closes.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use certs::Identity;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tracker::Bitfield;
use tracker::api::{ApiError, DEFAULT_NEIGHBOURS};
use tracker::client::{TrackerClient, TrackerError};
use tracker::torrent::InfoHash;
use transport::{Endpoint, EndpointConfig, InboundTrust};

use crate::plan::{Fate, PeerOutcome, Plan, Sample, WorkerResult};

/// Runs a worker: reads the plan, plays it, writes the result to `out`.
pub fn run(plan_path: &Path, out: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(plan_path)
        .with_context(|| format!("reading the plan {}", plan_path.display()))?;
    let plan: Plan = rmp_serde::from_slice(&bytes)
        .with_context(|| format!("decoding the plan {}", plan_path.display()))?;
    // One runtime thread: the machine's cores are shared by every worker and the cluster.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(play(Arc::new(plan), out))
}

async fn play(plan: Arc<Plan>, out: &Path) -> anyhow::Result<()> {
    let mut endpoints = Vec::with_capacity(plan.peers);
    for _ in 0..plan.peers {
        let identity = Identity::generate_self_signed("crowd-peer")?;
        let mut config = EndpointConfig::new("127.0.0.1:0".parse()?, InboundTrust::Open, &[]);
        // A crowd peer serves nothing, so nobody opens streams to it: room for a few
        // instead of the 1,024 a serving peer allows (whose state quinn allocates up
        // front, per connection; with thousands of peers per process that was most of
        // each worker's memory and CPU).
        config.tuning.max_concurrent_bidi_streams = 8;
        endpoints.push(Endpoint::bind(identity, config)?);
    }
    // Who this worker's peers are, for the check of a worker that will be killed.
    let fingerprints: Vec<_> = endpoints.iter().map(Endpoint::fingerprint).collect();
    std::fs::write(
        out.with_extension("peers"),
        rmp_serde::to_vec(&fingerprints)?,
    )?;
    say("ready")?;
    let start_unix_ms = read_go()?;
    let t0 = instant_of_unix_ms(start_unix_ms);

    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    for (k, endpoint) in endpoints.into_iter().enumerate() {
        let peer = PeerTask {
            plan: plan.clone(),
            global: plan.first_peer + k,
            t0,
            client: TrackerClient::new(endpoint.clone(), plan.nodes.clone(), plan.ca),
            endpoint,
            samples: Vec::new(),
            visibility: Vec::new(),
            reports: 0,
            heartbeat_every_ms: plan.heartbeat_every_ms,
            in_small: false,
            start_unix_ms,
            refreshed: [None; 2],
            longest_quiet_ms: [0; 2],
            neighbours: Vec::new(),
        };
        let done = done_tx.clone();
        let stop = stop_rx.clone();
        tokio::spawn(peer.run(done, stop));
    }
    drop(done_tx);

    let mut result = WorkerResult::default();
    while let Some((outcome, samples, visibility)) = done_rx.recv().await {
        result.peers.push(outcome);
        result.samples.extend(samples);
        result.visibility.extend(visibility);
        if result.peers.len() == plan.peers {
            break;
        }
    }
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, rmp_serde::to_vec(&result)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    say("done")?;

    // Heartbeats go on until the coordinator has checked every node.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
            if line.trim() == "stop" {
                break;
            }
            line.clear();
        }
    })
    .await?;
    let _ = stop_tx.send(true);
    Ok(())
}

/// Prints one line to the coordinator.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Waits for `go START_UNIX_MS` on stdin.
fn read_go() -> anyhow::Result<u64> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    match line.trim().strip_prefix("go ") {
        Some(ms) => Ok(ms.parse().context("the start time after `go`")?),
        None => bail!("expected `go START_UNIX_MS` from the coordinator, got {line:?}"),
    }
}

/// Milliseconds since the Unix epoch now.
pub fn unix_ms() -> u64 {
    unix_us() / 1000
}

/// Microseconds since the Unix epoch now.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The [`Instant`] of a Unix time in ms (every process of the crowd shares the clock).
fn instant_of_unix_ms(at: u64) -> Instant {
    let now = unix_ms();
    if at >= now {
        Instant::now() + Duration::from_millis(at - now)
    } else {
        Instant::now() - Duration::from_millis(now - at)
    }
}

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Report,
    Heartbeat,
    MorePeers,
    Holders,
}

type Done = (PeerOutcome, Vec<Sample>, Vec<(u64, u64)>);

/// One crowd peer.
struct PeerTask {
    plan: Arc<Plan>,
    global: usize,
    t0: Instant,
    endpoint: Endpoint,
    client: TrackerClient,
    samples: Vec<Sample>,
    visibility: Vec<(u64, u64)>,
    reports: u32,
    /// The plan's heartbeat interval, or a third of the tracker's time to live if shorter.
    heartbeat_every_ms: u64,
    /// Whether the last join of its small torrent was acknowledged.
    in_small: bool,
    /// The start, ms since the Unix epoch (`t0` on the shared clock).
    start_unix_ms: u64,
    /// When the last acknowledged request that refreshes this peer was sent, in the main
    /// swarm (index 0: a join of it, a report, a heartbeat) and in its small swarm (1: a
    /// join of it, a heartbeat). The tracker stamps a refresh when it proposes it, after
    /// the send and before the acknowledgement.
    refreshed: [Option<Instant>; 2],
    /// Per swarm, the longest time from sending one acknowledged refresh to the
    /// acknowledgement of the next, in ms: an upper bound of how long the tracker went
    /// without hearing from this peer.
    longest_quiet_ms: [u64; 2],
    /// The neighbours the tracker gave with the last acknowledged join of the main swarm.
    neighbours: Vec<certs::Fingerprint>,
}

impl PeerTask {
    async fn run(mut self, done: mpsc::UnboundedSender<Done>, mut stop: watch::Receiver<bool>) {
        let plan = self.plan.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(
            plan.seed ^ (self.global as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let join_at = rng.random_range(0..plan.join_window_ms.max(1));
        let leave_at = rng.random_bool(plan.leave_fraction).then(|| {
            let from = plan.join_window_ms.max(join_at + 1);
            rng.random_range(from..(plan.load_end_ms * 9 / 10).max(from + 1))
        });
        let mut order: Vec<u32> = (0..plan.main_pieces).collect();
        order.shuffle(&mut rng);
        let mut next_piece = 0usize;
        let mut acked = Bitfield::new(plan.main_pieces);
        let mut pending: Vec<u32> = Vec::new();
        let mut rejoins = 0u32;
        let small = plan.small_torrent_of(self.global);

        tokio::time::sleep_until(self.at(join_at).into()).await;
        let end = self.at(leave_at.unwrap_or(plan.load_end_ms).min(plan.load_end_ms));
        let mut joined = false;
        while !joined && Instant::now() < end {
            joined = self.join(plan.main, &acked).await;
            if !joined {
                tokio::time::sleep(Duration::from_millis(plan.report_every_ms.max(1000))).await;
            }
        }
        if let (true, Some(small)) = (joined, small) {
            self.join_small(small).await;
        }

        // Each timer's next firing; `end` stands for never. An interval of 0 means never,
        // except for reports, where it means at once (the closed loop).
        let now = Instant::now();
        let first = |rng: &mut ChaCha8Rng, every: u64| match every {
            0 => end,
            every => now + Duration::from_millis(rng.random_range(0..every)),
        };
        let mut timers = [
            (Due::Report, first(&mut rng, plan.report_every_ms.max(1))),
            (
                Due::Heartbeat,
                now + Duration::from_millis(self.heartbeat_every_ms),
            ),
            (Due::MorePeers, first(&mut rng, plan.more_peers_every_ms)),
            (Due::Holders, first(&mut rng, plan.holders_every_ms)),
        ];
        while joined && Instant::now() < end {
            let (slot, &(due, when)) = timers
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, when))| *when)
                .expect("four timers");
            if when >= end {
                break;
            }
            tokio::time::sleep_until(when.into()).await;
            let next = match due {
                Due::Report => {
                    let take = (plan.pieces_per_report as usize).min(order.len() - next_piece);
                    pending.extend_from_slice(&order[next_piece..next_piece + take]);
                    next_piece += take;
                    if !pending.is_empty() {
                        self.report(&mut pending, &mut acked, &mut rejoins).await;
                    }
                    let reported_all = next_piece == order.len() && pending.is_empty();
                    (!reported_all).then_some(plan.report_every_ms)
                }
                Due::Heartbeat => {
                    if self.heartbeat().await {
                        rejoins += 1;
                        self.rejoin(&mut pending, &mut acked).await;
                    }
                    Some(self.heartbeat_every_ms)
                }
                Due::MorePeers => {
                    let started = Instant::now();
                    let before = self.client.failed_attempts();
                    let ok = self
                        .client
                        .more_peers(plan.main, Vec::new(), DEFAULT_NEIGHBOURS)
                        .await
                        .is_ok();
                    self.record(3, started, before, ok);
                    Some(plan.more_peers_every_ms)
                }
                Due::Holders => {
                    let piece = rng.random_range(0..plan.main_pieces);
                    let started = Instant::now();
                    let before = self.client.failed_attempts();
                    let ok = self
                        .client
                        .peers_with_piece(plan.main, piece, DEFAULT_NEIGHBOURS)
                        .await
                        .is_ok();
                    self.record(4, started, before, ok);
                    Some(plan.holders_every_ms)
                }
            };
            timers[slot].1 = next.map_or(end, |ms| Instant::now() + Duration::from_millis(ms));
        }

        let mut fate = Fate::Stays;
        if leave_at.is_some() && joined {
            let mut left = self.leave(plan.main).await;
            if let Some(small) = small {
                left &= self.leave(small).await;
            }
            fate = if left { Fate::Left } else { Fate::LeaveFailed };
        }
        let outcome = PeerOutcome {
            index: self.global,
            fingerprint: self.endpoint.fingerprint(),
            fate,
            joined,
            acked: acked.clone(),
            in_small: self.in_small,
            longest_quiet_ms: self.longest_quiet_ms,
            neighbours: std::mem::take(&mut self.neighbours),
            last_refresh_unix_ms: self.refreshed.map(|r| {
                r.map_or(0, |sent| {
                    self.start_unix_ms + sent.saturating_duration_since(self.t0).as_millis() as u64
                })
            }),
            rejoins,
        };
        let samples = std::mem::take(&mut self.samples);
        let visibility = std::mem::take(&mut self.visibility);
        let _ = done.send((outcome, samples, visibility));
        if fate != Fate::Stays || !joined {
            return;
        }
        // Stay in the swarm while the coordinator checks the nodes.
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(self.heartbeat_every_ms)) => {
                    if self.heartbeat().await {
                        self.rejoin(&mut pending, &mut acked).await;
                    }
                }
            }
        }
    }

    /// Notes that a request sent at `sent` that refreshes the swarms `which` was just
    /// acknowledged.
    fn refreshed(&mut self, which: &[usize], sent: Instant) {
        let now = Instant::now();
        for &i in which {
            if let Some(last) = self.refreshed[i] {
                let quiet = now.saturating_duration_since(last).as_millis() as u64;
                self.longest_quiet_ms[i] = self.longest_quiet_ms[i].max(quiet);
            }
            self.refreshed[i] = Some(sent);
        }
    }

    /// The instant `ms` after the start.
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Records one request of kind `kind` sent at `started`.
    fn record(&mut self, kind: u8, started: Instant, failed_before: u64, ok: bool) {
        let retries = self.client.failed_attempts() - failed_before;
        self.samples.push(Sample {
            at_ms: started.saturating_duration_since(self.t0).as_millis() as u32,
            latency_us: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
            kind,
            retries: retries.min(u64::from(u16::MAX)) as u16,
            ok,
            pieces: 0,
        });
    }

    /// Joins the main swarm saying `have`; true if acknowledged.
    async fn join(&mut self, info_hash: InfoHash, have: &Bitfield) -> bool {
        let started = Instant::now();
        let before = self.client.failed_attempts();
        let result = self
            .client
            .join(
                info_hash,
                self.endpoint.local_addr(),
                have.clone(),
                DEFAULT_NEIGHBOURS,
            )
            .await;
        self.record(0, started, before, result.is_ok());
        if result.is_ok() {
            let swarm = usize::from(info_hash != self.plan.main);
            self.refreshed(&[swarm], started);
        }
        match result {
            Ok(joined) => {
                if info_hash == self.plan.main {
                    self.neighbours = joined.neighbours.iter().map(|n| n.fingerprint).collect();
                }
                // Heartbeat well within the time to live, as the real peer does.
                let ttl_third = (joined.ttl / 3).as_millis() as u64;
                self.heartbeat_every_ms = self.heartbeat_every_ms.min(ttl_third.max(100));
                true
            }
            Err(_) => false,
        }
    }

    /// Joins a small torrent with nothing; remembers whether that was acknowledged.
    async fn join_small(&mut self, info_hash: InfoHash) {
        let have = Bitfield::new(self.plan.small_pieces);
        self.in_small = self.join(info_hash, &have).await;
    }

    /// Joins the swarms again after the tracker forgot this peer (it expires from all of
    /// them at once), saying every piece it holds (the acknowledged ones and the pending
    /// ones), as the real peer does.
    async fn rejoin(&mut self, pending: &mut Vec<u32>, acked: &mut Bitfield) {
        let mut have = acked.clone();
        for &p in pending.iter() {
            have.set(p);
        }
        if self.join(self.plan.main, &have).await {
            *acked = have;
            pending.clear();
        }
        if let Some(small) = self.plan.small_torrent_of(self.global) {
            self.join_small(small).await;
        }
    }

    /// Reports the pending pieces; on success they are acknowledged.
    async fn report(&mut self, pending: &mut Vec<u32>, acked: &mut Bitfield, rejoins: &mut u32) {
        let started = Instant::now();
        let sent_us = unix_us();
        let before = self.client.failed_attempts();
        let result = self.client.have(self.plan.main, pending.clone()).await;
        self.record(1, started, before, result.is_ok());
        match result {
            Ok(()) => {
                if let Some(sample) = self.samples.last_mut() {
                    sample.pieces = pending.len() as u32;
                }
                self.refreshed(&[0], started);
                for &p in pending.iter() {
                    acked.set(p);
                }
                pending.clear();
                self.reports += 1;
                if self
                    .reports
                    .is_multiple_of(self.plan.visibility_every.max(1))
                {
                    self.visibility.push((sent_us, unix_us()));
                }
            }
            Err(e) if not_in_swarm(&e) => {
                *rejoins += 1;
                self.rejoin(pending, acked).await;
            }
            // Kept for the next report, as the real peer does.
            Err(_) => {}
        }
    }

    /// Heartbeats for each torrent, as the real peer's torrent tasks do (a heartbeat
    /// refreshes every swarm, but says only whether the one it names still holds this
    /// peer). Joins the small torrent again at once if it forgot this peer; true if the
    /// main swarm forgot it.
    async fn heartbeat(&mut self) -> bool {
        let main_gone = self.heartbeat_for(self.plan.main).await;
        if let Some(small) = self.plan.small_torrent_of(self.global)
            && self.heartbeat_for(small).await
        {
            self.join_small(small).await;
        }
        main_gone
    }

    /// Heartbeats naming `info_hash`; true if the tracker says this peer is not in it.
    async fn heartbeat_for(&mut self, info_hash: InfoHash) -> bool {
        let started = Instant::now();
        let before = self.client.failed_attempts();
        let result = self.client.heartbeat(info_hash).await;
        self.record(2, started, before, result.is_ok());
        if result.is_ok() {
            // A heartbeat refreshes every swarm the peer is in.
            self.refreshed(&[0, 1], started);
        }
        matches!(result, Err(e) if not_in_swarm(&e))
    }

    /// Leaves a swarm; true if acknowledged.
    async fn leave(&mut self, info_hash: InfoHash) -> bool {
        let started = Instant::now();
        let before = self.client.failed_attempts();
        let ok = self.client.leave(info_hash).await.is_ok();
        self.record(5, started, before, ok);
        ok
    }
}

fn not_in_swarm(e: &TrackerError) -> bool {
    matches!(e, TrackerError::Refused(ApiError::NotInSwarm(_)))
}
