"""Measure what the BatchNorm gate's numbers rest on, and how long the gate takes.

    python benchmarks/measure_gate.py learning   # steps for plain TD3/SAC to reach the bar, seeds 0-19
    python benchmarks/measure_gate.py gate       # wall time of `pytest benchmarks/ -k batchnorm -n auto`
    python benchmarks/measure_gate.py seedsets   # the SAC BatchNorm verdict on several seed sets

Prints tables; asserts nothing. The figures quoted in benchmarks/test_batchnorm.py come from here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from rlcheck.runner import default_workers, run_all
from rlcheck.study import StudyConfig, run_study
from rlcheck.training import RunSpec


def learning(seeds: range) -> None:
    for algo, steps, bar in (("td3", 2000, 28.0), ("sac", 5000, 27.0)):
        specs = [RunSpec(algo, "plain", s, steps=steps) for s in seeds]
        runs = run_all(specs, default_workers())
        first = []
        for r in runs:
            hit = np.flatnonzero(np.asarray(r.eval_returns) >= bar)
            first.append(r.eval_steps[hit[0]] if hit.size else None)
        reached = [f for f in first if f is not None]
        plateau = [float(np.mean(r.eval_returns[-5:])) for r in runs]
        print(
            f"{algo}: reached {bar} on {len(reached)}/{len(runs)} seeds; first step median "
            f"{np.median(reached):.0f}, max {max(reached)}; return over the last 5 evaluations "
            f"{min(plateau):.2f}-{max(plateau):.2f}; {np.mean([r.wall_time_s for r in runs]):.1f} s per run",
            flush=True,
        )


def gate() -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/",
            "-k",
            "batchnorm",
            "-n",
            "auto",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    print(proc.stdout.strip().splitlines()[-1])
    print(f"pytest benchmarks/ -k batchnorm -n auto: {wall:.1f} s wall on {os.cpu_count()} cores")


def seedsets(starts: list[int]) -> None:
    for start in starts:
        config = StudyConfig(
            algos=("sac",),
            seeds=tuple(range(start, start + 5)),
            max_seeds=15,
            workers=default_workers(),
            threads=1,
        )
        result = run_study(config)
        (c,) = result.comparisons
        print(f"seeds from {start}: {c.stats.n_candidate} seeds -> {c.stats.verdict}: {c.stats.reason}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["learning", "gate", "seedsets"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--starts", default="0,100,200,300,1000,3000")
    args = parser.parse_args()
    if args.what == "learning":
        learning(range(args.seeds))
    elif args.what == "gate":
        gate()
    else:
        seedsets([int(s) for s in args.starts.split(",")])
