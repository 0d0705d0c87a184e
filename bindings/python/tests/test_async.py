"""AsyncGateway: awaited calls on worker threads, async streams, cancellation."""

import asyncio
import time

import pytest

import llmux
from llmux import _client


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa"


def user(text):
    return [{"role": "user", "content": text}]


def run(coro):
    return asyncio.run(coro)


def test_await_create(config_for, uniq):
    a = uniq("a")

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as gw:
            resp = await gw.chat.completions.create(model="smart", messages=user("hi there"),
                                                    task="t", temperature=0.1)
            assert isinstance(resp, llmux.ChatCompletion)
            assert resp.choices[0].message.content.strip() == "[%s] hi there" % a
            assert resp.llmux.provider == "p0"
            with pytest.raises(llmux.UnknownModelError):
                await gw.chat.completions.create(model="nope", messages=user("x"))
            with pytest.raises(TypeError):
                await gw.chat.completions.create(model="smart", messages=user("x"), bogus=1)
            assert {r["group"]: r["calls"] for r in gw.spend(group_by="task")["rows"]}["t"] == 1
        assert gw.closed

    run(main())


def test_the_event_loop_keeps_running(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, latency_ms=300)

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as gw:
            ticks = []

            async def ticker():
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            t = asyncio.ensure_future(ticker())
            t0 = time.monotonic()
            results = await asyncio.gather(*[
                gw.chat.completions.create(model="smart", messages=user("n%d" % i))
                for i in range(4)])
            elapsed = time.monotonic() - t0
            t.cancel()
            assert [r.choices[0].message.content.split()[-1] for r in results] == \
                ["n0", "n1", "n2", "n3"]
            assert elapsed < 0.9          # 4 calls of 0.3 s ran at once
            gaps = [b - a for a, b in zip(ticks, ticks[1:])]
            assert len(ticks) > 10 and max(gaps) < 0.1  # never blocked for a call

    run(main())


def test_cancel_stops_waiting_at_once(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "latency", "ms": 1500}])

    async def main():
        gw = llmux.AsyncGateway(config_for([a]))
        task = asyncio.ensure_future(
            gw.chat.completions.create(model="smart", messages=user("x"), timeout=5))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 0.05
        # The gateway still works; closing waits for nothing in Python.
        resp = await gw.chat.completions.create(model="smart", messages=user("again"))
        assert resp.choices[0].message.content.strip().endswith("again")
        gw.close()

    run(main())


def test_async_stream(sim, config_for, uniq):
    a = uniq("a")

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as gw:
            stream = await gw.chat.completions.create(model="smart",
                                                      messages=user("one two three"),
                                                      stream=True)
            assert isinstance(stream, llmux.AsyncStream)
            chunks = [c async for c in stream]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text.strip() == "[%s] one two three" % a
            assert stream.completion.choices[0].message.content.strip() == text.strip()
            assert (await stream.get_final_completion()) is stream.completion
            assert stream.llmux.provider == "p0" and not stream.cancelled
            with pytest.raises(AttributeError):
                stream.response
            with pytest.raises(llmux.UnknownModelError):
                await gw.chat.completions.create(model="nope", messages=user("x"), stream=True)

    run(main())


def test_async_stream_stops_early(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 50}])

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as gw:
            async with await gw.chat.completions.create(
                    model="smart", messages=user(WORDS), stream=True) as stream:
                async for _ in stream:
                    break
            assert stream.cancelled and stream.completion is None
            assert stream.llmux.status == -19
            assert stream.llmux.trace["chunks"] < 5   # not all 13

    run(main())


def test_cancelling_the_consumer_stops_the_stream(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 100}])

    async def main():
        async with llmux.AsyncGateway(config_for([a])) as gw:
            stream = await gw.chat.completions.create(model="smart", messages=user(WORDS),
                                                      stream=True)

            async def consume():
                return [c async for c in stream]

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(0.25)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - t0 < 0.05
            await stream.close()
            assert stream.cancelled
            assert stream.llmux.trace["chunks"] < 8   # not all 13

    run(main())


def test_no_cancel_api_is_detected():
    lib = llmux.library()
    assert _client._has_cancel == hasattr(lib, "llmux_cancel_new")
    assert (_client.new_cancel() is None) == (not hasattr(lib, "llmux_cancel_new"))
