"""An Azure OpenAI target (type "azure") through the simulator's Azure routes:
both routes and both kinds of auth, a tool call and its result turn, a
stream that agrees with the plain call, and Azure's error shapes."""

import json

import pytest

import llmux

KEY_ENV = "LLMUX_PY_TEST_AZURE_KEY"
TOKEN_ENV = "LLMUX_PY_TEST_AZURE_TOKEN"

TOOLS = [{
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}]


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture
def azure(sim, monkeypatch):
    """azure(deployment, **provider keys) -> a gateway whose alias "az" is the
    Azure deployment "gpt4o-prod" on the simulator deployment."""
    monkeypatch.setenv(KEY_ENV, "az-py-key")
    monkeypatch.setenv(TOKEN_ENV, "az-py-token")
    opened = []

    def make(dep, **keys):
        provider = {"type": "azure", "base_url": "%s/%s" % (sim.url, dep)}
        provider.update(keys)
        gw = llmux.Gateway({
            "providers": {"azp": provider},
            "models": {"az": {"targets": [{"provider": "azp", "model": "gpt4o-prod"}]}},
            "defaults": {"timeout_ms": 10000, "connect_timeout_ms": 2000},
        })
        opened.append(gw)
        return gw

    yield make
    for gw in opened:
        gw.close()


def test_deployments_route_with_api_key(sim, azure, uniq):
    a = uniq("a")
    sim.configure(a, require_key="az-py-key")
    gw = azure(a, api_version="2024-10-21", api_key_env=KEY_ENV)
    resp = gw.chat.completions.create(model="az", messages=user("hello azure"))
    assert resp.choices[0].message.content == "[%s] hello azure" % a
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 3  # ceil(11 / 4)
    assert resp.llmux.provider == "azp"
    last = sim.state(a)["last_request"]
    assert last["path"] == ("/%s/openai/deployments/gpt4o-prod/chat/completions"
                            "?api-version=2024-10-21" % a)
    assert last["authorization"] == "api-key: az-py-key"
    assert last["body"]["model"] == "gpt4o-prod"


def test_v1_route_tool_call_and_result_turn(sim, azure, uniq):
    a = uniq("a")
    sim.configure(a, require_key="az-py-token")
    gw = azure(a, bearer_token_env=TOKEN_ENV)
    messages = user("weather in Oslo")
    resp = gw.chat.completions.create(model="az", messages=messages, tools=TOOLS,
                                      tool_choice="required")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"echo": "weather in Oslo"}
    last = sim.state(a)["last_request"]
    assert last["path"] == "/%s/openai/v1/chat/completions" % a
    assert last["authorization"] == "Bearer az-py-token"

    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    messages.append({"role": "user", "content": "thanks"})
    resp2 = gw.chat.completions.create(model="az", messages=messages, tools=TOOLS)
    assert resp2.choices[0].message.content == "[%s] thanks" % a
    sent = sim.state(a)["last_request"]["body"]["messages"]
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_stream_is_openai_shaped_and_agrees(azure, uniq):
    a = uniq("a")
    gw = azure(a, api_version="2024-10-21")
    plain = gw.chat.completions.create(model="az", messages=user("one two three"))
    chunks = list(gw.chat.completions.create(model="az", messages=user("one two three"),
                                             stream=True,
                                             stream_options={"include_usage": True}))
    # Azure's prompt-filter chunk (no choices, no usage) never reaches the caller,
    # and its annotation chunk comes with an empty delta
    assert all(c.choices or c.usage for c in chunks)
    assert all(ch.delta is not None for c in chunks for ch in c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_stream_tool_call(azure, uniq):
    gw = azure(uniq("a"))
    stream = gw.chat.completions.create(model="az", messages=user("weather?"), tools=TOOLS,
                                        tool_choice="required", stream=True)
    args = "".join(tc.function.arguments or "" for c in stream for ch in c.choices
                   for tc in (ch.delta.tool_calls or []))
    assert json.loads(args) == {"echo": "weather?"}


@pytest.mark.parametrize("status,cls,code", [
    (400, llmux.ContentFilterError, "content_filter"),
    (429, llmux.RateLimitError, "429"),
    (404, llmux.NotFoundError, "DeploymentNotFound"),
    (401, llmux.AuthenticationError, "401"),
])
def test_azure_errors(sim, azure, uniq, status, cls, code):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": status, "retry_after": "3"}])
    gw = azure(a, api_version="2024-10-21")
    with pytest.raises(cls) as info:
        gw.chat.completions.create(model="az", messages=user("x"))
    assert info.value.http_status == status
    assert info.value.code == code
    assert info.value.retry_after == 3.0
    if status == 400:
        assert "[ResponsibleAIPolicyViolation: hate, violence]" in info.value.message
