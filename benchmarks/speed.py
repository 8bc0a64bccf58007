"""Side-by-side speed on identical work: rlcheck vs Stable-Baselines3 (prints a table).

    pip install -e ".[bench]"          # Stable-Baselines3, only for this script
    python benchmarks/speed.py [--steps 2000] [--widths 64,256] [--threads 1,2]

Identical configuration for both: RandomEnv, one seed, hidden widths w x w, batch 256,
250 random warm-up steps, one gradient update per env step, Gaussian exploration noise 0.1
for TD3. Each row is measured in this one run, side by side. "GFLOP/s" counts the matrix
multiplications of an update analytically (forward 2*B*sum(in*out); backward twice that)
and divides by the wall time of the run; "sgemm" is torch's own matrix multiply of the same
shapes on this machine, so the last column is the fraction of that roofline reached.
Asserts nothing: speed claims live here, not in tests.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from rlcheck.envs import RANDOM_ENV_ID, RandomEnv
from rlcheck.training import RunSpec, run

OBS, ACT, BATCH = 3, 1, 256


def mlp_flops(in_dim: int, width: int, out_dim: int) -> float:
    return 2.0 * BATCH * (in_dim * width + width * width + width * out_dim)


def update_flops(algo: str, width: int) -> float:
    """Matmul FLOPs of one update (forward F, forward+backward 3F), per the algorithms' code."""
    critic = mlp_flops(OBS + ACT, width, 1)
    if algo == "td3":
        actor = mlp_flops(OBS, width, ACT)
        # targets: actor + 2 critics; fit: 2 critics fwd+bwd; every 2nd update: actor and critic fwd+bwd
        return actor + 2 * critic + 6 * critic + 0.5 * (3 * actor + 3 * critic)
    actor = mlp_flops(OBS, width, 2 * ACT)
    # next action + 2 target critics; fit: 2 critics fwd+bwd; actor fwd+bwd through 2 critics
    return actor + 2 * critic + 6 * critic + 3 * actor + 6 * critic


def sgemm_gflops(width: int) -> float:
    a, b = torch.randn(BATCH, width), torch.randn(width, width)
    for _ in range(50):
        a @ b
    n, start = 2000, time.perf_counter()
    for _ in range(n):
        a @ b
    return 2.0 * BATCH * width * width * n / (time.perf_counter() - start) / 1e9


def rlcheck_steps_per_s(algo: str, width: int, steps: int, threads: int) -> float:
    spec = RunSpec(algo, "plain", 0, steps=steps, warmup=250, eval_every=steps, hidden=(width, width), threads=threads)
    return run(spec).env_steps_per_s


def sb3_steps_per_s(algo: str, width: int, steps: int) -> float:
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = RandomEnv()
    kwargs = {"policy_kwargs": {"net_arch": [width, width]}, "learning_starts": 250, "batch_size": BATCH, "seed": 0}
    if algo == "td3":
        noise = NormalActionNoise(np.zeros(ACT), 0.1 * np.ones(ACT))
        model = TD3("MlpPolicy", env, action_noise=noise, device="cpu", **kwargs)
    else:
        model = SAC("MlpPolicy", env, device="cpu", **kwargs)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--widths", default="64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--algos", default="td3,sac")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, env {RANDOM_ENV_ID}, {args.steps} steps, batch {BATCH}")
    header = (
        f"{'algo':<5} {'width':>5} {'threads':>7} {'rlcheck steps/s':>16} {'SB3 steps/s':>12} {'ratio':>6} "
        f"{'GFLOP/s':>8} {'sgemm':>7} {'roofline':>8}"
    )
    print(header)
    print("-" * len(header))
    for algo in args.algos.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                ours = rlcheck_steps_per_s(algo, width, args.steps, threads)
                theirs = sb3_steps_per_s(algo, width, args.steps)
                updates_per_s = ours * (args.steps - 250) / args.steps
                achieved = update_flops(algo, width) * updates_per_s / 1e9
                peak = sgemm_gflops(width)
                print(
                    f"{algo:<5} {width:>5} {threads:>7} {ours:>16.0f} {theirs:>12.0f} {ours / theirs:>6.2f} "
                    f"{achieved:>8.2f} {peak:>7.1f} {achieved / peak:>8.1%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
