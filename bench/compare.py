#!/usr/bin/env python3
"""Compare two benchmark runs, before and after a change.

    python3 bench/compare.py BEFORE AFTER [--threshold 3] [--all]

BEFORE and AFTER are results.json files written by bench/run.sh --out, the
raw results.jsonl, or a docs/benchmarks.md (which embeds its run's results).
For every row both runs have, prints the median before and after, the change,
and a verdict:

  better / worse   the medians moved by more than --threshold percent AND the
                   two runs' min-max ranges do not overlap
  ~                anything else: within noise

Ratios to the floor are compared too (the rows with a baseline), since on a
shared machine they are steadier than absolute times. Lower is better for
us/call, ns/op, ms, bytes and KiB; higher is better for calls/s.
Exit status 0; 1 when a row got worse (for CI gates that want it).
"""

import argparse
import os
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

HIGHER_IS_BETTER = {"calls/s"}


def rows_by_key(rows):
    out = {}
    for r in rows:
        if "samples" not in r or "not_run" in r or r.get("suite") in ("meta", "meta_end"):
            continue
        if r.get("suite") == "mem" and r.get("name") == "checkpoints":
            continue
        out[(r["suite"], r["name"])] = r
    return out


def paired_ratio(by, key):
    r = by.get(key)
    if not r or not r.get("baseline"):
        return None
    b = by.get((key[0], r["baseline"]))
    if not b:
        return None
    pairs = [x / y for x, y in zip(r["samples"], b["samples"]) if y]
    if not pairs:
        return None
    return statistics.median(pairs), min(pairs), max(pairs)


def verdict(before, after, higher_better, threshold):
    (b_lo, b_med, b_hi), (a_lo, a_med, a_hi) = before, after
    if not b_med:
        return "~", 0.0
    change = (a_med - b_med) / abs(b_med) * 100
    overlap = not (a_hi < b_lo or a_lo > b_hi)
    if abs(change) < threshold or overlap:
        return "~", change
    improved = (change > 0) == higher_better
    return ("better" if improved else "WORSE"), change


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--threshold", type=float, default=3.0,
                    help="percent change below which a row counts as unchanged")
    ap.add_argument("--all", action="store_true", help="also print rows within noise")
    args = ap.parse_args()
    A, B = report.load(args.before), report.load(args.after)
    ma = next((r for r in A if r.get("suite") == "meta"), {})
    mb = next((r for r in B if r.get("suite") == "meta"), {})
    print("before: %s %s (%s, %s)" % (ma.get("commit", "?")[:12], ma.get("date", ""),
                                       ma.get("mode", ""), ma.get("cpu_model", "")))
    print("after:  %s %s (%s, %s)" % (mb.get("commit", "?")[:12], mb.get("date", ""),
                                       mb.get("mode", ""), mb.get("cpu_model", "")))
    if ma.get("cpu_model") != mb.get("cpu_model"):
        print("note: different CPUs: compare the ratio rows, not absolute figures")
    by_a, by_b = rows_by_key(A), rows_by_key(B)
    worse = 0
    lines = []
    for key in sorted(set(by_a) & set(by_b)):
        ra, rb = by_a[key], by_b[key]
        sa, sb = report.stats(ra["samples"]), report.stats(rb["samples"])
        unit = rb.get("unit", "")
        v, change = verdict(sa, sb, unit in HIGHER_IS_BETTER, args.threshold)
        lines.append((key, unit, sa[1], sb[1], change, v))
        pa, pb = paired_ratio(by_a, key), paired_ratio(by_b, key)
        if pa and pb:
            # a ratio to the floor: lower is better for times, higher for calls/s
            vr, ch = verdict(pa, pb, unit in HIGHER_IS_BETTER, args.threshold)
            lines.append(((key[0], key[1] + " ÷ " + ra["baseline"]), "ratio", pa[0], pb[0], ch, vr))
    w = max([len("%s/%s" % k) for k, *_ in lines] + [10])
    print()
    print("%-*s  %-8s %12s %12s %8s  %s" % (w, "row", "unit", "before", "after", "change", ""))
    for key, unit, a, b, change, v in lines:
        if v == "~" and not args.all:
            continue
        if v == "WORSE":
            worse += 1
        print("%-*s  %-8s %12s %12s %+7.1f%%  %s" % (w, "%s/%s" % key, unit, report.fmt(a),
                                                  report.fmt(b), change, v))
    shown = sum(1 for *_, v in lines if v != "~")
    print()
    print("%d rows compared, %d changed beyond noise (%d worse)%s" % (
        len(lines), shown, worse, "" if args.all else "; --all prints every row"))
    only_a = sorted(set(by_a) - set(by_b))
    only_b = sorted(set(by_b) - set(by_a))
    if only_a:
        print("only before: " + ", ".join("%s/%s" % k for k in only_a))
    if only_b:
        print("only after:  " + ", ".join("%s/%s" % k for k in only_b))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
