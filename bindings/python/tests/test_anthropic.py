"""Calls through an Anthropic target: llmux translates to the Messages API
(llmux-sim's /{deployment}/v1/messages) and back to OpenAI shapes."""

import json

import pytest

import llmux
from llmux import _capi

KEY = "sk-ant-py-test-key"

TOOLS = [{
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather in a city",
                 "parameters": {"type": "object",
                                "properties": {"city": {"type": "string"}}}},
}]


@pytest.fixture
def anthropic_gw(sim, monkeypatch):
    """anthropic_gw(deployment) -> a gateway whose alias "claude" is one
    Anthropic target on that simulator deployment (the key required)."""
    monkeypatch.setenv("LLMUX_PYTEST_ANTHROPIC_KEY", KEY)
    opened = []

    def make(dep):
        sim.configure(dep, require_key=KEY)
        gw = llmux.Gateway({
            "providers": {"claude": {"type": "anthropic", "base_url": "%s/%s" % (sim.url, dep),
                                     "api_key_env": "LLMUX_PYTEST_ANTHROPIC_KEY"}},
            "models": {"claude": {"targets": [{"provider": "claude", "model": "claude-sim"}]}},
            "defaults": {"timeout_ms": 10000, "connect_timeout_ms": 2000},
        })
        opened.append(gw)
        return gw

    yield make
    for gw in opened:
        gw.close()


def test_plain_chat(sim, anthropic_gw, uniq):
    a = uniq("a")
    gw = anthropic_gw(a)
    resp = gw.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "hello there"}])
    assert resp.object == "chat.completion"
    assert resp.id == "msg_sim_%s_1" % a
    assert resp.model == "claude-sim"
    assert resp.choices[0].message.content == "[%s] hello there" % a
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 3)
    assert resp.usage.total_tokens == 8
    sent = sim.state(a)["last_request"]
    assert sent["path"] == "/%s/v1/messages" % a
    assert sent["authorization"] == "Bearer " + KEY  # the x-api-key, as the simulator shows it
    assert sent["body"] == {"model": "claude-sim", "max_tokens": 4096, "system": "be brief",
                            "messages": [{"role": "user", "content": "hello there"}]}


def test_tool_call_and_result_turn(sim, anthropic_gw, uniq):
    a = uniq("a")
    gw = anthropic_gw(a)
    messages = [{"role": "user", "content": "Paris"}]
    resp = gw.chat.completions.create(model="claude", messages=messages, tools=TOOLS,
                                      tool_choice="required", parallel_tool_calls=False)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_sim_1" and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"echo": "Paris"}
    body = sim.state(a)["last_request"]["body"]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    # the tool-result turn: the simulator refuses a tool_use without its result
    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C"})
    resp2 = gw.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    assert resp2.choices[0].message.content == "[%s] 18C" % a
    sent = sim.state(a)["last_request"]["body"]["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_sim_1", "content": "18C"}]}


def test_stream_matches_unstreamed(sim, anthropic_gw, uniq):
    a = uniq("a")
    gw = anthropic_gw(a)
    messages = [{"role": "user", "content": "one two three"}]
    plain = gw.chat.completions.create(model="claude", messages=messages)
    stream = gw.chat.completions.create(model="claude", messages=messages, stream=True,
                                        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content == "[%s] one two three" % a
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    done = stream.completion
    assert done.choices[0].message.content == plain.choices[0].message.content
    assert done.usage.prompt_tokens == plain.usage.prompt_tokens
    assert done.usage.completion_tokens == plain.usage.completion_tokens


def test_stream_tool_call(sim, anthropic_gw, uniq):
    a = uniq("a")
    gw = anthropic_gw(a)
    stream = gw.chat.completions.create(model="claude", messages=[{"role": "user",
                                                                   "content": "Oslo"}],
                                        tools=TOOLS, tool_choice="required", stream=True)
    chunks = list(stream)
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks
              if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].id == "toolu_sim_1" and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments for d in deltas)) == {"echo": "Oslo"}
    call = stream.completion.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"echo": "Oslo"}
    assert stream.completion.choices[0].finish_reason == "tool_calls"


def test_overloaded_is_provider_error(sim, anthropic_gw, uniq):
    a = uniq("a")
    gw = anthropic_gw(a)
    sim.configure(a, require_key=KEY, faults=[{"type": "status", "status": 529}])
    with pytest.raises(llmux.ProviderError) as ei:
        gw.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert ei.value.status == _capi.LLMUX_ERR_PROVIDER and ei.value.http_status == 529
    assert "overloaded_error" in ei.value.message
    assert KEY not in ei.value.message
