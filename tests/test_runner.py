import dataclasses
import json
import multiprocessing
import os
import signal
import threading
import time

import rlcheck.cli
import rlcheck.engine.runner
import rlcheck.verdicts.study
from rlcheck.engine.runner import ProgressPrinter, _cost_key, batch_jobs, load_log, run_all
from rlcheck.engine.runs import RunSpec
from rlcheck.verdicts.study import Cell, StudyConfig, run_study

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


def test_progress_estimates_time_left_from_trained_runs_only(capsys):
    (result,) = run_all(SPECS[:1])
    reused = dataclasses.replace(result, reused=True)
    printer = ProgressPrinter()
    printer(reused, 1, 3)  # a cache hit arrives at once: no estimate from it
    printer(result, 2, 3)
    first, second = capsys.readouterr().err.splitlines()
    assert "reused from the cache" in first and first.endswith("eta    ? s")
    assert "s for 1 seed together" in second and not second.endswith("?")


def test_progress_off_a_terminal_prints_a_line_per_tenth_of_the_runs(capsys):
    (result,) = run_all(SPECS[:1])
    printer = ProgressPrinter(bar=False)
    for finished in range(1, 41):
        printer(result, finished, 40)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[  1/40", *(f"[{n:>3}/40" for n in range(4, 41, 4))]


def test_progress_on_a_terminal_is_a_bar_with_the_estimate_from_trained_runs(capsys):
    import io

    (result,) = run_all(SPECS[:1])
    stream = io.StringIO()
    printer = ProgressPrinter(stream, bar=True)
    printer(dataclasses.replace(result, reused=True), 1, 3)
    printer(result, 2, 3)
    printer(result, 3, 3)
    shown = stream.getvalue()
    assert "3/3 runs" in shown and "eta " in shown and "last: td3 plain seed" in shown
    assert printer._tqdm is None  # closed at the end


def test_runs_that_differ_only_in_seed_share_a_job_and_jobs_are_split_to_feed_every_worker():
    specs = [RunSpec("td3", net, seed, steps=200) for net in ("plain", "batchnorm") for seed in range(5)]
    jobs = batch_jobs(specs, workers=1)
    assert [[s.seed for s in job] for job in jobs] == [[0, 1, 2, 3, 4]] * 2
    assert all(len({s.net for s in job}) == 1 for job in jobs)
    assert [len(job) for job in batch_jobs(specs[:5], workers=2)] == [3, 2]
    assert [[s.seed for s in job] for job in batch_jobs(specs, workers=1, max_seeds=2)] == [[0, 1], [2, 3]] * 2 + [
        [4]
    ] * 2
    assert sorted(s.seed for job in batch_jobs(specs[:3], workers=8) for s in job) == [0, 1, 2]  # never empty jobs


def test_the_longest_jobs_go_first_so_that_none_is_left_running_alone_at_the_end():
    short = [RunSpec("td3", "plain", seed, steps=200) for seed in range(4)]
    long = [RunSpec("sac", "plain", seed, steps=600) for seed in range(2)]
    assert [(job[0].algo, len(job)) for job in batch_jobs(short + long, workers=1)] == [("sac", 2), ("td3", 4)]


def test_a_check_starts_the_costliest_jobs_first_sac_before_td3_of_the_same_size():
    def runs(algo: str, seeds: int, **budget) -> list[RunSpec]:
        return [RunSpec(algo, "plain", seed, **budget) for seed in range(seeds)]

    # rlcheck check's jobs: 25 seeds of the probes (600 steps), 5 of RandomEnv (1000 steps).
    probe = {"env_id": "rlcheck/ActionReward-v0", "steps": 600, "warmup": 100}
    specs = [
        *runs("td3", 25, **probe),
        *runs("sac", 25, **probe),
        *runs("td3", 5, steps=1000),
        *runs("sac", 5, steps=1000),
    ]
    jobs = batch_jobs(specs, workers=2)
    assert [(job[0].algo, len(job)) for job in jobs] == [("sac", 25), ("td3", 25), ("sac", 5), ("td3", 5)]


def test_where_the_cache_measured_every_cell_jobs_go_longest_first_by_those_seconds():
    track = {"env_id": "rlcheck/TrackObservation-v0", "steps": 1200, "warmup": 100}
    lit = {"env_id": "rlcheck/RandomEnvLit-v0", "steps": 1000, "warmup": 250}
    cells = (("td3", track), ("sac", lit))
    specs = [RunSpec(algo, "mine", seed, **budget) for algo, budget in cells for seed in range(5)]
    assert [job[0].algo for job in batch_jobs(specs, workers=2)] == ["sac", "td3"]  # the formula's guess
    # The baseline's runs of the same cells, from the cache: TD3's track took longer per run.
    seconds = {_cost_key(RunSpec("td3", "plain", 0, **track)): 1.2, _cost_key(RunSpec("sac", "plain", 0, **lit)): 1.0}
    assert [job[0].algo for job in batch_jobs(specs, workers=2, measured=seconds)] == ["td3", "sac"]
    partly = {k: v for k, v in seconds.items() if k[0] == "td3"}  # not every cell measured: the formula
    assert [job[0].algo for job in batch_jobs(specs, workers=2, measured=partly)] == ["sac", "td3"]


def test_jobs_of_nets_that_do_not_fuse_are_never_split_by_the_worker_count():
    specs = [RunSpec("td3", "tests.user_nets:residual", seed, steps=200) for seed in range(4)]
    assert [len(job) for job in batch_jobs(specs, workers=2)] == [4]
    traced = [RunSpec("td3", "tests.user_nets:attribute_mlp", seed, steps=200) for seed in range(4)]
    assert [len(job) for job in batch_jobs(traced, workers=2)] == [2, 2]  # fused: bit for bit either way


def test_probes_of_one_size_and_budget_share_a_job():
    probes = ("rlcheck/ConstantReward-v0", "rlcheck/ActionReward-v0", "rlcheck/RandomEnv-v0")
    specs = [RunSpec("td3", "plain", seed, env_id=env, steps=200) for env in probes for seed in (0, 1)]
    jobs = batch_jobs(specs, workers=1)
    assert [[(s.env_id.split("/")[1], s.seed) for s in job] for job in jobs] == [
        [("ConstantReward-v0", 0), ("ConstantReward-v0", 1), ("ActionReward-v0", 0), ("ActionReward-v0", 1)],
        [("RandomEnv-v0", 0), ("RandomEnv-v0", 1)],  # 3-dimensional observations: a job of its own
    ]


def test_a_study_that_adds_seeds_starts_its_training_processes_once(monkeypatch):
    pools = []

    class CountingPool(rlcheck.engine.runner.WorkerPool):
        def __init__(self, size: int) -> None:
            super().__init__(size)
            pools.append(self)

    monkeypatch.setattr(rlcheck.engine.runner, "WorkerPool", CountingPool)
    real = rlcheck.verdicts.study._compare_cell

    def inconclusive(config, results, calibration, cell):
        return [
            dataclasses.replace(c, stats=dataclasses.replace(c.stats, verdict="inconclusive"))
            for c in real(config, results, calibration, cell)
        ]

    monkeypatch.setattr(rlcheck.verdicts.study, "_compare_cell", inconclusive)
    cell = Cell("td3", steps=150, warmup=50, eval_every=50)
    config = StudyConfig(
        cells=(cell,), nets=("plain", "layernorm"), seeds=(0, 1), max_seeds=4, workers=2, threads=1, slower_budget=1
    )
    study = run_study(config)
    assert sorted(r.spec.seed for r in study.runs_of(cell, "layernorm")) == [0, 1, 2, 3]  # two rounds...
    assert len(pools) == 1  # ...one set of processes
    assert not multiprocessing.active_children()  # stopped with the study


def _kill_the_first_busy_worker(after_s: float, killed: list[int]) -> None:
    """From a thread of the test: once a training process has held a job for `after_s`, kill it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        pools = rlcheck.engine.runner._kept_pools or {}
        for pool in list(pools.values()):
            for pid in list(pool.busy):
                time.sleep(after_s)
                if pid in pool.busy:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.05)


def test_a_killed_training_process_is_replaced_and_its_job_retried_with_the_same_results(tmp_path, capsys):
    specs = [
        RunSpec("td3", net, seed, steps=1500, warmup=100, eval_every=100)
        for net in ("plain", "layernorm")
        for seed in (0, 1)
    ]
    undisturbed = run_all(specs, workers=1)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_the_first_busy_worker, args=(1.0, killed))
    with rlcheck.engine.runner.kept_workers():
        killer.start()
        retried = run_all(specs, workers=2, log_path=tmp_path / "runs.jsonl")
    killer.join()
    assert killed, "no training process was killed: the test did not test anything"
    assert "a training process died while training td3" in capsys.readouterr().err
    assert [r.eval_returns for r in retried] == [r.eval_returns for r in undisturbed]
    assert len(load_log(tmp_path / "runs.jsonl")) == 4
    assert not multiprocessing.active_children()


def test_a_job_that_kills_its_process_every_time_stops_the_study_in_one_line_and_keeps_finished_runs(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    monkeypatch.setenv("RLCHECK_TEST_DIE_AFTER", str(out / "runs.jsonl"))
    code = rlcheck.cli.main(
        ["--algos", "td3", "--nets", "plain,tests.user_nets:dies_in_a_training_process", "--seeds", "2",
         "--max-seeds", "2", "--steps", "200", "--warmup", "100", "--workers", "2", "--out", str(out), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "rlcheck: a training process died twice while training td3 tests.user_nets:dies_in_a_training_process seeds 0,1"
    )
    assert "killed by SIGKILL" in last and "runs.jsonl" in last
    assert sorted((r.spec.net, r.spec.seed) for r in load_log(out / "runs.jsonl").values()) == [
        ("plain", 0),
        ("plain", 1),
    ]
    assert not multiprocessing.active_children()
