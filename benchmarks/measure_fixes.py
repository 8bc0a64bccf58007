"""The gradient that reaches the actor as each BatchNorm variant trains (RandomEnv, seed 0).

    python benchmarks/measure_fixes.py [--out docs/action_gradient.png]

At every evaluation it measures mean |dQ/da| on a batch of identical (zero) states with the
critic in the mode the algorithm uses for the actor loss -- the signal the actor learns
from -- and prints and plots it per variant. Asserts nothing.
"""

from __future__ import annotations

import argparse

import matplotlib
import torch

from rlcheck.engine.training import train
from rlcheck.verdicts.diagnose import action_gradient
from rlcheck.verdicts.study import Cell, StudyConfig

VARIANTS = ("plain", "batchnorm", "batchnorm-critic", "batchnorm-critic-modeaware", "batchnorm-modeaware", "layernorm")


def measure(algo: str, net: str) -> tuple[list[int], list[float], list[float]]:
    cell = Cell(algo)
    spec = StudyConfig(cells=(cell,), nets=(net,), baseline=net).spec(cell, net, seed=0)
    steps, gradients = [], []

    def record(agent, step: int) -> None:
        constant = torch.zeros(256, 3)
        steps.append(step)
        gradients.append(action_gradient(agent, constant, agent.modes.critic_in_actor_update))

    _, _, result = train(spec, on_eval=record)
    return steps, gradients, result.eval_returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/action_gradient.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, algo in zip(axes, ("td3", "sac"), strict=True):
        for net in VARIANTS:
            steps, gradients, returns = measure(algo, net)
            late = gradients[len(gradients) // 3 :]
            print(
                f"{algo} {net:<27} |dQ/da| median after step {steps[len(steps) // 3]}: "
                f"{sorted(late)[len(late) // 2]:.3g}; final return {returns[-1]:.2f}",
                flush=True,
            )
            ax.semilogy(steps, [max(g, 1e-12) for g in gradients], label=net)
        ax.set_title(f"{algo.upper()}: |dQ/da| reaching the actor (identical states, actor-loss mode)")
        ax.set_xlabel("environment steps")
    axes[0].set_ylabel("mean |dQ/da| (log scale)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
