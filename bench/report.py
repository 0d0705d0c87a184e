#!/usr/bin/env python3
"""Turn the benchmark's JSON lines into results.json and docs/benchmarks.md.

    report.py meta   --mode quick|full --root REPO          one "meta" row: the machine
    report.py render --in results.jsonl [--json-out results.json] [--md benchmarks.md]

Stdlib only. Every row is one JSON object (see bench/bench_common.h):
{"suite", "name", "unit", "samples": [one number per repetition], "baseline":
name of the row it is compared with (paired repetition by repetition),
"placement", ...} or {"suite", "name", "not_run": reason}.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

RESULTS_MARK = "llmux-bench-results"


# --------------------------------------------------------------------- meta

def _cmd(*args, cwd=None):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=20, cwd=cwd)
        return p.stdout.strip() if p.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _lscpu():
    out = {}
    for line in _cmd("lscpu").splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def _mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    return ""


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def meta(args):
    root = args.root
    ls = _lscpu()
    commit = _cmd("git", "rev-parse", "HEAD", cwd=root)
    dirty = bool(_cmd("git", "status", "--porcelain", "--untracked-files=no", cwd=root))
    row = {
        "suite": "meta",
        "mode": args.mode,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "(no commit yet)",
        "commit_subject": _cmd("git", "log", "-1", "--format=%s", cwd=root),
        "dirty": dirty,
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cores_per_socket": ls.get("Core(s) per socket", ""),
        "threads_per_core": ls.get("Thread(s) per core", ""),
        "sockets": ls.get("Socket(s)", ""),
        "hypervisor": ls.get("Hypervisor vendor", ""),
        "mem_total": _mem_total(),
        "kernel": platform.release(),
        "os": _os_name(),
        "cc": (_cmd("cc", "--version").splitlines() or [""])[0],
        "libcurl": _cmd("pkg-config", "--modversion", "libcurl"),
        "libcjson": _cmd("pkg-config", "--modversion", "libcjson"),
        "python": platform.python_version(),
        "go": _cmd("go", "version") if shutil.which("go") else "",
        "loadavg_start": list(os.getloadavg()),
    }
    print(json.dumps(row))


# ------------------------------------------------------------------- render

def load(path):
    """Rows from a .jsonl, a results.json, or a benchmarks.md with the results
    embedded."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".md"):
        m = re.search(r"<!-- %s\n(.*?)\n-->" % RESULTS_MARK, text, re.S)
        if not m:
            raise SystemExit("%s: no embedded results" % path)
        return json.loads(m.group(1))["rows"]
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "rows" in doc:
            return doc["rows"]
    except ValueError:
        pass
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def stats(samples):
    s = [float(x) for x in samples]
    return min(s), statistics.median(s), max(s)


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.meta = next((r for r in rows if r.get("suite") == "meta"), {})
        self.meta_end = next((r for r in rows if r.get("suite") == "meta_end"), {})
        self.by = {}
        self.not_run = {}
        for r in rows:
            s = r.get("suite")
            if s in ("meta", "meta_end"):
                continue
            if "not_run" in r:
                self.not_run.setdefault(s, []).append(r)
            else:
                self.by.setdefault(s, {})[r["name"]] = r

    def row(self, suite, name):
        return self.by.get(suite, {}).get(name)

    def median(self, suite, name):
        r = self.row(suite, name)
        return stats(r["samples"])[1] if r and r.get("samples") else None

    def ratio(self, suite, name, base=None):
        """(median, min, max) of row/baseline, paired by repetition."""
        r = self.row(suite, name)
        if not r:
            return None
        b = self.row(suite, base or r.get("baseline", ""))
        if not b or not r.get("samples") or not b.get("samples"):
            return None
        pairs = [x / y for x, y in zip(r["samples"], b["samples"]) if y]
        if not pairs:
            return None
        if len(r["samples"]) != len(b["samples"]):  # not paired: ratio of medians
            m = stats(r["samples"])[1] / stats(b["samples"])[1]
            return m, m, m
        return statistics.median(pairs), min(pairs), max(pairs)

    def reason(self, suite, name=None):
        for r in self.not_run.get(suite, []):
            if name is None or r["name"] in ("*", name, "run"):
                return r["not_run"]
        return None


def fmt(v, unit=""):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 100000:
        s = "%.0f" % v
    elif a >= 1000:
        s = "%.0f" % v
    elif a >= 100:
        s = "%.0f" % v
    elif a >= 10:
        s = "%.1f" % v
    else:
        s = "%.2f" % v
    return s + unit


def spread(samples):
    lo, med, hi = stats(samples)
    return "%s / **%s** / %s" % (fmt(lo), fmt(med), fmt(hi))


def ratio_cell(rt, pct=None):
    if rt is None:
        return "–"
    med, lo, hi = rt
    s = "%.3f (%.3f–%.3f)" % (med, lo, hi)
    if pct == "over":
        s += " = %+.1f%%" % ((med - 1) * 100)
    elif pct == "keep":
        s += " = %.0f%%" % (med * 100)
    return s


def fold_ratio(rt):
    if rt is None:
        return "–"
    med, lo, hi = rt
    return "%.0fx (%.0f–%.0fx)" % (med, lo, hi)


def not_run_lines(res, suites):
    out = []
    for s in suites:
        for r in res.not_run.get(s, []):
            out.append("- %s/%s: not run: %s" % (s, r["name"], r["not_run"]))
    return out


# ------------------------------------------------------------------- sections

def section_targets(res):
    L = ["## Targets", "",
         "| target | measured (median of paired ratios, min–max) | verdict |",
         "|---|---|---|"]

    def verdict(ok):
        return "**met**" if ok else "**MISSED**"

    def add(label, value, ok, reason):
        if value is None:
            L.append("| %s | not run: %s | – |" % (label, reason or "no data"))
        else:
            L.append("| %s | %s | %s |" % (label, value, verdict(ok)))

    rt = res.ratio("seq", "llmux_one")
    add("one caller: llmux adds ≤ 5% to the floor's time per call",
        ratio_cell(rt, "over") if rt else None, rt and rt[0] <= 1.05,
        res.reason("seq", "llmux"))
    rt = res.ratio("seq", "llmux_one_all")
    add("one caller, every policy feature on at once: llmux adds ≤ 5% to the floor's time per call",
        ratio_cell(rt, "over") if rt else None, rt and rt[0] <= 1.05,
        res.reason("seq", "llmux"))
    rt = res.ratio("seq", "llmux_one_log")
    add("one caller, call log written to a file: ≤ 2% added to llmux's time per call",
        ratio_cell(rt, "over") if rt else None, rt and rt[0] <= 1.02,
        res.reason("seq", "llmux"))
    rt = res.ratio("seq", "llmux_fb")
    add("one caller, fallback on every call: ≤ 10%",
        ratio_cell(rt, "over") if rt else None, rt and rt[0] <= 1.10,
        res.reason("seq", "llmux"))
    rt = res.ratio("tput", "llmux_t8")
    add("8 threads: ≥ 90% of the floor's calls/s",
        ratio_cell(rt, "keep") if rt else None, rt and rt[0] >= 0.90,
        res.reason("tput", "llmux"))
    rt = res.ratio("py_seq", "py_litellm")
    add("Python, one caller: ≥ 50x LiteLLM completion()'s calls/s",
        fold_ratio(rt) if rt else None, rt and rt[0] >= 50,
        res.reason("py_seq", "py_litellm"))
    rt = res.ratio("py_seq", "py_router_fb")
    add("Python, fallback every call: ≥ 100x the LiteLLM Router's calls/s",
        fold_ratio(rt) if rt else None, rt and rt[0] >= 100,
        res.reason("py_seq", "py_router_fb"))
    r = res.row("py_import", "import_llmux")
    med = stats(r["samples"])[1] if r else None
    add("`import llmux` < 50 ms", "%.1f ms" % med if med is not None else None,
        med is not None and med < 50, res.reason("py_import", "import_llmux"))
    rss, cps = res.row("mem", "llmux_rss_kb"), res.row("mem", "checkpoints")
    heap = res.row("mem", "llmux_heap_bytes")
    if rss and cps and len(rss["samples"]) >= 2:
        d_rss = rss["samples"][-1] - rss["samples"][0]
        d_heap = heap["samples"][-1] - heap["samples"][0] if heap else 0
        val = "RSS %+.0f KiB, live heap %+.0f bytes from %s to %s calls" % (
            d_rss, d_heap, _calls(cps["samples"][0]), _calls(cps["samples"][-1]))
        add("RSS flat from 10 thousand to 1 million calls (growth ≤ 1 MiB RSS and ≤ 64 KiB heap)",
            val, d_rss <= 1024 and d_heap <= 65536, None)
        if cps["samples"][-1] < 1000000:
            L.append("| (this run stopped at %s calls: a --quick run) | | |"
                     % _calls(cps["samples"][-1]))
    else:
        add("RSS flat from 10 thousand to 1 million calls", None, False, res.reason("mem"))
    f1, f8 = res.median("tput", "floor_t1"), res.median("tput", "floor_t8")
    if f1 and f8:
        need = sim_rise_needed(res)
        share = sim_share(res.row("tput", "floor_t8"))
        add("check: the simulator is not the bottleneck (floor 8 threads ≥ %.1fx floor 1 thread, "
            "same placement%s)" % (need, "; on 2 CPUs the ceiling is about 2x" if need < 2 else ""),
            "%.1fx (%s → %s calls/s)%s" % (
                f8 / f1, fmt(f1), fmt(f8),
                "; the simulator used %.0f%% of the CPU time at 8 threads" % (share * 100)
                if share is not None else ""),
            f8 / f1 >= need, None)
    for name, label in (("bad_exchanges_per_fallback_call",
                         "check: /bad is asked once per fallback call (C rows)"),
                        ("py_bad_exchanges_per_fallback_call",
                         "check: /bad is asked once per fallback call (Python rows)")):
        r = res.row("check", name)
        if r:
            v = r["samples"][0]
            add(label, "%.3f exchanges per call" % v, abs(v - 1.0) < 0.01, None)
    r = res.row("check", "errors")
    if r:
        L.append("| every call answered correctly | %d calls failed | **MISSED** |"
                 % r["samples"][0])
    return L


def sim_rise_needed(res):
    """How far the floor's calls/s must rise from 1 to 8 threads to show the
    simulator is not the limit: 2x, but 1.5x on a 2-CPU machine where client
    and simulator share two CPUs and the total cannot exceed about 2x."""
    cpus = res.meta.get("cpus_allowed") or res.meta.get("cpus") or 2
    return 1.5 if cpus <= 2 else 2.0


def sim_share(row):
    """The simulator's share of the CPU time of a tput row (median), or None."""
    if not row:
        return None
    c = [x for x in row.get("cpu_client_us", []) if x is not None and x >= 0]
    s = [x for x in row.get("cpu_sim_us", []) if x is not None and x >= 0]
    if not c or not s:
        return None
    cm, sm = statistics.median(c), statistics.median(s)
    return sm / (cm + sm) if cm + sm > 0 else None


def _calls(n):
    n = int(n)
    if n >= 1000000 and n % 1000000 == 0:
        return "%d million" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%d thousand" % (n // 1000)
    return str(n)


SEQ_INCLUDES = """\
What one call includes. **floor**: build the request JSON with cJSON, POST it
with libcurl on a reused easy handle (connection kept alive), wait for the
simulator's answer, parse the response JSON with cJSON and read
`choices[0].message.content`. **llmux**: the caller builds the same request
JSON the same way, calls `llmux_chat` with the alias, and parses
`llmux_result_json` the same way, then `llmux_result_free`. So the llmux figure
is the floor's work plus everything llmux adds: request parse and validation,
alias lookup and routing, the provider request build, the HTTP exchange(s)
through its pooled transport, the response parse and validation, usage, the
ledger entry, the result object and its trace (built when the call ends), and
the result JSON. The fallback rows make two exchanges per call: `/bad` answers
503 with an OpenAI error body (the floor parses it, llmux classifies it and
falls back), then `/a` answers. Times are wall-clock per call, averaged over a
block; the spread is over the repetitions."""


CPU_NOTE = """\
The CPU columns are CPU time per call (medians over the repetitions), from
`CLOCK_PROCESS_CPUTIME_ID` for the benchmark process and the simulator's
process CPU clock (`clock_getcpuclockid`), kernel time included. They are much
less sensitive to scheduling than wall time: on a CPU-bound 2-core machine the
throughput ratio follows (floor client + simulator CPU) ÷ (llmux client +
simulator CPU)."""


def cpu_pair(f, x, key):
    def med(r):
        v = [a for a in (r or {}).get(key, []) if a is not None and a >= 0]
        return statistics.median(v) if v else None
    a, b = med(f), med(x)
    if a is None:
        return "–"
    if b is None:
        return fmt(a)
    return "%s → %s (%+.1f)" % (fmt(a), fmt(b), b - a)


def where_time_goes(res):
    """Split llmux's added client CPU per call into the micro-benchmarked parts
    and the rest (transport differences, allocation, bookkeeping)."""
    f, x = res.row("seq", "floor_one"), res.row("seq", "llmux_one")
    micro = res.by.get("micro", {})
    parts = [n for n in ("request_parse_build", "response_parse", "result_lifecycle",
                         "ledger_record", "route") if n in micro]
    if not f or not x or not parts or "cpu_client_us" not in x:
        return []
    added = (statistics.median(x["cpu_client_us"]) - statistics.median(f["cpu_client_us"]))
    ns = {n: stats(micro[n]["samples"])[1] for n in parts}
    total = sum(ns.values()) / 1000.0
    L = ["Where llmux's added CPU goes, one target: %s µs per call more client CPU than the "
         "floor (medians); the hot path's own parts as micro-benchmarked (section 6) account "
         "for %.2f µs of it: %s. The rest is the transport's libcurl set-up differing from the "
         "floor's, allocation, clocks and bookkeeping; the trace JSON is not in the figure, as "
         "llmux builds it only when asked (trace_build in section 6 is its cost then)." % (
             fmt(added), total, ", ".join("%s %s ns" % (n, fmt(v)) for n, v in ns.items())), ""]
    return L


def section_seq(res):
    L = ["## 1. Overhead, one caller", ""]
    rows = res.by.get("seq", {})
    if not rows:
        L += ["not run: %s" % (res.reason("seq") or "no data"), ""]
        return L
    any_row = next(iter(rows.values()))
    L += ["Placement: %s. %s calls per block; floor and llmux blocks alternate, "
          "the order flips every repetition." % (any_row.get("placement", ""),
                                                  int(any_row.get("block", 0))), ""]
    L += ["| path | floor µs/call (min / **median** / max) | llmux µs/call (min / **median** / max)"
          " | llmux ÷ floor, paired (min–max) | added µs/call | client CPU µs/call, floor → llmux"
          " | simulator CPU µs/call |", "|---|---|---|---|---|---|---|"]
    for label, fl, lx in (("one target", "floor_one", "llmux_one"),
                          ("one target, every policy feature on (a configured key with team, "
                           "allowed aliases and rpm/tpm limits; key, team and gateway budgets; "
                           "a matching rule; a price; the capability check; the cooldown "
                           "breaker; the call log to a file; the ledger journal)",
                           "floor_one", "llmux_one_all"),
                          ("fallback every call (2 exchanges)", "floor_fb", "llmux_fb")):
        f, x = rows.get(fl), rows.get(lx)
        if not f:
            continue
        added = (stats(x["samples"])[1] - stats(f["samples"])[1]) if x else None
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, spread(f["samples"]),
            spread(x["samples"]) if x else "not run: %s" % res.reason("seq", "llmux"),
            ratio_cell(res.ratio("seq", lx), "over") if x else "–",
            fmt(added) if added is not None else "–",
            cpu_pair(f, x, "cpu_client_us"), cpu_pair(f, x, "cpu_sim_us")))
    lg, one = rows.get("llmux_one_log"), rows.get("llmux_one")
    if lg and one:
        L.append("| one target, call log written to a file (÷ llmux one target) | – | %s | %s | %s | %s | %s |" % (
            spread(lg["samples"]), ratio_cell(res.ratio("seq", "llmux_one_log"), "over"),
            fmt(stats(lg["samples"])[1] - stats(one["samples"])[1]),
            cpu_pair(one, lg, "cpu_client_us"), cpu_pair(one, lg, "cpu_sim_us")))
    a, one = rows.get("llmux_anth"), rows.get("llmux_one")
    if a and one:
        L += ["", "Through an Anthropic target (the same call translated to the Messages API "
              "and back, on the same simulator deployment): %s µs/call, ÷ llmux one target %s, "
              "client CPU %s µs/call." % (spread(a["samples"]),
                                         ratio_cell(res.ratio("seq", "llmux_anth"), "over"),
                                         cpu_pair(one, a, "cpu_client_us"))]
    L += ["", SEQ_INCLUDES, "", CPU_NOTE, ""]
    L += where_time_goes(res)
    L += not_run_lines(res, ["seq"])
    return L


def section_tput(res):
    L = ["## 2. Throughput: threads sharing one gateway", ""]
    rows = res.by.get("tput", {})
    if not rows:
        return L + ["not run: %s" % (res.reason("tput") or "no data"), ""]
    any_row = next(iter(rows.values()))
    L += ["Placement: %s. Each block runs every thread for %.1f s and counts the calls; floor "
          "threads each own an easy handle, llmux threads share one `llmux *`."
          % (any_row.get("placement", ""), any_row.get("secs", 0)), ""]
    L += ["| threads | floor calls/s (min / **median** / max) | llmux calls/s (min / **median** / max)"
          " | llmux ÷ floor, paired (min–max) | client CPU µs/call, floor → llmux"
          " | simulator CPU µs/call |", "|---|---|---|---|---|---|"]
    threads = sorted({int(r["threads"]) for r in rows.values()})
    for t in threads:
        f, x = rows.get("floor_t%d" % t), rows.get("llmux_t%d" % t)
        L.append("| %d | %s | %s | %s | %s | %s |" % (
            t, spread(f["samples"]) if f else "–",
            spread(x["samples"]) if x else "not run",
            ratio_cell(res.ratio("tput", "llmux_t%d" % t), "keep") if x else "–",
            cpu_pair(f, x, "cpu_client_us"), cpu_pair(f, x, "cpu_sim_us")))
    f1, f8 = res.median("tput", "floor_t1"), res.median("tput", "floor_t8")
    if f1 and f8:
        share = sim_share(rows.get("floor_t8"))
        L += ["", "Is the simulator the bottleneck? The floor's calls/s rise %.1fx from 1 to 8 "
              "threads at the same placement%s. With %s CPUs shared by client and simulator, "
              "throughput at 8 and 32 threads is bounded by the machine's total CPU, so the "
              "ratio to the floor there is a ratio of CPU per call (the CPU columns)." % (
                  f8 / f1, "; at 8 threads the simulator used %.0f%% of the CPU time "
                  "(the rest: the benchmark's threads)" % (share * 100) if share is not None else "",
                  res.meta.get("cpus_allowed") or res.meta.get("cpus") or "?")]
    L += [""] + not_run_lines(res, ["tput"])
    return L


def section_mem(res):
    L = ["## 3. Memory", ""]
    rss, heap, cps = (res.row("mem", n) for n in ("llmux_rss_kb", "llmux_heap_bytes", "checkpoints"))
    if rss and cps:
        L += ["RSS (VmRSS from /proc/self/status) and live heap bytes (exact: bench_mem wraps "
              "malloc/free and sums malloc_usable_size of the live blocks) of one process after "
              "N sequential calls through one gateway, %s. Placement: %s." % (
                  rss.get("mix", ""), rss.get("placement", "")), "",
              "| calls | RSS KiB | live heap bytes |", "|---|---|---|"]
        for i, n in enumerate(cps["samples"]):
            L.append("| %s | %s | %s |" % (_calls(n), fmt(rss["samples"][i]),
                                           fmt(heap["samples"][i]) if heap else "–"))
        L.append("")
    else:
        L += ["RSS: not run: %s" % (res.reason("mem") or "no data"), ""]
    inf = res.by.get("inflight", {})
    if inf:
        any_row = next(iter(inf.values()))
        L += ["Peak bytes held per call in flight: the deployment `slow` holds every answer for "
              "a few hundred ms; the figure is the heap's high-water mark during the calls minus "
              "what was live before them, divided by the number of calls (exact heap accounting "
              "as above; thread stacks are not heap and are not counted). \"cold\": the first "
              "round, in which each call opens its connection (llmux's pool grows, the floor "
              "creates its easy handle); \"warm\": the second round, connections reused. "
              "Placement: %s." % any_row.get("placement", ""), "",
              "| measure | concurrent calls | llmux bytes/call | floor bytes/call |",
              "|---|---|---|---|"]
        for label, lx, fl in (("one call alone, connection open", "llmux_peak_one_call",
                               "floor_peak_one_call"),
                              ("N at once, cold", "llmux_peak_per_call_cold",
                               "floor_peak_per_call_cold"),
                              ("N at once, warm", "llmux_peak_per_call_warm",
                               "floor_peak_per_call_warm")):
            a, b = inf.get(lx), inf.get(fl)
            n = int((a or b or {}).get("n", 0))
            L.append("| %s | %d | %s | %s |" % (label, n, fmt(a["samples"][0]) if a else "–",
                                                fmt(b["samples"][0]) if b else "–"))
        for nm in ("llmux_rss_per_call_cold", "llmux_rss_per_call_warm"):
            r = inf.get(nm)
            if r:
                L.append("| RSS delta per call, %s (sampled mid-wait) | %d | %s | – |" % (
                    nm.rsplit("_", 1)[1], int(r.get("n", 0)), fmt(r["samples"][0])))
        L.append("")
    else:
        L += ["In-flight peak: not run: %s" % (res.reason("inflight") or res.reason("mem")
                                               or "no data"), ""]
    L += not_run_lines(res, ["mem", "inflight"])
    return L


def section_python(res):
    L = ["## 4. Python", ""]
    seq, thr = res.by.get("py_seq", {}), res.by.get("py_tput", {})
    labels = {
        "py_floor_one": "floor via ctypes (json.dumps → libcurl → json.loads)",
        "py_llmux_one": "llmux binding, one target",
        "py_openai_sdk": "openai SDK",
        "py_openai_llmux": "openai SDK through llmux.HTTPTransport",
        "py_litellm": "LiteLLM completion()",
        "py_floor_fb": "floor via ctypes, 503 then answer",
        "py_llmux_fb": "llmux binding, fallback every call",
        "py_router_fb": "LiteLLM Router, fallback every call",
    }
    base_label = {"py_llmux_one": "÷ floor", "py_openai_sdk": "÷ llmux", "py_litellm": "÷ llmux",
                  "py_openai_llmux": "÷ openai SDK",
                  "py_llmux_fb": "÷ floor fb", "py_router_fb": "÷ llmux fb"}
    if seq:
        any_row = next(iter(seq.values()))
        L += ["One caller. Placement: %s. Blocks alternate between the rows and their order "
              "flips every repetition." % any_row.get("placement", ""), "",
              "| caller | µs/call (min / **median** / max) | calls/s (median) | time ratio, paired "
              "(min–max) |", "|---|---|---|---|"]
        for name, label in labels.items():
            r = seq.get(name)
            if r:
                med = stats(r["samples"])[1]
                rt = res.ratio("py_seq", name)
                L.append("| %s | %s | %s | %s |" % (
                    label, spread(r["samples"]), fmt(1e6 / med),
                    "%s %s" % (ratio_cell(rt), base_label.get(name, "")) if rt else "–"))
            else:
                L.append("| %s | not run: %s | | |" % (label, res.reason("py_seq", name) or "no data"))
        L.append("")
    else:
        L += ["One caller: not run: %s" % (res.reason("py_seq") or "no data"), ""]
    if thr:
        any_row = next(iter(thr.values()))
        L += ["%d threads sharing one gateway (one client each for the floor; one shared client "
              "for the SDKs). Placement: %s." % (int(any_row.get("threads", 8)),
                                                 any_row.get("placement", "")), "",
              "| caller | calls/s (min / **median** / max) | ratio, paired (min–max) |",
              "|---|---|---|"]
        for name, label in labels.items():
            r = thr.get(name)
            if r:
                rt = res.ratio("py_tput", name)
                L.append("| %s | %s | %s |" % (label, spread(r["samples"]),
                                              "%s %s" % (ratio_cell(rt), base_label.get(name, ""))
                                              if rt else "–"))
            else:
                L.append("| %s | not run: %s | |" % (label, res.reason("py_tput", name) or "no data"))
        L.append("")
    else:
        L += ["8 threads: not run: %s" % (res.reason("py_tput") or "no data"), ""]
    imp = res.by.get("py_import", {})
    L += ["Cold import: a fresh interpreter per sample, the `import` statement timed inside it "
          "(interpreter start-up excluded, file cache warm, .pyc files already written).", "",
          "| module | ms (min / **median** / max) |", "|---|---|"]
    for name, mod in (("import_llmux", "llmux"), ("import_openai", "openai"),
                      ("import_litellm", "litellm")):
        r = imp.get(name)
        L.append("| `import %s` | %s |" % (mod, spread(r["samples"]) if r else
                                           "not run: %s" % (res.reason("py_import", name) or "no data")))
    L.append("")
    return L


def section_go(res):
    L = ["## 5. Go", ""]
    rows = res.by.get("go", {})
    if not rows:
        return L + ["not run: %s" % (res.reason("go") or "no data"), ""]
    L += ["The Go binding (`gw.Chat` with a typed `ChatRequest`) against the floor called from "
          "Go (encoding/json marshal → the C floor client through cgo → encoding/json "
          "unmarshal), N goroutines sharing one gateway; the floor has one C client per "
          "goroutine.", "",
          "| goroutines | placement | floor calls/s (min / **median** / max) | llmux calls/s "
          "(min / **median** / max) | llmux ÷ floor, paired (min–max) |",
          "|---|---|---|---|---|"]
    for g in sorted({int(r.get("goroutines", 0)) for r in rows.values()}):
        f, x = rows.get("go_floor_g%d" % g), rows.get("go_llmux_g%d" % g)
        L.append("| %d | %s | %s | %s | %s |" % (
            g, (f or x).get("placement", ""), spread(f["samples"]) if f else "–",
            spread(x["samples"]) if x else "not run: %s" % (res.reason("go", "go_llmux_g%d" % g)
                                                            or "no data"),
            ratio_cell(res.ratio("go", "go_llmux_g%d" % g), "keep") if x else "–"))
    L += [""] + not_run_lines(res, ["go"])
    gb = res.by.get("go_bench", {})
    if gb or res.not_run.get("go_bench"):
        L += ["The binding's own `go test -bench` benchmarks (bindings/go/bench_test.go; its "
              "TestMain starts its own llmux-sim, which inherits the placement), for reference:",
              "", "| benchmark | placement | µs/op (min / **median** / max) | allocs/op |",
              "|---|---|---|---|"]
        for name in ("BenchmarkChat", "BenchmarkChatParallel"):
            r = gb.get(name)
            if r:
                L.append("| %s | %s | %s | %s |" % (name, r.get("placement", ""),
                                                   spread([v / 1000 for v in r["samples"]]),
                                                   r.get("allocs_per_op") or "–"))
            else:
                L.append("| %s | | not run: %s | |" % (name, res.reason("go_bench", name)
                                                       or "no data"))
        L.append("")
    return L


def section_micro(res):
    L = ["## 6. Micro-benchmarks: the hot path's own parts", ""]
    rows = res.by.get("micro", {})
    if not rows:
        return L + ["not run: %s" % (res.reason("micro") or "no data"), ""]
    any_row = next(iter(rows.values()))
    L += ["ns per operation, no network, %s (bench/bench_micro.c; internal functions, linked "
          "against the static library). A feature that adds work to the hot path adds its row "
          "there." % any_row.get("placement", ""), "",
          "| operation | ns/op (min / **median** / max) | what |", "|---|---|---|"]
    for name, r in rows.items():
        L.append("| %s | %s | %s |" % (name, spread(r["samples"]), r.get("what", "")))
    L += [""] + not_run_lines(res, ["micro"])
    return L


NOISE = """\
## Reading noise on a 2-core shared machine

- Compare ratios, not absolute times. Floor and llmux run in the same process,
  in alternating blocks whose order flips every repetition, so a noisy neighbour
  slows both; the ratio column pairs each llmux block with the floor block next
  to it, and its min–max shows how far single repetitions wander.
- Placement matters more than anything else here. One caller and the simulator
  pinned to the same CPU take turns (about 30 µs a call); on different CPUs each
  hand-off crosses cores and a call costs 85–100 µs, and the scheduler flips
  between the two, which makes unpinned one-caller ratios noise. Every table
  names its placement.
- With 2 CPUs, 8 or 32 threads plus the simulator oversubscribe the machine:
  throughput there measures CPU per call (client + simulator), which is what
  the ratio to the floor is about. Absolute calls/s depend on the host.
- A 5% target is measurable only when the spread of the paired ratio is
  narrower than 5%: if min–max spans more than the target, rerun on a quiet
  machine (load average is recorded above) or with more repetitions.
- Medians, not means: a single descheduled block moves the max, not the median.
- CPU time per call (the CPU columns) moves far less than wall time when other
  work shares the machine; when wall-time ratios are noisy, read those. For an
  exact, noise-free comparison of llmux's own work between two commits, count
  instructions with callgrind (bench/README.md, "Profiling").
- Check the load average recorded at the top: above about 0.5 at the start,
  other work was running and the spreads will show it.
"""


def section_journal(path):
    L = ["## 7. The ledger journal", "",
         "`bench/bench_journal.c` ([ledger.md](ledger.md)): what the durable ledger costs "
         "under each fsync policy (`every_call` syncs before the call returns, `interval` "
         "from a background thread, `never` leaves it to the kernel).", ""]
    text = ""
    if path:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError as e:
            text = "not run: %s" % e
    return L + [text or "not run: no data"]


def render(args):
    rows = load(args.inp)
    res = Results(rows)
    m = res.meta
    L = ["# llmux benchmarks", "",
         "Generated by `bench/run.sh --%s` (bench/README.md has the method and how to run it). "
         "Do not edit by hand: rerun the command." % m.get("mode", "?"), "",
         "| | |", "|---|---|",
         "| commit | `%s`%s %s |" % (m.get("commit", "?"), " (with uncommitted changes)"
                                     if m.get("dirty") else "", m.get("commit_subject", "")),
         "| date | %s |" % m.get("date", "?"),
         "| mode | %s |" % m.get("mode", "?"),
         "| CPU | %s |" % m.get("cpu_model", "?"),
         "| cores | %s CPUs (%s socket(s) × %s core(s) × %s thread(s))%s |" % (
             m.get("cpus"), m.get("sockets"), m.get("cores_per_socket"), m.get("threads_per_core"),
             ", %s guest" % m["hypervisor"] if m.get("hypervisor") else ""),
         "| memory | %s |" % m.get("mem_total", ""),
         "| kernel | %s (%s) |" % (m.get("kernel", "?"), m.get("os", "")),
         "| toolchain | %s; libcurl %s; cJSON %s; Python %s; %s |" % (
             m.get("cc", ""), m.get("libcurl", ""), m.get("libcjson", ""), m.get("python", ""),
             m.get("go", "")),
         "| load average | %s at start, %s at end |" % (
             " ".join("%.2f" % x for x in m.get("loadavg_start", [])),
             " ".join("%.2f" % x for x in res.meta_end.get("loadavg_end", []))),
         "| run time | %s s |" % res.meta_end.get("seconds", "?"),
         ""]
    la = (m.get("loadavg_start") or [0])[0]
    if la > 1.0:
        L += ["**Note:** the load average was %.1f when this run started: other work shared "
              "the machine, so spreads are wide and wall-time ratios are pessimistic or "
              "optimistic by chance; the CPU-per-call columns and the medians are the figures "
              "to read. Rerun on a quiet machine for the record." % la, ""]
    L += [
         "Method in one paragraph: everything runs on loopback against the project's simulator "
         "`llmux-sim` (deployment `/a` answers, `/bad` answers 503 to every request). The floor "
         "is a plain C loop of libcurl + cJSON (one reused easy handle per thread: build the "
         "request JSON, POST, parse the response JSON) sending the same requests to the same "
         "deployments. Floor and llmux run in the same process in alternating blocks. Each "
         "figure is min / **median** / max over the repetitions; ratios pair each llmux block "
         "with its neighbouring floor block.", ""]
    L += section_targets(res) + [""]
    L += section_seq(res) + [""]
    L += section_tput(res) + [""]
    L += section_mem(res) + [""]
    L += section_python(res) + [""]
    L += section_go(res) + [""]
    L += section_micro(res) + [""]
    L += section_journal(args.journal_md) + [""]
    L += [NOISE, "## Comparing two runs", "",
          "    bench/run.sh --full --out /tmp/before.json      # on the old commit",
          "    bench/run.sh --full --out /tmp/after.json       # on the new one",
          "    python3 bench/compare.py /tmp/before.json /tmp/after.json",
          "",
          "`compare.py` also reads this file (the results are embedded below), so "
          "`python3 bench/compare.py docs/benchmarks.md /tmp/after.json` compares a change "
          "against the committed report. It prints each row's median before and after, the "
          "change, and whether the change is larger than the two runs' spread.", ""]
    md = "\n".join(L).rstrip() + "\n"
    if args.md:
        blob = json.dumps({"rows": rows}, separators=(",", ":"))
        with open(args.md, "w") as f:
            f.write(md + "\n<!-- %s\n%s\n-->\n" % (RESULTS_MARK, blob.replace(">", "\\u003e")))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"rows": rows}, f, indent=1)
            f.write("\n")
    if not args.quiet:
        sys.stdout.write(md)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("meta")
    a.add_argument("--mode", default="quick")
    a.add_argument("--root", default=".")
    b = sub.add_parser("render")
    b.add_argument("--in", dest="inp", required=True)
    b.add_argument("--json-out")
    b.add_argument("--md")
    b.add_argument("--journal-md", help="bench_journal's markdown tables, included as they are")
    b.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.cmd == "meta":
        meta(args)
    else:
        render(args)


if __name__ == "__main__":
    main()
