"""Measure what the BatchNorm gate's numbers rest on, and how long the gate takes.

    python benchmarks/measure_gate.py learning   # steps for plain TD3/SAC to reach the bar, seeds 0-19
    python benchmarks/measure_gate.py gate       # wall time of `pytest benchmarks/ -k batchnorm -n auto`
    python benchmarks/measure_gate.py gate-jobs  # the gate's training, job by job (its floor on these cores)
    python benchmarks/measure_gate.py seedsets   # the SAC BatchNorm verdict on several seed sets
    python benchmarks/measure_gate.py check      # wall time of `rlcheck check`, defaults: cold, then warm per user net
    python benchmarks/measure_gate.py gate --against main    # the gate of this tree and of main, side by side
    python benchmarks/measure_gate.py check --against main   # cold and warm checks of this tree and main, side by side
    python benchmarks/measure_gate.py probes     # plain nets on every probe: when each reaches its bar
    python benchmarks/measure_gate.py agent      # `check --agent` of a CleanRL-style TD3 vs `check --net` of its nets
    python benchmarks/measure_gate.py trace      # where the gate's wall time goes: start-up, rounds, jobs, processes
    python benchmarks/measure_gate.py trace --nets tests.user_nets:wide_mlp   # ... and a cold and a warm check's

Prints tables; asserts nothing. The figures quoted in benchmarks/test_batchnorm.py come from here.
`learning` and `probes` train calibration seeds (5000 and up, `--first-seed`): never the seeds
the tests and the gate use by default, nor the validity benchmark's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rlcheck.engine.runner import default_workers, run_all
from rlcheck.engine.runs import RunSpec
from rlcheck.front.words import cell_reason
from rlcheck.verdicts.study import Cell, StudyConfig, run_study


def learning(seeds: range) -> None:
    for algo, steps, bar in (("td3", 1000, 28.0), ("sac", 2000, 24.0)):
        specs = [RunSpec(algo, "plain", s, steps=steps) for s in seeds]
        runs = run_all(specs, default_workers())
        first = []
        for r in runs:
            hit = np.flatnonzero(np.asarray(r.eval_returns) >= bar)
            first.append(r.eval_steps[hit[0]] if hit.size else None)
        reached = [f for f in first if f is not None]
        finals = [r.final_return for r in runs]
        print(
            f"{algo}: reached {bar} within {steps} steps on {len(reached)}/{len(runs)} seeds; first step median "
            f"{np.median(reached):.0f}, max {max(reached)}; final return {min(finals):.2f}-{max(finals):.2f}",
            flush=True,
        )


def _time_command(command: list[str], label: str) -> None:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    print(last)
    print(f"{label}: {wall:.1f} s wall on {os.cpu_count()} cores, exit {proc.returncode}")


GATE_COMMAND = [sys.executable, "-m", "pytest", "benchmarks/", "-k", "batchnorm", "-n", "auto", "-q"]
GATE_COMMAND += ["-p", "no:cacheprovider"]


def gate() -> None:
    _time_command(GATE_COMMAND, "pytest benchmarks/ -k batchnorm -n auto")


def _print_jobs(log: Path) -> None:
    """Each job's wall time (runs batched together share it), summed per net: the work to split over the cores."""
    jobs: dict[str, set[tuple[str, float, int]]] = {}
    for line in log.read_text().splitlines():
        run = json.loads(line)
        jobs.setdefault(run["net"], set()).add((run["algo"], run["wall_time_s"], run["batched_with"]))
    for net, times in jobs.items():
        listed = ", ".join(f"{algo} x{n} {t:.1f} s" for algo, t, n in sorted(times, key=lambda j: -j[1]))
        print(f"  {net}: {sum(t for _, t, _ in times):.1f} job-s ({listed})")


def gate_jobs() -> None:
    """The gate's first look (both studies, every net, 5 seeds) over every core, job by job."""
    from test_batchnorm import GATE_CANDIDATES, GATE_WORKERS, study_config

    configs = [study_config(a, candidates=GATE_CANDIDATES[a], workers=GATE_WORKERS) for a in GATE_CANDIDATES]
    specs = [c.spec(cell, net, seed) for c in configs for cell in c.cells for net in c.nets for seed in c.seeds]
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_all(specs, GATE_WORKERS, Path(out) / "runs.jsonl")
        print(f"gate's first look: {time.perf_counter() - start:.1f} s wall on {GATE_WORKERS} workers")
        _print_jobs(Path(out) / "runs.jsonl")


CHECK_NETS = (
    "tests.user_nets:wide_mlp",
    "tests.user_nets:naive_batchnorm",
    "tests.user_nets:layernorm_mlp",
    "tests.user_nets:plain_as_a_class",  # a 64x64 MLP written as a class: fused via torch.fx
)


def check(nets: list[str]) -> None:
    """On a fresh cache: the first call trains the baseline too; every later one reuses it and
    trains only the user's net, whose cost then sets the time."""
    with tempfile.TemporaryDirectory() as cache_dir:
        for i, net in enumerate(nets):
            command = [sys.executable, "-m", "rlcheck", "check", "--net", net, "--out", "/tmp/rlcheck-check-timing"]
            command += ["--quiet", "--cache-dir", cache_dir]
            baseline = "baseline trained" if i == 0 else "baseline from the cache"
            _time_command(command, f"rlcheck check --net {net} (defaults, {baseline})")
            _print_jobs(Path("/tmp/rlcheck-check-timing/runs.jsonl"))
        if len(nets) == 1:
            _time_command(command, f"rlcheck check --net {nets[0]} (defaults, baseline from the cache)")


def _traced(command: list[str]) -> tuple[float, float, list[dict]]:
    """Run `command` with rlcheck's trace on: (start, end, events), wall-clock seconds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.jsonl"
        start = time.time()
        subprocess.run(command, capture_output=True, text=True, env={**os.environ, "RLCHECK_TRACE": str(path)})
        end = time.time()
        events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return start, end, events


def _print_trace(label: str, start: float, end: float, events: list[dict]) -> None:
    """The command's wall time cut into its parts (rlcheck.engine.trace's events)."""
    at = lambda e: e["t"] - start  # noqa: E731
    print(f"\n{label}: {end - start:.1f} s wall on {os.cpu_count()} cores")
    rounds = [e for e in events if e["kind"].startswith("round")]
    if not rounds:
        print("  (no training traced)")
        return
    print(f"  start-up to the first round (interpreter, imports, collection, door checks): {at(rounds[0]):.1f} s")
    opened: dict[int, dict] = {}
    for e in rounds:
        if e["kind"] == "round started":
            opened[e["pid"]] = e
        elif e["pid"] in opened:
            began = opened.pop(e["pid"])
            print(f"  round {at(began):6.1f}-{at(e):6.1f} s: {began['runs']} runs, {began['reused']} reused")
    jobs: dict[int, list[tuple[float, float, str]]] = {}
    started: dict[int, dict] = {}
    for e in events:
        if e["kind"] == "job started":
            started[e["pid"]] = e
        elif e["kind"] == "job finished" and e["pid"] in started:
            began = started.pop(e["pid"])
            jobs.setdefault(e["pid"], []).append((at(began), at(e), began["job"]))
    spawned = {e["child"]: at(e) for e in events if e["kind"] == "process started"}
    busy_total = 0.0
    for pid, done in jobs.items():
        busy = sum(b - a for a, b, _ in done)
        busy_total += busy
        ready = f"started at {spawned[pid]:.1f} s, first job at {done[0][0]:.1f} s" if pid in spawned else "in-process"
        print(f"  process {pid}: {ready}; {len(done)} jobs, busy {busy:.1f} s")
        for a, b, what in done:
            print(f"    {a:6.1f}-{b:6.1f} s  {b - a:5.1f} s  {what[:110]}")
    last = max(b for done in jobs.values() for _, b, _ in done)
    floor = busy_total / max(1, len(jobs))
    print(f"  training: {busy_total:.1f} job-s over {len(jobs)} processes (floor {floor:.1f} s if perfectly packed); "
          f"the last job ends at {last:.1f} s; after it (verdicts, exit) {end - start - last:.1f} s")  # fmt: skip


def trace_commands(nets: list[str]) -> None:
    """Trace the gate, and for each net a cold and a warm `rlcheck check` (fresh cache)."""
    _print_trace("pytest benchmarks/ -k batchnorm -n auto", *_traced(GATE_COMMAND))
    for net in nets:
        with tempfile.TemporaryDirectory() as cache_dir:
            command = [sys.executable, "-m", "rlcheck", "check", "--net", net, "--quiet", "--cache-dir", cache_dir]
            _print_trace(f"rlcheck check --net {net} (cold)", *_traced(command))
            _print_trace(f"rlcheck check --net {net} (warm)", *_traced(command))


NETWORK_PROBES = "constant,observed,delayed,action,track,random"


def agent_vs_net(repeats: int = 3) -> None:
    """A correct 64x64 TD3 checked as a whole agent (tests.agents:make_td3, one seed per job, never
    cached) and as networks (the same MLPs, tests.agents:mlp, seeds batched), on the same probes at
    5 seeds, the reference cached for both; rounds interleaved. Then the agent's whole suite
    (with time-limit)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        base = [sys.executable, "-m", "rlcheck", "check", "--quiet", "--cache-dir", cache_dir, "--algos", "td3"]
        commands = {
            "agent": [*base[:-2], "--agent", "tests.agents:make_td3", "--probes", NETWORK_PROBES],
            "net": [*base, "--net", "tests.agents:mlp", "--probes", NETWORK_PROBES],
        }
        for command in commands.values():  # fills the reference's cache
            subprocess.run(command, capture_output=True, text=True)
        times: dict[str, list[float]] = {what: [] for what in commands}
        for _ in range(repeats):
            for what, command in commands.items():
                start = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True)
                times[what].append(time.perf_counter() - start)
                print(f"  {what}: {times[what][-1]:.1f} s, exit {proc.returncode}", flush=True)
        for what, walls in times.items():
            print(f"check {what} (6 probes, td3, 5 seeds, warm): median {statistics.median(walls):.1f} s, "
                  f"min {min(walls):.1f} s over {repeats} rounds")  # fmt: skip
        ratio = statistics.median(times["agent"]) / statistics.median(times["net"])
        print(f"agent / net: {ratio:.2f}x (medians, side by side, {os.cpu_count()} cores)")
        _time_command([*base[:-2], "--agent", "tests.agents:make_td3"], "check --agent, the whole agent suite")


@contextlib.contextmanager
def _side_by_side(ref: str) -> Iterator[tuple[Path, dict[str, tuple[Path, dict[str, str]]]]]:
    """A scratch folder, and {label: (tree, environment)} for this tree and for git REF (exported
    there): a command run with a tree's environment imports that tree's rlcheck (checked here)."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "ref").mkdir()
        archive = subprocess.run(["git", "archive", ref], capture_output=True, check=True, cwd=here).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch / "ref")], input=archive, check=True)
        trees = {}
        for label, tree in (("this tree", here), (ref, scratch / "ref")):
            env = {**os.environ, "PYTHONPATH": f"{tree}:{here}"}
            where = subprocess.run([sys.executable, "-c", "import rlcheck; print(rlcheck.__file__)"], cwd=scratch,
                                   capture_output=True, text=True, env=env, check=True).stdout  # fmt: skip
            assert where.startswith(str(tree)), f"{label} imports {where}"
            trees[label] = (tree, env)
        yield scratch, trees


def _ratio_line(what: str, times: dict[str, list[float]], ref: str) -> str:
    new, old = (statistics.median(times[label]) for label in ("this tree", ref))
    low_new, low_old = (min(times[label]) for label in ("this tree", ref))
    return (f"{what}: medians this tree {new:.1f} s, {ref} {old:.1f} s: {old / new:.2f}x faster; "
            f"minima {low_new:.1f} s vs {low_old:.1f} s ({len(times[ref])} rounds, {os.cpu_count()} cores)"
            )  # fmt: skip


def gate_against(ref: str, repeats: int = 5) -> None:
    """The gate of this tree and of git REF, interleaved in one run, each from its own tree."""
    times: dict[str, list[float]] = {"this tree": [], ref: []}
    with _side_by_side(ref) as (_, trees):
        for _ in range(repeats):
            for label, (tree, env) in trees.items():
                start = time.perf_counter()
                proc = subprocess.run(GATE_COMMAND, capture_output=True, text=True, env=env, cwd=tree)
                times[label].append(time.perf_counter() - start)
                last = (proc.stdout.strip().splitlines() or [""])[-1][:80]
                print(f"{label:<10} gate {times[label][-1]:6.1f} s  exit {proc.returncode}  {last}", flush=True)
    print(_ratio_line("gate", times, ref))


def check_against(ref: str, net: str, repeats: int = 5) -> None:
    """`rlcheck check --net NET` of this tree and of git REF, interleaved in one run: each round, per
    tree, a cold check (a fresh cache: it trains the baseline too), then a warm one on that cache."""
    cold: dict[str, list[float]] = {"this tree": [], ref: []}
    warm: dict[str, list[float]] = {"this tree": [], ref: []}
    with _side_by_side(ref) as (scratch, trees):
        for round_ in range(repeats):
            for label, (_, env) in trees.items():
                cache = scratch / f"cache-{label}-{round_}"
                for state, times in (("cold (trains the baseline)", cold), ("warm", warm)):
                    out = scratch / f"out-{label}-{round_}"
                    command = [sys.executable, "-m", "rlcheck", "check", "--net", net, "--out", str(out), "--quiet"]
                    start = time.perf_counter()
                    proc = subprocess.run(  # from the scratch folder: the current directory would shadow PYTHONPATH
                        [*command, "--cache-dir", str(cache)], capture_output=True, text=True, env=env, cwd=scratch
                    )
                    wall = time.perf_counter() - start
                    last = (proc.stdout.strip().splitlines() or [""])[-1][:100]
                    print(f"{label:<10} {state:<27} {wall:6.1f} s  exit {proc.returncode}  {last}", flush=True)
                    times[label].append(wall)
    print(_ratio_line(f"cold check of {net}", cold, ref))
    print(_ratio_line(f"warm check of {net}", warm, ref))


def _first_step_and_final(steps: list[int], curve: np.ndarray, reached: np.ndarray) -> tuple[int | None, float]:
    hit = np.flatnonzero(reached)
    return (steps[hit[0]] if hit.size else None), float(curve[-1])


def probes(seeds: range) -> None:
    from test_probes import PROBE_BARS

    from rlcheck.verdicts.check import PROBES_BY_NAME

    for (name, algo), (steps, bar) in PROBE_BARS.items():
        probe = PROBES_BY_NAME[name]
        cell = probe.cell(algo)
        specs = [
            RunSpec(algo, "plain", s, env_id=cell.env_id, steps=2 * steps, warmup=cell.warmup,
                    eval_every=cell.eval_every, eval_episodes=cell.eval_episodes)
            for s in seeds
        ]  # fmt: skip
        firsts, finals, at_budget = [], [], []
        for r in run_all(specs, default_workers()):
            if probe.metric == "value_error":
                curve = np.asarray(r.eval_value_errors)
                reached = curve <= bar
            else:
                curve = np.asarray(r.eval_returns)
                reached = curve >= bar
            first, final = _first_step_and_final(r.eval_steps, curve, reached)
            firsts.append(first)
            finals.append(final)
            at_budget.append(float(curve[r.eval_steps.index(steps)]))
        reached_by = [f for f in firsts if f is not None]
        print(
            f"{name:<9} {algo}: {probe.metric} bar {bar:g}: reached on {len(reached_by)}/{len(specs)} seeds, "
            f"last first-step {max(reached_by) if reached_by else '-'}; at the budget {steps}: "
            f"{min(at_budget):.3f}..{max(at_budget):.3f}; at {2 * steps}: {min(finals):.3f}..{max(finals):.3f}",
            flush=True,
        )


def seedsets(starts: list[int]) -> None:
    for start in starts:
        config = StudyConfig(
            cells=(Cell("sac"),),
            seeds=tuple(range(start, start + 5)),
            max_seeds=15,
            workers=default_workers(),
            threads=1,
        )
        result = run_study(config)
        (c,) = result.comparisons
        print(f"seeds from {start}: {c.stats.n_candidate} seeds -> {c.outcome}: {cell_reason(c)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "what", choices=["learning", "gate", "gate-jobs", "seedsets", "check", "probes", "agent", "trace"]
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=5000, help="for learning/probes: calibration seeds")
    parser.add_argument("--against", help="for `gate` and `check`: a git ref to time side by side with this tree")
    parser.add_argument("--starts", default="0,100,200,300,1000,3000")
    parser.add_argument("--nets", default=",".join(CHECK_NETS), help="for `check`; the first trains the baseline")
    args = parser.parse_args()
    if args.what == "learning":
        learning(range(args.first_seed, args.first_seed + args.seeds))
    elif args.what == "gate" and args.against:
        gate_against(args.against)
    elif args.what == "gate":
        gate()
    elif args.what == "gate-jobs":
        gate_jobs()
    elif args.what == "check" and args.against:
        check_against(args.against, args.nets.split(",")[0])
    elif args.what == "check":
        check(args.nets.split(","))
    elif args.what == "agent":
        agent_vs_net()
    elif args.what == "trace":
        trace_commands(args.nets.split(",") if args.nets != ",".join(CHECK_NETS) else [])
    elif args.what == "probes":
        probes(range(args.first_seed, args.first_seed + args.seeds))
    else:
        seedsets([int(s) for s in args.starts.split(",")])
