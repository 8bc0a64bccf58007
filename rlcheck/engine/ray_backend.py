"""Training jobs as Ray tasks: a study or a check on a Ray cluster (``--backend ray``).

The jobs are exactly the local pool's (rlcheck.engine.runner.batch_jobs: the same grouping of seeds,
the same threads per job, whatever the cluster's size), so a run trained on Ray has the bits
it has locally on the same processor model. Each job is one task that declares its CPUs (its
threads) and, with ``--device cuda``, a share of a GPU; results stream back as tasks finish
and go through the same log, resume and cache as local runs.

Code reaches the workers two ways: with a local Ray instance (no address), the workers share
this machine's files and get this process's ``sys.path``; on a cluster (``--ray-address``),
the current directory is shipped as the job's working directory (Ray's ``runtime_env``), so
a factory in your repository imports there. Environment variables named ``RLCHECK_*`` are
passed on. A worker that dies is retried once by Ray; a second death, or an exception in
the job (a factory that does not import on the worker, say), ends the run with one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rlcheck.engine.workers import WorkerDied
from rlcheck.errors import UsageError

# What never goes to a cluster with the working directory: environments, caches, outputs.
SHIPPED_EXCLUDES = [".venv", ".git", "**/__pycache__", "rlcheck-*", "*.png", "*.jsonl", ".mypy_cache", ".ruff_cache"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'rlcheck[ray]' (or pip install ray)") from None
    return ray


def connect(address: str | None, **start: Any) -> Any:
    """Ray, initialised: the running instance if there is one, else `address`'s cluster, else a
    local instance on this machine's cores (`start`: more of ray.init's arguments for it)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    env_vars = {k: v for k, v in os.environ.items() if k.startswith("RLCHECK_")}
    runtime_env: dict[str, Any]
    if address:
        runtime_env = {"working_dir": os.getcwd(), "excludes": SHIPPED_EXCLUDES, "env_vars": env_vars}
    else:
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        runtime_env = {"env_vars": {**env_vars, "PYTHONPATH": os.pathsep.join(paths)}}
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=runtime_env,
            logging_level="ERROR",
            **start,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UsageError(f"--ray-address {address}: cannot join that Ray cluster ({exc})") from None
    return ray


def run_jobs(
    jobs: Sequence[Any],
    train: Callable[[Any], list],
    threads: int,
    gpus: float,
    address: str | None,
    describe: Callable[[Any], str],
    finish: Callable[[Any], None],
) -> None:
    """Submit every job as a task and hand each result to `finish` as its task ends."""
    ray = connect(address)
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=1, retry_exceptions=False)(train)
    pending = {task.remote(job): job for job in jobs}
    try:
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready)
            try:
                results = ray.get(ready)
            except ray.exceptions.RayTaskError as exc:  # the job raised: the user's error, unwrapped
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                raise cause from None
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError):
                raise WorkerDied(f"a Ray worker died twice while training {describe(job)}") from None
            for result in results:
                finish(result)
    finally:
        for ref in pending:  # interrupted or failed: the jobs still queued or running are not wanted
            ray.cancel(ref, force=True)
