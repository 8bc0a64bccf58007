"""Validity of the gate, measured: how often it fails correct networks, and misses broken ones.

    python -m benchmarks.validity                         # the whole panel, 6 held-out seed sets
    python -m benchmarks.validity --sets 11000 --nets tanh,naive-bn-both --algos td3

A panel of correct networks that are not the baseline and of broken ones with real bugs that
pass the door checks is run through ``rlcheck check`` (the gate's defaults: 5 seeds growing to
15, the whole probe suite, TD3 and SAC) on seed sets used nowhere in calibration (calibration
seeds start at 5000, the tests' and the gate's at 0; see benchmarks/calibrate.py). It prints
every outcome per net and seed set, then the false-fail count of the correct panel and the
miss count of the broken panel (a broken net not failed: the gate passes it), each with its
exact (Clopper-Pearson) 95% interval; bugs the door checks stop are listed apart, as is the
BatchNorm study (`rlcheck`) on the same seeds.

Resumable: every run is kept in OUT/<seed set>/<net>.jsonl and the baseline's in a run cache
under OUT/cache, so a repeated command trains only what is missing and judges again.
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
from rlcheck.engine.runner import default_workers, threads_per_worker
from rlcheck.errors import UsageError
from rlcheck.front.api import known
from rlcheck.front.words import cell_reason, check_dict
from rlcheck.requests import parse_names
from rlcheck.verdicts.check import NetUnderTest, check_config, check_networks, fitting_algos, parse_probes
from rlcheck.verdicts.door import check_before_training as door_checks
from rlcheck.verdicts.study import Cell, StudyConfig, run_study, versions
from rlcheck.verdicts.variants import VARIANTS

# Each set grows to +14. Disjoint from the tests' and the gate's seeds (0 and up, to 3014 at
# most), from calibration (5000-5999) and from 7000-7014 (used when the issue was measured).
# The design sets were looked at while the procedure took its present form (the value probes'
# tolerance, the collapse rule, which nets are trained on as "slower" and what training on can
# change, the probes' budgets): their counts are not held-out, and the benchmark's default sets are the others.
SEED_SETS = (43000, 44000, 45000, 46000, 47000, 48000)
DESIGN_SETS = tuple(range(11000, 43000, 1000))  # 11000-42000
V = "benchmarks.validity_nets"


@dataclass(frozen=True)
class Entry:
    label: str
    correct: bool
    net: NetUnderTest
    bug: str = ""


PANEL: tuple[Entry, ...] = (
    Entry("tanh", True, NetUnderTest.of(f"{V}:tanh_mlp")),
    Entry("silu", True, NetUnderTest.of(f"{V}:silu_mlp")),
    Entry("layernorm-gelu-128", True, NetUnderTest.of(f"{V}:layernorm_gelu_128")),
    Entry("residual", True, NetUnderTest.of(f"{V}:residual_mlp")),
    Entry("wide-256", True, NetUnderTest.of(f"{V}:wide_256")),
    Entry("class-elu", True, NetUnderTest.of(f"{V}:class_mlp")),
    Entry("one-hidden-64", True, NetUnderTest.of(f"{V}:one_hidden_64")),
    Entry("naive-bn-both", False, NetUnderTest.of(f"{V}:naive_batchnorm"), "BatchNorm1d in actor and critic"),
    Entry("naive-bn-critic", False, NetUnderTest.of(critic_net=f"{V}:naive_batchnorm"), "BatchNorm1d in the critic"),
    Entry("naive-bn-actor", False, NetUnderTest.of(actor_net=f"{V}:naive_batchnorm"), "BatchNorm1d in the actor"),
    Entry(
        "obs-blind-critic",
        False,
        NetUnderTest.of(critic_net=f"{V}:ObservationBlindCritic"),
        "the critic's forward drops the observation",
    ),
    Entry(
        "relu-out-critic",
        False,
        NetUnderTest.of(critic_net=f"{V}:relu_output_critic"),
        "a ReLU after the critic's output: no negative Q",
    ),
    Entry(
        "const-input-actor",
        False,
        NetUnderTest.of(actor_net=f"{V}:constant_input_actor"),
        "the actor's layers see a constant, not the observation",
    ),
)
# Mode-aware BatchNorm in the critic: not a bug people write by accident, and not clearly correct
# (it collapsed on 1 of 15 seeds in the BatchNorm study); reported with its outcome, counted in neither panel.
OBSERVED = (Entry("bn-critic-modeaware", True, NetUnderTest.of("batchnorm-critic-modeaware")),)
STOPPED_AT_THE_DOOR = (
    ("softmax-head critic", NetUnderTest.of(critic_net="tests.codebase_nets:softmax_head")),
    ("detached-encoder critic", NetUnderTest.of(critic_net="tests.codebase_nets:DetachedBranch")),
    ("frozen-first-layer actor (--refuse-frozen)", NetUnderTest.of(actor_net="tests.codebase_nets:frozen_first_layer")),
)
ENTRIES = {e.label: e for e in (*PANEL, *OBSERVED)}


def preregistered_panel() -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
    """The pre-registered panel (benchmarks/preregistered_nets.py, docs/preregistration.md): the nets
    counted (correct or broken), and those measured as neither (checked and shown, counted in no group)."""
    from benchmarks import preregistered_nets
    from benchmarks.preregistered_effects import RECORD

    # The group a net counts in is its measured effect (benchmarks/preregistered_effects.json), as
    # registered, not the label it was written with: a net measured as neither counts in no group.
    measured = json.loads(RECORD.read_text())
    missing = [label for label, _, _ in preregistered_nets.PANEL if label not in measured]
    if missing:
        sys.exit(f"validity: no measured effect for {', '.join(missing)} (python -m benchmarks.preregistered_effects)")
    entries = [
        (Entry(label, measured[label]["group"] == "correct", NetUnderTest.of(**nets)), measured[label]["group"])
        for label, _, nets in preregistered_nets.PANEL
    ]
    counted = tuple(entry for entry, group in entries if group != "neither")
    return counted, tuple(entry for entry, group in entries if group == "neither")


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact binomial 95% interval of a rate seen k times in n."""
    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return low, high


def check_one(entry: Entry, start: int, algos: tuple[str, ...], out: Path, cache: RunCache, workers: int) -> dict:
    """One gate run of one net on one seed set, resumed from its log; its answer as a dict."""
    folder = out / str(start)
    folder.mkdir(parents=True, exist_ok=True)
    answered = folder / f"{entry.label}.json"
    if answered.exists():  # a finished check, kept by a run that stopped later: its answer stands as written
        return json.loads(answered.read_text())
    if entry.net.actor in VARIANTS:  # a built-in recipe (train/eval modes), not a module to detect
        fits = algos
    else:
        fits, _ = fitting_algos(entry.net, algos, parse_probes("all")[0].env_id)
    config = check_config(entry.net, algos=fits, seeds=range(start, start + 5), workers=workers)
    result = check_networks(config, entry.net, log_path=folder / f"{entry.label}.jsonl", cache=cache, resume=True)
    answer = check_dict(result)
    answer["not_pass"] = {
        c.cell.label: f"{c.outcome}: {cell_reason(c)}" for c in result.study.comparisons if c.outcome != "pass"
    }
    answer["seeds"] = max(
        max(c.stats.n_candidate, c.extended.n_candidate if c.extended else 0) for c in result.study.comparisons
    )
    answered.write_text(json.dumps(answer, indent=2))
    return answer


def study_verdicts(start: int, out: Path, cache: RunCache, workers: int) -> dict[str, str]:
    """The BatchNorm study (plain vs naive BatchNorm on RandomEnv, `rlcheck`'s defaults) on these seeds."""
    config = StudyConfig(
        cells=(Cell("td3"), Cell("sac")), seeds=tuple(range(start, start + 5)), workers=workers,
        threads=threads_per_worker(workers),
    )  # fmt: skip
    folder = out / str(start)
    folder.mkdir(parents=True, exist_ok=True)
    study = run_study(config, folder / "study.jsonl", resume=True, cache=cache)
    return {c.algo: f"{c.outcome} ({c.decisive.verdict}, {c.stats.n_candidate} seeds)" for c in study.comparisons}


def door() -> list[str]:
    lines = []
    for label, net in STOPPED_AT_THE_DOOR:
        try:
            door_checks(check_config(net, algos=("td3",), seeds=(0, 1), refuse_frozen=True, workers=1))
            lines.append(f"  {label}: NOT stopped at the door")
        except UsageError as exc:
            lines.append(f"  {label}: stopped -- {str(exc)[:150]}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--panel", choices=["design", "preregistered"], default="design",
        help="the design panel and sets (looked at while the procedure took form), or the pre-registered ones",
    )  # fmt: skip
    parser.add_argument("--sets", help="first seeds of the sets (default: the panel's)")
    parser.add_argument("--nets", help=f"from the panel's (design: {', '.join(ENTRIES)})")
    parser.add_argument("--algos", default="td3,sac")
    parser.add_argument("--no-study", action="store_true", help="skip the BatchNorm study on each set")
    parser.add_argument("--brief", action="store_true", help="leave out the list of every cell that did not pass")
    parser.add_argument("--out", type=Path, default=Path("rlcheck-validity"))
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    if args.panel == "preregistered":
        from benchmarks import preregistered_nets

        global PANEL, OBSERVED
        PANEL, OBSERVED = preregistered_panel()
        ENTRIES.clear()
        ENTRIES.update({e.label: e for e in PANEL + OBSERVED})
        default_sets = preregistered_nets.SEED_SETS
    else:
        default_sets = SEED_SETS
    try:
        starts = [int(s) for s in (args.sets.split(",") if args.sets else default_sets)]
        labels = known(parse_names(args.nets or ",".join(ENTRIES), "--nets"), list(ENTRIES), "net", "--nets")
        algos = known(parse_names(args.algos, "--algos"), ["td3", "sac"], "algo", "--algos")
    except (UsageError, ValueError) as exc:
        sys.exit(f"validity: {exc}")
    if any(5000 <= s < 6000 or s < 3015 for s in starts):
        sys.exit("validity: seed sets must be held out: not below 3015 (tests, gate) nor 5000-5999 (calibration)")
    if any(s in DESIGN_SETS for s in starts):
        print(f"validity: note: {DESIGN_SETS} informed the design; their counts are not held-out", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = RunCache(args.out / "cache")
    answers: dict[tuple[str, int], dict] = {}
    studies: dict[int, dict[str, str]] = {}
    for start in starts:
        for label in labels:
            print(f"validity: {label} on seeds {start}+ ...", file=sys.stderr, flush=True)
            answers[(label, start)] = check_one(ENTRIES[label], start, algos, args.out, cache, args.workers)
        if not args.no_study:
            studies[start] = study_verdicts(start, args.out, cache, args.workers)
    report(answers, studies, starts, labels, brief=args.brief)
    return 0


def report(
    answers: dict[tuple[str, int], dict], studies: dict[int, dict[str, str]], starts, labels, brief: bool = False
) -> None:
    v = versions()
    print(f"rlcheck validity benchmark: {v['processor']}, torch {v['torch']}, python {v['python']}")
    grown = max((a["seeds"] for a in answers.values()), default=5)
    print(f"seed sets (5 seeds each, doubling while undecided; most reached {grown}): {', '.join(map(str, starts))}\n")
    width = max(len(label) for label in labels) + 2
    print(f"{'net':<{width}} {'panel':<9} " + " ".join(f"{s:>16}" for s in starts))
    for label in labels:
        entry = ENTRIES[label]
        panel = "observed" if entry in OBSERVED else "correct" if entry.correct else "broken"
        cells = [f"{answers[(label, s)]['outcome']} ({answers[(label, s)]['seeds']})" for s in starts]
        print(f"{label:<{width}} {panel:<9} " + " ".join(f"{c:>16}" for c in cells))
    print("(outcome (most seeds any cell reached))\n")
    correct = [a for (label, _), a in answers.items() if ENTRIES[label] in PANEL and ENTRIES[label].correct]
    broken = [a for (label, _), a in answers.items() if ENTRIES[label] in PANEL and not ENTRIES[label].correct]
    false_fails = sum(a["outcome"] == "fail" for a in correct)
    passed_broken = sum(a["outcome"] in ("pass", "slower") for a in broken)
    not_failed = sum(a["outcome"] != "fail" for a in broken)
    for what, k, n in (
        ("false FAILs of correct nets", false_fails, len(correct)),
        ("misses: broken nets the gate passed (pass or slower)", passed_broken, len(broken)),
        ("broken nets not failed (also undecided, which passes unless --strict)", not_failed, len(broken)),
    ):
        if n:
            low, high = clopper_pearson(k, n)
            at_most = math.ceil(high * 100)  # rounded up: a bound rounded down claims more than was measured
            print(
                f"{what}: {k} of {n} in {len(starts)} seed sets (exact 95% CI {low:.1%} to {high:.1%}, as if the "
                f"checks were independent; checks on one set share its baseline: the rate is at most {at_most}%)"
            )
    # Clustered by seed set (the checks on one set share its baseline runs): the share of sets in
    # which any check of the group went wrong, with a one-sided 95% upper bound rounded up.
    for what, group, wrong in (
        ("sets with a correct net failed", True, lambda a: a["outcome"] == "fail"),
        ("sets with a broken net not failed", False, lambda a: a["outcome"] != "fail"),
        ("sets with an undecided check", None, lambda a: a["outcome"] == "undecided"),
    ):
        hit = {
            start
            for (label, start), a in answers.items()
            if ENTRIES[label] in PANEL and (group is None or ENTRIES[label].correct == group) and wrong(a)
        }
        k, n = len(hit), len(starts)
        upper = 1.0 if k == n else float(stats.beta.ppf(0.95, k + 1, n - k))
        print(f"{what}: {k} of {n} (one-sided 95% upper bound {math.ceil(upper * 100)}%)")
    noted = sum(a["outcome"] in ("undecided", "slower") for a in correct)
    print(f"correct nets passed with a note (slower or undecided): {noted} of {len(correct)}")
    if not brief:
        print("\ncells that did not pass:")
        for (label, start), a in answers.items():
            for cell, why in a["not_pass"].items():
                print(f"  {label} @{start} {cell}: {why[:240]}")
    if studies:
        print("\nthe BatchNorm study (plain vs naive BatchNorm, RandomEnv, 2000 steps) on the same seeds:")
        for start, verdicts in studies.items():
            print(f"  seeds {start}+: " + "; ".join(f"{algo} {v}" for algo, v in verdicts.items()))
    print("\nstopped at the door (never trained):")
    print("\n".join(door()))


if __name__ == "__main__":
    raise SystemExit(main())
