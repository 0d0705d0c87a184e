"""The spend report: llmux_spend_json through gw.spend()."""

import pytest

import llmux


def user(text):
    return [{"role": "user", "content": text}]


def _rows(report):
    return {row["group"]: row for row in report["rows"]}


def test_spend_by_task_and_workflow(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    create = gw.chat.completions.create
    create(model="smart", messages=user("one two"), task="research", workflow="wf-a")
    create(model="smart", messages=user("three"), task="research", workflow="wf-b")
    create(model="smart", messages=user("four five six"), task="draft", workflow="wf-a")
    with pytest.raises(llmux.UnknownModelError):
        create(model="missing", messages=user("x"), task="draft", workflow="wf-a")

    by_task = gw.spend(group_by="task")
    assert by_task["group_by"] == "task"
    rows = _rows(by_task)
    assert rows["research"]["calls"] == 2
    assert rows["draft"]["calls"] >= 1
    assert rows["research"]["errors"] == 0
    assert rows["research"]["completion_tokens"] == 3 + 2  # "[dep] one two", "[dep] three"
    assert rows["research"]["prompt_tokens"] == 2 + 2
    assert rows["research"]["unpriced_calls"] == 2
    assert rows["research"]["cost_usd"] is None  # no priced call: unknown, not 0
    total = by_task["total"]
    assert total["calls"] >= 3
    assert total["prompt_tokens"] == sum(r["prompt_tokens"] for r in by_task["rows"])

    by_wf = _rows(gw.spend(group_by="workflow"))
    assert by_wf["wf-a"]["calls"] >= 2 and by_wf["wf-b"]["calls"] == 1

    by_model = _rows(gw.spend("model"))
    assert by_model["m0"]["calls"] == 3
    by_provider = _rows(gw.spend("provider"))
    assert by_provider["p0"]["calls"] == 3

    one = gw.spend()
    assert one["total"]["calls"] == total["calls"]
    assert len(one["rows"]) <= 1


def test_spend_by_key_is_hashed(gateway, uniq):
    import hashlib
    gw = gateway([uniq("a")])
    gw.chat.completions.create(model="smart", messages=user("k"), key="sk-gw-team-1")
    gw.chat.completions.create(model="smart", messages=user("k"), key="sk-gw-team-1")
    gw.chat.completions.create(model="smart", messages=user("k"))
    report = gw.spend("key")
    rows = _rows(report)
    hashed = "key-" + hashlib.sha256(b"sk-gw-team-1").hexdigest()[:16]
    assert rows[hashed]["calls"] == 2, rows
    assert "sk-gw-team-1" not in str(report)


def test_spend_counts_errors(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 500, "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.ProviderError):
        gw.chat.completions.create(model="smart", messages=user("x"), task="fails")
    rows = _rows(gw.spend("task"))
    assert rows["fails"]["errors"] == 1


def test_spend_fresh_gateway_is_empty(gateway, uniq):
    gw = gateway([uniq("a")])
    report = gw.spend("task")
    assert report["rows"] == []
    assert report["total"]["calls"] == 0


def test_spend_bad_group(gateway, uniq):
    gw = gateway([uniq("a")])
    with pytest.raises(llmux.LlmuxError):
        gw.spend("colour")
