import json
import re

import pytest

import rlcheck.engine.runner
from rlcheck.cli import main
from rlcheck.engine import cache as cache_module
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import run_all
from rlcheck.engine.runs import RunSpec
from tests.helpers import exit_code

TINY = {"env_id": "rlcheck/ActionReward-v0", "steps": 200, "warmup": 50, "eval_every": 50}
CHEAP = ["--algos", "td3", "--probes", "action", "--seeds", "3", "--max-seeds", "3", "--workers", "1"]


@pytest.fixture
def trained(monkeypatch) -> list[RunSpec]:
    """Every spec the runner trains (rather than finds) from here on."""
    specs: list[RunSpec] = []
    real = rlcheck.engine.runner._train_job

    def counting(job):
        specs.extend(job[0])
        return real(job)

    monkeypatch.setattr(rlcheck.engine.runner, "_train_job", counting)
    return specs


def test_a_second_check_trains_only_the_users_net_and_gets_the_same_verdicts(tmp_path, capsys, trained):
    cache_dir = str(tmp_path / "cache")
    argv = ["check", "--net", "tests.user_nets:wide_mlp", *CHEAP, "--cache-dir", cache_dir]
    assert exit_code(main, [*argv, "--out", str(tmp_path / "first")]) == 0
    assert {s.net for s in trained} == {"plain", "tests.user_nets:wide_mlp"}
    assert "first check on this machine (or after an upgrade): the baseline trains too" in capsys.readouterr().err
    trained.clear()
    assert exit_code(main, [*argv, "--out", str(tmp_path / "second")]) == 0
    assert {s.net for s in trained} == {"tests.user_nets:wide_mlp"}
    err = capsys.readouterr().err
    assert "reused 3 baseline runs from" in err
    assert re.search(
        r"about \d+ s of training for the first 3 seeds on 1 worker\(s\), estimated from the baseline", err
    )
    first, second = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("first", "second"))
    baseline = [[r for r in data["runs"] if r["net"] == "plain"] for data in (first, second)]
    assert baseline[0] == baseline[1]  # the cached baseline is the baseline, bit for bit, timings included
    assert [r["curve"] for r in first["runs"]] == [r["curve"] for r in second["runs"]]
    assert [c["verdict"] for c in first["comparisons"]] == [c["verdict"] for c in second["comparisons"]]
    runs_log = (tmp_path / "second" / "runs.jsonl").read_text().splitlines()
    assert len(runs_log) == 6  # cached runs are in the run log too


def test_no_cache_trains_everything(tmp_path, trained):
    argv = ["check", "--net", "tests.user_nets:wide_mlp", *CHEAP, "--quiet", "--cache-dir", str(tmp_path / "c")]
    exit_code(main, [*argv, "--out", str(tmp_path / "a")])
    trained.clear()
    exit_code(main, [*argv, "--no-cache", "--out", str(tmp_path / "b")])
    assert {s.net for s in trained} == {"plain", "tests.user_nets:wide_mlp"}


def test_only_built_in_nets_are_kept_and_a_run_is_found_only_under_its_own_spec(tmp_path, trained):
    cache = RunCache(tmp_path)
    specs = [RunSpec("td3", "plain", 0, **TINY), RunSpec("td3", "tests.user_nets:wide_mlp", 0, **TINY)]
    run_all(specs, cache=cache)
    assert cache.get(specs[0]) is not None and cache.get(specs[1]) is None
    assert cache.get(RunSpec("td3", "plain", 1, **TINY)) is None
    assert cache.get(RunSpec("td3", "plain", 0, **{**TINY, "steps": 250})) is None
    trained.clear()
    run_all(specs, cache=cache)
    assert trained == specs[1:]


def test_a_torn_or_foreign_cache_file_is_a_miss_not_an_error(tmp_path):
    cache = RunCache(tmp_path)
    spec, other = RunSpec("td3", "plain", 0, **TINY), RunSpec("td3", "plain", 1, **TINY)
    (result,) = run_all([spec])
    cache.put(result)
    path = cache._path(spec)
    path.write_text(path.read_text()[:40])
    assert cache.get(spec) is None
    cache.put(result)
    cache._path(other).write_text(path.read_text())  # a run filed under another spec's key
    assert cache.get(other) is None and cache.get(spec) is not None


def test_the_cache_key_changes_with_the_libraries_and_rlchecks_own_code(monkeypatch):
    digest = cache_module.environment_digest.__wrapped__
    before = digest()
    monkeypatch.setattr("torch.__version__", "0.0.0")
    assert digest() != before
    monkeypatch.undo()
    monkeypatch.setattr(cache_module.Path, "read_bytes", lambda self: b"edited")
    assert digest() != before


def test_rlcheck_cache_dir_off_disables_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RLCHECK_CACHE_DIR", "off")
    assert cache_module.cache_from_env() is None
    monkeypatch.setenv("RLCHECK_CACHE_DIR", str(tmp_path))
    cache = cache_module.cache_from_env()
    assert cache is not None and cache.folder.parent == tmp_path
