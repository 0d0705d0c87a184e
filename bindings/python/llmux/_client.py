"""The Pythonic layer: Gateway and gw.chat.completions.create().

Per call the Python side does: build a dict, json-encode it (json's C encoder),
one ctypes call to llmux_chat (the GIL is released while C runs), two result
accessors, parse the answer straight into attribute objects, and hand the
result to a CallInfo that reads the rest lazily and frees it. Nothing else.
"""

import json
import os
from _thread import allocate_lock

from ._errors import (
    ConfigError,
    LibraryNotFoundError,
    LlmuxError,
    error_class,
)
from ._types import Object
from ._types import chunk as _chunk
from ._types import completion as _completion

# Filled by _bind() when the first Gateway loads the library: the ctypes
# functions of the hot path, as module globals (the fastest lookup).
_capi = None
_lib = None
_chat = _chat_stream = _status = _rjson = _rerror = _rprovider = _rmodel = None
_rcost = _rtrace = _rhttp = _rptok = _rctok = _rfree = None
_c_void_p = _byref = _Options = _ChunkCB = None

_loads = json.loads


def _to_json(o):
    # Lets callers put response objects (e.g. resp.choices[0].message) back
    # into `messages`, as with the OpenAI SDK.
    if isinstance(o, Object):
        return o.__dict__
    to_dict = getattr(o, "to_dict", None) or getattr(o, "model_dump", None)
    if to_dict is not None:
        return to_dict()
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _make_encode():
    """The request encoder: json's C encoder made once (JSONEncoder.encode would
    build a new one on every call), compact, UTF-8, no circularity check."""
    try:
        from _json import encode_basestring, make_encoder

        c_encoder = make_encoder(None, _to_json, encode_basestring, None, ":", ",",
                                 False, False, True)
        join = "".join

        def encode(obj):
            return join(c_encoder(obj, 0)).encode()

        encode({"probe": [1, 2.5, None, True, "\u00e9"]})
        return encode
    except Exception:  # no C accelerator (other Python implementations)
        enc = json.JSONEncoder(ensure_ascii=False, check_circular=False,
                               separators=(",", ":"), default=_to_json).encode
        return lambda obj: enc(obj).encode()


_encode = _make_encode()


def _bind():
    global _capi, _lib, _chat, _chat_stream, _status, _rjson, _rerror, _rprovider
    global _rmodel, _rcost, _rtrace, _rhttp, _rptok, _rctok, _rfree, _c_void_p, _byref, _Options, _ChunkCB
    if _lib is not None:
        return _lib
    from . import _capi as capi
    import ctypes

    try:
        lib = capi.load()
    except capi.LibraryNotFound as e:
        raise LibraryNotFoundError(str(e)) from None
    _capi = capi
    _chat = lib.llmux_chat
    _chat_stream = lib.llmux_chat_stream
    _status = lib.llmux_result_status
    _rjson = lib.llmux_result_json
    _rerror = lib.llmux_result_error
    _rprovider = lib.llmux_result_provider
    _rmodel = lib.llmux_result_model
    _rcost = lib.llmux_result_cost_usd
    _rtrace = lib.llmux_result_trace_json
    _rhttp = lib.llmux_result_http_status
    _rptok = lib.llmux_result_prompt_tokens
    _rctok = lib.llmux_result_completion_tokens
    _rfree = lib.llmux_result_free
    _c_void_p = ctypes.c_void_p
    _byref = ctypes.byref
    _Options = capi.llmux_call_options
    _ChunkCB = capi.llmux_chunk_cb
    _lib = lib
    return lib


def library():
    """The loaded ctypes.CDLL (loads it on first use)."""
    return _bind()


def lib_version():
    """The C library's version string, e.g. "0.1.0"."""
    return _bind().llmux_version().decode()


def strerror(status):
    """The C library's name for a status code."""
    return _bind().llmux_strerror(status).decode()


_options_cache = {}


def _options(key, workflow, task, timeout):
    """The llmux_call_options for these values. C only reads them (const), so
    one struct per distinct combination is made and shared, also across threads."""
    ck = (key, workflow, task, timeout)
    try:
        return _options_cache[ck]
    except (KeyError, TypeError):  # TypeError: an unhashable value, reported below
        pass
    if timeout is None:
        ms = 0
    else:
        ms = int(timeout * 1000.0 + 0.5)
        if ms <= 0:
            raise ValueError("timeout must be a positive number of seconds, got %r" % (timeout,))
    opts = _Options(
        1,
        key.encode() if key is not None else None,
        workflow.encode() if workflow is not None else None,
        task.encode() if task is not None else None,
        ms,
    )
    if len(_options_cache) >= 512:
        _options_cache.clear()
    _options_cache[ck] = opts
    return opts


_fill_lock = allocate_lock()


class CallInfo:
    """What llmux did for one call: ``resp.llmux`` (and ``err.llmux``).

    It owns the C result and reads it lazily: the fields on first access, the
    trace (which the library builds on request) only when asked for. The result
    is freed once everything was read, or when the CallInfo is collected.
    """

    __slots__ = ("status", "_res", "_have", "_provider", "_model", "_cost", "_http",
                 "_ptok", "_ctok", "_trace_json", "_trace")

    def __init__(self, res, status):
        self._res = res
        self.status = status
        self._have = 0
        self._trace = None

    def _fill(self, want):
        # One llmux_result must not be used by two threads at once: the lock
        # covers the (rare) case of a response shared between threads.
        with _fill_lock:
            have = self._have
            if have & want == want:
                return
            res = self._res
            if want & 1 and not have & 1:
                self._provider = _rprovider(res).decode("utf-8", "replace")
                self._model = _rmodel(res).decode("utf-8", "replace")
                cost = _rcost(res)
                self._cost = None if cost < 0 else cost
                self._http = _rhttp(res)
                ptok = _rptok(res)
                ctok = _rctok(res)
                self._ptok = None if ptok < 0 else ptok
                self._ctok = None if ctok < 0 else ctok
                have |= 1
            if want & 2 and not have & 2:
                self._trace_json = _rtrace(res)
                have |= 2
            self._have = have
            if have == 3:
                self._res = None
                _rfree(res)

    def __del__(self):
        res = self._res
        if res is not None:
            self._res = None
            try:
                _rfree(res)
            except Exception:  # interpreter shutdown
                pass

    @property
    def provider(self):
        """The provider name from the config that answered (or failed last)."""
        if not self._have & 1:
            self._fill(1)
        return self._provider

    @property
    def model(self):
        """The provider's model id that answered (or failed last)."""
        if not self._have & 1:
            self._fill(1)
        return self._model

    @property
    def cost_usd(self):
        """The cost in US dollars, or None while the price is unknown."""
        if not self._have & 1:
            self._fill(1)
        return self._cost

    @property
    def http_status(self):
        if not self._have & 1:
            self._fill(1)
        return self._http

    @property
    def prompt_tokens(self):
        if not self._have & 1:
            self._fill(1)
        return self._ptok

    @property
    def completion_tokens(self):
        if not self._have & 1:
            self._fill(1)
        return self._ctok

    @property
    def trace_json(self):
        """The trace as the JSON text llmux produced."""
        if not self._have & 2:
            self._fill(2)
        return self._trace_json.decode("utf-8", "replace")

    @property
    def trace(self):
        """The trace as a dict (parsed on first access)."""
        t = self._trace
        if t is None:
            if not self._have & 2:
                self._fill(2)
            raw = self._trace_json
            t = self._trace = _loads(raw) if raw else {}
        return t

    @property
    def attempts(self):
        return self.trace.get("attempts", [])

    def to_dict(self):
        return {
            "status": self.status,
            "provider": self.provider,
            "model": self.model,
            "cost_usd": self.cost_usd,
            "http_status": self.http_status,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "trace": self.trace,
        }

    def __repr__(self):
        return ("CallInfo(provider=%r, model=%r, cost_usd=%r, http_status=%r, status=%r)"
                % (self.provider, self.model, self.cost_usd, self.http_status, self.status))


def _error(info, res):
    """The exception for a failed result; reads everything (info frees res)."""
    status = info.status
    message = _rerror(res).decode("utf-8", "replace")
    body = code = None
    raw = _rjson(res)
    if raw:
        try:
            body = _loads(raw).get("error")
        except (ValueError, AttributeError):
            body = None
        if isinstance(body, dict):
            code = body.get("code")
            if not message:
                message = body.get("message") or ""
    if not message:
        message = strerror(status)
    try:
        trace = info.trace  # also reads the other fields and frees the result
    except ValueError:
        trace = None
    info._fill(3)
    return error_class(status)(message, status, info.http_status, code, body, trace, info)


def _result(res):
    """Turn an llmux_result into a ChatCompletion or raise. The result then
    belongs to the CallInfo."""
    if res is None:
        raise MemoryError("llmux: no result (out of memory)")
    info = CallInfo(res, _status(res))
    if info.status == 0:
        return _completion(_rjson(res), info)
    raise _error(info, res)


class GatewayClosedError(LlmuxError, RuntimeError):
    """The Gateway was closed."""


class _Core:
    """The C gateway handle and who is using it. Calls hold it busy; close()
    marks it closing and the last call out closes the C gateway. The Gateway,
    its chat.completions and running streams hold this object (not the
    Gateway), so there is no reference cycle and an unreachable gateway is
    closed at once; a kept ``create`` keeps the gateway open."""

    __slots__ = ("_handle", "_lock", "_busy", "_closing", "__weakref__")

    def __init__(self, handle):
        self._handle = handle
        self._lock = allocate_lock()
        self._busy = 0
        self._closing = False

    def _acquire(self):
        with self._lock:
            if self._closing:
                raise GatewayClosedError("the gateway is closed", -1, 0)
            self._busy += 1
            return self._handle

    def _release(self):
        with self._lock:
            self._busy -= 1
            if self._busy or not self._closing:
                return
        self._release_last()

    def _release_last(self):
        with self._lock:
            if self._busy or self._handle is None:
                return
            handle, self._handle = self._handle, None
        _lib.llmux_close(handle)

    def close(self):
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._busy:
                return  # the last running call closes it
            handle, self._handle = self._handle, None
        if handle is not None and _lib is not None:
            _lib.llmux_close(handle)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class Gateway:
    """An llmux gateway: ``Gateway(config)`` with config a dict, a path, or JSON text.

    Use it as a context manager or call close(); a Gateway nobody refers to
    any more (nor to its chat.completions) is closed too. One Gateway may be
    shared by any number of threads. close() may be called while other threads
    are in a call: new calls then raise GatewayClosedError, and the C gateway
    is released when the last running call (or stream) returns.
    """

    def __init__(self, config):
        lib = _bind()
        import ctypes

        handle = ctypes.c_void_p()
        errbuf = ctypes.create_string_buffer(1024)
        if isinstance(config, dict):
            rc = lib.llmux_open(ctypes.byref(handle), json.dumps(config).encode(), errbuf, 1024)
        elif isinstance(config, (bytes, bytearray)):
            rc = lib.llmux_open(ctypes.byref(handle), bytes(config), errbuf, 1024)
        elif isinstance(config, str) and config.lstrip().startswith("{"):
            rc = lib.llmux_open(ctypes.byref(handle), config.encode(), errbuf, 1024)
        else:
            try:
                path = os.fsencode(config)
            except TypeError:
                raise TypeError("config must be a dict, a JSON string or a path, not %s"
                                % type(config).__name__) from None
            rc = lib.llmux_open_file(ctypes.byref(handle), path, errbuf, 1024)
        if rc != 0 or not handle.value:
            message = errbuf.value.decode("utf-8", "replace") or strerror(rc)
            cls = error_class(rc)
            if cls is not ConfigError and rc in (-3, -4):
                cls = ConfigError
            raise cls(message, rc, 0)
        self._core = core = _Core(handle.value)
        self.chat = _Chat(core)

    @property
    def _handle(self):
        """The C llmux * (an int), or None once closed."""
        return self._core._handle

    def close(self):
        """Close the gateway. Idempotent; safe while other threads are in a call."""
        core = self.__dict__.get("_core")
        if core is not None:
            core.close()

    @property
    def closed(self):
        return self._core._closing

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- calls ----------------------------------------------------------------

    def spend(self, group_by=None):
        """The spend report (a dict), grouped by "key", "workflow", "task",
        "model" or "provider"; None for one total row."""
        import ctypes

        out = ctypes.c_void_p()
        core = self._core
        handle = core._acquire()
        try:
            rc = _lib.llmux_spend_json(
                handle, group_by.encode() if group_by else None, ctypes.byref(out))
        finally:
            core._release()
        try:
            if rc != 0:
                raise error_class(rc)("llmux_spend_json(%r): %s" % (group_by, strerror(rc)), rc, 0)
            return json.loads(ctypes.string_at(out.value)) if out.value else {}
        finally:
            _lib.llmux_free(out.value)

    def chat_raw(self, request_json, key=None, workflow=None, task=None, timeout=None):
        """Send request JSON text (str or bytes) and return the result's JSON text
        (bytes) and CallInfo without raising for a failed call."""
        if isinstance(request_json, str):
            request_json = request_json.encode()
        opts = None
        if key is not None or workflow is not None or task is not None or timeout is not None:
            opts = _options(key, workflow, task, timeout)
        res = _c_void_p()
        core = self._core
        handle = core._acquire()
        try:
            _chat(handle, request_json, opts, _byref(res))
        finally:
            core._release()
        info = CallInfo(res.value, _status(res.value))
        return _rjson(res.value), info


class _Chat:
    __slots__ = ("completions",)

    def __init__(self, core):
        self.completions = Completions(core)


class Completions:
    """``gw.chat.completions``: create() shaped like the OpenAI SDK's."""

    __slots__ = ("_gw",)

    def __init__(self, core):
        self._gw = core

    def create(self, *, model, messages, tools=None, stream=False, key=None, workflow=None,
               task=None, timeout=None, on_chunk=None, extra_body=None, **kwargs):
        """Send a Chat Completions request through the gateway.

        model, messages, tools and every other keyword are the OpenAI request
        fields (None values are left out). llmux's own keywords: key (the
        gateway key), workflow and task (attribution and routing), timeout
        (seconds, whole call). With stream=True, returns a Stream of chunks; with
        stream=True and on_chunk=callable, calls on_chunk(chunk) on this thread
        for each chunk and returns the assembled ChatCompletion.
        """
        req = {"model": model, "messages": messages}
        if tools is not None:
            req["tools"] = tools
        if kwargs:
            for k, v in kwargs.items():
                if v is not None:
                    req[k] = v
        if extra_body:
            req.update(extra_body)
        if stream:
            req["stream"] = True
        body = _encode(req)
        opts = None
        if key is not None or workflow is not None or task is not None or timeout is not None:
            opts = _options(key, workflow, task, timeout)
        gw = self._gw
        if stream:
            if on_chunk is not None:
                return _stream_with_callback(gw, body, opts, on_chunk)
            from ._stream import Stream

            return Stream(gw, body, opts)
        res = _c_void_p()
        with gw._lock:
            if gw._closing:
                raise GatewayClosedError("the gateway is closed", -1, 0)
            gw._busy += 1
        try:
            _chat(gw._handle, body, opts, _byref(res))
        finally:
            with gw._lock:
                gw._busy -= 1
                last = not gw._busy and gw._closing
            if last:
                gw._release_last()
        return _result(res.value)


def _stream_with_callback(gw, body, opts, on_chunk):
    """Streaming on the caller's thread: C calls back for each chunk. An
    exception raised by on_chunk is kept, the callback returns 1 (abort), and
    the exception is raised again once the C call has returned."""
    raised = []

    def callback(data, size, payload):
        try:
            on_chunk(_chunk(data))
            return 0
        except BaseException as e:  # noqa: B902 - re-raised after the C call
            raised.append(e)
            return 1

    c_callback = _ChunkCB(callback)  # alive until the C call returns (local)
    res = _c_void_p()
    handle = gw._acquire()
    try:
        _chat_stream(handle, body, opts, c_callback, None, _byref(res))
    finally:
        gw._release()
        del c_callback
    if raised:
        _rfree(res.value)
        raise raised[0]
    return _result(res.value)
