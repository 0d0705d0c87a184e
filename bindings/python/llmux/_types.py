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

from __future__ import annotations

import json
from typing import Any, Dict, KeysView, Mapping, Optional

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

    def __getattr__(self, name: str) -> Any:  # only called for names that are not there
        if name in _OPTIONAL:
            return None
        raise AttributeError("%s has no attribute %r" % (type(self).__name__, name))

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def keys(self) -> KeysView[str]:
        return self.__dict__.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Object):
            return self.__dict__ == other.__dict__
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, self.model_dump_json())

    def __reduce__(self):
        return (_rebuild, (type(self), self.to_dict()))

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict (nested objects converted too): a new structure, ready
        for json.dumps."""
        return _plain(self)

    def model_dump(self, *, mode: str = "python", include: Any = None, exclude: Any = None,
                   by_alias: bool = False, exclude_unset: bool = False,
                   exclude_defaults: bool = False, exclude_none: bool = False,
                   round_trip: bool = False, warnings: Any = True) -> Dict[str, Any]:
        """A plain dict, with pydantic's ``model_dump`` arguments.

        ``include`` / ``exclude``: a set of field names, or a dict mapping a
        field (a list index, or ``"__all__"`` for every item) to ``True`` or to
        a nested set/dict. ``exclude_none`` drops fields whose value is None at
        every level. An object holds exactly the fields the provider sent, so
        ``exclude_unset`` changes nothing, and ``exclude_defaults`` drops what
        ``exclude_none`` drops (the SDK's defaults are None); there are no
        aliases (``by_alias``) and every value is JSON already (``mode``).
        """
        if mode not in ("python", "json"):
            raise ValueError("model_dump: mode must be 'python' or 'json', got %r" % (mode,))
        if include is None and exclude is None and not (exclude_none or exclude_defaults):
            return _plain(self)
        return _dump(self, _spec(include), _spec(exclude), exclude_none or exclude_defaults)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return self.model_dump_json(indent=indent)

    def model_dump_json(self, *, indent: Optional[int] = None, include: Any = None,
                        exclude: Any = None, by_alias: bool = False,
                        exclude_unset: bool = False, exclude_defaults: bool = False,
                        exclude_none: bool = False, round_trip: bool = False,
                        warnings: Any = True) -> str:
        """JSON text, with the arguments of model_dump (and indent)."""
        if include is None and exclude is None and not (exclude_none or exclude_defaults):
            data: Any = self.__dict__
        else:
            data = self.model_dump(include=include, exclude=exclude, exclude_none=exclude_none,
                                   exclude_defaults=exclude_defaults)
        return json.dumps(data, indent=indent, ensure_ascii=False, default=json_default)


def json_default(o: Any) -> Any:
    """For ``json.dumps(resp, default=llmux.json_default)``: turns response
    objects into their JSON objects."""
    if isinstance(o, Object):
        return o.__dict__
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _spec(s: Any) -> Any:
    # include/exclude as a dict {key: True | nested}; None stays None.
    if s is None or isinstance(s, dict):
        return s
    if isinstance(s, (set, frozenset, list, tuple)):
        return {k: True for k in s}
    raise TypeError("include/exclude must be a set or a dict, not %s" % type(s).__name__)


def _sub(spec: Any, key: Any) -> Any:
    # The nested spec of `key` in spec (a dict); None when not named.
    if spec is None:
        return None
    v = spec.get(key)
    if v is None:
        v = spec.get("__all__")
    return _spec(v) if v is not True and v is not None else v


def _dump(value: Any, include: Any, exclude: Any, drop_none: bool) -> Any:
    if isinstance(value, Object):
        items = value.__dict__.items()
    elif type(value) is list:
        items = enumerate(value)
    else:
        return value
    out = {}
    for k, v in items:
        inc = _sub(include, k) if include is not None else True
        if inc is None:
            continue
        exc = _sub(exclude, k) if exclude is not None else None
        if exc is True:
            continue
        if drop_none and v is None:
            continue
        out[k] = _dump(v, None if inc is True else inc, exc, drop_none)
    return out if isinstance(value, Object) else list(out.values())


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
    llmux: Any  # a CallInfo (llmux._client)

    def __init__(self, data: Optional[Mapping[str, Any]] = None, info: Any = None) -> None:
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
