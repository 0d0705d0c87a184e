"""What a gateway accepted at open but will not work as written (issue 25.2)."""
import pytest

import llmux


def test_unset_key_variable_is_a_warning_and_strict_refuses(config_for, uniq, monkeypatch):
    a = uniq("a")
    monkeypatch.delenv("LLMUX_PYTEST_WARN_KEY", raising=False)
    cfg = config_for([a])
    cfg["providers"]["p0"]["api_key_env"] = "LLMUX_PYTEST_WARN_KEY"
    with llmux.Gateway(cfg) as gw:
        assert gw.warnings() == [
            "providers.p0.api_key_env: the environment variable LLMUX_PYTEST_WARN_KEY is not "
            "set: calls to this provider fail (auth) and fall back to the next target"]
    cfg["strict"] = True
    with pytest.raises(llmux.ConfigError) as ei:
        llmux.Gateway(cfg)
    assert "LLMUX_PYTEST_WARN_KEY is not set" in str(ei.value)
    assert '"strict" is true' in str(ei.value)
    monkeypatch.setenv("LLMUX_PYTEST_WARN_KEY", "sk-warn-test")
    with llmux.Gateway(cfg) as gw:
        assert gw.warnings() == []
