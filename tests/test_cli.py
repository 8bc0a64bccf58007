import json
import subprocess
import sys

import pytest

import rlcheck.engine.runner
from rlcheck.cli import main
from rlcheck.requests import parse_seeds
from tests.helpers import exit_code

TINY = ["--algos", "td3", "--seeds", "2", "--max-seeds", "2", "--steps", "300", "--warmup", "100", "--workers", "1"]


def test_tiny_study_writes_table_json_and_figures(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "td3   batchnorm" in out and "outcome" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert {(r["algo"], r["net"], r["seed"]) for r in data["runs"]} == {
        ("td3", n, s) for n in ("plain", "batchnorm") for s in (0, 1)
    }
    assert all({"final_return", "curve"} <= run.keys() for run in data["runs"])
    (comparison,) = data["comparisons"]
    assert comparison["baseline"] == "plain" and comparison["candidate"] == "batchnorm"
    assert comparison["n_seeds"] == 2 and comparison["verdict"] in ("underperforms", "unreliable", "inconclusive", "ok")
    assert comparison["outcome"] in ("pass", "slower", "undecided", "fail") and 0 <= comparison["drop_p"] <= 1
    assert data["config"]["cells"][0]["steps"] == 300 and data["versions"]["torch"]
    assert data["schema_version"] == 2 and data["versions"]["processor"]  # bit-identity needs the same processor
    assert (tmp_path / "td3.png").stat().st_size > 1000
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 4 + len(data["extended_runs"])


def test_json_flag_prints_the_results_json(tmp_path, capsys):
    assert main([*TINY, "--nets", "plain,layernorm", "--out", str(tmp_path), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["comparisons"][0]["candidate"] == "layernorm"


def test_progress_goes_to_stderr(tmp_path, capsys):
    assert main([*TINY, "--nets", "plain,layernorm", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "runs saved to" in err and "[  4/4]" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algos", "ppo"], "unknown algo 'ppo': choose from td3, sac"),
        (["--nets", "plain,resnet"], "unknown net 'resnet'"),
        (["--nets", "plain,nope.nope:make"], "cannot import 'nope.nope'"),
        (["--env", "CartPole-v1"], "Discrete action space"),
        (["--env", "NoSuchEnv-v0"], "cannot make env"),
        (["--seeds", "0"], "a count of at least 1"),
        (["--seeds", "1"], "comparing nets needs at least 2 seeds per net"),
        (["--seeds", "1,2,x"], "not a count"),
        (["--seeds", "3,3"], "lists a seed twice"),
        (["--seeds", "9-3"], "the range ends before it starts"),
        (["--slower-budget", "0.5"], "--slower-budget 0.5: give a multiple of the budget of at least 1"),
        (["--slower-budget", "nan"], "--slower-budget nan"),
        (["--steps", "100"], "leaves no training after the 250-step warm-up"),
        (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "--device"),
        (["--hidden", "64,-1"], "positive integer"),
        (["--baseline", "layernorm"], "baseline net 'layernorm' is not among"),
        (["--workers", "0"], "--workers 0"),
        (["--steps", "many"], "--steps 'many' is not an integer"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    assert exit_code(main, [*args, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "runs.jsonl").exists()


def test_unwritable_out_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([*TINY, "--out", str(blocker / "sub"), "--quiet"]) == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_runs_and_resume_finishes_the_study(tmp_path, capsys, monkeypatch):
    real_train_job = rlcheck.engine.runner._train_job
    calls = []

    def interrupted_on_second_job(job):
        calls.append(job[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_job(job)

    monkeypatch.setattr(rlcheck.engine.runner, "_train_job", interrupted_on_second_job)
    assert main([*TINY, "--out", str(tmp_path), "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert len(calls[0]) == 2  # a job trains both seeds of one net together
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2
    monkeypatch.setattr(rlcheck.engine.runner, "_train_job", real_train_job)
    assert main([*TINY, "--out", str(tmp_path), "--quiet", "--resume"]) == 0
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 4


def test_console_script_reports_usage_errors_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rlcheck", "--seeds", "0", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "rlcheck: error: --seeds 0: give a count of at least 1, e.g. --seeds 5"


def test_parse_seeds_count_range_or_list():
    assert parse_seeds("5") == (0, 1, 2, 3, 4)
    assert parse_seeds("100,101,102") == (100, 101, 102)
    assert parse_seeds("100-103") == (100, 101, 102, 103)


def test_versions_fall_back_to_the_module_version_when_run_from_a_source_tree(monkeypatch):
    from importlib import metadata

    import rlcheck
    from rlcheck.verdicts.study import versions

    def not_installed(package):
        raise metadata.PackageNotFoundError(package)

    monkeypatch.setattr(metadata, "version", not_installed)
    found = versions()
    assert found["rlcheck"] == rlcheck.__version__ and found["torch"] == __import__("torch").__version__
