"""The call log callback and the metrics text (issue 22), the metrics parsed
with prometheus_client's own parser, and the metrics example served over HTTP."""

import importlib.util
import json
import os
import threading
import urllib.request

import pytest

import llmux

parser = pytest.importorskip("prometheus_client.parser")

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "..", "examples", "python", "metrics_server.py")


def user(text):
    return [{"role": "user", "content": text}]


def samples(text):
    """{(sample name, sorted labels): value} from the exposition text."""
    out = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_count_the_calls(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    gw = gateway([a, b])  # alias smart: p0 (m0), then p1 (m1)
    create = gw.chat.completions.create
    create(model="smart", messages=user("one two"), key="gk-team-a")
    create(model="smart", messages=user("three"), key="gk-team-a")
    sim.configure(a, faults=[{"type": "status", "status": 503}])
    create(model="smart", messages=user("four"))       # falls back to p1
    sim.configure(a, faults=[{"type": "status", "status": 400}])
    with pytest.raises(llmux.BadRequestError):
        create(model="smart", messages=user("five"))
    with pytest.raises(llmux.UnknownModelError):
        create(model="missing", messages=user("x"))

    m = samples(gw.metrics())
    calls = {k: v for k, v in m.items() if k[0] == "llmux_calls_total"}
    assert sum(calls.values()) == 5
    assert m[("llmux_calls_total", (("model", "m0"), ("provider", "p0")))] == 3
    assert m[("llmux_calls_total", (("model", "m1"), ("provider", "p1")))] == 1
    assert m[("llmux_calls_total", (("model", "(none)"), ("provider", "(none)")))] == 1
    errors = {k: v for k, v in m.items() if k[0] == "llmux_call_errors_total"}
    assert errors == {
        ("llmux_call_errors_total", (("error_class", "bad_request"), ("model", "m0"), ("provider", "p0"))): 1,
        ("llmux_call_errors_total", (("error_class", "unknown_model"), ("model", "(none)"), ("provider", "(none)"))): 1,
    }
    assert m[("llmux_attempts_total", (("model", "m0"), ("outcome", "provider"), ("provider", "p0")))] == 1
    spend = gw.spend(group_by="key")
    row = [r for r in spend["rows"] if r["group"].startswith("key-")][0]
    key_id = row["group"]
    assert m[("llmux_tokens_total", (("key", key_id), ("kind", "input"), ("model", "m0"), ("team", "")))] \
        == row["prompt_tokens"]
    assert m[("llmux_tokens_total", (("key", key_id), ("kind", "output"), ("model", "m0"), ("team", "")))] \
        == row["completion_tokens"]
    assert m[("llmux_call_duration_seconds_count", ())] == 5
    assert m[("llmux_overhead_seconds_count", ())] == 5
    assert m[("llmux_call_duration_seconds_bucket", (("le", "+Inf"),))] == 5
    assert m[("llmux_calls_in_flight", ())] == 0
    assert m[("llmux_unpriced_calls_total", (("key", key_id), ("model", "m0"), ("team", "")))] == 2


def test_log_callback_records(sim, config_for, uniq):
    a = uniq("a")
    cfg = config_for([a])
    cfg["log"] = {"content": "redacted"}
    got, threads, done = [], set(), threading.Event()

    def on_record(rec):
        threads.add(threading.get_ident())
        got.append(json.loads(rec))

    with llmux.Gateway(cfg) as gw:
        gw.set_log_callback(on_record)
        resp = gw.chat.completions.create(model="smart", messages=user("hello log"),
                                          key="gk-secret-python", workflow="wf", task="t")
        stream = gw.chat.completions.create(model="smart", messages=user("a b c"), stream=True)
        for _ in stream:
            pass
        gw.flush_log()
        gw.set_log_callback(None)
        gw.chat.completions.create(model="smart", messages=user("not logged"))
        gw.flush_log()
    assert threading.get_ident() not in threads
    calls = [r for r in got if r["event.name"] == "llmux.call"]
    attempts = [r for r in got if r["event.name"] == "llmux.attempt"]
    assert len(calls) == 2 and len(attempts) == 2
    first = calls[0]
    assert first["gen_ai.request.model"] == "smart"
    assert first["gen_ai.provider.name"] == "p0"
    assert first["gen_ai.response.model"] == "m0"
    assert first["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens
    assert first["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens
    assert first["llmux.workflow"] == "wf" and first["llmux.task"] == "t"
    assert first["llmux.key_id"].startswith("key-") and len(first["llmux.key_id"]) == 20
    assert first["llmux.status"] == "ok" and first["error.type"] is None
    assert first["llmux.stream"] is False and calls[1]["llmux.stream"] is True
    assert calls[1]["llmux.ttft_ms"] > 0
    assert first["llmux.content"] == "redacted" and len(first["llmux.request.sha256"]) == 64
    assert attempts[0]["llmux.call_id"] == first["llmux.call_id"]
    text = json.dumps(got)
    assert "gk-secret-python" not in text and "hello log" not in text


def test_example_serves_metrics_for_a_scrape(sim, gateway, uniq):
    spec = importlib.util.spec_from_file_location("metrics_server", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gw = gateway([uniq("a")])
    gw.chat.completions.create(model="smart", messages=user("scrape me"))
    server = mod.serve(gw, port=0)
    try:
        url = "http://127.0.0.1:%d/metrics" % server.server_address[1]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            m = samples(r.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert m[("llmux_calls_total", (("model", "m0"), ("provider", "p0")))] == 1
