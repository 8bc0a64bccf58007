"""Side-by-side speed on identical work: rlcheck's batched engine vs its per-seed loop vs SB3 (prints a table).

    pip install -e ".[bench]"          # Stable-Baselines3 and sbx (JAX), only for this script
    python benchmarks/speed.py [--steps 1000] [--seeds 5] [--widths 64,256] [--threads 1,2] [--repeats 3] [--device cpu]
    python benchmarks/speed.py --sbx-python /path/to/venv/bin/python   # sbx from another environment

The work is the same in every column: S seeds x N environment steps of TD3 or SAC on
RandomEnv, hidden widths w x w, batch 256, 250 random warm-up steps, one gradient update
per environment step (TD3: Gaussian exploration noise 0.1). Each row is measured in this
one run, side by side:

* **batched**: rlcheck trains the S seeds as one batched computation (the default engine);
* **loop**: rlcheck trains them one after another, one seed per job (the same code, S = 1);
* **SB3**: Stable-Baselines3 trains one seed; S seeds one after another take S times as long,
  so its seed-steps/s is its env-steps/s.
* **sbx**: SB3's JAX version (sbx-rl), one seed, the same way, in a subprocess whose XLA runs
  on the row's thread count (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1`` for one thread). Its column is its steady state, after
  XLA's compilation; the compilation's seconds are reported apart ("sbx JIT s").

Every column of a row runs on as many cores as the row has threads (:func:`pin_to`).

Each row is measured in ``--repeats`` rounds (default 3), every column once per round; a column
prints its median, a ratio the median of the rounds' ratios (on a shared machine, speed drifts
between minutes more than between neighbouring measurements).

Throughput is **seed-steps/s**: environment steps summed over seeds, per second of wall
time. "GFLOP/s" counts the batched run's matrix multiplications analytically (forward
2*B*sum(in*out), backward twice that) and divides by its wall time; "sgemm" is torch's own
matrix multiply of one seed's (256, w) x (w, w) shapes on this machine at this thread count,
so "roofline" is the fraction of that reached. Asserts nothing: speed claims live here, not in tests.

``--seed-sweep 1,5,25`` instead prints what S seeds trained as one batch cost against one
seed: on a GPU, where a step is bound by kernel launches, S seeds should cost about one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from rlcheck.engine.runs import RunSpec
from rlcheck.engine.training import run, run_group
from rlcheck.envs import RANDOM_ENV_ID, RandomEnv

OBS, ACT, BATCH, WARMUP = 3, 1, 256, 250


def mlp_flops(in_dim: int, width: int, out_dim: int) -> float:
    return 2.0 * BATCH * (in_dim * width + width * width + width * out_dim)


def update_flops(algo: str, width: int) -> float:
    """Matmul FLOPs of one update of one seed (forward F, forward+backward 3F), per the algorithms' code."""
    critic = mlp_flops(OBS + ACT, width, 1)
    if algo == "td3":
        actor = mlp_flops(OBS, width, ACT)
        # targets: actor + 2 critics; fit: 2 critics fwd+bwd; every 2nd update: actor and critic fwd+bwd
        return actor + 2 * critic + 6 * critic + 0.5 * (3 * actor + 3 * critic)
    actor = mlp_flops(OBS, width, 2 * ACT)
    # next action + 2 target critics; fit: 2 critics fwd+bwd; actor fwd+bwd through 2 critics
    return actor + 2 * critic + 6 * critic + 3 * actor + 6 * critic


def sgemm_gflops(width: int, device: str) -> float:
    a, b = torch.randn(BATCH, width, device=device), torch.randn(width, width, device=device)
    for _ in range(50):
        a @ b
    n = 2000
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        a @ b
    _sync(device)
    return 2.0 * BATCH * width * width * n / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def specs(algo: str, width: int, steps: int, seeds: int, threads: int, device: str) -> list[RunSpec]:
    return [
        RunSpec(
            algo, "plain", seed, steps=steps, warmup=WARMUP, eval_every=steps, hidden=(width, width),
            threads=threads, device=device,
        )
        for seed in range(seeds)
    ]  # fmt: skip


def batched_seconds(work: list[RunSpec]) -> float:
    start = time.perf_counter()
    run_group(work)
    return time.perf_counter() - start


def loop_seconds(work: list[RunSpec]) -> float:
    start = time.perf_counter()
    for spec in work:
        run(spec)
    return time.perf_counter() - start


def sb3_steps_per_s(algo: str, width: int, steps: int, device: str) -> float:
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = RandomEnv()
    kwargs = {"policy_kwargs": {"net_arch": [width, width]}, "learning_starts": WARMUP, "batch_size": BATCH, "seed": 0}
    if algo == "td3":
        noise = NormalActionNoise(np.zeros(ACT), 0.1 * np.ones(ACT))
        model = TD3("MlpPolicy", env, action_noise=noise, device=device, **kwargs)
    else:
        model = SAC("MlpPolicy", env, device=device, **kwargs)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def sbx_worker(algo: str, width: int, steps: int) -> None:
    """In a subprocess (see :func:`sbx_steps_per_s`): print sbx's JIT seconds and steady env-steps/s.

    sbx compiles its update once per model, so the steady state is measured on the model that
    compiled: it trains `steps` (warm-up, compilation, updates), then `steps` more, all updates.
    The same work as the other columns without compilation is the warm-up's time (a model that
    never leaves it) plus the continued run's time per update for the updates."""
    from sbx import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    def model(learning_starts: int) -> Any:
        kwargs = {"policy_kwargs": {"net_arch": [width, width]}, "batch_size": BATCH, "seed": 0}
        if algo == "td3":
            noise = NormalActionNoise(np.zeros(ACT), 0.1 * np.ones(ACT))
            return TD3("MlpPolicy", RandomEnv(), action_noise=noise, learning_starts=learning_starts, **kwargs)
        return SAC("MlpPolicy", RandomEnv(), learning_starts=learning_starts, **kwargs)

    def seconds(learner: Any, total: int, reset: bool = True) -> float:
        start = time.perf_counter()
        learner.learn(total_timesteps=total, reset_num_timesteps=reset)
        return time.perf_counter() - start

    warmup = seconds(model(learning_starts=steps + 1), WARMUP)
    learner = model(learning_starts=WARMUP)
    first = seconds(learner, steps)
    per_update = seconds(learner, steps, reset=False) / steps
    steady = warmup + per_update * (steps - WARMUP)
    print(f"sbx {first - steady:.3f} {steps / steady:.3f}")


_ALL_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_to(threads: int) -> None:
    """Run this process, and the subprocesses it starts, on the first `threads` of its cores (Linux).

    A thread count alone does not hold a library to that many cores: JAX, under XLA's
    single-thread flags, still computes on a second core while Python runs on the first (sbx at
    256x256 loses a third of its speed pinned to one core). Pinned, every column gets the same cores."""
    if _ALL_CORES:
        os.sched_setaffinity(0, _ALL_CORES[: max(1, threads)])


def sbx_steps_per_s(python: str, algo: str, width: int, steps: int, threads: int) -> tuple[float, float]:
    """(sbx's JIT seconds, its steady env-steps/s) measured by `python` in a subprocess whose XLA
    uses `threads` threads; (nan, nan) with the reason on stderr if sbx cannot run there."""
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else ""
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    command = [python, "-m", "benchmarks.speed", "--sbx-worker", f"{algo},{width},{steps}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("sbx ")), None)
    if done.returncode != 0 or line is None:
        print(f"speed: sbx did not run ({(done.stderr.strip().splitlines() or ['?'])[-1]})", file=sys.stderr)
        return float("nan"), float("nan")
    _, jit, rate = line.split()
    return float(jit), float(rate)


def seed_sweep(args: argparse.Namespace, name: str, seed_counts: list[int]) -> None:
    threads = int(args.threads.split(",")[0])
    print(f"{name}, torch {torch.__version__}, {RANDOM_ENV_ID}, {args.steps} steps, batch {BATCH}, {threads} thread(s)")
    header = f"{'algo':<5} {'width':>5} {'seeds':>5} {'seconds':>8} {'x one seed':>10} {'seed-steps/s':>12}"
    print(header)
    print("-" * len(header))
    torch.set_num_threads(threads)
    for algo in args.algos.split(","):
        run_group(specs(algo, 64, WARMUP + 10, 2, threads, args.device))  # one-time costs
        for width in (int(w) for w in args.widths.split(",")):
            one = None
            for count in seed_counts:
                seconds = batched_seconds(specs(algo, width, args.steps, count, threads, args.device))
                one = one or seconds
                print(
                    f"{algo:<5} {width:>5} {count:>5} {seconds:>8.2f} {seconds / one:>9.2f}x "
                    f"{count * args.steps / seconds:>12.0f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="environment steps per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--widths", default="64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--algos", default="td3,sac")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per row; medians are printed")
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3 (not installed)")
    parser.add_argument("--no-sbx", action="store_true", help="skip sbx (JAX; not installed)")
    parser.add_argument("--sbx-python", default=sys.executable, help="the Python that has sbx-rl (default: this one)")
    parser.add_argument("--sbx-worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed-sweep", help="e.g. 1,5,25: time S seeds as one batch against one seed instead")
    args = parser.parse_args()
    if args.sbx_worker:
        algo, width, steps = args.sbx_worker.split(",")
        sbx_worker(algo, int(width), int(steps))
        return
    if args.steps <= WARMUP:
        parser.error(f"--steps must exceed the {WARMUP}-step warm-up")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"{os.cpu_count()} cores"
    if args.seed_sweep:
        seed_sweep(args, name, [int(s) for s in args.seed_sweep.split(",")])
        return
    print(
        f"{name}, torch {torch.__version__}, {RANDOM_ENV_ID}, {args.seeds} seeds x {args.steps} steps, batch {BATCH}; "
        f"throughput in seed-steps/s (env steps summed over seeds, per wall second); medians of {args.repeats} rounds"
    )
    header = (
        f"{'algo':<5} {'width':>5} {'threads':>7} {'batched':>8} {'loop':>7} {'SB3':>6} {'sbx':>6} {'vs loop':>8} "
        f"{'vs SB3':>7} {'vs sbx':>7} {'sbx JIT s':>9} {'GFLOP/s':>8} {'sgemm':>7} {'roofline':>8}"
    )
    print(header)
    print("-" * len(header))
    for algo in args.algos.split(","):
        # One-time costs (the CUDA context, torch.optim's first import of torch._dynamo) would
        # otherwise land in whichever column runs first.
        run_group(specs(algo, 64, WARMUP + 10, 2, 1, args.device))
    for algo in args.algos.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                print(_row(args, algo, width, threads), flush=True)


def _row(args: argparse.Namespace, algo: str, width: int, threads: int) -> str:
    """One table row: every column measured in each of `--repeats` rounds, one after the other
    within a round. A column is its median over the rounds; a ratio is the median of the rounds'
    ratios, each taken between measurements minutes apart at most, so that a shared machine's
    drift between rounds cancels."""
    pin_to(threads)
    torch.set_num_threads(threads)
    work = specs(algo, width, args.steps, args.seeds, threads, args.device)
    seed_steps = args.seeds * args.steps
    rounds: list[dict[str, float]] = []
    for _ in range(args.repeats):
        batched = seed_steps / batched_seconds(work)
        loop = seed_steps / loop_seconds(work)
        sb3 = float("nan") if args.no_sb3 else sb3_steps_per_s(algo, width, args.steps, args.device)
        jit, sbx = (
            (float("nan"), float("nan"))
            if args.no_sbx or not args.device.startswith("cpu")
            else sbx_steps_per_s(args.sbx_python, algo, width, args.steps, threads)
        )
        updates_per_s = batched * (args.steps - WARMUP) / args.steps
        achieved = update_flops(algo, width) * updates_per_s / 1e9
        peak = sgemm_gflops(width, args.device)
        rounds.append(
            {
                "batched": batched, "loop": loop, "sb3": sb3, "sbx": sbx, "jit": jit, "achieved": achieved,
                "peak": peak, "vs loop": batched / loop, "vs sb3": batched / sb3, "vs sbx": batched / sbx,
                "roofline": achieved / peak,
            }
        )  # fmt: skip
    m = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
    return (
        f"{algo:<5} {width:>5} {threads:>7} {m['batched']:>8.0f} {m['loop']:>7.0f} {m['sb3']:>6.0f} {m['sbx']:>6.0f} "
        f"{m['vs loop']:>7.2f}x {m['vs sb3']:>6.2f}x {m['vs sbx']:>6.2f}x {m['jit']:>9.1f} "
        f"{m['achieved']:>8.2f} {m['peak']:>7.1f} {m['roofline']:>8.1%}"
    )


if __name__ == "__main__":
    main()
