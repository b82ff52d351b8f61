#!/usr/bin/env bash
# nemesis.sh: Jepsen-style runs of a real kv-server or bt-tracker cluster. Each node runs in a network
# namespace of its own, joined to the others by a bridge; clients record every operation;
# faults come from a printed seed (partitions and one-way loss, kill -9 and SIGSTOP, clock
# skew and time-of-day steps, full disks); the history is checked for linearizability.
# Needs root (namespaces, nftables, tmpfs); everything a run makes is removed when it ends.
#
# Run from anywhere in the repository:
#     bench/nemesis.sh                                  # one run: every family, 60 s
#     FAULTS=network SEED=1234 NODES=5 bench/nemesis.sh # replay a seed
#     SOAK=1 bench/nemesis.sh                           # the soak: 60 runs of 60 s
#     SYSTEM=tracker SOAK=1 RUNS=20 bench/nemesis.sh    # the tracker's soak
#
# Knobs (environment):
#   SYSTEM    kv (default) or tracker
#   SOAK      1: run RUNS runs, the families in turn (network, process, clock, disk, all),
#             3 and 5 nodes alternating, each with a fresh seed
#   RUNS      runs of the soak, default 60
#   DURATION  seconds of faults per run, default 60
#   FAULTS    families of a single run: network, process, clock, disk, comma-separated, or
#             all (default)
#   NODES     nodes of a single run, 3 (default) or 5
#   SEED      seed of a single run (default: a fresh one)
#   NO_BUILD  1: use the binaries already built
#
# Prints each run's faults and verdict, then a summary line per run and the totals; saves
# everything to bench/results/nemesis-<UTC stamp>.txt. Exits 1 if any run found a
# violation or failed.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-60}
SYSTEM=${SYSTEM:-kv}
case $SYSTEM in kv|tracker) ;; *) echo "nemesis.sh: SYSTEM must be kv or tracker" >&2; exit 1 ;; esac
DURATION=${DURATION:-60}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "nemesis.sh: RUNS must be a positive whole number" >&2; exit 1; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "nemesis.sh: DURATION must be a positive whole number of seconds" >&2; exit 1; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p tests --bin nemesis --bin kv-server
  cargo build --release -q -p tracker --bin bt-tracker
fi
NEMESIS=target/release/nemesis
mkdir -p bench/results
OUT="bench/results/nemesis-$(date -u +%Y%m%dT%H%M%SZ).txt"

run_one() {
  # Prints the run's output; its status is the nemesis's (0 pass, 1 violation, 2 error).
  "$NEMESIS" run --system "$SYSTEM" --faults "$1" --nodes "$2" --duration "$DURATION" ${3:+--seed "$3"}
}

failed=0
if [ "${SOAK:-0}" = 1 ]; then
  families=(network process clock disk all)
  for ((i = 0; i < RUNS; i++)); do
    family=${families[$((i % ${#families[@]}))]}
    nodes=$((3 + 2 * ((i / ${#families[@]}) % 2)))
    echo "=== soak run $((i + 1)) of $RUNS: $family, $nodes nodes" | tee -a "$OUT"
    if ! run_one "$family" "$nodes" "" 2>&1 | tee -a "$OUT"; then
      failed=$((failed + 1))
    fi
  done
else
  if ! run_one "${FAULTS:-all}" "${NODES:-3}" "${SEED:-}" 2>&1 | tee -a "$OUT"; then
    failed=1
  fi
fi

echo
echo "summary (every run's seed, faults, operations and verdict):"
grep '^result:' "$OUT" || true
runs=$(grep -c '^result:' "$OUT" || true)
violations=$(grep -c '^result:.*verdict=VIOLATION' "$OUT" || true)
errors=$(grep -c '^result:.*verdict=ERROR' "$OUT" || true)
ops=$(grep -o '^result:.* ops=[0-9]*' "$OUT" | sed 's/.*ops=//' | awk '{ s += $1 } END { print s + 0 }')
echo "runs: $runs  violations: $violations  harness errors: $errors  operations: $ops  (saved in $OUT)"
[ "$failed" = 0 ]
