"""Where a training step's time goes, and the fastest steps that eager PyTorch allows (prints a table).

    python -m benchmarks.step_floor [--algos td3,sac] [--widths 64,256] [--seeds 5] [--threads 1] [--repeats 3]
                                    [--compiled]

For each row it trains S seeds of plain TD3 or SAC on RandomEnv (batch 256, as
``benchmarks/speed.py``) and measures, per training step of all seeds after the warm-up:

* **step**: the wall time of a whole step (acting, the environments, replay, one update);
* **matmul**: its matrix multiplies (``bmm``, ``baddbmm``, ``mm``, ``addmm``), each shape as
  often as a step calls it (counted with torch's profiler), each timed alone in a tight loop
  with torch's own kernels at the row's thread count: the FLOPs the algorithm needs, at the
  speed this machine's sgemm gives them;
* **B=1 update**: one update of the same agent on replay batches of one transition per seed:
  the same operator calls, with almost no data. What it costs is Python, operator dispatch,
  autograd's bookkeeping and each kernel's fixed cost -- what eager execution adds whatever the
  batch, and what no faster kernel can remove;
* **rest**: step - matmul - B=1 update: element-wise kernels, reductions and copies over the
  batch, and acting and the environments.

With ``--compiled``, "compiled" is the step with the agent's update under ``torch.compile``
(inductor, this torch's defaults) and "compile s" the seconds its first updates took to compile:
what whole-update compilation makes of the update as written. Adam's fused kernel, the target
updates and the per-seed noise draws stay eager (Dynamo cannot trace the first, and the others
would recompile every step); ``backward()`` splits the rest into graphs that AOTAutograd
compiles forward and backward.

"floor" is the seed-steps/s of a step that did only its matrix multiplies (what a compiler that
fused everything else into them could approach); "eager floor" that of a step that did only its
matrix multiplies and its B=1 update (what any step that keeps eager mode's operator calls is
bound by, were all its other kernels free; it counts the multiplies' own fixed cost twice and
leaves out acting and the environments, small both). "sbx" is sbx-rl's steady state on one seed in a
subprocess with XLA on the same thread count, on the same cores (``benchmarks/speed.py``'s column, measured in
this run); the "x sbx" columns put the step and its floors against it. Each row is measured in
``--repeats`` rounds (default 3); every column prints its median, a ratio the median of the
rounds' ratios. Asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import rlcheck.algos.common
import rlcheck.algos.sac
import rlcheck.algos.td3
import rlcheck.engine.training
from benchmarks.speed import WARMUP, pin_to, sbx_steps_per_s, specs
from rlcheck.engine.training import train_seeds
from rlcheck.envs import RANDOM_ENV_ID

MATMULS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")


def _matmul_calls(events: list) -> dict[tuple[str, str], int]:
    """(operator, input shapes) -> calls, for the matrix multiplies among profiled events."""
    return {(e.key, str(e.input_shapes)): e.count for e in events if e.key in MATMULS}


def _time_alone(op: str, shapes: str, threads: int, calls: int = 200) -> float:
    """Seconds per call of one matrix multiply of these shapes, on fresh contiguous tensors."""
    torch.set_num_threads(threads)
    tensors = [torch.randn(*shape) if shape else 1.0 for shape in ast.literal_eval(shapes)]
    kernel = getattr(torch, op.removeprefix("aten::"))
    args = tensors[:3] if op in ("aten::baddbmm", "aten::addmm") else tensors[:2]
    for _ in range(20):
        kernel(*args)
    start = time.perf_counter()
    for _ in range(calls):
        kernel(*args)
    return (time.perf_counter() - start) / calls


def matmuls_per_step(algo: str, width: int, seeds: int, threads: int, steps: int = 20) -> dict[tuple[str, str], float]:
    """How often a training step after the warm-up calls each matrix multiply, by shapes: counted
    over `steps` steps (even: TD3 updates its actor every second one), a profile of them all
    would not fit in memory."""
    torch.set_num_threads(threads)
    counted = []
    for n in (WARMUP + steps, WARMUP):
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            train_seeds(specs(algo, width, n, seeds, threads, "cpu"))
        counted.append(_matmul_calls(list(prof.key_averages(group_by_input_shape=True))))
    after, warmup = counted
    return {key: (n - warmup.get(key, 0)) / steps for key, n in after.items()}


def step_seconds(algo: str, width: int, seeds: int, steps: int, threads: int) -> float:
    """Wall seconds per training step of all seeds after the warm-up."""
    torch.set_num_threads(threads)
    walls = []
    for n in (steps, WARMUP):
        start = time.perf_counter()
        train_seeds(specs(algo, width, n, seeds, threads, "cpu"))
        walls.append(time.perf_counter() - start)
    return (walls[0] - walls[1]) / (steps - WARMUP)


@contextlib.contextmanager
def compiled_updates() -> Iterator[None]:
    """Within it, every agent ``train_seeds`` builds has its update under ``torch.compile``
    (with the eager islands the module docstring names)."""
    build_agent = rlcheck.engine.training.build_agent
    patched = [
        (rlcheck.algos.common.Adam, "step"),
        (rlcheck.algos.common.SeedNoise, "_draw"),
        (rlcheck.algos.td3, "update_target"),
        (rlcheck.algos.sac, "update_target"),
    ]
    saved = [getattr(owner, name) for owner, name in patched]

    def build_compiled(*args, **kwargs):  # type: ignore[no-untyped-def]
        agent = build_agent(*args, **kwargs)
        agent.update = torch.compile(agent.update)
        return agent

    torch._dynamo.reset()  # every agent compiles afresh (inductor's on-disk cache may still hold its kernels)
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = 64  # the update's graphs, and their variants for the first updates
    try:
        for (owner, name), original in zip(patched, saved, strict=True):
            setattr(owner, name, torch.compiler.disable(original))
        rlcheck.engine.training.build_agent = build_compiled
        yield
    finally:
        torch._dynamo.config.recompile_limit = limit
        rlcheck.engine.training.build_agent = build_agent
        for (owner, name), original in zip(patched, saved, strict=True):
            setattr(owner, name, original)


def compiled_step_seconds(algo: str, width: int, seeds: int, steps: int, threads: int) -> tuple[float, float]:
    """(seconds its first updates spent compiling, wall seconds per step after them) with the update
    compiled. Both from one run of each kind, timed at its evaluations: the 50 updates after the
    warm-up, compiled, minus the same 50 eager, are the compilation; the steps after them, its speed."""
    torch.set_num_threads(threads)
    first_timed = WARMUP + 50
    runs = [replace(spec, eval_every=first_timed) for spec in specs(algo, width, steps, seeds, threads, "cpu")]
    stamps: dict[str, dict[int, float]] = {"eager": {}, "compiled": {}}
    for kind in stamps:
        with compiled_updates() if kind == "compiled" else contextlib.nullcontext():
            train_seeds(runs, on_eval=lambda agent, step, kind=kind: stamps[kind].setdefault(step, time.perf_counter()))
    eager, compiled = stamps["eager"], stamps["compiled"]
    compile_s = (compiled[first_timed] - compiled[0]) - (eager[first_timed] - eager[0])
    return compile_s, (compiled[steps] - compiled[first_timed]) / (steps - first_timed)


def batch_of_one_update_seconds(algo: str, width: int, seeds: int, threads: int, updates: int = 300) -> float:
    """Seconds per update of a trained agent on replay batches of one transition per seed."""
    torch.set_num_threads(threads)
    agent, buffer, _ = train_seeds(specs(algo, width, WARMUP + 10, seeds, threads, "cpu"))
    batches = [buffer.sample(1, agent.noise) for _ in range(50)]
    for batch in batches[:20]:
        agent.update(batch)
    start = time.perf_counter()
    for i in range(updates):
        agent.update(batches[i % len(batches)])
    return (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", default="td3,sac")
    parser.add_argument("--widths", default="64,256")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000, help="environment steps per seed (the first 250 warm up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per row; medians are printed")
    parser.add_argument("--compiled", action="store_true", help="also time the step with its update compiled")
    parser.add_argument("--no-sbx", action="store_true", help="skip sbx (JAX; not installed)")
    parser.add_argument("--sbx-python", default=sys.executable, help="the Python that has sbx-rl (default: this one)")
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.error(f"--steps must exceed the {WARMUP}-step warm-up")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    pin_to(args.threads)  # sbx, in its subprocess, too
    print(
        f"{os.cpu_count()} cores, torch {torch.__version__}, {RANDOM_ENV_ID}, {args.seeds} seeds, batch 256, "
        f"{args.threads} thread(s); ms per training step of all seeds after the warm-up; seed-steps/s; "
        f"medians of {args.repeats} rounds"
    )
    header = (
        f"{'algo':<5} {'width':>5} {'step':>6} {'matmul':>6} {'B=1 update':>10} {'rest':>6} "
        f"{'seed-steps/s':>12} {'eager floor':>11} {'floor':>6} {'sbx':>5} "
        f"{'x sbx':>6} {'eager floor x sbx':>17} {'floor x sbx':>11}"
        + (f" {'compiled':>8} {'compile s':>9} {'compiled x sbx':>14}" if args.compiled else "")
    )
    print(header)
    print("-" * len(header))
    for algo in args.algos.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            train_seeds(specs(algo, width, WARMUP + 10, args.seeds, args.threads, "cpu"))  # one-time costs
            calls = matmuls_per_step(algo, width, args.seeds, args.threads)
            compile_s = float("nan")
            rounds = []
            for _ in range(args.repeats):
                step = step_seconds(algo, width, args.seeds, args.steps, args.threads)
                matmul = sum(n * _time_alone(*key, args.threads) for key, n in calls.items())
                eager = batch_of_one_update_seconds(algo, width, args.seeds, args.threads)
                sbx = (
                    float("nan")
                    if args.no_sbx
                    else sbx_steps_per_s(args.sbx_python, algo, width, args.steps, args.threads)[1]
                )
                compiled = float("nan")
                if args.compiled:
                    first_compile_s, compiled = compiled_step_seconds(algo, width, args.seeds, args.steps, args.threads)
                    compile_s = first_compile_s if np.isnan(compile_s) else compile_s  # the first round's: the coldest
                rate, floor, eager_floor = (args.seeds / t for t in (step, matmul, matmul + eager))
                ratios = (rate / sbx, eager_floor / sbx, floor / sbx, args.seeds / compiled / sbx)
                rounds.append(
                    (step, matmul, eager, step - matmul - eager, rate, eager_floor, floor, sbx, *ratios, compiled)
                )
            medians = [float(np.median(column)) for column in zip(*rounds, strict=True)]
            step, matmul, eager, rest, rate, eager_floor, floor, sbx, *ratios, compiled = medians
            vs_sbx, eager_vs_sbx, floor_vs_sbx, compiled_vs_sbx = ratios
            print(
                f"{algo:<5} {width:>5} {step * 1e3:>6.2f} {matmul * 1e3:>6.2f} {eager * 1e3:>10.2f} {rest * 1e3:>6.2f} "
                f"{rate:>12.0f} {eager_floor:>11.0f} {floor:>6.0f} {sbx:>5.0f} "
                f"{vs_sbx:>5.2f}x {eager_vs_sbx:>16.2f}x {floor_vs_sbx:>10.2f}x"
                + (f" {compiled * 1e3:>8.2f} {compile_s:>9.1f} {compiled_vs_sbx:>13.2f}x" if args.compiled else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
