"""httpx transports that answer OpenAI HTTP requests in-process through llmux.

``httpx.Client(transport=llmux.HTTPTransport(gw))`` (or httpx2's, which the
openai SDK 3.x uses) turns the SDK's HTTP requests into llmux calls, with no
socket and no server:

- ``POST .../chat/completions`` -> llmux_chat, or llmux_chat_stream when the
  body has ``"stream": true`` (answered as ``text/event-stream``);
- ``GET .../models`` (and ``.../models/{id}``) -> the config's aliases;
- anything else -> 404 (405 for another method on a known path) with an
  OpenAI error body.

The bearer token is the gateway key (none for an empty token or ``llmux``);
``X-Llmux-Task``, ``X-Llmux-Workflow`` and ``X-Llmux-Timeout`` (seconds) are
the call options. A failed call is answered with the HTTP status the SDK maps to
its own exception class and an OpenAI error body (``retry-after`` and
``retry-after-ms`` when the provider asked to wait); a call that could not
connect or ran out of time raises httpx's ConnectError / ReadTimeout, which the
SDK turns into APIConnectionError / APITimeoutError.

Every answer carries ``x-llmux-call-id``; a non-streamed one also
``x-llmux-provider``, ``x-llmux-model`` and ``x-llmux-cost-usd`` (when the price
is known). ``llmux.call_info(gw, call_id)`` returns the CallInfo (trace and all)
of one of the gateway's last ``TRACE_CAPACITY`` transport calls.

httpx is not imported by this module: the response and stream classes are
taken from the module of the request (httpx or httpx2).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import weakref
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional

from . import _client
from ._stream import _END, _abort, _State, start_worker

TRACE_CAPACITY = 1024
"""How many recent calls' CallInfo each gateway keeps for call_info()."""

# C status -> the HTTP status the SDK maps to the matching exception class.
# LLMUX_ERR_CONNECT (-14) and LLMUX_ERR_TIMEOUT (-15) raise instead.
_HTTP_STATUS = {
    -1: 400,   # INVALID_ARGUMENT
    -2: 500,   # NO_MEMORY
    -5: 400,   # BAD_REQUEST
    -6: 404,   # UNKNOWN_MODEL
    -7: 401,   # AUTH
    -8: 403,   # PERMISSION
    -9: 404,   # NOT_FOUND
    -10: 429,  # RATE_LIMIT
    -11: 400,  # CONTEXT_WINDOW
    -12: 400,  # CONTENT_FILTER
    -13: 500,  # PROVIDER (the provider's own 5xx when it sent one)
    -16: 502,  # BAD_RESPONSE
    -17: 402,  # BUDGET (no SDK class: APIStatusError)
    -18: 400,  # UNSUPPORTED
    -19: 499,  # CANCELLED (no SDK class: APIStatusError)
    -20: 500,  # INTERNAL
    -21: 503,  # LIMIT
    -22: 429,  # QUOTA (the openai SDK's insufficient_quota is a 429)
}

_ids = itertools.count(1)
_id_prefix = "llmuxcall-%s-" % os.urandom(4).hex()


def _new_call_id() -> str:
    return _id_prefix + str(next(_ids))


class _Traces:
    """The last TRACE_CAPACITY CallInfos of one gateway, by call id."""

    __slots__ = ("_map", "_lock", "capacity")

    def __init__(self, capacity: int) -> None:
        self._map: "OrderedDict[str, Any]" = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def put(self, call_id: str, info: Any) -> None:
        if info is None:
            return
        with self._lock:
            m = self._map
            m[call_id] = info
            if len(m) > self.capacity:
                m.popitem(last=False)

    def get(self, call_id: str) -> Any:
        with self._lock:
            return self._map.get(call_id)


_stores: "weakref.WeakKeyDictionary[Any, _Traces]" = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def _sync_gateway(gw: Any) -> Any:
    """The synchronous Gateway of a Gateway or an AsyncGateway."""
    inner = getattr(gw, "gateway", None)
    if isinstance(inner, _client.Gateway):
        return inner
    if isinstance(gw, _client.Gateway):
        return gw
    raise TypeError("expected an llmux.Gateway or llmux.AsyncGateway, not %s"
                    % type(gw).__name__)


def _traces(core: Any) -> _Traces:
    with _stores_lock:
        t = _stores.get(core)
        if t is None:
            t = _stores[core] = _Traces(TRACE_CAPACITY)
        return t


def call_info(gateway: Any, call_id: str) -> Optional[_client.CallInfo]:
    """The CallInfo (provider, model, cost_usd, trace, ...) of a call made
    through one of this gateway's transports, by its ``x-llmux-call-id``
    header; None once it is older than the last TRACE_CAPACITY calls. A
    stream's CallInfo is there once the stream has ended."""
    return _traces(_sync_gateway(gateway)._core).get(call_id)


def _aliases(gw: Any) -> List[str]:
    """The config's model aliases (what GET /v1/models lists)."""
    cached = gw.__dict__.get("_llmux_aliases")
    if cached is not None:
        return cached
    src = gw.__dict__.get("_config_source")
    config: Any = None
    try:
        if isinstance(src, dict):
            config = src
        elif isinstance(src, (bytes, bytearray)) or (isinstance(src, str)
                                                     and src.lstrip().startswith("{")):
            config = json.loads(src)
        elif src is not None:
            with open(src, "rb") as f:
                config = json.load(f)
    except (OSError, ValueError):
        config = None
    models = config.get("models") if isinstance(config, dict) else None
    names = sorted(models) if isinstance(models, dict) else []
    gw.__dict__["_llmux_aliases"] = names
    return names


def _error_body(message: str, type_: str, code: Optional[str], param: Any = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param,
                                 "code": code}}).encode()


def _httpx_of(request: Any) -> Any:
    """The httpx module (httpx or httpx2) the request comes from."""
    return sys.modules[type(request).__module__.partition(".")[0]]


class _Router:
    """What both transports share: reading a request, answering it."""

    def __init__(self, gateway: Any, *, key: Optional[str] = None,
                 task: Optional[str] = None, workflow: Optional[str] = None) -> None:
        self._gw = _sync_gateway(gateway)
        self._core = self._gw._core
        self._traces = _traces(self._core)
        self._key, self._task, self._workflow = key, task, workflow

    # -- the request ----------------------------------------------------------

    def _route(self, request: Any) -> str:
        """"chat", "models", "model:<id>", or an error kind "404" / "405"."""
        path = request.url.path.rstrip("/")
        method = request.method
        if path.endswith("/chat/completions") or path == "chat/completions":
            return "chat" if method == "POST" else "405"
        if path.endswith("/models") or path == "models":
            return "models" if method == "GET" else "405"
        head, _, tail = path.rpartition("/models/")
        if tail and (head or path.startswith("/models/")):
            return "model:" + tail if method == "GET" else "405"
        return "404"

    def _options(self, request: Any) -> Any:
        h = request.headers
        key = self._key
        auth = h.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer":
                key = token if token and token != "llmux" else key
        task = h.get("x-llmux-task") or self._task
        workflow = h.get("x-llmux-workflow") or self._workflow
        timeout = h.get("x-llmux-timeout")
        secs = None
        if timeout:
            try:
                secs = float(timeout)
            except ValueError:
                raise _BadHeader("X-Llmux-Timeout must be a number of seconds, got %r"
                                 % timeout) from None
            if not secs > 0:
                raise _BadHeader("X-Llmux-Timeout must be positive, got %r" % timeout)
        if key is None and task is None and workflow is None and secs is None:
            return None
        return _client._options(key, workflow, task, secs)

    @staticmethod
    def _wants_stream(body: bytes) -> bool:
        if b'"stream"' not in body:
            return False
        try:
            return json.loads(body).get("stream") is True
        except (ValueError, AttributeError):
            return False  # llmux answers the invalid request with a 400

    # -- answers --------------------------------------------------------------

    def _simple(self, mod: Any, request: Any, status: int, body: bytes,
                headers: Optional[Dict[str, str]] = None) -> Any:
        h = {"content-type": "application/json"}
        if headers:
            h.update(headers)
        return mod.Response(status, headers=h, content=body, request=request)

    def _not_routed(self, mod: Any, request: Any, kind: str) -> Any:
        if kind == "405":
            return self._simple(mod, request, 405, _error_body(
                "%s is not allowed on %s (llmux answers POST .../chat/completions and "
                "GET .../models)" % (request.method, request.url.path),
                "invalid_request_error", "method_not_allowed"))
        return self._simple(mod, request, 404, _error_body(
            "llmux does not serve %s %s: it answers POST .../chat/completions and "
            "GET .../models in-process" % (request.method, request.url.path),
            "invalid_request_error", "unknown_url"))

    def _models(self, mod: Any, request: Any, kind: str) -> Any:
        names = _aliases(self._gw)
        if kind == "models":
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "llmux"}
                    for n in names]
            return self._simple(mod, request, 200, json.dumps(
                {"object": "list", "data": data}).encode())
        name = kind[6:]
        if name in names:
            return self._simple(mod, request, 200, json.dumps(
                {"id": name, "object": "model", "created": 0, "owned_by": "llmux"}).encode())
        return self._simple(mod, request, 404, _error_body(
            "The model '%s' is no alias of this gateway" % name, "invalid_request_error",
            "model_not_found", "model"))

    def _success(self, mod: Any, request: Any, call_id: str, raw: bytes, info: Any) -> Any:
        cost = info.cost_usd
        headers = {
            "content-type": "application/json",
            "x-llmux-call-id": call_id,
            "x-llmux-provider": info.provider,
            "x-llmux-model": info.model,
        }
        if cost is not None:
            headers["x-llmux-cost-usd"] = repr(cost)
        return mod.Response(200, headers=headers, content=raw, request=request)

    def _failure(self, mod: Any, request: Any, call_id: str, err: Any) -> Any:
        """The HTTP answer for a failed call (or the exception to raise)."""
        status = err.status
        info = getattr(err, "llmux", None)
        if status in (-14, -15):
            cls = mod.ReadTimeout if status == -15 else mod.ConnectError
            exc = cls("llmux: %s" % err.message, request=request)
            exc.llmux = info  # type: ignore[attr-defined]
            exc.llmux_call_id = call_id  # type: ignore[attr-defined]
            raise exc from err
        http = _HTTP_STATUS.get(status, 500)
        if status == -13 and 500 <= (err.http_status or 0) <= 599:
            http = err.http_status
        body = err.body
        if isinstance(body, dict):
            if err.code is not None and err.code != body.get("code"):
                # The SDK's e.code is the provider's own code (e.g.
                # "insufficient_quota" apart from "rate_limit_exceeded");
                # llmux's class stays in llmux_code.
                body = dict(body, code=err.code, llmux_code=body.get("code"))
            payload = json.dumps({"error": body}).encode()
        else:
            payload = _error_body(err.message, "llmux_error", err.llmux_code)
        headers = {"x-llmux-call-id": call_id}
        if info is not None:
            headers["x-llmux-provider"] = info.provider
            headers["x-llmux-model"] = info.model
        if err.retry_after is not None:
            ra = max(0.0, err.retry_after)
            headers["retry-after-ms"] = str(int(ra * 1000 + 0.5))
            headers["retry-after"] = str(int(-(-ra // 1)))
        if err.request_id:
            headers["x-request-id"] = err.request_id
        return self._simple(mod, request, http, payload, headers)

    def _bad_header(self, mod: Any, request: Any, message: str) -> Any:
        return self._simple(mod, request, 400, _error_body(
            message, "invalid_request_error", "invalid_header"))

    def _answer(self, mod: Any, request: Any, call_id: str, info: Any) -> Any:
        """A non-streamed call's CallInfo (see _call_info) -> the HTTP response."""
        self._traces.put(call_id, info)
        res = info._res
        if info.status == 0:
            return self._success(mod, request, call_id, _client._rjson(res), info)
        return self._failure(mod, request, call_id, _client._error(info, res))

    def _no_chunk(self, mod: Any, request: Any, call_id: str, state: _State) -> Any:
        """The answer for a stream that ended before its first chunk."""
        kind, value = state.outcome
        self._traces.put(call_id, getattr(value, "llmux", None))
        if kind == "error":
            return self._failure(mod, request, call_id, value)
        return mod.Response(200, headers=_sse_headers(call_id),
                            content=b"data: [DONE]\n\n", request=request)


def _call_info(res: Any) -> Any:
    """The CallInfo owning a non-streamed call's result (made on the worker
    thread, so a result nobody awaits any more is freed when collected)."""
    if res is None:
        raise MemoryError("llmux: no result (out of memory)")
    return _client.CallInfo(res, _client._status(res))


def _closed(mod: Any, request: Any, call_id: str, err: Exception) -> Any:
    return mod.Response(503, headers={"content-type": "application/json",
                                      "x-llmux-call-id": call_id},
                        content=_error_body(str(err), "llmux_error", "gateway_closed"),
                        request=request)


class _BadHeader(Exception):
    pass


def _sse(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


def _stream_error(err: Any) -> bytes:
    body = err.body if isinstance(getattr(err, "body", None), dict) else {
        "message": str(err), "type": "llmux_error", "param": None,
        "code": getattr(err, "llmux_code", None)}
    return _sse(json.dumps({"error": body}).encode())


class _SSE:
    """The body of a streamed answer: the chunks as SSE events, an error event
    if the call failed after its first chunk, then [DONE]."""

    def __init__(self, state: _State, first: Optional[bytes], traces: _Traces,
                 call_id: str) -> None:
        self._state, self._first = state, first
        self._traces, self._call_id = traces, call_id
        self._done = False

    def _end(self) -> Optional[bytes]:
        """Once the worker ended (it sets the outcome before it queues _END):
        store the CallInfo; the error event, if any."""
        self._done = True
        state = self._state
        kind, value = state.outcome
        self._traces.put(self._call_id, getattr(value, "llmux", None))
        if kind == "ok" or state.cancel:
            return None
        return _stream_error(value)


class _SyncSSE(_SSE):
    def __iter__(self) -> Iterator[bytes]:
        first, self._first = self._first, None
        if first is not None:
            yield _sse(first)
        q = self._state.queue
        while not self._done:
            item = q.get()
            if item is _END:
                tail = self._end()
                if tail is not None:
                    yield tail
                yield b"data: [DONE]\n\n"
                return
            yield _sse(item)

    def close(self) -> None:
        if self._done:
            return
        _abort(self._state)
        q = self._state.queue
        while q.get() is not _END:
            pass
        self._end()


class HTTPTransport(_Router):
    """An httpx (or httpx2) transport that answers the OpenAI API in-process:
    ``httpx.Client(transport=llmux.HTTPTransport(gw))``. key, task and
    workflow are defaults for calls whose request does not set them."""

    def handle_request(self, request: Any) -> Any:
        mod = _httpx_of(request)
        kind = self._route(request)
        if kind != "chat":
            if kind.startswith("model"):
                return self._models(mod, request, kind)
            return self._not_routed(mod, request, kind)
        body = request.read()
        try:
            opts = self._options(request)
        except _BadHeader as e:
            return self._bad_header(mod, request, str(e))
        call_id = _new_call_id()
        core = self._core
        if self._wants_stream(body):
            return self._stream(mod, request, call_id, core, body, opts)
        try:
            info = _call_info(_client.call_blocking(core, body, opts))
        except _client.GatewayClosedError as e:
            return _closed(mod, request, call_id, e)
        return self._answer(mod, request, call_id, info)

    def _stream(self, mod: Any, request: Any, call_id: str, core: Any, body: bytes,
                opts: Any) -> Any:
        state = _State()
        try:
            start_worker(state, core, body, opts, "llmux-transport-stream")
        except _client.GatewayClosedError as e:
            return _closed(mod, request, call_id, e)
        first = state.queue.get()
        if first is _END:  # failed before the first chunk: an HTTP error answer
            return self._no_chunk(mod, request, call_id, state)
        sse = _sync_stream_class(mod)(state, first, self._traces, call_id)
        return mod.Response(200, headers=_sse_headers(call_id), stream=sse, request=request)

    def close(self) -> None:
        """Nothing to release: the gateway belongs to the caller."""

    def __enter__(self) -> "HTTPTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _sse_headers(call_id: str) -> Dict[str, str]:
    return {"content-type": "text/event-stream", "cache-control": "no-cache",
            "x-llmux-call-id": call_id}


_stream_classes: Dict[Any, Any] = {}


def _sync_stream_class(mod: Any) -> Any:
    cls = _stream_classes.get(mod)
    if cls is None:
        cls = _stream_classes[mod] = type("LlmuxSSEStream", (_SyncSSE, mod.SyncByteStream), {})
    return cls


# -- asyncio ---------------------------------------------------------------------


class _AsyncSSE(_SSE):
    """The async body of a streamed answer."""

    async def _get(self) -> Any:
        import asyncio

        try:
            return await self._state.queue.get()
        except asyncio.CancelledError:
            _abort(self._state)
            raise

    async def __aiter__(self) -> Any:
        first, self._first = self._first, None
        if first is not None:
            yield _sse(first)
        while not self._done:
            item = await self._get()
            if item is _END:
                tail = self._end()
                if tail is not None:
                    yield tail
                yield b"data: [DONE]\n\n"
                return
            yield _sse(item)

    async def aclose(self) -> None:
        if self._done:
            return
        _abort(self._state)
        while await self._get() is not _END:
            pass
        self._end()


_async_stream_classes: Dict[Any, Any] = {}


def _async_stream_class(mod: Any) -> Any:
    cls = _async_stream_classes.get(mod)
    if cls is None:
        cls = _async_stream_classes[mod] = type("LlmuxAsyncSSEStream",
                                                (_AsyncSSE, mod.AsyncByteStream), {})
    return cls


class AsyncHTTPTransport(_Router):
    """The asyncio transport for ``httpx.AsyncClient`` (and httpx2's):
    ``httpx.AsyncClient(transport=llmux.AsyncHTTPTransport(gw))``. Each
    blocking C call runs on a thread of the transport's pool (at most
    ``max_workers`` at once; given an AsyncGateway, on that gateway's pool), a
    stream on its own thread; the event loop is
    never blocked. Cancelling the awaiting task cancels the C call when the
    library has the cancellation API (see docs/python.md, asyncio)."""

    def __init__(self, gateway: Any, *, key: Optional[str] = None,
                 task: Optional[str] = None, workflow: Optional[str] = None,
                 max_workers: int = 64) -> None:
        super().__init__(gateway, key=key, task=task, workflow=workflow)
        from ._async import LazyPool

        # An AsyncGateway's own pool when given one, else the transport's.
        self._pool = getattr(gateway, "_pool", None) or LazyPool(max_workers,
                                                                 "llmux-transport")
        self._own_pool = self._pool is not getattr(gateway, "_pool", None)

    async def handle_async_request(self, request: Any) -> Any:
        import asyncio

        mod = _httpx_of(request)
        kind = self._route(request)
        if kind != "chat":
            if kind.startswith("model"):
                return self._models(mod, request, kind)
            return self._not_routed(mod, request, kind)
        body = await request.aread()
        try:
            opts = self._options(request)
        except _BadHeader as e:
            return self._bad_header(mod, request, str(e))
        call_id = _new_call_id()
        core = self._core
        if self._wants_stream(body):
            return await self._astream(mod, request, call_id, core, body, opts)
        from ._async import run_call

        try:
            info = await run_call(self._pool.get(), core, body, opts, _call_info)
        except _client.GatewayClosedError as e:
            return _closed(mod, request, call_id, e)
        return self._answer(mod, request, call_id, info)

    async def _astream(self, mod: Any, request: Any, call_id: str, core: Any, body: bytes,
                       opts: Any) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        q: "asyncio.Queue[Any]" = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody reads any more
                state.cancel = True

        state = _State(queue=q, put=put)
        try:
            start_worker(state, core, body, opts, "llmux-transport-stream")
        except _client.GatewayClosedError as e:
            return _closed(mod, request, call_id, e)
        sse = _async_stream_class(mod)(state, None, self._traces, call_id)
        first = await sse._get()
        if first is _END:
            sse._done = True
            return self._no_chunk(mod, request, call_id, state)
        sse._first = first
        return mod.Response(200, headers=_sse_headers(call_id), stream=sse, request=request)

    async def aclose(self) -> None:
        if self._own_pool:
            self._pool.shutdown()

    async def __aenter__(self) -> "AsyncHTTPTransport":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _httpx_client_module() -> Any:
    """httpx2 when installed (what openai 3.x uses), else httpx."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


_DEFAULT_BASE_URL = "http://llmux.invalid/v1"


def openai_client(gateway: Any, *, key: Optional[str] = None, task: Optional[str] = None,
                  workflow: Optional[str] = None, max_retries: int = 0,
                  **kwargs: Any) -> Any:
    """An ``openai.OpenAI`` client whose calls go through ``gateway`` in-process.

    key is the gateway key (sent as the bearer token), task and workflow the
    defaults for calls without X-Llmux-Task / X-Llmux-Workflow headers.
    max_retries defaults to 0: llmux already tries the alias's targets in order
    within the call's deadline; pass max_retries=N to have the SDK retry the
    whole call as well (it honours retry-after). Other keywords go to
    ``openai.OpenAI``."""
    import openai

    mod = _httpx_client_module()
    kwargs.setdefault("base_url", _DEFAULT_BASE_URL)
    http_client = mod.Client(transport=HTTPTransport(gateway, task=task, workflow=workflow))
    return openai.OpenAI(api_key=key or "llmux", max_retries=max_retries,
                         http_client=http_client, **kwargs)


def async_openai_client(gateway: Any, *, key: Optional[str] = None,
                        task: Optional[str] = None, workflow: Optional[str] = None,
                        max_retries: int = 0, max_workers: int = 64,
                        **kwargs: Any) -> Any:
    """An ``openai.AsyncOpenAI`` client whose calls go through ``gateway``
    in-process (a Gateway or an AsyncGateway); see openai_client."""
    import openai

    mod = _httpx_client_module()
    kwargs.setdefault("base_url", _DEFAULT_BASE_URL)
    http_client = mod.AsyncClient(transport=AsyncHTTPTransport(
        gateway, task=task, workflow=workflow, max_workers=max_workers))
    return openai.AsyncOpenAI(api_key=key or "llmux", max_retries=max_retries,
                              http_client=http_client, **kwargs)
