#!/usr/bin/env python3
"""Python rows of the llmux benchmark: the binding against the floor called
through ctypes, the openai SDK, LiteLLM completion() and a LiteLLM Router
failing over on every call, all against the same llmux-sim deployments.

    bench_py.py --base http://127.0.0.1:PORT --phase seq|threads|import
                [--reps N] [--secs S] [--threads 8] [--floor-lib PATH]
                [--placement TEXT] [--skip openai,litellm]

Prints JSON lines (see bench/bench_common.h) on stdout, progress on stderr.
Stdlib only, except for the rows that need openai / litellm: those are
reported as not run when the package cannot be imported.

What one call is, per row (the same request each time: a system and a user
message, max_tokens 64):
  py_floor_one   json.dumps(request) -> C floor_post via ctypes (libcurl, one
                 reused easy handle per thread) -> json.loads -> read content
  py_llmux_one   gw.chat.completions.create(model="one", ...) -> read content
  py_openai_sdk  openai.OpenAI(base_url=.../a/v1).chat.completions.create
  py_openai_llmux the same create(model="one") on llmux.openai_client(gw): the SDK
                 with llmux.HTTPTransport in place of its HTTP stack
  py_litellm     litellm.completion(model="openai/m", api_base=.../a/v1)
  py_floor_fb    the floor POSTs to /bad (503), then does py_floor_one
  py_llmux_fb    create(model="fb"): /bad answers 503, llmux falls back to /a
  py_router_fb   litellm.Router with fallbacks [bad -> good], cooldowns off,
                 no retries: both exchanges on every call
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("LITELLM_LOG", "ERROR")

SYSTEM = "You are a terse assistant. Answer in one short sentence."
USER = ("Summarise why an HTTP client should reuse its connections when it talks to a model "
        "provider many times a second.")
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
EXPECT = "[a] " + USER[:20]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def emit(row):
    print(json.dumps(row), flush=True)


def not_run(suite, name, reason):
    emit({"suite": suite, "name": name, "not_run": reason})


def sim(base, method, name, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("%s/_sim/deployments/%s" % (base, name), data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def config(base):
    return {
        "providers": {
            "a": {"type": "openai", "base_url": base + "/a/v1"},
            "bad": {"type": "openai", "base_url": base + "/bad/v1"},
        },
        "models": {
            "one": {"targets": [{"provider": "a", "model": "m"}]},
            "fb": {"targets": [{"provider": "bad", "model": "m"}, {"provider": "a", "model": "m"}]},
        },
        "defaults": {"timeout_ms": 30000},
    }


# ------------------------------------------------------------------ callers
# Each maker returns (call, close) or raises/returns a str reason it cannot run.

class Floor:
    """The floor, called from Python: the C libcurl client through ctypes."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.floor_client_new.restype = ctypes.c_void_p
        lib.floor_client_new.argtypes = []
        lib.floor_client_free.argtypes = [ctypes.c_void_p]
        lib.floor_client_free.restype = None
        # int floor_post(floor_client *c, const char *url, const char *body, size_t len,
        #                const char **resp, size_t *resp_len, long *http_status)
        lib.floor_post.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                                   ctypes.POINTER(ctypes.c_size_t),
                                   ctypes.POINTER(ctypes.c_long)]
        lib.floor_post.restype = ctypes.c_int
        self.lib = lib
        self.local = threading.local()
        self.clients = []
        self.lock = threading.Lock()

    def client(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.lib.floor_client_new()
            self.local.c = c
            self.local.out = (ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_long())
            with self.lock:
                self.clients.append(c)
        return c

    def post(self, url, request):
        c = self.client()
        resp, n, status = self.local.out
        body = json.dumps(request, separators=(",", ":")).encode()
        if self.lib.floor_post(c, url, body, len(body), ctypes.byref(resp), ctypes.byref(n),
                               ctypes.byref(status)) != 0:
            raise RuntimeError("floor transfer failed")
        return status.value, json.loads(ctypes.string_at(resp.value, n.value))

    def close(self):
        for c in self.clients:
            self.lib.floor_client_free(c)
        self.clients = []


def make_floor_one(ctx):
    fl = ctx["floor"]
    if fl is None:
        return ctx["floor_reason"]
    url = (ctx["base"] + "/a/v1/chat/completions").encode()

    def call():
        st, r = fl.post(url, {"model": "m", "messages": MESSAGES, "max_tokens": 64})
        return r["choices"][0]["message"]["content"]
    return call, None


def make_floor_fb(ctx):
    fl = ctx["floor"]
    if fl is None:
        return ctx["floor_reason"]
    bad = (ctx["base"] + "/bad/v1/chat/completions").encode()
    good = (ctx["base"] + "/a/v1/chat/completions").encode()

    def call():
        req = {"model": "m", "messages": MESSAGES, "max_tokens": 64}
        st, r = fl.post(bad, req)
        if st != 503:
            raise RuntimeError("expected 503 from /bad, got %d" % st)
        st, r = fl.post(good, req)
        return r["choices"][0]["message"]["content"]
    return call, None


def _gateway(ctx):
    if ctx.get("gw") is None:
        try:
            import llmux
        except ImportError as e:
            return "the Python binding cannot be imported (%s)" % e
        try:
            ctx["gw"] = llmux.Gateway(config(ctx["base"]))
        except Exception as e:  # library missing, config refused...
            return "llmux.Gateway failed: %s: %s" % (type(e).__name__, e)
    return ctx["gw"]


def make_llmux(alias):
    def make(ctx):
        gw = _gateway(ctx)
        if isinstance(gw, str):
            return gw
        create = gw.chat.completions.create

        def call():
            r = create(model=alias, messages=MESSAGES, max_tokens=64)
            return r.choices[0].message.content
        return call, None
    return make


def make_openai(ctx):
    if "openai" in ctx["skip"]:
        return ctx["skip_reason"]
    try:
        import openai
    except ImportError:
        return "the openai package is not installed (no venv)"
    client = openai.OpenAI(base_url=ctx["base"] + "/a/v1", api_key="sk-bench", max_retries=0)

    def call():
        r = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=64)
        return r.choices[0].message.content
    return call, client.close


def make_openai_llmux(ctx):
    """The same SDK call with the SDK's HTTP stack replaced by llmux's httpx
    transport (llmux.openai_client): the SDK builds and parses as always,
    llmux does the exchange in-process."""
    if "openai" in ctx["skip"]:
        return ctx["skip_reason"]
    try:
        import openai  # noqa: F401 - the reason below, not an ImportError later
    except ImportError:
        return "the openai package is not installed (no venv)"
    gw = _gateway(ctx)
    if isinstance(gw, str):
        return gw
    import llmux

    client = llmux.openai_client(gw)

    def call():
        r = client.chat.completions.create(model="one", messages=MESSAGES, max_tokens=64)
        return r.choices[0].message.content
    return call, client.close


def _litellm(ctx):
    if "litellm" in ctx["skip"]:
        return ctx["skip_reason"]
    try:
        import litellm
    except ImportError:
        return "litellm is not installed (no venv)"
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def make_litellm(ctx):
    litellm = _litellm(ctx)
    if isinstance(litellm, str):
        return litellm
    base = ctx["base"] + "/a/v1"

    def call():
        r = litellm.completion(model="openai/m", api_base=base, api_key="sk-bench",
                               messages=MESSAGES, max_tokens=64, max_retries=0)
        return r.choices[0].message.content
    return call, None


def make_router_fb(ctx):
    litellm = _litellm(ctx)
    if isinstance(litellm, str):
        return litellm
    base = ctx["base"]
    params = dict(model="openai/m", api_key="sk-bench", max_retries=0)
    model_list = [
        {"model_name": "fb-primary", "litellm_params": dict(params, api_base=base + "/bad/v1")},
        {"model_name": "fb-secondary", "litellm_params": dict(params, api_base=base + "/a/v1")},
    ]
    kw = dict(model_list=model_list, fallbacks=[{"fb-primary": ["fb-secondary"]}],
              num_retries=0, cooldown_time=0, allowed_fails=1000000000)
    try:
        router = litellm.Router(disable_cooldowns=True, **kw)
    except TypeError:  # older LiteLLM without disable_cooldowns
        router = litellm.Router(**kw)

    def call():
        r = router.completion(model="fb-primary", messages=MESSAGES, max_tokens=64)
        return r.choices[0].message.content
    return call, None


ROWS = [
    # name, maker, baseline row (time ratio = row / baseline), fallback row?
    ("py_floor_one", make_floor_one, None, False),
    ("py_llmux_one", make_llmux("one"), "py_floor_one", False),
    ("py_openai_sdk", make_openai, "py_llmux_one", False),
    ("py_openai_llmux", make_openai_llmux, "py_openai_sdk", False),
    ("py_litellm", make_litellm, "py_llmux_one", False),
    ("py_floor_fb", make_floor_fb, None, True),
    ("py_llmux_fb", make_llmux("fb"), "py_floor_fb", True),
    ("py_router_fb", make_router_fb, "py_llmux_fb", True),
]


def check(content):
    if not isinstance(content, str) or not content.startswith(EXPECT):
        raise RuntimeError("unexpected answer: %r" % (content,))


# --------------------------------------------------------------- the phases

def phase_seq(ctx, args):
    callers = prepare(ctx)
    # calibrate: calls per block so that each block takes about --secs
    per = {}
    for name, (call, _) in callers.items():
        t0 = time.perf_counter()
        n = 0
        while n < 5 or (time.perf_counter() - t0 < 0.1 and n < 2000):
            check(call())
            n += 1
        per[name] = (time.perf_counter() - t0) / n
    counts = {name: max(5, int(args.secs / per[name])) for name in callers}
    samples = {name: [] for name in callers}
    bad_before = sim(ctx["base"], "GET", "bad").get("requests", 0)
    fb_calls = 0
    order = list(callers)
    for rep in range(args.reps):
        seq = order if rep % 2 == 0 else order[::-1]  # alternate, flip the order
        for name in seq:
            call = callers[name][0]
            n = counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            samples[name].append((time.perf_counter() - t0) / n * 1e6)
            if name.endswith("_fb"):
                fb_calls += n
        log("py seq rep %d/%d: %s" % (rep + 1, args.reps, ", ".join(
            "%s %.0f us" % (k, samples[k][-1]) for k in order)))
    bad_after = sim(ctx["base"], "GET", "bad").get("requests", 0)
    for name, maker, base, fb in ROWS:
        if name in samples:
            row = {"suite": "py_seq", "name": name, "unit": "us/call",
                   "placement": args.placement, "calls_per_block": counts[name],
                   "samples": samples[name]}
            if base and base in samples:
                row["baseline"] = base
            emit(row)
        else:
            not_run("py_seq", name, ctx["reasons"][name])
    if fb_calls:
        emit({"suite": "check", "name": "py_bad_exchanges_per_fallback_call", "unit": "ratio",
              "samples": [(bad_after - bad_before) / fb_calls]})
    close(ctx, callers)


def phase_threads(ctx, args):
    callers = prepare(ctx)
    samples = {name: [] for name in callers}
    nthreads = args.threads

    # Persistent workers, so thread-local clients (the floor's easy handles)
    # and their connections survive from one block to the next.
    state = {"call": None, "secs": args.secs, "quit": False}
    start = threading.Barrier(nthreads + 1)
    done = threading.Barrier(nthreads + 1)
    stop = threading.Event()
    counts = [0] * nthreads
    errors = []

    def worker(i):
        while True:
            start.wait()
            if state["quit"]:
                return
            call, n = state["call"], 0
            try:
                while not stop.is_set():
                    call()
                    n += 1
            except Exception as e:  # noqa: BLE001 - re-raised by block()
                errors.append(e)
            counts[i] = n
            done.wait()

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in ths:
        t.start()

    def block(call, secs):
        state["call"] = call
        stop.clear()
        start.wait()
        t0 = time.perf_counter()
        time.sleep(secs)
        stop.set()
        done.wait()
        el = time.perf_counter() - t0
        if errors:
            raise errors[0]
        return sum(counts) / el

    for name, (call, _) in callers.items():
        block(call, min(args.secs, 0.2))  # warm-up: every thread's connection
    order = list(callers)
    for rep in range(args.reps):
        seq = order if rep % 2 == 0 else order[::-1]
        for name in seq:
            samples[name].append(block(callers[name][0], args.secs))
        log("py %d threads rep %d/%d: %s" % (nthreads, rep + 1, args.reps, ", ".join(
            "%s %.0f/s" % (k, samples[k][-1]) for k in order)))
    for name, maker, base, fb in ROWS:
        if name in samples:
            row = {"suite": "py_tput", "name": name, "unit": "calls/s", "threads": nthreads,
                   "placement": args.placement, "samples": samples[name]}
            if base and base in samples:
                row["baseline"] = base
            emit(row)
        else:
            not_run("py_tput", name, ctx["reasons"][name])
    state["quit"] = True
    start.wait()
    close(ctx, callers)


def phase_import(ctx, args):
    """Cold import: a fresh interpreter per sample, the import timed inside it
    (interpreter start-up excluded; the file cache is warm, .pyc files exist)."""
    code = ("import time,sys; t=time.perf_counter(); import %s; "
            "sys.stdout.write(repr(time.perf_counter()-t))")
    for mod, name in (("llmux", "import_llmux"), ("openai", "import_openai"),
                      ("litellm", "import_litellm")):
        if mod in ctx["skip"]:
            not_run("py_import", name, ctx["skip_reason"])
            continue
        samples = []
        reason = None
        for i in range(args.reps + 1):
            p = subprocess.run([sys.executable, "-c", code % mod], capture_output=True,
                               text=True, env=os.environ.copy(), timeout=120)
            if p.returncode != 0:
                reason = "import %s failed: %s" % (mod, (p.stderr.strip().splitlines() or [""])[-1])
                break
            if i > 0:  # the first run may still write .pyc files
                samples.append(float(p.stdout) * 1e3)
        if reason:
            not_run("py_import", name, reason)
        else:
            emit({"suite": "py_import", "name": name, "unit": "ms", "samples": samples})
            log("import %s: median %.1f ms" % (mod, statistics.median(samples)))


# ------------------------------------------------------------------ helpers

def prepare(ctx):
    callers = {}
    ctx["reasons"] = {}
    for name, maker, base, fb in ROWS:
        try:
            made = maker(ctx)
        except Exception as e:  # noqa: BLE001
            made = "%s: %s" % (type(e).__name__, e)
        if isinstance(made, str):
            ctx["reasons"][name] = made
            log("%s: not run: %s" % (name, made))
            continue
        call, closer = made
        try:
            check(call())
        except Exception as e:  # noqa: BLE001
            ctx["reasons"][name] = "first call failed: %s: %s" % (type(e).__name__, e)
            log("%s: not run: %s" % (name, ctx["reasons"][name]))
            continue
        callers[name] = (call, closer)
    return callers


def close(ctx, callers):
    for call, closer in callers.values():
        if closer:
            closer()
    if ctx.get("floor"):
        ctx["floor"].close()
    if ctx.get("gw") is not None:
        ctx["gw"].close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--phase", choices=["seq", "threads", "import"], required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--secs", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--floor-lib", default="")
    ap.add_argument("--placement", default="")
    ap.add_argument("--skip", default="", help="comma list: openai,litellm")
    ap.add_argument("--skip-reason", default="skipped (--skip)",
                    help="the reason the report gives for the skipped rows")
    args = ap.parse_args()
    ctx = {"base": args.base.rstrip("/"), "skip": set(filter(None, args.skip.split(","))),
           "skip_reason": args.skip_reason,
           "floor": None, "floor_reason": "no floor library (--floor-lib)"}
    if args.phase == "import":
        phase_import(ctx, args)
        return
    sim(ctx["base"], "PUT", "a", {})
    sim(ctx["base"], "PUT", "bad", {"faults": [{"type": "status", "status": 503, "count": -1}]})
    if args.floor_lib:
        try:
            ctx["floor"] = Floor(args.floor_lib)
        except OSError as e:
            ctx["floor_reason"] = "cannot load the floor library: %s" % e
    if args.phase == "seq":
        phase_seq(ctx, args)
    else:
        phase_threads(ctx, args)


if __name__ == "__main__":
    main()
