#!/usr/bin/env bash
# tracker-reports.sh: piece reports committed per second through a 3-node tracker cluster
# on loopback (in one process: real Paxos over QUIC, fsync'd logs), with 1,000 and 10,000
# simulated peers, and the p99 delay until a report is applied on every node. Goal:
# >= 100,000 piece reports per second. The benchmark itself is tracker/benches/piece_reports.rs.
#
# Run from anywhere in the repository:
#     bench/tracker-reports.sh
#     DURATION=5 PEERS="1000" QUIC_PEERS="100" BATCH=32 bench/tracker-reports.sh
#
# Knobs (environment, passed through to the benchmark):
#   DURATION     measured seconds per run, default 10
#   WARMUP       warm-up seconds per run, default 2
#   PEERS        simulated peer counts of the direct mode, default "1000 10000"
#   QUIC_PEERS   peer counts of the quic mode (one QUIC endpoint each), default "200"
#   BATCH        pieces per report, default 16
#   PIECES       pieces per torrent (default: sized per run, at most 16384)
#   TORRENTS     torrents per run, each peer joins all (default: enough that no peer runs out)
#   INTERVAL_MS  pause between a peer's reports, default 0 (closed loop)
#   MODES        "direct quic" (default), "direct" or "quic"
#   REPS         how many times to run the whole benchmark, default 1
#
# Prints the benchmark's table; saves its whole output to
# bench/results/tracker-reports-<UTC stamp>.txt and its JSON lines to the same name .jsonl.
# Measure on an otherwise idle machine: the cluster and the load share its cores.
set -euo pipefail

REPS=${REPS:-1}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "tracker-reports: REPS must be a positive whole number" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p bench/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/results/tracker-reports-$STAMP.txt
JSONL=bench/results/tracker-reports-$STAMP.jsonl

export DURATION WARMUP PEERS QUIC_PEERS BATCH PIECES TORRENTS INTERVAL_MS MODES
# Build first, so that a compile error is not mistaken for a benchmark failure.
cargo bench -p tracker --bench piece_reports --no-run
for rep in $(seq 1 "$REPS"); do
  echo "== rep $rep of $REPS ==" | tee -a "$OUT"
  cargo bench -p tracker --bench piece_reports 2>&1 | tee -a "$OUT"
done
grep '^{"bench":"tracker-piece-reports"' "$OUT" > "$JSONL" || true
echo "raw output: $OUT"
echo "JSON lines: $JSONL"
