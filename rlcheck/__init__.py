"""rlcheck: a pytest-native sanity gate and regression benchmark for RL network code.

The names below are imported on first use (PEP 562), not with the package: every training
process the runner spawns imports ``rlcheck.engine.runner``, hence this package, and should not pay
for scipy (the statistics) or the study's reporting, about 1.3 s of a 3.2 s start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API: gate a network (run_check, a CheckRequest's values), run a study (run_study,
# a StudyRequest's), train a run, diagnose one. Everything else is
# importable from its module, without a promise that it keeps its name.
_WHERE = {
    "CheckRequest": "rlcheck.requests",
    "StudyRequest": "rlcheck.requests",
    "CheckResult": "rlcheck.verdicts.check",
    "NetUnderTest": "rlcheck.verdicts.check",
    "run_check": "rlcheck.front.api",
    "Diagnosis": "rlcheck.verdicts.diagnose",
    "diagnose": "rlcheck.verdicts.diagnose",
    "RandomEnv": "rlcheck.envs",
    "UsageError": "rlcheck.errors",
    "NetFactory": "rlcheck.nets",
    "Cell": "rlcheck.verdicts.config",
    "StudyConfig": "rlcheck.verdicts.config",
    "StudyResult": "rlcheck.verdicts.study",
    "run_study": "rlcheck.front.api",
    "RunResult": "rlcheck.engine.runs",
    "RunSpec": "rlcheck.engine.runs",
    "run": "rlcheck.engine.training",
}

__all__ = [
    "Cell",
    "CheckRequest",
    "CheckResult",
    "Diagnosis",
    "NetFactory",
    "NetUnderTest",
    "RandomEnv",
    "RunResult",
    "RunSpec",
    "StudyConfig",
    "StudyRequest",
    "StudyResult",
    "UsageError",
    "diagnose",
    "run",
    "run_check",
    "run_study",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rlcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from rlcheck.engine.runs import RunResult, RunSpec
    from rlcheck.engine.training import run
    from rlcheck.envs import RandomEnv
    from rlcheck.errors import UsageError
    from rlcheck.front.api import run_check, run_study
    from rlcheck.nets import NetFactory
    from rlcheck.requests import CheckRequest, StudyRequest
    from rlcheck.verdicts.check import CheckResult, NetUnderTest
    from rlcheck.verdicts.config import Cell, StudyConfig
    from rlcheck.verdicts.diagnose import Diagnosis, diagnose
    from rlcheck.verdicts.study import StudyResult
