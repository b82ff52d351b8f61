#!/usr/bin/env bash
# A fuzzing campaign: runs each fuzz target until it has used CPU_SECONDS (default 600) of
# CPU time, on a corpus kept between campaigns (fuzz/corpus/TARGET, started from
# fuzz/seeds/TARGET), carrying on after a crash. It prints per target the executions, the
# corpus size, the coverage libFuzzer reports (`cov`: code edges reached, `ft`: features),
# the crashes (inputs written to fuzz/artifacts/TARGET/), the CPU time and the wall time.
# Logs go to fuzz/logs/TARGET.log.
#
# The budget is CPU time, not wall time, so that a campaign niced on a busy machine still
# gives every target its due: the fuzzer's process tree (the fork-mode parent and its
# workers) is measured every few seconds and stopped once it has had its budget.
#
# Usage: fuzz/campaign.sh [CPU_SECONDS] [TARGET...]   (all targets when none is named)
# Environment: FUZZ_JOBS, targets fuzzed at once (default 1; one core each).
# Replay a crash: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# Run it niced on a shared machine: FUZZ_JOBS=2 nice -n 19 fuzz/campaign.sh 600
set -euo pipefail
cd "$(dirname "$0")"

budget=${1:-600}
shift || true
jobs=${FUZZ_JOBS:-1}
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s none --debug-assertions
bin_dir=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
ticks_per_second=$(getconf CLK_TCK)

# CPU ticks used by process `pid` and every process below it, living or reaped.
tree_ticks() {
  local pid=$1 stat fields child total=0
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
  # Fields after "pid (comm) ": state is the 1st; utime, stime, cutime, cstime the 12th-15th.
  read -r -a fields <<<"${stat##*) }"
  total=$((fields[11] + fields[12] + fields[13] + fields[14]))
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    total=$((total + $(tree_ticks "$child")))
  done
  echo "$total"
}

# Fuzzes one target until its budget is spent; writes its table row to logs/TARGET.row.
fuzz_one() {
  local target=$1 corpus=corpus/$1 log=logs/$1.log
  mkdir -p "$corpus" "artifacts/$target"
  cp -n seeds/"$target"/* "$corpus/" 2>/dev/null || true
  local before started ticks=0 pid
  before=$(find "artifacts/$target" -type f | wc -l)
  started=$(date +%s)
  echo "campaign: $target until $budget CPU-s"
  # Fork mode with one worker: a crash, timeout or out-of-memory is saved and counted,
  # and fuzzing goes on. A slow input is one that takes 30 s: niced on a busy machine,
  # a worker can wait seconds for a core (a 5 s limit saved an input that runs in 0.04 s).
  "$bin_dir/$target" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -timeout=30 -rss_limit_mb=2048 -artifact_prefix="artifacts/$target/" "$corpus" \
    >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    ticks=$(tree_ticks "$pid")
    if [ "$ticks" -ge $((budget * ticks_per_second)) ]; then
      pkill -INT -P "$pid" 2>/dev/null || true
      kill -INT "$pid" 2>/dev/null || true
      break
    fi
    sleep 5
  done
  wait "$pid" || true
  local cpu=$((ticks / ticks_per_second)) wall=$(($(date +%s) - started))
  local status execs cov ft failures ooms timeouts crashes files new
  status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$status")
  cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$status")
  ft=$(sed -nE 's/.* ft: ([0-9]+) .*/\1/p' <<<"$status")
  failures=$(sed -nE 's/.*oom\/timeout\/crash: ([0-9]+)\/([0-9]+)\/([0-9]+).*/\1 \2 \3/p' <<<"$status")
  read -r ooms timeouts crashes <<<"${failures:-0 0 0}"
  files=$(find "$corpus" -type f | wc -l)
  new=$(($(find "artifacts/$target" -type f | wc -l) - before))
  printf '| %-18s | %12s | %7s | %6s | %7s | %s/%s/%s (%s saved) | %6s | %6s |\n' \
    "$target" "${execs:-?}" "$files" "${cov:-?}" "${ft:-?}" \
    "${crashes:-?}" "${timeouts:-?}" "${ooms:-?}" "$new" "$cpu" "$wall" >"logs/$target.row"
  echo "campaign: $target done, $cpu CPU-s in $wall s"
}

for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  fuzz_one "$target" &
done
wait

echo
echo "| target             |   executions |  corpus |    cov |      ft | crash/timeout/oom | CPU s  | wall s |"
echo "|--------------------|--------------|---------|--------|---------|-------------------|--------|--------|"
for target in "${targets[@]}"; do
  cat "logs/$target.row"
done
