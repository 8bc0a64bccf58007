"""The fail tests' size and power at the gate's own per-test level, simulated.

    python -m benchmarks.sizes [--trials 400000]

A check judges 12 cells with 4 fail tests each over 5 planned looks (seeds 5, 10, 20, 40 and
training on), so each test runs at 0.05 / 240 = 2.1e-4. Printed, as multiples of that level
(the share of simulated cells failed at the worst case a correct net may be in):

* the drop test (Welch's standard error, ``min(n1, n2) - 1`` degrees of freedom, what rlcheck
  uses) against Welch-Satterthwaite's estimated degrees of freedom, at a true drop of exactly
  the tolerance, on normal, unequal-spread, bounded and bimodal scores;
* the spread test (Brown-Forsythe against the margin SPREAD_RATIO, what rlcheck uses) against
  the F test of the variance ratio, at a true spread ratio of exactly SPREAD_RATIO;
* the collapse test's exact false-fail probability at COLLAPSE_SHARE and the fewest collapsed
  seeds that fail, with its power at a 20% collapse rate;
* the drop test's power at a true drop of 2 tolerances, per candidate spread (noncentral t).

tests/test_stats.py asserts the sizes; this prints them for docs/statistics.md.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats

from rlcheck.verdicts.stats import (
    COLLAPSE_SHARE,
    SPREAD_RATIO,
    Levels,
    collapses_that_fail,
    fail_power,
    spread_p,
    welch_bounds,
)

GATE = Levels(alpha=0.05, comparisons=12, looks=5)
SEEDS = (5, 10, 20, 40)


def _drop_shapes() -> dict[str, object]:
    def normal(sb: float, sc: float):
        return lambda rng, size: (rng.normal(0, sb, size), rng.normal(0, sc, size))

    def bounded(rng, size):
        return (1 - rng.beta(1, 8, size)) - 8 / 9, (1 - rng.beta(1, 3, size)) - 3 / 4

    def bimodal(rng, size):
        def draw():
            return np.where(rng.random(size) < 0.1, -5.0, 0.0) + rng.normal(0, 0.3, size)

        return draw(), draw()

    return {
        "normal, equal spreads": normal(1, 1),
        "normal, candidate spread 4x": normal(1, 4),
        "normal, candidate spread 1/4": normal(4, 1),
        "bounded, skewed": bounded,
        "bimodal (a tenth far below)": bimodal,
    }


def _rate(test, draw, n: int, trials: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    fails, chunk = 0, 200_000
    for start in range(0, trials, chunk):
        m = min(chunk, trials - start)
        base, cand = draw(rng, (m, n))
        fails += int((test(base, cand) < GATE.fail).sum())
    return fails / trials / GATE.fail


def _drop_min_df(base, cand):
    return welch_bounds(base, cand - 1.0, 1.0, GATE.fail, GATE.ok)[3]


def _drop_ws(base, cand):
    cand = cand - 1.0
    n = base.shape[-1]
    v1, v2 = base.var(-1, ddof=1) / n, cand.var(-1, ddof=1) / n
    t = (base.mean(-1) - cand.mean(-1) - 1.0) / np.sqrt(v1 + v2)
    return stats.t.sf(t, (v1 + v2) ** 2 / ((v1**2 + v2**2) / (n - 1)))


def _spread_f(base, cand):
    n = base.shape[-1]
    return stats.f.sf(cand.var(-1, ddof=1) / (SPREAD_RATIO**2 * base.var(-1, ddof=1)), n - 1, n - 1)


def _spread_shapes() -> dict[str, object]:
    def scaled(draw):
        # Spreads 2 and 2 x SPREAD_RATIO: both groups' deviations beyond the tolerance 1.
        return lambda rng, size: (2.0 * draw(rng, size), 2.0 * SPREAD_RATIO * draw(rng, size))

    return {
        "normal": scaled(lambda rng, size: rng.normal(0, 1, size)),
        "Laplace (kurtosis 6)": scaled(lambda rng, size: rng.laplace(0, 1 / math.sqrt(2), size)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=400_000, help="simulated cells per line")
    args = parser.parse_args()
    print(f"per-test fail level {GATE.fail:.3g}; {args.trials} simulated cells per line; rates as multiples of it\n")

    print("drop test at a true drop of one tolerance: min(n1, n2) - 1 df (rlcheck) / Welch-Satterthwaite")
    for name, draw in _drop_shapes().items():
        cells = [
            f"{_rate(_drop_min_df, draw, n, args.trials, n):.2f}x / {_rate(_drop_ws, draw, n, args.trials, n):.2f}x"
            for n in (5, 10)
        ]
        print(f"  {name:30s} 5 seeds {cells[0]:>15s}   10 seeds {cells[1]:>15s}")

    print(f"\nspread test at a true ratio of {SPREAD_RATIO:g}: Brown-Forsythe with the margin (rlcheck) / F test")
    for name, draw in _spread_shapes().items():
        cells = [
            f"{n}: {_rate(lambda b, c: spread_p(b, c, 1.0), draw, n, args.trials, 100 + n):.2f}x / "
            f"{_rate(_spread_f, draw, n, args.trials, 100 + n):.2f}x"
            for n in SEEDS
        ]
        print(f"  {name:22s} " + "   ".join(cells))

    print(f"\ncollapse test (exact binomial against {COLLAPSE_SHARE:.0%}):")
    for n in SEEDS:
        k = collapses_that_fail(n, GATE.fail)
        size = stats.binom.sf(k - 1, n, COLLAPSE_SHARE) / GATE.fail if k else 0.0
        power = stats.binom.sf(k - 1, n, 0.2) if k else 0.0
        print(f"  {n:2d} seeds: fails from {k} collapsed; size {size:.2f}x; power at a 20% collapse rate {power:.2f}")

    print("\ndrop test power at a true drop of 2 tolerances (baseline spread 0.1 tolerance):")
    for sd in (0.25, 0.5, 1.0):
        powers = "  ".join(f"{n}: {fail_power(sd, 0.1, n, n, 1.0, GATE.fail):.2f}" for n in SEEDS)
        print(f"  candidate spread {sd:g} tolerance   {powers}")


if __name__ == "__main__":
    main()
