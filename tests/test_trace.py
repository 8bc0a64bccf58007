"""RLCHECK_TRACE: where a run's time goes (rlcheck.engine.trace, benchmarks/measure_gate.py trace)."""

import json

from rlcheck.engine.runner import run_all
from rlcheck.engine.runs import RunSpec

TINY = {"env_id": "rlcheck/ConstantReward-v0", "steps": 60, "warmup": 20, "eval_every": 20}


def test_a_traced_run_logs_its_rounds_and_jobs_and_an_untraced_one_nothing(tmp_path, monkeypatch):
    specs = [RunSpec("td3", "plain", seed, **TINY) for seed in (0, 1)]
    monkeypatch.delenv("RLCHECK_TRACE", raising=False)
    untraced = run_all(specs, workers=1)
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("RLCHECK_TRACE", str(trace))
    traced = run_all(specs, workers=1)
    assert [r.eval_returns for r in traced] == [r.eval_returns for r in untraced]  # tracing changes nothing
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["round started", "job started", "job finished", "round finished"]
    assert events[0]["runs"] == 2 and events[0]["reused"] == 0 and events[1]["runs"] == 2
    assert "td3 plain seeds 0,1" in events[1]["job"]
    assert all(e["t"] >= events[0]["t"] for e in events) and all("pid" in e for e in events)
