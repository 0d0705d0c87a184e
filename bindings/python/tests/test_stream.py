"""Streaming: chunks in order and as they arrive, early stop, errors."""

import json
import threading
import time

import pytest

import llmux
from llmux import _capi


def user(text):
    return [{"role": "user", "content": text}]


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa"


def test_stream_chunks_in_order(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    stream = gw.chat.completions.create(model="smart", messages=user("one two three"),
                                        stream=True)
    chunks = list(stream)
    assert all(isinstance(c, llmux.ChatCompletionChunk) for c in chunks)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    text = "".join(c.choices[0].delta.content for c in content_chunks)
    assert text.strip() == "[%s] one two three" % a
    assert [c.choices[0].delta.content.strip() for c in content_chunks] == \
        ["[%s]" % a, "one", "two", "three"]
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop"
    # The assembled response and the trace are there after the iteration.
    resp = stream.completion
    assert isinstance(resp, llmux.ChatCompletion)
    assert resp.choices[0].message.content.strip() == "[%s] one two three" % a
    assert resp.choices[0].finish_reason == "stop"
    assert stream.llmux.provider == "p0" and stream.llmux.model == "m0"
    assert stream.llmux.trace["attempts"][0]["status"] == 0
    assert stream.llmux.cost_usd is None
    assert not stream.cancelled


def test_stream_include_usage(gateway, uniq):
    gw = gateway([uniq("a")])
    stream = gw.chat.completions.create(model="smart", messages=user("count me"),
                                        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert usage_chunks and usage_chunks[-1].choices == []
    assert usage_chunks[-1].usage.completion_tokens == 3
    assert stream.completion.usage.completion_tokens == 3


def test_stream_yields_as_chunks_arrive(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 150}])
    gw = gateway([a])
    t0 = time.monotonic()
    stream = gw.chat.completions.create(model="smart", messages=user("w1 w2 w3 w4 w5"),
                                        stream=True)
    times = []
    for _ in stream:
        times.append(time.monotonic() - t0)
    total = time.monotonic() - t0
    assert total >= 0.6, total                  # ~8 chunks x 150 ms
    assert times[0] < total / 2, (times, total)  # the first came long before the end
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) >= 0.1, gaps               # chunks were not all delivered at once


def _slow_stream(sim, gw_factory, uniq, ms=100):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": ms}])
    gw = gw_factory([a])
    return gw, gw.chat.completions.create(model="smart", messages=user(WORDS), stream=True)


FULL_STREAM_CHUNKS = 13  # role chunk + 11 words + finish chunk


def _assert_cancelled_early(info):
    """The C call ended with LLMUX_ERR_CANCELLED after a few chunks, not all.
    (Chunk counts, not timings, so that a loaded machine does not matter.)"""
    assert info is not None
    assert info.status == _capi.LLMUX_ERR_CANCELLED, info
    delivered = info.trace["chunks"]
    assert delivered <= 5 < FULL_STREAM_CHUNKS, info.trace


def test_break_stops_the_transfer(sim, gateway, uniq):
    gw, stream = _slow_stream(sim, gateway, uniq)
    got = []
    for chunk in stream:
        got.append(chunk)
        if len(got) == 2:
            break
    # Leaving the loop cancels: the worker ends at the next chunk.
    stream._thread.join(timeout=10)
    assert not stream._thread.is_alive()
    stream.close()
    assert stream.cancelled
    assert stream.completion is None
    _assert_cancelled_early(stream.llmux)


def test_close_stops_the_transfer(sim, gateway, uniq):
    gw, stream = _slow_stream(sim, gateway, uniq)
    first = next(stream)
    assert first.object == "chat.completion.chunk"
    stream.close()
    assert stream.cancelled and not stream._thread.is_alive()
    _assert_cancelled_early(stream.llmux)
    stream.close()  # twice is fine
    assert list(stream) == []


def test_context_manager_stops_the_transfer(sim, gateway, uniq):
    gw, stream = _slow_stream(sim, gateway, uniq)
    with stream as s:
        next(s)
    assert stream.cancelled
    _assert_cancelled_early(stream.llmux)


def test_dropping_the_stream_stops_the_transfer(sim, gateway, uniq):
    gw, stream = _slow_stream(sim, gateway, uniq)
    thread, state = stream._thread, stream._state
    next(stream)
    del stream
    thread.join(timeout=10)
    assert not thread.is_alive()
    kind, err = state.outcome
    assert kind == "error" and isinstance(err, llmux.CancelledError)
    _assert_cancelled_early(err.llmux)


def test_exception_in_consumer_stops_the_transfer(sim, gateway, uniq):
    gw, stream = _slow_stream(sim, gateway, uniq)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        for i, chunk in enumerate(stream):
            if i == 1:
                raise Boom("consumer failed")
    stream._thread.join(timeout=10)
    assert not stream._thread.is_alive()
    stream.close()
    _assert_cancelled_early(stream.llmux)
    # The gateway is still fine afterwards.
    resp = gw.chat.completions.create(model="smart", messages=user("after"))
    assert resp.choices[0].message.content.endswith("after")


def test_on_chunk_callback_mode(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    seen = []
    resp = gw.chat.completions.create(model="smart", messages=user("cb one two"),
                                      stream=True, on_chunk=seen.append)
    assert isinstance(resp, llmux.ChatCompletion)
    assert resp.choices[0].message.content.strip() == "[%s] cb one two" % a
    assert "".join(c.choices[0].delta.content or "" for c in seen if c.choices).strip() == \
        resp.choices[0].message.content.strip()
    assert seen[0].choices[0].delta.role == "assistant"


def test_on_chunk_exception_aborts_and_is_reraised(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 100}])
    gw = gateway([a])
    seen = []

    class Stop(Exception):
        pass

    def on_chunk(chunk):
        seen.append(chunk)
        if len(seen) == 2:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough") as ei:
        gw.chat.completions.create(model="smart", messages=user(WORDS), stream=True,
                                   on_chunk=on_chunk)
    assert len(seen) == 2          # C called back no more after the abort
    assert ei.value.args == ("enough",)
    spend = gw.spend()["total"]
    assert spend["calls"] == 1 and spend["errors"] == 1  # recorded as a cancelled call


def test_stream_tool_call_assembled(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    stream = gw.chat.completions.create(model="smart", messages=user("find it"), tools=tools,
                                        tool_choice="required", stream=True)
    chunks = list(stream)
    parts = [c.choices[0].delta.tool_calls[0].function.arguments
             for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert json.loads("".join(parts)) == {"echo": "find it"}
    msg = stream.completion.choices[0].message
    assert stream.completion.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls[0].function.name == "lookup"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"echo": "find it"}


def test_stream_falls_back_before_first_chunk(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 503}])
    gw = gateway([a, b])
    stream = gw.chat.completions.create(model="smart", messages=user("fb"), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip() == "[%s] fb" % b
    assert stream.llmux.provider == "p1"
    assert len(stream.llmux.trace["attempts"]) == 2


def test_stream_error_before_first_chunk_raises_from_create(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 429, "retry_after": "0",
                              "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.RateLimitError) as ei:
        gw.chat.completions.create(model="smart", messages=user("x"), stream=True)
    assert ei.value.http_status == 429
    with pytest.raises(llmux.UnknownModelError):
        gw.chat.completions.create(model="nope", messages=user("x"), stream=True)


def test_stream_drop_mid_stream_raises_after_chunks(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "stream_drop"}])
    gw = gateway([a, b])
    stream = gw.chat.completions.create(model="smart", messages=user(WORDS), stream=True)
    got = []
    with pytest.raises(llmux.APIConnectionError):
        for chunk in stream:
            got.append(chunk)
    assert 1 <= len(got) <= 2
    assert sim.requests(b) == 0  # no fallback once chunks were delivered


def test_many_streams_in_threads(gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    errors = []

    def run(i):
        try:
            for _ in range(5):
                s = gw.chat.completions.create(model="smart", messages=user("t%d x" % i),
                                               stream=True)
                text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
                assert text.strip() == "[%s] t%d x" % (a, i)
        except BaseException as e:  # noqa: B902
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
