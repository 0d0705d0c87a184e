"""The Pythonic layer: Gateway and gw.chat.completions.create().

Per call the Python side does: build a dict, json-encode it (json's C encoder),
one ctypes call to llmux_chat (the GIL is released while C runs), two result
accessors, parse the answer straight into attribute objects, and hand the
result to a CallInfo that reads the rest lazily and frees it. Nothing else.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from _thread import allocate_lock
from _thread import get_ident as _get_ident
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from ._errors import (
    ConfigError,
    LibraryNotFoundError,
    LlmuxError,
    attempt_facts,
    error_class,
    raised_class,
)
from ._errors import InvalidArgumentError
from ._observe import Observability
from ._types import ChatCompletion, ChatCompletionChunk, Object
from ._types import chunk as _chunk
from ._types import completion as _completion

# Filled by _bind() when the first Gateway loads the library: the ctypes
# functions of the hot path, as module globals (the fastest lookup).
_capi = None
_lib = None
_chat = _chat_stream = _status = _rjson = _rerror = _rprovider = _rmodel = None
_rcost = _rtrace = _rhttp = _rptok = _rctok = _rfree = None
_c_void_p = _byref = _Options = _ChunkCB = None
_has_cancel = False
_main_ident = None

if TYPE_CHECKING:  # annotations only (not evaluated at run time)
    from ._stream import Stream

    # The OpenAI SDK's timeout forms: seconds, None, httpx.Timeout (any object
    # with connect/read/write), or a (connect, read[, write[, pool]]) tuple.
    Timeout = Union[float, None, Tuple[Optional[float], ...], Any]

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
    global _has_cancel, _main_ident
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
    _has_cancel = capi.has_cancel(lib)
    _main_ident = threading.main_thread().ident
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


def library() -> Any:
    """The loaded ctypes.CDLL (loads it on first use)."""
    return _bind()


def lib_version() -> str:
    """The C library's version string, e.g. "0.1.0"."""
    return _bind().llmux_version().decode()


def strerror(status: int) -> str:
    """The C library's name for a status code."""
    return _bind().llmux_strerror(status).decode()


_options_cache = {}


def _seconds(value, what):
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("timeout: %s must be a number of seconds or None, got %r" % (what, value))
    if value <= 0:
        raise ValueError("timeout: %s must be a positive number of seconds, got %r" % (what, value))
    return float(value)


def _timeout_ms(timeout):
    """Milliseconds for the whole call from the OpenAI SDK's timeout forms:
    seconds (a number), None (the config's default), an httpx.Timeout or a
    (connect, read[, write[, pool]]) tuple. llmux has one deadline for the whole
    call, so the phases' limits are added up (connect + read + write; pool, the
    wait for a free connection, does not apply); all None means the default."""
    if timeout is None:
        return 0
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        secs = _seconds(timeout, "the value")
    else:
        if isinstance(timeout, tuple):
            if not 1 <= len(timeout) <= 4:
                raise TypeError("timeout: a tuple is (connect, read[, write[, pool]]), got %r"
                                % (timeout,))
            phases = (timeout + (None, None))[:3]
        elif hasattr(timeout, "connect") and hasattr(timeout, "read"):  # httpx.Timeout
            phases = (timeout.connect, timeout.read, getattr(timeout, "write", None))
        else:
            raise TypeError("timeout must be seconds, None, an httpx.Timeout or a "
                            "(connect, read[, write[, pool]]) tuple, not %s"
                            % type(timeout).__name__)
        secs = 0.0
        for what, value in zip(("connect", "read", "write"), phases):
            secs += _seconds(value, what)
    return int(secs * 1000.0 + 0.5) if secs else 0


Period = Union[None, str, datetime.date]  # datetime.datetime is a date too


def _enc(text):
    return text.encode() if text else None


def _utc(when):
    """A period bound as llmux reads it: "YYYY-MM-DD" for a date,
    "YYYY-MM-DDTHH:MM:SS.mmmZ" for a datetime (naive ones are taken as UTC)."""
    if when is None:
        return None
    if isinstance(when, str):
        return when.encode()
    if isinstance(when, datetime.datetime):
        if when.tzinfo is not None:
            when = when.astimezone(datetime.timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.").encode() + (
            "%03dZ" % (when.microsecond // 1000)).encode()
    if isinstance(when, datetime.date):
        return when.strftime("%Y-%m-%d").encode()
    raise TypeError("since/until: expected a str, date or datetime, got %s"
                    % type(when).__name__)


def _options(key, workflow, task, timeout):
    """The llmux_call_options for these values. C only reads them (const), so
    one struct per distinct combination is made and shared, also across threads."""
    ck = (key, workflow, task, timeout)
    try:
        return _options_cache[ck]
    except (KeyError, TypeError):  # TypeError: unhashable (an httpx.Timeout, a bad value)
        pass
    opts = _Options(
        1,
        key.encode() if key is not None else None,
        workflow.encode() if workflow is not None else None,
        task.encode() if task is not None else None,
        _timeout_ms(timeout),
    )
    try:
        hash(ck)
    except TypeError:
        return opts
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
    def provider(self) -> str:
        """The provider name from the config that answered (or failed last)."""
        if not self._have & 1:
            self._fill(1)
        return self._provider

    @property
    def model(self) -> str:
        """The provider's model id that answered (or failed last)."""
        if not self._have & 1:
            self._fill(1)
        return self._model

    @property
    def cost_usd(self) -> Optional[float]:
        """The cost in US dollars, or None while the price is unknown."""
        if not self._have & 1:
            self._fill(1)
        return self._cost

    @property
    def http_status(self) -> int:
        if not self._have & 1:
            self._fill(1)
        return self._http

    @property
    def prompt_tokens(self) -> Optional[int]:
        if not self._have & 1:
            self._fill(1)
        return self._ptok

    @property
    def completion_tokens(self) -> Optional[int]:
        if not self._have & 1:
            self._fill(1)
        return self._ctok

    @property
    def trace_json(self) -> str:
        """The trace as the JSON text llmux produced."""
        if not self._have & 2:
            self._fill(2)
        return self._trace_json.decode("utf-8", "replace")

    @property
    def trace(self) -> Dict[str, Any]:
        """The trace as a dict (parsed on first access)."""
        t = self._trace
        if t is None:
            if not self._have & 2:
                self._fill(2)
            raw = self._trace_json
            t = self._trace = _loads(raw) if raw else {}
        return t

    @property
    def attempts(self) -> List[Dict[str, Any]]:
        return self.trace.get("attempts", [])

    def to_dict(self) -> Dict[str, Any]:
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

    def __repr__(self) -> str:
        return ("CallInfo(provider=%r, model=%r, cost_usd=%r, http_status=%r, status=%r)"
                % (self.provider, self.model, self.cost_usd, self.http_status, self.status))


def _error(info, res):
    """The exception for a failed result; reads everything (info frees res)."""
    status = info.status
    message = _rerror(res).decode("utf-8", "replace")
    body = llmux_code = None
    raw = _rjson(res)
    if raw:
        try:
            body = _loads(raw).get("error")
        except (ValueError, AttributeError):
            body = None
        if isinstance(body, dict):
            llmux_code = body.get("code")
            if not message:
                message = body.get("message") or ""
    if not message:
        message = strerror(status)
    try:
        trace = info.trace  # also reads the other fields and frees the result
    except ValueError:
        trace = None
    info._fill(3)
    retry_after, code, request_id = attempt_facts(trace, status)
    return raised_class(error_class(status))(
        message, status, info.http_status, code, body, trace, info, retry_after, request_id,
        llmux_code)


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

    __slots__ = ("_handle", "_lock", "_busy", "_closing", "_alert_cb", "__weakref__")

    def __init__(self, handle):
        self._handle = handle
        self._lock = allocate_lock()
        self._busy = 0
        self._closing = False
        self._alert_cb = None  # the ctypes alert callback, alive while the C gateway is

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


class Gateway(Observability):
    """An llmux gateway: ``Gateway(config)`` with config a dict, a path, or JSON text.

    Use it as a context manager or call close(); a Gateway nobody refers to
    any more (nor to its chat.completions) is closed too. One Gateway may be
    shared by any number of threads. close() may be called while other threads
    are in a call: new calls then raise GatewayClosedError, and the C gateway
    is released when the last running call (or stream) returns.
    """

    def __init__(self, config: Union[Mapping[str, Any], str, bytes, "os.PathLike[str]"]) -> None:
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
        self._config_source = config  # GET /v1/models of llmux.HTTPTransport lists its aliases
        self.chat: _Chat = _Chat(core)

    @property
    def _handle(self) -> Optional[int]:
        """The C llmux * (an int), or None once closed."""
        return self._core._handle

    def close(self) -> None:
        """Close the gateway. Idempotent; safe while other threads are in a call."""
        core = self.__dict__.get("_core")
        if core is not None:
            core.close()

    @property
    def closed(self) -> bool:
        return self._core._closing

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------

    def spend(self, group_by: Optional[str] = None, since: Period = None,
              until: Period = None) -> Dict[str, Any]:
        """The spend report (a dict), grouped by "key", "workflow", "task",
        "model", "provider", "team" or "alias"; None for one total row. since/until (a UTC
        datetime, date or "YYYY-MM-DD[THH:MM[:SS]]Z" string) limit it to the
        journal's records with since <= time < until (needs ledger.journal)."""
        if since is None and until is None:
            return self._text_out(_lib.llmux_spend_json, "llmux_spend_json(%r)" % (group_by,),
                                  json.loads, _enc(group_by))
        return self._text_out(_lib.llmux_spend_period_json,
                              "llmux_spend_period_json(%r)" % (group_by,), json.loads,
                              _enc(group_by), _utc(since), _utc(until))

    def export(self, format: str = "jsonl", since: Period = None, until: Period = None) -> str:
        """The ledger journal's records (docs/ledger.md) as JSON lines ("jsonl")
        or CSV ("csv"), optionally those with since <= time < until."""
        return self._text_out(_lib.llmux_ledger_export, "llmux_ledger_export(%r)" % (format,),
                              lambda text: text, _enc(format), _utc(since), _utc(until))

    def compact(self) -> None:
        """Rewrite the ledger journal as daily summary records now."""
        core = self._core
        handle = core._acquire()
        try:
            rc = _lib.llmux_ledger_compact(handle)
        finally:
            core._release()
        if rc != 0:
            raise error_class(rc)("llmux_ledger_compact: %s" % strerror(rc), rc, 0)

    def _text_out(self, fn: Callable[..., int], what: str, decode: Callable[[str], Any],
                  *args: Any) -> Any:
        import ctypes

        out = ctypes.c_void_p()
        core = self._core
        handle = core._acquire()
        try:
            rc = fn(handle, *args, ctypes.byref(out))
        finally:
            core._release()
        try:
            if rc != 0:
                raise error_class(rc)("%s: %s" % (what, strerror(rc)), rc, 0)
            return decode(ctypes.string_at(out.value).decode()) if out.value else decode("")
        finally:
            _lib.llmux_free(out.value)

    def warnings(self) -> List[str]:
        """What the gateway accepted at open but will not work as written
        (e.g. an unset api_key_env variable), each "json.path: message".
        With "strict": true in the config, opening refuses such a config."""
        import ctypes

        out = ctypes.c_void_p()
        core = self._core
        handle = core._acquire()
        try:
            rc = _lib.llmux_warnings_json(handle, ctypes.byref(out))
        finally:
            core._release()
        try:
            if rc != 0:
                raise error_class(rc)("llmux_warnings_json: %s" % strerror(rc), rc, 0)
            return list(json.loads(ctypes.string_at(out.value))) if out.value else []
        finally:
            _lib.llmux_free(out.value)

    def _json_out(self, fn: Callable[..., int], what: str, *args: Any) -> Any:
        import ctypes

        out = ctypes.c_void_p()
        core = self._core
        handle = core._acquire()
        try:
            rc = fn(handle, *args, ctypes.byref(out))
        finally:
            core._release()
        try:
            doc = json.loads(ctypes.string_at(out.value)) if out.value else None
            if rc != 0:
                msg = (doc or {}).get("error", {}).get("message") if isinstance(doc, dict) else None
                raise error_class(rc)(msg or "%s: %s" % (what, strerror(rc)), rc, 0)
            return doc
        finally:
            _lib.llmux_free(out.value)

    # -- gateway keys, budgets, alerts (docs/keys-and-budgets.md) -------------

    def _with_errbuf(self, fn: Callable[..., int], what: str, *args: Any) -> None:
        import ctypes

        errbuf = ctypes.create_string_buffer(512)
        core = self._core
        handle = core._acquire()
        try:
            rc = fn(handle, *args, errbuf, 512)
        finally:
            core._release()
        if rc != 0:
            raise error_class(rc)(errbuf.value.decode("utf-8", "replace") or
                                  "%s: %s" % (what, strerror(rc)), rc, 0)

    def add_key(self, id: str, *, key: Optional[str] = None, sha256: Optional[str] = None,
                team: Optional[str] = None, models: Optional[Sequence[str]] = None,
                direct: Optional[bool] = None, expires: Optional[str] = None,
                budgets: Optional[Sequence[Mapping[str, Any]]] = None,
                limits: Optional[Mapping[str, int]] = None) -> None:
        """Add a gateway key: its plaintext ``key`` (hashed at once) or its
        ``sha256``, and the fields of a config key. InvalidArgumentError for a
        bad spec, a taken id or a secret another key has."""
        spec: Dict[str, Any] = {}
        for name, value in (("key", key), ("sha256", sha256), ("team", team),
                            ("models", list(models) if models is not None else None),
                            ("direct", direct), ("expires", expires),
                            ("budgets", list(budgets) if budgets is not None else None),
                            ("limits", dict(limits) if limits is not None else None)):
            if value is not None:
                spec[name] = value
        self._with_errbuf(_lib.llmux_key_add, "llmux_key_add", id.encode(),
                          json.dumps(spec).encode())

    def rotate_key(self, id: str, new_key: str) -> None:
        """Give key ``id`` a new secret; the old one stops working at once."""
        self._with_errbuf(_lib.llmux_key_rotate, "llmux_key_rotate", id.encode(),
                          new_key.encode())

    def revoke_key(self, id: str) -> None:
        """Revoke key ``id`` for good: its calls raise AuthenticationError."""
        core = self._core
        handle = core._acquire()
        try:
            rc = _lib.llmux_key_revoke(handle, id.encode())
        finally:
            core._release()
        if rc != 0:
            raise error_class(rc)("no key with id %r" % id, rc, 0)

    def keys(self) -> List[Dict[str, Any]]:
        """The gateway keys by id (team, state, models, expiry): never a hash."""
        return list(self._json_out(_lib.llmux_keys_json, "llmux_keys_json") or [])

    def budgets(self) -> List[Dict[str, Any]]:
        """Every budget's limit, spent and held amounts in its current period."""
        return list(self._json_out(_lib.llmux_budgets_json, "llmux_budgets_json") or [])

    def on_alert(self, callback: Optional[Callable[[Dict[str, Any]], None]]) -> None:
        """Call ``callback(alert)`` (a dict: scope, name, period, period_start,
        threshold, limit_usd, spent_usd, spent_nusd) once per budget threshold
        per period, on the thread whose call crossed it. None: no alerts.
        Exceptions the callback raises are ignored (printed by ctypes)."""
        from ._capi import llmux_alert_cb

        if callback is None:
            cb = llmux_alert_cb()
        else:
            def trampoline(alert_json: bytes, payload: Any) -> None:
                callback(json.loads(alert_json))
            cb = llmux_alert_cb(trampoline)
        core = self._core
        handle = core._acquire()
        try:
            _lib.llmux_set_alert_callback(handle, cb, None)
            core._alert_cb = cb  # kept alive with the C gateway
        finally:
            core._release()

    def route(self, model: str, messages: Any, *, key: Optional[str] = None,
              workflow: Optional[str] = None, task: Optional[str] = None,
              **body: Any) -> Dict[str, Any]:
        """A dry run: the route llmux would take for this request (rule, alias,
        strategy, candidates, skipped targets and why), calling no provider."""
        request = dict(body, model=model, messages=messages)
        import ctypes

        opts = _options(key, workflow, task, None)
        return self._json_out(_lib.llmux_route_json, "llmux_route_json",
                              json.dumps(request).encode(), ctypes.byref(opts))

    def health(self) -> List[Dict[str, Any]]:
        """Every alias target's health: state (ok, cooldown, half_open, probing),
        in-flight calls, consecutive failures, cooldown left, latency average."""
        return list(self._json_out(_lib.llmux_health_json, "llmux_health_json") or [])

    def chat_raw(self, request_json: Union[str, bytes], key: Optional[str] = None,
                 workflow: Optional[str] = None, task: Optional[str] = None,
                 timeout: Timeout = None) -> Tuple[Optional[bytes], CallInfo]:
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


# The request fields openai-python's chat.completions.create() takes as
# keywords (besides model, messages, tools, stream). Anything else is refused:
# pass provider-specific fields in extra_body, as with the SDK.
REQUEST_FIELDS = frozenset((
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_options", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream_options",
    "temperature", "tool_choice", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options",
))

_REFUSED = {
    "max_retries": "llmux does not retry one target: a call tries the alias's targets in "
                   "order within its deadline (the config's \"models\"); the OpenAI SDK "
                   "takes max_retries on the client, not in create() either",
    "api_key": "pass the gateway key as key=; provider keys live in the config",
    "base_url": "providers and their URLs live in the config",
}


def _refuse(fields):
    bad = sorted(k for k in fields if k not in REQUEST_FIELDS)
    name = bad[0]
    why = _REFUSED.get(name) or (
        "it is no OpenAI Chat Completions request field; send provider-specific fields "
        "with extra_body={%r: ...}" % name)
    return TypeError("create() got an unexpected keyword argument %r: %s" % (name, why))


def _prepare(model, messages, tools, stream, key, workflow, task, timeout, extra_body,
             extra_headers, extra_query, fields):
    """The request JSON (bytes) and the call options for create()'s arguments."""
    req = {"model": model, "messages": messages}
    if tools is not None:
        req["tools"] = tools
    if fields:
        if not fields.keys() <= REQUEST_FIELDS:
            raise _refuse(fields)
        for k, v in fields.items():
            if v is not None:
                req[k] = v
    if extra_body:
        req.update(extra_body)
    if extra_headers or extra_query:
        raise InvalidArgumentError(
            "create(%s=...): llmux cannot send per-call HTTP %s to the provider (the C "
            "API has no way to pass them); set provider headers in the config, or drop "
            "the keyword" % (("extra_headers", "headers") if extra_headers
                             else ("extra_query", "query parameters")),
            _LLMUX_ERR_INVALID_ARGUMENT, 0)
    if stream:
        req["stream"] = True
    opts = None
    if key is not None or workflow is not None or task is not None or timeout is not None:
        opts = _options(key, workflow, task, timeout)
    return _encode(req), opts


_LLMUX_ERR_INVALID_ARGUMENT = -1


class _Cancel:
    """One llmux_cancel for one call (only with a library that has the API).
    trigger() may come from another thread at any time; finish() runs once the
    C call has returned and frees it."""

    __slots__ = ("_ptr", "_lock")

    def __init__(self):
        p = _c_void_p()
        if _lib.llmux_cancel_new(_byref(p)) != 0 or not p.value:
            raise MemoryError("llmux_cancel_new failed")
        self._ptr = p.value
        self._lock = allocate_lock()

    def options(self, opts):
        """Version 2 call options: opts plus this cancel handle."""
        o = _capi.llmux_call_options_v2()
        _lib.llmux_call_options_init(_byref(o), 2)
        o.version = 2
        if opts is not None:
            o.key, o.workflow, o.task, o.timeout_ms = opts.key, opts.workflow, opts.task, opts.timeout_ms
        o.cancel = self._ptr
        return o

    def trigger(self):
        with self._lock:
            if self._ptr is not None:
                _lib.llmux_cancel_trigger(self._ptr)

    def finish(self):
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            _lib.llmux_cancel_free(ptr)


def new_cancel():
    """A _Cancel, or None when the library has no cancellation API."""
    return _Cancel() if _has_cancel else None


def call_blocking(core, body, opts, cancel=None):
    """llmux_chat on this thread; returns the llmux_result pointer."""
    if cancel is not None:
        opts = cancel.options(opts)
    res = _c_void_p()
    handle = core._acquire()
    try:
        _chat(handle, body, opts, _byref(res))
    finally:
        core._release()
        if cancel is not None:
            cancel.finish()
    return res.value


class _MainCaller:
    """Runs the main thread's blocking calls on one helper thread, so that the
    main thread waits on a lock, which Ctrl-C interrupts: the call's cancel
    handle is then triggered and KeyboardInterrupt raised once C returned.
    Used only with a library that has the cancellation API."""

    def __init__(self):
        import threading

        self._go = allocate_lock()
        self._go.acquire()
        self._done = allocate_lock()
        self._done.acquire()
        self._job = None
        self._out = None
        self.busy = False
        threading.Thread(target=self._run, name="llmux-main-call", daemon=True).start()

    def _run(self):
        while True:
            self._go.acquire()
            handle, body, opts = self._job
            res = _c_void_p()
            _chat(handle, body, opts, _byref(res))
            self._out = res.value
            self._done.release()

    def call(self, core, body, opts):
        cancel = _Cancel()
        self.busy = True
        try:
            handle = core._acquire()
            try:
                self._job = (handle, body, cancel.options(opts))
                self._go.release()
                try:
                    self._done.acquire()
                except KeyboardInterrupt:
                    cancel.trigger()
                    while True:  # C ends within milliseconds once cancelled
                        try:
                            self._done.acquire()
                            break
                        except KeyboardInterrupt:
                            pass
                    _rfree(self._out)
                    raise
            finally:
                self._job = None
                core._release()
                cancel.finish()
            return self._out
        finally:
            self.busy = False


_main_caller = None


def _interruptible_call(core, body, opts):
    """On the main thread with the cancellation API: the call through the
    _MainCaller (None when this is a nested call, e.g. from a signal handler)."""
    global _main_caller
    mc = _main_caller
    if mc is None:
        mc = _main_caller = _MainCaller()
    elif mc.busy:
        return None
    return mc.call(core, body, opts)


class _Chat:
    __slots__ = ("completions",)
    completions: "Completions"

    def __init__(self, core: Any) -> None:
        self.completions = Completions(core)


class Completions:
    """``gw.chat.completions``: create() shaped like the OpenAI SDK's."""

    __slots__ = ("_gw",)

    def __init__(self, core):
        self._gw = core

    @overload
    def create(self, *, model: str, messages: Iterable[Any], tools: Optional[Iterable[Any]] = None,
               stream: Literal[False] = False, key: Optional[str] = None,
               workflow: Optional[str] = None, task: Optional[str] = None,
               timeout: Timeout = None, extra_body: Optional[Mapping[str, Any]] = None,
               extra_headers: Optional[Mapping[str, str]] = None,
               extra_query: Optional[Mapping[str, object]] = None,
               **fields: Any) -> ChatCompletion: ...

    @overload
    def create(self, *, model: str, messages: Iterable[Any], tools: Optional[Iterable[Any]] = None,
               stream: Literal[True], on_chunk: Callable[[ChatCompletionChunk], object],
               key: Optional[str] = None, workflow: Optional[str] = None,
               task: Optional[str] = None, timeout: Timeout = None,
               extra_body: Optional[Mapping[str, Any]] = None,
               extra_headers: Optional[Mapping[str, str]] = None,
               extra_query: Optional[Mapping[str, object]] = None,
               **fields: Any) -> ChatCompletion: ...

    @overload
    def create(self, *, model: str, messages: Iterable[Any], tools: Optional[Iterable[Any]] = None,
               stream: Literal[True], key: Optional[str] = None,
               workflow: Optional[str] = None, task: Optional[str] = None,
               timeout: Timeout = None, extra_body: Optional[Mapping[str, Any]] = None,
               extra_headers: Optional[Mapping[str, str]] = None,
               extra_query: Optional[Mapping[str, object]] = None,
               **fields: Any) -> "Stream": ...

    @overload
    def create(self, *, model: str, messages: Iterable[Any], tools: Optional[Iterable[Any]] = None,
               stream: bool, key: Optional[str] = None,
               workflow: Optional[str] = None, task: Optional[str] = None,
               timeout: Timeout = None, extra_body: Optional[Mapping[str, Any]] = None,
               extra_headers: Optional[Mapping[str, str]] = None,
               extra_query: Optional[Mapping[str, object]] = None,
               **fields: Any) -> "Union[ChatCompletion, Stream]": ...

    def create(self, *, model, messages, tools=None, stream=False, key=None, workflow=None,
               task=None, timeout=None, on_chunk=None, extra_body=None, extra_headers=None,
               extra_query=None, **fields):
        """Send a Chat Completions request through the gateway.

        model, messages, tools and the other OpenAI request fields as keywords
        (None values are left out; unknown keywords raise TypeError);
        extra_body is merged into the request. llmux's own keywords: key (the
        gateway key), workflow and task (attribution and routing), timeout
        (seconds for the whole call, or the SDK's httpx.Timeout / tuple forms).
        extra_headers and extra_query are refused (InvalidArgumentError). With
        stream=True, returns a Stream of chunks; with stream=True and
        on_chunk=callable, calls on_chunk(chunk) on this thread for each chunk
        and returns the assembled ChatCompletion.
        """
        body, opts = _prepare(model, messages, tools, stream, key, workflow, task, timeout,
                              extra_body, extra_headers, extra_query, fields)
        gw = self._gw
        if stream:
            if on_chunk is not None:
                return _stream_with_callback(gw, body, opts, on_chunk)
            from ._stream import Stream

            return Stream(gw, body, opts)
        if _has_cancel and _get_ident() == _main_ident:
            res = _interruptible_call(gw, body, opts)
            if res is not None:
                return _result(res)
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
