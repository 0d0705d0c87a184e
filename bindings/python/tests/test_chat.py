"""Plain calls, response shapes, call options, tool calls, the trace."""

import json
import math

import pytest

import llmux


def user(text):
    return [{"role": "user", "content": text}]


def test_plain_call(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    resp = gw.chat.completions.create(model="smart", messages=user("hello there"))
    assert resp.choices[0].message.content == "[%s] hello there" % a
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].index == 0
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-sim-%s-" % a)
    assert resp.model == "m0"
    assert isinstance(resp.created, int)
    assert resp.llmux.provider == "p0"
    assert resp.llmux.model == "m0"
    assert resp.llmux.cost_usd is None  # m0 has no price: unknown, not 0
    assert resp.llmux.http_status == 200
    assert resp.llmux.status == 0
    assert sim.requests(a) == 1


def test_usage(gateway, uniq):
    gw = gateway([uniq("a")])
    text = "one two three four five"  # 23 bytes -> ceil(23/4) = 6 prompt tokens
    resp = gw.chat.completions.create(model="smart", messages=user(text))
    assert resp.usage.prompt_tokens == math.ceil(len(text) / 4)
    assert resp.usage.completion_tokens == 6  # "[dep]" + five words
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_response_object_access(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    resp = gw.chat.completions.create(model="smart", messages=user("shapes"))
    msg = resp.choices[0].message
    assert msg.tool_calls is None          # optional SDK fields read as None
    assert msg.refusal is None
    with pytest.raises(AttributeError):
        msg.no_such_field
    d = resp.to_dict()
    assert isinstance(d, dict) and d["choices"][0]["message"]["content"] == msg.content
    assert resp.model_dump() == d and resp == d
    assert resp["choices"][0]["message"]["content"] == msg.content
    assert "usage" in resp
    assert json.loads(resp.model_dump_json())["id"] == resp.id
    assert "choices" in dir(resp)
    assert repr(msg).startswith("Object(")
    assert isinstance(resp, llmux.ChatCompletion)


def test_array_content_and_multi_turn(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "part one"},
                                     {"type": "text", "text": "part two"}]},
    ]
    resp = gw.chat.completions.create(model="smart", messages=messages)
    assert resp.choices[0].message.content == "[%s] part one part two" % a
    # A response message goes back into messages, as with the OpenAI SDK.
    messages.append(resp.choices[0].message)
    messages.append({"role": "user", "content": "again"})
    resp2 = gw.chat.completions.create(model="smart", messages=messages)
    assert resp2.choices[0].message.content == "[%s] again" % a


def test_unicode_round_trip(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    resp = gw.chat.completions.create(model="smart", messages=user("héllo wörld ✓"))
    assert resp.choices[0].message.content == "[%s] héllo wörld ✓" % a


def test_request_fields_pass_through(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    gw.chat.completions.create(model="smart", messages=user("x"), temperature=0.25,
                               max_tokens=17, user=None, extra_body={"seed": 7})
    body = sim.state(a)["last_request"]["body"]
    assert body["model"] == "m0"          # the target's model, not the alias
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 17
    assert body["seed"] == 7
    assert "user" not in body             # None values are left out


def test_call_options_in_trace(gateway, uniq):
    gw = gateway([uniq("a")])
    resp = gw.chat.completions.create(model="smart", messages=user("x"), key=None,
                                      workflow="wf-1", task="classify", timeout=5.0)
    trace = resp.llmux.trace
    assert trace["model"] == "smart"
    assert trace["workflow"] == "wf-1"
    assert trace["task"] == "classify"


def test_trace_contents(gateway, uniq):
    gw = gateway([uniq("a")])
    resp = gw.chat.completions.create(model="smart", messages=user("trace me"))
    trace = resp.llmux.trace
    assert isinstance(trace, dict)
    assert trace["model"] == "smart"
    assert trace["provider"] == "p0"
    assert trace["provider_model"] == "m0"     # docs/trace.md (llmux.h says "attempt_model")
    assert trace["route"] == "alias"
    assert trace["status"] == "ok"
    assert trace["stream"] is False
    assert isinstance(trace["reason"], str) and trace["reason"]
    assert isinstance(trace["total_ms"], (int, float)) and trace["total_ms"] >= 0
    assert len(trace["attempts"]) == 1
    att = trace["attempts"][0]
    assert att["provider"] == "p0" and att["model"] == "m0"
    assert att["http_status"] == 200
    assert att["status"] == 0
    assert att["outcome"] == "ok" and att["action"] == "answered" and att["error"] is None
    for field in ("outcome", "error", "latency_ms", "action"):
        assert field in att, field
    assert json.loads(resp.llmux.trace_json) == trace
    assert resp.llmux.attempts == trace["attempts"]


def test_direct_provider_model_route(sim, config_for, uniq):
    a = uniq("a")
    cfg = config_for([a])
    cfg["routing"] = {"allow_direct": True}
    with llmux.Gateway(cfg) as gw:
        resp = gw.chat.completions.create(model="p0/custom-model", messages=user("direct"))
        assert resp.llmux.provider == "p0" and resp.llmux.model == "custom-model"
        assert resp.llmux.trace["route"] == "direct"
    assert sim.state(a)["last_request"]["body"]["model"] == "custom-model"
    with llmux.Gateway(config_for([a])) as gw:  # not allowed by default
        with pytest.raises(llmux.UnknownModelError):
            gw.chat.completions.create(model="p0/custom-model", messages=user("direct"))


def test_bad_timeout_value(gateway, uniq):
    gw = gateway([uniq("a")])
    with pytest.raises(ValueError):
        gw.chat.completions.create(model="smart", messages=user("x"), timeout=0)


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}, {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}]


def test_tool_call_required(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    resp = gw.chat.completions.create(model="smart", messages=user("weather in Paris"),
                                      tools=TOOLS, tool_choice="required")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_sim_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"echo": "weather in Paris"}
    assert resp.usage.completion_tokens == 8
    assert sim.state(a)["last_request"]["body"]["tools"][0]["function"]["name"] == "get_weather"


def test_tool_call_named_and_result_round_trip(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    messages = user("what time is it")
    resp = gw.chat.completions.create(
        model="smart", messages=messages, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time"
    messages.append(resp.choices[0].message)
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12:00"})
    messages.append({"role": "user", "content": "thanks"})
    resp2 = gw.chat.completions.create(model="smart", messages=messages, tools=TOOLS)
    assert resp2.choices[0].message.content == "[%s] thanks" % a
    assert resp2.choices[0].message.tool_calls is None


def test_gateway_from_file_and_json_text(config_for, tmp_path, uniq):
    a = uniq("a")
    cfg = config_for([a])
    path = tmp_path / "llmux.json"
    path.write_text(json.dumps(cfg))
    for source in (path, str(path), json.dumps(cfg), json.dumps(cfg).encode()):
        with llmux.Gateway(source) as gw:
            resp = gw.chat.completions.create(model="smart", messages=user("file"))
            assert resp.choices[0].message.content == "[%s] file" % a


def test_chat_raw(gateway, uniq):
    gw = gateway([uniq("a")])
    raw, info = gw.chat_raw('{"model":"smart","messages":[{"role":"user","content":"raw"}]}',
                            task="t")
    assert json.loads(raw)["object"] == "chat.completion"
    assert info.status == 0 and info.provider == "p0"
    raw, info = gw.chat_raw(b'{"model":"nope","messages":[{"role":"user","content":"x"}]}')
    assert info.status == llmux._capi.LLMUX_ERR_UNKNOWN_MODEL
    assert "error" in json.loads(raw)
