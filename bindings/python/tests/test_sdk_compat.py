"""What an agent written against the openai SDK passes and expects (issue 25,
items 4-6): the SDK's own keywords, error attributes and classes, model_dump,
JSON, the stream's attributes."""

import inspect
import json
import pickle
import time

import pytest

import llmux
from llmux import _capi, _client, _errors


def user(text):
    return [{"role": "user", "content": text}]


# -- 4. keywords ---------------------------------------------------------------

@pytest.mark.parametrize("kw,hint", [("temprature", "extra_body"), ("max_retries", "targets")])
def test_unknown_keyword_is_refused_and_nothing_is_sent(sim, gateway, uniq, kw, hint):
    a = uniq("a")
    gw = gateway([a])
    with pytest.raises(TypeError) as ei:
        gw.chat.completions.create(model="smart", messages=user("x"), **{kw: 2})
    assert repr(kw) in str(ei.value) and hint in str(ei.value)
    assert sim.requests(a) == 0


@pytest.mark.parametrize("kw", ["extra_headers", "extra_query"])
def test_extra_headers_and_query_are_refused(sim, gateway, uniq, kw):
    a = uniq("a")
    gw = gateway([a])
    with pytest.raises(llmux.InvalidArgumentError) as ei:
        gw.chat.completions.create(model="smart", messages=user("x"), **{kw: {"X-A": "1"}})
    assert kw in str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert sim.requests(a) == 0
    # Empty or None, as SDK wrappers often pass, is fine and sends nothing extra.
    resp = gw.chat.completions.create(model="smart", messages=user("x"), **{kw: None})
    assert resp.choices[0].message.content
    gw.chat.completions.create(model="smart", messages=user("x"), **{kw: {}})
    body = sim.state(a)["last_request"]["body"]
    assert set(body) == {"model", "messages"}


def test_sdk_fields_and_extra_body_reach_the_provider(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    gw.chat.completions.create(model="smart", messages=user("x"), temperature=0.5,
                               seed=7, user=None, extra_body={"top_k": 3, "seed": 8},
                               extra_headers=None, timeout=(5, 5))
    body = sim.state(a)["last_request"]["body"]
    assert body == {"model": "m0", "messages": user("x"), "temperature": 0.5,
                    "top_k": 3, "seed": 8}


def test_request_fields_match_the_sdk():
    openai = pytest.importorskip("openai")
    from openai.resources.chat.completions import Completions

    params = set(inspect.signature(Completions.create).parameters)
    sdk_fields = params - {"self", "model", "messages", "tools", "stream", "timeout",
                           "extra_headers", "extra_query", "extra_body"}
    assert sdk_fields == set(_client.REQUEST_FIELDS), openai.__version__


def test_timeout_forms():
    ms = _client._timeout_ms
    assert ms(None) == 0
    assert ms(2.5) == 2500 and ms(3) == 3000
    assert ms((5, 5)) == 10000                    # connect + read
    assert ms((1, 2, 3, 60)) == 6000              # pool does not apply
    assert ms((None, None)) == 0                  # the config's default
    assert ms((0.5, None)) == 500

    class Timeout:  # the shape of httpx.Timeout
        def __init__(self, connect, read, write, pool):
            self.connect, self.read, self.write, self.pool = connect, read, write, pool
    assert ms(Timeout(5.0, 5.0, 5.0, 5.0)) == 15000
    assert ms(Timeout(1.0, None, None, None)) == 1000
    for bad in ("5", [5, 5], True, object()):
        with pytest.raises(TypeError):
            ms(bad)
    for bad in (0, -1, (5, 0)):
        with pytest.raises(ValueError):
            ms(bad)


def test_httpx_timeout_and_tuple_bound_the_call(sim, gateway, uniq):
    httpx = pytest.importorskip("httpx2") if _has("httpx2") else pytest.importorskip("httpx")
    a = uniq("a")
    sim.configure(a, faults=[{"type": "latency", "ms": 3000, "count": -1}])
    gw = gateway([a])
    for timeout in ((0.1, 0.15), httpx.Timeout(0.1)):
        t0 = time.monotonic()
        with pytest.raises(llmux.APITimeoutError):
            gw.chat.completions.create(model="smart", messages=user("x"), timeout=timeout)
        assert time.monotonic() - t0 < 2.0  # the fault holds the answer for 3 s


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- 5. errors -------------------------------------------------------------------

def test_retry_after_from_the_attempt(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 429, "retry_after": "3"}])
    sim.configure(b, faults=[{"type": "status", "status": 429, "retry_after": "7"}])
    gw = gateway([a, b])
    with pytest.raises(llmux.RateLimitError) as ei:
        gw.chat.completions.create(model="smart", messages=user("x"))
    err = ei.value
    assert err.retry_after == 7.0
    assert err.status_code == 429
    assert [x["retry_after_ms"] for x in err.trace["attempts"]] == [3000, 7000]
    assert err.request_id is None


def test_attempt_facts_pick_the_attempt_that_names_the_error():
    trace = {"attempts": [
        {"status": -10, "http_status": 429, "retry_after_ms": 1500,
         "provider_code": "rate_limit_exceeded", "request_id": "req_1"},
        {"status": -13, "http_status": 503, "provider_code": "overloaded"},
    ]}
    assert _errors.attempt_facts(trace, -10) == (1.5, "rate_limit_exceeded", "req_1")
    assert _errors.attempt_facts(trace, -13) == (None, "overloaded", None)
    assert _errors.attempt_facts(trace, -15) == (None, "overloaded", None)  # the last
    assert _errors.attempt_facts({"attempts": []}, -10) == (None, None, None)
    assert _errors.attempt_facts(None, -10) == (None, None, None)


def test_every_error_attribute_is_there(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 503}])
    gw = gateway([a])
    with pytest.raises(llmux.InternalServerError) as ei:
        gw.chat.completions.create(model="smart", messages=user("x"))
    err = ei.value
    assert (err.status_code, err.retry_after, err.llmux_code) == (503, None, "provider")
    assert err.trace["attempts"][0]["http_status"] == 503
    assert err.body["llmux_status"] == _capi.LLMUX_ERR_PROVIDER
    assert err.code == err.trace["attempts"][0].get("provider_code")


OPENAI_PAIRS = [
    ("BadRequestError", "BadRequestError"),
    ("ContextWindowExceededError", "BadRequestError"),
    ("ContentFilterError", "BadRequestError"),
    ("AuthenticationError", "AuthenticationError"),
    ("PermissionDeniedError", "PermissionDeniedError"),
    ("NotFoundError", "NotFoundError"),
    ("UnknownModelError", "NotFoundError"),
    ("RateLimitError", "RateLimitError"),
    ("ProviderError", "InternalServerError"),
    ("BadResponseError", "InternalServerError"),
    ("APIConnectionError", "APIConnectionError"),
    ("APITimeoutError", "APITimeoutError"),
    ("BudgetExceededError", "APIStatusError"),
    ("UnsupportedError", "BadRequestError"),
    ("CancelledError", "APIError"),
    ("InternalError", "APIError"),
    ("APIError", "APIError"),
]


@pytest.mark.parametrize("ours,theirs", OPENAI_PAIRS)
def test_raised_classes_are_openai_exceptions(ours, theirs):
    openai = pytest.importorskip("openai")
    cls = _errors.raised_class(getattr(llmux, ours))
    err = cls("m", -10, 429, "c", {"type": "t"}, {"attempts": []}, None, 2.0)
    assert isinstance(err, getattr(llmux, ours))
    assert isinstance(err, getattr(openai, theirs)) and isinstance(err, openai.APIError)
    assert (err.status_code, err.code, err.retry_after, err.message) == (429, "c", 2.0, "m")
    assert err.response is None and err.request is None
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, getattr(openai, theirs)) and back.retry_after == 2.0


def test_non_call_errors_are_not_openai_errors():
    openai = pytest.importorskip("openai")
    for cls in (llmux.ConfigError, llmux.InvalidArgumentError, llmux.GatewayClosedError):
        assert _errors.raised_class(cls) is cls
        assert not issubclass(cls, openai.OpenAIError)


def test_except_openai_class_catches_a_real_failure(sim, gateway, uniq):
    openai = pytest.importorskip("openai")
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 429, "retry_after": "2"}])
    gw = gateway([a])
    try:
        gw.chat.completions.create(model="smart", messages=user("x"))
    except openai.RateLimitError as e:
        assert isinstance(e, llmux.RateLimitError) and isinstance(e, openai.APIStatusError)
        assert e.status_code == 429 and e.retry_after == 2.0
    else:
        pytest.fail("no error raised")
    with pytest.raises(openai.NotFoundError):
        gw.chat.completions.create(model="no-such-alias", messages=user("x"))


# -- 6. model_dump, JSON, stream attributes -----------------------------------

def test_model_dump_arguments(gateway, uniq):
    gw = gateway([uniq("a")])
    resp = gw.chat.completions.create(model="smart", messages=user("hi"))
    plain = resp.model_dump()
    assert plain == resp.to_dict()
    assert json.loads(json.dumps(resp.to_dict())) == plain
    assert json.loads(json.dumps(resp, default=llmux.json_default)) == plain
    dropped = resp.model_dump(exclude_none=True)
    assert None not in dropped.values()
    assert "logprobs" in plain["choices"][0] and plain["choices"][0]["logprobs"] is None
    assert "logprobs" not in dropped["choices"][0]
    assert resp.model_dump(include={"id", "model"}) == {"id": resp.id, "model": resp.model}
    assert "usage" not in resp.model_dump(exclude={"usage"})
    only_content = resp.model_dump(include={"choices": {"__all__": {"message": {"content"}}}})
    assert only_content == {"choices": [{"message": {"content":
                                                     resp.choices[0].message.content}}]}
    assert resp.model_dump(mode="json", by_alias=True, exclude_unset=True) == plain
    assert json.loads(resp.model_dump_json(exclude_none=True)) == dropped
    assert json.loads(resp.model_dump_json(include={"id"}, indent=2)) == {"id": resp.id}
    with pytest.raises(TypeError):
        resp.model_dump(exclude_nones=True)
    with pytest.raises(ValueError):
        resp.model_dump(mode="yaml")


def test_stream_attributes_follow_the_sdk(gateway, uniq):
    gw = gateway([uniq("a")])
    stream = gw.chat.completions.create(model="smart", messages=user("one two"), stream=True)
    chunks = list(stream)
    assert chunks and stream.completion.choices[0].message.content.endswith("one two")
    assert stream.get_final_completion() is stream.completion
    with pytest.raises(AttributeError) as ei:
        stream.response
    assert "stream.completion" in str(ei.value)
