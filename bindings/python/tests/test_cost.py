"""The cost of every call (issue 19): .llmux.cost_usd, the trace's price and the
spend report's exact totals, from prices in the config."""

import json
import math

import llmux

# USD per million tokens, as the config writes them
IN_MTOK, OUT_MTOK = 1.2345678, 3.0375
FEMTO_IN, FEMTO_OUT = 1234567800, 3037500000  # femto-dollars per token


def user(text):
    return [{"role": "user", "content": text}]


def nusd(prompt, completion):
    """The cost in nano-dollars: the exact femto-dollar sum, rounded half up."""
    return (prompt * FEMTO_IN + completion * FEMTO_OUT + 500000) // 1000000


def priced_gateway(config_for, deployments):
    cfg = config_for(deployments)
    cfg["prices"] = {"m0": {"input_mtok": IN_MTOK, "output_mtok": OUT_MTOK}}
    cfg["models"]["unpriced"] = {"targets": [{"provider": "p0", "model": "other"}]}
    return llmux.Gateway(cfg)


def test_cost_usd_carries_the_exact_cost(config_for, uniq):
    a = uniq("a")
    with priced_gateway(config_for, [a]) as gw:
        text = "stream me five words please"
        resp = gw.chat.completions.create(model="smart", messages=user(text))
        prompt = math.ceil(len(text) / 4)
        assert resp.usage.prompt_tokens == prompt
        completion = resp.usage.completion_tokens
        want = nusd(prompt, completion)
        assert resp.llmux.cost_usd == want / 1e9
        trace = resp.llmux.trace
        assert trace["cost_nusd"] == want
        assert trace["cost_estimated"] is False
        assert trace["price"] == {"entry": "m0", "source": "config", "long_context": False}

        # streamed costs exactly what unstreamed costs
        stream = gw.chat.completions.create(model="smart", messages=user(text), stream=True)
        list(stream)
        assert stream.llmux.cost_usd == resp.llmux.cost_usd

        # an unpriced model is unknown, never 0
        other = gw.chat.completions.create(model="unpriced", messages=user(text))
        assert other.llmux.cost_usd is None
        assert other.llmux.trace["price"] is None

        total = gw.spend()["total"]
        assert total["cost_nusd"] == 2 * want
        assert total["priced_calls"] == 2
        assert total["unpriced_calls"] == 1
        assert total["estimated_calls"] == 0


def test_stopped_stream_is_estimated(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 50}])  # the close comes mid-stream
    with priced_gateway(config_for, [a]) as gw:
        stream = gw.chat.completions.create(
            model="smart", messages=user("alpha beta gamma delta epsilon zeta"), stream=True)
        next(stream)
        next(stream)
        stream.close()
        assert stream.cancelled
        info = stream.llmux
        assert info.trace["cost_estimated"] is True, json.dumps(info.trace)
        assert info.cost_usd is not None and info.cost_usd > 0
        assert info.cost_usd == info.trace["cost_nusd"] / 1e9
        total = gw.spend()["total"]
        assert total["estimated_calls"] == 1
        assert total["cost_nusd"] == info.trace["cost_nusd"]
