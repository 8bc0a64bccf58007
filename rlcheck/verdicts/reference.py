"""A check's outcomes kept in the user's repository, and told when they move.

pytest-regressions' model: the expectation is a committed file (``rlcheck-reference.json``),
a check compares each (algorithm, probe) cell's outcome with it, and only an explicit regen
(``--regen-reference``, ``--rlcheck-regen-reference``) rewrites it. Outcomes, not numbers,
are kept: numbers move with the processor and the library versions, an outcome moving from
``pass`` to ``fail`` is news. A cell whose outcome got worse fails the check; one that got
better is reported, and passes, until the reference is regenerated.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rlcheck.errors import UsageError

REFERENCE_VERSION = 1
DEFAULT_REFERENCE = "rlcheck-reference.json"
RANK = {"pass": 0, "slower": 1, "undecided": 2, "fail": 3}


@dataclass(frozen=True)
class Moved:
    cell: str
    was: str
    now: str

    @property
    def worse(self) -> bool:
        return RANK[self.now] > RANK[self.was]


def load(path: Path) -> dict[str, str] | None:
    """The reference's cell outcomes, or None where there is no reference yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"reference {path} cannot be read ({exc}); fix it or regenerate it with --regen-reference"
        ) from None
    if data.get("schema_version") != REFERENCE_VERSION or not isinstance(data.get("cells"), dict):
        raise UsageError(f"reference {path} is not an rlcheck reference (version {REFERENCE_VERSION}); regenerate it")
    return {str(k): str(v) for k, v in data["cells"].items()}


def compare(reference: Mapping[str, str], cells: Mapping[str, str]) -> list[Moved]:
    """Cells of this check whose outcome differs from the reference's (cells it lacks are new, not moved)."""
    return [
        Moved(cell, reference[cell], now) for cell, now in cells.items() if cell in reference and reference[cell] != now
    ]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path`: the shipped gate's tests may write it from several processes."""
    import fcntl  # POSIX; imported here so that reading a reference needs nothing of it

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write(path: Path, net: str, baseline: str, cells: Mapping[str, str], versions: Mapping[str, str]) -> None:
    """Record these cells' outcomes, keeping the reference's other cells (one gate test writes one cell)."""
    with _locked(path):
        try:
            kept = load(path) or {}
        except UsageError:
            kept = {}  # being regenerated: an unreadable reference is replaced
        data = {
            "schema_version": REFERENCE_VERSION,
            "net": net,
            "baseline": baseline,
            "cells": dict(sorted({**kept, **cells}.items())),
            "versions": dict(versions),
        }
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
            json.dump(data, tmp, indent=2)
            tmp.write("\n")
        os.replace(tmp.name, path)
