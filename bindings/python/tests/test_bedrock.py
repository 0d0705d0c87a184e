"""A Bedrock target through the Python binding: SigV4-signed calls to the
simulator's Converse API (it verifies the signature with its test secret),
a tool call and its result turn, a stream, and errors by class."""

import json

import pytest

import llmux

SIM_SECRET = "llmux-sim-bedrock-secret"  # tools/llmux-sim/bedrock.h


@pytest.fixture
def bedrock(sim, monkeypatch):
    """bedrock(deployment) -> an open Gateway whose alias "br" is a Bedrock
    target on that simulator deployment; closed at the end of the test."""
    monkeypatch.setenv("LLMUX_PY_AWS_AK", "AKIDPYTEST")
    monkeypatch.setenv("LLMUX_PY_AWS_SK", SIM_SECRET)
    opened = []

    def make(dep, secret_env="LLMUX_PY_AWS_SK"):
        cfg = {
            "providers": {"aws": {"type": "bedrock", "region": "us-east-1",
                                  "base_url": "%s/%s" % (sim.url, dep),
                                  "access_key_id_env": "LLMUX_PY_AWS_AK",
                                  "secret_access_key_env": secret_env}},
            "models": {"br": {"targets": [{"provider": "aws",
                                           "model": "anthropic.claude-3-haiku-20240307-v1:0"}]}},
            "defaults": {"timeout_ms": 10000, "connect_timeout_ms": 2000},
        }
        gw = llmux.Gateway(cfg)
        opened.append(gw)
        return gw

    yield make
    for gw in opened:
        gw.close()


TOOLS = [{"type": "function", "function": {
    "name": "weather", "parameters": {"type": "object",
                                      "properties": {"echo": {"type": "string"}}}}}]


def test_bedrock_chat(sim, bedrock, uniq):
    dep = uniq("br")
    gw = bedrock(dep)
    resp = gw.chat.completions.create(model="br",
                                      messages=[{"role": "user", "content": "hello there"}])
    assert resp.choices[0].message.content == "[%s] hello there" % dep
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 3 and resp.usage.completion_tokens == 3
    assert resp.llmux.provider == "aws"
    last = sim.state(dep)["last_request"]
    assert last["path"] == "/%s/model/anthropic.claude-3-haiku-20240307-v1%%3A0/converse" % dep
    assert last["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDPYTEST/")
    assert last["body"] == {"messages": [{"role": "user",
                                          "content": [{"text": "hello there"}]}]}


def test_bedrock_tool_call_and_result(bedrock, uniq):
    dep = uniq("br")
    gw = bedrock(dep)
    ask = [{"role": "user", "content": "weather in Paris"}]
    resp = gw.chat.completions.create(model="br", messages=ask, tools=TOOLS,
                                      tool_choice="required")
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.id == "tooluse_sim_1"
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"echo": "weather in Paris"}
    follow = ask + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        {"role": "user", "content": "thanks"}]
    resp = gw.chat.completions.create(model="br", messages=follow, tools=TOOLS)
    assert resp.choices[0].message.content == "[%s] thanks" % dep


def test_bedrock_stream_matches_plain(bedrock, uniq):
    dep = uniq("br")
    gw = bedrock(dep)
    msgs = [{"role": "user", "content": "one two three"}]
    plain = gw.chat.completions.create(model="br", messages=msgs)
    stream = gw.chat.completions.create(model="br", messages=msgs, stream=True,
                                        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert stream.completion.choices[0].finish_reason == "stop"
    assert stream.completion.usage.prompt_tokens == plain.usage.prompt_tokens

    # a tool call, streamed
    stream = gw.chat.completions.create(model="br", messages=msgs, tools=TOOLS,
                                        tool_choice="required", stream=True)
    list(stream)
    call = stream.completion.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"echo": "one two three"}
    assert stream.completion.choices[0].finish_reason == "tool_calls"


def test_bedrock_errors(sim, bedrock, uniq):
    dep = uniq("br")
    sim.configure(dep, faults=[{"type": "status", "status": 429},
                               {"type": "status", "status": 400,
                                "body": {"message": "Input is too long for requested model."}}])
    gw = bedrock(dep)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(llmux.RateLimitError) as e:
        gw.chat.completions.create(model="br", messages=msgs)
    assert "ThrottlingException" in str(e.value)
    with pytest.raises(llmux.ContextWindowExceededError):
        gw.chat.completions.create(model="br", messages=msgs)


def test_bedrock_bad_secret_is_auth_error(bedrock, uniq, monkeypatch):
    monkeypatch.setenv("LLMUX_PY_AWS_BAD", "not-the-secret")
    gw = bedrock(uniq("br"), secret_env="LLMUX_PY_AWS_BAD")
    with pytest.raises(llmux.AuthenticationError) as e:
        gw.chat.completions.create(model="br", messages=[{"role": "user", "content": "hi"}])
    assert "InvalidSignatureException" in str(e.value)
    assert "not-the-secret" not in str(e.value)
