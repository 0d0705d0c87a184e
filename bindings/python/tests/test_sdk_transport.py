"""The official openai SDK (and LangChain's ChatOpenAI) through llmux.HTTPTransport /
AsyncHTTPTransport against the simulator: the SDK's code unchanged, only the
client's construction."""

import asyncio
import json

import pytest

import llmux

openai = pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")


def _modules():
    mods = []
    for name in ("httpx2", "httpx"):
        try:
            mods.append(__import__(name))
        except ImportError:
            pass
    return mods


HTTPX_MODULES = _modules()
if not HTTPX_MODULES:
    pytest.skip("neither httpx2 nor httpx is installed", allow_module_level=True)
httpx = HTTPX_MODULES[0]

MSGS = [{"role": "user", "content": "hello there world"}]
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "look something up",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}},
                   "required": ["echo"]}}}]


def client_for(gw, mod=None, key="gk-1", **kw):
    mod = mod or httpx
    return openai.OpenAI(base_url="http://llmux/v1", api_key=key, max_retries=kw.pop(
        "max_retries", 0), http_client=mod.Client(transport=llmux.HTTPTransport(gw)), **kw)


@pytest.mark.parametrize("mod", HTTPX_MODULES, ids=lambda m: m.__name__)
def test_create_headers_and_trace(sim, gateway, uniq, mod):
    a = uniq("a")
    gw = gateway([a])
    client = client_for(gw, mod)
    raw = client.chat.completions.with_raw_response.create(model="smart", messages=MSGS)
    assert raw.status_code == 200
    assert raw.headers["x-llmux-provider"] == "p0"
    assert raw.headers["x-llmux-model"] == "m0"
    assert "x-llmux-cost-usd" not in raw.headers  # no prices in this version
    resp = raw.parse()
    assert isinstance(resp, openai.types.chat.ChatCompletion)
    assert resp.choices[0].message.content == "[%s] hello there world" % a
    assert resp.usage.completion_tokens == 4
    info = llmux.call_info(gw, raw.headers["x-llmux-call-id"])
    assert info.provider == "p0"
    assert [x["outcome"] for x in info.trace["attempts"]] == ["ok"]
    # The gateway key is the bearer token; the provider got no key of ours.
    assert sim.state(a)["last_request"]["authorization"] in (None, "")
    # ... and is charged as the same key as create(key="gk-1") directly.
    gw.chat.completions.create(model="smart", messages=MSGS, key="gk-1")
    rows = gw.spend(group_by="key")["rows"]
    assert [r["calls"] for r in rows] == [2]
    assert rows[0]["group"].startswith("key-")


def test_call_options_from_headers(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    client = client_for(gw, default_headers={"X-Llmux-Workflow": "bot"})
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=MSGS, extra_headers={"X-Llmux-Task": "classify"})
    trace = llmux.call_info(gw, raw.headers["x-llmux-call-id"]).trace
    assert (trace["task"], trace["workflow"]) == ("classify", "bot")
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="smart", messages=MSGS,
                                       extra_headers={"X-Llmux-Timeout": "soon"})
    assert "X-Llmux-Timeout" in ei.value.message
    # "llmux" (what openai_client sends without a key) is no key.
    anon = llmux.openai_client(gw)
    anon.chat.completions.create(model="smart", messages=MSGS)
    groups = sorted((r["group"], r["calls"]) for r in gw.spend(group_by="key")["rows"])
    assert [g for g, _ in groups][0] == "(anonymous)"
    assert [n for _, n in groups] == [1, 1]  # the refused call never reached C


def test_stream_yields_sdk_chunks(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    client = llmux.openai_client(gw)
    stream = client.chat.completions.create(model="smart", messages=MSGS, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[%s] hello there world" % a
    assert chunks[-1].usage.completion_tokens == 4
    call_id = stream.response.headers["x-llmux-call-id"]
    info = llmux.call_info(gw, call_id)
    assert info.trace["stream"] is True and info.trace["chunks"] == len(chunks)


def test_stream_helper_and_early_close(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    client = llmux.openai_client(gw)
    with client.chat.completions.stream(model="smart", messages=MSGS) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == "[%s] hello there world" % a
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 300}])
    stream = client.chat.completions.create(model="smart", messages=MSGS, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()  # stops the transfer at its next chunk
    info = llmux.call_info(gw, stream.response.headers["x-llmux-call-id"])
    assert info.trace["status"] == "cancelled"


def test_stream_error_after_first_chunk(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    sim.configure(a, faults=[{"type": "stream_drop"}])
    client = llmux.openai_client(gw)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for c in client.chat.completions.create(model="smart", messages=MSGS, stream=True):
            got.append(c)
    assert len(got) == 2
    assert not isinstance(ei.value, openai.APIStatusError)


def test_tools_and_tool_result_turn(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    client = llmux.openai_client(gw)
    msgs = [{"role": "user", "content": "find it"}]
    resp = client.chat.completions.create(model="smart", messages=msgs, tools=TOOLS,
                                          tool_choice="required")
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    call = msg.tool_calls[0]
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"echo": "find it"}
    msgs.append(msg)  # the SDK's own message object, as applications do
    msgs.append({"role": "tool", "tool_call_id": call.id, "content": "42"})
    resp2 = client.chat.completions.create(model="smart", messages=msgs, tools=TOOLS)
    assert resp2.choices[0].message.content == "[%s] find it" % a
    sent = sim.state(a)["last_request"]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call.id


class Lookup(pydantic.BaseModel):
    echo: str


class Answer(pydantic.BaseModel):
    city: str
    population: int


def test_parse_with_pydantic(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    client = llmux.openai_client(gw)
    # A tool defined by a pydantic model: the SDK parses the arguments.
    resp = client.chat.completions.parse(
        model="smart", messages=[{"role": "user", "content": "paris"}],
        tools=[openai.pydantic_function_tool(Lookup)], tool_choice="required")
    parsed = resp.choices[0].message.tool_calls[0].function.parsed_arguments
    assert parsed == Lookup(echo="paris")
    # response_format: a provider answering the schema (a scripted 200 body).
    content = json.dumps({"city": "Paris", "population": 2100000})
    sim.configure(a, faults=[{"type": "status", "status": 200, "body": {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m0",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}}])
    resp = client.chat.completions.parse(model="smart", messages=MSGS,
                                         response_format=Answer)
    assert resp.choices[0].message.parsed == Answer(city="Paris", population=2100000)
    sent = sim.state(a)["last_request"]["body"]
    assert sent["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("fault,cls,status", [
    ({"type": "status", "status": 429, "retry_after": "7"}, "RateLimitError", 429),
    ({"type": "status", "status": 401}, "AuthenticationError", 401),
    ({"type": "status", "status": 403}, "PermissionDeniedError", 403),
    ({"type": "status", "status": 400}, "BadRequestError", 400),
    ({"type": "status", "status": 503}, "InternalServerError", 503),
    ({"type": "malformed"}, "InternalServerError", 502),
])
def test_error_classes(sim, gateway, uniq, fault, cls, status):
    a = uniq("a")
    gw = gateway([a])
    sim.configure(a, faults=[dict(fault, count=-1)])
    client = llmux.openai_client(gw)
    with pytest.raises(getattr(openai, cls)) as ei:
        client.chat.completions.create(model="smart", messages=MSGS)
    e = ei.value
    assert e.status_code == status
    assert e.response.headers["x-llmux-provider"] == "p0"
    assert llmux.call_info(gw, e.response.headers["x-llmux-call-id"]).status < 0
    if status == 429:
        assert e.response.headers["retry-after"] == "7"
        assert e.response.headers["retry-after-ms"] == "7000"
        assert e.code == "rate_limit_exceeded"
    # with a stream, the same error from create()
    with pytest.raises(getattr(openai, cls)):
        client.chat.completions.create(model="smart", messages=MSGS, stream=True)


def test_unknown_model_connect_and_timeout(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a], defaults={"timeout_ms": 300, "connect_timeout_ms": 200})
    client = llmux.openai_client(gw)
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="nope", messages=MSGS)
    assert ei.value.code == "unknown_model"
    sim.configure(a, faults=[{"type": "latency", "ms": 2000}])
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="smart", messages=MSGS)
    sim.configure(a, faults=[{"type": "drop", "count": -1}])
    with pytest.raises(openai.APIConnectionError) as ei:
        client.chat.completions.create(model="smart", messages=MSGS)
    assert not isinstance(ei.value, openai.APITimeoutError)
    assert ei.value.__cause__.llmux.status == -14


def test_sdk_retry_honours_retry_after(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    sim.configure(a, faults=[{"type": "status", "status": 429, "retry_after": "0"}])
    client = llmux.openai_client(gw, max_retries=1)
    resp = client.chat.completions.create(model="smart", messages=MSGS)
    assert resp.choices[0].message.content.startswith("[%s]" % a)
    assert sim.requests(a) == 2


def test_models_and_other_paths(sim, gateway, uniq):
    gw = gateway([uniq("a")], models={"fast": {"targets": [{"provider": "p0", "model": "x"}]}})
    client = llmux.openai_client(gw)
    assert [m.id for m in client.models.list()] == ["fast", "smart"]
    assert client.models.retrieve("fast").id == "fast"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("slow")
    with pytest.raises(openai.NotFoundError) as ei:
        client.embeddings.create(model="smart", input="x")
    assert ei.value.code == "unknown_url"
    with httpx.Client(transport=llmux.HTTPTransport(gw), base_url="http://llmux") as h:
        r = h.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"


def test_async_create_stream_errors(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])

    async def main():
        client = llmux.async_openai_client(gw)
        raw = await client.chat.completions.with_raw_response.create(model="smart",
                                                                     messages=MSGS)
        assert raw.headers["x-llmux-provider"] == "p0"
        resp = raw.parse()
        assert resp.choices[0].message.content == "[%s] hello there world" % a
        stream = await client.chat.completions.create(model="smart", messages=MSGS,
                                                      stream=True)
        text = ""
        async for c in stream:
            assert isinstance(c, openai.types.chat.ChatCompletionChunk)
            text += c.choices[0].delta.content or ""
        assert text == resp.choices[0].message.content
        parsed = await client.chat.completions.parse(
            model="smart", messages=[{"role": "user", "content": "x"}],
            tools=[openai.pydantic_function_tool(Lookup)], tool_choice="required")
        assert parsed.choices[0].message.tool_calls[0].function.parsed_arguments.echo == "x"
        sim.configure(a, faults=[{"type": "status", "status": 429, "count": 2}])
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="smart", messages=MSGS)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="smart", messages=MSGS, stream=True)
        # The loop keeps running while calls wait on a slow provider.
        sim.configure(a, latency_ms=200)
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(tick())
        await asyncio.gather(*[client.chat.completions.create(model="smart", messages=MSGS)
                               for _ in range(4)])
        t.cancel()
        assert ticks >= 10
        await client.close()

    asyncio.run(main())


def test_langchain_chat_openai(sim, gateway, uniq):
    lc = pytest.importorskip("langchain_openai")
    legacy = pytest.importorskip("httpx")
    a = uniq("a")
    gw = gateway([a])
    llm = lc.ChatOpenAI(model="smart", api_key="gk-lc", base_url="http://llmux/v1",
                        max_retries=0,
                        http_client=legacy.Client(transport=llmux.HTTPTransport(gw)),
                        http_async_client=legacy.AsyncClient(
                            transport=llmux.AsyncHTTPTransport(gw)))
    out = llm.invoke("hello there world")
    assert out.content == "[%s] hello there world" % a
    text = "".join(c.content for c in llm.stream("one two three"))
    assert text == "[%s] one two three" % a
    tooled = llm.bind_tools([Lookup], tool_choice="required")
    msg = tooled.invoke("paris")
    assert msg.tool_calls[0]["name"] == "Lookup"
    assert msg.tool_calls[0]["args"] == {"echo": "paris"}
    out = asyncio.run(llm.ainvoke("async hello"))
    assert out.content == "[%s] async hello" % a


def test_call_info_is_bounded_and_transport_defaults(sim, gateway, uniq, monkeypatch):
    import llmux._transport as transport

    monkeypatch.setattr(transport, "TRACE_CAPACITY", 3)
    a = uniq("a")
    gw = gateway([a])
    client = openai.OpenAI(base_url="http://llmux/v1", api_key="llmux", max_retries=0,
                           http_client=httpx.Client(transport=llmux.HTTPTransport(
                               gw, task="summarise", workflow="wf")))
    ids = []
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(model="smart", messages=MSGS)
        ids.append(raw.headers["x-llmux-call-id"])
    assert len(set(ids)) == 4
    assert llmux.call_info(gw, ids[0]) is None           # the oldest was dropped
    kept = [llmux.call_info(gw, i) for i in ids[1:]]
    assert all(k is not None for k in kept)
    assert (kept[-1].trace["task"], kept[-1].trace["workflow"]) == ("summarise", "wf")
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=MSGS, extra_headers={"X-Llmux-Task": "own"})
    assert llmux.call_info(gw, raw.headers["x-llmux-call-id"]).trace["task"] == "own"


def test_async_transport_on_async_gateway(sim, config_for, uniq):
    a = uniq("a")

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as agw:
            client = llmux.async_openai_client(agw)
            raw = await client.chat.completions.with_raw_response.create(
                model="smart", messages=MSGS)
            info = llmux.call_info(agw, raw.headers["x-llmux-call-id"])
            assert info.provider == "p0"
            assert raw.parse().choices[0].message.content == "[%s] hello there world" % a
            await client.close()

    asyncio.run(main())


def test_closed_gateway_answers_503(sim, gateway, uniq):
    gw = gateway([uniq("a")])
    client = llmux.openai_client(gw)
    gw.close()
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as ei:
            client.chat.completions.create(model="smart", messages=MSGS, stream=stream)
        assert ei.value.status_code == 503 and ei.value.code == "gateway_closed"
