"""The call log and metrics of a Gateway (docs/observability.md).

A mixin of Gateway: ``gw.metrics()``, ``gw.set_log_callback(fn)``,
``gw.flush_log()``. One C trampoline serves every gateway for the life of
the process; it finds the gateway's Python function by a token passed as the
C callback's user pointer, so a record that arrives while a gateway is being
collected finds no function and is dropped instead of calling freed memory.
"""

from __future__ import annotations  # annotations stay strings: import stays cheap

import threading
from typing import Callable, Dict, Optional

from ._errors import error_class

_callbacks: Dict[int, Callable[[str], None]] = {}
_next_token = 0
_lock = threading.Lock()
_trampoline = None


def _get_trampoline(capi):
    global _trampoline
    with _lock:
        if _trampoline is None:

            def tramp(record, length, user):
                fn = _callbacks.get(user or 0)
                if fn is not None:
                    fn(record[:length].decode("utf-8", "replace"))

            _trampoline = capi.llmux_log_cb(tramp)
        return _trampoline


class Observability:
    """Log callback and metrics; mixed into Gateway."""

    def metrics(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of this gateway:
        calls, errors, tokens, cost, latency and overhead histograms, calls in
        flight, the log's own counters. Serve it as ``text/plain; version=0.0.4``."""
        import ctypes

        from ._client import _bind, strerror

        lib = _bind()
        out = ctypes.c_void_p()
        core = self._core  # type: ignore[attr-defined]
        handle = core._acquire()
        try:
            rc = lib.llmux_metrics_text(handle, ctypes.byref(out))
        finally:
            core._release()
        try:
            if rc != 0:
                raise error_class(rc)("llmux_metrics_text: %s" % strerror(rc), rc, 0)
            return ctypes.string_at(out.value).decode() if out.value else ""
        finally:
            lib.llmux_free(out.value)

    def set_log_callback(self, fn: Optional[Callable[[str], None]]) -> None:
        """Call fn(record_json) for every log record (one per attempt, one per
        call; ``json.loads`` gives the dict). fn runs on the gateway's log
        writer thread, never on the thread that made the call; a slow fn
        delays no call (records it cannot keep up with are dropped and
        counted). None removes it: when this returns, fn is not running and
        will not be called again. Must not be called from fn itself."""
        from ._client import _bind, strerror

        lib = _bind()
        from . import _capi as capi

        tramp = _get_trampoline(capi)
        token = self.__dict__.get("_log_token")
        if token is None:
            import weakref

            global _next_token
            with _lock:
                _next_token += 1
                token = _next_token
            self.__dict__["_log_token"] = token
            # forget the function once the C gateway is gone
            weakref.finalize(self._core, _callbacks.pop, token, None)  # type: ignore[attr-defined]
        core = self._core  # type: ignore[attr-defined]
        handle = core._acquire()
        try:
            if fn is not None:
                _callbacks[token] = fn
                rc = lib.llmux_set_log_callback(handle, tramp, token)
            else:
                rc = lib.llmux_set_log_callback(handle, capi.llmux_log_cb(), None)
                if rc == 0:
                    _callbacks.pop(token, None)
        finally:
            core._release()
        if rc != 0:
            raise error_class(rc)("llmux_set_log_callback: %s" % strerror(rc), rc, 0)

    def flush_log(self, timeout: float = 10.0) -> None:
        """Wait until the records of every call that has returned went through
        the sinks (file, callback, OTLP export); APITimeoutError after timeout
        seconds."""
        from ._client import _bind, strerror

        lib = _bind()
        core = self._core  # type: ignore[attr-defined]
        handle = core._acquire()
        try:
            rc = lib.llmux_log_flush(handle, int(timeout * 1000))
        finally:
            core._release()
        if rc != 0:
            raise error_class(rc)("llmux_log_flush: %s" % strerror(rc), rc, 0)
