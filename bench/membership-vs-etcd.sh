#!/usr/bin/env bash
# membership-vs-etcd.sh: "replace one node of a 3-node cluster under load". A closed-loop put
# load runs against a fresh 3-node cluster; partway through, one node that is not the leader
# is SIGKILLed (a dead disk) and replaced by a new node, the way an operator would, while the
# load keeps going. Reports how far and for how long write throughput dropped, and the longest
# stretch in which no write was acknowledged. Two systems: ours (the replicated key-value
# example, kv-server, driven by `kv-load timeline`) and etcd 3.4 (Debian's etcd-server, driven
# by `bench/etcdload timeline`), the same load and analysis for both.
#
# Run from the repository root, as root (network namespaces need it):
#     bench/membership-vs-etcd.sh
#     DURATION=30 REPLACE_AT=10 REPS=3 bench/membership-vs-etcd.sh
#
# What it does:
#   1. Outside isolation: installs missing tools (apt-get: etcd-server etcd-client
#      protobuf-compiler iproute2), builds bench/etcdload (release, its own target dir) and
#      our kv-server and kv-load (cargo build --release -p tests --bins).
#   2. Re-executes itself inside a private network namespace (unshare --net) that holds only
#      `lo`, so no benchmark traffic can leave 127.0.0.0/8.
#   3. Per system and rep: starts a FRESH 3-node cluster (empty data dirs, default settings,
#      fsync on), starts the timeline load (CLIENTS clients, 8-byte keys from 100,000,
#      VAL_SIZE-byte values, DURATION s, spread over every node in the endpoints file), and
#      REPLACE_AT s later replaces the highest-numbered node that is not the leader. Each step
#      appends a mark "<unix ms> <step> <detail>" to a marks file that the load tool reports
#      back as events; the endpoints file (one client URL per line, re-read by the load tool
#      every 200 ms) is rewritten whenever the membership changes.
#      etcd's replacement, the procedure of etcd's runtime-reconfiguration guide:
#        kill     SIGKILL n3 (say); it stays in the endpoints file, as it would in a client's
#                 configuration, so clients on it must notice and move on
#        remove   etcdctl member remove n3; n3 leaves the endpoints file
#        add      etcdctl member add n4 (new name, new ports, empty data dir)
#        start    etcd n4 --initial-cluster-state existing
#        healthy  etcdctl endpoint health on n4 succeeds (a linearizable read: n4 caught up);
#                 n4 joins the endpoints file
#        done     replacement complete
#      The dead node is removed BEFORE the new one is added because etcd 3.4 with default
#      settings (--strict-reconfig-check) refuses `member add` while any voting member is
#      unreachable ("etcdserver: unhealthy cluster"), learners included.
#   4. Analyses the load tool's JSON line with bench/membership_analysis.py (system-
#      independent), appends every JSON line to bench/results/membership-vs-etcd-<UTC
#      stamp>.jsonl, and prints a summary table (per run: baseline = median acks per 100 ms
#      bucket before the kill, after the first second; drop total = time in buckets after the
#      kill below 90 % of baseline; drop span = first to last such bucket; worst bucket;
#      longest write gap; replacement time kill -> done) with PASS/FAIL for the goals:
#        - throughput drop <= 10 % outside one window of <= 2 s (drop span <= 2000 ms);
#        - longest write gap <= 500 ms.
#      100 ms buckets are noisy on a busy machine: the "pre-kill<90%" column shows how often
#      the steady state alone already dips below the 90 % line.
# Every step has a timeout; servers are stopped by PID (TERM, then KILL); cluster data lives
# in a mktemp dir under /tmp that is deleted on exit. Exit status is non-zero if any run
# failed (a failed goal is a result, not an error).
#
# Knobs (environment):
#   SYSTEMS        systems to measure, default "ours etcd"
#   CLIENTS        closed-loop clients, default 64
#   DURATION       seconds the load runs, default 20
#   REPLACE_AT     seconds into the load when the node is killed, default 8
#   VAL_SIZE       value size in bytes, default 100
#   REPS           runs per system (fresh cluster each), default 1
#   CONTROL        1 = control run: same load and analysis, but at REPLACE_AT only the "kill"
#                  and "done" marks are written and no node is touched; shows how much of a
#                  "drop" is the machine's noise or the cluster slowing down as it fills up
#   TOTAL_TIMEOUT  hard limit in seconds for the isolated part, default computed from the above
#
# Adding a system: define, for system NAME, the functions below (the etcd_* ones are the
# example) and allow NAME in SYSTEMS; nothing else changes.
#   NAME_prepare    outside the namespace: install/build what it needs; non-zero = skip NAME
#   NAME_start      fresh 3-node cluster, healthy with a leader; writes its client addresses
#                   with set_endpoints
#   NAME_load_cmd   $1 endpoints file, $2 marks file: sets the array LOAD_CMD to a command
#                   that runs the load for DURATION s and prints one JSON line in the format
#                   of `etcdload timeline` (buckets, bucket_ms, events, longest_gap_ms, ...)
#   NAME_replace    replaces one non-leader node, calling `mark kill ...` first and
#                   `mark done ...` last (plus marks for the steps between) and keeping the
#                   endpoints file current with set_endpoints
#   NAME_stop       stops every process NAME_start or NAME_replace started
set -euo pipefail

SYSTEMS=${SYSTEMS:-"ours etcd"}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-20}
REPLACE_AT=${REPLACE_AT:-8}
VAL_SIZE=${VAL_SIZE:-100}
REPS=${REPS:-1}
CONTROL=${CONTROL:-0}

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SCRIPT")/.." && pwd)
cd "$ROOT"

ETCDLOAD_DIR=$ROOT/bench/etcdload
ETCDLOAD=$ETCDLOAD_DIR/target/release/etcdload
ANALYSIS=$ROOT/bench/membership_analysis.py
STEPS=(prepare start load_cmd replace stop)

die() { echo "membership-vs-etcd: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- checks -----------------------
for knob in CLIENTS DURATION REPLACE_AT VAL_SIZE REPS CONTROL; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || die "$knob must be a whole number (got '${!knob}')"
done
[[ $CLIENTS -ge 1 && $REPS -ge 1 ]] || die "CLIENTS and REPS must be at least 1"
# The baseline needs a second of warm-up plus some steady buckets before the kill, and the
# replacement needs time to finish inside the run.
[[ $REPLACE_AT -ge 2 ]] || die "REPLACE_AT must be at least 2 (s)"
[[ $DURATION -ge $((REPLACE_AT + 5)) ]] || die "DURATION must be at least REPLACE_AT + 5 (s)"
for s in $SYSTEMS; do case $s in ours | etcd) ;; *) die "unknown system '$s' in SYSTEMS (use etcd and/or ours)" ;; esac; done
[[ -n ${SYSTEMS// /} ]] || die "SYSTEMS is empty"

# True when system $1 defines every function a system needs (see "Adding a system").
implemented() {
  local f
  for f in "${STEPS[@]}"; do declare -F "$1_$f" >/dev/null || return 1; done
}

# ---------------------------------------------------------------- etcd --------------------------
export ETCDCTL_API=3
# n1..n3 form the cluster; n4 is the replacement (a new node gets new addresses).
ETCD_CPORT=(23791 23792 23793 23794)
ETCD_PPORT=(23801 23802 23803 23804)
ETCD_EP=()
for i in 0 1 2 3; do ETCD_EP+=("http://127.0.0.1:${ETCD_CPORT[$i]}"); done
ETCD_CLUSTER=""
for i in 0 1 2; do ETCD_CLUSTER+="n$((i + 1))=http://127.0.0.1:${ETCD_PPORT[$i]},"; done
ETCD_CLUSTER=${ETCD_CLUSTER%,}
ETCD_PIDS=()
ETCD_RUN=0

etcd_prepare() {
  local need=(etcd etcdctl protoc) missing=() t
  for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "missing: ${missing[*]}; installing with apt-get"
    timeout 600 apt-get update
    timeout 1200 apt-get install -y etcd-server etcd-client protobuf-compiler iproute2
  fi
  for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || { log "still missing after install: $t"; return 1; }; done
  log "building bench/etcdload (release)"
  timeout 1800 cargo build --release --quiet --manifest-path "$ETCDLOAD_DIR/Cargo.toml" \
    --target-dir "$ETCDLOAD_DIR/target" || { log "building bench/etcdload failed"; return 1; }
  [[ -x $ETCDLOAD ]] || { log "no $ETCDLOAD after the build"; return 1; }
}

etcd_stop() {
  stop_pids "${ETCD_PIDS[@]}"
  ETCD_PIDS=()
}

# Runs etcdctl against the comma-separated endpoints $1 with short dial/command timeouts.
etcd_ctl() { # endpoints args...
  local eps=$1
  shift
  timeout 15 etcdctl --endpoints="$eps" --dial-timeout=2s --command-timeout=5s "$@"
}

# Index (0..3) in ETCD_EP of the leader that every member in $1 (comma-separated client
# URLs) agrees on; fails if there is none (yet).
etcd_leader_index() { # endpoints
  local st
  st=$(etcd_ctl "$1" endpoint status -w json 2>/dev/null) || return 1
  python3 - "$1" "$st" "${ETCD_EP[*]}" <<'PY'
import json, sys
eps = sys.argv[1].split(",")
st = json.loads(sys.argv[2])
all_eps = sys.argv[3].split()
if len(st) != len(eps):
    sys.exit(1)
leaders = {s["Status"]["leader"] for s in st}
if len(leaders) != 1 or 0 in leaders:
    sys.exit(1)
lid = leaders.pop()
for s in st:
    if s["Status"]["header"]["member_id"] == lid:
        print(all_eps.index(s["Endpoint"]))
        sys.exit(0)
sys.exit(1)
PY
}

# Hex member id of the member named $2, asked through the endpoints $1.
etcd_member_id() { # endpoints name
  local ml
  ml=$(etcd_ctl "$1" member list -w json) || return 1
  python3 - "$ml" "$2" <<'PY'
import json, sys
for m in json.loads(sys.argv[1]).get("members", []):
    if m.get("name") == sys.argv[2]:
        print(format(m["ID"], "x"))
        sys.exit(0)
sys.exit(1)
PY
}

etcd_launch() { # index initial-cluster state: starts member n<index+1> in the background
  local i=$1 d=$WORK/etcd
  etcd --name "n$((i + 1))" --data-dir "$d/n$((i + 1))" --logger zap \
    --listen-client-urls "${ETCD_EP[$i]}" --advertise-client-urls "${ETCD_EP[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PPORT[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PPORT[$i]}" \
    --initial-cluster "$2" --initial-cluster-state "$3" \
    --initial-cluster-token "mve-$$-$ETCD_RUN" \
    >"$d/n$((i + 1)).log" 2>&1 &
  ETCD_PIDS[i]=$!
  disown "$!" # no "Killed" job notice for the member we SIGKILL
}

# Fresh 3-member cluster with empty data dirs; returns once all 3 are healthy and agree on a
# leader (30 s bound). Members run with etcd's defaults (heartbeat 100 ms, election 1000 ms,
# fsync on, strict reconfiguration checks).
etcd_start() {
  local i d=$WORK/etcd deadline eps
  etcd_stop
  ETCD_RUN=$((ETCD_RUN + 1))
  rm -rf "$d"
  mkdir -p "$d"
  sync
  for i in 0 1 2; do etcd_launch "$i" "$ETCD_CLUSTER" new; done
  eps=$(IFS=,; echo "${ETCD_EP[*]:0:3}")
  deadline=$((SECONDS + 30))
  until etcd_ctl "$eps" endpoint health >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || { log "etcd cluster not healthy within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
  until etcd_leader_index "$eps" >/dev/null; do
    [[ $SECONDS -lt $deadline ]] || { log "etcd members did not agree on a leader within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
  set_endpoints "${ETCD_EP[@]:0:3}"
}

etcd_load_cmd() { # endpoints-file marks-file
  LOAD_CMD=("$ETCDLOAD" timeline --endpoints "$(IFS=,; echo "${ETCD_EP[*]:0:3}")"
    --endpoints-file "$1" --marks-file "$2"
    --clients "$CLIENTS" --duration "$DURATION" --val-size "$VAL_SIZE")
}

etcd_replace() {
  local eps l v=-1 i surv=() surv_eps id out ic new=3 deadline d=$WORK/etcd
  eps=$(IFS=,; echo "${ETCD_EP[*]:0:3}")
  l=$(etcd_leader_index "$eps") || { log "no agreed leader before the kill"; return 1; }
  for i in 2 1 0; do
    if [[ $i -ne $l && $v -lt 0 ]]; then v=$i; fi
  done
  for i in 0 1 2; do
    if [[ $i -ne $v ]]; then surv+=("${ETCD_EP[$i]}"); fi
  done
  surv_eps=$(IFS=,; echo "${surv[*]}")

  mark kill "n$((v + 1)) (pid ${ETCD_PIDS[$v]}; leader n$((l + 1)))"
  kill -KILL "${ETCD_PIDS[$v]}"
  ETCD_PIDS[v]="" # gone: keep teardown from signalling a PID that may be reused

  id=$(etcd_member_id "$surv_eps" "n$((v + 1))") || { log "cannot find n$((v + 1))'s member id"; return 1; }
  out=$(etcd_ctl "$surv_eps" member remove "$id" 2>&1) || { log "member remove failed: $out"; return 1; }
  mark remove "n$((v + 1)) (member $id)"
  set_endpoints "${surv[@]}"

  out=$(etcd_ctl "$surv_eps" member add "n$((new + 1))" --peer-urls="http://127.0.0.1:${ETCD_PPORT[$new]}" 2>&1) ||
    { log "member add failed: $out"; return 1; }
  mark add "n$((new + 1))"
  ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$out")
  [[ -n $ic ]] || { log "no ETCD_INITIAL_CLUSTER in the member add output: $out"; return 1; }

  rm -rf "$d/n$((new + 1))" # a new disk: empty data dir
  etcd_launch "$new" "$ic" existing
  mark start "n$((new + 1)) (pid ${ETCD_PIDS[$new]})"

  deadline=$((SECONDS + 60))
  until etcd_ctl "${ETCD_EP[$new]}" endpoint health >/dev/null 2>&1; do
    kill -0 "${ETCD_PIDS[$new]}" 2>/dev/null || { log "new member n$((new + 1)) exited"; show_logs "$d"; return 1; }
    [[ $SECONDS -lt $deadline ]] || { log "new member n$((new + 1)) not healthy within 60 s"; show_logs "$d"; return 1; }
    sleep 0.1
  done
  mark healthy "n$((new + 1))"
  set_endpoints "${surv[@]}" "${ETCD_EP[$new]}"
  mark "done" "n$((v + 1)) replaced by n$((new + 1))"

  # The membership the operator should now see: 3 started members, n4 in, the dead one out.
  out=$(etcd_ctl "$surv_eps,${ETCD_EP[$new]}" member list 2>&1) || { log "member list failed: $out"; return 1; }
  log "members now: $(tr '\n' ';' <<<"$out")"
  if [[ $(grep -c ', started, ' <<<"$out") -ne 3 ]] || grep -q ", n$((v + 1))," <<<"$out"; then
    log "unexpected membership after the replacement"
    return 1
  fi
}

# ---------------------------------------------------------------- ours --------------------------
# Our replicated key-value example (target/release/kv-server, driven by `kv-load timeline`):
# n1..n3 form the cluster; n4 is the replacement, with a new id, name, certificate, ports and
# an empty data dir. Our replacement, the procedure of the paxos README's operator steps:
#   kill     SIGKILL n3 (say); it stays in the endpoints file, as it would in a client's
#            configuration
#   issue    kv-server issue: n4's certificate from the cluster CA
#   start    kv-server run --join for n4 (it learns the membership from the cluster)
#   added    kv-server member add --replacing n3: n4 joins as a learner, catches up
#            (snapshot plus log), then one change makes the voters n1, n2, n4 (n3 is
#            retired in the same entry); n4 joins the endpoints file, n3 leaves it
#   done     replacement complete
# One change swaps the dead voter for the new one, so the cluster never has four voters
# (a quorum of three, with the new node in every quorum while it is still settling) nor
# two (both needed).
TGT=${CARGO_TARGET_DIR:-target}
case $TGT in /*) ;; *) TGT=$ROOT/$TGT ;; esac
KV_SERVER=$TGT/release/kv-server
KV_LOAD=$TGT/release/kv-load
OURS_PPORT=(24001 24002 24003 24004) # Paxos (UDP)
OURS_CPORT=(24101 24102 24103 24104) # clients (UDP)
OURS_PIDS=()

ours_prepare() {
  log "building our binaries (cargo build --release -p tests --bins)"
  timeout 1800 cargo build --release --quiet -p tests --bins || { log "building kv-server/kv-load failed"; return 1; }
  [[ -x $KV_SERVER && -x $KV_LOAD ]] || { log "no $KV_SERVER or $KV_LOAD after the build"; return 1; }
}

ours_stop() {
  stop_pids "${OURS_PIDS[@]}"
  OURS_PIDS=()
}

ours_paxos() { echo "127.0.0.1:${OURS_PPORT[$1]}"; }
ours_client() { echo "127.0.0.1:${OURS_CPORT[$1]}"; }
# --peers for node indexes $@ (0-based; node id = index + 1).
ours_peers() {
  local i out=""
  for i in "$@"; do out+="$((i + 1))=$(ours_paxos "$i"),"; done
  echo "${out%,}"
}
ours_launch() { # index peers [--join]: starts node n<index+1> in the background
  local i=$1 d=$WORK/ours
  "$KV_SERVER" run --id "$((i + 1))" --certs "$d/certs" --data "$d/n$((i + 1))" --peers "$2" \
    --listen "$(ours_client "$i")" "${@:3}" >"$d/n$((i + 1)).out" 2>"$d/n$((i + 1)).log" &
  OURS_PIDS[i]=$!
  disown "$!" # no "Killed" job notice for the node we SIGKILL
}
ours_admin() { # servers-csv args...: an operator command
  local servers=$1
  shift
  timeout 90 "$KV_SERVER" "$@" --certs "$WORK/ours/certs" --servers "$servers"
}
# Node id (1..4) that the cluster reports as leader, via `kv-load leader` on the client ports.
ours_leader_id() { # client-addresses-csv
  local out
  out=$(timeout 15 "$KV_LOAD" leader --servers "$1" --ca "$WORK/ours/certs/ca.crt" 2>/dev/null) || return 1
  python3 - "$out" <<'PY'
import json, sys
for line in reversed(sys.argv[1].splitlines()):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if isinstance(d, dict) and isinstance(d.get("leader"), int):
        print(d["leader"])
        sys.exit(0)
sys.exit(1)
PY
}

# Fresh 3-node cluster with empty data dirs (fsync on, the default); returns once every node
# printed `ready` and the cluster reports a leader (30 s bound).
ours_start() {
  local i d=$WORK/ours deadline
  ours_stop
  rm -rf "$d"
  mkdir -p "$d"
  sync
  timeout 60 "$KV_SERVER" certs --dir "$d/certs" --nodes 3 >"$d/certs.log" 2>&1 ||
    { cat "$d/certs.log" >&2; log "kv-server certs failed"; return 1; }
  for i in 0 1 2; do ours_launch "$i" "$(ours_peers 0 1 2)"; done
  deadline=$((SECONDS + 30))
  for i in 0 1 2; do
    until grep -q '^ready' "$d/n$((i + 1)).out" 2>/dev/null; do
      kill -0 "${OURS_PIDS[$i]}" 2>/dev/null || { log "kv-server $((i + 1)) exited before ready"; show_logs "$d"; return 1; }
      [[ $SECONDS -lt $deadline ]] || { log "kv-server $((i + 1)) not ready within 30 s"; show_logs "$d"; return 1; }
      sleep 0.1
    done
  done
  until ours_leader_id "$(ours_client 0),$(ours_client 1),$(ours_client 2)" >/dev/null; do
    [[ $SECONDS -lt $deadline ]] || { log "no leader reported within 30 s"; show_logs "$d"; return 1; }
    sleep 0.2
  done
  set_endpoints "$(ours_client 0)" "$(ours_client 1)" "$(ours_client 2)"
}

ours_load_cmd() { # endpoints-file marks-file
  LOAD_CMD=("$KV_LOAD" timeline --servers "$(ours_client 0),$(ours_client 1),$(ours_client 2)"
    --ca "$WORK/ours/certs/ca.crt" --endpoints-file "$1" --marks-file "$2"
    --clients "$CLIENTS" --duration "$DURATION" --val-size "$VAL_SIZE")
}

ours_replace() {
  local l v=-1 i surv=() surv_paxos new=3 out d=$WORK/ours
  l=$(ours_leader_id "$(ours_client 0),$(ours_client 1),$(ours_client 2)") || { log "no leader before the kill"; return 1; }
  for i in 2 1 0; do
    if [[ $((i + 1)) -ne $l && $v -lt 0 ]]; then v=$i; fi
  done
  for i in 0 1 2; do
    if [[ $i -ne $v ]]; then surv+=("$i"); fi
  done
  surv_paxos="$(ours_paxos "${surv[0]}"),$(ours_paxos "${surv[1]}")"

  mark kill "n$((v + 1)) (pid ${OURS_PIDS[$v]}; leader n$l)"
  kill -KILL "${OURS_PIDS[$v]}"
  OURS_PIDS[v]="" # gone: keep teardown from signalling a PID that may be reused

  out=$(timeout 60 "$KV_SERVER" issue --dir "$d/certs" --id "$((new + 1))" 2>&1) ||
    { log "kv-server issue failed: $out"; return 1; }
  mark issue "n$((new + 1)) certificate"
  rm -rf "$d/n$((new + 1))" # a new disk: empty data dir
  ours_launch "$new" "$(ours_peers "${surv[@]}" "$new")" --join
  mark start "n$((new + 1)) (pid ${OURS_PIDS[$new]})"

  out=$(ours_admin "$surv_paxos" member add --id "$((new + 1))" --address "$(ours_paxos "$new")" \
    --replacing "$((v + 1))" 2>&1) || { log "member add failed: $out"; show_logs "$d"; return 1; }
  mark added "n$((new + 1)) is a voter in place of n$((v + 1))"
  set_endpoints "$(ours_client "${surv[0]}")" "$(ours_client "${surv[1]}")" "$(ours_client "$new")"
  mark "done" "n$((v + 1)) replaced by n$((new + 1))"

  # The membership the operator should now see: the two survivors and n4 vote, n3 is removed.
  out=$(ours_admin "$surv_paxos,$(ours_paxos "$new")" member list 2>&1) || { log "member list failed: $out"; return 1; }
  log "members now: $(tr '\n' ';' <<<"$out")"
  if [[ $(grep -c $'\tvoter\t' <<<"$out") -ne 3 ]] || ! grep -q "^$((v + 1))"$'\tremoved' <<<"$out" ||
    ! grep -q "^$((new + 1))"$'\tvoter' <<<"$out"; then
    log "unexpected membership after the replacement"
    return 1
  fi
}

# ---------------------------------------------------------------- outside: install, build ------
if [[ -z ${MVE_IN_NETNS:-} ]]; then
  [[ $EUID -eq 0 ]] || die "run as root: the benchmark needs 'unshare --net'"
  for t in ip unshare timeout python3 cargo; do command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"; done
  run=""
  for s in $SYSTEMS; do
    if ! implemented "$s"; then
      log "SKIP $s: not implemented in this script yet (it needs functions ${STEPS[*]/#/${s}_}; see 'Adding a system' in the header)"
    elif ! "${s}_prepare"; then
      log "SKIP $s: preparing it failed (see above)"
    else
      run+="$s "
    fi
  done
  [[ -n $run ]] || die "no system left to measure"
  if [[ -z ${TOTAL_TIMEOUT:-} ]]; then
    TOTAL_TIMEOUT=$(($(wc -w <<<"$run") * REPS * (DURATION + 150) + 120))
  fi
  [[ $TOTAL_TIMEOUT =~ ^[0-9]+$ ]] || die "TOTAL_TIMEOUT must be a whole number of seconds"
  log "entering a private network namespace (only lo); hard limit ${TOTAL_TIMEOUT}s"
  exec timeout --kill-after=30 "$TOTAL_TIMEOUT" unshare --net env MVE_IN_NETNS=1 SYSTEMS="$run" CONTROL="$CONTROL" bash "$SCRIPT"
fi

# ---------------------------------------------------------------- inside the namespace --------
ip link set lo up
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[[ $links == "lo " ]] || die "network namespace is not private (links: $links)"

WORK=$(mktemp -d /tmp/membership-vs-etcd.XXXXXX)
EPS_FILE=$WORK/endpoints
MARKS=$WORK/marks
FAILED=0
LOAD_PID=""
LOAD_CMD=()

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
  if [[ -n $LOAD_PID ]]; then stop_pids "$LOAD_PID"; fi
  for s in $SYSTEMS; do "${s}_stop"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

mkdir -p "$ROOT/bench/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/results/membership-vs-etcd-$STAMP.jsonl
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
record_error() { # system rep step message
  FAILED=$((FAILED + 1))
  log "FAILED: $1 rep $2 $3: $4"
  record "$(python3 -c 'import json,sys; print(json.dumps({"system":sys.argv[1],"rep":int(sys.argv[2]),"step":sys.argv[3],"error":sys.argv[4]}))' "$@")"
}
show_logs() { # dir: print the tail of every log in it, for a failed run
  local f
  for f in "$1"/*.log; do
    [[ -f $f ]] || continue
    echo "---- tail of $(basename "$f")" >&2
    tail -n 15 "$f" >&2 || true
  done
}
# A sleep that the TERM trap (hard time limit) can interrupt at once.
pause() { sleep "$1" & wait $!; }
# Appends "<unix ms> <step> <detail>" to the marks file the load tool reports as events.
mark() { # step detail
  local now=${EPOCHREALTIME//[!0-9]/} # microseconds, whatever the locale's decimal point
  printf '%s %s\n' "${now:0:-3}" "$*" >>"$MARKS"
  log "mark: $*"
}
# Rewrites the endpoints file (one client URL per line) in one step, so that the load tool,
# which re-reads it every 200 ms, never sees half of it.
set_endpoints() { # URL...
  printf '%s\n' "$@" >"$EPS_FILE.tmp"
  mv -f "$EPS_FILE.tmp" "$EPS_FILE"
}

record "$(python3 - "$SYSTEMS" "$CLIENTS" "$DURATION" "$REPLACE_AT" "$VAL_SIZE" "$REPS" \
  "$(if [[ " $SYSTEMS " == *" etcd "* ]]; then etcd --version | head -n 1; fi)" \
  "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)" "$(nproc)" "$CONTROL" <<'PY'
import datetime, json, sys
a = sys.argv[1:]
print(json.dumps({"meta": True, "bench": "membership", "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "systems": a[0].split(), "clients": int(a[1]), "duration_s": int(a[2]), "replace_at_s": int(a[3]),
                  "val_size": int(a[4]), "reps": int(a[5]), "etcd": a[6], "git_head": a[7], "cpus": int(a[8]),
                  "control": a[9] != "0"}))
PY
)"
log "results: $OUT ; scratch: $WORK"

run_one() { # system rep
  local s=$1 rep=$2 rc=0 line res t0
  : >"$MARKS"
  rm -f "$EPS_FILE"
  log "$s rep $rep: fresh cluster"
  "${s}_start" || { record_error "$s" "$rep" start "cluster did not start"; "${s}_stop"; return 0; }
  "${s}_load_cmd" "$EPS_FILE" "$MARKS"
  log "$s rep $rep: load for ${DURATION}s, replacing a node at ${REPLACE_AT}s"
  t0=$SECONDS
  timeout --kill-after=5 $((DURATION + 30)) "${LOAD_CMD[@]}" >"$WORK/load.out" 2>"$WORK/load.log" &
  LOAD_PID=$!
  pause "$REPLACE_AT"
  if ! kill -0 "$LOAD_PID" 2>/dev/null; then
    record_error "$s" "$rep" load "the load tool exited before the replacement: $(tail -c 300 "$WORK/load.log")"
  elif [[ $CONTROL -ne 0 ]]; then
    mark kill "none (control run)"
    mark "done" "none (control run)"
  elif ! "${s}_replace"; then
    record_error "$s" "$rep" replace "the replacement failed (see the log above)"
  elif [[ $((SECONDS - t0)) -ge $DURATION ]]; then
    log "warning: the replacement ended after the load (raise DURATION): the analysis will lack its end"
  fi
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=""
  [[ $rc -eq 0 ]] || log "the load tool exited with status $rc"
  line=$(json_line "$WORK/load.out" buckets)
  if [[ -z $line ]]; then
    cat "$WORK/load.log" >&2 || true
    record_error "$s" "$rep" load "the load tool printed no timeline: $(tail -c 300 "$WORK/load.out")"
  else
    record "$line"
    res=$(timeout 60 python3 "$ANALYSIS" run "$s" "$rep" <<<"$line") ||
      { record_error "$s" "$rep" analysis "the analysis failed"; "${s}_stop"; return 0; }
    record "$res"
    log "$s rep $rep: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get("error") or "baseline %.0f/s, drop span %d ms, worst bucket %.0f %%, longest gap %.1f ms, replacement %s ms, %d errors" % (d["baseline_per_s"], d["drop_span_ms"], d["worst_pct"], d["longest_gap_ms"], d["replacement_ms"], d["errors"]))' "$res")"
  fi
  tail -n 3 "$WORK/load.log" >&2 || true
  "${s}_stop"
}

# ---------------------------------------------------------------- run ---------------------------
# The systems take turns rep by rep, so that a slow spell of the machine hits each of them.
for rep in $(seq "$REPS"); do
  for s in $SYSTEMS; do run_one "$s" "$rep"; done
done

# ---------------------------------------------------------------- summary -----------------------
timeout 60 python3 "$ANALYSIS" summary "$OUT" | tee "${OUT%.jsonl}.txt"

if [[ $FAILED -gt 0 ]]; then
  log "$FAILED run(s) failed; see above"
  exit 1
fi
