"""The agent check's validity: does `rlcheck check --agent` fail each broken agent on the probe
that isolates its bug, and no correct agent anywhere? (docs/preregistration-agents.md)

    python -m benchmarks.agent_validity                      # the pre-registered sets, resumable
    python -m benchmarks.agent_validity --sets 0 --agents cleanrl-td3,td3-actor-loss-sign

Each correct agent is checked on the whole agent suite, as a user's check runs; each broken one on
each probe its bug is mapped to, one cell at a time at the error levels of the whole suite (as
the pytest plugin judges a cell). Both with the gate's defaults: 5 seeds doubling while undecided.
Answers are kept in OUT/SET/LABEL[-PROBE].json and reused when the command is repeated; the
reference's runs are cached in OUT/cache.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import default_workers
from rlcheck.errors import UsageError
from rlcheck.front.api import execute_check, known, prepare_check
from rlcheck.front.words import cell_reason
from rlcheck.requests import CheckRequest, parse_names
from rlcheck.verdicts.check import PROBES_BY_NAME
from rlcheck.verdicts.study import versions

# Pre-registered (docs/preregistration-agents.md): the first five multiples of 1000 from 70000,
# each 5 seeds growing to +39. Nothing in the repository had used a seed from 70000 up.
SEED_SETS = (70000, 71000, 72000, 73000, 74000)


@dataclass(frozen=True)
class PanelAgent:
    label: str
    factory: str
    probes: tuple[str, ...] = ()  # the probes its bug is mapped to; () for a correct agent

    @property
    def correct(self) -> bool:
        return not self.probes


def _both(bug: str, factory: str, probes: tuple[str, ...]) -> tuple[PanelAgent, ...]:
    return tuple(PanelAgent(f"{algo}-{bug}", f"tests.agents:make_{algo}_{factory}", probes) for algo in ("td3", "sac"))


PANEL: tuple[PanelAgent, ...] = (
    PanelAgent("cleanrl-td3", "tests.agents:make_td3"),
    PanelAgent("cleanrl-sac", "tests.agents:make_sac"),
    PanelAgent("sb3-td3", "tests.sb3_agents:make_td3"),
    PanelAgent("sb3-sac", "tests.sb3_agents:make_sac"),
    *_both("bootstraps-terminal", "bootstrapping_terminal", ("constant", "delayed")),
    *_both("frozen-target", "frozen_target", ("delayed",)),
    *_both("actor-loss-sign", "actor_loss_sign", ("action", "track", "random")),
    *_both("truncation-as-termination", "truncation_as_termination", ("time-limit",)),
)
AGENTS = {a.label: a for a in PANEL}


def check_one(agent: PanelAgent, probe: str | None, start: int, out: Path, cache: RunCache, workers: int) -> dict:
    """One check of one agent on one seed set (on one probe's cell, or the whole suite), resumed
    from its answer if one is kept; the answer as a dict."""
    folder = out / str(start)
    folder.mkdir(parents=True, exist_ok=True)
    name = agent.label if probe is None else f"{agent.label}-{probe}"
    answered = folder / f"{name}.json"
    if answered.exists():
        return json.loads(answered.read_text())
    request = CheckRequest.of(None, agent=agent.factory, seeds=tuple(range(start, start + 5)), workers=workers)
    prepared = prepare_check(request)
    cells = None
    if probe is not None:
        env_id = PROBES_BY_NAME[probe].env_id
        cells = [c for c in prepared.config.cells if c.env_id == env_id]
    result = execute_check(prepared, cache=cache, cells=cells)
    comparisons = result.study.comparisons
    answer = {
        "outcome": result.outcome,
        "cells": {c.cell.label: c.outcome for c in comparisons},
        "not_pass": {c.cell.label: f"{c.outcome}: {cell_reason(c)}" for c in comparisons if c.outcome != "pass"},
        "seeds": max(max(c.stats.n_candidate, c.extended.n_candidate if c.extended else 0) for c in comparisons),
    }
    answered.write_text(json.dumps(answer, indent=2))
    return answer


def upper_bound(k: int, n: int) -> int:
    """One-sided exact 95% upper bound of a rate seen k times in n, in percent, rounded up."""
    return 100 if k == n else math.ceil(100 * float(stats.beta.ppf(0.95, k + 1, n - k)))


def report(answers: dict[tuple[str, str | None, int], dict], starts: list[int]) -> dict[str, int]:
    v = versions()
    print(f"rlcheck agent validity: {v['processor']}, torch {v['torch']}, python {v['python']}")
    print(f"seed sets (5 seeds each, doubling while undecided): {', '.join(map(str, starts))}\n")
    keys = sorted({(label, probe) for label, probe, _ in answers}, key=lambda k: (list(AGENTS).index(k[0]), k[1] or ""))
    width = max(len(f"{label} {probe or 'suite'}") for label, probe in keys) + 2
    print(f"{'agent / probe':<{width}} {'group':<8} " + " ".join(f"{s:>14}" for s in starts))
    for label, probe in keys:
        group = "correct" if AGENTS[label].correct else "broken"
        row = [f"{answers[(label, probe, s)]['outcome']} ({answers[(label, probe, s)]['seeds']})" for s in starts]
        print(f"{label + ' ' + (probe or 'suite'):<{width}} {group:<8} " + " ".join(f"{c:>14}" for c in row))
    print("(outcome (most seeds any cell reached))\n")
    correct = [a for (label, _, _), a in answers.items() if AGENTS[label].correct]
    broken = [a for (label, _, _), a in answers.items() if not AGENTS[label].correct]
    counts = {
        "correct checks": len(correct),
        "correct failed": sum(a["outcome"] == "fail" for a in correct),
        "correct undecided": sum(a["outcome"] == "undecided" for a in correct),
        "correct slower": sum(a["outcome"] == "slower" for a in correct),
        "broken checks": len(broken),
        "broken failed": sum(a["outcome"] == "fail" for a in broken),
        "broken undecided": sum(a["outcome"] == "undecided" for a in broken),
    }
    c, b = counts["correct checks"], counts["broken checks"]
    if c:
        print(f"correct agents failed: {counts['correct failed']} of {c} suite checks "
              f"(one-sided 95% upper bound {upper_bound(counts['correct failed'], c)}%); slower "
              f"{counts['correct slower']}, undecided {counts['correct undecided']}")  # fmt: skip
    if b:
        missed = b - counts["broken failed"]
        bound = upper_bound(missed, b)
        print(f"broken agents not failed on their probe: {missed} of {b} (agent, probe) checks "
              f"(one-sided 95% upper bound {bound}%); undecided {counts['broken undecided']}")  # fmt: skip
    for what, wrong in (
        ("sets with a correct agent failed", lambda label, a: AGENTS[label].correct and a["outcome"] == "fail"),
        ("sets with a broken agent not failed", lambda label, a: not AGENTS[label].correct and a["outcome"] != "fail"),
    ):
        hit = {start for (label, _, start), a in answers.items() if wrong(label, a)}
        print(f"{what}: {len(hit)} of {len(starts)} (one-sided 95% upper bound {upper_bound(len(hit), len(starts))}%)")
    print("\ncells that did not pass:")
    for (label, _, start), a in answers.items():
        for cell, why in a["not_pass"].items():
            print(f"  {label} @{start} {cell}: {why[:200]}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="first seeds of the sets (default: the pre-registered ones)")
    parser.add_argument("--agents", help=f"from the panel's: {', '.join(AGENTS)}")
    parser.add_argument("--out", type=Path, default=Path("rlcheck-agent-validity"))
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    try:
        starts = [int(s) for s in args.sets.split(",")] if args.sets else list(SEED_SETS)
        labels = known(parse_names(args.agents or ",".join(AGENTS), "--agents"), list(AGENTS), "agent", "--agents")
    except (UsageError, ValueError) as exc:
        sys.exit(f"agent_validity: {exc}")
    if any(5000 <= s < 6000 for s in starts):
        sys.exit("agent_validity: seeds 5000-5999 are calibration seeds; choose sets elsewhere")
    args.out.mkdir(parents=True, exist_ok=True)
    cache = RunCache(args.out / "cache")
    answers: dict[tuple[str, str | None, int], dict] = {}
    for start in starts:
        for label in labels:
            agent = AGENTS[label]
            for probe in agent.probes or (None,):
                print(f"agent_validity: {label} {probe or 'suite'} on seeds {start}+ ...", file=sys.stderr, flush=True)
                answers[(label, probe, start)] = check_one(agent, probe, start, args.out, cache, args.workers)
    report(answers, starts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
