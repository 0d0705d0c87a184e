"""Routing from Python: the dry run and the health table."""
import pytest

import llmux


def test_dry_run_and_health(config_for, uniq, sim):
    a, b = uniq("a"), uniq("b")
    cfg = config_for([a, b])
    cfg["rules"] = [{"when": {"task": "t"}, "use": "smart"}]
    cfg["routing"] = {"cooldown": {"after_failures": 1, "ms": 60000}}
    with llmux.Gateway(cfg) as gw:
        plan = gw.route("smart", [{"role": "user", "content": "hi"}], task="t")
        assert plan["alias"] == "smart" and plan["rule"] == 0
        assert [c["provider"] for c in plan["candidates"]] == ["p0", "p1"]
        assert sim.requests(a) == 0  # a dry run calls nobody
        sim.configure(a, faults=[{"type": "status", "status": 503, "count": 1}])
        gw.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
        states = {h["provider"]: h["state"] for h in gw.health()}
        assert states == {"p0": "cooldown", "p1": "ok"}
        plan = gw.route("smart", [{"role": "user", "content": "hi"}])
        assert plan["skipped"][0]["provider"] == "p0"
        assert plan["skipped"][0]["reason"].startswith("cooling down for ")
        with pytest.raises(llmux.UnknownModelError):
            gw.route("nope", [{"role": "user", "content": "hi"}])
