"""The ctypes mirror of llmux.h, library loading, import cost."""

import ctypes
import json
import os
import re
import subprocess
import sys

import pytest

import llmux
from llmux import _capi

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "include", "llmux.h")


def test_every_header_function_is_declared():
    lib = _capi.load()
    for name in _capi.FUNCTIONS:
        fn = getattr(lib, name)
        assert fn.argtypes is not None, name
        assert hasattr(fn, "restype"), name
    if os.path.exists(HEADER):
        with open(HEADER) as f:
            declared = set(re.findall(r"\b(llmux_[a-z_]+)\s*\(", f.read()))
        declared -= {"llmux_chunk_cb"}
        known = set(_capi.FUNCTIONS) | set(_capi.OPTIONAL_FUNCTIONS)
        assert declared <= known, declared - known
    for name in _capi.OPTIONAL_FUNCTIONS:
        if _capi.has_cancel(lib):
            assert getattr(lib, name).argtypes is not None, name


def test_status_constants_match_header():
    if not os.path.exists(HEADER):
        pytest.skip("header not next to the package")
    with open(HEADER) as f:
        text = f.read()
    for name, value in re.findall(r"\b(LLMUX_(?:OK|ERR_[A-Z_]+))\s*=\s*(-?\d+)", text):
        assert getattr(_capi, name) == int(value), name


def test_version_and_strerror():
    assert _capi.llmux_version().decode() == llmux.lib_version()
    assert re.match(r"^\d+\.\d+\.\d+$", llmux.lib_version())
    assert llmux.strerror(0)
    assert llmux.strerror(-10)
    assert llmux.strerror(12345) == "unknown status"


def test_null_is_fine_everywhere():
    _capi.llmux_close(None)
    _capi.llmux_result_free(None)
    _capi.llmux_free(None)
    assert _capi.llmux_result_status(None) == _capi.LLMUX_ERR_INVALID_ARGUMENT


def test_call_options_init():
    opts = _capi.llmux_call_options()
    assert _capi.llmux_call_options_init(ctypes.byref(opts), 1) == 0
    assert opts.version == 1 and opts.key is None and opts.timeout_ms == 0
    assert _capi.llmux_call_options_init(ctypes.byref(opts), 999) == \
        _capi.LLMUX_ERR_INVALID_ARGUMENT
    assert _capi.llmux_call_options_init(None, 1) == _capi.LLMUX_ERR_INVALID_ARGUMENT


def test_raw_chat(config_for, uniq):
    cfg = json.dumps(config_for([uniq("a")])).encode()
    gw = _capi.llmux_p()
    err = ctypes.create_string_buffer(256)
    assert _capi.llmux_open(ctypes.byref(gw), cfg, err, 256) == 0, err.value
    try:
        res = _capi.llmux_result_p()
        req = b'{"model":"smart","messages":[{"role":"user","content":"raw"}]}'
        rc = _capi.llmux_chat(gw, req, None, ctypes.byref(res))
        assert rc == 0 == _capi.llmux_result_status(res)
        assert json.loads(_capi.llmux_result_json(res))["object"] == "chat.completion"
        assert _capi.llmux_result_error(res) == b""
        assert _capi.llmux_result_provider(res) == b"p0"
        assert _capi.llmux_result_cost_usd(res) < 0
        assert _capi.llmux_result_http_status(res) == 200
        assert _capi.llmux_result_prompt_tokens(res) == 1
        assert _capi.llmux_result_completion_tokens(res) == 2
        _capi.llmux_result_free(res)
    finally:
        _capi.llmux_close(gw)


def test_open_error_buffer():
    gw = _capi.llmux_p()
    err = ctypes.create_string_buffer(8)
    rc = _capi.llmux_open(ctypes.byref(gw), b"{", err, 8)
    assert rc == _capi.LLMUX_ERR_CONFIG
    assert gw.value is None
    assert len(err.value) <= 7


def _run(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_library_not_found_is_clear():
    env = dict(os.environ, LLMUX_LIB_PATH="/nonexistent/libllmux.so")
    r = _run("import llmux\ntry:\n llmux.Gateway({})\nexcept llmux.LibraryNotFoundError as e:"
             "\n print('OK', e)", env)
    assert r.stdout.startswith("OK"), r.stderr
    assert "LLMUX_LIB_PATH" in r.stdout


def test_lib_path_may_be_a_folder():
    path = _capi._lib._name
    env = dict(os.environ, LLMUX_LIB_PATH=os.path.dirname(path))
    r = _run("import llmux; print(llmux.lib_version())", env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == llmux.lib_version()


def test_import_is_lazy():
    # How long the import takes is measured by the benchmarks (bench/python), not
    # asserted here: a timed bound fails on a loaded machine and proves nothing.
    r = _run("import sys, llmux; print('ctypes' in sys.modules, 'llmux._capi' in sys.modules)")
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr
