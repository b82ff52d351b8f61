#!/usr/bin/env bash
# swarm-vs-aria2.sh: side-by-side swarm benchmark on loopback. One seeder and N leechers
# distribute one random file; measured from the leechers' start until every leecher holds a
# verified copy, for ByteTorrent ("ours": a 3-node `bt-tracker dev` cluster, `bt seed`,
# N x `bt get --no-seed`) and for aria2c (an aria2c seeder, N aria2c leechers, opentracker).
#
# Run from anywhere, as root (network namespaces and apt-get need it):
#     bench/swarm-vs-aria2.sh                      # N=4, SIZES="1024 256", REPS=3
#     SIZES=64 REPS=1 bench/swarm-vs-aria2.sh      # a quick check
#     BIG=1 SIZES= bench/swarm-vs-aria2.sh         # only the 4 GiB peak-RSS run
#
# What it does:
#   1. Outside isolation: installs missing tools (apt-get: aria2 opentracker mktorrent time
#      iproute2) and builds our binaries (cargo build --release -p tracker --bin bt-tracker
#      -p peer --bin bt; NO_BUILD=1 skips this).
#   2. Re-executes itself in private network and PID namespaces (unshare) holding only `lo`:
#      no traffic can leave 127.0.0.0/8, and every process it started dies with it.
#   3. Per size: writes one random payload file. Per rep, in alternating order (so a slow
#      spell of the machine hits both), each system on fresh directories, and each timed
#      from a clean page cache (`sync` first: no earlier step's writeback in its time):
#        ours:  starts `bt-tracker dev --nodes 3`, then `bt seed` (which hashes, publishes and
#               seeds) and waits for its "seeding" line; starts N `bt get --no-seed` at once,
#               each with its own state directory; the time ends when the last one exits 0
#               (bt exits once every piece is verified with BLAKE3 and written).
#        aria2: starts opentracker (whitelisting the info-hash), an aria2c seeder, waits until
#               the tracker's /scrape counts it; starts N aria2c leechers at once; the time ends
#               when the last one's --on-bt-download-complete hook has run (every piece
#               SHA-1-verified). aria2 leechers keep seeding to each other until stopped.
#      Then every copy is compared byte for byte with the original (cmp).
#   4. BIG=1 adds one run of ours: one seeder, one leecher, a BIG_MIB (4096) MiB file, for the
#      leecher's peak RSS (goal: under 64 MiB).
#   5. Appends one JSON line per run to bench/results/swarm-vs-aria2-<UTC stamp>.jsonl and
#      prints the table (also written beside it as .md): median (min-max) wall seconds,
#      ours/aria2 ratio of the medians, the goal (<= 0.5 for 1 GiB, <= 0.3 for 256 MiB)
#      PASS/FAIL, the leechers' peak RSS (ours: GNU time %M; aria2: /proc VmHWM) and the CPU
#      seconds the seeder and the leechers used during the transfer (ours: GNU time for the
#      leechers; aria2's leechers keep running, so /proc when the last one completes). CPU
#      seconds per copy hardly depend on how loaded the machine is, unlike wall time.
# Piece size: both systems use the same one. By default it is the size `bt seed` picks for
# the file (about 2,000 pieces, 256 KiB to 4 MiB: 256 KiB for 256 MiB, 512 KiB for 1 GiB), and
# aria2's torrent is made with mktorrent to match. PIECE_KIB=K forces K for both; since
# `bt seed` has no piece-size option, ours then makes the torrent with `bt create
# --piece-kib`, publishes it with `bt publish` and seeds it with `bt get` on the complete
# file (which verifies it and seeds on).
# Every wait is bounded; processes are stopped by PID (INT, then KILL); the payloads and
# copies live in a mktemp directory under /tmp that is deleted on exit. The exit status is
# non-zero if any run failed (a missed goal is a result, not an error). Measure on an
# otherwise idle machine: every process shares its cores.
#
# Knobs (environment):
#   REPS        reps per size and system, default 3
#   N           leechers, default 4
#   SIZES       payload sizes in MiB, default "1024 256" (may be empty with BIG=1)
#   BIG         1 adds the big-file peak-RSS run, default 0
#   BIG_MIB     size of the big file in MiB, default 4096
#   SYSTEMS     "ours aria2" (default), "ours" or "aria2"
#   PIECE_KIB   piece size in KiB for both systems, default: bt seed's own choice
#   TIMEOUT     seconds allowed per run (setup, and transfer), default 300
#   NO_BUILD    1 skips the cargo build
set -euo pipefail

REPS=${REPS:-3}
N=${N:-4}
SIZES=${SIZES-"1024 256"}
BIG=${BIG:-0}
BIG_MIB=${BIG_MIB:-4096}
SYSTEMS=${SYSTEMS:-"ours aria2"}
PIECE_KIB=${PIECE_KIB:-}
TIMEOUT=${TIMEOUT:-300}
NO_BUILD=${NO_BUILD:-0}

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SCRIPT")/.." && pwd)
cd "$ROOT"
TGT=${CARGO_TARGET_DIR:-target}
case $TGT in /*) ;; *) TGT=$ROOT/$TGT ;; esac
BT=$TGT/release/bt
BT_TRACKER=$TGT/release/bt-tracker
UTIL=$ROOT/bench/swarm_util.py
U() { python3 "$UTIL" "$@"; }

die() { echo "swarm-vs-aria2: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- checks -----------------------
for knob in REPS N BIG BIG_MIB TIMEOUT; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || die "$knob must be a whole number (got '${!knob}')"
done
[[ $REPS -ge 1 && $N -ge 1 && $TIMEOUT -ge 10 ]] || die "REPS and N must be at least 1, TIMEOUT at least 10"
for s in $SIZES; do [[ $s =~ ^[1-9][0-9]*$ ]] || die "SIZES must be positive whole numbers of MiB (got '$s')"; done
for s in $SYSTEMS; do case $s in ours | aria2) ;; *) die "unknown system '$s' in SYSTEMS (use ours and/or aria2)" ;; esac; done
[[ -n ${SIZES// /} || $BIG == 1 ]] || die "nothing to do: SIZES is empty and BIG is not 1"
if [[ -n $PIECE_KIB ]]; then
  [[ $PIECE_KIB =~ ^[0-9]+$ && $PIECE_KIB -ge 16 && $PIECE_KIB -le 65536 && $((PIECE_KIB & (PIECE_KIB - 1))) -eq 0 ]] ||
    die "PIECE_KIB must be a power of two from 16 to 65536 (got '$PIECE_KIB')"
fi

# ---------------------------------------------------------------- outside: install, build ------
if [[ -z ${SWARM_BENCH_INSIDE:-} ]]; then
  [[ $(id -u) == 0 ]] || die "run as root: the benchmark runs in its own network namespace (unshare --net)"
  need=()
  for t in aria2c:aria2 opentracker:opentracker mktorrent:mktorrent /usr/bin/time:time ip:iproute2 ss:iproute2; do
    command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
  done
  if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need[@]}" >/dev/null ||
      { timeout 300 apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need[@]}" >/dev/null; } ||
      die "apt-get install ${need[*]} failed"
  fi
  for t in unshare timeout python3 cmp head; do command -v "$t" >/dev/null || die "missing $t"; done
  if has ours; then
    if [[ $NO_BUILD != 1 ]]; then
      log "building bt and bt-tracker (release)"
      timeout 3600 cargo build --release -p tracker --bin bt-tracker -p peer --bin bt ||
        die "cargo build --release -p tracker --bin bt-tracker -p peer --bin bt failed"
    fi
    [[ -x $BT && -x $BT_TRACKER ]] || die "missing $BT or $BT_TRACKER (build them, or unset NO_BUILD)"
  fi

  mkdir -p "$ROOT/bench/results"
  STAMP=$(date -u +%Y%m%dT%H%M%SZ)
  RESULTS=$ROOT/bench/results/swarm-vs-aria2-$STAMP.jsonl
  WORK=$(mktemp -d /tmp/swarm-vs-aria2.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  nsizes=$(wc -w <<<"$SIZES")
  nsys=$(wc -w <<<"$SYSTEMS")
  total=$(( (2 * TIMEOUT + 120) * REPS * nsizes * nsys + BIG * (2 * TIMEOUT + 300) + 300 ))
  U record "$RESULTS" meta=true date_utc="$(date -u +%FT%TZ)" commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    dirty="$([[ -n $(git status --porcelain -- peer tracker transport certs paxos 2>/dev/null) ]] && echo true || echo false)" \
    aria2="$(aria2c --version | head -1)" cpus="$(nproc)" n_leechers="$N" reps="$REPS" sizes_mib="[${SIZES// /,}]" \
    piece_kib="${PIECE_KIB:-\"auto\"}" uptime="$(uptime)"
  log "machine: $(nproc) CPUs, $(uptime)"
  rc=0
  timeout --foreground --kill-after=15 "$total" unshare --net --pid --mount-proc --fork --kill-child \
    env SWARM_BENCH_INSIDE=1 WORK="$WORK" RESULTS="$RESULTS" bash "$SCRIPT" || rc=$?
  [[ $rc == 124 ]] && log "the benchmark ran over its overall limit of $total s and was stopped"
  echo
  U table "$RESULTS" | tee "${RESULTS%.jsonl}.md"
  echo
  echo "machine after the runs: $(uptime)"
  echo "raw results: $RESULTS"
  exit "$rc"
fi

# ---------------------------------------------------------------- inside the namespaces --------
ip link set lo up
TPORT=16969      # opentracker
SEED_PORT=16881  # aria2 seeder; leechers use the ports above it
FAILED=0
PIDS=()

# PIDS holds "PID" (stopped with SIGINT, which bt, bt-tracker and aria2c handle) or "PID:SIGNAL".
stop_pids() {
  set +e
  local entry p
  for entry in "${PIDS[@]}"; do
    p=${entry%%:*}
    [[ $entry == *:* ]] && kill -"${entry#*:}" "$p" 2>/dev/null || kill -INT "$p" 2>/dev/null
  done
  for entry in "${PIDS[@]}"; do
    p=${entry%%:*}
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  PIDS=()
  set -e
}
trap stop_pids EXIT

busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }  # user nice system irq softirq steal
load1() { cut -d' ' -f1 /proc/loadavg; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# cpu_s PID: user + system CPU seconds the live process PID has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo null; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [[ $SECONDS -lt $deadline ]] || { echo "timed out after ${secs}s waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

# The piece length `bt seed` picks for a file of $1 bytes: about 2,000 pieces, a power of two
# from 256 KiB to 4 MiB.
auto_piece_kib() {
  local target=$(( $1 / 2048 )) p=1
  [[ $target -ge 1 ]] || target=1
  while [[ $p -lt $target ]]; do p=$((p * 2)); done
  [[ $p -ge $((256 << 10)) ]] || p=$((256 << 10))
  [[ $p -le $((4 << 20)) ]] || p=$((4 << 20))
  echo $((p >> 10))
}

# start_clean: writes back what earlier steps left dirty (the payload just made, the last
# run's files), so that its writeback does not fall into the timed run that follows.
start_clean() {
  sync
}

# wait_leechers DIR N: waits (bounded by TIMEOUT) until DIR holds N files done.l*.
wait_leechers() {
  local dir=$1 n=$2 deadline=$((SECONDS + TIMEOUT))
  while [[ $(find "$dir" -maxdepth 1 -name 'done.l*' | wc -l) -lt $n ]]; do
    [[ $SECONDS -lt $deadline ]] || return 1
    sleep 0.05
  done
}

# compare_copies DIR N PAYLOAD: cmp of each leecher's copy DIR/l$i/<name> with PAYLOAD.
compare_copies() {
  local dir=$1 n=$2 payload=$3 name ok=true
  name=$(basename "$payload")
  for i in $(seq "$n"); do
    if ! cmp -s "$payload" "$dir/l$i/$name"; then
      echo "leecher l$i: copy missing or different from the original" >&2
      ok=false
    fi
  done
  echo $ok
}

# show_failure DIR: the tails of the logs of a failed run.
show_failure() {
  for f in "$1"/*.err "$1"/*.out "$1"/*.log; do
    [[ -s $f ]] || continue
    echo "--- $(basename "$f") (last lines)" >&2
    tail -n 5 "$f" | tr '\r' '\n' | tail -n 5 >&2
  done
}

# record_run SYSTEM SIZE_MIB REP DIR N PIECE_KIB T0 LOAD BUSY0 STATUS EXTRA...: one JSON line.
record_run() {
  local system=$1 size=$2 rep=$3 dir=$4 n=$5 piece=$6 t0=$7 load=$8 busy0=$9 status=${10}
  shift 10
  local busy1 times rcs wall ok=false all_done=true
  busy1=$(busy_ticks)
  times=() rcs=()
  for i in $(seq "$n"); do
    if [[ -f $dir/done.l$i ]]; then
      read -r r t <"$dir/done.l$i"
      rcs+=("$r")
      times+=("$(awk -v a="$t" -v b="$t0" 'BEGIN{printf "%.3f", a - b}')")
      [[ $r == 0 ]] || all_done=false
    else
      rcs+=(null); times+=(null); all_done=false
    fi
  done
  wall=null
  if $all_done; then
    wall=$(printf '%s\n' "${times[@]}" | sort -g | tail -1)
    [[ $status == true ]] && ok=true
  fi
  local elapsed
  elapsed=$(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN{print a - b}')
  U record "$RESULTS" system="$system" size_mib="$size" rep="$rep" n_leechers="$n" piece_kib="$piece" \
    ok="$ok" all_done="$all_done" verified_identical="$status" wall_s="$wall" \
    per_leecher_s="[$(IFS=,; echo "${times[*]}")]" exit_codes="[$(IFS=,; echo "${rcs[*]}")]" \
    machine_busy_pct="$(awk -v t="$((busy1 - busy0))" -v e="$elapsed" 'BEGIN{printf "%.1f", t / e}')" \
    load_before="$load" "$@"
  if [[ $ok == true ]]; then
    log "  $system: $wall s (leechers: ${times[*]})"
  else
    log "  $system: FAILED (exit codes: ${rcs[*]}; copies identical: $status)"
    show_failure "$dir"
    FAILED=1
  fi
}

# ---------------------------------------------------------------- ours -------------------------
# run_ours SIZE_MIB REP PAYLOAD N PIECE_KIB FORCE_PIECE SYSTEM_NAME
run_ours() {
  local size=$1 rep=$2 payload=$3 n=$4 piece=$5 force=$6 name=$7
  local R=$WORK/run-ours
  rm -rf "$R"; mkdir -p "$R"
  "$BT_TRACKER" dev --nodes 3 --dir "$R/tracker" >"$R/tracker.out" 2>"$R/tracker.err" &
  PIDS+=($!)
  if ! wait_for "the tracker cluster to be ready" 60 grep -q '^ready' "$R/tracker.out"; then
    show_failure "$R"; stop_pids; FAILED=1
    U record "$RESULTS" system="$name" size_mib="$size" rep="$rep" ok=false error="tracker cluster not ready"
    return
  fi
  local trackers ca token
  read -r -a trackers <<<"$(sed -n 's/^trackers for `bt create`: //p' "$R/tracker.out")"
  ca=$(sed -n 's/^CA fingerprint: //p' "$R/tracker.out")
  token=$(sed -n 's/^API token of user dev: //p' "$R/tracker.out")

  local seed_pid
  if [[ $force == 1 ]]; then
    # `bt seed` picks its own piece size: make and publish the torrent, then let `bt get`
    # verify the complete file in place and seed it.
    if ! "$BT" create "$payload" -o "$R/payload.torrent" "${trackers[@]}" --ca "$ca" --piece-kib "$piece" >"$R/create.out" 2>"$R/create.err" ||
       ! "$BT" publish "$R/payload.torrent" --token "$token" >"$R/publish.out" 2>"$R/publish.err"; then
      show_failure "$R"; stop_pids; FAILED=1
      U record "$RESULTS" system="$name" size_mib="$size" rep="$rep" ok=false error="bt create/publish failed"
      return
    fi
    "$BT" --state "$R/seed-state" get "$R/payload.torrent" -o "$(dirname "$payload")" --listen 127.0.0.1:0 \
      >"$R/seed.out" 2>"$R/seed.err" &
    seed_pid=$!
    ready() { "$BT" --state "$R/seed-state" status 2>/dev/null | grep -q '100.0%.*Seeding'; }
  else
    "$BT" --state "$R/seed-state" seed "$payload" "${trackers[@]}" --ca "$ca" --token "$token" \
      -o "$R/payload.torrent" --listen 127.0.0.1:0 >"$R/seed.out" 2>"$R/seed.err" &
    seed_pid=$!
    ready() { grep -q '^seeding ' "$R/seed.out"; }
  fi
  PIDS+=("$seed_pid")
  if ! wait_for "the seeder" "$TIMEOUT" ready; then
    show_failure "$R"; stop_pids; FAILED=1
    U record "$RESULTS" system="$name" size_mib="$size" rep="$rep" ok=false error="seeder not ready"
    return
  fi

  local load busy0 t0 seed_cpu0
  start_clean
  load=$(load1); busy0=$(busy_ticks); t0=$EPOCHREALTIME; seed_cpu0=$(cpu_s "$seed_pid")
  for i in $(seq "$n"); do
    mkdir -p "$R/l$i"
    (
      set +e
      /usr/bin/time -f '%M\ncpu %U %S' -o "$R/l$i.rss" timeout -k 5 -s INT "$TIMEOUT" \
        "$BT" --state "$R/l$i.state" get "$R/payload.torrent" -o "$R/l$i" --no-seed --listen 127.0.0.1:0 \
        >"$R/l$i.out" 2>"$R/l$i.err"
      echo "$? $EPOCHREALTIME" >"$R/tmp.done.l$i" && mv "$R/tmp.done.l$i" "$R/done.l$i"
    ) &
  done
  wait_leechers "$R" "$n" || log "  ours: not every leecher finished within ${TIMEOUT}s"
  local seed_hwm seed_cpu1
  seed_hwm=$(hwm_kib "$seed_pid")
  seed_cpu1=$(cpu_s "$seed_pid")
  stop_pids
  wait  # the leechers' subshells
  local rss=() cpu=()
  for i in $(seq "$n"); do
    local v
    v=$(grep -E '^[0-9]+$' "$R/l$i.rss" 2>/dev/null | tail -1 || true)
    rss+=("${v:-null}")
    v=$(awk '/^cpu /{printf "%.2f", $2 + $3}' "$R/l$i.rss" 2>/dev/null || true)
    cpu+=("${v:-null}")
  done
  record_run "$name" "$size" "$rep" "$R" "$n" "$piece" "$t0" "$load" "$busy0" "$(compare_copies "$R" "$n" "$payload")" \
    leecher_peak_rss_kib="[$(IFS=,; echo "${rss[*]}")]" seeder_peak_rss_kib="${seed_hwm:-null}" \
    leecher_cpu_s="[$(IFS=,; echo "${cpu[*]}")]" seeder_cpu_s="$(awk -v a="$seed_cpu1" -v b="$seed_cpu0" 'BEGIN{printf "%.2f", a - b}')"
  rm -rf "$R"
}

# ---------------------------------------------------------------- aria2 ------------------------
ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
  --disable-ipv6=true --max-overall-upload-limit=0 --max-upload-limit=0
  --max-overall-download-limit=0 --max-download-limit=0 --bt-max-peers=0
  --bt-request-peer-speed-limit=1000M --bt-tracker-interval=5 --seed-ratio=0.0
  --file-allocation=falloc --auto-file-renaming=false --allow-overwrite=true
  --summary-interval=0 --console-log-level=warn --stop="$TIMEOUT")

# run_aria2 SIZE_MIB REP PAYLOAD N TORRENT PIECE_KIB
run_aria2() {
  local size=$1 rep=$2 payload=$3 n=$4 torrent=$5 piece=$6
  local R=$WORK/run-aria2
  rm -rf "$R"; mkdir -p "$R/tracker"
  U infohash "$torrent" >"$R/tracker/whitelist"  # Debian's opentracker only serves whitelisted torrents
  chmod 755 "$R" "$R/tracker"; chmod 644 "$R/tracker/whitelist"
  (cd "$R/tracker" && exec opentracker -i 127.0.0.1 -p "$TPORT" -P "$TPORT" -d "$R/tracker" -w whitelist >"$R/tracker.log" 2>&1) &
  PIDS+=("$!:TERM")
  wait_for "opentracker" 30 bash -c "ss -ltnH | grep -q '127.0.0.1:$TPORT '" || true
  aria2c "${ARIA_COMMON[@]}" --dir="$(dirname "$payload")" --listen-port="$SEED_PORT" --bt-seed-unverified=true \
    --log="$R/seed.log" --log-level=notice "$torrent" >"$R/seed.out" 2>&1 &
  PIDS+=($!)
  seeded() { [[ $(U scrape "http://127.0.0.1:$TPORT" "$torrent" 2>/dev/null | cut -d' ' -f1) == 1 ]]; }
  if ! wait_for "the aria2 seeder to register" 60 seeded; then
    show_failure "$R"; stop_pids; FAILED=1
    U record "$RESULTS" system=aria2 size_mib="$size" rep="$rep" ok=false error="seeder never registered"
    return
  fi
  local load busy0 t0 lpids=() seed_cpu0
  start_clean
  load=$(load1); busy0=$(busy_ticks); t0=$EPOCHREALTIME; seed_cpu0=$(cpu_s "${PIDS[1]}")
  for i in $(seq "$n"); do
    mkdir -p "$R/l$i"
    printf '#!/bin/sh\necho "0 $(date +%%s.%%N)" > %s/done.l%s\n' "$R" "$i" >"$R/hook$i.sh"
    chmod +x "$R/hook$i.sh"
    aria2c "${ARIA_COMMON[@]}" --dir="$R/l$i" --listen-port=$((SEED_PORT + i)) \
      --on-bt-download-complete="$R/hook$i.sh" --log="$R/l$i.log" --log-level=notice "$torrent" >"$R/l$i.out" 2>&1 &
    PIDS+=($!); lpids+=($!)
  done
  wait_leechers "$R" "$n" || log "  aria2: not every leecher finished within ${TIMEOUT}s"
  local rss=() cpu=()
  for p in "${lpids[@]}"; do rss+=("$(hwm_kib "$p")"); cpu+=("$(cpu_s "$p")"); done
  local seed_hwm seed_cpu1
  seed_hwm=$(hwm_kib "${PIDS[1]}")
  seed_cpu1=$(cpu_s "${PIDS[1]}")
  stop_pids
  record_run aria2 "$size" "$rep" "$R" "$n" "$piece" "$t0" "$load" "$busy0" "$(compare_copies "$R" "$n" "$payload")" \
    leecher_peak_rss_kib="[$(IFS=,; echo "${rss[*]}")]" seeder_peak_rss_kib="${seed_hwm:-null}" \
    leecher_cpu_s="[$(IFS=,; echo "${cpu[*]}")]" seeder_cpu_s="$(awk -v a="$seed_cpu1" -v b="$seed_cpu0" 'BEGIN{printf "%.2f", a - b}')"
  rm -rf "$R"
}

# ---------------------------------------------------------------- main loop --------------------
make_payload() {  # make_payload SIZE_MIB -> path
  local dir=$WORK/data-$1
  mkdir -p "$dir"
  head -c $(($1 * 1048576)) /dev/urandom >"$dir/payload.bin"
  chmod 755 "$WORK" "$dir"; chmod 644 "$dir/payload.bin"
  echo "$dir/payload.bin"
}

for size in $SIZES; do
  log "== $N leechers x $size MiB"
  payload=$(make_payload "$size")
  if [[ -n $PIECE_KIB ]]; then piece=$PIECE_KIB force=1; else piece=$(auto_piece_kib $((size * 1048576))) force=0; fi
  torrent=$WORK/data-$size.torrent
  if has aria2; then
    log=0; while [[ $((1 << log)) -lt $((piece * 1024)) ]]; do log=$((log + 1)); done
    mktorrent -l "$log" -a "http://127.0.0.1:$TPORT/announce" -o "$torrent" "$payload" >/dev/null
  fi
  log "piece size $piece KiB for both systems"
  for rep in $(seq "$REPS"); do
    log "rep $rep/$REPS"
    order="ours aria2"; [[ $((rep % 2)) == 0 ]] && order="aria2 ours"
    for sys in $order; do
      has "$sys" || continue
      case $sys in
        ours) run_ours "$size" "$rep" "$payload" "$N" "$piece" "$force" ours ;;
        aria2) run_aria2 "$size" "$rep" "$payload" "$N" "$torrent" "$piece" ;;
      esac
    done
  done
  rm -rf "$WORK/data-$size" "$torrent"
done

if [[ $BIG == 1 ]]; then
  log "== big file: 1 leecher x $BIG_MIB MiB (ours)"
  payload=$(make_payload "$BIG_MIB")
  if [[ -n $PIECE_KIB ]]; then piece=$PIECE_KIB force=1; else piece=$(auto_piece_kib $((BIG_MIB * 1048576))) force=0; fi
  run_ours "$BIG_MIB" 1 "$payload" 1 "$piece" "$force" ours-big
  rm -rf "$WORK/data-$BIG_MIB"
fi

exit "$FAILED"
