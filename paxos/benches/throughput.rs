//! Throughput ceiling of the paxos core: a 3-replica cluster in one process,
//! no network (messages handed over in memory), no fsync (persists complete
//! immediately). Reports committed commands per second and CPU time per
//! command at batch sizes 1, 64 and 1024.
//!
//! Run with `cargo bench -p paxos --bench throughput`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use paxos::{
    Command, Config, DurableState, MessageOf, NodeId, Output, Replica, RestoreError, Slot,
    StateMachine,
};

/// A map of u64 registers.
#[derive(Default)]
struct Kv(BTreeMap<u64, u64>);

impl StateMachine for Kv {
    type Command = (u64, u64);
    type Output = Option<u64>;
    type Query = u64;
    fn apply(&mut self, _: Slot, c: &(u64, u64)) -> Option<u64> {
        self.0.insert(c.0, c.1)
    }
    fn query(&self, k: &u64) -> Option<u64> {
        self.0.get(k).copied()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
            .collect()
    }
    fn restore(&mut self, b: &[u8]) -> Result<(), RestoreError> {
        self.0 = b
            .chunks_exact(16)
            .map(|c| {
                let k = u64::from_le_bytes(c[..8].try_into().unwrap_or_default());
                let v = u64::from_le_bytes(c[8..].try_into().unwrap_or_default());
                (k, v)
            })
            .collect();
        Ok(())
    }
}

/// CPU time of this (single-threaded) process in nanoseconds.
fn cpu_ns() -> u64 {
    if let Ok(s) = std::fs::read_to_string("/proc/self/schedstat")
        && let Some(ns) = s.split_whitespace().next().and_then(|x| x.parse().ok())
    {
        return ns;
    }
    // Fallback: utime + stime in clock ticks (assumed 100 Hz).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000_000
}

fn run(batch: usize, seconds: f64) -> (u64, f64, f64) {
    let n = 3u64;
    let inflight = 8;
    let mut reps: Vec<Replica<Kv>> = (0..n)
        .map(|id| {
            let cfg = Config {
                id,
                members: (0..n).collect(),
                max_batch: batch,
                max_inflight: inflight,
                snapshot_log_len: 100_000,
                seed: id + 1,
                ..Config::default()
            };
            Replica::new(cfg, Kv::default(), DurableState::default(), Duration::ZERO)
                .expect("config")
        })
        .collect();
    let mut net: VecDeque<(NodeId, NodeId, MessageOf<Kv>)> = VecDeque::new();
    let mut now = Duration::ZERO;
    // Elect a leader.
    let mut leader = None;
    while leader.is_none() {
        now += Duration::from_millis(10);
        for r in reps.iter_mut() {
            r.tick(now);
        }
        pump(&mut reps, &mut net, now, &mut |_| {});
        leader = reps.iter().position(|r| r.is_leader());
    }
    let l = leader.unwrap_or(0);
    // Closed loop: enough clients to fill every in-flight slot's batch.
    let clients = (batch * inflight * 2) as u64;
    let mut seqs = vec![0u64; clients as usize];
    let mut ready: Vec<u64> = (0..clients).collect();
    let mut done = 0u64;
    let start = Instant::now();
    let cpu0 = cpu_ns();
    let mut iter = 0u64;
    loop {
        for c in ready.drain(..) {
            seqs[c as usize] += 1;
            let cmd = Command {
                client: c,
                seq: seqs[c as usize],
                op: (c % 1024, seqs[c as usize]),
            };
            reps[l].propose(cmd, now);
        }
        let mut replies = Vec::new();
        pump(&mut reps, &mut net, now, &mut |c| replies.push(c));
        done += replies.len() as u64;
        ready = replies;
        iter += 1;
        if iter.is_multiple_of(64) {
            now += Duration::from_millis(1);
            for r in reps.iter_mut() {
                r.tick(now);
            }
            if start.elapsed().as_secs_f64() > seconds {
                break;
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_ns() - cpu0) as f64;
    (done, done as f64 / wall, cpu / 1_000.0 / done.max(1) as f64)
}

/// Delivers messages and completes persists until the cluster is idle.
fn pump(
    reps: &mut [Replica<Kv>],
    net: &mut VecDeque<(NodeId, NodeId, MessageOf<Kv>)>,
    now: Duration,
    on_reply: &mut dyn FnMut(u64),
) {
    loop {
        let mut progress = false;
        for (i, r) in reps.iter_mut().enumerate() {
            let mut persisted = None;
            while let Some(o) = r.poll_output() {
                progress = true;
                match o {
                    Output::Send { to, message } => net.push_back((i as u64, to, message)),
                    Output::Persist { token, .. } => persisted = Some(token),
                    Output::Reply { client, .. } => on_reply(client),
                    Output::ReadReply { .. } | Output::MembershipReply { .. } => {}
                }
            }
            if let Some(t) = persisted {
                r.persisted(t, now);
            }
        }
        while let Some((from, to, m)) = net.pop_front() {
            progress = true;
            reps[to as usize].handle_message(from, m, now);
        }
        if !progress {
            return;
        }
    }
}

fn main() {
    let seconds = std::env::var("PAXOS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    println!("3 replicas, in-process, no network, no fsync, max_inflight=8");
    println!(
        "{:>6} {:>12} {:>16} {:>14}",
        "batch", "commands", "commands/s", "CPU us/cmd"
    );
    for batch in [1usize, 64, 1024] {
        let (n, rate, cpu) = run(batch, seconds);
        println!("{batch:>6} {n:>12} {rate:>16.0} {cpu:>14.3}");
    }
}
