"""A Gemini target through the Python binding: plain chat, a tool call and its
result turn (the thought signature travels in the tool-call id), streaming,
and Gemini's errors as the binding's exception classes."""

import json

import pytest

import llmux


def gemini_gateway(sim, dep, model="gemini-sim", fallback_dep=None):
    providers = {"g": {"type": "gemini", "base_url": "%s/%s/v1beta" % (sim.url, dep)}}
    targets = [{"provider": "g", "model": model}]
    if fallback_dep:
        providers["o"] = {"type": "openai", "base_url": sim.base_url(fallback_dep)}
        targets.append({"provider": "o", "model": "m1"})
    return llmux.Gateway({"providers": providers, "models": {"smart": {"targets": targets}},
                          "defaults": {"timeout_ms": 10000, "connect_timeout_ms": 2000}})


TOOLS = [{"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object",
                                     "properties": {"echo": {"type": "string"}}}}}]


def test_gemini_plain_chat(sim, uniq):
    a = uniq("g")
    with gemini_gateway(sim, a) as gw:
        resp = gw.chat.completions.create(model="smart", messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello gemini"}])
        assert resp.choices[0].message.content == "[%s] hello gemini" % a
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.prompt_tokens == 5  # ceil((8 + 12) / 4)
        assert resp.usage.completion_tokens == 3
        assert resp.llmux.provider == "g"
    sent = sim.state(a)["last_request"]
    assert sent["path"] == "/%s/v1beta/models/gemini-sim:generateContent" % a
    body = sent["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hello gemini"}]}]


def test_gemini_tool_call_and_result_turn(sim, uniq):
    a = uniq("g")
    with gemini_gateway(sim, a) as gw:
        first = gw.chat.completions.create(
            model="smart", messages=[{"role": "user", "content": "find it"}],
            tools=TOOLS, tool_choice="required")
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        call = choice.message.tool_calls[0]
        assert call.function.name == "lookup"
        assert json.loads(call.function.arguments) == {"echo": "find it"}
        assert call.id.endswith("__ts__c2ltLXNpZwlookup==")
        # the next turn, as an OpenAI client sends it: the signature is restored
        second = gw.chat.completions.create(model="smart", tools=TOOLS, messages=[
            {"role": "user", "content": "find it"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": "lookup", "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "found"}])
        assert second.choices[0].finish_reason == "stop"
    body = sim.state(a)["last_request"]["body"]
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "c2ltLXNpZwlookup=="
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "lookup", "response": {"result": "found"}}}]}


def test_gemini_stream_agrees_with_unstreamed(sim, uniq):
    a = uniq("g")
    with gemini_gateway(sim, a, model="gemini-cached") as gw:
        msgs = [{"role": "user", "content": "one two three"}]
        plain = gw.chat.completions.create(model="smart", messages=msgs)
        stream = gw.chat.completions.create(model="smart", messages=msgs, stream=True,
                                            stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == plain.choices[0].message.content == "[%s] one two three" % a
        assert chunks[-1].choices == []
        assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens == 7
        assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 2
        assert stream.completion.choices[0].finish_reason == "stop"
        # a tool call streams as one delta with its whole arguments
        tool_chunks = [c for c in gw.chat.completions.create(
            model="smart", messages=msgs, tools=TOOLS, tool_choice="required", stream=True)
            if c.choices and c.choices[0].delta.tool_calls]
        assert len(tool_chunks) == 1
        delta = tool_chunks[0].choices[0].delta.tool_calls[0]
        assert json.loads(delta.function.arguments) == {"echo": "one two three"}
        assert tool_chunks[0].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("status,exc", [
    (400, llmux.BadRequestError),
    (403, llmux.PermissionDeniedError),
    (404, llmux.NotFoundError),
    (429, llmux.RateLimitError),
    (503, llmux.ProviderError),
])
def test_gemini_errors(sim, uniq, status, exc):
    a = uniq("g")
    sim.configure(a, faults=[{"type": "status", "status": status}])
    with gemini_gateway(sim, a) as gw:
        with pytest.raises(exc) as info:
            gw.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
        assert info.value.http_status == status


def test_gemini_blocked_prompt_and_fallback(sim, uniq):
    a, b = uniq("g"), uniq("o")
    with gemini_gateway(sim, a, model="gemini-blocked") as gw:
        with pytest.raises(llmux.ContentFilterError):
            gw.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
    # an image URL without a type cannot be served: the next target answers
    with gemini_gateway(sim, a, fallback_dep=b) as gw:
        resp = gw.chat.completions.create(model="smart", messages=[{"role": "user", "content": [
            {"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": "https://x.test/img"}}]}])
        assert resp.llmux.provider == "o"
        assert resp.llmux.trace["attempts"][0]["outcome"] == "cannot_serve"
