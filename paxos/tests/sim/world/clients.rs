//! Simulated clients: sequential puts and gets, retried on timeout through
//! random replicas; their history feeds the linearizability checker.

use paxos::{ClientError, Command, NodeId};
use rand::Rng;

use super::{ClientReply, ClientReq, Kind, MS, OpKind, World};
use crate::sim::kv::{KvCmd, KvOut};
use linearizability::{KvOp, KvRet, Operation};

impl World {
    pub(super) fn start_op(&mut self, c: usize) {
        let keys = self.cfg.keys;
        let probe = self.clients[c].probe;
        let put = probe || self.rng.random_bool(0.5);
        let key = if probe {
            1_000
        } else {
            self.rng.random_range(0..keys)
        };
        let cl = &mut self.clients[c];
        let kind = if put {
            cl.seq += 1;
            OpKind::Put {
                key,
                value: cl.id * 1_000_000 + cl.seq,
                seq: cl.seq,
            }
        } else {
            cl.read_id += 1;
            OpKind::Get {
                key,
                id: cl.read_id,
            }
        };
        let idx = if probe {
            usize::MAX
        } else {
            self.history.push(Operation {
                client: cl.id,
                call: self.now,
                ret: None,
                op: match kind {
                    OpKind::Put { key, value, .. } => KvOp::Put { key, value },
                    OpKind::Get { key, .. } => KvOp::Get { key },
                },
                result: None,
            });
            self.history.len() - 1
        };
        self.clients[c].op = Some((kind, idx));
        let target = self.rng.random_range(0..self.nodes.len() as u64);
        self.send_request(c, target);
    }

    pub(super) fn send_request(&mut self, c: usize, target: NodeId) {
        let cl = &mut self.clients[c];
        cl.epoch += 1;
        let epoch = cl.epoch;
        let Some((kind, _)) = &cl.op else {
            return;
        };
        let req = match kind {
            OpKind::Put { key, value, seq } => ClientReq::Put(Command {
                client: cl.id,
                seq: *seq,
                op: KvCmd {
                    client: cl.id,
                    seq: *seq,
                    key: *key,
                    value: *value,
                },
            }),
            OpKind::Get { key, id } => ClientReq::Get {
                client: cl.id,
                id: *id,
                key: *key,
            },
        };
        let d = self.rng.random_range(100..2 * MS);
        self.schedule(d, Kind::Request { to: target, req });
        let timeout = self.cfg.client_timeout_ms * MS;
        self.schedule(timeout, Kind::ClientTimer { client: c, epoch });
    }

    pub(super) fn on_client_timer(&mut self, c: usize, epoch: u64) {
        if self.clients[c].epoch != epoch {
            return;
        }
        if self.clients[c].op.is_some() {
            // Timed out: retry the same request through a random replica.
            let target = self.rng.random_range(0..self.nodes.len() as u64);
            self.send_request(c, target);
        } else if !self.clients[c].stopped {
            let stop_at = self.healed_at.map(|h| h + self.cfg.settle_ms * MS);
            if stop_at.is_some_and(|s| self.now > s) {
                self.clients[c].stopped = true;
                return;
            }
            self.start_op(c);
        }
    }

    pub(super) fn on_reply(&mut self, c: usize, reply: ClientReply) {
        let Some((kind, idx)) = self.clients[c].op.clone() else {
            return;
        };
        let result = match (&kind, reply) {
            (OpKind::Put { seq, .. }, ClientReply::Put { seq: s, result }) if *seq == s => result,
            (OpKind::Get { id, .. }, ClientReply::Get { id: i, result }) if *id == i => result,
            _ => return,
        };
        match result {
            Ok(out) => {
                let ret = match (&kind, out) {
                    (OpKind::Put { .. }, KvOut::PutOk) => KvRet::PutOk,
                    (OpKind::Get { .. }, KvOut::Value(v)) => KvRet::Value(v),
                    (_, other) => {
                        self.observer
                            .borrow_mut()
                            .violations
                            .push(format!("client {c} got a mismatched output {other:?}"));
                        return;
                    }
                };
                let probe = self.clients[c].probe;
                if let OpKind::Put { seq, .. } = kind
                    && !probe
                {
                    let id = self.clients[c].id;
                    self.acked_puts.push((id, seq));
                }
                if probe {
                    if self.recovered_at.is_none() {
                        self.recovered_at = Some(self.now);
                    }
                    self.clients[c].stopped = true;
                } else {
                    self.history[idx].ret = Some(self.now);
                    self.history[idx].result = Some(ret);
                }
                let cl = &mut self.clients[c];
                cl.op = None;
                cl.epoch += 1;
                let epoch = cl.epoch;
                let think = self.rng.random_range(0..5 * MS);
                self.schedule(think, Kind::ClientTimer { client: c, epoch });
            }
            Err(ClientError::NotLeader { hint }) => {
                let n = self.nodes.len() as u64;
                let target = hint.unwrap_or_else(|| self.rng.random_range(0..n));
                // Back off briefly before retrying.
                let cl = &mut self.clients[c];
                cl.epoch += 1;
                let epoch = cl.epoch;
                let _ = target;
                self.schedule(5 * MS, Kind::ClientTimer { client: c, epoch });
            }
            Err(ClientError::Stale) => {
                self.observer
                    .borrow_mut()
                    .violations
                    .push(format!("client {c} got Stale for its current request"));
            }
        }
    }
}
