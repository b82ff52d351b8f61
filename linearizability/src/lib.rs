//! Linearizability checker for key-value histories.
//!
//! The checker decides whether a concurrent history of `Put`/`Get` operations on a map of `u64`
//! registers (all initially `None`) is linearizable. It implements the Wing–Gong search as refined
//! by Lowe ("Testing for linearizability", 2017) with the memoisation used by Porcupine:
//!
//! * **P-compositionality.** Registers on different keys are independent, so the history is
//!   partitioned by key and every key is checked on its own.
//! * **Search.** Call and return events of one key are sorted by time into a doubly linked list.
//!   The search walks the list; at a call event it tries to linearize that operation next
//!   (applying it to the register model), at a return event of a not-yet-linearized operation it
//!   backtracks. Linearized operations are unlinked from the list ("lifted") and relinked when
//!   the search backtracks over them.
//! * **Memoisation.** Every (set of linearized operations, register state) configuration reached
//!   is cached; a configuration that was seen before is never explored again. The set is a `u128`
//!   bitset when a key has at most 128 operations and a `Box<[u64]>` bitset otherwise.
//! * **Pending operations** (`ret == None`) may take effect at any point after their call, or
//!   not at all. A pending `Get` places no constraint and is dropped. A pending `Put` whose value
//!   no completed `Get` observed is dropped too (omitting it is never worse than including it);
//!   the others have no return event, so the search may linearize them after their call but never
//!   has to: it succeeds as soon as every completed operation is linearized.
//! * **Real-time order.** Operation `a` precedes operation `b` iff `a.ret < b.call`. Operations
//!   whose intervals merely touch (`a.ret == b.call`) are treated as concurrent, as in Porcupine.
//! * **Bounded work.** Each key gets at most [`MAX_STEPS_PER_KEY`] search steps; beyond that the
//!   checker returns an error starting with `"checker gave up"` instead of hanging.
//!
//! The module [`set`] checks histories of grow-only sets (the tracker's swarm state).

pub mod set;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Maximum number of search steps spent on a single key before the checker gives up.
pub const MAX_STEPS_PER_KEY: u64 = 5_000_000;

/// Maximum number of operations listed in an error message.
const MAX_LISTED_OPS: usize = 10;

/// Number of operations of the longest linearizable prefix shown as context in an error message.
const MAX_PREFIX_CONTEXT: usize = 3;

/// A key-value operation as invoked by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Write `value` to the register `key`.
    Put {
        /// Register written.
        key: u64,
        /// Value written.
        value: u64,
    },
    /// Read the register `key`.
    Get {
        /// Register read.
        key: u64,
    },
}

impl KvOp {
    /// The register this operation accesses.
    pub fn key(&self) -> u64 {
        match *self {
            KvOp::Put { key, .. } | KvOp::Get { key } => key,
        }
    }
}

/// The result of a completed key-value operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRet {
    /// A `Put` completed.
    PutOk,
    /// A `Get` completed and observed this value (`None`: the key was never written).
    Value(Option<u64>),
}

/// One client operation. `call`/`ret` are logical timestamps (e.g. simulated nanoseconds).
/// `ret == None` and `result == None` for an operation that never completed: it may or may not
/// have taken effect, at any point after `call`.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Client that issued the operation (only used in error messages).
    pub client: u64,
    /// Time the operation was invoked.
    pub call: u64,
    /// Time the operation returned, or `None` if it never completed.
    pub ret: Option<u64>,
    /// The operation.
    pub op: KvOp,
    /// The result, or `None` if the operation never completed.
    pub result: Option<KvRet>,
}

/// Ok if the history is linearizable w.r.t. a map of u64 registers (all initially None); Err
/// explains why not (which key, and a small description of the operations involved).
pub fn check_kv_linearizable(history: &[Operation]) -> Result<(), String> {
    check_with_limit(history, MAX_STEPS_PER_KEY)
}

/// [`check_kv_linearizable`] with an explicit per-key step bound.
fn check_with_limit(history: &[Operation], max_steps: u64) -> Result<(), String> {
    let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        validate(index, operation)?;
        by_key.entry(operation.op.key()).or_default().push(index);
    }
    for (key, indices) in by_key {
        check_key(history, key, &indices, max_steps)?;
    }
    Ok(())
}

/// Rejects operations that cannot occur in a well-formed history.
fn validate(index: usize, operation: &Operation) -> Result<(), String> {
    let problem = match (&operation.op, operation.ret, &operation.result) {
        (_, Some(ret), _) if ret < operation.call => Some("returns before it is called"),
        (_, Some(_), None) => Some("has a return time but no result"),
        (_, None, Some(_)) => Some("has a result but no return time"),
        (KvOp::Put { .. }, _, Some(KvRet::Value(_))) => Some("is a Put with a Get result"),
        (KvOp::Get { .. }, _, Some(KvRet::PutOk)) => Some("is a Get with a Put result"),
        _ => None,
    };
    match problem {
        Some(problem) => Err(format!(
            "malformed history: operation {} {problem}",
            describe(index, operation)
        )),
        None => Ok(()),
    }
}

/// Formats one operation of the history for error messages.
fn describe(index: usize, operation: &Operation) -> String {
    let op = match operation.op {
        KvOp::Put { key, value } => format!("put(key={key}, value={value})"),
        KvOp::Get { key } => format!("get(key={key})"),
    };
    let result = match &operation.result {
        Some(KvRet::PutOk) => "ok".to_string(),
        Some(KvRet::Value(Some(value))) => format!("Some({value})"),
        Some(KvRet::Value(None)) => "None".to_string(),
        None => "?".to_string(),
    };
    let ret = match operation.ret {
        Some(ret) => ret.to_string(),
        None => "pending".to_string(),
    };
    format!(
        "#{index} client {}: {op} -> {result} [call={}, ret={ret}]",
        operation.client, operation.call
    )
}

/// The effect of an operation on its register, as seen by the per-key search.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Writes the value.
    Put(u64),
    /// Must observe exactly this register state.
    Get(Option<u64>),
}

/// One operation of a single key's sub-history.
#[derive(Clone, Copy, Debug)]
struct KeyOp {
    /// Index into the full history (for error messages).
    index: usize,
    /// Invocation time.
    call: u64,
    /// Return time; `None` for a pending operation.
    ret: Option<u64>,
    /// Effect on the register.
    action: Action,
}

/// Checks the sub-history of one key.
fn check_key(
    history: &[Operation],
    key: u64,
    indices: &[usize],
    max_steps: u64,
) -> Result<(), String> {
    let mut written = HashSet::new();
    let mut observed = HashSet::new();
    for &index in indices {
        match (&history[index].op, &history[index].result) {
            (KvOp::Put { value, .. }, _) => {
                written.insert(*value);
            }
            (KvOp::Get { .. }, Some(KvRet::Value(Some(value)))) => {
                observed.insert(*value);
            }
            _ => {}
        }
    }

    // Fast, precise diagnosis of the most blatant violation: reading a value nobody wrote.
    for &index in indices {
        if let Some(KvRet::Value(Some(value))) = history[index].result
            && !written.contains(&value)
        {
            return Err(format!(
                "history is not linearizable on key {key}: a get observed value {value}, which \
                 no put on key {key} ever wrote:\n  {}",
                describe(index, &history[index])
            ));
        }
    }

    let ops: Vec<KeyOp> = indices
        .iter()
        .filter_map(|&index| {
            let operation = &history[index];
            let action = match (&operation.op, &operation.result) {
                // A pending get places no constraint.
                (KvOp::Get { .. }, None) => return None,
                (KvOp::Get { .. }, Some(KvRet::Value(value))) => Action::Get(*value),
                // A pending put nobody observed can always be omitted: including it only makes
                // the register hold a value that no get accepts.
                (KvOp::Put { value, .. }, None) if !observed.contains(value) => return None,
                (KvOp::Put { value, .. }, _) => Action::Put(*value),
                (KvOp::Get { .. }, Some(KvRet::PutOk)) => unreachable!("rejected by validate"),
            };
            Some(KeyOp {
                index,
                call: operation.call,
                ret: operation.ret,
                action,
            })
        })
        .collect();

    let outcome = if ops.len() <= 128 {
        search::<u128>(&ops, max_steps)
    } else {
        search::<WideBits>(&ops, max_steps)
    };
    match outcome {
        Outcome::Linearizable => Ok(()),
        Outcome::GaveUp { steps, best } => Err(format!(
            "checker gave up: key {key} with {} operations was not decided within {steps} search \
             steps (the longest linearizable prefix found covers {} of them)",
            ops.len(),
            best.len()
        )),
        Outcome::NotLinearizable { best, state } => {
            Err(explain_failure(history, key, &ops, &best, state))
        }
    }
}

/// Builds the error message for a key whose sub-history is not linearizable.
///
/// `best` is the longest linearizable prefix the search found (indices into `ops`, in
/// linearization order) and `state` the register state after it. The message lists the tail of
/// that prefix and the operations that were candidates to come next, none of which fits.
fn explain_failure(
    history: &[Operation],
    key: u64,
    ops: &[KeyOp],
    best: &[usize],
    state: Option<u64>,
) -> String {
    let mut in_prefix = vec![false; ops.len()];
    for &op in best {
        in_prefix[op] = true;
    }
    let remaining: Vec<usize> = (0..ops.len()).filter(|&op| !in_prefix[op]).collect();
    // Every remaining operation that was invoked before the first remaining return could be
    // linearized next; none of them can.
    let deadline = remaining
        .iter()
        .filter_map(|&op| ops[op].ret)
        .min()
        .unwrap_or(u64::MAX);
    let mut candidates: Vec<usize> = remaining
        .iter()
        .copied()
        .filter(|&op| ops[op].call <= deadline)
        .collect();
    candidates.sort_by_key(|&op| (ops[op].call, ops[op].index));

    let state = match state {
        Some(value) => format!("Some({value})"),
        None => "None".to_string(),
    };
    let mut message = format!(
        "history is not linearizable on key {key}: {} operations on this key; the longest \
         linearizable prefix covers {} of them and leaves the register at {state}",
        ops.len(),
        best.len()
    );
    let context = &best[best.len().saturating_sub(MAX_PREFIX_CONTEXT)..];
    if !context.is_empty() {
        let _ = write!(message, "\n last operations of that prefix:");
        for &op in context {
            let index = ops[op].index;
            let _ = write!(message, "\n  {}", describe(index, &history[index]));
        }
    }
    let _ = write!(
        message,
        "\n none of these operations can be linearized next:"
    );
    let shown = MAX_LISTED_OPS - context.len();
    for &op in candidates.iter().take(shown) {
        let index = ops[op].index;
        let _ = write!(message, "\n  {}", describe(index, &history[index]));
    }
    if candidates.len() > shown {
        let _ = write!(message, "\n  ... and {} more", candidates.len() - shown);
    }
    message
}

/// Result of the search over one key.
enum Outcome {
    /// Some linearization exists.
    Linearizable,
    /// No linearization exists.
    NotLinearizable {
        /// Longest linearizable prefix found (indices into the key's operations).
        best: Vec<usize>,
        /// Register state after that prefix.
        state: Option<u64>,
    },
    /// The step bound was exceeded.
    GaveUp {
        /// Steps taken.
        steps: u64,
        /// Longest linearizable prefix found so far.
        best: Vec<usize>,
    },
}

/// A set of operation indices, used as part of the memoisation key.
trait Bits: Clone + Eq + Hash {
    /// The empty set with room for `n` elements.
    fn empty(n: usize) -> Self;
    /// Adds `i`.
    fn set(&mut self, i: usize);
    /// Removes `i`.
    fn clear(&mut self, i: usize);
}

impl Bits for u128 {
    fn empty(n: usize) -> Self {
        debug_assert!(n <= 128);
        0
    }

    fn set(&mut self, i: usize) {
        *self |= 1 << i;
    }

    fn clear(&mut self, i: usize) {
        *self &= !(1 << i);
    }
}

/// Bitset for keys with more than 128 operations.
#[derive(Clone, PartialEq, Eq, Hash)]
struct WideBits(Box<[u64]>);

impl Bits for WideBits {
    fn empty(n: usize) -> Self {
        WideBits(vec![0; n.div_ceil(64)].into_boxed_slice())
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// A small, fast hasher for the memoisation cache (FxHash-style mixing with a final avalanche).
#[derive(Default)]
struct FastHasher {
    hash: u64,
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // splitmix64 finaliser: spreads entropy to the low and the high bits alike.
        let mut z = self.hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Sentinel node at the start of the event list.
const HEAD: usize = 0;
/// Sentinel node at the end of the event list.
const TAIL: usize = 1;
/// "No node".
const NIL: usize = usize::MAX;

/// A call or return event in the doubly linked event list.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Operation (index into the key's operations).
    op: usize,
    /// Whether this is the call event (otherwise the return event).
    is_call: bool,
    /// For a call event, the node of the matching return event (`NIL` if pending).
    ret_node: usize,
    /// Previous node.
    prev: usize,
    /// Next node.
    next: usize,
}

/// Builds the event list: calls and returns sorted by time, calls before returns at equal times.
fn build_list(ops: &[KeyOp]) -> Vec<Node> {
    // (time, 0 = call / 1 = return, op)
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
    for (op, key_op) in ops.iter().enumerate() {
        events.push((key_op.call, 0, op));
        if let Some(ret) = key_op.ret {
            events.push((ret, 1, op));
        }
    }
    events.sort_unstable();

    let sentinel = Node {
        op: NIL,
        is_call: false,
        ret_node: NIL,
        prev: NIL,
        next: NIL,
    };
    let mut nodes = vec![sentinel; 2];
    let mut ret_node = vec![NIL; ops.len()];
    for (position, &(_, kind, op)) in events.iter().enumerate() {
        let id = position + 2;
        if kind == 1 {
            ret_node[op] = id;
        }
        nodes.push(Node {
            op,
            is_call: kind == 0,
            ret_node: NIL,
            prev: if position == 0 { HEAD } else { id - 1 },
            next: if position + 1 == events.len() {
                TAIL
            } else {
                id + 1
            },
        });
    }
    nodes[HEAD].next = if events.is_empty() { TAIL } else { 2 };
    nodes[TAIL].prev = if events.is_empty() {
        HEAD
    } else {
        events.len() + 1
    };
    for node in nodes.iter_mut().skip(2) {
        if node.is_call {
            node.ret_node = ret_node[node.op];
        }
    }
    nodes
}

/// Unlinks `node` from the list (it keeps its own links so it can be relinked).
fn unlink(nodes: &mut [Node], node: usize) {
    let Node { prev, next, .. } = nodes[node];
    nodes[prev].next = next;
    nodes[next].prev = prev;
}

/// Relinks a node removed by [`unlink`]; nodes must be relinked in reverse order of removal.
fn relink(nodes: &mut [Node], node: usize) {
    let Node { prev, next, .. } = nodes[node];
    nodes[prev].next = node;
    nodes[next].prev = node;
}

/// Removes an operation (its call node and, if any, its return node) from the list.
fn lift(nodes: &mut [Node], call: usize) {
    unlink(nodes, call);
    let ret = nodes[call].ret_node;
    if ret != NIL {
        unlink(nodes, ret);
    }
}

/// Undoes [`lift`].
fn unlift(nodes: &mut [Node], call: usize) {
    let ret = nodes[call].ret_node;
    if ret != NIL {
        relink(nodes, ret);
    }
    relink(nodes, call);
}

/// Lowe's just-in-time linearization search with Porcupine's memoisation over one key.
fn search<B: Bits>(ops: &[KeyOp], max_steps: u64) -> Outcome {
    let mut nodes = build_list(ops);
    let mut cache: HashSet<(B, Option<u64>), BuildHasherDefault<FastHasher>> = HashSet::default();
    let mut linearized = B::empty(ops.len());
    let mut state: Option<u64> = None;
    // (call node, register state before the operation)
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    let mut best_state: Option<u64> = None;
    let mut steps: u64 = 0;
    let mut entry = nodes[HEAD].next;
    loop {
        if entry == TAIL {
            // Every completed operation is linearized (an unlinearized one would have a return
            // node in the list, which makes the search backtrack); remaining pending puts are
            // simply omitted.
            return Outcome::Linearizable;
        }
        steps += 1;
        if steps > max_steps {
            return Outcome::GaveUp { steps, best };
        }
        let node = nodes[entry];
        if node.is_call {
            let next_state = match ops[node.op].action {
                Action::Put(value) => Some(Some(value)),
                Action::Get(seen) => (seen == state).then_some(state),
            };
            if let Some(next_state) = next_state {
                linearized.set(node.op);
                if cache.insert((linearized.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    lift(&mut nodes, entry);
                    if stack.len() > best.len() {
                        best = stack.iter().map(|&(call, _)| nodes[call].op).collect();
                        best_state = state;
                    }
                    entry = nodes[HEAD].next;
                    continue;
                }
                linearized.clear(node.op);
            }
            entry = node.next;
        } else {
            // The return of an operation that is not linearized yet: whatever was linearized
            // last must move later.
            let Some((call, previous_state)) = stack.pop() else {
                return Outcome::NotLinearizable {
                    best,
                    state: best_state,
                };
            };
            state = previous_state;
            linearized.clear(nodes[call].op);
            unlift(&mut nodes, call);
            entry = nodes[call].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client: u64, key: u64, value: u64, call: u64, ret: u64) -> Operation {
        Operation {
            client,
            call,
            ret: Some(ret),
            op: KvOp::Put { key, value },
            result: Some(KvRet::PutOk),
        }
    }

    fn get(client: u64, key: u64, seen: Option<u64>, call: u64, ret: u64) -> Operation {
        Operation {
            client,
            call,
            ret: Some(ret),
            op: KvOp::Get { key },
            result: Some(KvRet::Value(seen)),
        }
    }

    fn pending_put(client: u64, key: u64, value: u64, call: u64) -> Operation {
        Operation {
            client,
            call,
            ret: None,
            op: KvOp::Put { key, value },
            result: None,
        }
    }

    fn pending_get(client: u64, key: u64, call: u64) -> Operation {
        Operation {
            client,
            call,
            ret: None,
            op: KvOp::Get { key },
            result: None,
        }
    }

    fn assert_rejected(history: &[Operation], expected: &[&str]) -> String {
        let err = check_kv_linearizable(history).expect_err("history must be rejected");
        for fragment in expected {
            assert!(err.contains(fragment), "{fragment:?} missing from: {err}");
        }
        assert!(!err.starts_with("checker gave up"), "{err}");
        err
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(check_kv_linearizable(&[]), Ok(()));
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let history = [
            get(1, 7, None, 0, 1),
            put(1, 7, 10, 2, 3),
            get(2, 7, Some(10), 4, 5),
            put(2, 7, 11, 6, 7),
            get(1, 7, Some(11), 8, 9),
            put(1, 7, 10, 10, 11),
            get(2, 7, Some(10), 12, 13),
        ];
        assert_eq!(check_kv_linearizable(&history), Ok(()));
    }

    #[test]
    fn concurrent_get_may_see_either_value() {
        for seen in [Some(1), Some(2)] {
            let history = [
                put(1, 0, 1, 0, 10),
                put(2, 0, 2, 20, 40),
                get(3, 0, seen, 25, 35),
            ];
            assert_eq!(check_kv_linearizable(&history), Ok(()), "get saw {seen:?}");
        }
        // Two overlapping puts: later readers may see either order, but must agree.
        for (first, second) in [(1, 2), (2, 1)] {
            let history = [
                put(1, 0, 1, 0, 10),
                put(2, 0, 2, 5, 15),
                get(3, 0, Some(second), 20, 21),
                get(1, 0, Some(second), 22, 23),
                get(2, 0, Some(first), 0, 4),
            ];
            let expected = if first == 1 { Ok(()) } else { Err(()) };
            assert_eq!(check_kv_linearizable(&history).map_err(|_| ()), expected);
        }
    }

    #[test]
    fn touching_intervals_are_concurrent() {
        // The get is invoked at the very instant the put returns: treated as concurrent.
        let history = [put(1, 0, 1, 0, 10), get(2, 0, None, 10, 12)];
        assert_eq!(check_kv_linearizable(&history), Ok(()));
        let history = [put(1, 0, 1, 0, 10), get(2, 0, None, 11, 12)];
        assert!(check_kv_linearizable(&history).is_err());
    }

    #[test]
    fn stale_read_after_completed_put_is_rejected() {
        let history = [
            put(1, 5, 1, 0, 10),
            put(1, 5, 2, 20, 30),
            get(2, 5, Some(1), 40, 50),
        ];
        let err = assert_rejected(&history, &["key 5", "#2 client 2: get(key=5) -> Some(1)"]);
        assert!(err.contains("put(key=5, value=2)"), "{err}");
    }

    #[test]
    fn initial_value_read_after_put_is_rejected() {
        let history = [put(1, 3, 1, 0, 10), get(2, 3, None, 11, 20)];
        assert_rejected(&history, &["key 3", "get(key=3) -> None"]);
    }

    #[test]
    fn read_of_value_never_written_is_rejected() {
        let history = [put(1, 9, 1, 0, 10), get(2, 9, Some(42), 0, 20)];
        assert_rejected(&history, &["key 9", "value 42", "#1 client 2"]);
    }

    #[test]
    fn read_from_the_future_is_rejected() {
        let history = [get(2, 1, Some(3), 0, 5), put(1, 1, 3, 6, 10)];
        assert_rejected(&history, &["key 1", "get(key=1) -> Some(3)"]);
    }

    #[test]
    fn new_old_inversion_is_rejected() {
        // Both puts overlap all reads, but the readers disagree on the order of the writes.
        let history = [
            put(1, 0, 1, 0, 100),
            put(2, 0, 2, 0, 100),
            get(3, 0, Some(1), 10, 11),
            get(3, 0, Some(2), 12, 13),
            get(4, 0, Some(2), 10, 11),
            get(4, 0, Some(1), 12, 13),
        ];
        assert_rejected(&history, &["key 0"]);
    }

    #[test]
    fn observed_pending_put_is_linearizable() {
        let history = [
            put(1, 2, 1, 0, 10),
            pending_put(2, 2, 2, 5),
            get(3, 2, Some(2), 50, 60),
            get(3, 2, Some(2), 70, 80),
        ];
        assert_eq!(check_kv_linearizable(&history), Ok(()));
    }

    #[test]
    fn unobserved_pending_put_is_linearizable() {
        let history = [
            put(1, 2, 1, 0, 10),
            pending_put(2, 2, 2, 5),
            get(3, 2, Some(1), 50, 60),
            pending_get(3, 2, 70),
        ];
        assert_eq!(check_kv_linearizable(&history), Ok(()));
    }

    #[test]
    fn pending_put_cannot_take_effect_before_its_call() {
        let history = [get(3, 2, Some(2), 0, 4), pending_put(2, 2, 2, 5)];
        assert_rejected(&history, &["key 2"]);
    }

    #[test]
    fn pending_put_takes_effect_at_most_once() {
        let history = [
            pending_put(1, 0, 1, 0),
            put(2, 0, 2, 0, 10),
            get(3, 0, Some(1), 20, 21),
            get(3, 0, Some(2), 22, 23),
            get(3, 0, Some(1), 24, 25),
        ];
        assert_rejected(&history, &["key 0"]);
    }

    #[test]
    fn keys_are_independent() {
        // Interleaved in time, each key on its own is fine.
        let history = [
            put(1, 1, 10, 0, 10),
            put(2, 2, 20, 5, 15),
            get(1, 2, Some(20), 20, 30),
            get(2, 1, Some(10), 20, 30),
            put(1, 1, 11, 40, 50),
            get(2, 2, Some(20), 60, 70),
            get(2, 1, Some(11), 60, 70),
        ];
        assert_eq!(check_kv_linearizable(&history), Ok(()));

        let mut broken = history.to_vec();
        broken.push(get(3, 2, Some(10), 80, 90)); // 10 was only written to key 1
        assert_rejected(&broken, &["key 2", "value 10"]);
    }

    #[test]
    fn malformed_operations_are_rejected() {
        let mut backwards = put(1, 0, 1, 10, 5);
        assert!(check_kv_linearizable(&[backwards.clone()]).is_err());
        backwards.ret = Some(10);
        backwards.result = Some(KvRet::Value(None));
        assert!(check_kv_linearizable(&[backwards]).is_err());
        let mut half_done = get(1, 0, None, 0, 5);
        half_done.result = None;
        let err = check_kv_linearizable(&[half_done]).expect_err("malformed");
        assert!(err.starts_with("malformed history"), "{err}");
    }

    #[test]
    fn step_bound_makes_the_checker_give_up() {
        let history: Vec<Operation> = (0..20).map(|i| put(i, 0, i, 0, 100)).collect();
        let err = check_with_limit(&history, 5).expect_err("must give up");
        assert!(err.starts_with("checker gave up"), "{err}");
        assert!(err.contains("key 0"), "{err}");
        assert_eq!(check_with_limit(&history, 1_000), Ok(()));
    }

    #[test]
    fn error_lists_a_bounded_number_of_operations() {
        // Many concurrent gets read values written only later; the message stays short.
        let mut history: Vec<Operation> = (0..14).map(|i| get(i, 0, Some(i), 0, 10)).collect();
        history.extend((0..14).map(|i| put(i, 0, i, 20, 30)));
        let err = assert_rejected(&history, &["key 0", "... and 4 more"]);
        assert!(err.lines().count() <= MAX_LISTED_OPS + 4, "{err}");
    }

    /// Tiny deterministic PRNG for the randomized tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Simulates clients issuing operations against a real atomic map: every operation takes
    /// effect at a random instant inside its random interval. Put values are unique. The last
    /// operation of some clients never returns (a pending put takes effect or not at random).
    fn random_history(seed: u64, clients: u64, ops_per_client: u64, keys: u64) -> Vec<Operation> {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // (linearization point, client, pending, takes effect, operation without result)
        let mut planned = Vec::new();
        let mut next_value = 1;
        for client in 0..clients {
            let mut time = rng.below(10);
            for j in 0..ops_per_client {
                let call = time;
                let point = call + rng.below(20);
                let ret = point + rng.below(20);
                let key = rng.below(keys);
                let op = if rng.below(2) == 0 {
                    next_value += 1;
                    KvOp::Put {
                        key,
                        value: next_value,
                    }
                } else {
                    KvOp::Get { key }
                };
                let pending = j + 1 == ops_per_client && rng.below(3) == 0;
                let takes_effect = !pending || rng.below(2) == 0;
                planned.push((
                    point,
                    client,
                    takes_effect,
                    Operation {
                        client,
                        call,
                        ret: (!pending).then_some(ret),
                        op,
                        result: None,
                    },
                ));
                time = ret + 1 + rng.below(5);
            }
        }
        planned.sort_by_key(|&(point, client, ..)| (point, client));
        let mut map = BTreeMap::new();
        let mut history = Vec::new();
        for (_, _, takes_effect, mut operation) in planned {
            let result = match operation.op {
                KvOp::Put { key, value } => {
                    if takes_effect {
                        map.insert(key, value);
                    }
                    KvRet::PutOk
                }
                KvOp::Get { key } => KvRet::Value(map.get(&key).copied()),
            };
            if operation.ret.is_some() {
                operation.result = Some(result);
            }
            history.push(operation);
        }
        history
    }

    fn completed_put(operation: &Operation, key: u64) -> Option<(u64, u64, u64)> {
        match (operation.op.clone(), operation.ret) {
            (KvOp::Put { key: k, value }, Some(ret)) if k == key => {
                Some((operation.call, ret, value))
            }
            _ => None,
        }
    }

    /// Makes one completed get return a value that was overwritten before the get was invoked:
    /// put(w) returned before put(x) was invoked, and put(x) returned before the get was invoked.
    fn corrupt_with_stale_read(history: &mut [Operation]) -> bool {
        for g in (0..history.len()).rev() {
            let (KvOp::Get { key }, Some(_)) = (&history[g].op, history[g].ret) else {
                continue;
            };
            let key = *key;
            let get_call = history[g].call;
            let puts: Vec<_> = history
                .iter()
                .filter_map(|operation| completed_put(operation, key))
                .collect();
            for &(_, first_ret, stale) in &puts {
                let overwritten = puts
                    .iter()
                    .any(|&(call, ret, _)| first_ret < call && ret < get_call);
                if overwritten {
                    history[g].result = Some(KvRet::Value(Some(stale)));
                    return true;
                }
            }
        }
        false
    }

    /// Makes one completed get return a value whose put was invoked after the get returned.
    fn corrupt_with_future_read(history: &mut [Operation]) -> bool {
        for g in 0..history.len() {
            let (KvOp::Get { key }, Some(get_ret)) = (&history[g].op, history[g].ret) else {
                continue;
            };
            let key = *key;
            let future = history.iter().find_map(|operation| match operation.op {
                KvOp::Put { key: k, value } if k == key && operation.call > get_ret => Some(value),
                _ => None,
            });
            if let Some(value) = future {
                history[g].result = Some(KvRet::Value(Some(value)));
                return true;
            }
        }
        false
    }

    #[test]
    fn random_valid_histories_are_accepted_and_corruptions_rejected() {
        for seed in 1..=4 {
            // 3 keys, ~40 operations per key.
            let history = random_history(seed, 4, 30, 3);
            assert_eq!(check_kv_linearizable(&history), Ok(()), "seed {seed}");

            let mut stale = history.clone();
            assert!(corrupt_with_stale_read(&mut stale), "seed {seed}");
            assert_rejected(&stale, &["key"]);

            let mut future = history.clone();
            assert!(corrupt_with_future_read(&mut future), "seed {seed}");
            assert_rejected(&future, &["key"]);
        }
    }

    #[test]
    fn large_single_key_history_uses_wide_bitset() {
        // 5 clients x 60 operations on one key: more than 128 operations, so the wide bitset.
        let history = random_history(99, 5, 60, 1);
        assert!(history.len() > 128);
        assert_eq!(check_kv_linearizable(&history), Ok(()));
        let mut stale = history.clone();
        assert!(corrupt_with_stale_read(&mut stale));
        assert_rejected(&stale, &["key 0"]);
    }
}
