"""Light response objects with the OpenAI SDK's attribute access.

(CallInfo, which reads the C result lazily, lives in _client.py.)

A response is parsed straight into ``Object``s: json's C scanner calls a
hook for each JSON object that makes an Object whose ``__dict__`` is that
object, so ``resp.choices[0].message.content`` is plain attribute lookups and
parsing costs about what json.loads does. ``to_dict()`` / ``model_dump()``
give plain dicts back; ``obj["key"]`` works too.

Fields that the OpenAI SDK declares as optional (``tool_calls``, ``refusal``,
``usage``, ...) read as None when the provider left them out, as in the SDK;
any other missing attribute raises AttributeError.
"""

import json

# Optional fields of the SDK's ChatCompletion / ChatCompletionChunk models and
# their parts: absent means None.
_OPTIONAL = frozenset((
    "id", "object", "created", "model", "choices", "usage", "system_fingerprint",
    "service_tier", "index", "message", "delta", "finish_reason", "logprobs",
    "role", "content", "refusal", "tool_calls", "function_call", "audio", "name",
    "annotations", "reasoning_content", "type", "function", "arguments",
    "prompt_tokens", "completion_tokens", "total_tokens",
    "prompt_tokens_details", "completion_tokens_details",
))


_new = object.__new__


class Object:
    """A JSON object with attribute access. Its ``__dict__`` *is* the parsed JSON
    object, so reading a field is a plain attribute lookup."""

    def __getattr__(self, name):  # only called for names that are not there
        if name in _OPTIONAL:
            return None
        raise AttributeError("%s has no attribute %r" % (type(self).__name__, name))

    def __getitem__(self, key):
        return self.__dict__[key]

    def __contains__(self, key):
        return key in self.__dict__

    def get(self, key, default=None):
        return self.__dict__.get(key, default)

    def keys(self):
        return self.__dict__.keys()

    def __eq__(self, other):
        if isinstance(other, Object):
            return self.__dict__ == other.__dict__
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.model_dump_json())

    def __reduce__(self):
        return (_rebuild, (type(self), self.to_dict()))

    def to_dict(self):
        """A plain dict (nested objects converted too): a new structure."""
        return _plain(self)

    def model_dump(self, **_ignored):
        """The SDK's name for to_dict()."""
        return _plain(self)

    def to_json(self, indent=2):
        return self.model_dump_json(indent=indent)

    def model_dump_json(self, indent=None, **_ignored):
        return json.dumps(self.__dict__, indent=indent, ensure_ascii=False, default=_dict_of)


def _dict_of(o):
    if isinstance(o, Object):
        return o.__dict__
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _plain(value):
    if isinstance(value, Object):
        return {k: _plain(v) for k, v in value.__dict__.items()}
    if type(value) is list:
        return [_plain(v) for v in value]
    return value


def _hook(d):
    o = _new(Object)
    o.__dict__ = d
    return o


def _rebuild(cls, data):
    o = _scan_to_object(json.dumps(data))
    if cls is not Object:
        root = _new(cls)
        root.__dict__ = o.__dict__
        if cls is ChatCompletion:
            root.llmux = None
        return root
    return o


_scan_once = json.JSONDecoder(object_hook=_hook).scan_once


def _scan_to_object(text):
    try:
        return _scan_once(text, 0)[0]
    except StopIteration:  # not a JSON value at 0: let json say why
        return json.loads(text, object_hook=_hook)


def parse(raw):
    """Parse JSON bytes (str also fine) into Objects (dicts) and lists."""
    if type(raw) is bytes:
        raw = raw.decode("utf-8", "surrogatepass")
    return _scan_to_object(raw)


class ChatCompletion(Object):
    """An OpenAI ``chat.completion``; ``.llmux`` holds the CallInfo (provider,
    model, cost_usd, http_status, trace)."""

    __slots__ = ("llmux",)  # beside __dict__, so that it is no JSON field

    def __init__(self, data=None, info=None):
        self.__dict__ = parse(json.dumps(data)).__dict__ if data else {}
        self.llmux = info


def completion(raw, info):
    """A ChatCompletion from the result JSON (bytes) and its CallInfo."""
    root = parse(raw)
    cc = _new(ChatCompletion)
    cc.__dict__ = root.__dict__
    cc.llmux = info
    return cc


class ChatCompletionChunk(Object):
    """An OpenAI ``chat.completion.chunk``."""


def chunk(raw):
    """A ChatCompletionChunk from chunk JSON (bytes)."""
    root = parse(raw)
    root.__class__ = ChatCompletionChunk
    return root
