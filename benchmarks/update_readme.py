"""Regenerate the tables in README.md and docs/performance.md from the commands that print them.

    python benchmarks/update_readme.py study   # runs `rlcheck` (the default study), replaces README's study table
    python benchmarks/update_readme.py speed   # runs `benchmarks/speed.py`, replaces docs/performance.md's table
    python benchmarks/update_readme.py floor   # runs `benchmarks/step_floor.py`, replaces docs/performance.md's
                                               # table of where a step's time goes
    python benchmarks/update_readme.py validity  # runs `python -m benchmarks.validity` (resumable, hours the
                                                 # first time), replaces docs/statistics.md's table

Each table sits between ``<!-- NAME-table -->`` and ``<!-- /NAME-table -->``; the text around
it (which machine, which versions) is the reader's to keep true. tests/test_readme.py checks
that the study table has the format `rlcheck` prints.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def replace_block(path: Path, name: str, table: str) -> None:
    text = path.read_text()
    pattern = re.compile(rf"(<!-- {name}-table -->\n```\n).*?(\n```\n<!-- /{name}-table -->)", re.S)
    if not pattern.search(text):
        sys.exit(f"{path} has no <!-- {name}-table --> block")
    path.write_text(pattern.sub(lambda m: m.group(1) + table.strip("\n") + m.group(2), text))


def study_table() -> str:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "rlcheck", "--out", out, "--quiet"]
        proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return proc.stdout.split("\nwrote ")[0].split("\n\nWhy ")[0]  # the table and its verdict lines


def speed_table() -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py")], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return proc.stdout


def floor_table() -> str:
    command = [sys.executable, "-m", "benchmarks.step_floor", "--compiled"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return proc.stdout


def validity_table(out: str) -> str:
    command = [sys.executable, "-m", "benchmarks.validity", "--out", out, "--brief"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=("study", "speed", "floor", "validity"))
    parser.add_argument(
        "--validity-out", default="rlcheck-validity", help="where the validity benchmark keeps its runs"
    )
    args = parser.parse_args()
    if args.table == "study":
        replace_block(ROOT / "README.md", "study", study_table())
    elif args.table == "validity":
        replace_block(ROOT / "docs" / "statistics.md", "validity", validity_table(args.validity_out))
    elif args.table == "floor":
        replace_block(ROOT / "docs" / "performance.md", "floor", floor_table())
    else:
        replace_block(ROOT / "docs" / "performance.md", "speed", speed_table())


if __name__ == "__main__":
    main()
