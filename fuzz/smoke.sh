#!/usr/bin/env bash
# The fuzz smoke that ./test runs: builds every fuzz target once (cargo fuzz, libFuzzer, no
# sanitizer: the code forbids `unsafe`; debug assertions and overflow checks on), then runs
# each for FUZZ_SMOKE_SECONDS (default 10) from a temporary copy of its seed corpus
# (fuzz/seeds/TARGET), two at a time. Any crash, timeout or out-of-memory fails the script
# with the target's name, the end of its log and the input it wrote (under
# fuzz/artifacts/TARGET/), which `cargo +nightly fuzz run TARGET ARTIFACT` replays.
#
# Needs the nightly toolchain and cargo-fuzz (./test installs cargo-fuzz). Environment:
# FUZZ_SMOKE_SECONDS (per target), FUZZ_SMOKE_JOBS (targets at once, default 2).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SMOKE_SECONDS:-10}
jobs=${FUZZ_SMOKE_JOBS:-2}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz smoke skipped: the nightly Rust toolchain is missing (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: the fuzz smoke needs cargo-fuzz: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

start=$(date +%s)
echo "fuzz smoke: building the fuzz targets"
cargo +nightly fuzz build -s none --debug-assertions
built=$(date +%s)

bin_dir=target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t targets < <(cargo +nightly fuzz list)

run_one() {
  local target=$1
  mkdir -p "$work/corpus/$target" "artifacts/$target"
  cp seeds/"$target"/* "$work/corpus/$target/"
  if "$bin_dir/$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
    "$work/corpus/$target" >"$work/$target.log" 2>&1; then
    echo ok >"$work/$target.status"
  else
    echo failed >"$work/$target.status"
  fi
}

running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$target" &
  running=$((running + 1))
done
wait

failed=0
for target in "${targets[@]}"; do
  log=$work/$target.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  if [ "$(cat "$work/$target.status" 2>/dev/null)" = ok ]; then
    printf 'fuzz smoke: %-18s ok   %8s runs, coverage %s\n' "$target" "${runs:-?}" "${cov:-?}"
  else
    failed=1
    echo "fuzz smoke: $target FAILED" >&2
    tail -n 40 "$log" >&2
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ]; then
      echo "fuzz smoke: $target: the input is fuzz/$artifact;" \
        "replay it with: cargo +nightly fuzz run $target fuzz/$artifact" >&2
    fi
  fi
done
end=$(date +%s)
echo "fuzz smoke: ${#targets[@]} targets, build $((built - start)) s, runs $((end - built)) s"
passed=0
for target in "${targets[@]}"; do
  [ "$(cat "$work/$target.status" 2>/dev/null)" = ok ] && passed=$((passed + 1))
done
echo "smoke: $passed passed, $((${#targets[@]} - passed)) failed"
if [ "$failed" != 0 ]; then
  exit 1
fi
