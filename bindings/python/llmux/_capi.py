"""Low-level ctypes mirror of include/llmux.h, one declaration per C function.

Nothing here is Pythonic on purpose: names, arguments and return values are
the C ones. The library is loaded on first use (``load()`` or the first
attribute access such as ``_capi.llmux_chat``), not at import time, so that
``import llmux`` stays cheap.

Where the library is looked for, in order:

1. ``LLMUX_LIB_PATH``: the path of the shared library, or a folder holding it;
2. the folder of this package (where ``LLMUX_BUILD_FROM_SOURCE=1 pip install``
   puts the library it builds);
3. the system, through ``ctypes.util.find_library("llmux")``.

The library is loaded with ``ctypes.CDLL`` (not ``PyDLL``), so every call
releases the GIL while C runs.
"""

import ctypes
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int,
    c_long,
    c_size_t,
    c_uint,
    c_void_p,
)

# ---------------------------------------------------------------------------
# Status codes (enum llmux_status). Stable; only ever appended.
# ---------------------------------------------------------------------------
LLMUX_OK = 0
LLMUX_ERR_INVALID_ARGUMENT = -1
LLMUX_ERR_NO_MEMORY = -2
LLMUX_ERR_CONFIG = -3
LLMUX_ERR_IO = -4
LLMUX_ERR_BAD_REQUEST = -5
LLMUX_ERR_UNKNOWN_MODEL = -6
LLMUX_ERR_AUTH = -7
LLMUX_ERR_PERMISSION = -8
LLMUX_ERR_NOT_FOUND = -9
LLMUX_ERR_RATE_LIMIT = -10
LLMUX_ERR_CONTEXT_WINDOW = -11
LLMUX_ERR_CONTENT_FILTER = -12
LLMUX_ERR_PROVIDER = -13
LLMUX_ERR_CONNECT = -14
LLMUX_ERR_TIMEOUT = -15
LLMUX_ERR_BAD_RESPONSE = -16
LLMUX_ERR_BUDGET = -17
LLMUX_ERR_UNSUPPORTED = -18
LLMUX_ERR_CANCELLED = -19
LLMUX_ERR_INTERNAL = -20
LLMUX_ERR_LIMIT = -21
LLMUX_ERR_QUOTA = -22

LLMUX_VERSION_MAJOR = 0
LLMUX_VERSION_MINOR = 1
LLMUX_VERSION_PATCH = 0
LLMUX_VERSION_STRING = "0.1.0"

# #define LLMUX_CALL_OPTIONS_VERSION 1
LLMUX_CALL_OPTIONS_VERSION = 1

# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

# typedef struct llmux llmux;                 (opaque: handled as void *)
llmux_p = c_void_p
# typedef struct llmux_result llmux_result;   (opaque: handled as void *)
llmux_result_p = c_void_p


# typedef struct llmux_call_options {
#     unsigned int version;
#     const char *key;
#     const char *workflow;
#     const char *task;
#     long timeout_ms;
# } llmux_call_options;
class llmux_call_options(Structure):
    _fields_ = [
        ("version", c_uint),
        ("key", c_char_p),
        ("workflow", c_char_p),
        ("task", c_char_p),
        ("timeout_ms", c_long),
    ]


# Version 2 (coming with the cancellation API) appends the cancel handle:
#     llmux_cancel *cancel;
# Only used when the loaded library has llmux_cancel_new (see has_cancel()).
# (A subclass, so that functions declared with llmux_call_options * take it.)
class llmux_call_options_v2(llmux_call_options):
    _fields_ = [("cancel", c_void_p)]


# typedef int (*llmux_chunk_cb)(const char *chunk_json, size_t len, void *payload);
# chunk_json arrives as bytes (ctypes copies the NUL-terminated string).
llmux_chunk_cb = CFUNCTYPE(c_int, c_char_p, c_size_t, c_void_p)

# typedef void (*llmux_log_cb)(const char *record_json, size_t len, void *user);
# Called on the gateway's log writer thread.
llmux_log_cb = CFUNCTYPE(None, c_char_p, c_size_t, c_void_p)
# typedef void (*llmux_alert_cb)(const char *alert_json, void *payload);
llmux_alert_cb = CFUNCTYPE(None, c_char_p, c_void_p)


class LibraryNotFound(OSError):
    """libllmux could not be found or loaded."""


_LIB_NAMES = ("libllmux.so", "libllmux.so.0", "libllmux.dylib", "llmux.dll")

_lib = None
_load_lock = threading.Lock()


def _candidates():
    env = os.environ.get("LLMUX_LIB_PATH")
    if env:
        if os.path.isdir(env):
            for name in _LIB_NAMES:
                yield os.path.join(env, name)
        else:
            yield env
        return  # an explicit choice: do not silently load another copy
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _LIB_NAMES:
        path = os.path.join(here, name)
        if os.path.exists(path):
            yield path
    import ctypes.util  # slow-ish (may run ldconfig): only when needed

    found = ctypes.util.find_library("llmux")
    if found:
        yield found


def _declare(lib):
    """Set argtypes and restype of every public function of llmux.h."""

    # const char *llmux_strerror(int status);
    lib.llmux_strerror.argtypes = [c_int]
    lib.llmux_strerror.restype = c_char_p

    # const char *llmux_version(void);
    lib.llmux_version.argtypes = []
    lib.llmux_version.restype = c_char_p

    # int llmux_open(llmux **out, const char *config_json, char *errbuf, size_t errlen);
    lib.llmux_open.argtypes = [POINTER(llmux_p), c_char_p, c_char_p, c_size_t]
    lib.llmux_open.restype = c_int

    # int llmux_open_file(llmux **out, const char *path, char *errbuf, size_t errlen);
    lib.llmux_open_file.argtypes = [POINTER(llmux_p), c_char_p, c_char_p, c_size_t]
    lib.llmux_open_file.restype = c_int

    # void llmux_close(llmux *gw);
    lib.llmux_close.argtypes = [llmux_p]
    lib.llmux_close.restype = None

    # int llmux_call_options_init(llmux_call_options *opts, unsigned int version);
    lib.llmux_call_options_init.argtypes = [POINTER(llmux_call_options), c_uint]
    lib.llmux_call_options_init.restype = c_int

    # int llmux_chat(llmux *gw, const char *request_json, const llmux_call_options *opts,
    #                llmux_result **out);
    lib.llmux_chat.argtypes = [llmux_p, c_char_p, POINTER(llmux_call_options), POINTER(llmux_result_p)]
    lib.llmux_chat.restype = c_int

    # int llmux_chat_stream(llmux *gw, const char *request_json, const llmux_call_options *opts,
    #                       llmux_chunk_cb on_chunk, void *payload, llmux_result **out);
    lib.llmux_chat_stream.argtypes = [
        llmux_p,
        c_char_p,
        POINTER(llmux_call_options),
        llmux_chunk_cb,
        c_void_p,
        POINTER(llmux_result_p),
    ]
    lib.llmux_chat_stream.restype = c_int

    # int llmux_result_status(const llmux_result *r);
    lib.llmux_result_status.argtypes = [llmux_result_p]
    lib.llmux_result_status.restype = c_int

    # const char *llmux_result_json(const llmux_result *r);
    lib.llmux_result_json.argtypes = [llmux_result_p]
    lib.llmux_result_json.restype = c_char_p

    # const char *llmux_result_error(const llmux_result *r);
    lib.llmux_result_error.argtypes = [llmux_result_p]
    lib.llmux_result_error.restype = c_char_p

    # const char *llmux_result_provider(const llmux_result *r);
    lib.llmux_result_provider.argtypes = [llmux_result_p]
    lib.llmux_result_provider.restype = c_char_p

    # const char *llmux_result_model(const llmux_result *r);
    lib.llmux_result_model.argtypes = [llmux_result_p]
    lib.llmux_result_model.restype = c_char_p

    # double llmux_result_cost_usd(const llmux_result *r);
    lib.llmux_result_cost_usd.argtypes = [llmux_result_p]
    lib.llmux_result_cost_usd.restype = c_double

    # const char *llmux_result_trace_json(const llmux_result *r);
    lib.llmux_result_trace_json.argtypes = [llmux_result_p]
    lib.llmux_result_trace_json.restype = c_char_p

    # int llmux_result_http_status(const llmux_result *r);
    lib.llmux_result_http_status.argtypes = [llmux_result_p]
    lib.llmux_result_http_status.restype = c_int

    # long llmux_result_prompt_tokens(const llmux_result *r);
    lib.llmux_result_prompt_tokens.argtypes = [llmux_result_p]
    lib.llmux_result_prompt_tokens.restype = c_long

    # long llmux_result_completion_tokens(const llmux_result *r);
    lib.llmux_result_completion_tokens.argtypes = [llmux_result_p]
    lib.llmux_result_completion_tokens.restype = c_long

    # void llmux_result_free(llmux_result *r);
    lib.llmux_result_free.argtypes = [llmux_result_p]
    lib.llmux_result_free.restype = None

    # int llmux_spend_json(llmux *gw, const char *group_by, char **out);
    # (out is read as void * so that it can be handed back to llmux_free)
    lib.llmux_spend_json.argtypes = [llmux_p, c_char_p, POINTER(c_void_p)]
    lib.llmux_spend_json.restype = c_int

    # int llmux_spend_period_json(llmux *gw, const char *group_by, const char *since,
    #                             const char *until, char **out);
    lib.llmux_spend_period_json.argtypes = [llmux_p, c_char_p, c_char_p, c_char_p,
                                            POINTER(c_void_p)]
    lib.llmux_spend_period_json.restype = c_int

    # int llmux_ledger_export(llmux *gw, const char *format, const char *since,
    #                         const char *until, char **out);
    lib.llmux_ledger_export.argtypes = [llmux_p, c_char_p, c_char_p, c_char_p, POINTER(c_void_p)]
    lib.llmux_ledger_export.restype = c_int

    # int llmux_ledger_compact(llmux *gw);
    lib.llmux_ledger_compact.argtypes = [llmux_p]
    lib.llmux_ledger_compact.restype = c_int

    # int llmux_route_json(llmux *gw, const char *request_json,
    #                      const llmux_call_options *opts, char **out);
    lib.llmux_route_json.argtypes = [llmux_p, c_char_p, c_void_p, POINTER(c_void_p)]
    lib.llmux_route_json.restype = c_int

    # int llmux_health_json(llmux *gw, char **out);
    lib.llmux_health_json.argtypes = [llmux_p, POINTER(c_void_p)]
    lib.llmux_health_json.restype = c_int

    # int llmux_warnings_json(llmux *gw, char **out);
    lib.llmux_warnings_json.argtypes = [llmux_p, POINTER(c_void_p)]
    lib.llmux_warnings_json.restype = c_int

    # int llmux_set_log_callback(llmux *gw, llmux_log_cb cb, void *user);
    lib.llmux_set_log_callback.argtypes = [llmux_p, llmux_log_cb, c_void_p]
    lib.llmux_set_log_callback.restype = c_int

    # int llmux_log_flush(llmux *gw, long timeout_ms);
    lib.llmux_log_flush.argtypes = [llmux_p, c_long]
    lib.llmux_log_flush.restype = c_int

    # int llmux_metrics_text(llmux *gw, char **out);
    lib.llmux_metrics_text.argtypes = [llmux_p, POINTER(c_void_p)]
    lib.llmux_metrics_text.restype = c_int
    # Gateway keys, budgets, alerts (docs/keys-and-budgets.md)
    # int llmux_key_add(llmux *gw, const char *id, const char *spec_json, char *errbuf, size_t errlen);
    lib.llmux_key_add.argtypes = [llmux_p, c_char_p, c_char_p, c_char_p, c_size_t]
    lib.llmux_key_add.restype = c_int
    # int llmux_key_rotate(llmux *gw, const char *id, const char *new_key, char *errbuf, size_t errlen);
    lib.llmux_key_rotate.argtypes = [llmux_p, c_char_p, c_char_p, c_char_p, c_size_t]
    lib.llmux_key_rotate.restype = c_int
    # int llmux_key_revoke(llmux *gw, const char *id);
    lib.llmux_key_revoke.argtypes = [llmux_p, c_char_p]
    lib.llmux_key_revoke.restype = c_int
    # int llmux_keys_json(llmux *gw, char **out); int llmux_budgets_json(llmux *gw, char **out);
    lib.llmux_keys_json.argtypes = [llmux_p, POINTER(c_void_p)]
    lib.llmux_keys_json.restype = c_int
    lib.llmux_budgets_json.argtypes = [llmux_p, POINTER(c_void_p)]
    lib.llmux_budgets_json.restype = c_int
    # int llmux_set_alert_callback(llmux *gw, llmux_alert_cb cb, void *payload);
    lib.llmux_set_alert_callback.argtypes = [llmux_p, llmux_alert_cb, c_void_p]
    lib.llmux_set_alert_callback.restype = c_int
    # long llmux_result_retry_after_ms(const llmux_result *r);
    lib.llmux_result_retry_after_ms.argtypes = [llmux_result_p]
    lib.llmux_result_retry_after_ms.restype = c_long

    # void llmux_free(void *p);
    lib.llmux_free.argtypes = [c_void_p]
    lib.llmux_free.restype = None

    # Optional: the cancellation API, in libraries that have it.
    # typedef struct llmux_cancel llmux_cancel;          (opaque: void *)
    if hasattr(lib, "llmux_cancel_new"):
        # int llmux_cancel_new(llmux_cancel **out);
        lib.llmux_cancel_new.argtypes = [POINTER(c_void_p)]
        lib.llmux_cancel_new.restype = c_int
        # void llmux_cancel_trigger(llmux_cancel *c);
        lib.llmux_cancel_trigger.argtypes = [c_void_p]
        lib.llmux_cancel_trigger.restype = None
        # void llmux_cancel_free(llmux_cancel *c);
        lib.llmux_cancel_free.argtypes = [c_void_p]
        lib.llmux_cancel_free.restype = None
        # int llmux_cancel_fired(const llmux_cancel *c);
        lib.llmux_cancel_fired.argtypes = [c_void_p]
        lib.llmux_cancel_fired.restype = c_int

    return lib


def has_cancel(lib):
    """Whether this library has the cancellation API (llmux_cancel_new, ...)."""
    return hasattr(lib, "llmux_cancel_new")


# Declared only when the library has them (has_cancel()).
OPTIONAL_FUNCTIONS = ("llmux_cancel_new", "llmux_cancel_trigger", "llmux_cancel_free",
                      "llmux_cancel_fired")

FUNCTIONS = (
    "llmux_strerror",
    "llmux_version",
    "llmux_open",
    "llmux_open_file",
    "llmux_close",
    "llmux_call_options_init",
    "llmux_chat",
    "llmux_chat_stream",
    "llmux_result_status",
    "llmux_result_json",
    "llmux_result_error",
    "llmux_result_provider",
    "llmux_result_model",
    "llmux_result_cost_usd",
    "llmux_result_trace_json",
    "llmux_result_http_status",
    "llmux_result_prompt_tokens",
    "llmux_result_completion_tokens",
    "llmux_result_free",
    "llmux_spend_json",
    "llmux_spend_period_json",
    "llmux_ledger_export",
    "llmux_ledger_compact",
    "llmux_warnings_json",
    "llmux_route_json",
    "llmux_health_json",
    "llmux_set_log_callback",
    "llmux_log_flush",
    "llmux_metrics_text",
    "llmux_key_add",
    "llmux_key_rotate",
    "llmux_key_revoke",
    "llmux_keys_json",
    "llmux_budgets_json",
    "llmux_set_alert_callback",
    "llmux_result_retry_after_ms",
    "llmux_free",
)


def load():
    """Load libllmux once (thread-safe) and return the ctypes.CDLL."""
    global _lib
    lib = _lib
    if lib is not None:
        return lib
    with _load_lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
                continue
            try:
                _declare(lib)
            except AttributeError as e:
                tried.append("%s (not a compatible libllmux: %s)" % (path, e))
                continue
            _lib = lib
            return lib
        raise LibraryNotFound(
            "libllmux not found; set LLMUX_LIB_PATH to the path of libllmux.so "
            "(e.g. <install-prefix>/lib/libllmux.so), or install the library where the "
            "system linker finds it"
            + ("; tried: " + "; ".join(tried) if tried else "")
        )


def __getattr__(name):
    # _capi.llmux_chat etc.: the function from the loaded library.
    if name in FUNCTIONS or name in OPTIONAL_FUNCTIONS:
        return getattr(load(), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
