"""Sharing one Gateway between threads; close semantics."""

import gc
import threading
import weakref

import pytest

import llmux


def user(text):
    return [{"role": "user", "content": text}]


def test_8_threads_x_50_calls(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    gw = gateway([a, b])
    errors = []
    done = [0] * 8

    def run(i):
        try:
            for j in range(50):
                resp = gw.chat.completions.create(
                    model="smart", messages=user("thread %d call %d" % (i, j)),
                    task="t%d" % i)
                assert resp.choices[0].message.content == "[%s] thread %d call %d" % (a, i, j)
                assert resp.llmux.provider == "p0"
                done[i] += 1
        except BaseException as e:  # noqa: B902
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert done == [50] * 8
    assert sim.requests(a) == 400
    rows = {r["group"]: r for r in gw.spend("task")["rows"]}
    assert all(rows["t%d" % i]["calls"] == 50 for i in range(8))


def test_threads_with_fallback(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 503, "count": 100}])
    gw = gateway([a, b])
    errors = []

    def run(i):
        try:
            for j in range(25):
                resp = gw.chat.completions.create(model="smart", messages=user("%d-%d" % (i, j)))
                assert resp.choices[0].message.content.endswith("%d-%d" % (i, j))
        except BaseException as e:  # noqa: B902
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_double_close_and_use_after_close(config_for, uniq):
    gw = llmux.Gateway(config_for([uniq("a")]))
    gw.chat.completions.create(model="smart", messages=user("x"))
    gw.close()
    gw.close()
    assert gw.closed
    with pytest.raises(llmux.GatewayClosedError):
        gw.chat.completions.create(model="smart", messages=user("x"))
    with pytest.raises(llmux.LlmuxError):
        gw.chat.completions.create(model="smart", messages=user("x"), stream=True)
    with pytest.raises(llmux.LlmuxError):
        gw.spend("task")


def test_context_manager_closes(config_for, uniq):
    with llmux.Gateway(config_for([uniq("a")])) as gw:
        gw.chat.completions.create(model="smart", messages=user("x"))
    assert gw.closed
    with pytest.raises(llmux.GatewayClosedError):
        gw.chat.completions.create(model="smart", messages=user("x"))


def test_close_while_threads_call(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, latency_ms=2)
    gw = llmux.Gateway(config_for([a]))
    started = threading.Barrier(9)
    results = {"ok": 0, "closed": 0}
    errors = []
    lock = threading.Lock()

    def run(i):
        started.wait()
        while True:
            try:
                gw.chat.completions.create(model="smart", messages=user("c%d" % i))
                with lock:
                    results["ok"] += 1
            except llmux.GatewayClosedError:
                with lock:
                    results["closed"] += 1
                return
            except BaseException as e:  # noqa: B902
                errors.append(e)
                return

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    started.wait()
    import time
    time.sleep(0.1)
    gw.close()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert results["closed"] == 8 and results["ok"] > 0
    assert gw._handle is None  # the last call out released the C gateway


def test_close_with_open_stream(sim, config_for, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "slow_stream", "ms": 50}])
    gw = llmux.Gateway(config_for([a]))
    stream = gw.chat.completions.create(model="smart", messages=user("a b c d"), stream=True)
    gw.close()                      # deferred until the stream's C call returns
    assert gw._handle is not None
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip() == "[%s] a b c d" % a
    assert gw._handle is None


def test_dropped_gateway_is_closed(config_for, uniq):
    gw = llmux.Gateway(config_for([uniq("a")]))
    gw.chat.completions.create(model="smart", messages=user("x"))
    core = weakref.ref(gw._core)
    del gw                      # no reference cycle: collected (and closed) at once
    assert core() is None


def test_kept_create_keeps_the_gateway_open(config_for, uniq):
    a = uniq("a")
    gw = llmux.Gateway(config_for([a]))
    create = gw.chat.completions.create
    core = weakref.ref(gw._core)
    del gw
    gc.collect()
    assert core() is not None and core()._handle is not None
    assert create(model="smart", messages=user("still")).choices[0].message.content == \
        "[%s] still" % a
    del create
    assert core() is None
