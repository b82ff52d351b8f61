//! The simulated key-value state machine and the global apply observer that
//! checks, on every apply, that all replicas apply the same commands in the
//! same order (slot by slot) and that no command is applied twice.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use paxos::{RestoreError, Slot, StateMachine};
use serde::{Deserialize, Serialize};

/// A put, carrying its client identity so the observer can check exactly-once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCmd {
    pub client: u64,
    pub seq: u64,
    pub key: u64,
    pub value: u64,
}

/// Output of a put (`Put`) or a get (`Value`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOut {
    PutOk,
    Value(Option<u64>),
}

/// Global record of what was applied where.
#[derive(Default, Debug)]
pub struct Observer {
    /// The i-th command ever applied (by any replica): (slot, client, seq).
    pub reference: Vec<(Slot, u64, u64)>,
    /// Index in `reference` of each (client, seq).
    pub position: HashMap<(u64, u64), usize>,
    pub violations: Vec<String>,
}

impl Observer {
    fn record(&mut self, node: u64, index: u64, slot: Slot, client: u64, seq: u64) {
        let i = index as usize;
        if i < self.reference.len() {
            if self.reference[i] != (slot, client, seq) {
                let msg = format!(
                    "replica {node} applied command #{i} = (slot {slot}, client {client}, seq {seq}) but another replica applied {:?}",
                    self.reference[i]
                );
                self.violations.push(msg);
            }
        } else if i == self.reference.len() {
            if let Some(p) = self.position.get(&(client, seq)) {
                self.violations.push(format!(
                    "command (client {client}, seq {seq}) applied twice: as #{p} and as #{i} (slot {slot}) at replica {node}"
                ));
            }
            self.position.insert((client, seq), i);
            self.reference.push((slot, client, seq));
        } else {
            self.violations.push(format!(
                "replica {node} applied command #{i} past the end of the reference log"
            ));
        }
    }
}

/// The simulated state machine.
#[derive(Debug)]
pub struct KvMachine {
    pub node: u64,
    pub map: BTreeMap<u64, u64>,
    /// Number of commands applied (including those covered by a snapshot).
    pub count: u64,
    pub observer: Rc<RefCell<Observer>>,
}

impl KvMachine {
    pub fn new(node: u64, observer: Rc<RefCell<Observer>>) -> Self {
        KvMachine {
            node,
            map: BTreeMap::new(),
            count: 0,
            observer,
        }
    }
}

impl StateMachine for KvMachine {
    type Command = KvCmd;
    type Output = KvOut;
    type Query = u64;

    fn apply(&mut self, slot: Slot, c: &KvCmd) -> KvOut {
        self.observer
            .borrow_mut()
            .record(self.node, self.count, slot, c.client, c.seq);
        self.count += 1;
        self.map.insert(c.key, c.value);
        KvOut::PutOk
    }

    fn query(&self, key: &u64) -> KvOut {
        KvOut::Value(self.map.get(key).copied())
    }

    fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&(&self.map, self.count)).expect("encode snapshot")
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        let (map, count): (BTreeMap<u64, u64>, u64) =
            rmp_serde::from_slice(bytes).map_err(|e| RestoreError(e.to_string()))?;
        self.map = map;
        self.count = count;
        Ok(())
    }
}
