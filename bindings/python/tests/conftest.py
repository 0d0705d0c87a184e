"""Fixtures: one llmux-sim per test session, unique deployments per test.

Environment:
  LLMUX_SIM       path of the llmux-sim binary (default: <repo>/build/bin/llmux-sim)
  LLMUX_LIB_PATH  path of libllmux.so (default: <repo>/build/lib/libllmux.so if it
                  exists, else the package folder / the system)
"""

import http.client
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                      # bindings/python
REPO_ROOT = os.path.dirname(os.path.dirname(PKG_ROOT))

# Test the package next to these tests, not some other installed copy.
sys.path.insert(0, PKG_ROOT)

if not os.environ.get("LLMUX_LIB_PATH"):
    _built = os.path.join(REPO_ROOT, "build", "lib", "libllmux.so")
    if os.path.exists(_built):
        os.environ["LLMUX_LIB_PATH"] = _built

import llmux  # noqa: E402


class Sim:
    """A running llmux-sim and its /_sim/ control API."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = "http://127.0.0.1:%d" % port

    def base_url(self, deployment):
        return "%s/%s/v1" % (self.url, deployment)

    def _request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def configure(self, deployment, **settings):
        """PUT /_sim/deployments/{name}: faults, latency_ms, require_key."""
        status, body = self._request("PUT", "/_sim/deployments/" + deployment, settings)
        assert status == 200, (status, body)
        return body

    def state(self, deployment):
        status, body = self._request("GET", "/_sim/deployments/" + deployment)
        assert status == 200, (status, body)
        return body

    def requests(self, deployment):
        status, body = self._request("GET", "/_sim/deployments/" + deployment)
        if status == 404:
            return 0
        assert status == 200, (status, body)
        return body.get("requests", 0)


def _sim_path():
    path = os.environ.get("LLMUX_SIM")
    if not path:
        path = os.path.join(REPO_ROOT, "build", "bin", "llmux-sim")
    return path


@pytest.fixture(scope="session")
def sim():
    path = _sim_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            "llmux-sim not found at %s: build it (cmake --build <build>) and set "
            "LLMUX_SIM=<build>/bin/llmux-sim" % path, pytrace=False)
    tmp = tempfile.mkdtemp(prefix="llmux-py-sim-")
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen([path, "--port", "0", "--port-file", port_file, "--quiet"],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("llmux-sim exited with status %s at start" % proc.returncode,
                        pytrace=False)
        try:
            with open(port_file) as f:
                text = f.read()
            if text.endswith("\n"):
                port = int(text)
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    if port is None:
        proc.kill()
        pytest.fail("llmux-sim did not write %s within 15 s" % port_file, pytrace=False)
    try:
        yield Sim(proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.unlink(port_file)
            os.rmdir(tmp)
        except OSError:
            pass


_counter = itertools.count(1)


@pytest.fixture
def uniq(request):
    """uniq("a") -> a deployment name no other test uses."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:40]

    def make(label="d"):
        return ("%s-%s-%d" % (base, label, next(_counter)))[:64]

    return make


def make_config(sim, deployments, alias="smart", models=None, providers=None, defaults=None):
    """A config with one openai provider per deployment (named p0, p1, ...), and
    `alias` trying them in order with models m0, m1, ..."""
    providers = dict(providers or {})
    targets = []
    for i, dep in enumerate(deployments):
        name = "p%d" % i
        providers.setdefault(name, {"type": "openai", "base_url": sim.base_url(dep)})
        targets.append({"provider": name, "model": "m%d" % i})
    config = {"providers": providers, "models": {alias: {"targets": targets}}}
    if models:
        config["models"].update(models)
    config["defaults"] = defaults or {"timeout_ms": 10000, "connect_timeout_ms": 2000}
    return config


@pytest.fixture
def gateway(sim):
    """gateway(deployments, **make_config kwargs) -> an open llmux.Gateway,
    closed at the end of the test."""
    opened = []

    def make(deployments, **kw):
        gw = llmux.Gateway(make_config(sim, deployments, **kw))
        opened.append(gw)
        return gw

    yield make
    for gw in opened:
        gw.close()


@pytest.fixture
def config_for(sim):
    """config_for(deployments, **kw) -> a config dict (see make_config)."""
    return lambda deployments, **kw: make_config(sim, deployments, **kw)
