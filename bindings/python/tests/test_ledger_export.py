"""The durable ledger through Python: export (JSON lines, CSV), the period
report, compaction, and replay when the gateway is opened again."""

import csv
import datetime
import io
import json

import pytest

import llmux


def user(text):
    return [{"role": "user", "content": text}]


def _journal_config(config_for, uniq, tmp_path, **ledger):
    config = config_for([uniq("a")])
    config["ledger"] = dict({"journal": str(tmp_path / "spend.journal"), "fsync": "never"},
                            **ledger)
    config["prices"] = {"m0": {"input_mtok": 2, "output_mtok": 5}}
    return config


def test_export_jsonl_and_csv(config_for, uniq, tmp_path):
    config = _journal_config(config_for, uniq, tmp_path)
    with llmux.Gateway(config) as gw:
        costs = []
        for i in range(5):
            r = gw.chat.completions.create(model="smart", messages=user("one two"),
                                           workflow="wf,%d" % (i % 2))
            costs.append(r.llmux.cost_usd)
        lines = gw.export("jsonl").splitlines()
        assert len(lines) == 5
        records = [json.loads(line) for line in lines]
        assert {r["type"] for r in records} == {"call"}
        assert sorted(r["workflow"] for r in records) == ["wf,0", "wf,0", "wf,0", "wf,1", "wf,1"]
        assert sum(r["cost_nusd"] for r in records) == gw.spend()["total"]["cost_nusd"]
        assert all(r["model"] == "m0" and r["ok"] is True and r["calls"] == 1 for r in records)

        rows = list(csv.DictReader(io.StringIO(gw.export("csv"))))
        assert len(rows) == 5
        assert rows[0]["workflow"] in ("wf,0", "wf,1")  # quoted, read back whole
        assert sum(int(r["cost_nusd"]) for r in rows) == gw.spend()["total"]["cost_nusd"]

        with pytest.raises(llmux.InvalidArgumentError):
            gw.export("xml")


def test_period_filters(config_for, uniq, tmp_path):
    config = _journal_config(config_for, uniq, tmp_path)
    with llmux.Gateway(config) as gw:
        gw.chat.completions.create(model="smart", messages=user("x"), task="t")
        now = datetime.datetime.now(datetime.timezone.utc)
        hour = datetime.timedelta(hours=1)
        assert gw.spend("task", since=now - hour, until=now + hour)["total"]["calls"] == 1
        assert gw.spend("task", since=now + hour)["total"]["calls"] == 0
        assert gw.spend(until=datetime.date(2000, 1, 1))["total"]["calls"] == 0
        assert gw.spend(since="2000-01-01T00:00Z")["total"]["calls"] == 1
        assert gw.export("jsonl", since=now + hour) == ""
        assert len(gw.export("csv", until=now + hour).splitlines()) == 2
        with pytest.raises(llmux.InvalidArgumentError):
            gw.spend(since="last tuesday")


def test_replay_and_compact(config_for, uniq, tmp_path):
    config = _journal_config(config_for, uniq, tmp_path, fsync="every_call")
    with llmux.Gateway(config) as gw:
        for _ in range(4):
            gw.chat.completions.create(model="smart", messages=user("a b c"), workflow="w")
        before = gw.spend("workflow")
        gw.compact()
        summaries = [json.loads(line) for line in gw.export().splitlines()]
        assert [(s["type"], s["calls"]) for s in summaries] == [("summary", 4)]
    with llmux.Gateway(config) as gw:
        assert gw.spend("workflow") == before
        assert gw.warnings() == []


def test_without_a_journal(gateway, uniq):
    gw = gateway([uniq("a")])
    with pytest.raises(llmux.UnsupportedError):
        gw.export()
    with pytest.raises(llmux.UnsupportedError):
        gw.compact()
    with pytest.raises(llmux.UnsupportedError):
        gw.spend(since="2026-01-01")
    assert gw.spend(since=None)["total"]["calls"] == 0
