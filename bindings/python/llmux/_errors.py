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


class LlmuxError(Exception):
    """Base of every llmux exception."""

    def __init__(self, message, status=None, http_status=None, code=None, body=None,
                 trace=None, llmux=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.http_status = http_status
        self.code = code
        self.body = body
        self.trace = trace
        self.llmux = llmux

    # The OpenAI SDK calls it status_code.
    @property
    def status_code(self):
        return self.http_status

    @property
    def type(self):
        if isinstance(self.body, dict):
            return self.body.get("type")
        return None

    @property
    def param(self):
        if isinstance(self.body, dict):
            return self.body.get("param")
        return None

    def __str__(self):
        return str(self.message)

    def __repr__(self):
        return "%s(%r, status=%r, http_status=%r)" % (
            type(self).__name__, self.message, self.status, self.http_status)


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
}


def error_class(status):
    """The exception class for a (negative) llmux status; APIError if unknown."""
    return STATUS_CLASSES.get(status, APIError)
