"""Record, then compare, the exact results of a panel of training runs: for changes meant to leave
every bit as it was (a faster step, a refactor of the engine).

    python -m benchmarks.bit_panel record panel.pkl    # on the code before the change
    python -m benchmarks.bit_panel compare panel.pkl   # on the code after it, same machine

The panel: TD3, SAC and CrossQ with the built-in nets (plain; BatchNorm, naive and mode-aware;
LayerNorm; CrossQ's BatchRenorm) and three user nets from tests/user_nets.py (a residual block, a
forward that branches on the mode, a custom forward), on RandomEnv and ActionReward, seeds 3-5
trained as one stack, and seed 4 trained alone. For each it keeps the learning curves, the value
errors and a SHA-256 of every tensor the trained agent holds. Bits depend on the machine, its
thread count and torch's version: record and compare on the same ones. Prints what differs;
exits 1 if anything does.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import torch

from rlcheck.algos import Agent
from rlcheck.engine.runs import RunSpec
from rlcheck.engine.training import train_seeds

ENVS = ("rlcheck/RandomEnv-v0", "rlcheck/ActionReward-v0")
USER_NETS = ("tests.user_nets:residual", "tests.user_nets:mode_branch", "tests.user_nets:custom_forward")
SEEDS = (3, 4, 5)


def panel() -> list[list[RunSpec]]:
    """Each entry: the specs of one stack (runs that differ only in their seed)."""
    stacks = []
    for algo in ("td3", "sac", "crossq"):
        nets = ("batchrenorm",) if algo == "crossq" else ("plain", "batchnorm", "layernorm", *USER_NETS)
        for net in nets:
            for modes in ("naive", "mode-aware") if net == "batchnorm" else ("naive",):
                for env_id in ENVS:
                    run = RunSpec(algo, net, 0, env_id=env_id, steps=400, warmup=100, eval_every=100, modes=modes)
                    stacks.append([replace(run, seed=seed, threads=1) for seed in SEEDS])
    return stacks


def digest(agent: Agent) -> str:
    """SHA-256 of every parameter, buffer and tensor the agent holds, in a fixed order."""
    sha = hashlib.sha256()
    for value in vars(agent).values():
        tensors = value.state_dict().values() if isinstance(value, torch.nn.Module) else [value]
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


def measure() -> dict[tuple, object]:
    results: dict[tuple, object] = {}
    for specs in panel():
        key = (specs[0].algo, specs[0].net, specs[0].env_id, specs[0].modes)
        agent, _, runs = train_seeds(specs)
        results[key] = ([r.eval_returns for r in runs], [r.eval_value_errors for r in runs], digest(agent))
        _, _, (alone,) = train_seeds(specs[1:2])
        results[(*key, "seed alone")] = alone.eval_returns
        print(".", end="", flush=True)
    print()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    if args.action == "compare" and not args.file.exists():
        parser.error(f"{args.file} does not exist: record it first, on the code before the change")
    results = measure()
    if args.action == "record":
        args.file.write_bytes(pickle.dumps(results))
        print(f"recorded {len(results)} results in {args.file}")
        return
    recorded = pickle.loads(args.file.read_bytes())
    differ = [key for key, value in recorded.items() if results.get(key) != value]
    for key in differ:
        print("differs:", *key)
    print(f"{len(recorded) - len(differ)} of {len(recorded)} identical")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
