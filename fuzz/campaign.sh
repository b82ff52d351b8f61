#!/usr/bin/env bash
# A fuzzing campaign: runs each fuzz target for SECONDS (default 600) on a corpus kept
# between campaigns (fuzz/corpus/TARGET, started from fuzz/seeds/TARGET), one target at a
# time and one process each, carrying on after a crash, and prints per target the
# executions, the corpus size, the coverage libFuzzer reports (`cov`: code edges reached,
# `ft`: features), the crashes (inputs written to fuzz/artifacts/TARGET/) and the CPU time.
# Logs go to fuzz/logs/TARGET.log.
#
# Usage: fuzz/campaign.sh [SECONDS] [TARGET...]   (all targets when none is named)
# Replay a crash: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# Run it niced on a shared machine: nice -n 19 fuzz/campaign.sh 600
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s none --debug-assertions
bin_dir=target/x86_64-unknown-linux-gnu/release
mkdir -p logs

rows=()
for target in "${targets[@]}"; do
  corpus=corpus/$target
  mkdir -p "$corpus" "artifacts/$target"
  cp -n seeds/"$target"/* "$corpus/" 2>/dev/null || true
  before=$(find "artifacts/$target" -type f | wc -l)
  log=logs/$target.log
  echo "campaign: $target for $seconds s"
  TIMEFORMAT='%U %S'
  # Fork mode with one worker: a crash, timeout or out-of-memory is saved and counted,
  # and fuzzing goes on. A slow input is one that takes 30 s: niced on a busy machine,
  # a worker can wait seconds for a core (a 5 s limit saved an input that runs in 0.04 s).
  { time "$bin_dir/$target" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$target/" "$corpus" >"$log" 2>&1 || true; } 2>logs/"$target".time
  read -r user sys <logs/"$target".time
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
  status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$status")
  cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$status")
  ft=$(sed -nE 's/.* ft: ([0-9]+) .*/\1/p' <<<"$status")
  failures=$(sed -nE 's/.*oom\/timeout\/crash: ([0-9]+)\/([0-9]+)\/([0-9]+).*/\1 \2 \3/p' <<<"$status")
  read -r ooms timeouts crashes <<<"${failures:-0 0 0}"
  files=$(find "$corpus" -type f | wc -l)
  new=$(($(find "artifacts/$target" -type f | wc -l) - before))
  rows+=("$(printf '| %-18s | %12s | %7s | %6s | %7s | %s/%s/%s (%s saved) | %6s |' \
    "$target" "${execs:-?}" "$files" "${cov:-?}" "${ft:-?}" \
    "${crashes:-?}" "${timeouts:-?}" "${ooms:-?}" "$new" "$cpu")")
done

echo
echo "| target             |   executions |  corpus |    cov |      ft | crash/timeout/oom | CPU s  |"
echo "|--------------------|--------------|---------|--------|---------|-------------------|--------|"
printf '%s\n' "${rows[@]}"
