#!/usr/bin/env python3
"""An agent-style workflow through llmux: research, plan, draft, review, format.

Each step is one chat call tagged with the workflow and its task, so the
gateway's ledger can report spend per step. Cheap steps go to the "fast"
alias, the ones that need judgment to "smart"; each alias falls back to a
backup provider when its first target fails. Every step prints what it cost,
exactly: "gpt-4o-mini" is priced by llmux's built-in table, the other models
by the config's "prices" (USD per million tokens; docs/cost.md).

Run it against the provider simulator (tools/llmux-sim):

    llmux-sim --port 8089 &
    LLMUX_LIB_PATH=<prefix>/lib/libllmux.so \\
        python3 examples/python/agent_workflow.py --sim-url http://127.0.0.1:8089

--fail-first makes the simulator fail the "smart" alias's first target once
(HTTP 503), to show a fallback in the trace.
"""

import argparse
import json
import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

try:
    import llmux
except ImportError:  # not pip-installed: use the binding from this checkout
    sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
    import llmux

if not os.environ.get("LLMUX_LIB_PATH"):
    _built = os.path.join(REPO, "build", "lib", "libllmux.so")
    if os.path.exists(_built):
        os.environ["LLMUX_LIB_PATH"] = _built

WORKFLOW = "blog-post"

# (task, alias, instruction)
STEPS = [
    ("research", "fast", "Collect three facts about in-process LLM gateways"),
    ("plan", "smart", "Outline a short blog post from these facts"),
    ("draft", "smart", "Write the post from this outline"),
    ("review", "smart", "Review this draft and list fixes"),
    ("format", "fast", "Format the reviewed post as Markdown"),
]


def make_config(sim_url):
    def provider(deployment):
        return {"type": "openai", "base_url": "%s/%s/v1" % (sim_url.rstrip("/"), deployment)}

    return {
        "providers": {
            "fast-co": provider("agent-fast"),
            "smart-co": provider("agent-smart"),
            "backup-co": provider("agent-backup"),
        },
        "models": {
            "fast": {"targets": [{"provider": "fast-co", "model": "gpt-4o-mini"},
                                 {"provider": "backup-co", "model": "backup-small"}]},
            "smart": {"targets": [{"provider": "smart-co", "model": "smart-large"},
                                  {"provider": "backup-co", "model": "backup-large"}]},
        },
        "defaults": {"timeout_ms": 30000, "connect_timeout_ms": 5000},
        # gpt-4o-mini comes from the built-in table; these are the config's own
        "prices": {
            "smart-large": {"input_mtok": 3, "output_mtok": 15, "cache_read_mtok": 0.30},
            "backup-small": {"input_mtok": 0.10, "output_mtok": 0.40},
            "backup-large": {"input_mtok": 1.25, "output_mtok": 10},
        },
    }


def sim_fault(sim_url, deployment, settings):
    req = urllib.request.Request("%s/_sim/deployments/%s" % (sim_url.rstrip("/"), deployment),
                                 data=json.dumps(settings).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def fmt_cost(cost):
    return "unknown" if cost is None else "$%.9f" % cost


def run(sim_url, fail_first=False):
    if fail_first:
        sim_fault(sim_url, "agent-smart", {"faults": [{"type": "status", "status": 503}]})
    total_cost = 0.0
    unpriced = 0
    with llmux.Gateway(make_config(sim_url)) as gw:
        context = "in-process LLM gateways"
        print("%-9s %-6s %-13s %-10s %-12s %-9s %7s  %s" % (
            "step", "alias", "model", "provider", "cost", "price", "ms", "attempts"))
        t0 = time.perf_counter()
        for task, alias, instruction in STEPS:
            resp = gw.chat.completions.create(
                model=alias,
                messages=[
                    {"role": "system", "content": "You are step '%s' of a writing agent." % task},
                    {"role": "user", "content": "%s: %s" % (instruction, context)},
                ],
                workflow=WORKFLOW, task=task, timeout=30.0)
            info = resp.llmux
            attempts = " -> ".join("%s:%s" % (a["provider"], a.get("http_status"))
                                   for a in info.trace.get("attempts", []))
            price = info.trace.get("price") or {}
            print("%-9s %-6s %-13s %-10s %-12s %-9s %7.2f  %s" % (
                task, alias, info.model, info.provider, fmt_cost(info.cost_usd),
                price.get("source", "none").split(" (")[0], info.trace.get("total_ms", 0.0),
                attempts))
            if info.cost_usd is None:
                unpriced += 1
            else:
                total_cost += info.cost_usd
            context = resp.choices[0].message.content or ""
        elapsed = (time.perf_counter() - t0) * 1000
        print("total: %d steps in %.1f ms, cost %s%s" % (
            len(STEPS), elapsed,
            "unknown" if unpriced == len(STEPS) else "$%.9f" % total_cost,
            " (%d steps unpriced)" % unpriced if unpriced and unpriced < len(STEPS) else ""))
        print("final output: %s" % (context if len(context) <= 100 else context[:97] + "..."))

        report = gw.spend(group_by="task")
        print("\nspend by task:")
        print("  %-9s %5s %6s %8s %8s %12s" % ("task", "calls", "errors", "prompt", "compl",
                                               "cost"))
        for row in report.get("rows", []):
            cost = row.get("cost_usd")
            if row.get("unpriced_calls", 0) == row.get("calls"):
                cost = None
            print("  %-9s %5d %6d %8d %8d %12s" % (
                row["group"], row["calls"], row.get("errors", 0), row.get("prompt_tokens", 0),
                row.get("completion_tokens", 0), fmt_cost(cost)))
        total = report.get("total", {})
        print("  %-9s %5d %6d %8d %8d %12s" % ("total", total.get("calls", 0),
                                               total.get("errors", 0),
                                               total.get("prompt_tokens", 0),
                                               total.get("completion_tokens", 0),
                                               fmt_cost(total.get("cost_usd"))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sim-url", default=os.environ.get("LLMUX_SIM_URL"),
                        help="base URL of a running llmux-sim, e.g. http://127.0.0.1:8089 "
                             "(default: env LLMUX_SIM_URL)")
    parser.add_argument("--fail-first", action="store_true",
                        help="make the smart alias's first target fail once (shows fallback)")
    args = parser.parse_args(argv)
    if not args.sim_url:
        parser.error("give --sim-url http://127.0.0.1:PORT or set LLMUX_SIM_URL")
    try:
        return run(args.sim_url, args.fail_first)
    except llmux.LlmuxError as e:
        print("llmux: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
