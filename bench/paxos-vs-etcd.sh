#!/usr/bin/env bash
# paxos-vs-etcd.sh: side-by-side write benchmark of ByteTorrent's 3-node Paxos key-value
# cluster ("ours": target/release/kv-server + kv-load) and a 3-member etcd 3.4 cluster
# (Debian's etcd-server, driven by bench/etcdload), all on one machine.
#
# Run from the repository root, as root (network namespaces need it):
#     bench/paxos-vs-etcd.sh
#     SYSTEMS=etcd CLIENTS="1 64" DURATION=3 FAILOVER_REPS=2 bench/paxos-vs-etcd.sh
#
# What it does:
#   1. Outside isolation: installs missing tools (apt-get: etcd-server etcd-client
#      protobuf-compiler iproute2), builds bench/etcdload (release, its own target dir) and
#      our binaries (cargo build --release -p tests --bins).
#   2. Re-executes itself inside a private network namespace (unshare --net) that holds only
#      `lo`, so no benchmark traffic can leave 127.0.0.0/8.
#   3. For each client count and rep, each system in turn (so a slow spell of the VM hits
#      both): starts a FRESH 3-node cluster (empty data dirs, default timing settings, fsync
#      on), waits until it is healthy and has a leader (bounded), runs a closed-loop put load
#      (C clients, 8-byte keys from 100,000, VAL_SIZE-byte values, WARMUP s warm-up then
#      DURATION s measured), tears it down. etcd's load goes to the leader; ours goes to all
#      3 servers (kv-load finds the leader itself).
#   4. Failover, FAILOVER_REPS times per system (taking turns), each on a fresh cluster:
#      finds the leader's PID; the load tool SIGKILLs it and times kill -> first acknowledged
#      put issued after the kill, probing both survivors every 5 ms.
#   Measure on an otherwise idle machine: both clusters and the load tool share its cores.
#   5. Appends every JSON line the tools print to bench/results/paxos-vs-etcd-<UTC stamp>.jsonl
#      and prints a summary table (medians over reps; with REPS > 1 also each rep's ratio,
#      ours against the etcd run that followed it) with PASS/FAIL for the goals:
#        - ours >= 5x etcd writes/s at 64 clients, with p99 <= etcd's p99;
#        - ours failover (median) <= 1/3 of etcd's.
# Every step has a timeout; servers are stopped by PID (TERM, then KILL); cluster data lives
# in a mktemp dir under /tmp that is deleted on exit. Exit status is non-zero if any run
# failed (a failed goal is a result, not an error).
#
# Knobs (environment):
#   SYSTEMS        systems to measure, "ours etcd" (default), "ours" or "etcd"
#   CLIENTS        client counts, default "1 16 64 256"
#   DURATION       measured seconds per load run, default 10
#   WARMUP         warm-up seconds per load run, default 1
#   VAL_SIZE       value size in bytes, default 100
#   REPS           load runs per client count (fresh cluster each), default 1
#   FAILOVER_REPS  leader kills (fresh cluster each), default 5
#   TOTAL_TIMEOUT  hard limit in seconds for the isolated part, default computed from the above
set -euo pipefail

SYSTEMS=${SYSTEMS:-"ours etcd"}
CLIENTS=${CLIENTS:-"1 16 64 256"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
VAL_SIZE=${VAL_SIZE:-100}
REPS=${REPS:-1}
FAILOVER_REPS=${FAILOVER_REPS:-5}
PROBE_MS=5
MAX_S=30

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SCRIPT")/.." && pwd)
cd "$ROOT"

ETCDLOAD_DIR=$ROOT/bench/etcdload
ETCDLOAD=$ETCDLOAD_DIR/target/release/etcdload
TGT=${CARGO_TARGET_DIR:-target}
case $TGT in /*) ;; *) TGT=$ROOT/$TGT ;; esac
KV_SERVER=$TGT/release/kv-server
KV_LOAD=$TGT/release/kv-load

die() { echo "paxos-vs-etcd: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- checks -----------------------
for knob in DURATION WARMUP VAL_SIZE REPS FAILOVER_REPS; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || die "$knob must be a whole number (got '${!knob}')"
done
[[ $DURATION -ge 1 ]] || die "DURATION must be at least 1"
for c in $CLIENTS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CLIENTS must be positive whole numbers (got '$c')"; done
[[ -n ${CLIENTS// /} ]] || die "CLIENTS is empty"
for s in $SYSTEMS; do case $s in ours | etcd) ;; *) die "unknown system '$s' in SYSTEMS (use ours and/or etcd)" ;; esac; done
has ours || has etcd || die "SYSTEMS selects nothing"

# ---------------------------------------------------------------- outside: install, build ------
if [[ -z ${PVE_IN_NETNS:-} ]]; then
  [[ $EUID -eq 0 ]] || die "run as root: the benchmark needs 'unshare --net'"
  need=(ip unshare timeout python3 cargo)
  has etcd && need+=(etcd etcdctl protoc)
  missing=()
  for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "missing: ${missing[*]}; installing with apt-get"
    timeout 600 apt-get update
    timeout 1200 apt-get install -y etcd-server etcd-client protobuf-compiler iproute2
  fi
  for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || die "still missing after install: $t"; done

  if has etcd; then
    log "building bench/etcdload (release)"
    timeout 1800 cargo build --release --quiet --manifest-path "$ETCDLOAD_DIR/Cargo.toml" \
      --target-dir "$ETCDLOAD_DIR/target" || die "building bench/etcdload failed"
    [[ -x $ETCDLOAD ]] || die "no $ETCDLOAD after the build"
  fi
  if has ours; then
    log "building our binaries (cargo build --release -p tests --bins)"
    timeout 1800 cargo build --release --quiet -p tests --bins ||
      die "building our binaries failed (SYSTEMS=etcd measures etcd alone)"
    [[ -x $KV_SERVER && -x $KV_LOAD ]] || die "expected $KV_SERVER and $KV_LOAD after the build"
  fi

  if [[ -z ${TOTAL_TIMEOUT:-} ]]; then
    nc=$(wc -w <<<"$CLIENTS")
    nsys=$(wc -w <<<"$SYSTEMS")
    TOTAL_TIMEOUT=$((nsys * (nc * REPS * (WARMUP + DURATION + 120) + FAILOVER_REPS * (MAX_S + 150)) + 120))
  fi
  [[ $TOTAL_TIMEOUT =~ ^[0-9]+$ ]] || die "TOTAL_TIMEOUT must be a whole number of seconds"
  log "entering a private network namespace (only lo); hard limit ${TOTAL_TIMEOUT}s"
  exec timeout --kill-after=30 "$TOTAL_TIMEOUT" unshare --net env PVE_IN_NETNS=1 bash "$SCRIPT"
fi

# ---------------------------------------------------------------- inside the namespace --------
ip link set lo up
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[[ $links == "lo " ]] || die "network namespace is not private (links: $links)"

WORK=$(mktemp -d /tmp/paxos-vs-etcd.XXXXXX)
ETCD_PIDS=()
OURS_PIDS=()
FAILED=0
CHILD=""
LAST_WALL=0

# The servers are started in the background and disowned; bash still reaps them when they
# exit, so `kill -0` tells whether one is still running.
stop_pids() { # PID... : SIGTERM, wait up to 5 s for each to exit, then SIGKILL
  local p _
  for p in "$@"; do
    if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for p in "$@"; do
    [[ -n $p ]] || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
cleanup() {
  set +e
  if [[ -n $CHILD ]]; then stop_pids "$CHILD"; fi
  stop_pids "${ETCD_PIDS[@]}" "${OURS_PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

mkdir -p "$ROOT/bench/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/results/paxos-vs-etcd-$STAMP.jsonl
: >"$OUT"

record() { printf '%s\n' "$1" >>"$OUT"; }
# Last line of file $1 that is a JSON object whose field $2 is present and not null, or nothing.
json_line() {
  python3 - "$1" "$2" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in reversed(lines):
    line = line.strip()
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if isinstance(d, dict) and d.get(sys.argv[2]) is not None:
        print(line)
        break
PY
}
# Runs `timeout SECONDS CMD...` in the background with stdout to $2 and stderr to $3, and
# waits for it. A background job + `wait` lets the TERM trap (hard time limit) act at once
# instead of after the command; the cleanup then stops the job too.
bounded() { # seconds stdout-file stderr-file cmd...
  local t=$1 o=$2 e=$3 rc=0 t0=$SECONDS
  shift 3
  timeout --kill-after=5 "$t" "$@" >"$o" 2>"$e" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  LAST_WALL=$((SECONDS - t0))
  if [[ $rc -ne 0 ]]; then log "$(basename "$1") $2 exited with status $rc after ${LAST_WALL}s"; fi
  return "$rc"
}
# A put run should take about WARMUP + DURATION seconds plus connection set-up; much more
# means some request stalled past the measured window (worth a look at the server logs).
check_wall() { # tool
  if [[ $LAST_WALL -gt $((WARMUP + DURATION + 5)) ]]; then
    log "warning: $1 put took ${LAST_WALL}s for a ${WARMUP}+${DURATION}s run (a request stalled?)"
  fi
}
record_error() { # system step clients rep message
  FAILED=$((FAILED + 1))
  log "FAILED: $1 $2 (clients=$3 rep=$4): $5"
  record "$(python3 -c 'import json,sys; print(json.dumps({"system":sys.argv[1],"step":sys.argv[2],"clients":int(sys.argv[3]) if sys.argv[3].isdigit() else None,"rep":int(sys.argv[4]),"error":sys.argv[5]}))' "$@")"
}
show_logs() { # dir: print the tail of every log in it, for a failed run
  local f
  for f in "$1"/*.log; do
    [[ -f $f ]] || continue
    echo "---- tail of $(basename "$f")" >&2
    tail -n 15 "$f" >&2 || true
  done
}

record "$(python3 - "$SYSTEMS" "$CLIENTS" "$DURATION" "$WARMUP" "$VAL_SIZE" "$REPS" "$FAILOVER_REPS" \
  "$(if has etcd; then etcd --version | head -n 1; fi)" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)" \
  "$(nproc)" <<'PY'
import datetime, json, sys
a = sys.argv[1:]
print(json.dumps({"meta": True, "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "systems": a[0].split(), "clients": [int(c) for c in a[1].split()], "duration_s": int(a[2]),
                  "warmup_s": int(a[3]), "val_size": int(a[4]), "reps": int(a[5]), "failover_reps": int(a[6]),
                  "etcd": a[7], "git_head": a[8], "cpus": int(a[9])}))
PY
)"
log "results: $OUT ; scratch: $WORK"

# ---------------------------------------------------------------- etcd --------------------------
export ETCDCTL_API=3
ETCD_CPORT=(23791 23792 23793)
ETCD_PPORT=(23801 23802 23803)
ETCD_EP=()
for i in 0 1 2; do ETCD_EP+=("http://127.0.0.1:${ETCD_CPORT[$i]}"); done
ETCD_ALL=$(IFS=,; echo "${ETCD_EP[*]}")
ETCD_CLUSTER=""
for i in 0 1 2; do ETCD_CLUSTER+="n$((i + 1))=http://127.0.0.1:${ETCD_PPORT[$i]},"; done
ETCD_CLUSTER=${ETCD_CLUSTER%,}
ETCD_RUN=0

etcd_stop() {
  stop_pids "${ETCD_PIDS[@]}"
  ETCD_PIDS=()
}

# Index (0..2) of the leader every member agrees on; fails if there is none (yet).
etcd_leader_index() {
  local st
  st=$(timeout 10 etcdctl --endpoints="$ETCD_ALL" --dial-timeout=1s --command-timeout=2s \
    endpoint status -w json 2>/dev/null) || return 1
  python3 - "$ETCD_ALL" "$st" <<'PY'
import json, sys
eps = sys.argv[1].split(",")
st = json.loads(sys.argv[2])
if len(st) != len(eps):
    sys.exit(1)
leaders = {s["Status"]["leader"] for s in st}
if len(leaders) != 1 or 0 in leaders:
    sys.exit(1)
lid = leaders.pop()
for s in st:
    if s["Status"]["header"]["member_id"] == lid:
        print(eps.index(s["Endpoint"]))
        sys.exit(0)
sys.exit(1)
PY
}

# Fresh 3-member cluster with empty data dirs; returns once all 3 are healthy and agree on a
# leader (30 s bound). Members run with etcd's defaults (heartbeat 100 ms, election 1000 ms,
# fsync on).
etcd_fresh() {
  local i d deadline
  etcd_stop
  ETCD_RUN=$((ETCD_RUN + 1))
  d=$WORK/etcd
  rm -rf "$d"
  mkdir -p "$d"
  sync
  for i in 0 1 2; do
    etcd --name "n$((i + 1))" --data-dir "$d/n$((i + 1))" --logger zap \
      --listen-client-urls "${ETCD_EP[$i]}" --advertise-client-urls "${ETCD_EP[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ETCD_PPORT[$i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PPORT[$i]}" \
      --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
      --initial-cluster-token "pve-$$-$ETCD_RUN" \
      >"$d/n$((i + 1)).log" 2>&1 &
    ETCD_PIDS+=("$!")
    disown "$!" # no "Killed" job notice when the failover probe SIGKILLs it
  done
  deadline=$((SECONDS + 30))
  until timeout 5 etcdctl --endpoints="$ETCD_ALL" --dial-timeout=1s --command-timeout=2s \
    endpoint health >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || { log "etcd cluster not healthy within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
  until etcd_leader_index >/dev/null; do
    [[ $SECONDS -lt $deadline ]] || { log "etcd members did not agree on a leader within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
}

etcd_put_run() { # clients rep
  local c=$1 rep=$2 l line
  etcd_fresh || { record_error etcd put "$c" "$rep" "cluster did not start"; etcd_stop; return 0; }
  l=$(etcd_leader_index) || { record_error etcd put "$c" "$rep" "no leader"; etcd_stop; return 0; }
  log "etcd put: clients=$c rep=$rep leader=n$((l + 1))"
  bounded $((WARMUP + DURATION + 30)) "$WORK/etcdload.out" "$WORK/etcdload.log" \
    "$ETCDLOAD" put --endpoints "${ETCD_EP[$l]}" \
    --clients "$c" --duration "$DURATION" --warmup "$WARMUP" --val-size "$VAL_SIZE" || true
  check_wall etcdload
  line=$(json_line "$WORK/etcdload.out" writes_per_s)
  if [[ -n $line ]]; then
    record "$line"
    echo "$line"
  else
    cat "$WORK/etcdload.log" >&2 || true
    record_error etcd put "$c" "$rep" "etcdload put printed no result: $(tail -c 300 "$WORK/etcdload.out")"
  fi
  etcd_stop
}

etcd_failover_run() { # rep
  local rep=$1 l i surv=() line
  etcd_fresh || { record_error etcd failover - "$rep" "cluster did not start"; etcd_stop; return 0; }
  sleep 1 # let followers settle after the first election
  l=$(etcd_leader_index) || { record_error etcd failover - "$rep" "no leader"; etcd_stop; return 0; }
  for i in 0 1 2; do
    if [[ $i -ne $l ]]; then surv+=("${ETCD_EP[$i]}"); fi
  done
  log "etcd failover: rep=$rep kill -9 leader n$((l + 1)) (pid ${ETCD_PIDS[$l]})"
  bounded $((MAX_S + 30)) "$WORK/etcdload.out" "$WORK/etcdload.log" \
    "$ETCDLOAD" failover --endpoints "$(IFS=,; echo "${surv[*]}")" \
    --kill-pid "${ETCD_PIDS[$l]}" --probe-ms "$PROBE_MS" --max-s "$MAX_S" || true
  line=$(json_line "$WORK/etcdload.out" failover_ms)
  if [[ -n $line ]]; then
    record "$line"
    echo "$line"
  else
    cat "$WORK/etcdload.log" >&2 || true
    record_error etcd failover - "$rep" "etcdload failover printed no time: $(tail -c 300 "$WORK/etcdload.out")"
  fi
  etcd_stop
}

# ---------------------------------------------------------------- ours --------------------------
OURS_PPORT=(24001 24002 24003) # Paxos (UDP)
OURS_CPORT=(24101 24102 24103) # clients (UDP)
OURS_PEERS=""
OURS_SRV=()
for i in 0 1 2; do
  OURS_PEERS+="$((i + 1))=127.0.0.1:${OURS_PPORT[$i]},"
  OURS_SRV+=("127.0.0.1:${OURS_CPORT[$i]}")
done
OURS_PEERS=${OURS_PEERS%,}
OURS_ALL=$(IFS=,; echo "${OURS_SRV[*]}")
CERTS=$WORK/certs

ours_stop() {
  stop_pids "${OURS_PIDS[@]}"
  OURS_PIDS=()
}

# Node id (1..3) currently leading, per `kv-load leader`; fails if there is none (yet).
ours_leader_id() {
  local out
  out=$(timeout 15 "$KV_LOAD" leader --servers "$OURS_ALL" --ca "$CERTS/ca.crt" 2>>"$WORK/ours/leader.log") || return 1
  python3 - "$out" <<'PY'
import json, sys
for line in reversed(sys.argv[1].splitlines()):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if isinstance(d, dict) and d.get("leader") in (1, 2, 3):
        print(d["leader"])
        sys.exit(0)
sys.exit(1)
PY
}

# Fresh 3-node cluster with empty data dirs (fsync on, the default); returns once every node
# printed `ready` and the cluster reports a leader (30 s bound).
ours_fresh() {
  local i d deadline
  ours_stop
  d=$WORK/ours
  rm -rf "$d"
  mkdir -p "$d"
  sync
  if [[ ! -f $CERTS/ca.crt ]]; then
    timeout 60 "$KV_SERVER" certs --dir "$CERTS" --nodes 3 >"$WORK/certs.log" 2>&1 ||
      { cat "$WORK/certs.log" >&2; log "kv-server certs failed"; return 1; }
  fi
  for i in 1 2 3; do
    "$KV_SERVER" run --id "$i" --certs "$CERTS" --data "$d/n$i" --peers "$OURS_PEERS" \
      --listen "${OURS_SRV[$((i - 1))]}" >"$d/n$i.out" 2>"$d/n$i.log" &
    OURS_PIDS+=("$!")
    disown "$!" # no "Killed" job notice when the failover probe SIGKILLs it
  done
  deadline=$((SECONDS + 30))
  for i in 1 2 3; do
    until grep -q '^ready' "$d/n$i.out" 2>/dev/null; do
      kill -0 "${OURS_PIDS[$((i - 1))]}" 2>/dev/null || { log "kv-server $i exited before ready"; show_logs "$d"; return 1; }
      [[ $SECONDS -lt $deadline ]] || { log "kv-server $i not ready within 30 s"; show_logs "$d"; return 1; }
      sleep 0.1
    done
  done
  until ours_leader_id >/dev/null; do
    [[ $SECONDS -lt $deadline ]] || { log "no leader reported within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
}

ours_put_run() { # clients rep
  local c=$1 rep=$2 line
  ours_fresh || { record_error ours put "$c" "$rep" "cluster did not start"; ours_stop; return 0; }
  log "ours put: clients=$c rep=$rep"
  bounded $((WARMUP + DURATION + 30)) "$WORK/kv-load.out" "$WORK/kv-load.log" \
    "$KV_LOAD" put --servers "$OURS_ALL" \
    --ca "$CERTS/ca.crt" --clients "$c" --duration "$DURATION" --warmup "$WARMUP" --val-size "$VAL_SIZE" || true
  check_wall kv-load
  line=$(json_line "$WORK/kv-load.out" writes_per_s)
  if [[ -n $line ]]; then
    record "$line"
    echo "$line"
  else
    tail -n 30 "$WORK/kv-load.log" >&2 || true
    show_logs "$WORK/ours"
    record_error ours put "$c" "$rep" "kv-load put printed no result: $(tail -c 300 "$WORK/kv-load.out")"
  fi
  ours_stop
}

ours_failover_run() { # rep
  local rep=$1 l i surv=() line
  ours_fresh || { record_error ours failover - "$rep" "cluster did not start"; ours_stop; return 0; }
  sleep 1 # let followers settle after the first election
  l=$(ours_leader_id) || { record_error ours failover - "$rep" "no leader"; ours_stop; return 0; }
  for i in 1 2 3; do
    if [[ $i -ne $l ]]; then surv+=("${OURS_SRV[$((i - 1))]}"); fi
  done
  log "ours failover: rep=$rep kill -9 leader $l (pid ${OURS_PIDS[$((l - 1))]})"
  bounded $((MAX_S + 30)) "$WORK/kv-load.out" "$WORK/kv-load.log" \
    "$KV_LOAD" failover --servers "$(IFS=,; echo "${surv[*]}")" \
    --ca "$CERTS/ca.crt" --kill-pid "${OURS_PIDS[$((l - 1))]}" --probe-ms "$PROBE_MS" --max-s "$MAX_S" || true
  line=$(json_line "$WORK/kv-load.out" failover_ms)
  if [[ -n $line ]]; then
    record "$line"
    echo "$line"
  else
    tail -n 30 "$WORK/kv-load.log" >&2 || true
    show_logs "$WORK/ours"
    record_error ours failover - "$rep" "kv-load failover printed no time: $(tail -c 300 "$WORK/kv-load.out")"
  fi
  ours_stop
}

# ---------------------------------------------------------------- run ---------------------------
# The systems take turns run by run, so that a slow spell of the VM (or other work on the
# machine) hits both rather than whichever happened to be measured then.
for c in $CLIENTS; do
  for rep in $(seq "$REPS"); do
    for sys in $SYSTEMS; do
      "${sys}_put_run" "$c" "$rep"
    done
  done
done
for rep in $(seq "$FAILOVER_REPS"); do
  for sys in $SYSTEMS; do
    "${sys}_failover_run" "$rep"
  done
done

# ---------------------------------------------------------------- summary -----------------------
python3 - "$OUT" "$SYSTEMS" "$CLIENTS" <<'PY' | tee "${OUT%.jsonl}.txt"
import json, statistics, sys

path, systems, clients = sys.argv[1], sys.argv[2].split(), [int(c) for c in sys.argv[3].split()]
put, fo, errors = {}, {}, []
for line in open(path):
    if not line.strip():
        continue
    d = json.loads(line)
    if d.get("meta"):
        continue
    if "error" in d:
        errors.append(d)
    elif "writes_per_s" in d:
        put.setdefault((d["system"], d["clients"]), []).append(d)
    elif d.get("failover_ms") is not None:
        fo.setdefault(d["system"], []).append(float(d["failover_ms"]))

def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None

def fmt(v, digits=2):
    if v is None:
        return "-"
    return f"{v:,.0f}" if digits == 0 else f"{v:.{digits}f}"

both = "ours" in systems and "etcd" in systems
order = [s for s in ("ours", "etcd") if s in systems]
print()
print(f"results: {path}")
print("put load (median over reps); latency in ms")
head = ["clients"]
for s in order:
    head += [f"{s} writes/s", f"{s} p50", f"{s} p99"]
if both:
    head.append("ours/etcd writes/s")
rows = []
for c in clients:
    row = [str(c)]
    for s in order:
        r = put.get((s, c), [])
        row += [fmt(med(r, "writes_per_s"), 0), fmt(med(r, "p50_ms")), fmt(med(r, "p99_ms"))]
    if both:
        o, e = med(put.get(("ours", c), []), "writes_per_s"), med(put.get(("etcd", c), []), "writes_per_s")
        row.append(f"{o / e:.2f}x" if o is not None and e else "-")
    rows.append(row)
widths = [max(len(x) for x in col) for col in zip(head, *rows)]
for row in [head, ["-" * w for w in widths]] + rows:
    print("  ".join(x.rjust(w) for x, w in zip(row, widths)))
if both:
    # Rep i of ours ran right before rep i of etcd, so their ratio compares the two under
    # the same spell of the machine: the spread shows how much of a median is noise.
    paired = []
    for c in clients:
        o, e = put.get(("ours", c), []), put.get(("etcd", c), [])
        ratios = [a["writes_per_s"] / b["writes_per_s"] for a, b in zip(o, e) if b["writes_per_s"]]
        if len(ratios) > 1:
            paired.append(f"{c}: " + " ".join(f"{r:.2f}x" for r in ratios))
    if paired:
        print("ours/etcd writes/s rep by rep (each pair run back to back): " + "; ".join(paired))
errs_in_runs = {s: sum(r.get("errors", 0) or 0 for (sy, _), rs in put.items() if sy == s for r in rs) for s in order}
print("put errors reported by the load tools: " + ", ".join(f"{s} {errs_in_runs[s]}" for s in order))

print()
print("leader failover: kill -9 leader -> first acknowledged put, ms")
fmed = {}
for s in order:
    v = fo.get(s, [])
    if v:
        fmed[s] = statistics.median(v)
        print(f"  {s}: median {fmed[s]:.1f}  min {min(v):.1f}  max {max(v):.1f}  (n={len(v)})")
    else:
        print(f"  {s}: no successful run")
if both and "ours" in fmed and "etcd" in fmed and fmed["etcd"] > 0:
    print(f"  ours/etcd (medians): {fmed['ours'] / fmed['etcd']:.3f}")

print()
if both:
    o, e = put.get(("ours", 64), []), put.get(("etcd", 64), [])
    if o and e:
        ow, ew, op, ep = med(o, "writes_per_s"), med(e, "writes_per_s"), med(o, "p99_ms"), med(e, "p99_ms")
        ok = ow >= 5 * ew and op is not None and ep is not None and op <= ep
        print(f"{'PASS' if ok else 'FAIL'}: ours >= 5x etcd writes/s at 64 clients with p99 <= etcd's "
              f"(ours {ow:,.0f}/s p99 {fmt(op)} ms; etcd {ew:,.0f}/s p99 {fmt(ep)} ms; {ow / ew if ew else float('inf'):.2f}x)")
    else:
        print("SKIP: ours >= 5x etcd writes/s at 64 clients with p99 <= etcd's (64 clients not measured for both)")
    if "ours" in fmed and "etcd" in fmed:
        ok = fmed["ours"] <= fmed["etcd"] / 3
        print(f"{'PASS' if ok else 'FAIL'}: ours failover <= 1/3 of etcd's "
              f"(medians: ours {fmed['ours']:.1f} ms, etcd {fmed['etcd']:.1f} ms)")
    else:
        print("SKIP: ours failover <= 1/3 of etcd's (no failover figure for both)")
else:
    print(f"goals not evaluated: only {order[0]} was measured")
if errors:
    print()
    print(f"{len(errors)} run(s) failed:")
    for d in errors:
        where = f" clients={d['clients']}" if d.get("clients") is not None else ""
        print(f"  {d.get('system')} {d.get('step')}{where} rep={d.get('rep')}: {d.get('error')}")
PY

if [[ $FAILED -gt 0 ]]; then
  log "$FAILED run(s) failed; see above"
  exit 1
fi
