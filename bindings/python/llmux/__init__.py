"""llmux: an OpenAI-compatible LLM gateway inside your process (ctypes binding).

    import llmux
    with llmux.Gateway({"providers": {...}, "models": {...}}) as gw:
        resp = gw.chat.completions.create(
            model="smart", messages=[{"role": "user", "content": "hi"}], task="draft")
        print(resp.choices[0].message.content, resp.llmux.provider, resp.llmux.trace)

The shared library is loaded when the first Gateway is created (from
LLMUX_LIB_PATH, this package's folder, or the system), so importing is cheap.
The ctypes mirror of include/llmux.h is llmux._capi.
"""

from ._client import (
    CallInfo,
    Completions,
    Gateway,
    GatewayClosedError,
    lib_version,
    library,
    strerror,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    BudgetExceededError,
    CancelledError,
    ConfigError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalError,
    InternalServerError,
    InvalidArgumentError,
    LibraryNotFoundError,
    LlmuxError,
    NotFoundError,
    OutOfMemoryError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    QuotaExceededError,
    LimitError,
    UnknownModelError,
    UnsupportedError,
    error_class,
)
from ._types import ChatCompletion, ChatCompletionChunk, Object, json_default

_TRANSPORT_NAMES = ("HTTPTransport", "AsyncHTTPTransport", "openai_client",
                    "async_openai_client", "call_info", "TRACE_CAPACITY")

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing here
if TYPE_CHECKING:
    from ._async import AsyncCompletions, AsyncGateway, AsyncStream
    from ._stream import Stream
    from ._transport import (AsyncHTTPTransport, HTTPTransport, async_openai_client,
                             call_info, openai_client)

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Stream":
        from ._stream import Stream

        return Stream
    if name in ("AsyncGateway", "AsyncStream", "AsyncCompletions"):
        from . import _async

        return getattr(_async, name)
    if name in _TRANSPORT_NAMES:
        from . import _transport

        return getattr(_transport, name)
    raise AttributeError("module 'llmux' has no attribute %r" % name)


__all__ = [
    "Gateway", "Completions", "Stream", "AsyncGateway", "AsyncCompletions", "AsyncStream", "ChatCompletion", "ChatCompletionChunk", "CallInfo",
    "Object", "json_default", "lib_version", "library", "strerror", "error_class",
    "LlmuxError", "InvalidArgumentError", "OutOfMemoryError", "ConfigError",
    "LibraryNotFoundError", "GatewayClosedError", "APIError", "BadRequestError",
    "ContextWindowExceededError", "ContentFilterError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "UnknownModelError", "RateLimitError", "QuotaExceededError", "LimitError",
    "ProviderError", "InternalServerError", "APIConnectionError", "APITimeoutError",
    "BadResponseError", "BudgetExceededError", "UnsupportedError", "CancelledError",
    "InternalError", "HTTPTransport", "AsyncHTTPTransport", "openai_client",
    "async_openai_client", "call_info",
]
