#!/usr/bin/env python3
"""Per-call overhead of the Python layer over a bare ctypes llmux_chat loop.

Starts llmux-sim (LLMUX_SIM), pins it and this process to one core (the
design doc's setup for loopback numbers), then times, sequentially:

  bare    llmux_chat + llmux_result_status + llmux_result_json + llmux_result_free
          on a pre-encoded request (the floor: what C + ctypes cost)
  create  gw.chat.completions.create(model=..., messages=...) and reading
          resp.choices[0].message.content (what a user pays)

and prints microseconds per call for each, best of --rounds, and the difference.

    LLMUX_LIB_PATH=<prefix>/lib/libllmux.so LLMUX_SIM=<build>/bin/llmux-sim \\
        python3 bindings/python/benchmarks/overhead.py [--calls 20000] [--no-pin]
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import llmux  # noqa: E402
from llmux import _capi  # noqa: E402


def start_sim(path, cpu):
    tmp = tempfile.mkdtemp()
    port_file = os.path.join(tmp, "port")
    cmd = [path, "--port", "0", "--port-file", port_file, "--quiet"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    for _ in range(1000):
        if os.path.exists(port_file):
            with open(port_file) as f:
                text = f.read()
            if text.endswith("\n"):
                return proc, int(text)
        time.sleep(0.01)
    proc.kill()
    raise SystemExit("llmux-sim did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--sim", default=os.environ.get("LLMUX_SIM"))
    args = ap.parse_args()
    cpu = None if args.no_pin else sorted(os.sched_getaffinity(0))[0]
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    proc, port = start_sim(args.sim, cpu)
    try:
        config = {
            "providers": {"a": {"type": "openai",
                                "base_url": "http://127.0.0.1:%d/bench/v1" % port}},
            "models": {"smart": {"targets": [{"provider": "a", "model": "m-a"}]}},
        }
        messages = [{"role": "user", "content": "hello, how are you today?"}]
        request = json.dumps({"model": "smart", "messages": messages}).encode()
        gw = llmux.Gateway(config)
        lib = _capi.load()
        chat, status, rjson, rfree = (lib.llmux_chat, lib.llmux_result_status,
                                      lib.llmux_result_json, lib.llmux_result_free)
        handle = gw._handle
        res = ctypes.c_void_p()
        ref = ctypes.byref(res)

        def bare(n):
            t0 = time.perf_counter()
            for _ in range(n):
                chat(handle, request, None, ref)
                status(res)
                rjson(res)
                rfree(res)
            return time.perf_counter() - t0

        create = gw.chat.completions.create

        def sdk(n):
            t0 = time.perf_counter()
            for _ in range(n):
                create(model="smart", messages=messages).choices[0].message.content
            return time.perf_counter() - t0

        def sdk_tagged(n):
            t0 = time.perf_counter()
            for _ in range(n):
                create(model="smart", messages=messages, task="draft", workflow="wf",
                       timeout=30.0).choices[0].message.content
            return time.perf_counter() - t0

        # warm up (connections, caches)
        bare(500)
        sdk(500)
        # Interleave the variants round by round (so drift and noise from other
        # processes hit all of them alike) and keep each one's best round.
        variants = (("bare", bare), ("create", sdk), ("create+tags", sdk_tagged))
        results = {name: float("inf") for name, _ in variants}
        for _ in range(args.rounds):
            for name, fn in variants:
                results[name] = min(results[name], fn(args.calls) / args.calls * 1e6)
        for name, us in results.items():
            print("%-12s %8.2f us/call  (%8.0f calls/s)" % (name, us, 1e6 / us))
        floor = results["bare"]
        print("python overhead: create %+.2f us/call, create+tags %+.2f us/call over bare ctypes"
              % (results["create"] - floor, results["create+tags"] - floor))
        print("pinned to cpu %s" % cpu if cpu is not None else "not pinned")
        gw.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
