"""Parsing the options that the console script and the pytest plugin share: stdlib only, so
that importing it costs nothing (every training process re-imports the console script)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rlcheck.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_names(text: str, valid: Sequence[str] | None, what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError(f"--{what} is empty; give a comma-separated list")
    for name in names:
        if valid is not None and name not in valid and not (what == "nets" and ":" in name):
            extra = " or 'package.module:function'" if what == "nets" else ""
            raise UsageError(f"unknown {what[:-1]} {name!r}: choose from {', '.join(valid)}{extra}")
    return names


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"5"`` means seeds 0..4; ``"100-104"`` seeds 100 to 104; ``"100,101,102"`` exactly those
    seeds. (Comparing nets needs at least 2 seeds per net; the study says so where a comparison
    is asked for.)"""
    first, dash, last = text.partition("-")
    if dash and first.strip().isdigit() and last.strip().isdigit():
        if int(last) < int(first):
            raise UsageError(f"--seeds {text}: the range ends before it starts; give e.g. --seeds 100-104")
        return tuple(range(int(first), int(last) + 1))
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(
            f"--seeds {text!r} is not a count (e.g. 5), a range (100-104) or a list of integers (100,101,102)"
        ) from None
    if len(values) == 1 and "," not in text:
        if values[0] < 1:
            raise UsageError(f"--seeds {values[0]}: give a count of at least 1, e.g. --seeds 5")
        return tuple(range(values[0]))
    if any(v < 0 for v in values):
        raise UsageError("--seeds must be non-negative integers")
    return values


def parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--hidden {text!r} is not a list of layer widths like 64,64") from None
    if not sizes or any(s < 1 for s in sizes):
        raise UsageError(f"--hidden {text!r}: every layer width must be a positive integer")
    return sizes


def prepare_out(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".rlcheck-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {str(path)!r} is not a writable directory ({exc.strerror}); choose another") from None
    return path


def parse_slower_budget(value: float) -> float:
    if not value >= 1.0:  # also refuses NaN
        raise UsageError(f"--slower-budget {value}: give a multiple of the budget of at least 1 (1 turns it off)")
    return float(value)
