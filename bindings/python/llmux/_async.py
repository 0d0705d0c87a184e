"""asyncio: AsyncGateway, ``await gw.chat.completions.create(...)`` and
``async for`` over streams.

The blocking C call runs on a worker thread (ctypes releases the GIL), so the
event loop keeps running. Cancelling the awaiting task stops the wait at once:
with a library that has the cancellation API (llmux_cancel_new) the C call is
cancelled too and ends within milliseconds; without it, the C call runs to its
deadline on its thread and its result is dropped.

Imported on first use of ``llmux.AsyncGateway`` so that ``import llmux`` does
not import asyncio.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Union,
    overload,
)

from . import _client
from ._stream import _END, _abort, _State, _take_outcome, start_worker
from ._types import ChatCompletion, ChatCompletionChunk
from ._types import chunk as _chunk


def _deliver(fut: "asyncio.Future[Any]", outcome: Any) -> None:
    if not fut.done():
        fut.set_result(outcome)


class LazyPool:
    """A ThreadPoolExecutor made on first use (AsyncGateway's, and
    llmux.AsyncHTTPTransport's own when it is given a plain Gateway)."""

    __slots__ = ("_max_workers", "_prefix", "_pool", "_lock")

    def __init__(self, max_workers: int, prefix: str) -> None:
        self._max_workers = max_workers
        self._prefix = prefix
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = ThreadPoolExecutor(
                        self._max_workers, thread_name_prefix=self._prefix)
        return pool

    def shutdown(self) -> None:
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False)


async def run_call(executor: Any, core: Any, body: bytes, opts: Any, finish: Any) -> Any:
    """llmux_chat on a thread of executor, then finish(result pointer) on that
    thread; the loop is not blocked. Cancelling the awaiting task stops the
    wait at once and, with the cancellation API, the C call too."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    cancel = _client.new_cancel()

    def work() -> None:
        try:
            outcome: Any = (True, finish(_client.call_blocking(core, body, opts, cancel)))
        except BaseException as e:  # noqa: B902 - handed to the awaiting task
            outcome = (False, e)
        try:
            loop.call_soon_threadsafe(_deliver, fut, outcome)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    try:
        executor.submit(work)
    except BaseException:
        if cancel is not None:
            cancel.finish()
        raise
    try:
        ok, value = await fut
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.trigger()
        raise
    if ok:
        return value
    raise value


class AsyncCompletions:
    """``gw.chat.completions`` of an AsyncGateway."""

    __slots__ = ("_agw",)

    def __init__(self, agw: "AsyncGateway") -> None:
        self._agw = agw

    @overload
    async def create(self, *, model: str, messages: Iterable[Any],
                     tools: Optional[Iterable[Any]] = None, stream: Literal[False] = False,
                     key: Optional[str] = None, workflow: Optional[str] = None,
                     task: Optional[str] = None, timeout: _client.Timeout = None,
                     extra_body: Optional[Mapping[str, Any]] = None,
                     extra_headers: Optional[Mapping[str, str]] = None,
                     extra_query: Optional[Mapping[str, object]] = None,
                     **fields: Any) -> ChatCompletion: ...

    @overload
    async def create(self, *, model: str, messages: Iterable[Any],
                     tools: Optional[Iterable[Any]] = None, stream: Literal[True],
                     key: Optional[str] = None, workflow: Optional[str] = None,
                     task: Optional[str] = None, timeout: _client.Timeout = None,
                     extra_body: Optional[Mapping[str, Any]] = None,
                     extra_headers: Optional[Mapping[str, str]] = None,
                     extra_query: Optional[Mapping[str, object]] = None,
                     **fields: Any) -> "AsyncStream": ...

    async def create(self, *, model: str, messages: Iterable[Any],
                     tools: Optional[Iterable[Any]] = None, stream: bool = False,
                     key: Optional[str] = None, workflow: Optional[str] = None,
                     task: Optional[str] = None, timeout: _client.Timeout = None,
                     extra_body: Optional[Mapping[str, Any]] = None,
                     extra_headers: Optional[Mapping[str, str]] = None,
                     extra_query: Optional[Mapping[str, object]] = None,
                     **fields: Any) -> Union[ChatCompletion, "AsyncStream"]:
        """As Completions.create (same keywords, same errors), awaited."""
        body, opts = _client._prepare(model, messages, tools, stream, key, workflow, task,
                                      timeout, extra_body, extra_headers, extra_query, fields)
        agw = self._agw
        if stream:
            s = AsyncStream(agw._core, body, opts)
            await s._start()
            return s
        return await run_call(agw._executor(), agw._core, body, opts,  # type: ignore[no-any-return]
                              _client._result)


class _AsyncChat:
    __slots__ = ("completions",)

    def __init__(self, agw: "AsyncGateway") -> None:
        self.completions = AsyncCompletions(agw)


class AsyncGateway:
    """An llmux gateway for asyncio: ``AsyncGateway(config)`` (a dict, a path or
    JSON text, as Gateway). ``await gw.chat.completions.create(...)`` runs the
    call on one of at most ``max_workers`` threads (default 64; more calls at
    once wait for a thread) and does not block the event loop."""

    def __init__(self, config: Any, *, max_workers: int = 64) -> None:
        self._gateway = _client.Gateway(config)
        self._core = self._gateway._core
        self._max_workers = max_workers
        self._pool = LazyPool(max_workers, "llmux-async")
        self.chat = _AsyncChat(self)

    def _executor(self) -> ThreadPoolExecutor:
        return self._pool.get()

    @property
    def gateway(self) -> _client.Gateway:
        """The synchronous Gateway underneath (spend(), chat_raw(), ...)."""
        return self._gateway

    def spend(self, group_by: Optional[str] = None, since: Any = None, until: Any = None) -> Any:
        return self._gateway.spend(group_by, since, until)

    def export(self, format: str = "jsonl", since: Any = None, until: Any = None) -> str:
        return self._gateway.export(format, since, until)

    # Keys, budgets and the dry run: quick, in-memory operations of the
    # Gateway underneath, called directly (no worker thread).
    def add_key(self, id: str, **spec: Any) -> None:
        """Gateway.add_key: key= or sha256=, team=, models=, direct=,
        expires=, budgets=, limits=."""
        self._gateway.add_key(id, **spec)

    def rotate_key(self, id: str, new_key: str) -> None:
        self._gateway.rotate_key(id, new_key)

    def revoke_key(self, id: str) -> None:
        self._gateway.revoke_key(id)

    def keys(self) -> List[Dict[str, Any]]:
        return self._gateway.keys()

    def budgets(self) -> List[Dict[str, Any]]:
        return self._gateway.budgets()

    def on_alert(self, callback: Optional[Callable[[Dict[str, Any]], None]]) -> None:
        """Gateway.on_alert: the callback runs on the worker thread whose call
        crossed the threshold, not on the event loop."""
        self._gateway.on_alert(callback)

    def warnings(self) -> List[str]:
        return self._gateway.warnings()

    def route(self, model: str, messages: Any, **kw: Any) -> Dict[str, Any]:
        return self._gateway.route(model, messages, **kw)

    def health(self) -> List[Dict[str, Any]]:
        return self._gateway.health()

    @property
    def closed(self) -> bool:
        return self._gateway.closed

    def close(self) -> None:
        """Close the gateway (running calls finish first, as with Gateway)."""
        self._gateway.close()
        self._pool.shutdown()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncGateway":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class AsyncStream:
    """``async for chunk in stream``; afterwards ``completion`` (and
    ``await get_final_completion()``) is the assembled ChatCompletion and
    ``llmux`` its CallInfo. Cancelling the consuming task, ``await
    stream.close()`` or leaving an ``async with`` block stops the transfer."""

    def __init__(self, core: Any, body: bytes, opts: Any) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        q = self._queue

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody reads any more
                state.cancel = True

        self._state = state = _State(queue=q, put=put)
        self._first: Any = None
        self._finished = False
        self.completion: Optional[ChatCompletion] = None
        self.llmux: Any = None
        self.cancelled = False
        start_worker(state, core, body, opts, "llmux-async-stream")

    async def _start(self) -> None:
        # Like the SDK, fail in create() when the call fails before streaming.
        first = await self._get()
        if first is _END:
            self._finish()
        else:
            self._first = first

    async def _get(self) -> Any:
        try:
            return await self._queue.get()
        except asyncio.CancelledError:
            _abort(self._state)
            raise

    def _finish(self) -> None:
        self._finished = True
        _take_outcome(self, self._state)

    async def _next_raw(self) -> Any:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._finished:
            return _END
        item = await self._get()
        if item is _END:
            self._finish()
        return item

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        item = await self._next_raw()
        if item is _END:
            raise StopAsyncIteration
        return _chunk(item)  # type: ignore[no-any-return]

    @property
    def response(self) -> Any:
        raise AttributeError(
            "AsyncStream.response is the HTTP response in the OpenAI SDK, which llmux does "
            "not have: the assembled ChatCompletion is stream.completion (after the last "
            "chunk) or await stream.get_final_completion()")

    async def get_final_completion(self) -> Optional[ChatCompletion]:
        """Consume what is left and return the assembled ChatCompletion."""
        while await self._next_raw() is not _END:
            pass
        return self.completion

    async def close(self) -> None:
        """Stop the transfer (if still running) and wait for the C call to end."""
        if self._finished:
            return
        _abort(self._state)
        self._first = None
        try:
            while await self._next_raw() is not _END:
                pass
        except Exception:
            pass

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None and not self._finished:
            _abort(state)
