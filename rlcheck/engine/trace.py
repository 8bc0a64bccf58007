"""Where a run's wall time goes: with ``RLCHECK_TRACE=FILE`` set, every process appends its events
(a pool's processes started, each job's start and end in the process that trains it, each round
of :func:`rlcheck.engine.runner.run_all`) to FILE as JSON lines with a wall-clock time and the pid.
``benchmarks/measure_gate.py trace`` reads them. Unset, nothing is written and nothing is timed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

TRACE_ENV = "RLCHECK_TRACE"


def event(kind: str, **fields: Any) -> None:
    """Append one event to the trace file, if one is asked for (a line per write: atomic enough
    for the few processes of a run on one machine)."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "kind": kind, **fields})
    with open(path, "a") as trace:
        trace.write(line + "\n")
