"""The Ray backend on a small local cluster the tests start: the same runs as the local pool,
a killed worker retried, a worker that keeps dying reported in one line."""

import dataclasses
import os

import pytest

from rlcheck.engine.runner import load_log
from rlcheck.verdicts.study import Cell, StudyConfig, run_study

if os.environ.get("CI"):
    import ray  # under CI a missing Ray is a failure: .ci/setup installs the ray extra
else:
    ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")  # one cluster serves every test here

CELL = Cell("td3", steps=150, warmup=50, eval_every=50)


@pytest.fixture(scope="module")
def cluster():
    from rlcheck.engine import ray_backend

    ray_backend.connect(None, num_cpus=2, object_store_memory=100 * 1024**2)
    yield ray
    ray.shutdown()


def _config(**changes) -> StudyConfig:
    config = StudyConfig(
        cells=(CELL,), nets=("plain", "layernorm"), seeds=(0, 1, 2), max_seeds=3, workers=2, threads=1, slower_budget=1
    )
    return dataclasses.replace(config, **changes)


def _curves(study):
    return {(r.spec.net, r.spec.seed): r.eval_returns for r in study.runs}


def test_a_study_on_ray_gives_the_same_runs_as_the_local_pool(cluster):
    local = run_study(_config())
    on_ray = run_study(_config(backend="ray"))
    assert _curves(on_ray) == _curves(local)
    assert [c.outcome for c in on_ray.comparisons] == [c.outcome for c in local.comparisons]


def test_a_ray_worker_killed_mid_job_is_retried_and_the_runs_match(cluster, tmp_path, monkeypatch):
    net = "tests.user_nets:dies_once_in_a_ray_worker"
    undisturbed = run_study(_config(nets=("plain", net)))
    marker = tmp_path / "marker"
    monkeypatch.setenv("RLCHECK_TEST_MARKER", str(marker))
    ray.shutdown()  # the marker's variable reaches workers only through a new instance's runtime_env
    from rlcheck.engine import ray_backend

    ray_backend.connect(None, num_cpus=2, object_store_memory=100 * 1024**2)
    retried = run_study(_config(nets=("plain", net), backend="ray"))
    assert marker.read_text() == "killed once"  # it did die
    assert _curves(retried) == _curves(undisturbed)


def test_a_ray_worker_that_keeps_dying_is_one_line_and_keeps_finished_runs(cluster, tmp_path, capsys):
    import rlcheck.cli

    out = tmp_path / "out"
    code = rlcheck.cli.main(
        ["--algos", "td3", "--nets", "plain,tests.user_nets:dies_in_a_ray_worker", "--seeds", "2", "--max-seeds", "2",
         "--steps", "150", "--warmup", "50", "--backend", "ray", "--out", str(out), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rlcheck: a Ray worker died twice while training td3 tests.user_nets:dies_in_a_ray_worker")
    assert "runs.jsonl" in last
    assert sorted((r.spec.net, r.spec.seed) for r in load_log(out / "runs.jsonl").values()) == [
        ("plain", 0),
        ("plain", 1),
    ]


def test_a_factory_that_imports_here_but_not_on_the_workers_is_one_line(cluster, tmp_path, capsys, monkeypatch):
    import rlcheck.cli

    body = "    return nn.Sequential(nn.Linear(i, 32), nn.ReLU(), nn.Linear(32, o))\n"
    (tmp_path / "only_here.py").write_text("from torch import nn\n\ndef net(i, o):\n" + body)
    monkeypatch.syspath_prepend(str(tmp_path))  # after the cluster started: its workers do not see it
    args = ["--algos", "td3", "--nets", "plain,only_here:net", "--seeds", "2", "--max-seeds", "2", "--steps", "150"]
    code = rlcheck.cli.main([*args, "--warmup", "50", "--backend", "ray", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot import 'only_here'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_ray_options_are_checked(tmp_path, capsys):
    import rlcheck.cli

    assert rlcheck.cli.main(["--ray-address", "auto", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--ray-address needs --backend ray" in capsys.readouterr().err
