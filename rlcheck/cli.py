"""The ``rlcheck`` command: with no arguments, reproduce the BatchNorm study.

Exit codes: 0 the study ran (whatever it found), 1 a run failed (e.g. diverged to NaN),
2 a usage error (one line on stderr, nothing trained), 130 interrupted by Ctrl-C.
Finished runs are always in ``OUT/runs.jsonl``, whatever the exit code.

The console script imports this module at its top, and multiprocessing's ``spawn`` re-runs
the console script in every training process it starts. So this module imports nothing
heavy, and the commands live in :mod:`rlcheck.front.commands`: otherwise every worker would
import scipy, the statistics and the reports as well.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Factories are named relative to where the user stands, as with `python -m`.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    from rlcheck.front.commands import run_command

    return run_command(argv)


def entry_point() -> None:  # pragma: no cover - the console script
    code = main()
    # Everything is written; spare the exit a garbage collection over all of torch's objects.
    gc.freeze()
    sys.exit(code)
