"""Gateway keys, budgets, rate limits and alerts through the Python binding
(docs/keys-and-budgets.md): add / rotate / revoke / list, refusals before any
provider, alerts as dicts, the team and alias spend groupings, and no key
material in anything the binding hands back."""

import hashlib
import json
import threading

import pytest

import llmux

KEY_SUPPORT = "sk-py-support-0123456789"
KEY_RUNNER = "sk-py-runner-0123456789"
KEY_ROTATED = "sk-py-rotated-0123456789"
SECRETS = (KEY_SUPPORT, KEY_RUNNER, KEY_ROTATED)

PRICES = {"m0": {"input_mtok": 1.2345678, "output_mtok": 3.0375}}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def assert_clean(obj):
    text = obj if isinstance(obj, str) else json.dumps(obj)
    for secret in SECRETS:
        assert secret not in text
        assert sha(secret)[:16] not in text


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture
def keyed(sim, config_for, uniq):
    def make(**extra):
        dep = uniq("k")
        cfg = config_for([dep])
        cfg["prices"] = PRICES
        cfg["keys"] = {"support-bot": {"sha256": sha(KEY_SUPPORT), "team": "support",
                                       "models": ["smart"]}}
        cfg.update(extra)
        gw = llmux.Gateway(cfg)
        return gw, dep
    opened = []

    def factory(**extra):
        gw, dep = make(**extra)
        opened.append(gw)
        return gw, dep
    yield factory
    for gw in opened:
        gw.close()


def test_keys_add_rotate_revoke_and_refusals(sim, keyed):
    gw, dep = keyed()
    create = gw.chat.completions.create
    out = create(model="smart", messages=user("hi"), key=KEY_SUPPORT, max_tokens=8)
    assert out.choices[0].message.content
    assert sim.requests(dep) == 1

    with pytest.raises(llmux.AuthenticationError) as e:
        create(model="smart", messages=user("hi"), key="sk-py-unknown-0123456789")
    assert str(e.value) == "unknown gateway key"
    assert sim.requests(dep) == 1

    gw.add_key("runner", key=KEY_RUNNER, team="ops", models=["smart"],
               expires="2099-01-01T00:00:00Z")
    create(model="smart", messages=user("hi"), key=KEY_RUNNER)
    with pytest.raises(llmux.InvalidArgumentError) as e:
        gw.add_key("runner", key=KEY_ROTATED)
    assert str(e.value) == 'a key with id "runner" already exists'
    assert_clean(str(e.value))

    gw.rotate_key("runner", KEY_ROTATED)
    with pytest.raises(llmux.AuthenticationError):
        create(model="smart", messages=user("hi"), key=KEY_RUNNER)
    create(model="smart", messages=user("hi"), key=KEY_ROTATED)

    gw.revoke_key("runner")
    with pytest.raises(llmux.AuthenticationError) as e:
        create(model="smart", messages=user("hi"), key=KEY_ROTATED)
    assert str(e.value) == 'gateway key "runner" is revoked'
    assert_clean(e.value.trace)
    with pytest.raises(llmux.InvalidArgumentError):
        gw.revoke_key("nobody")
    assert sim.requests(dep) == 3

    keys = gw.keys()
    assert_clean(keys)
    assert keys == [
        {"id": "support-bot", "team": "support", "state": "active", "direct": False,
         "models": ["smart"]},
        {"id": "runner", "team": "ops", "state": "revoked", "direct": False,
         "models": ["smart"], "expires": "2099-01-01T00:00:00Z"},
    ]

    by_team = {r["group"]: r for r in gw.spend("team")["rows"]}
    assert by_team["support"]["calls"] == 1
    # the old secret after rotation is an unknown key: not the team's
    assert by_team["ops"]["calls"] == 3 and by_team["ops"]["errors"] == 1
    by_alias = {r["group"]: r for r in gw.spend("alias")["rows"]}
    assert by_alias["smart"]["calls"] == 3  # calls refused at auth have no alias
    by_key = gw.spend("key")
    assert_clean(by_key)
    assert {r["group"] for r in by_key["rows"]} == {"support-bot", "runner", "(unknown key)"}


def test_permission_and_rate_limit_before_any_provider(sim, keyed):
    gw, dep = keyed(keys={
        "support-bot": {"sha256": sha(KEY_SUPPORT), "models": ["other"],
                        "limits": {"rpm": 1}}},
        models={"smart": {"targets": [{"provider": "p0", "model": "m0"}]},
                "other": {"targets": [{"provider": "p0", "model": "m0"}]}})
    create = gw.chat.completions.create
    with pytest.raises(llmux.PermissionDeniedError) as e:
        create(model="smart", messages=user("hi"), key=KEY_SUPPORT)
    assert str(e.value) == 'gateway key "support-bot" may not use the alias "smart"'
    create(model="other", messages=user("hi"), key=KEY_SUPPORT)
    with pytest.raises(llmux.RateLimitError) as e:
        create(model="other", messages=user("hi"), key=KEY_SUPPORT)
    # one request a minute: the wait is most of a minute
    assert 59.0 < e.value.retry_after <= 60.0
    assert e.value.trace["retry_after_ms"] == round(e.value.retry_after * 1000)
    assert sim.requests(dep) == 1


def test_budget_alerts_and_refusal(sim, keyed):
    # each call: 2 prompt tokens ("hi"), 2 completion words ("[dep] hi") at PRICES
    gw, dep = keyed(teams={"support": {"budgets": [
        {"usd": 0.0001, "period": "day", "alert_at": [0.25, 0.5]}]}})
    alerts = []
    lock = threading.Lock()

    def on_alert(alert):
        with lock:
            alerts.append(alert)
    gw.on_alert(on_alert)
    create = gw.chat.completions.create
    spent = 0
    refused = None
    for _ in range(20):
        try:
            out = create(model="smart", messages=user("hi"), key=KEY_SUPPORT, max_tokens=4)
            spent += round(out.llmux.cost_usd * 1e9)
        except llmux.LlmuxError as err:
            refused = err
            break
    assert isinstance(refused, llmux.BudgetExceededError)
    assert str(refused).startswith('budget exceeded: team "support" day budget of $0.000100 has $')
    assert [a["threshold"] for a in alerts] == [0.25, 0.5]
    assert all(a["scope"] == "team" and a["name"] == "support" and a["period"] == "day"
               for a in alerts)
    assert_clean(alerts)
    budgets = gw.budgets()
    assert budgets == [{"scope": "team", "name": "support", "period": "day",
                        "limit_usd": 0.0001, "spent_usd": budgets[0]["spent_usd"],
                        "held_usd": 0.0, "spent_nusd": spent, "held_nusd": 0}]
    assert spent <= 100000
    gw.on_alert(None)


def test_async_gateway_keys_budgets_and_alerts(sim, config_for, uniq):
    """AsyncGateway has the key, budget and dry-run methods itself."""
    import asyncio

    dep = uniq("ka")
    cfg = config_for([dep])
    cfg["prices"] = PRICES

    async def main():
        async with llmux.AsyncGateway(cfg) as agw:
            seen = []
            agw.on_alert(seen.append)
            agw.add_key("runner", key=KEY_RUNNER, team="ops",
                        budgets=[{"usd": 1, "period": "day", "alert_at": [0.000001]}])
            assert [k["id"] for k in agw.keys()] == ["runner"]
            r = await agw.chat.completions.create(model="smart", messages=user("hi"),
                                                  key=KEY_RUNNER)
            assert r.llmux.cost_usd > 0
            (b,) = agw.budgets()
            assert b["scope"] == "key" and b["name"] == "runner"
            assert b["spent_nusd"] == round(r.llmux.cost_usd * 1e9)
            assert len(seen) == 1 and seen[0]["name"] == "runner"
            assert agw.route("smart", user("hi"), key=KEY_RUNNER)["alias"] == "smart"
            assert isinstance(agw.health(), list) and agw.warnings() == []
            agw.rotate_key("runner", KEY_ROTATED)
            with pytest.raises(llmux.AuthenticationError):
                await agw.chat.completions.create(model="smart", messages=user("x"),
                                                  key=KEY_RUNNER)
            agw.revoke_key("runner")
            with pytest.raises(llmux.AuthenticationError):
                await agw.chat.completions.create(model="smart", messages=user("x"),
                                                  key=KEY_ROTATED)
            assert_clean(agw.keys())
            assert_clean(agw.budgets())

    asyncio.run(main())
