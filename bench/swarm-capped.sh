#!/usr/bin/env bash
# swarm-capped.sh: a bandwidth-capped swarm, ByteTorrent ("ours") and aria2c + opentracker
# ("aria2") taking turns on the same network, scored against the fluid lower bound.
#
# Run as root (network namespaces, tc and apt-get need it):
#     bench/swarm-capped.sh                              # N=23 leechers, 256 MiB, both systems
#     N=4 SIZE_MIB=32 bench/swarm-capped.sh              # a quick check
#     SYSTEMS=ours LEECH_MBIT=20-40 SIZE_MIB=64 bench/swarm-capped.sh
#
# The network. Every process runs in a network namespace of its own (`ip netns exec`); the
# namespaces are named btcap-*, and nothing is added to the initial namespace:
#   btcap-hub   a Linux bridge br0 and the outer end of every veth pair (p-t, p-s, p-l1..);
#               the bridge has no address, and no namespace has a default route or any
#               link out, so every packet stays among these namespaces
#   btcap-trk   the trackers, on one veth (eth0) with four addresses: opentracker on
#               10.77.0.10:6969; the three `bt-tracker run` nodes on 10.77.0.11-13 (cluster
#               port 7000, peer port 7100, HTTP 8080). This link is not capped.
#   btcap-s     the seeder, 10.77.1.1
#   btcap-lI    leecher I (1..N), 10.77.2.I
# Each peer's uplink is capped with `tc qdisc add dev eth0 root tbf` inside its namespace
# (egress towards the bridge) and its downlink with tbf on its port p-* in btcap-hub
# (egress towards the peer) at DOWN_FACTOR times its uplink. tbf burst is 10 ms of the
# rate (at least 32 KiB), its queue LATENCY_MS. The caps count whole frames, so headers
# (Ethernet, IP, UDP + QUIC or TCP) come out of them.
# The namespaces and links are made once per invocation and used by every run; a trap
# deletes them on any exit (also Ctrl-C and errors), after stopping every process still in
# them; leftovers of an earlier run that crashed are deleted at the start.
#
# What it does:
#   1. Installs missing tools (apt-get: aria2 opentracker mktorrent time iproute2) and
#      builds our binaries (cargo build --release -p tracker --bin bt-tracker -p peer
#      --bin bt; NO_BUILD=1 skips this).
#   2. Makes the network above, writes one file of SIZE_MIB random MiB, and makes aria2's
#      torrent of it with mktorrent at the piece size ours uses.
#   3. Per rep, in alternating order (so a slow spell of the machine hits both), each
#      system on fresh directories:
#        ours:  makes a CA and three node certificates (`bt-tracker certs`), starts three
#               `bt-tracker run` processes, adds a user and an API token (`bt-tracker user
#               add`, `token create`); starts `bt seed` and waits for its "seeding" line;
#               then starts N `bt get` at once. Like aria2's, ours' leechers seed on
#               until the last one is done; a leecher's time ends at its "complete:" line
#               (every piece BLAKE3-verified and written). OURS_KEEP_SEEDING=0 runs them
#               with --no-seed instead: each exits when complete and stops uploading.
#        aria2: starts opentracker (whitelisting the info-hash) and an aria2c seeder, waits
#               until /scrape counts the seeder, then starts N aria2c at once. A leecher's
#               time ends when its --on-bt-download-complete hook runs (every piece
#               SHA-1-verified); aria2 leechers keep seeding to the others until the last
#               one is done.
#      t=0 is the moment the leechers are started. Once all are done (or TIMEOUT), every
#      process is stopped by PID and every copy is compared byte for byte (cmp) with the
#      original.
#   4. Prints, per run, and appends as one JSON line to
#      bench/results/swarm-capped-<UTC stamp>.jsonl (table beside it as .md):
#        T*, the fluid lower bound of Kumar & Ross (2006) for N leechers starting at t=0,
#            F the file's bytes, u_s the seeder's uplink, u_i and d_i leecher i's up- and
#            downlink: T* = max(F/u_s, F/min_i d_i, N*F/(u_s + sum_i u_i))
#        each leecher's completion time; p50, p99 (linear interpolation) and max / T*
#        uplink use: bytes all peers (seeder and leechers) sent over the middle 80% of the
#            transfer (t0 + 10% .. t0 + 90% of the max time), over (sum of their uplink caps
#            x that window). The counters are the rx_bytes of the peers' ports p-* on the
#            bridge (= tx_bytes of the namespace ends), read once a second in btcap-hub.
#        CPU: user + system seconds of the system's processes (trackers, seeder, leechers;
#            from /proc/PID/stat for running ones and GNU time for ours' leechers, which
#            exit) from t=0 until the last completion, and that as a share of the machine
#            (seconds / (wall x CPUs)); beside it the whole machine's busy share over the
#            same time (/proc/stat, every process on the machine, softirq included).
#      and PASS/FAIL for the goals (a missed goal is a result, not an error):
#            ours max <= 1.20 T*;  ours max <= 0.8 x aria2's max in the same rep.
#      At the end: the CPU seconds of everything this script ran after the build
#      (getrusage of children) and their share of the machine over that time.
# The default caps keep the run under half of a 2-CPU machine that also runs other work.
# The CPU seconds grow with the bytes moved per second (and with the machine's other load):
# with the leechers at 20-40 Mbit/s (750 Mbit/s of uplink in all) ours used 56% of 2 CPUs
# during a 64 MiB transfer; at 15-30 (562.5 in all) both systems used 49% during the
# 256 MiB one; at 12-24 (450 in all) ours used 42% and 54% in two runs, aria2 38% and 40%.
# At the default, 10-20 Mbit/s and a 30 Mbit/s seeder (375 in all), ours used 42%, aria2
# 38% and the whole script 40%, with a load average of 7-12 from other work. Ours with
# OURS_KEEP_SEEDING=1 costs more (55% at 12-24): its leechers keep uploading. More cores
# allow higher caps.
# Piece size: both systems use the same one, by default the one `bt seed` picks (about
# 2,000 pieces, 256 KiB to 4 MiB: 256 KiB for 256 MiB). PIECE_KIB=K forces K: ours then
# makes the torrent with `bt create --piece-kib`, publishes it (`bt publish`) and seeds it
# with `bt get` on the complete file.
# Every wait is bounded; processes are stopped by PID (INT, then KILL); the payload, copies
# and logs live in a mktemp directory under /tmp that is deleted on exit (KEEP=1 keeps it).
# The exit status is non-zero if a run failed: a leecher did not finish within TIMEOUT, or a
# copy differs from the original.
#
# Knobs (environment):
#   N             leechers, default 23 (at most 250)
#   SIZE_MIB      file size in MiB, default 256
#   LEECH_MBIT    leechers' uplinks MIN-MAX in Mbit/s, default 10-20: leecher I gets
#                 MIN + (MAX - MIN) * (I - 1) / (N - 1), evenly spread and deterministic
#   SEED_MBIT     seeder's uplink in Mbit/s, default 2 x the leechers' mean (30)
#   DOWN_FACTOR   each peer's downlink cap as a multiple of its uplink, default 10;
#                 0 leaves downlinks uncapped (T* then has no F/min d_i term)
#   LATENCY_MS    tbf queue limit in ms of the rate, default 50
#   SYSTEMS       "ours aria2" (default), "ours" or "aria2"
#   REPS          reps per system, default 1
#   PIECE_KIB     piece size in KiB for both systems, default: bt seed's own choice
#   TIMEOUT       seconds allowed per setup step and per transfer, default 600
#   OURS_KEEP_SEEDING  default 1: ours' leechers seed on, like aria2's, until the last one
#                 is done, and a leecher's time ends at its "complete:" line (printed
#                 within 250 ms of the last piece); 0 runs them with --no-seed, timed to
#                 their exit
#   NO_BUILD      1 skips the cargo build
#   KEEP          1 keeps the temporary directory (logs, samples) and prints its path
set -euo pipefail

N=${N:-23}
SIZE_MIB=${SIZE_MIB:-256}
LEECH_MBIT=${LEECH_MBIT:-10-20}
SEED_MBIT=${SEED_MBIT:-}
DOWN_FACTOR=${DOWN_FACTOR:-10}
LATENCY_MS=${LATENCY_MS:-50}
SYSTEMS=${SYSTEMS:-"ours aria2"}
REPS=${REPS:-1}
PIECE_KIB=${PIECE_KIB:-}
TIMEOUT=${TIMEOUT:-600}
OURS_KEEP_SEEDING=${OURS_KEEP_SEEDING:-1}
NO_BUILD=${NO_BUILD:-0}
KEEP=${KEEP:-0}

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SCRIPT")/.." && pwd)
cd "$ROOT"
TGT=${CARGO_TARGET_DIR:-target}
case $TGT in /*) ;; *) TGT=$ROOT/$TGT ;; esac
BT=$TGT/release/bt
BT_TRACKER=$TGT/release/bt-tracker
UTIL=$ROOT/bench/swarm_util.py
U() { python3 "$UTIL" "$@"; }

die() { echo "swarm-capped: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- checks -----------------------
for knob in N SIZE_MIB DOWN_FACTOR LATENCY_MS REPS TIMEOUT OURS_KEEP_SEEDING; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || die "$knob must be a whole number (got '${!knob}')"
done
[[ $N -ge 1 && $N -le 250 ]] || die "N must be from 1 to 250 (got $N)"
[[ $SIZE_MIB -ge 1 && $REPS -ge 1 && $LATENCY_MS -ge 1 && $TIMEOUT -ge 10 ]] ||
  die "SIZE_MIB, REPS and LATENCY_MS must be at least 1, TIMEOUT at least 10"
NUM='[0-9]+([.][0-9]+)?'
[[ $LEECH_MBIT =~ ^($NUM)-($NUM)$ ]] || die "LEECH_MBIT must be MIN-MAX in Mbit/s, e.g. 20-40 (got '$LEECH_MBIT')"
LEECH_MIN=${BASH_REMATCH[1]} LEECH_MAX=${BASH_REMATCH[3]}
awk -v a="$LEECH_MIN" -v b="$LEECH_MAX" 'BEGIN{exit !(a >= 0.1 && b >= a)}' ||
  die "LEECH_MBIT: need 0.1 <= MIN <= MAX (got '$LEECH_MBIT')"
if [[ -z $SEED_MBIT ]]; then
  SEED_MBIT=$(awk -v a="$LEECH_MIN" -v b="$LEECH_MAX" 'BEGIN{print a + b}')  # 2 x the mean
fi
if ! [[ $SEED_MBIT =~ ^$NUM$ ]] || ! awk -v s="$SEED_MBIT" 'BEGIN{exit !(s >= 0.1)}'; then
  die "SEED_MBIT must be a number of Mbit/s, at least 0.1 (got '$SEED_MBIT')"
fi
if [[ $DOWN_FACTOR == 0 ]]; then DOWNLINKS=uncapped; else DOWNLINKS="${DOWN_FACTOR}x uplink"; fi
for s in $SYSTEMS; do case $s in ours | aria2) ;; *) die "unknown system '$s' in SYSTEMS (use ours and/or aria2)" ;; esac; done
[[ -n ${SYSTEMS// /} ]] || die "SYSTEMS is empty"
if [[ -n $PIECE_KIB ]]; then
  [[ $PIECE_KIB =~ ^[0-9]+$ && $PIECE_KIB -ge 16 && $PIECE_KIB -le 65536 && $((PIECE_KIB & (PIECE_KIB - 1))) -eq 0 ]] ||
    die "PIECE_KIB must be a power of two from 16 to 65536 (got '$PIECE_KIB')"
fi
[[ $(id -u) == 0 ]] || die "run as root: the benchmark makes network namespaces, veth pairs and tc qdiscs"

# ---------------------------------------------------------------- install, build ---------------
need=()
for t in aria2c:aria2 opentracker:opentracker mktorrent:mktorrent /usr/bin/time:time ip:iproute2 tc:iproute2; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [[ ${#need[@]} -gt 0 ]]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need[@]}" >/dev/null ||
    { timeout 300 apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need[@]}" >/dev/null; } ||
    die "apt-get install ${need[*]} failed"
fi
for t in timeout python3 cmp head awk; do command -v "$t" >/dev/null || die "missing $t"; done
if has ours; then
  if [[ $NO_BUILD != 1 ]]; then
    log "building bt and bt-tracker (release)"
    timeout 3600 cargo build --release -p tracker --bin bt-tracker -p peer --bin bt ||
      die "cargo build --release -p tracker --bin bt-tracker -p peer --bin bt failed"
  fi
  [[ -x $BT && -x $BT_TRACKER ]] || die "missing $BT or $BT_TRACKER (build them, or unset NO_BUILD)"
fi

# Nothing in the namespaces can reach a proxy: aria2c and urllib must not try one.
unset http_proxy https_proxy ftp_proxy all_proxy HTTP_PROXY HTTPS_PROXY FTP_PROXY ALL_PROXY

# ---------------------------------------------------------------- helpers (Python) -------------
# sample OUT: every second until stopped, one JSON line of this namespace's interface byte
#   counters (/proc/net/dev).
# report RESULTS KEY=VALUE...: one run's figures from its completion files and samples;
#   prints them and appends them as one JSON line to RESULTS.
# table RESULTS: the Markdown table of a results file.
read -r -d '' PY <<'EOF' || true
import json, os, sys, time

GOAL_T_STAR = 1.20     # ours: max completion time / T*
GOAL_VS_ARIA2 = 0.8    # ours: max completion time / aria2's, same rep


def sample(out):
    with open(out, "a") as f:
        nxt = time.time()
        while True:
            counters = {}
            for line in open("/proc/net/dev").readlines()[2:]:
                name, data = line.split(":", 1)
                v = data.split()
                counters[name.strip()] = [int(v[0]), int(v[8])]  # rx_bytes, tx_bytes
            f.write(json.dumps({"t": time.time(), "dev": counters}) + "\n")
            f.flush()
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.time()))


def quantile(xs, q):
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def interpolate(samples, t, key):
    """Counter `key` of `samples` (sorted by time) at time t, linear between samples."""
    for a, b in zip(samples, samples[1:]):
        if a["t"] <= t <= b["t"]:
            w = (t - a["t"]) / (b["t"] - a["t"]) if b["t"] > a["t"] else 0.0
            return key(a) + (key(b) - key(a)) * w
    return None


def report(results, args):
    a = {}
    for kv in args:
        k, _, v = kv.partition("=")
        try:
            a[k] = json.loads(v)
        except ValueError:
            a[k] = v
    n, t0, F = a["n"], a["t0"], a["file_bytes"]
    up = [m * 1e6 for m in a["leech_mbit"]]            # bit/s
    us = a["seed_mbit"] * 1e6
    down = [u * a["down_factor"] for u in up] if a["down_factor"] > 0 else None
    bits = 8 * F
    terms = {"F/u_s": bits / us, "F/min d_i": bits / min(down) if down else 0.0,
             "N*F/(u_s+sum u_i)": n * bits / (us + sum(up))}
    t_star = max(terms.values())

    times, rcs = [], []
    for i in range(1, n + 1):
        try:
            rc, t = open(os.path.join(a["run_dir"], f"done.l{i}")).read().split()
            rcs.append(int(rc))
            times.append(round(float(t) - t0, 3) if int(rc) == 0 else None)
        except (OSError, ValueError):
            rcs.append(None)
            times.append(None)
    all_done = all(t is not None for t in times)
    ok = all_done and a["identical"] is True
    r = {"system": a["system"], "rep": a["rep"], "ok": ok, "all_done": all_done,
         "verified_identical": a["identical"], "n_leechers": n, "size_mib": F / 2**20,
         "piece_kib": a["piece_kib"], "leech_mbit": a["leech_mbit"], "seed_mbit": a["seed_mbit"],
         "down_factor": a["down_factor"], "leechers_seed_on": a["seed_on"], "t_star_s": round(t_star, 3),
         "t_star_terms_s": {k: round(v, 3) for k, v in terms.items()},
         "per_leecher_s": times, "exit_codes": rcs}
    done = [t for t in times if t is not None]
    if all_done:
        r.update(max_s=max(done), p50_s=round(quantile(done, 0.5), 3), p99_s=round(quantile(done, 0.99), 3))
        for q in ("p50", "p99", "max"):
            r[f"{q}_over_t_star"] = round(r[f"{q}_s"] / t_star, 3)

    # Uplink use over the middle 80% of the transfer (the peers' ports' rx = what they sent).
    samples = [json.loads(line) for line in open(a["samples"]) if line.strip()]
    peers = ["p-s"] + [f"p-l{i}" for i in range(1, n + 1)]
    sent = lambda s: sum(s["dev"].get(p, [0, 0])[0] for p in peers)
    r["uplink_use"] = None
    if done and len(samples) >= 2:
        end = t0 + max(done)
        lo, hi = t0 + 0.1 * (end - t0), t0 + 0.9 * (end - t0)
        s_lo, s_hi = interpolate(samples, lo, sent), interpolate(samples, hi, sent)
        if s_lo is not None and s_hi is not None and hi > lo:
            r["uplink_use"] = round(8 * (s_hi - s_lo) / ((us + sum(up)) * (hi - lo)), 4)
        r["upload_mbit_per_s"] = [round(8 * (sent(b) - sent(x)) / (b["t"] - x["t"]) / 1e6, 1)
                                  for x, b in zip(samples, samples[1:]) if b["t"] > t0 - 1 and x["t"] < end]
        first, last = samples[0]["dev"], samples[-1]["dev"]
        r["uploaded_mib"] = {p[2:]: round((last.get(p, [0, 0])[0] - first.get(p, [0, 0])[0]) / 2**20, 1) for p in peers}

    wall = a["cpu_wall_s"]
    cpus = os.cpu_count()
    r.update(cpu_s=a["cpu_s"], cpu_total_s=round(sum(v for v in a["cpu_s"].values() if v is not None), 2),
             cpu_wall_s=round(wall, 2), cpus=cpus, machine_busy_share=a["machine_busy_share"])
    r["cpu_share"] = round(r["cpu_total_s"] / (wall * cpus), 4) if wall > 0 else None
    with open(results, "a") as f:
        f.write(json.dumps(r) + "\n")

    p = print
    p(f"  {r['system']}{' (leechers seed on)' if r['system'] == 'ours' and a['seed_on'] else ''} rep {r['rep']}: " + ("ok" if ok else f"FAILED (exit codes {rcs}; copies identical: {a['identical']})"))
    p("    T* = {:.2f} s = max(F/u_s {:.2f}, F/min d_i {:.2f}, N*F/(u_s+sum u_i) {:.2f})".format(
        r["t_star_s"], *r["t_star_terms_s"].values()))
    p("    completion s (leecher: uplink Mbit/s -> s): " + ", ".join(
        f"l{i + 1}:{m:g}->{'–' if t is None else f'{t:.1f}'}" for i, (m, t) in enumerate(zip(a["leech_mbit"], times))))
    if all_done:
        p("    p50 {:.2f} s = {:.3f} T*   p99 {:.2f} s = {:.3f} T*   max {:.2f} s = {:.3f} T*".format(
            r["p50_s"], r["p50_over_t_star"], r["p99_s"], r["p99_over_t_star"], r["max_s"], r["max_over_t_star"]))
    if r["uplink_use"] is not None:
        p(f"    uplink use over the middle 80%: {100 * r['uplink_use']:.1f}% of {(us + sum(up)) / 1e6:g} Mbit/s")
    parts = ", ".join(f"{k} {v:.1f}" for k, v in a["cpu_s"].items() if v is not None)
    busy = a["machine_busy_share"]
    p(f"    CPU {r['cpu_total_s']:.1f} s ({parts}) over {wall:.1f} s on {cpus} CPUs = "
      f"{100 * (r['cpu_share'] or 0):.1f}% of the machine ({'under' if (r['cpu_share'] or 0) < 0.5 else 'NOT under'} "
      f"half); whole machine busy {100 * busy:.1f}%")


def verdict(ok):
    return "PASS" if ok else "FAIL"


def table(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    meta = next((r for r in runs if r.get("meta")), {})
    runs = [r for r in runs if not r.get("meta") and not r.get("summary")]
    out = [f"1 seeder + {meta.get('n_leechers', '?')} leechers, {meta.get('size_mib', '?')} MiB, each process in its own "
           f"network namespace behind tbf caps: leechers' uplinks {meta.get('leech_mbit', '?')} Mbit/s, seeder "
           f"{meta.get('seed_mbit', '?')} Mbit/s, downlinks {meta.get('downlinks', '?')}. Times from the leechers' start; "
           "T* = max(F/u_s, F/min d_i, N*F/(u_s + sum u_i)) (Kumar & Ross 2006).", "",
           "| system | rep | piece | T* s | max s | p50/T* | p99/T* | max/T* | max ≤ 1.20 T* | ours/aria2 (max) | ≤ 0.8 | "
           "uplink use (middle 80%) | CPU s | CPU share | machine busy | result |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f2 = lambda v, fmt: "–" if v is None else fmt.format(v)
    for r in runs:
        if "t_star_s" not in r:  # a run that failed before its transfer
            out.append(f"| {r['system']} | {r['rep']} |" + " – |" * 13 + f" FAILED: {r.get('error', '?')} |")
            continue
        ratio = goal2 = goal1 = "–"
        if r["system"] == "ours":
            goal1 = verdict(r["ok"] and r["max_over_t_star"] <= GOAL_T_STAR) if r["ok"] else "FAIL (run failed)"
            other = next((x for x in runs if x["system"] == "aria2" and x["rep"] == r["rep"]), None)
            if other is not None:
                if r["ok"] and other["ok"]:
                    q = r["max_s"] / other["max_s"]
                    ratio, goal2 = f"{q:.2f}", verdict(q <= GOAL_VS_ARIA2)
                else:
                    goal2 = "FAIL (no successful pair)"
        pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
        label = r["system"] + (" (leechers seed on)" if r["system"] == "ours" and r.get("leechers_seed_on") else "")
        out.append("| {} | {} | {} KiB | {:.2f} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1f} | {} | {} | {} |".format(
            label, r["rep"], r["piece_kib"], r["t_star_s"], f2(r.get("max_s"), "{:.2f}"),
            f2(r.get("p50_over_t_star"), "{:.3f}"), f2(r.get("p99_over_t_star"), "{:.3f}"),
            f2(r.get("max_over_t_star"), "{:.3f}"), goal1, ratio, goal2, pct(r.get("uplink_use")),
            r["cpu_total_s"], pct(r.get("cpu_share")), pct(r.get("machine_busy_share")),
            "ok" if r["ok"] else "FAILED"))
    for r in runs:
        if r["system"] != "ours" or "t_star_s" not in r:
            continue
        out.append("")
        if not r["ok"]:
            out.append(f"Goals, rep {r['rep']}: FAIL (ours' run failed)")
            continue
        out.append(f"Goal, rep {r['rep']}: ours' max <= {GOAL_T_STAR} T*: {r['max_s']:.2f} s = {r['max_over_t_star']:.3f} T* "
                   f"-> {verdict(r['max_over_t_star'] <= GOAL_T_STAR)}")
        other = next((x for x in runs if x["system"] == "aria2" and x["rep"] == r["rep"]), None)
        if other is not None and other["ok"]:
            q = r["max_s"] / other["max_s"]
            out.append(f"Goal, rep {r['rep']}: ours' max <= {GOAL_VS_ARIA2} x aria2's: {r['max_s']:.2f} / "
                       f"{other['max_s']:.2f} s = {q:.2f} -> {verdict(q <= GOAL_VS_ARIA2)}")
        elif other is not None:
            out.append(f"Goal, rep {r['rep']}: ours' max <= {GOAL_VS_ARIA2} x aria2's: FAIL (aria2's run failed)")
    out += ["", "Uplink use: bytes sent by the seeder and all leechers over the middle 80% of the transfer "
            "(frames, as tbf counts them) / (sum of their uplink caps x that time).",
            "CPU s: user + system seconds of the system's processes (ours: 3 tracker nodes, seeder, leechers; "
            "aria2: opentracker, seeder, leechers) from the leechers' start to the last completion; CPU share: that / "
            "(wall x CPUs); machine busy: the whole machine over the same time (/proc/stat)."]
    if meta.get("uptime"):
        out.append(f"Machine before the runs: {meta['uptime'].strip()} ({meta.get('cpus', '?')} CPUs).")
    return "\n".join(out)


cmd = sys.argv[1]
if cmd == "sample":
    sample(sys.argv[2])
elif cmd == "report":
    report(sys.argv[2], sys.argv[3:])
elif cmd == "table":
    print(table(sys.argv[2]))
else:
    sys.exit(f"unknown helper command {cmd}")
EOF
P() { python3 -c "$PY" "$@"; }

# ---------------------------------------------------------------- the network ------------------
NSP=btcap             # prefix of every namespace this script makes
HUB=$NSP-hub
TRK=$NSP-trk
SEEDNS=$NSP-s
OT_ADDR=10.77.0.10    # opentracker
TR_ADDRS=(10.77.0.11 10.77.0.12 10.77.0.13)
SEED_ADDR=10.77.1.1
leech_ns() { echo "$NSP-l$1"; }
leech_addr() { echo "10.77.2.$1"; }
PORT=6881             # every peer's listening port (each has its own address)
TPORT=6969            # opentracker

# Leecher I's uplink in Mbit/s.
leech_mbit() {
  awk -v a="$LEECH_MIN" -v b="$LEECH_MAX" -v i="$1" -v n="$N" \
    'BEGIN{ printf "%.6g", (n > 1) ? a + (b - a) * (i - 1) / (n - 1) : (a + b) / 2 }'
}

# cap NS DEV MBIT: a tbf qdisc on DEV's egress in NS at MBIT Mbit/s.
cap() {
  local kbit burst
  kbit=$(awk -v m="$3" 'BEGIN{printf "%d", m * 1000 + 0.5}')
  burst=$(awk -v k="$kbit" 'BEGIN{b = k * 1000 / 8 / 100; printf "%d", (b < 32768) ? 32768 : b}')
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "${kbit}kbit" burst "$burst" latency "${LATENCY_MS}ms"
}

# attach NS PORT ADDR...: a veth pair from the bridge (end PORT, in the hub) to NS (end eth0)
# holding ADDRs, both ends up, IPv6 off, no routes but the /16 one.
attach() {
  local ns=$1 port=$2
  shift 2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$HUB" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$HUB" link set "$port" master br0 up
  for addr in "$@"; do ip -n "$ns" addr add "$addr/16" dev eth0; done
  ip -n "$ns" link set eth0 up
}

# Processes still in our namespaces (leftovers, or ones that escaped stop_pids): TERM, then
# KILL, by PID.
kill_in_namespaces() {
  local ns pids
  for ns in $(ip netns list | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] || continue
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
  done
  for ns in $(ip netns list | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
    for _ in $(seq 30); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
  done
}

# Deletes every namespace named $NSP-* (with them go their veths, the bridge and the qdiscs).
net_down() {
  local ns
  kill_in_namespaces
  for ns in $(ip netns list | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
    ip netns del "$ns" 2>/dev/null || echo "swarm-capped: could not delete namespace $ns" >&2
  done
}

net_up() {
  ip netns add "$HUB"
  ip -n "$HUB" link set lo up
  ip netns exec "$HUB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$HUB" link add br0 type bridge
  ip -n "$HUB" link set br0 up
  attach "$TRK" p-t "$OT_ADDR" "${TR_ADDRS[@]}"
  attach "$SEEDNS" p-s "$SEED_ADDR"
  cap "$SEEDNS" eth0 "$SEED_MBIT"
  [[ $DOWN_FACTOR == 0 ]] || cap "$HUB" p-s "$(awk -v m="$SEED_MBIT" -v f="$DOWN_FACTOR" 'BEGIN{print m * f}')"
  local i m
  for i in $(seq "$N"); do
    m=$(leech_mbit "$i")
    attach "$(leech_ns "$i")" "p-l$i" "$(leech_addr "$i")"
    cap "$(leech_ns "$i")" eth0 "$m"
    [[ $DOWN_FACTOR == 0 ]] || cap "$HUB" "p-l$i" "$(awk -v m="$m" -v f="$DOWN_FACTOR" 'BEGIN{print m * f}')"
  done
  # The bridge forwards: a TCP connection from the seeder to a closed port of a tracker
  # address is refused (rather than timing out).
  wait_for "the bridge to forward" 10 reachable "$SEEDNS" "${TR_ADDRS[0]}" ||
    die "the bridge does not forward: $SEEDNS cannot reach ${TR_ADDRS[0]}"
}
reachable() {  # reachable NS ADDR
  local answer
  answer=$(ip netns exec "$1" timeout 2 bash -c ": </dev/tcp/$2/9" 2>&1 || true)
  [[ $answer == *refused* ]]
}

# ---------------------------------------------------------------- processes --------------------
# PIDS holds "PID" (stopped with SIGINT, which bt, bt-tracker and aria2c handle) or "PID:SIGNAL".
PIDS=()
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

WORK=
cleanup() {
  set +e
  stop_pids
  net_down
  wait 2>/dev/null
  if [[ -n $WORK ]]; then
    if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [[ $SECONDS -lt $deadline ]] || { echo "timed out after ${secs}s waiting for $what" >&2; return 1; }
    sleep 0.2
  done
}

# all_done DIR N: whether DIR holds N files done.l* (no process forked).
all_done() {
  local files=()
  shopt -s nullglob
  files=("$1"/done.l*)
  shopt -u nullglob
  [[ ${#files[@]} -ge $2 ]]
}

# CPU seconds (user + system) the running process PID has used, "null" once it is gone.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo null; }
# cpu_delta NOW BEFORE: NOW - BEFORE, "null" if either is.
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN{if (a == "null" || b == "null") print "null"; else printf "%.2f", a - b}'; }
# The sum of cpu_s over PIDs.
cpu_sum() { local p; for p in "$@"; do cpu_s "$p"; echo; done | awk '$1 != "null" {s += $1} END {printf "%.2f", s}'; }
# The machine's busy and total CPU ticks (user nice system idle iowait irq softirq steal;
# guest time is already in user).
stat_ticks() { awk '/^cpu /{t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
busy_share() {  # busy_share "BUSY0 TOTAL0" "BUSY1 TOTAL1"
  awk -v a="$1" -v b="$2" 'BEGIN{split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.4f", (t > 0) ? (y[1] - x[1]) / t : 0}'
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# compare_copies DIR: cmp of each leecher's copy DIR/lI/<name> with the payload.
compare_copies() {
  local dir=$1 name ok=true i
  name=$(basename "$PAYLOAD")
  for i in $(seq "$N"); do
    if ! cmp -s "$PAYLOAD" "$dir/l$i/$name"; then
      echo "leecher l$i: copy missing or different from the original" >&2
      ok=false
    fi
  done
  echo $ok
}

# show_failure DIR: the tails of the logs of a failed step.
show_failure() {
  local f
  for f in "$1"/*.err "$1"/*.out "$1"/*.log; do
    [[ -s $f ]] || continue
    echo "--- $(basename "$f") (last lines)" >&2
    tail -n 5 "$f" | tr '\r' '\n' | tail -n 5 >&2
  done
}

# fail_setup SYSTEM REP DIR WHAT: records a run that never reached its transfer.
fail_setup() {
  log "  $1: FAILED: $4"
  show_failure "$3"
  stop_pids
  FAILED=1
  U record "$RESULTS" system="$1" rep="$2" ok=false error="$4"
}

# start_sampler DIR: the hub's counters, once a second, into DIR/net.jsonl.
start_sampler() {
  ip netns exec "$HUB" python3 -c "$PY" sample "$1/net.jsonl" 2>"$1/sampler.err" &
  PIDS+=("$!:TERM")
  wait_for "the first counter sample" 10 test -s "$1/net.jsonl"
}

# finish_run SYSTEM REP DIR T0 T_SEEN TICKS0 TICKS1 CPU_JSON SEED_ON: compares the copies and
# reports; SEED_ON says whether the leechers seed on after completing.
finish_run() {
  local system=$1 rep=$2 dir=$3 t0=$4 t_seen=$5 ticks0=$6 ticks1=$7 cpu=$8 seed_on=$9 identical i leech=()
  identical=$(compare_copies "$dir")
  for i in $(seq "$N"); do leech+=("$(leech_mbit "$i")"); done
  P report "$RESULTS" system="$system" rep="$rep" run_dir="$dir" samples="$dir/net.jsonl" n="$N" t0="$t0" \
    file_bytes="$((SIZE_MIB * 1048576))" piece_kib="$PIECE" leech_mbit="[$(IFS=,; echo "${leech[*]}")]" \
    seed_mbit="$SEED_MBIT" down_factor="$DOWN_FACTOR" seed_on="$seed_on" identical="$identical" cpu_s="$cpu" \
    cpu_wall_s="$(elapsed "$t0" "$t_seen")" machine_busy_share="$(busy_share "$ticks0" "$ticks1")"
  if [[ $identical != true ]] || ! all_done "$dir" "$N" || grep -qv '^0 ' "$dir"/done.l*; then
    show_failure "$dir"
    FAILED=1
  fi
  for i in $(seq "$N"); do rm -f "$dir/l$i/$(basename "$PAYLOAD")"; done
}

# ---------------------------------------------------------------- ours -------------------------
# stamp_complete DONE: copies bt's output lines; on the "complete:" line writes "0 <time>"
# to DONE.
stamp_complete() {
  local line
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [[ $line == *": complete: "* && ! -e $1 ]]; then
      echo "0 $EPOCHREALTIME" >"$1.tmp" && mv "$1.tmp" "$1"
    fi
  done
}

# stop_seeding_leechers: SIGINT to the bt process in each leecher namespace (bt then leaves
# the swarm and exits); after 10 s, SIGKILL to whatever is left in those namespaces.
stop_seeding_leechers() {
  local i p left pids
  for i in $(seq "$N"); do
    for p in $(ip netns pids "$(leech_ns "$i")" 2>/dev/null); do
      if [[ $(cat "/proc/$p/comm" 2>/dev/null) == bt ]]; then kill -INT "$p" 2>/dev/null || true; fi
    done
  done
  for _ in $(seq 50); do
    left=0
    for i in $(seq "$N"); do
      if [[ -n $(ip netns pids "$(leech_ns "$i")" 2>/dev/null) ]]; then left=1; break; fi
    done
    [[ $left == 1 ]] || return 0
    sleep 0.2
  done
  for i in $(seq "$N"); do
    pids=$(ip netns pids "$(leech_ns "$i")" 2>/dev/null || true)
    # shellcheck disable=SC2086
    if [[ -n $pids ]]; then kill -KILL $pids 2>/dev/null || true; fi
  done
}

# start_trackers DIR: certificates, three `bt-tracker run` nodes in $TRK, a user and a token.
# Sets CA, TOKEN, TRACKER_ARGS (for bt) and TRACKER_PIDS.
start_trackers() {
  local R=$1 i members=() admin=()
  "$BT_TRACKER" certs ca --dir "$R/certs" >"$R/certs.out" 2>"$R/certs.err" || return 1
  CA=$(sed -n 's/^CA fingerprint: //p' "$R/certs.out")
  [[ -n $CA ]] || return 1
  for i in 1 2 3; do
    "$BT_TRACKER" certs node "node$i" --dir "$R/certs" >>"$R/certs.out" 2>>"$R/certs.err" || return 1
    members+=(--member "$i=node$i,${TR_ADDRS[i - 1]}:7000,${TR_ADDRS[i - 1]}:7100")
    admin+=(--tracker "${TR_ADDRS[i - 1]}:7000")
  done
  TRACKER_ARGS=() TRACKER_PIDS=()
  for i in 1 2 3; do
    RUST_LOG=warn ip netns exec "$TRK" "$BT_TRACKER" run --id "$i" --data "$R/data$i" --certs "$R/certs" \
      --http "${TR_ADDRS[i - 1]}:8080" "${members[@]}" >"$R/node$i.out" 2>"$R/node$i.err" &
    PIDS+=("$!") TRACKER_PIDS+=("$!")
    TRACKER_ARGS+=(--tracker "${TR_ADDRS[i - 1]}:7100")
  done
  for i in 1 2 3; do
    wait_for "tracker node $i" 60 grep -qs 'ready' "$R/node$i.out" || return 1
  done
  # The operator commands need an elected leader: retried until one answers.
  local deadline=$((SECONDS + 60))
  until BT_TRACKER_PASSWORD=bench-password ip netns exec "$TRK" "$BT_TRACKER" user add bench \
      --certs "$R/certs" "${admin[@]}" >"$R/user.out" 2>"$R/user.err"; do
    [[ $SECONDS -lt $deadline ]] || return 1
    sleep 0.5
  done
  TOKEN=$(ip netns exec "$TRK" "$BT_TRACKER" token create bench --certs "$R/certs" "${admin[@]}" 2>"$R/token.err") || return 1
  [[ -n $TOKEN ]]
}

run_ours() {
  local rep=$1 R=$WORK/ours-$rep
  rm -rf "$R"
  mkdir -p "$R"
  if ! start_trackers "$R"; then fail_setup ours "$rep" "$R" "tracker cluster not ready"; return; fi

  local seed_pid
  if [[ $FORCE_PIECE == 1 ]]; then
    # `bt seed` picks its own piece size: make and publish the torrent, then let `bt get`
    # verify the complete file in place and seed it.
    if ! ip netns exec "$SEEDNS" "$BT" create "$PAYLOAD" -o "$R/payload.torrent" "${TRACKER_ARGS[@]}" --ca "$CA" \
           --piece-kib "$PIECE" >"$R/create.out" 2>"$R/create.err" ||
       ! BT_TOKEN=$TOKEN ip netns exec "$SEEDNS" "$BT" publish "$R/payload.torrent" >"$R/publish.out" 2>"$R/publish.err"; then
      fail_setup ours "$rep" "$R" "bt create/publish failed"
      return
    fi
    ip netns exec "$SEEDNS" "$BT" --state "$R/seed-state" get "$R/payload.torrent" -o "$(dirname "$PAYLOAD")" \
      --listen "$SEED_ADDR:$PORT" >"$R/seed.out" 2>"$R/seed.err" &
    seed_pid=$!
    seed_ready() { ip netns exec "$SEEDNS" "$BT" --state "$R/seed-state" status 2>/dev/null | grep -q '100.0%.*Seeding'; }
  else
    BT_TOKEN=$TOKEN ip netns exec "$SEEDNS" "$BT" --state "$R/seed-state" seed "$PAYLOAD" "${TRACKER_ARGS[@]}" \
      --ca "$CA" -o "$R/payload.torrent" --listen "$SEED_ADDR:$PORT" >"$R/seed.out" 2>"$R/seed.err" &
    seed_pid=$!
    seed_ready() { grep -qs '^seeding ' "$R/seed.out"; }
  fi
  PIDS+=("$seed_pid")
  if ! wait_for "the seeder" "$TIMEOUT" seed_ready; then fail_setup ours "$rep" "$R" "seeder not ready"; return; fi
  start_sampler "$R" || { fail_setup ours "$rep" "$R" "no counter samples"; return; }

  local t0 ticks0 cpu0_seed cpu0_trk i
  ticks0=$(stat_ticks); cpu0_seed=$(cpu_s "$seed_pid"); cpu0_trk=$(cpu_sum "${TRACKER_PIDS[@]}")
  t0=$EPOCHREALTIME
  for i in $(seq "$N"); do
    mkdir -p "$R/l$i"
    (
      set +e
      leecher=(ip netns exec "$(leech_ns "$i")" /usr/bin/time -f 'cpu %U %S' -o "$R/l$i.time"
        timeout -k 5 -s INT "$TIMEOUT" "$BT" --state "$R/l$i.state" get "$R/payload.torrent" -o "$R/l$i"
        --listen "$(leech_addr "$i"):$PORT")
      if [[ $OURS_KEEP_SEEDING == 1 ]]; then
        "${leecher[@]}" 2>"$R/l$i.err" | stamp_complete "$R/done.l$i" >"$R/l$i.out"
        rc=${PIPESTATUS[0]}
      else
        "${leecher[@]}" --no-seed >"$R/l$i.out" 2>"$R/l$i.err"
        rc=$?
      fi
      # The exit, unless stamp_complete saw it complete before.
      [[ -e $R/done.l$i ]] || { echo "$rc $EPOCHREALTIME" >"$R/tmp.done.l$i" && mv "$R/tmp.done.l$i" "$R/done.l$i"; }
    ) &
  done
  wait_for "the leechers" "$((TIMEOUT + 10))" all_done "$R" "$N" || log "  ours: not every leecher finished within ${TIMEOUT}s"
  local t_seen=$EPOCHREALTIME ticks1 cpu_seed cpu_trk
  ticks1=$(stat_ticks)
  cpu_seed=$(cpu_delta "$(cpu_s "$seed_pid")" "$cpu0_seed")
  cpu_trk=$(cpu_delta "$(cpu_sum "${TRACKER_PIDS[@]}")" "$cpu0_trk")
  if [[ $OURS_KEEP_SEEDING == 1 ]]; then stop_seeding_leechers; fi
  stop_pids
  wait  # the leechers' subshells
  local cpu_leech
  cpu_leech=$(cat "$R"/l*.time 2>/dev/null | awk '/^cpu /{s += $2 + $3} END {printf "%.2f", s}')
  finish_run ours "$rep" "$R" "$t0" "$t_seen" "$ticks0" "$ticks1" \
    "{\"trackers\":$cpu_trk,\"seeder\":$cpu_seed,\"leechers\":$cpu_leech}" \
    "$([[ $OURS_KEEP_SEEDING == 1 ]] && echo true || echo false)"
}

# ---------------------------------------------------------------- aria2 ------------------------
ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
  --disable-ipv6=true --max-overall-upload-limit=0 --max-upload-limit=0
  --max-overall-download-limit=0 --max-download-limit=0 --bt-max-peers=0
  --bt-request-peer-speed-limit=1000M --bt-tracker-interval=5 --seed-ratio=0.0
  --file-allocation=falloc --auto-file-renaming=false --allow-overwrite=true
  --summary-interval=0 --console-log-level=warn --listen-port="$PORT" --stop="$TIMEOUT")

run_aria2() {
  local rep=$1 R=$WORK/aria2-$rep
  rm -rf "$R"
  mkdir -p "$R/tracker"
  U infohash "$TORRENT" >"$R/tracker/whitelist"  # Debian's opentracker only serves whitelisted torrents
  chmod 755 "$R" "$R/tracker"
  chmod 644 "$R/tracker/whitelist"
  # Bound to every address of $TRK: the peers announce to $OT_ADDR, the scrape below uses lo.
  (cd "$R/tracker" && exec ip netns exec "$TRK" opentracker -p "$TPORT" -P "$TPORT" -d "$R/tracker" -w whitelist \
    >"$R/tracker.log" 2>&1) &
  local ot_pid=$!
  PIDS+=("$ot_pid:TERM")
  ip netns exec "$SEEDNS" aria2c "${ARIA_COMMON[@]}" --dir="$(dirname "$PAYLOAD")" --bt-seed-unverified=true \
    --log="$R/seed.log" --log-level=notice "$TORRENT" >"$R/seed.out" 2>&1 &
  local seed_pid=$!
  PIDS+=("$seed_pid")
  seeded() { [[ $(ip netns exec "$TRK" python3 "$UTIL" scrape "http://127.0.0.1:$TPORT" "$TORRENT" 2>/dev/null | cut -d' ' -f1) == 1 ]]; }
  if ! wait_for "the aria2 seeder to register" 60 seeded; then fail_setup aria2 "$rep" "$R" "seeder never registered"; return; fi
  start_sampler "$R" || { fail_setup aria2 "$rep" "$R" "no counter samples"; return; }

  local t0 ticks0 cpu0_seed cpu0_ot i lpids=()
  ticks0=$(stat_ticks); cpu0_seed=$(cpu_s "$seed_pid"); cpu0_ot=$(cpu_s "$ot_pid")
  t0=$EPOCHREALTIME
  for i in $(seq "$N"); do
    mkdir -p "$R/l$i"
    printf '#!/bin/sh\necho "0 $(date +%%s.%%N)" > %s/done.l%s\n' "$R" "$i" >"$R/hook$i.sh"
    chmod +x "$R/hook$i.sh"
    ip netns exec "$(leech_ns "$i")" aria2c "${ARIA_COMMON[@]}" --dir="$R/l$i" --on-bt-download-complete="$R/hook$i.sh" \
      --log="$R/l$i.log" --log-level=notice "$TORRENT" >"$R/l$i.out" 2>&1 &
    PIDS+=("$!") lpids+=("$!")
  done
  wait_for "the leechers" "$TIMEOUT" all_done "$R" "$N" || log "  aria2: not every leecher finished within ${TIMEOUT}s"
  local t_seen=$EPOCHREALTIME ticks1 cpu_seed cpu_ot cpu_leech
  ticks1=$(stat_ticks)
  cpu_seed=$(cpu_delta "$(cpu_s "$seed_pid")" "$cpu0_seed")
  cpu_ot=$(cpu_delta "$(cpu_s "$ot_pid")" "$cpu0_ot")
  cpu_leech=$(cpu_sum "${lpids[@]}")
  stop_pids
  finish_run aria2 "$rep" "$R" "$t0" "$t_seen" "$ticks0" "$ticks1" \
    "{\"opentracker\":$cpu_ot,\"seeder\":$cpu_seed,\"leechers\":$cpu_leech}" true
}

# ---------------------------------------------------------------- main -------------------------
# The piece length `bt seed` picks for a file of $1 bytes: about 2,000 pieces, a power of two
# from 256 KiB to 4 MiB.
auto_piece_kib() {
  local target=$(($1 / 2048)) p=1
  [[ $target -ge 1 ]] || target=1
  while [[ $p -lt $target ]]; do p=$((p * 2)); done
  [[ $p -ge $((256 << 10)) ]] || p=$((256 << 10))
  [[ $p -le $((4 << 20)) ]] || p=$((4 << 20))
  echo $((p >> 10))
}

# children_cpu FILE: the CPU seconds (user + system) of this shell's finished children in
# FILE, the output of `times` (getrusage; it must run in this shell, not in a subshell).
children_cpu() {
  awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, t, "m"); sub("s", "", t[2]); s += t[1] * 60 + t[2]}; printf "%.2f", s}' "$1"
}
WORK=$(mktemp -d /tmp/swarm-capped.XXXXXX)
chmod 755 "$WORK"
times >"$WORK/times"
cpu_start=$(children_cpu "$WORK/times")
start_real=$EPOCHREALTIME

log "removing leftovers of earlier runs, if any"
net_down
log "making the network: $N leechers at $LEECH_MBIT Mbit/s up, seeder $SEED_MBIT Mbit/s, downlinks $DOWNLINKS"
net_up

mkdir -p "$ROOT/bench/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/results/swarm-capped-$STAMP.jsonl
mkdir -p "$WORK/data"
chmod 755 "$WORK/data"
PAYLOAD=$WORK/data/payload.bin
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$PAYLOAD"
chmod 644 "$PAYLOAD"
if [[ -n $PIECE_KIB ]]; then PIECE=$PIECE_KIB FORCE_PIECE=1; else PIECE=$(auto_piece_kib $((SIZE_MIB * 1048576))) FORCE_PIECE=0; fi
TORRENT=$WORK/data.torrent
if has aria2; then
  plog=0
  while [[ $((1 << plog)) -lt $((PIECE * 1024)) ]]; do plog=$((plog + 1)); done
  mktorrent -l "$plog" -a "http://$OT_ADDR:$TPORT/announce" -o "$TORRENT" "$PAYLOAD" >/dev/null ||
    die "mktorrent failed"
fi
U record "$RESULTS" meta=true date_utc="$(date -u +%FT%TZ)" commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  dirty="$([[ -n $(git status --porcelain -- peer tracker transport certs paxos 2>/dev/null) ]] && echo true || echo false)" \
  aria2="$(aria2c --version | head -1)" cpus="$(nproc)" n_leechers="$N" size_mib="$SIZE_MIB" piece_kib="$PIECE" \
  leech_mbit="$LEECH_MBIT" seed_mbit="$SEED_MBIT" \
  downlinks="$DOWNLINKS" \
  latency_ms="$LATENCY_MS" reps="$REPS" ours_leechers_seed_on="$OURS_KEEP_SEEDING" uptime="$(uptime)" \
  bt_built="$(if has ours; then date -u -r "$BT" +%FT%TZ; else echo null; fi)"
log "machine: $(nproc) CPUs, $(uptime)"
log "== $N leechers x $SIZE_MIB MiB, piece size $PIECE KiB for both systems"

FAILED=0
for rep in $(seq "$REPS"); do
  order="ours aria2"
  [[ $((rep % 2)) == 0 ]] && order="aria2 ours"
  for sys in $order; do
    has "$sys" || continue
    log "rep $rep/$REPS: $sys"
    "run_$sys" "$rep"
  done
done

times >"$WORK/times"
cpu_all=$(cpu_delta "$(children_cpu "$WORK/times")" "$cpu_start")
wall_all=$(elapsed "$start_real" "$EPOCHREALTIME")
share_all=$(awk -v c="$cpu_all" -v w="$wall_all" -v n="$(nproc)" 'BEGIN{printf "%.1f", 100 * c / (w * n)}')
U record "$RESULTS" summary=true cpu_s="$cpu_all" wall_s="$wall_all" cpu_share="$(awk -v s="$share_all" 'BEGIN{print s / 100}')"
echo
P table "$RESULTS" | tee "${RESULTS%.jsonl}.md"
line="CPU of everything this script ran after the build: $cpu_all s over $wall_all s on $(nproc) CPUs = $share_all% of the machine ($(
  awk -v s="$share_all" 'BEGIN{print (s < 50) ? "under" : "NOT under"}') half)."
echo "$line" | tee -a "${RESULTS%.jsonl}.md"
echo
echo "raw results: $RESULTS"
exit "$FAILED"
