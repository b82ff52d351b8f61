//! A checker for histories of grow-only sets: `Add(set, element)` and `Read(set)`, which
//! returns the whole set. The tracker's swarm state is such a history: a peer's report
//! of a piece adds the peer to the piece's holders, and a query reads them.
//!
//! The checker tests the conditions every linearizable history of grow-only sets meets,
//! each in `O(n log n)` per set:
//!
//! 1. a read returns only elements whose add was invoked before the read returned;
//! 2. a read returns every element whose add was acknowledged before the read began;
//! 3. any two reads of a set are ordered by inclusion (the set only grows, and every
//!    read sees one moment of it);
//! 4. a read that returned before another began returned a subset of it.
//!
//! These are necessary, so a history that fails one is certainly not linearizable; the
//! error names the operations that show it. (They are also sufficient when every read
//! sees at most one more element than the read before it, which holds for reads much
//! more frequent than adds; in general a history can pass them and still not be
//! linearizable, so a pass is the absence of these anomalies.)

use std::collections::{BTreeMap, BTreeSet};

/// An operation on a family of grow-only sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Adds `element` to set `set`.
    Add {
        /// The set.
        set: u64,
        /// The element added.
        element: u64,
    },
    /// Reads set `set` whole.
    Read {
        /// The set.
        set: u64,
    },
}

/// One operation of the history. `ret == None` and `result == None` for an operation
/// that never completed (an add that may or may not have taken effect).
#[derive(Clone, Debug)]
pub struct SetOperation {
    /// The client that issued it (for error messages).
    pub client: u64,
    /// When it was invoked.
    pub call: u64,
    /// When it returned, if it did.
    pub ret: Option<u64>,
    /// The operation.
    pub op: SetOp,
    /// For a completed read, the elements it returned; `Some(empty)` for a completed add.
    pub result: Option<BTreeSet<u64>>,
}

fn describe(o: &SetOperation) -> String {
    let ret = o.ret.map_or("never".to_string(), |r| r.to_string());
    match (&o.op, &o.result) {
        (SetOp::Add { set, element }, _) => {
            format!(
                "client {} add({set}, {element}) [call={}, ret={ret}]",
                o.client, o.call
            )
        }
        (SetOp::Read { set }, Some(r)) => {
            format!(
                "client {} read({set}) -> {r:?} [call={}, ret={ret}]",
                o.client, o.call
            )
        }
        (SetOp::Read { set }, None) => {
            format!(
                "client {} read({set}) -> no answer [call={}]",
                o.client, o.call
            )
        }
    }
}

/// Ok if the history shows none of the anomalies listed in the module doc; else which
/// one, with the operations involved.
pub fn check_grow_only_sets(history: &[SetOperation]) -> Result<(), String> {
    let mut by_set: BTreeMap<u64, Vec<&SetOperation>> = BTreeMap::new();
    for o in history {
        let set = match o.op {
            SetOp::Add { set, .. } | SetOp::Read { set } => set,
        };
        by_set.entry(set).or_default().push(o);
    }
    for (set, ops) in by_set {
        check_set(set, &ops)?;
    }
    Ok(())
}

fn check_set(set: u64, ops: &[&SetOperation]) -> Result<(), String> {
    // Per element: the earliest invocation of an add, and the earliest acknowledgement.
    let mut first_call: BTreeMap<u64, &SetOperation> = BTreeMap::new();
    let mut first_ack: BTreeMap<u64, &SetOperation> = BTreeMap::new();
    for &o in ops {
        if let SetOp::Add { element, .. } = o.op {
            let call = first_call.entry(element).or_insert(o);
            if o.call < call.call {
                *call = o;
            }
            if let Some(ret) = o.ret {
                let ack = first_ack.entry(element).or_insert(o);
                if ret < ack.ret.unwrap_or(u64::MAX) {
                    *ack = o;
                }
            }
        }
    }
    let mut reads: Vec<(&SetOperation, u64, &BTreeSet<u64>)> = ops
        .iter()
        .filter_map(|&o| match (&o.op, o.ret, &o.result) {
            (SetOp::Read { .. }, Some(ret), Some(r)) => Some((o, ret, r)),
            _ => None,
        })
        .collect();
    for &(read, ret, members) in &reads {
        // 1. Nothing from the future, nothing never added.
        for element in members {
            match first_call.get(element) {
                Some(add) if add.call < ret => {}
                Some(add) => {
                    return Err(format!(
                        "set {set}: a read returned {element} before its add began:\n  {}\n  {}",
                        describe(read),
                        describe(add)
                    ));
                }
                None => {
                    return Err(format!(
                        "set {set}: a read returned {element}, which nobody added:\n  {}",
                        describe(read)
                    ));
                }
            }
        }
        // 2. Nothing acknowledged before the read began is missing.
        for (element, add) in &first_ack {
            if add.ret.is_some_and(|r| r < read.call) && !members.contains(element) {
                return Err(format!(
                    "set {set}: a read missed {element}, whose add was acknowledged before it began:\n  {}\n  {}",
                    describe(add),
                    describe(read)
                ));
            }
        }
    }
    // 3. Reads form a chain under inclusion: sorted by size, each contains the one before.
    reads.sort_by_key(|&(_, _, members)| members.len());
    for pair in reads.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if !a.2.is_subset(b.2) {
            return Err(format!(
                "set {set}: two reads saw sets that no single order of adds explains:\n  {}\n  {}",
                describe(a.0),
                describe(b.0)
            ));
        }
    }
    // 4. In real-time order, sizes never shrink: sweep reads by invocation, keeping the
    // largest read that returned before the current one began.
    let mut by_ret: Vec<_> = reads.iter().map(|&(o, ret, m)| (ret, o, m.len())).collect();
    by_ret.sort_by_key(|&(ret, _, _)| ret);
    let mut by_call: Vec<_> = reads
        .iter()
        .map(|&(o, _, m)| (o.call, o, m.len()))
        .collect();
    by_call.sort_by_key(|&(call, _, _)| call);
    let mut finished = by_ret.iter().peekable();
    let mut largest: Option<(&SetOperation, usize)> = None;
    for &(call, read, len) in &by_call {
        while let Some(&&(ret, o, l)) = finished.peek() {
            if ret >= call {
                break;
            }
            if largest.is_none_or(|(_, best)| l > best) {
                largest = Some((o, l));
            }
            finished.next();
        }
        if let Some((earlier, l)) = largest
            && l > len
        {
            return Err(format!(
                "set {set}: a read saw fewer elements than one that returned before it began:\n  {}\n  {}",
                describe(earlier),
                describe(read)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(client: u64, call: u64, ret: Option<u64>, element: u64) -> SetOperation {
        SetOperation {
            client,
            call,
            ret,
            op: SetOp::Add { set: 0, element },
            result: ret.map(|_| BTreeSet::new()),
        }
    }

    fn read(client: u64, call: u64, ret: u64, members: &[u64]) -> SetOperation {
        SetOperation {
            client,
            call,
            ret: Some(ret),
            op: SetOp::Read { set: 0 },
            result: Some(members.iter().copied().collect()),
        }
    }

    #[test]
    fn a_history_of_a_growing_set_passes() {
        let h = [
            add(1, 0, Some(10), 1),
            read(2, 5, 8, &[]),
            read(2, 11, 12, &[1]),
            add(1, 13, None, 2),
            read(3, 14, 20, &[1, 2]),
            read(2, 15, 16, &[1]),
        ];
        assert_eq!(check_grow_only_sets(&h), Ok(()));
    }

    #[test]
    fn each_anomaly_is_named() {
        let future = [read(2, 0, 5, &[1]), add(1, 6, Some(7), 1)];
        assert!(
            check_grow_only_sets(&future)
                .unwrap_err()
                .contains("before its add began")
        );
        let ghost = [read(2, 0, 5, &[9])];
        assert!(
            check_grow_only_sets(&ghost)
                .unwrap_err()
                .contains("nobody added")
        );
        let lost = [add(1, 0, Some(5), 1), read(2, 6, 7, &[])];
        assert!(
            check_grow_only_sets(&lost)
                .unwrap_err()
                .contains("missed 1")
        );
        let forked = [
            add(1, 0, None, 1),
            add(1, 0, None, 2),
            read(2, 1, 9, &[1]),
            read(3, 1, 9, &[2]),
        ];
        assert!(
            check_grow_only_sets(&forked)
                .unwrap_err()
                .contains("no single order")
        );
        let shrank = [add(1, 0, None, 1), read(2, 1, 2, &[1]), read(3, 3, 4, &[])];
        assert!(
            check_grow_only_sets(&shrank)
                .unwrap_err()
                .contains("fewer elements")
        );
    }
}
