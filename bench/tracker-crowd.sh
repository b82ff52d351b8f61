#!/usr/bin/env bash
# tracker-crowd.sh: a flash crowd of 20,000 real tracker clients (4 worker processes of
# 4,750 peers that stay or leave, and one of 1,000 peers that is killed with SIGKILL), each
# peer with its own key, QUIC connection and TrackerClient, against a 3-node cluster of
# real `bt-tracker run` processes (fsync on, default settings); the leader is killed with
# SIGKILL once mid-run and restarted 3 s later. At the end every acknowledged report is
# checked against every node's own state. The benchmark is the binary of the crate
# bench/tracker-crowd; every setting is a flag (`tracker-crowd run --help`).
#
# Run from anywhere in the repository:
#     bench/tracker-crowd.sh
#     bench/tracker-crowd.sh --peers 5000 --steady 40     # flags go to `tracker-crowd run`
#     bench/tracker-crowd.sh --closed-loop --peers 2000 --pieces 16384 \
#         --pieces-per-report 256 --join-window 5 --steady 25 --small-torrents 20
#                                   # the highest sustained piece-report rate instead
#
# Prints the table; saves the whole output to bench/results/tracker-crowd-<UTC stamp>.txt
# and the figures as one JSON line to the same name .jsonl. Needs about 5 GB of memory
# for 20,000 peers (each peer's QUIC endpoint is its own UDP socket) and a limit of open
# files above 6,000 per process. Measure on an otherwise idle machine: the cluster and
# the crowd share its cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p bench/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/results/tracker-crowd-$STAMP.txt
JSONL=bench/results/tracker-crowd-$STAMP.jsonl

# Each worker holds one UDP socket per peer.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Build first, so that a compile error is not mistaken for a benchmark failure.
cargo build --release --bin bt-tracker --bin tracker-crowd
status=0
./target/release/tracker-crowd run --json "$JSONL" "$@" 2>&1 | tee "$OUT" || status=$?
echo "raw output: $OUT"
echo "JSON line:  $JSONL"
exit "$status"
