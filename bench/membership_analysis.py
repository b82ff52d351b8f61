#!/usr/bin/env python3
"""Analysis for bench/membership-vs-etcd.sh ("replace one node of a 3-node cluster under load").

System-independent: it only reads the one JSON line a timeline load tool prints, e.g.
`etcdload timeline`:
    {"buckets": [acks per bucket...], "bucket_ms": 100, "longest_gap_ms": ..,
     "longest_gap_from_ms": .., "errors": .., "events": [{"t_ms": .., "what": ".."}, ...]}
Events are the script's marks in ms since the load started; the first word of "what" is the
step. Two steps are required: "kill" (the node is SIGKILLed) and "done" (the replacement is
complete: the new node is healthy and the dead one is out of the membership).

    membership_analysis.py run SYSTEM REP < timeline.json    one JSON result line on stdout
    membership_analysis.py summary RESULTS.jsonl             table + PASS/FAIL per run

Definitions:
  baseline       median acks per bucket over the buckets wholly before the kill, skipping the
                 first second (connections and the first batches warm up there)
  low bucket     a bucket at or after the kill with fewer acks than 90 % of the baseline
  drop total     number of low buckets x bucket width
  drop span      first low bucket's start to last low bucket's end
  worst          the lowest bucket at or after the kill, in % of the baseline
  pre-kill noise share of the baseline buckets that are low by the same rule: how often the
                 steady state alone dips below 90 % (100 ms buckets are short)
  @500ms         for information, drop span and pre-kill noise again over 500 ms blocks
                 (aligned on the kill's bucket), which smooth out most of that noise
  longest gap    longest interval, anywhere in the run, in which no put was acknowledged
  replacement    "kill" mark to "done" mark
Goals: every low bucket falls within one window of at most 2 s (drop span <= 2000 ms), and
the longest gap is at most 500 ms.
"""

import json
import statistics
import sys

LOW_FRACTION = 0.90  # a bucket below 90 % of the baseline counts as a drop
MAX_SPAN_MS = 2000  # goal: all drops within one window this long
MAX_GAP_MS = 500  # goal: never longer than this without an acknowledged put
SKIP_MS = 1000  # start of the run left out of the baseline
PROFILE_MS = 500  # resolution of the printed throughput profile


def step(event):
    return (event.get("what") or "").split(" ", 1)[0]


def analyse(d, system, rep):
    b = d["buckets"]
    bm = d["bucket_ms"]
    events = d.get("events") or []
    res = {
        "analysis": True,
        "system": system,
        "rep": rep,
        "clients": d.get("clients"),
        "bucket_ms": bm,
        "writes": d.get("writes"),
        "errors": d.get("errors"),
        "longest_gap_ms": d.get("longest_gap_ms"),
        "longest_gap_from_ms": d.get("longest_gap_from_ms"),
    }
    kill = next((e["t_ms"] for e in events if step(e) == "kill"), None)
    if kill is None:
        res["error"] = "no 'kill' event in the load tool's output"
        return res
    done = next((e["t_ms"] for e in events if step(e) == "done" and e["t_ms"] >= kill), None)
    res["kill_ms"] = kill
    res["replacement_ms"] = None if done is None else done - kill
    res["steps"] = [{"after_kill_ms": e["t_ms"] - kill, "what": e["what"]} for e in events]

    kb = max(0, min(len(b), kill // bm))  # bucket holding the kill: the first one "after" it
    pre = b[SKIP_MS // bm : kb]
    if len(pre) < 5:
        res["error"] = f"only {len(pre)} bucket(s) before the kill to take a baseline from"
        return res
    base = statistics.median(pre)
    if base <= 0:
        res["error"] = "no puts acknowledged before the kill"
        return res
    thr = LOW_FRACTION * base
    low = [i for i in range(kb, len(b)) if b[i] < thr]
    post = b[kb:]
    res.update(
        {
            "baseline_per_bucket": base,
            "baseline_per_s": base * 1000 / bm,
            "pre_kill_low_pct": 100 * sum(1 for x in pre if x < thr) / len(pre),
            "drop_total_ms": len(low) * bm,
            "drop_span_ms": (low[-1] - low[0] + 1) * bm if low else 0,
            "drop_from_ms": low[0] * bm - kill if low else None,
            "drop_to_ms": (low[-1] + 1) * bm - kill if low else None,
            "worst_pct": 100 * min(post) / base if post else None,
            "worst_at_ms": (kb + post.index(min(post))) * bm - kill if post else None,
            "post_kill_s": len(post) * bm / 1000,
        }
    )
    # The same rule over PROFILE_MS blocks, for information: on a busy machine single 100 ms
    # buckets dip below 90 % often enough to hide what the replacement itself costs.
    per = PROFILE_MS // bm
    low_blocks = [i for i in range(kb, len(b) - per + 1, per) if sum(b[i : i + per]) < per * thr]
    pre_blocks = list(range(kb - per, SKIP_MS // bm - 1, -per))
    res["drop_span_500ms"] = (low_blocks[-1] - low_blocks[0] + per) * bm if low_blocks else 0
    res["pre_kill_low_pct_500ms"] = (
        100 * sum(1 for i in pre_blocks if sum(b[i : i + per]) < per * thr) / len(pre_blocks)
        if pre_blocks
        else None
    )
    # Throughput in PROFILE_MS steps from 1 s before the kill to the end, % of baseline.
    first = max(0, kb - 1000 // bm)
    prof = []
    for i in range(first, len(b) - per + 1, per):
        prof.append(round(100 * sum(b[i : i + per]) / (per * base)))
    res["profile_from_ms"] = first * bm - kill
    res["profile_step_ms"] = per * bm
    res["profile_pct"] = prof
    res["pass_drop"] = res["drop_span_ms"] <= MAX_SPAN_MS
    gap = d.get("longest_gap_ms")
    res["pass_gap"] = gap is not None and gap <= MAX_GAP_MS
    return res


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}{suffix}"


def summary(path):
    runs, failures = [], []
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        d = json.loads(line)
        if d.get("analysis"):
            runs.append(d)
        elif d.get("error") and not d.get("meta"):
            failures.append(d)
    print()
    print(f"results: {path}")
    print("replace one node of 3 under load (times in ms after the kill unless noted)")
    head = ["system", "rep", "baseline/s", "pre-kill<90%", "drop total", "drop span",
            "worst bucket", "longest gap", "gap at", "replacement", "errors",
            "pre-kill<90%@500ms", "drop span@500ms"]
    rows = []
    for r in runs:
        if r.get("error"):
            rows.append([r["system"], str(r["rep"]), "error: " + r["error"]] + [""] * (len(head) - 3))
            continue
        span = r["drop_span_ms"]
        span_s = fmt(span) if not span else f"{span:,} ({r['drop_from_ms']:+}..{r['drop_to_ms']:+})"
        gap_at = None if r.get("longest_gap_from_ms") is None else r["longest_gap_from_ms"] - r["kill_ms"]
        rows.append([
            r["system"], str(r["rep"]), fmt(r["baseline_per_s"]), fmt(r["pre_kill_low_pct"], 0, " %"),
            fmt(r["drop_total_ms"]), span_s, f"{fmt(r['worst_pct'], 0, ' %')} ({r['worst_at_ms']:+})",
            fmt(r["longest_gap_ms"], 1), "-" if gap_at is None else f"{gap_at:+,.0f}",
            fmt(r["replacement_ms"]), fmt(r["errors"]),
            fmt(r["pre_kill_low_pct_500ms"], 0, " %"), fmt(r["drop_span_500ms"]),
        ])
    if rows:
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        for row in [head, ["-" * w for w in widths]] + rows:
            print("  ".join(x.rjust(w) for x, w in zip(row, widths)).rstrip())
    for r in runs:
        if r.get("error"):
            continue
        print()
        print(f"{r['system']} rep {r['rep']}: steps (ms after the kill)")
        for s in r["steps"]:
            print(f"  {s['after_kill_ms']:+8,}  {s['what']}")
        print(f"  throughput per {r['profile_step_ms']} ms, % of baseline, from {r['profile_from_ms']:+} ms:")
        print("   " + " ".join(str(p) for p in r["profile_pct"]))
    print()
    by_sys = {}
    for r in runs:
        by_sys.setdefault(r["system"], []).append(r)
    for sysname, rs in by_sys.items():
        for r in rs:
            if r.get("error"):
                print(f"FAIL: {sysname} rep {r['rep']}: not analysable ({r['error']})")
                continue
            print(f"{'PASS' if r['pass_drop'] else 'FAIL'}: {sysname} rep {r['rep']}: throughput within "
                  f"{100 - 100 * LOW_FRACTION:.0f} % of baseline outside one window of <= {MAX_SPAN_MS} ms "
                  f"(drop span {r['drop_span_ms']:,} ms, {r['drop_total_ms']:,} ms of low buckets)")
            print(f"{'PASS' if r['pass_gap'] else 'FAIL'}: {sysname} rep {r['rep']}: longest write gap <= "
                  f"{MAX_GAP_MS} ms ({fmt(r['longest_gap_ms'], 1)} ms)")
    if failures:
        print()
        print(f"{len(failures)} run(s) failed:")
        for d in failures:
            print(f"  {d.get('system')} rep={d.get('rep')} {d.get('step', '')}: {d.get('error')}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        d = json.loads(sys.stdin.read())
        print(json.dumps(analyse(d, sys.argv[2], int(sys.argv[3]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
