"""Each pre-registered panel net's true effect per cell, measured once before the validity run.

    python -m benchmarks.preregistered_effects [--out rlcheck-effects] [--nets a,b]

For every net of benchmarks/preregistered_nets.py: the check's study (every probe, TD3 and SAC)
on calibration seeds 5100-5149 at once -- 50 seeds per group, no seed growth, no training on --
and per cell the effect in tolerances: the drop (baseline mean - candidate mean), the spread's
excess over 2x the baseline's, the excess jump, and the share of collapsed seeds. A net whose
every drop and excess is at most 0.5 tolerance and none of whose seeds collapsed counts as
correct in the validity run; one with a drop or excess of at least 2 tolerances in some cell,
or more than 1% collapsed seeds there, counts as broken; any other is reported and counted in
neither (docs/preregistration.md). Prints a table and merges each net into
benchmarks/preregistered_effects.json as it is measured (nets already there are skipped);
resumable from `--out`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from benchmarks.preregistered_nets import PANEL
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import default_workers
from rlcheck.verdicts.check import NetUnderTest, check_config, fitting_algos, parse_probes
from rlcheck.verdicts.stats import COLLAPSE_SHARE
from rlcheck.verdicts.study import run_study

CALIBRATION = tuple(range(5100, 5150))
# The effects measured so far, committed: a net found here is not measured again (the
# measurement takes a quarter of an hour per net on 2 cores, so it spans sessions).
RECORD = Path(__file__).with_name("preregistered_effects.json")
CORRECT_AT_MOST, BROKEN_AT_LEAST = 0.5, 2.0


def effects_of(label: str, nets: dict[str, str], out: Path, cache: RunCache, workers: int) -> dict[str, dict]:
    net = NetUnderTest.of(**nets)
    algos, _ = fitting_algos(net, ("td3", "sac"), parse_probes("all")[0].env_id)
    config = check_config(net, algos=algos, seeds=CALIBRATION, max_seeds=len(CALIBRATION), slower_budget=1,
                          workers=workers)  # fmt: skip
    config = dataclasses.replace(config, stop_when_flagged=False)  # the effects need every cell, not the first fail
    study = run_study(config, out / f"{label}.jsonl", resume=True, cache=cache)
    cells = {}
    for c in study.comparisons:
        s, t = c.stats, c.stats.tolerance
        cells[c.cell.label] = {
            "drop": s.drop / t,
            "spread": s.excess_spread / t,
            "jump": s.excess_jump / t,
            "collapsed": len(s.collapsed_seeds) / s.n_candidate,
        }
    return cells


def group_of(cells: dict[str, dict]) -> str:
    worst = max(max(v["drop"], v["spread"], v["jump"]) for v in cells.values())
    collapsed = max(v["collapsed"] for v in cells.values())
    if worst <= CORRECT_AT_MOST and collapsed == 0:
        return "correct"
    if worst >= BROKEN_AT_LEAST or collapsed > COLLAPSE_SHARE:
        return "broken"
    return "neither"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("rlcheck-effects"))
    parser.add_argument("--record", type=Path, default=RECORD, help="the committed effects, merged net by net")
    parser.add_argument("--nets", help="labels from the panel (default: all)")
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    chosen = set(args.nets.split(",")) if args.nets else {label for label, _, _ in PANEL}
    args.out.mkdir(parents=True, exist_ok=True)
    cache = RunCache(args.out / "cache")
    found = json.loads(args.record.read_text()) if args.record.exists() else {}
    for label, expected_correct, nets in PANEL:
        if label not in chosen or label in found:
            continue
        cells = effects_of(label, nets, args.out, cache, args.workers)
        group = group_of(cells)
        found[label] = {"expected": "correct" if expected_correct else "broken", "group": group, "cells": cells}
        worst = max(cells, key=lambda k: max(cells[k]["drop"], cells[k]["spread"], cells[k]["jump"]))
        w = cells[worst]
        print(f"{label:<24} expected {found[label]['expected']:<8} measured {group:<8} worst cell {worst}: "
              f"drop {w['drop']:.2f}, spread {w['spread']:.2f}, jump {w['jump']:.2f} tolerances, "
              f"{w['collapsed']:.0%} collapsed", flush=True)  # fmt: skip
        args.record.write_text(json.dumps(found, indent=2) + "\n")  # after each net: a stop keeps the rest
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
