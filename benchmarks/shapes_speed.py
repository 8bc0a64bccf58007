"""What a network's shape costs in training speed: rlcheck's fused built-in, the same MLP
written as a class (fused through its traced chain), and the shapes of other codebases that
rlcheck adapts (CleanRL's classes, Spinning Up's two-input critic), measured side by side in
one run, one process, one thread.

    PYTHONPATH=. python benchmarks/shapes_speed.py [--steps 600] [--seeds 5]   # from the repository root

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from rlcheck.engine.agents import build_agent, make_env
from rlcheck.engine.runner import run_all
from rlcheck.engine.runs import RunSpec
from rlcheck.nets.seedstack import SeedStack

N = "tests.codebase_nets"
CONFIGS = {
    "td3": [
        ("built-in plain", "plain", None, None),
        ("plain written as a class", "tests.user_nets:plain_as_a_class", None, None),
        ("CleanRL Actor(env) + QNetwork(env)", "yours", f"{N}:CleanRLTD3Actor", f"{N}:CleanRLQNetwork"),
        ("Spinning Up actor + Q-function", "yours", f"{N}:SpinningUpTD3Actor", f"{N}:SpinningUpQFunction"),
    ],
    "sac": [
        ("built-in plain", "plain", None, None),
        ("plain written as a class", "tests.user_nets:plain_as_a_class", None, None),
        ("CleanRL Actor(env) + QNetwork(env)", "yours", f"{N}:CleanRLSACActor", f"{N}:CleanRLQNetwork"),
    ],
}


def strategies(spec: RunSpec) -> str:
    with make_env(spec.env_id) as env:
        agent = build_agent(spec, env, seeds=[0, 1])
    found = []
    for module in (agent.actor, agent.q1):
        found.append(next(m for m in module.modules() if isinstance(m, SeedStack)).strategy)
    return "/".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{os.cpu_count()} cores, 1 thread, torch {torch.__version__}, rlcheck/ActionReward-v0, "
        f"{args.seeds} seeds x {args.steps} steps, batch 256; seed-steps/s (env steps summed over seeds per second)"
    )
    header = f"{'algo':<5} {'networks':<36} {'stacked as':<12} {'seed-steps/s':>12} {'vs built-in':>11}"
    print(header + "\n" + "-" * len(header))
    for algo, configs in CONFIGS.items():
        reference = None
        for label, net, actor, critic in configs:
            specs = [
                RunSpec(
                    algo,
                    net,
                    seed,
                    "rlcheck/ActionReward-v0",
                    steps=args.steps,
                    warmup=100,
                    eval_every=args.steps,
                    actor_net=actor,
                    critic_net=critic,
                )
                for seed in range(args.seeds)
            ]
            run_all(specs[:1], workers=1)  # warm: imports, first allocations
            start = time.perf_counter()
            run_all(specs, workers=1)
            rate = args.seeds * args.steps / (time.perf_counter() - start)
            reference = reference or rate
            stacked = strategies(specs[0])
            print(f"{algo:<5} {label:<36} {stacked:<12} {rate:>12.0f} {rate / reference:>10.2f}x", flush=True)


if __name__ == "__main__":
    main()
