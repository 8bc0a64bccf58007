"""Run many (algo, net, seed) trainings, batched and in parallel processes, saving each as it finishes.

Runs that differ only in their seed train together as one batched computation (a job);
jobs go to parallel processes. Finished runs are appended to a JSON-lines log the moment
their job completes, so a crash or Ctrl-C loses only the runs still in flight; ``resume``
picks them up again. A seed's curve does not depend on the job it trains in, so how runs
are grouped changes the wall time, never a result.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rlcheck.algos import ALGORITHMS
from rlcheck.engine import trace
from rlcheck.engine.agents import env_dims, fuses_seeds, make_env
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.engine.training import AfterTraining, run_group
from rlcheck.engine.workers import WorkerPool
from rlcheck.errors import UsageError

ProgressCallback = Callable[[RunResult, int, int], None]
Job = tuple[list[RunSpec], AfterTraining | None]  # runs that train as one batch, and their measurement

# Runs per batched job. A small network's update is mostly fixed per-call cost, so a job of
# many runs costs far less than as many jobs of one (benchmarks/speed.py); much larger jobs
# spread worse over processes and lose more to a Ctrl-C. 32 keeps the probe suite's 5 probes x 5 seeds in one job.
MAX_SEEDS_PER_JOB = 32


def default_workers() -> int:
    """One process per core, or 1 inside a pytest-xdist worker (it already owns a core)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Split the cores between worker processes so that they never oversubscribe."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def load_log(path: Path) -> dict[RunSpec, RunResult]:
    """Finished runs from a log written by :func:`run_all` (a torn last line is skipped)."""
    done: dict[RunSpec, RunResult] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            result = RunResult.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
        done[result.spec] = result
    return done


class ProgressPrinter:
    """Progress of a study on stderr: a tqdm bar on a terminal; elsewhere (CI logs, pipes) a
    line at every tenth of the runs, so a log of 120 runs gets about ten lines.

    It counts runs itself, so one printer serves several rounds of :func:`run_all`. The
    estimate of the time left rests on the runs trained here: runs reused from the cache
    arrive at once and say nothing about how long training takes (tqdm's own estimate would
    count them, so the bar shows this one instead)."""

    def __init__(self, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.stream = stream  # None: whatever sys.stderr is at print time
        self.bar = bar
        self.start = time.perf_counter()
        self.done = 0
        self.reused = 0
        self._tqdm: Any = None

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def __call__(self, result: RunResult, finished: int, total: int) -> None:
        before = self.done
        self.done += 1
        self.reused += result.reused
        remaining = total - finished
        trained = self.done - self.reused
        eta = f"{(time.perf_counter() - self.start) / trained * remaining:4.0f} s" if trained else "   ? s"
        spec = result.spec
        if self.bar if self.bar is not None else self._out().isatty():
            self._show_bar(spec, eta, self.done + remaining)
            return
        grand_total = self.done + remaining
        if remaining and self.done > 1 and (10 * before) // grand_total == (10 * self.done) // grand_total:
            return  # not a new tenth: keep CI logs short
        together = f"{result.batched_with} seed{'s' if result.batched_with > 1 else ''} together"
        how = "reused from the cache" if result.reused else f"{result.wall_time_s:5.1f} s for {together}"
        print(
            f"[{self.done:>3}/{grand_total}] {spec.algo} {spec.net:<12} seed {spec.seed:<5} "
            f"final {result.final_return:7.2f}  ({how})  eta {eta}",
            file=self._out(),
            flush=True,
        )

    def _show_bar(self, spec: RunSpec, eta: str, total: int) -> None:
        from tqdm import tqdm

        if self._tqdm is None:
            self._tqdm = tqdm(
                total=total,
                file=self._out(),
                unit="run",
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]",
            )
        self._tqdm.total = total  # a round of extra seeds makes the study longer
        self._tqdm.set_postfix_str(f"eta {eta.strip()}, last: {spec.algo} {spec.net} seed {spec.seed}", refresh=False)
        self._tqdm.update(1)
        if self.done >= total:
            self._tqdm.close()
            self._tqdm = None


def run_all(
    specs: Sequence[RunSpec],
    workers: int = 1,
    log_path: Path | None = None,
    progress: ProgressCallback | None = None,
    resume: bool = False,
    cache: RunCache | None = None,
    after_training: AfterTraining | None = None,
    measure_nets: Collection[str] = (),
    backend: Backend | None = None,
) -> list[RunResult]:
    """Run every spec and return the results in the order of `specs`.

    The jobs run in a local pool of `workers` processes, or, with a Ray `backend`, as tasks on
    its cluster: the same jobs either way (rlcheck.engine.ray_backend).

    With ``resume``, runs already in the log with an identical spec are reused, not rerun.
    With a ``cache``, so are runs of built-in nets it holds, and those trained here are added.
    Jobs of the nets named in ``measure_nets`` are measured by ``after_training`` in the
    process that trained them (rlcheck.engine.training.AfterTraining), so that a later question
    about a trained agent trains nothing again.
    """
    previous = load_log(log_path) if (resume and log_path is not None) else {}
    results: dict[RunSpec, RunResult] = {s: previous[s] for s in specs if s in previous}
    log = log_path.open("a") if log_path is not None else None

    def finish(result: RunResult, trained: bool = True) -> None:
        results[result.spec] = result
        if log is not None:
            log.write(json.dumps(result.to_dict()) + "\n")
            log.flush()
        if cache is not None and trained:
            cache.put(result)
        if progress is not None:
            progress(result, len(results), len(specs))

    measured: dict[tuple, float] = {}
    if cache is not None:
        for spec in specs:
            if spec not in results and (cached := cache.get(spec)) is not None:
                finish(cached, trained=False)
                measured[_cost_key(spec)] = cached.wall_time_s / max(1, cached.batched_with)
    todo = [s for s in specs if s not in results]
    trace.event("round started", runs=len(specs), reused=len(specs) - len(todo))

    batched = batch_jobs(todo, workers, measured=measured)
    jobs: list[Job] = [(job, after_training if job[0].net in measure_nets else None) for job in batched]
    try:
        if backend is not None and backend.kind == "ray" and jobs:
            from rlcheck.engine import ray_backend

            threads, gpus = todo[0].threads, (backend.gpus if todo[0].device.startswith("cuda") else 0.0)
            ray_backend.run_jobs(jobs, _train_job, threads, gpus, backend.address, describe_job, finish)
        elif workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                for result in _train_job(job):
                    finish(result)
        else:
            _run_parallel(jobs, workers, finish)
    finally:
        if log is not None:
            log.close()
        trace.event("round finished", runs=len(specs))
    return [results[s] for s in specs]


@dataclass(frozen=True)
class Backend:
    """Where jobs run: ``local`` (a pool of processes here) or ``ray`` (a Ray cluster: the one
    at `address`, or a local instance); `gpus` is each job's share of a GPU on CUDA."""

    kind: str = "local"
    address: str | None = None
    gpus: float = 1.0


def batch_jobs(
    specs: Sequence[RunSpec],
    workers: int = 1,
    max_seeds: int = MAX_SEEDS_PER_JOB,
    measured: Mapping[tuple, float] | None = None,
) -> list[list[RunSpec]]:
    """Group runs that differ only in their seed and environment (of one observation and action
    size) into jobs of at most `max_seeds` runs; while there are fewer jobs than workers, halve
    the largest so that every worker has one. Jobs come longest first: by the seconds the same
    cells took in runs of another net (`measured`, per run, from the cache) where every job has
    them -- a net's cost relative to another's is about the same in every cell -- else by
    :func:`estimated_cost`. The order never changes a result, only how the jobs pack.

    Only jobs whose networks fuse across seeds are halved: their seeds compute the same bits
    in any grouping. Other networks keep the grouping the spec list gives them, so that their
    results never depend on the number of workers."""
    groups: dict[tuple[RunSpec, tuple[int, int]], list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.group_key(), _env_dims(spec.env_id)), []).append(spec)
    # A user's agent trains one seed per job: rlcheck cannot batch code it does not own.
    sizes = {key: 1 if key.agent is not None else max_seeds for key, _ in groups}
    jobs = [group[i : i + sizes[key]] for (key, _), group in groups.items() for i in range(0, len(group), sizes[key])]
    splittable = {key for (key, _), group in groups.items() if len(jobs) < workers and _fuses_seeds(group[0])}
    while 0 < len(jobs) < workers:
        candidates = [i for i, job in enumerate(jobs) if len(job) > 1 and job[0].group_key() in splittable]
        if not candidates:
            break
        largest = max(candidates, key=lambda i: len(jobs[i]))
        job = jobs.pop(largest)
        jobs[largest:largest] = [job[: len(job) // 2], job[len(job) // 2 :]]
    # Longest first, so that the last job to start is a short one and no worker is left alone
    # with a long job at the end (a stable sort: equal jobs keep the order of `specs`).
    if measured and all(_cost_key(spec) in measured for job in jobs for spec in job):
        return sorted(jobs, key=lambda job: -sum(measured[_cost_key(spec)] for spec in job))
    return sorted(jobs, key=lambda job: -estimated_cost(job))


def _cost_key(spec: RunSpec) -> tuple:
    """What a run's cost depends on, bar its networks: the algorithm and the cell's budget."""
    return (spec.algo, spec.env_id, spec.steps, spec.warmup, spec.eval_every, spec.eval_episodes)


def estimated_cost(job: Sequence[RunSpec]) -> float:
    """A job's cost in TD3-updates of one seed: its updates x (3 + seeds). A batched update costs
    about as much again as 3 seeds' arithmetic, whatever the seeds (an ordering estimate only:
    benchmarks/speed.py measures the cost per seed)."""
    spec = job[0]
    updates = max(1, spec.steps - spec.warmup)
    algo = ALGORITHMS.get(spec.algo)
    return (algo.relative_update_cost if algo else 1.0) * updates * (3 + len(job))


@functools.cache
def _env_dims(env_id: str) -> tuple[int, int]:
    """(observation size, action size): runs batch together only where their networks have one shape."""
    try:
        env = make_env(env_id)
    except UsageError:
        return (-1, -1)  # the run itself reports it, with its one-line message
    dims = env_dims(env)
    env.close()
    return dims


def _fuses_seeds(spec: RunSpec) -> bool:
    if spec.agent is not None:
        return False
    try:
        return fuses_seeds(spec)
    except Exception:  # a broken factory is reported by the run itself, with its one-line message
        return False


def _train_job(job: Job) -> list[RunResult]:
    specs, after_training = job
    trace.event("job started", job=describe_job(job), runs=len(specs), steps=specs[0].steps)
    if specs[0].agent is not None:  # a user's agent: one seed, rlcheck's loop around the user's code
        from rlcheck.engine.user_agents import train_user_agent

        results = [train_user_agent(spec) for spec in specs]
    else:
        results = run_group(specs, after_training)
    trace.event("job finished", job=describe_job(job))
    return results


# Inside `kept_workers`: the pools started so far, by size; None outside.
_kept_pools: dict[int, WorkerPool] | None = None


@contextlib.contextmanager
def kept_workers() -> Iterator[None]:
    """Keep the training processes of every :func:`run_all` in the block for the next one.

    A study trains in rounds (more seeds while a verdict is inconclusive), and starting the
    processes again costs every round a fresh interpreter that imports torch.
    They stop when the block ends, whatever they were doing."""
    global _kept_pools
    if _kept_pools is not None:  # an outer block keeps them
        yield
        return
    _kept_pools = {}
    try:
        yield
    finally:
        pools, _kept_pools = _kept_pools, None
        for pool in pools.values():
            pool.stop()


def describe_job(job: Job) -> str:
    """A job as a user names it: algorithm, net, seeds and environments."""
    specs = job[0]
    first = specs[0]
    seeds = sorted({s.seed for s in specs})
    envs = ", ".join(dict.fromkeys(s.env_id for s in specs))
    nets = (
        f"agent {first.agent}"
        if first.agent is not None
        else first.net
        if first.actor_net is None and first.critic_net is None
        else (f"actor {first.actor_net_name}, critic {first.critic_net_name}")
    )
    return f"{first.algo} {nets} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))} on {envs}"


def _warn(message: str) -> None:
    print(f"rlcheck: {message}", file=sys.stderr, flush=True)


def _run_parallel(jobs: Sequence[Job], workers: int, finish: Callable[[RunResult], None]) -> None:
    kept = _kept_pools
    pool = kept.get(workers) if kept is not None else None
    if pool is None:
        pool = WorkerPool(workers)
        if kept is not None:
            kept[workers] = pool
    try:
        for results in pool.imap_unordered(_train_job, jobs, describe=describe_job, on_retry=_warn):
            for result in results:
                finish(result)
    except BaseException:
        if kept is not None:
            kept.pop(workers, None)
        pool.stop()  # its jobs still in flight would go on training
        raise
    if kept is None:
        pool.stop()
