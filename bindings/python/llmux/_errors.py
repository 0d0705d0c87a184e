"""Exceptions, one class per llmux_status, in the OpenAI SDK's style.

Every exception is a LlmuxError carrying ``message``, ``status`` (the C
status code), ``http_status`` (the provider's HTTP status, or the one llmux
assigns; 0 when there was none), ``code`` (the OpenAI error object's
``code``), ``body`` (the OpenAI error object, a dict) and, for failed calls,
``trace`` (the call's trace as a dict) and ``llmux`` (a CallInfo).

Hierarchy::

    LlmuxError
    +-- InvalidArgumentError (also ValueError)      LLMUX_ERR_INVALID_ARGUMENT
    +-- OutOfMemoryError                            LLMUX_ERR_NO_MEMORY
    +-- ConfigError                                 LLMUX_ERR_CONFIG, LLMUX_ERR_IO (Gateway())
    +-- LibraryNotFoundError                        libllmux could not be loaded
    +-- APIError                                    any failed call (create())
        +-- BadRequestError                         LLMUX_ERR_BAD_REQUEST
        |   +-- ContextWindowExceededError          LLMUX_ERR_CONTEXT_WINDOW
        |   +-- ContentFilterError                  LLMUX_ERR_CONTENT_FILTER
        +-- AuthenticationError                     LLMUX_ERR_AUTH
        +-- PermissionDeniedError                   LLMUX_ERR_PERMISSION
        +-- NotFoundError                           LLMUX_ERR_NOT_FOUND
        |   +-- UnknownModelError                   LLMUX_ERR_UNKNOWN_MODEL
        +-- RateLimitError                          LLMUX_ERR_RATE_LIMIT
        +-- ProviderError (= InternalServerError)   LLMUX_ERR_PROVIDER
        +-- APIConnectionError                      LLMUX_ERR_CONNECT
        |   +-- APITimeoutError                     LLMUX_ERR_TIMEOUT
        +-- BadResponseError                        LLMUX_ERR_BAD_RESPONSE
        +-- BudgetExceededError                     LLMUX_ERR_BUDGET
        +-- UnsupportedError                        LLMUX_ERR_UNSUPPORTED
        +-- CancelledError                          LLMUX_ERR_CANCELLED
        +-- InternalError                           LLMUX_ERR_INTERNAL
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Tuple, Type


class LlmuxError(Exception):
    """Base of every llmux exception.

    ``status_code`` is the HTTP status (as in the OpenAI SDK; 0 when no HTTP
    answer arrived), ``retry_after`` the seconds the provider asked to wait
    (``Retry-After``) in the attempt that names the error, ``code`` the
    provider's own error code from that attempt (``None`` when it sent none),
    ``llmux_code`` llmux's error class (``"rate_limit"``, ...), ``body`` the
    OpenAI-style error object (a dict), ``trace`` the call's trace (a dict),
    ``request_id`` the provider's request id when the trace has one.
    """

    message: str
    status: Optional[int]
    http_status: Optional[int]
    code: Optional[str]
    llmux_code: Optional[str]
    body: Optional[Dict[str, Any]]
    trace: Optional[Dict[str, Any]]
    llmux: Any
    retry_after: Optional[float]
    request_id: Optional[str]

    # Exception.__init__ directly, not super(): with the openai package loaded
    # the raised class also derives from an openai exception, whose __init__
    # wants an httpx request or response that llmux does not have.
    def __init__(self, message: str, status: Optional[int] = None,
                 http_status: Optional[int] = None, code: Optional[str] = None,
                 body: Optional[Dict[str, Any]] = None, trace: Optional[Dict[str, Any]] = None,
                 llmux: Any = None, retry_after: Optional[float] = None,
                 request_id: Optional[str] = None, llmux_code: Optional[str] = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        self.status = status
        self.http_status = http_status
        self.code = code
        self.body = body
        self.trace = trace
        self.llmux = llmux
        self.retry_after = retry_after
        self.request_id = request_id
        self.llmux_code = llmux_code

    @property
    def status_code(self) -> Optional[int]:
        """The HTTP status (the OpenAI SDK's name)."""
        return self.http_status

    @property
    def type(self) -> Optional[str]:
        if isinstance(self.body, dict):
            return self.body.get("type")
        return None

    @property
    def param(self) -> Optional[str]:
        if isinstance(self.body, dict):
            return self.body.get("param")
        return None

    def __str__(self) -> str:
        return str(self.message)

    def __repr__(self) -> str:
        return "%s(%r, status=%r, http_status=%r)" % (
            type(self).__name__, self.message, self.status, self.http_status)

    def __reduce__(self) -> Any:
        # The openai-derived classes are made at run time and cannot be found
        # by name: pickle as the plain llmux class.
        return (_rebuild, (_plain_class(type(self)), self.message, dict(self.__dict__)))


class InvalidArgumentError(LlmuxError, ValueError):
    pass


class OutOfMemoryError(LlmuxError):
    pass


class ConfigError(LlmuxError):
    """The config is invalid (the message names the JSON path) or unreadable."""


class LibraryNotFoundError(LlmuxError):
    """libllmux could not be found or loaded (see LLMUX_LIB_PATH)."""


class APIError(LlmuxError):
    """Base of the errors a call (chat.completions.create) can raise."""


class BadRequestError(APIError):
    pass


class ContextWindowExceededError(BadRequestError):
    pass


class ContentFilterError(BadRequestError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class UnknownModelError(NotFoundError):
    pass


class RateLimitError(APIError):
    pass


class QuotaExceededError(RateLimitError):
    """The provider account's quota or credit is used up (OpenAI's
    insufficient_quota, Anthropic's billing errors): waiting does not cure it.
    A RateLimitError, as the openai SDK raises a 429 insufficient_quota."""


class LimitError(APIError):
    """A documented capacity limit of llmux itself was reached (ledger.max_rows)."""


class ProviderError(APIError):
    pass


InternalServerError = ProviderError


class APIConnectionError(APIError):
    pass


class APITimeoutError(APIConnectionError):
    pass


class BadResponseError(APIError):
    pass


class BudgetExceededError(APIError):
    pass


class UnsupportedError(APIError):
    pass


class CancelledError(APIError):
    pass


class InternalError(APIError):
    pass


# llmux_status -> exception class
STATUS_CLASSES = {
    -1: InvalidArgumentError,
    -2: OutOfMemoryError,
    -3: ConfigError,
    -4: ConfigError,
    -5: BadRequestError,
    -6: UnknownModelError,
    -7: AuthenticationError,
    -8: PermissionDeniedError,
    -9: NotFoundError,
    -10: RateLimitError,
    -11: ContextWindowExceededError,
    -12: ContentFilterError,
    -13: ProviderError,
    -14: APIConnectionError,
    -15: APITimeoutError,
    -16: BadResponseError,
    -17: BudgetExceededError,
    -18: UnsupportedError,
    -19: CancelledError,
    -20: InternalError,
    -21: LimitError,
    -22: QuotaExceededError,
}


def error_class(status: int) -> Type[LlmuxError]:
    """The exception class for a (negative) llmux status; APIError if unknown."""
    return STATUS_CLASSES.get(status, APIError)


# llmux class -> the openai class its raised instances also derive from, when
# the openai package is loaded. Subclasses not listed take their parent's
# (ContextWindowExceededError -> BadRequestError -> openai.BadRequestError).
# Not mapped (the SDK has nothing alike): LlmuxError itself, InvalidArgumentError,
# OutOfMemoryError, ConfigError, LibraryNotFoundError, GatewayClosedError.
OPENAI_CLASSES = {
    "APIError": "APIError",
    "BadRequestError": "BadRequestError",
    "AuthenticationError": "AuthenticationError",
    "PermissionDeniedError": "PermissionDeniedError",
    "NotFoundError": "NotFoundError",
    "RateLimitError": "RateLimitError",
    "ProviderError": "InternalServerError",
    "APIConnectionError": "APIConnectionError",
    "APITimeoutError": "APITimeoutError",
    # A provider answer llmux could not read: what a proxy reports as 502.
    "BadResponseError": "InternalServerError",
    # llmux's own refusals that the SDK would see as HTTP errors of a proxy.
    "BudgetExceededError": "APIStatusError",
    "UnsupportedError": "BadRequestError",
}

_variants: Dict[type, type] = {}


def _openai_base(cls: type, openai: Any) -> Optional[type]:
    for klass in cls.__mro__:
        name = OPENAI_CLASSES.get(klass.__name__)
        if name is not None and klass.__module__ == __name__:
            return getattr(openai, name, None)
    return None


def raised_class(cls: Type[LlmuxError]) -> Type[LlmuxError]:
    """The class to raise for ``cls``: ``cls`` itself, or, when the openai
    package has been imported, a subclass of both ``cls`` and the matching
    ``openai`` exception (so ``except openai.RateLimitError`` catches it)."""
    openai = sys.modules.get("openai")
    if openai is None:
        return cls
    v = _variants.get(cls)
    if v is None:
        base = _openai_base(cls, openai)
        if base is None or not isinstance(base, type) or not issubclass(base, Exception):
            v = cls
        else:
            try:
                v = type(cls.__name__, (cls, base), {
                    "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__,
                    # The SDK's errors carry the httpx request/response: llmux has none.
                    "request": None, "response": None,
                })
            except TypeError:  # an incompatible openai layout: stay plain
                v = cls
        _variants[cls] = v
    return v


def _plain_class(cls: type) -> type:
    for klass in cls.__mro__:
        if klass.__module__ in (__name__, "llmux._client") and "request" not in klass.__dict__:
            return klass
    return cls


def _rebuild(cls: Type[LlmuxError], message: str, state: Dict[str, Any]) -> LlmuxError:
    e = raised_class(cls).__new__(raised_class(cls))
    Exception.__init__(e, message)
    e.__dict__.update(state)
    return e


def attempt_facts(trace: Any, status: int) -> Tuple[Optional[float], Optional[str], Optional[str]]:
    """(retry_after seconds, provider code, request id) from the attempt that
    names the call's error: the last attempt whose status is the call's, else
    the last attempt."""
    attempts = trace.get("attempts") if isinstance(trace, dict) else None
    if not attempts:
        # a gateway rate limit refuses before any attempt: its wait is top-level
        ms = trace.get("retry_after_ms") if isinstance(trace, dict) else None
        if isinstance(ms, int) and not isinstance(ms, bool):
            return ms / 1000.0, None, None
        return None, None, None
    pick = attempts[-1]
    for a in reversed(attempts):
        if isinstance(a, dict) and a.get("status") == status:
            pick = a
            break
    if not isinstance(pick, dict):
        return None, None, None
    ms = pick.get("retry_after_ms")
    retry_after = ms / 1000.0 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None
    code = pick.get("provider_code")
    rid = pick.get("request_id")
    return (retry_after, str(code) if code is not None else None,
            rid if isinstance(rid, str) else None)
