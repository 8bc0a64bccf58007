"""Record, then re-judge, the verdicts of a few small checks and studies: for changes meant to
leave every number and outcome as it was (a restructure of the verdicts or the front).

    python -m benchmarks.verdict_golden record     # trains the cases, writes tests/golden/
    python -m benchmarks.verdict_golden compare    # re-judges the stored runs with this code

``record`` runs each case through the command line (one worker, no cache) and keeps its
``runs.jsonl`` and, from its ``results.json``, every comparison's numbers, verdicts and outcome
and the check's outcome (``tests/golden/verdicts.json``); prose is left out, so that moving or
rewording it changes nothing here. ``compare`` judges the stored runs again (resumed: nothing is
trained) and prints what differs; tests/test_golden.py does the same in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"

# name -> the arguments of `rlcheck` (a study) or `rlcheck check`. Small enough to train in
# minutes, wide enough to reach every outcome, seed growth and training on.
CASES: dict[str, list[str]] = {
    "check-naive-batchnorm": [
        "check", "--net", "benchmarks.validity_nets:naive_batchnorm", "--probes", "action,constant", "--seeds", "3",
    ],
    "check-one-hidden": [
        "check", "--net", "benchmarks.validity_nets:one_hidden_64", "--probes", "action,delayed,track",
        "--seeds", "3",
    ],
    "check-split-critic": [
        "check", "--critic-net", "benchmarks.validity_nets:relu_output_critic", "--probes", "observed,random",
        "--seeds", "3", "--algos", "td3",
    ],
    "study-batchnorm": ["--nets", "plain,batchnorm", "--seeds", "3", "--steps", "800", "--eval-every", "50"],
}  # fmt: skip
COMMON = ["--workers", "1", "--quiet"]
PROSE = ("reason", "findings", "note")


def without_prose(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_prose(v) for k, v in value.items() if k not in PROSE}
    if isinstance(value, list):
        return [without_prose(v) for v in value]
    return value


def verdicts_of(results: dict[str, Any]) -> dict[str, Any]:
    """What a golden file keeps of a results.json: numbers and outcomes, no prose."""
    kept: dict[str, Any] = {"comparisons": without_prose(results["comparisons"])}
    if "check" in results:
        check = results["check"]
        kept["check"] = {k: check[k] for k in ("outcome", "passed", "undecided", "slower", "cells")}
    return kept


def differences(golden: Any, now: Any, where: str = "") -> list[str]:
    """Where `now` differs from `golden`. Keys that `now` adds are not differences: a later
    version may report more, as long as every number and outcome recorded is as it was."""
    if isinstance(golden, dict) and isinstance(now, dict):
        return [d for key in golden for d in differences(golden[key], now.get(key, "<missing>"), f"{where}.{key}")]
    if isinstance(golden, list) and isinstance(now, list) and len(golden) == len(now):
        return [d for i, (g, n) in enumerate(zip(golden, now, strict=True)) for d in differences(g, n, f"{where}[{i}]")]
    return [] if golden == now else [f"{where}: {golden!r} recorded, {now!r} now"]


def record() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    golden = {}
    for name, argv in CASES.items():
        with tempfile.TemporaryDirectory() as out:
            extra = ["--no-cache"] if argv[:1] == ["check"] else []
            command = [sys.executable, "-m", "rlcheck", *argv, *COMMON, *extra, "--out", out, "--json"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                sys.exit(f"{name}: exit {done.returncode}\n{done.stderr}")
            shutil.copy(Path(out) / "runs.jsonl", GOLDEN / f"{name}.runs.jsonl")
            golden[name] = verdicts_of(json.loads((Path(out) / "results.json").read_text()))
            print(f"{name}: {golden[name].get('check', {}).get('outcome', 'study')}", flush=True)
    (GOLDEN / "verdicts.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(golden)} cases in {GOLDEN}")


def rejudge(name: str, out: Path) -> dict[str, Any]:
    """The verdicts of case `name`, judged again from its stored runs (copied into `out`).

    A run's spec holds the torch threads it trained with (one worker: every core of the
    recording machine); the copy says this machine's, so that resuming finds every run."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}  # a command as a user runs it
    threads = max(1, os.cpu_count() or 1)  # rlcheck.engine.runner.threads_per_worker(1) in that environment
    lines = (GOLDEN / f"{name}.runs.jsonl").read_text().splitlines()
    runs = [json.dumps({**json.loads(line), "threads": threads}) for line in lines if line.strip()]
    (out / "runs.jsonl").write_text("\n".join(runs) + "\n")
    argv = CASES[name]
    command = [sys.executable, "-m", "rlcheck", *argv, *COMMON, "--resume", "--out", str(out), "--json"]
    if argv[:1] == ["check"]:
        command += ["--no-cache"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{name}: exit {done.returncode}\n{done.stderr}")
    return verdicts_of(json.loads((out / "results.json").read_text()))


def compare() -> int:
    golden = json.loads((GOLDEN / "verdicts.json").read_text())
    differ = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in CASES:
            found = differences(golden[name], rejudge(name, Path(scratch) / name))
            if found:
                differ.append(name)
                print(f"differs: {name}:", *found[:10], sep="\n  ")
    print(f"{len(CASES) - len(differ)} of {len(CASES)} cases identical")
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("record", "compare"))
    args = parser.parse_args()
    if args.action == "record":
        record()
    else:
        sys.exit(compare())


if __name__ == "__main__":
    main()
