"""Fallback between targets, and every exception class a call can raise."""

import time

import pytest

import llmux
from llmux import _capi


def user(text):
    return [{"role": "user", "content": text}]


def call(gw, text="x", **kw):
    return gw.chat.completions.create(model="smart", messages=user(text), **kw)


# -- fallback ----------------------------------------------------------------

FALLBACK_FAULTS = [
    pytest.param({"type": "status", "status": 500}, 500, id="500"),
    pytest.param({"type": "status", "status": 502}, 502, id="502"),
    pytest.param({"type": "status", "status": 503}, 503, id="503"),
    pytest.param({"type": "status", "status": 429, "retry_after": "0"}, 429, id="429"),
    pytest.param({"type": "status", "status": 408}, 408, id="408"),
    pytest.param({"type": "status", "status": 409}, 409, id="409"),
    pytest.param({"type": "status", "status": 529}, 529, id="529"),
    pytest.param({"type": "status", "status": 401}, 401, id="401"),
    pytest.param({"type": "status", "status": 403}, 403, id="403"),
    pytest.param({"type": "status", "status": 404}, 404, id="404"),
    pytest.param({"type": "drop"}, 0, id="drop"),
    pytest.param({"type": "drop_mid_body"}, None, id="drop_mid_body"),
    pytest.param({"type": "malformed"}, None, id="malformed"),
]


@pytest.mark.parametrize("fault,first_http", FALLBACK_FAULTS)
def test_fallback_when_first_target_fails(sim, gateway, uniq, fault, first_http):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[dict(fault, count=1)])
    gw = gateway([a, b])
    resp = call(gw, "fall back")
    assert resp.choices[0].message.content == "[%s] fall back" % b
    assert resp.llmux.provider == "p1"
    assert resp.llmux.model == "m1"
    attempts = resp.llmux.trace["attempts"]
    assert len(attempts) == 2, attempts
    assert attempts[0]["provider"] == "p0"
    assert attempts[0]["status"] != 0
    if first_http is not None:
        assert attempts[0]["http_status"] == first_http
    assert attempts[1]["provider"] == "p1" and attempts[1]["status"] == 0
    assert attempts[1]["http_status"] == 200
    assert sim.requests(a) >= 1 and sim.requests(b) == 1


def test_fallback_on_latency_beyond_call_timeout_is_timeout(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, latency_ms=3000)
    sim.configure(b, latency_ms=3000)
    gw = gateway([a, b])
    t0 = time.monotonic()
    with pytest.raises(llmux.APITimeoutError) as ei:
        call(gw, timeout=0.3)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5, elapsed  # well before either 3 s answer
    err = ei.value
    assert err.status == _capi.LLMUX_ERR_TIMEOUT
    assert isinstance(err, llmux.APIConnectionError)
    assert err.trace["attempts"], err.trace


def test_bad_request_from_provider_does_not_fall_back(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 400}])
    gw = gateway([a, b])
    with pytest.raises(llmux.BadRequestError) as ei:
        call(gw)
    assert ei.value.http_status == 400
    assert sim.requests(b) == 0
    assert len(ei.value.trace["attempts"]) == 1


def test_missing_env_key_falls_back(sim, config_for, uniq, monkeypatch):
    a, b = uniq("a"), uniq("b")
    monkeypatch.delenv("LLMUX_PYTEST_UNSET_KEY", raising=False)
    cfg = config_for([a, b])
    cfg["providers"]["p0"]["api_key_env"] = "LLMUX_PYTEST_UNSET_KEY"
    with llmux.Gateway(cfg) as gw:
        resp = call(gw, "key")
        assert resp.llmux.provider == "p1"
        attempts = resp.llmux.trace["attempts"]
        assert attempts[0]["status"] == _capi.LLMUX_ERR_AUTH
    assert sim.requests(a) == 0  # never sent without its key


def test_env_key_is_sent(sim, config_for, uniq, monkeypatch):
    a = uniq("a")
    monkeypatch.setenv("LLMUX_PYTEST_KEY_A", "sk-test-py")
    sim.configure(a, require_key="sk-test-py")
    cfg = config_for([a])
    cfg["providers"]["p0"]["api_key_env"] = "LLMUX_PYTEST_KEY_A"
    with llmux.Gateway(cfg) as gw:
        resp = call(gw, "with key")
        assert resp.choices[0].message.content == "[%s] with key" % a
    assert sim.state(a)["last_request"]["authorization"] == "Bearer sk-test-py"


# -- error classes -----------------------------------------------------------

def _check(err, cls, status, http_status=None):
    assert isinstance(err, cls) and llmux._errors._plain_class(type(err)) is cls, type(err)
    assert isinstance(err, llmux.LlmuxError) and isinstance(err, llmux.APIError)
    assert err.status == status
    if http_status is not None:
        assert err.http_status == http_status
        assert err.status_code == http_status
    assert err.message and str(err) == err.message
    assert isinstance(err.llmux, llmux.CallInfo)


def test_unknown_alias(gateway, uniq):
    gw = gateway([uniq("a")])
    with pytest.raises(llmux.UnknownModelError) as ei:
        gw.chat.completions.create(model="no-such-alias", messages=user("x"))
    _check(ei.value, llmux.UnknownModelError, _capi.LLMUX_ERR_UNKNOWN_MODEL, 404)
    assert isinstance(ei.value, llmux.NotFoundError)
    assert "no-such-alias" in ei.value.message
    assert isinstance(ei.value.body, dict) and ei.value.body.get("message")
    assert ei.value.llmux_code == "unknown_model" and ei.value.code is None
    assert ei.value.llmux.provider == "" and ei.value.llmux.model == ""
    assert ei.value.trace["attempts"] == [] and ei.value.trace["route"] == "none"


def test_missing_messages_is_bad_request(sim, gateway, uniq):
    a = uniq("a")
    gw = gateway([a])
    with pytest.raises(llmux.BadRequestError) as ei:
        gw.chat.completions.create(model="smart", messages=None)
    _check(ei.value, llmux.BadRequestError, _capi.LLMUX_ERR_BAD_REQUEST, 400)
    raw, info = gw.chat_raw('{"model":"smart"}')
    assert info.status == _capi.LLMUX_ERR_BAD_REQUEST and info.http_status == 400


def test_invalid_request_json_is_bad_request(gateway, uniq):
    gw = gateway([uniq("a")])
    for text in (b"{not json", b"[]", b'"str"', b""):
        raw, info = gw.chat_raw(text)
        assert info.status == _capi.LLMUX_ERR_BAD_REQUEST, (text, info)
        assert info.http_status == 400, (text, info)


def test_missing_env_key_only_target_is_auth_error(sim, config_for, uniq, monkeypatch):
    a = uniq("a")
    monkeypatch.delenv("LLMUX_PYTEST_UNSET_KEY", raising=False)
    cfg = config_for([a])
    cfg["providers"]["p0"]["api_key_env"] = "LLMUX_PYTEST_UNSET_KEY"
    with llmux.Gateway(cfg) as gw:
        with pytest.raises(llmux.AuthenticationError) as ei:
            call(gw)
    _check(ei.value, llmux.AuthenticationError, _capi.LLMUX_ERR_AUTH)
    assert "LLMUX_PYTEST_UNSET_KEY" in ei.value.message
    assert "sk-" not in ei.value.message


def test_wrong_key_is_auth_error_401(sim, config_for, uniq, monkeypatch):
    a = uniq("a")
    monkeypatch.setenv("LLMUX_PYTEST_WRONG_KEY", "sk-wrong-secret")
    sim.configure(a, require_key="sk-right")
    cfg = config_for([a])
    cfg["providers"]["p0"]["api_key_env"] = "LLMUX_PYTEST_WRONG_KEY"
    with llmux.Gateway(cfg) as gw:
        with pytest.raises(llmux.AuthenticationError) as ei:
            call(gw)
    _check(ei.value, llmux.AuthenticationError, _capi.LLMUX_ERR_AUTH, 401)
    assert "sk-wrong-secret" not in ei.value.message


def test_rate_limited_on_all_targets(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    for d in (a, b):
        sim.configure(d, faults=[{"type": "status", "status": 429, "retry_after": "0",
                                  "count": -1}])
    gw = gateway([a, b])
    with pytest.raises(llmux.RateLimitError) as ei:
        call(gw)
    _check(ei.value, llmux.RateLimitError, _capi.LLMUX_ERR_RATE_LIMIT, 429)
    attempts = ei.value.trace["attempts"]
    assert [x["http_status"] for x in attempts] == [429, 429]
    assert ei.value.llmux.provider == "p1"


def test_provider_error_on_all_targets(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    for d in (a, b):
        sim.configure(d, faults=[{"type": "status", "status": 503, "count": -1}])
    gw = gateway([a, b])
    with pytest.raises(llmux.ProviderError) as ei:
        call(gw)
    _check(ei.value, llmux.ProviderError, _capi.LLMUX_ERR_PROVIDER, 503)
    assert llmux.InternalServerError is llmux.ProviderError


def test_timeout(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "latency", "ms": 2000, "count": -1}])
    gw = gateway([a])
    t0 = time.monotonic()
    with pytest.raises(llmux.APITimeoutError) as ei:
        call(gw, timeout=0.25)
    assert time.monotonic() - t0 < 1.8  # the fault holds the answer for 2 s
    _check(ei.value, llmux.APITimeoutError, _capi.LLMUX_ERR_TIMEOUT)


def test_connection_error(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "drop", "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.APIConnectionError) as ei:
        call(gw)
    _check(ei.value, llmux.APIConnectionError, _capi.LLMUX_ERR_CONNECT)


def test_connection_refused(config_for, uniq):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    cfg = {"providers": {"p0": {"type": "openai", "base_url": "http://127.0.0.1:%d/v1" % port}},
           "models": {"smart": {"targets": [{"provider": "p0", "model": "m0"}]}}}
    with llmux.Gateway(cfg) as gw:
        with pytest.raises(llmux.APIConnectionError) as ei:
            call(gw)
    _check(ei.value, llmux.APIConnectionError, _capi.LLMUX_ERR_CONNECT)


def test_malformed_is_bad_response(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "malformed", "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.BadResponseError) as ei:
        call(gw)
    _check(ei.value, llmux.BadResponseError, _capi.LLMUX_ERR_BAD_RESPONSE)


def test_not_found_404(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 404, "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.NotFoundError) as ei:
        call(gw)
    _check(ei.value, llmux.NotFoundError, _capi.LLMUX_ERR_NOT_FOUND, 404)


def test_permission_denied_403(sim, gateway, uniq):
    a = uniq("a")
    sim.configure(a, faults=[{"type": "status", "status": 403, "count": -1}])
    gw = gateway([a])
    with pytest.raises(llmux.PermissionDeniedError) as ei:
        call(gw)
    _check(ei.value, llmux.PermissionDeniedError, _capi.LLMUX_ERR_PERMISSION, 403)


def _error_body(message, code, type_="invalid_request_error"):
    return {"error": {"message": message, "type": type_, "param": "messages", "code": code}}


def test_context_window_exceeded(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 400, "body": _error_body(
        "This model's maximum context length is 8192 tokens", "context_length_exceeded")}])
    gw = gateway([a, b])
    with pytest.raises(llmux.ContextWindowExceededError) as ei:
        call(gw)
    _check(ei.value, llmux.ContextWindowExceededError, _capi.LLMUX_ERR_CONTEXT_WINDOW, 400)
    assert isinstance(ei.value, llmux.BadRequestError)
    assert ei.value.llmux_code == "context_window"
    assert sim.requests(b) == 0  # another target would repeat it: no fallback


def test_content_filter(sim, gateway, uniq):
    a, b = uniq("a"), uniq("b")
    sim.configure(a, faults=[{"type": "status", "status": 400, "body": _error_body(
        "The response was filtered", "content_filter")}])
    gw = gateway([a, b])
    with pytest.raises(llmux.ContentFilterError) as ei:
        call(gw)
    _check(ei.value, llmux.ContentFilterError, _capi.LLMUX_ERR_CONTENT_FILTER, 400)
    assert sim.requests(b) == 0


def test_error_body_and_code(sim, gateway, uniq):
    a = uniq("a")
    body = {"error": {"message": "slow down please", "type": "requests",
                      "param": None, "code": "rate_limit_exceeded"}}
    sim.configure(a, faults=[{"type": "status", "status": 429, "retry_after": "0",
                              "body": body}])
    gw = gateway([a])
    with pytest.raises(llmux.RateLimitError) as ei:
        call(gw)
    err = ei.value
    assert isinstance(err.body, dict)
    assert "slow down please" in err.body["message"]
    assert err.body["type"] == "rate_limit_error" == err.type
    assert err.llmux_code == "rate_limit"
    # code is the provider's own, from the trace's attempt (once the C trace
    # records "provider_code"; None before).
    provider_code = err.trace["attempts"][0].get("provider_code")
    assert err.code == provider_code
    assert provider_code in (None, "rate_limit_exceeded")
    assert err.body["llmux_status"] == _capi.LLMUX_ERR_RATE_LIMIT
    assert err.http_status == 429


def test_error_mapping_table():
    table = {
        -1: llmux.InvalidArgumentError, -2: llmux.OutOfMemoryError, -3: llmux.ConfigError,
        -4: llmux.ConfigError, -5: llmux.BadRequestError, -6: llmux.UnknownModelError,
        -7: llmux.AuthenticationError, -8: llmux.PermissionDeniedError,
        -9: llmux.NotFoundError, -10: llmux.RateLimitError,
        -11: llmux.ContextWindowExceededError, -12: llmux.ContentFilterError,
        -13: llmux.ProviderError, -14: llmux.APIConnectionError, -15: llmux.APITimeoutError,
        -16: llmux.BadResponseError, -17: llmux.BudgetExceededError,
        -18: llmux.UnsupportedError, -19: llmux.CancelledError, -20: llmux.InternalError,
    }
    for status, cls in table.items():
        assert llmux.error_class(status) is cls
    assert issubclass(llmux.ContextWindowExceededError, llmux.BadRequestError)
    assert issubclass(llmux.UnknownModelError, llmux.NotFoundError)
    assert issubclass(llmux.APITimeoutError, llmux.APIConnectionError)
    assert llmux.error_class(-999) is llmux.APIError
    e = llmux.RateLimitError("m", -10, 429, "c", {"type": "t", "param": "p"})
    assert (e.message, e.status, e.http_status, e.code, e.type, e.param) == \
        ("m", -10, 429, "c", "t", "p")


# -- config errors -----------------------------------------------------------

def _config_error(cfg):
    with pytest.raises(llmux.ConfigError) as ei:
        llmux.Gateway(cfg)
    assert ei.value.status in (_capi.LLMUX_ERR_CONFIG, _capi.LLMUX_ERR_IO)
    return ei.value


def test_config_unknown_provider_names_path(config_for, uniq):
    cfg = config_for([uniq("a")])
    cfg["models"]["smart"]["targets"].append({"provider": "anthropc", "model": "x"})
    err = _config_error(cfg)
    assert err.status == _capi.LLMUX_ERR_CONFIG
    assert "models.smart.targets[1].provider" in err.message, err.message


def test_config_unknown_field_names_path(config_for, uniq):
    cfg = config_for([uniq("a")])
    cfg["providers"]["p0"]["bse_url"] = "http://x"
    err = _config_error(cfg)
    assert "providers.p0.bse_url" in err.message, err.message


def test_config_bad_type_names_path(config_for, uniq):
    cfg = config_for([uniq("a")])
    cfg["providers"]["p0"]["type"] = "nosuchtype"
    err = _config_error(cfg)
    assert "providers.p0.type" in err.message, err.message


def test_config_not_json():
    err = _config_error("{ this is not json")
    assert err.message


def test_config_missing_file(tmp_path):
    err = _config_error(tmp_path / "missing.json")
    assert err.status == _capi.LLMUX_ERR_IO


def test_config_wrong_python_type():
    with pytest.raises(TypeError):
        llmux.Gateway(42)
