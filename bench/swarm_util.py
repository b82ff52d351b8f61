#!/usr/bin/env python3
"""Helpers for swarm-vs-aria2.sh (loopback only).

  infohash TORRENT              hex BitTorrent v1 info-hash of a bencoded torrent file
  scrape TRACKER_BASE TORRENT   "complete incomplete" counts from a tracker's /scrape
  record FILE KEY=VALUE...      appends one JSON line to FILE (a VALUE that parses as JSON is
                                kept as such, anything else becomes a string)
  table RESULTS.jsonl           the summary table (Markdown) of a results file
"""
import hashlib
import json
import statistics
import sys
import urllib.parse
import urllib.request

# Goals of the issue: our wall time at most this fraction of aria2's, per payload size.
GOALS = {1024: 0.5, 256: 0.3}
# Peak RSS goal for one leecher downloading the big file.
BIG_RSS_GOAL_KIB = 64 * 1024


def bdecode(b, i=0):
    """Decodes one bencoded value at b[i:]; dictionaries also get the byte spans of values."""
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out, spans = {}, {}
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            s = i
            v, i = bdecode(b, i)
            out[k] = v
            spans[k] = (s, i)
        out[b"__spans__"] = spans
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def infohash(path):
    raw = open(path, "rb").read()
    d, _ = bdecode(raw)
    s, e = d[b"__spans__"][b"info"]
    return hashlib.sha1(raw[s:e]).digest()


def scrape(base, torrent):
    h = infohash(torrent)
    url = f"{base}/scrape?info_hash={urllib.parse.quote_from_bytes(h)}"
    if not url.startswith("http://127."):
        raise SystemExit(f"refusing to scrape a non-loopback tracker: {url}")
    raw = urllib.request.urlopen(url, timeout=2).read()
    d, _ = bdecode(raw)
    f = d.get(b"files", {}).get(h, {})
    return f.get(b"complete", 0), f.get(b"incomplete", 0)


def fmt_s(xs):
    if not xs:
        return "–"
    med = statistics.median(xs)
    if len(xs) == 1:
        return f"{med:.2f}"
    return f"{med:.2f} ({min(xs):.2f}–{max(xs):.2f})"


def fmt_mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib else "–"


def cpu_total(run):
    """Seeder + leecher CPU seconds of one run, or None when not recorded."""
    leechers = run.get("leecher_cpu_s")
    seeder = run.get("seeder_cpu_s")
    if not leechers or seeder is None or any(c is None for c in leechers):
        return None
    return seeder + sum(leechers)


def fmt_cpu(values):
    return f"{statistics.median(values):.1f}" if values else "–"


def table(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    meta = next((r for r in runs if r.get("meta")), {})
    runs = [r for r in runs if not r.get("meta")]
    out = []
    n = meta.get("n_leechers", "?")
    sizes = []
    for r in runs:
        if r["system"] in ("ours", "aria2") and r["size_mib"] not in sizes:
            sizes.append(r["size_mib"])
    if sizes:
        out.append(f"1 seeder + {n} leechers on loopback, wall time from the leechers' start until every "
                   f"leecher holds a verified copy; median (min–max) over the reps that succeeded.")
        out.append("")
        out.append("| size | piece | ours s | aria2 s | ours/aria2 | goal | result | our leecher peak RSS | aria2 leecher peak RSS | CPU s ours | CPU s aria2 | failed runs |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        sel = {s: [r for r in runs if r["system"] == s and r["size_mib"] == size] for s in ("ours", "aria2")}
        good = {s: [r for r in v if r["ok"]] for s, v in sel.items()}
        wall = {s: [r["wall_s"] for r in v] for s, v in good.items()}
        failed = {s: len(sel[s]) - len(good[s]) for s in sel}
        pieces = sorted({r["piece_kib"] for v in sel.values() for r in v if r.get("piece_kib")})
        ratio = None
        if wall["ours"] and wall["aria2"]:
            ratio = statistics.median(wall["ours"]) / statistics.median(wall["aria2"])
        goal = GOALS.get(size)
        if goal is None:
            verdict = "–"
        elif ratio is None:
            verdict = "FAIL (no successful pair)"
        else:
            verdict = "PASS" if ratio <= goal else "FAIL"
        rss = {s: max((max(r["leecher_peak_rss_kib"] or [0]) for r in v), default=0) for s, v in good.items()}
        cpu = {s: [cpu_total(r) for r in v if cpu_total(r) is not None] for s, v in good.items()}
        size_txt = f"{size // 1024} GiB" if size % 1024 == 0 else f"{size} MiB"
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            size_txt, "/".join(f"{p} KiB" for p in pieces), fmt_s(wall["ours"]), fmt_s(wall["aria2"]),
            f"{ratio:.2f}" if ratio is not None else "–", f"≤ {goal}" if goal else "–", verdict,
            fmt_mib(rss["ours"]), fmt_mib(rss["aria2"]), fmt_cpu(cpu["ours"]), fmt_cpu(cpu["aria2"]),
            f"ours {failed['ours']}, aria2 {failed['aria2']}"))
    big = [r for r in runs if r["system"] == "ours-big"]
    if big:
        if out:
            out.append("")
        out.append("| big file, 1 seeder → 1 leecher (ours) | wall s | leecher peak RSS | goal | result |")
        out.append("|---|---|---|---|---|")
        for r in big:
            if not r.get("wall_s"):
                out.append(f"| {r['size_mib']} MiB | – | – | < 64 MiB | FAIL ({r.get('error', 'run failed')}) |")
                continue
            rss = max(r.get("leecher_peak_rss_kib") or [0])
            ok = r["ok"] and 0 < rss < BIG_RSS_GOAL_KIB
            size_txt = f"{r['size_mib'] // 1024} GiB" if r["size_mib"] % 1024 == 0 else f"{r['size_mib']} MiB"
            out.append(f"| {size_txt}, piece {r['piece_kib']} KiB | "
                       f"{r['wall_s']:.2f} | {fmt_mib(rss)} | < 64 MiB | "
                       f"{'PASS' if ok else 'FAIL' + ('' if r['ok'] else ' (run failed)')} |")
    out.append("")
    out.append("CPU s: user + system seconds of the seeder and all leechers from the leechers' start "
               "to the last completion (median over reps); the trackers are not included.")
    out.append("Peak RSS: the largest VmHWM among the leechers of all successful reps (ours: GNU time "
               "%M at exit; aria2: /proc VmHWM once all leechers were done).")
    loads = [r["load_before"] for r in runs if r.get("load_before")]
    if loads:
        out.append(f"Machine load (1-min average) before the runs: {min(loads):.2f}–{max(loads):.2f} "
                   f"on {meta.get('cpus', '?')} CPUs.")
    return "\n".join(out)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "infohash":
        print(infohash(sys.argv[2]).hex())
    elif cmd == "scrape":
        print(*scrape(sys.argv[2], sys.argv[3]))
    elif cmd == "record":
        d = {}
        for kv in sys.argv[3:]:
            k, _, v = kv.partition("=")
            try:
                d[k] = json.loads(v)
            except ValueError:
                d[k] = v
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps(d) + "\n")
    elif cmd == "table":
        print(table(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
