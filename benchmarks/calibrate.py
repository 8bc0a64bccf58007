"""Re-measure, on calibration seeds, what rlcheck's bars and tolerances rest on.

    python benchmarks/calibrate.py                       # plain nets, every probe, seeds 5000-5019
    python benchmarks/calibrate.py --nets plain,benchmarks.validity_nets:tanh_mlp --seeds 5000-5014
    python benchmarks/calibrate.py --probes time-limit  # the agent suite's own probe

Calibration seeds are 5000 and up: disjoint from the seeds the tests and the gate use by
default (0 and up, each growing to at most 3x), and from the validity benchmark's held-out
sets (benchmarks/validity.py). For every (probe, algorithm) cell it prints, per net, the
spread of the score the verdicts use (mean over the last third of evaluations; critic error
for value probes) and the final value that benchmarks/test_probes.py's bars bound, plus the
tolerance rlcheck.verdicts.stats derives from the plain nets, and the baseline's critic errors as
rlcheck.verdicts.tolerances.CALIBRATED_BASELINE_ERROR holds them. Runs are kept in OUT/runs.jsonl
and reused when the command is repeated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rlcheck.engine.runner import default_workers, run_all, threads_per_worker
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.requests import parse_seeds
from rlcheck.verdicts.check import Probe, parse_probes
from rlcheck.verdicts.curves import measures, tolerance_of


def specs_for(net: str, seeds: list[int], threads: int, probes: tuple[Probe, ...]) -> list[RunSpec]:
    return [
        RunSpec(algo, net, seed, env_id=p.env_id, steps=p.steps, warmup=p.warmup, eval_every=p.eval_every,
                eval_episodes=p.eval_episodes, threads=threads, actor_net=net, critic_net=net)
        for p in probes
        for algo in ("td3", "sac")
        for seed in seeds
    ]  # fmt: skip


def summarise(runs: list[RunResult], nets: list[str], probes: tuple[Probe, ...]) -> None:
    print(f"{'cell':<22} {'net':<38} {'n':>3} {'score mean':>10} {'sd':>7} {'min':>8} {'max':>8} "
          f"{'jump':>7} {'final worst':>11} {'tolerance':>9}")  # fmt: skip
    for probe in probes:
        for algo in ("td3", "sac"):
            tolerance = None
            for net in nets:
                cell_runs = [
                    r for r in runs if r.spec.algo == algo and r.spec.env_id == probe.env_id and r.spec.net == net
                ]
                measured = [measures(r, probe.metric) for r in cell_runs]
                scores = np.array([m[1] for m in measured])
                jumps = np.array([m[2] for m in measured])
                if probe.metric == "value_error":
                    worst = max(r.eval_value_errors[-1] for r in cell_runs)  # type: ignore[index]
                else:
                    worst = min(r.final_return for r in cell_runs)
                if net == nets[0]:
                    tolerance = tolerance_of(probe.metric, probe.env_id, cell_runs)
                print(
                    f"{algo + ' ' + probe.name:<22} {net[-38:]:<38} {scores.size:>3} {scores.mean():>10.4f} "
                    f"{scores.std(ddof=1):>7.4f} {scores.min():>8.4f} {scores.max():>8.4f} {jumps.mean():>7.4f} "
                    f"{worst:>11.4f} {tolerance:>9.4f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="plain", help="comma-separated nets; the first sets the tolerance")
    parser.add_argument("--seeds", default="5000-5019")
    parser.add_argument("--probes", default="all", help="comma-separated probes of the agent suite, or 'all'")
    parser.add_argument("--out", type=Path, default=Path("rlcheck-calibration"))
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    seeds = list(parse_seeds(args.seeds))
    if min(seeds) < 5000:
        sys.exit("calibration seeds start at 5000 (lower ones are the tests' and the gate's)")
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    threads = threads_per_worker(args.workers)
    probes = parse_probes(args.probes, agent=True)
    specs = [s for net in nets for s in specs_for(net, seeds, threads, probes)]
    runs = run_all(specs, args.workers, args.out / "runs.jsonl", resume=True)
    summarise(runs, nets, probes)
    print("\nrlcheck.verdicts.tolerances.CALIBRATED_BASELINE_ERROR (the first net's mean critic error):")
    for probe in probes:
        if probe.metric != "value_error":
            continue
        for algo in ("td3", "sac"):
            cell = [r for r in runs if r.spec.algo == algo and r.spec.env_id == probe.env_id and r.spec.net == nets[0]]
            error = -float(np.mean([measures(r, probe.metric)[1] for r in cell]))
            key = (algo, probe.env_id, probe.steps, probe.warmup, probe.eval_every)
            print(f"    {key!r}: {error:.4g},")


if __name__ == "__main__":
    main()
