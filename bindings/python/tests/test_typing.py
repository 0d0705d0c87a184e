"""The public API's annotations: mypy --strict accepts the typed example and
catches a wrong use (create() with and without stream=True). Skipped when mypy
is not installed (tests/requirements-test.txt lists it)."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(PKG_ROOT))
EXAMPLE = os.path.join(REPO_ROOT, "examples", "python", "typed_client.py")

pytest.importorskip("mypy")


def mypy(path, tmp_path):
    env = dict(os.environ, MYPYPATH=PKG_ROOT)
    # The package is checked through its annotations only: errors are reported
    # for the file given (an unannotated public function would still fail it,
    # as a call to an untyped function).
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", path],
        env=env, capture_output=True, text=True, timeout=300)


def test_typed_example_passes_mypy_strict(tmp_path):
    r = mypy(EXAMPLE, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_sees_what_create_returns(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import llmux\n"
        "gw = llmux.Gateway({})\n"
        "a: llmux.Stream = gw.chat.completions.create(model='m', messages=[])\n"
        "b: llmux.ChatCompletion = gw.chat.completions.create(model='m', messages=[],"
        " stream=True)\n"
        "async def f() -> None:\n"
        "    g = llmux.AsyncGateway({})\n"
        "    c: llmux.ChatCompletion = await g.chat.completions.create("
        "model='m', messages=[], stream=True)\n")
    r = mypy(str(bad), tmp_path)
    lines = [ln for ln in r.stdout.splitlines() if ": error:" in ln]
    assert [ln.split(":")[1] for ln in lines] == ["3", "4", "7"], r.stdout
    assert all("Incompatible types in assignment" in ln for ln in lines), r.stdout
