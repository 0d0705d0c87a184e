"""Streaming: llmux_chat_stream runs on a worker thread that feeds a queue; the
Stream yields chunk objects as they arrive.

Stopping early: leaving a ``for`` loop over the stream (break, return, an
exception), calling ``close()``, leaving a ``with`` block or dropping the
Stream sets a flag; the C callback then returns 1 on the next chunk, so the
library stops the transfer (the call ends with LLMUX_ERR_CANCELLED, which
the Stream does not raise since the caller asked for it).
"""

from __future__ import annotations

import threading
from queue import SimpleQueue
from typing import Any, Iterator, Optional

from . import _client
from ._types import ChatCompletion, ChatCompletionChunk
from ._types import chunk as _chunk

_END = object()


class _State:
    """Shared by the Stream and its worker thread. The worker must not hold the
    Stream itself, so that dropping the Stream can cancel the transfer."""

    __slots__ = ("queue", "put", "cancel", "outcome", "callback_error", "c_cancel")

    def __init__(self, queue=None, put=None):
        self.queue = queue if queue is not None else SimpleQueue()
        self.put = put if put is not None else self.queue.put
        self.cancel = False
        self.c_cancel = None        # a _client._Cancel when the library has the API
        self.outcome = None         # ("ok", ChatCompletion) / ("error", exc)
        self.callback_error = None  # an exception raised inside the C callback


def _abort(state):
    """Ask the worker's call to stop: at the next chunk, and at once with the
    cancellation API."""
    state.cancel = True
    c = state.c_cancel
    if c is not None:
        c.trigger()


def _worker(state, gw, handle, body, opts):
    put = state.put

    def on_chunk(data, size, payload):
        try:
            if state.cancel:
                return 1
            put(data)
            return 0
        except BaseException as e:  # noqa: B902 - stored, re-raised by the consumer
            state.callback_error = e
            return 1

    c_callback = _client._ChunkCB(on_chunk)  # kept alive by this frame for the whole call
    res = _client._c_void_p()
    cancel = state.c_cancel
    if cancel is not None:
        opts = cancel.options(opts)
    try:
        try:
            _client._chat_stream(handle, body, opts, c_callback, None, _client._byref(res))
        finally:
            gw._release()
            if cancel is not None:
                cancel.finish()
        state.outcome = ("ok", _client._result(res.value))
    except BaseException as e:  # noqa: B902 - handed to the consumer
        state.outcome = ("error", e)
    finally:
        put(_END)
        del c_callback


def start_worker(state, core, body, opts, name):
    """Start the thread that runs a streamed call for ``state``, holding the
    gateway busy until it ends (GatewayClosedError if it is closed); returns it."""
    handle = core._acquire()
    try:
        state.c_cancel = _client.new_cancel()
        thread = threading.Thread(target=_worker, args=(state, core, handle, body, opts),
                                  name=name, daemon=False)
        thread.start()
    except BaseException:
        core._release()
        if state.c_cancel is not None:
            state.c_cancel.finish()
        raise
    return thread


def _take_outcome(stream, state):
    """Once the worker ended: set stream.completion, .llmux and .cancelled, or
    raise the call's error (not a cancellation the caller asked for)."""
    if state.callback_error is not None:
        raise state.callback_error
    kind, value = state.outcome
    if kind == "ok":
        stream.completion = value
        stream.llmux = value.llmux
        return
    stream.llmux = getattr(value, "llmux", None)
    if state.cancel and getattr(value, "status", None) == -19:
        stream.cancelled = True
        return
    raise value


class Stream:
    """An iterator of ChatCompletionChunk objects, as they arrive.

    After the last chunk, ``completion`` (and ``get_final_completion()``) holds
    the assembled ChatCompletion and ``llmux`` its CallInfo (provider, model, cost_usd, http_status, trace). A
    failure before the first chunk raises from create(); one after it raises
    from the iteration, after the chunks that did arrive.
    """

    def __init__(self, gw: Any, body: bytes, opts: Any) -> None:
        self._state = state = _State()
        self._finished = False
        self._first: Any = None
        self.completion: Optional[ChatCompletion] = None
        self.llmux: Any = None
        self.cancelled = False
        self._thread = start_worker(state, gw, body, opts, "llmux-stream")
        # Like the SDK, fail in create() when the call fails before streaming.
        first = state.queue.get()
        if first is _END:
            self._finish()
        else:
            self._first = first

    def _next_raw(self):
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._finished:
            return _END
        item = self._state.queue.get()
        if item is _END:
            self._finish()
        return item

    def _finish(self):
        self._finished = True
        self._thread.join()
        _take_outcome(self, self._state)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            while True:
                item = self._next_raw()
                if item is _END:
                    return
                yield _chunk(item)
        finally:
            if not self._finished:
                _abort(self._state)

    def __next__(self) -> ChatCompletionChunk:
        item = self._next_raw()
        if item is _END:
            raise StopIteration
        return _chunk(item)

    @property
    def response(self) -> Any:
        raise AttributeError(
            "Stream.response is the HTTP response in the OpenAI SDK, which llmux does not "
            "have: the assembled ChatCompletion is stream.completion (after the last "
            "chunk) or stream.get_final_completion()")

    def get_final_completion(self) -> Optional[ChatCompletion]:
        """Consume what is left and return the assembled ChatCompletion."""
        while self._next_raw() is not _END:
            pass
        return self.completion

    def close(self) -> None:
        """Stop the transfer (if still running) and wait for the C call to end."""
        if self._finished:
            return
        _abort(self._state)
        self._first = None
        try:
            while self._next_raw() is not _END:
                pass
        except Exception:
            pass

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self):
        state = getattr(self, "_state", None)
        if state is not None:
            _abort(state)
