import json

from rlcheck.runner import ProgressPrinter, load_log, run_all
from rlcheck.training import RunSpec

SPECS = [
    RunSpec("td3", net, seed, steps=200, warmup=100, eval_every=100)
    for net in ("plain", "batchnorm")
    for seed in (0, 1)
]


def test_results_come_back_in_spec_order_and_each_is_logged_as_it_finishes(tmp_path):
    log = tmp_path / "runs.jsonl"
    seen = []
    results = run_all(
        SPECS, workers=1, log_path=log, progress=lambda r, done, total: seen.append((r.spec, done, total))
    )
    assert [r.spec for r in results] == SPECS
    assert seen == [(s, i + 1, 4) for i, s in enumerate(SPECS)]
    lines = log.read_text().splitlines()
    assert [json.loads(line)["spec"]["seed"] for line in lines] == [0, 1, 0, 1]


def test_parallel_processes_give_the_same_curves_as_one_process(tmp_path):
    sequential = run_all(SPECS[:2], workers=1)
    parallel = run_all(SPECS[:2], workers=2, log_path=tmp_path / "runs.jsonl")
    assert [r.eval_returns for r in parallel] == [r.eval_returns for r in sequential]
    assert len(load_log(tmp_path / "runs.jsonl")) == 2


def test_resume_reuses_finished_runs_and_skips_a_torn_last_line(tmp_path):
    log = tmp_path / "runs.jsonl"
    first = run_all(SPECS[:1], log_path=log)
    with log.open("a") as f:
        f.write('{"algo": "td3", "net": "pla')  # a run killed mid-write
    calls = []
    results = run_all(SPECS[:2], log_path=log, resume=True, progress=lambda r, d, t: calls.append(r.spec))
    assert results[0].eval_returns == first[0].eval_returns
    assert results[0].wall_time_s == first[0].wall_time_s  # reused, not rerun
    assert calls == [SPECS[1]]


def test_progress_printer_counts_across_rounds(capsys):
    results = run_all(SPECS[:1])
    printer = ProgressPrinter()
    printer(results[0], 1, 2)
    printer(results[0], 1, 1)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[  1/2] td3 plain") and err[1].startswith("[  2/2] td3 plain")
