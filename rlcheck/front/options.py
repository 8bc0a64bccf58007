"""What the console script and the plugin share beyond the request (rlcheck.requests): the
parser that exits 2 on a usage error, and the output folder's check. Stdlib only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from rlcheck.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def prepare_out(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".rlcheck-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {str(path)!r} is not a writable directory ({exc.strerror}); choose another") from None
    return path
