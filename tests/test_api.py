"""rlcheck.front.api: the check and the study from Python, with the command line's values."""

import json

import pytest

import rlcheck
from rlcheck.front.api import prepare_check
from rlcheck.front.words import check_report
from rlcheck.requests import CheckRequest

CHEAP = {"algos": "td3", "probes": "action", "seeds": 2, "max_seeds": 2, "slower_budget": 1, "workers": 1}


def test_a_check_from_python_returns_the_answer_and_writes_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = rlcheck.run_check(net="tests.user_nets:wide_mlp", **CHEAP)
    assert isinstance(result, rlcheck.CheckResult) and result.outcome in ("pass", "slower", "undecided", "fail")
    assert [c.cell.label for c in result.study.comparisons] == ["td3 ActionReward-v0"]
    assert not list(tmp_path.iterdir()) and result.study.files == []  # nothing written
    again = rlcheck.run_check(rlcheck.CheckRequest.of(net="tests.user_nets:wide_mlp", **CHEAP), out="out")
    assert [c.stats for c in again.study.comparisons] == [c.stats for c in result.study.comparisons]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["check"]["outcome"] == result.outcome and (tmp_path / "out" / "report.html").exists()
    assert "rlcheck check --net tests.user_nets:wide_mlp" in (tmp_path / "out" / "report.html").read_text()


def test_a_mistake_from_python_is_a_usage_error_naming_the_argument():
    with pytest.raises(rlcheck.UsageError, match="unknown option nett="):
        rlcheck.run_check(nett="tests.user_nets:wide_mlp")
    with pytest.raises(rlcheck.UsageError, match="seeds= 'many' is not a count"):
        rlcheck.run_check(net="tests.user_nets:wide_mlp", seeds="many")
    with pytest.raises(rlcheck.UsageError, match="unknown algo 'ppo'"):
        rlcheck.run_check(net="tests.user_nets:wide_mlp", algos="ppo")


def test_crossq_takes_a_gaussian_actor_and_td3_skips_it():
    gaussian = "tests.codebase_nets:CleanRLSACActor"
    prepared = prepare_check(CheckRequest.of(gaussian_actor_net=gaussian, algos="crossq,td3", workers=1))
    assert prepared.config.algos == ("crossq",)
    assert any(line.startswith("crossq actor") and "(mean, log_std)" in line for line in prepared.detected)
    assert any(line.startswith("td3 skipped") and "deterministic" in line for line in prepared.detected)
    as_actor = prepare_check(CheckRequest.of(actor_net=gaussian, algos="crossq", workers=1))
    assert as_actor.config.algos == ("crossq",)


def test_the_words_name_the_option_where_the_user_came_from():
    result = rlcheck.run_check(net="tests.user_nets:wide_mlp", **CHEAP)
    forced = type(result)(result.net, result.study, strict=False)
    forced.study.comparisons[0].stats = forced.study.comparisons[0].stats.__class__(
        **{**forced.study.comparisons[0].stats.__dict__, "verdict": "inconclusive", "decided_by": None}
    )
    assert "--strict fails it" in check_report(forced, "cli")
    assert "rlcheck_strict fails it" in check_report(forced, "pytest")
    assert "strict= fails it" in check_report(forced, "python")
