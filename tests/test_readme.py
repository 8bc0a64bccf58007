"""The README's study table has the format `rlcheck` prints (benchmarks/update_readme.py regenerates it)."""

import re
from pathlib import Path

from rlcheck.front.report import format_table
from rlcheck.verdicts.study import Cell, StudyConfig, run_study

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(name: str) -> list[str]:
    match = re.search(rf"<!-- {name}-table -->\n```\n(.*?)\n```\n<!-- /{name}-table -->", README.read_text(), re.S)
    assert match, f"README.md lost its {name} table markers"
    return match.group(1).splitlines()


def test_the_readme_study_table_has_the_format_rlcheck_prints():
    cells = (Cell("td3", steps=300, warmup=100), Cell("sac", steps=300, warmup=100))
    study = run_study(StudyConfig(cells=cells, seeds=(0, 1), max_seeds=2, workers=1))
    printed = format_table(study).splitlines()
    shown = _block("study")
    assert shown[:2] == printed[:2]  # header and rule
    rows = [line for line in shown[2:] if line and not line.startswith(("(", "td3 batch", "sac batch"))]
    assert [r.split()[:2] for r in rows] == [p.split()[:2] for p in printed[2 : 2 + len(rows)]]
    assert shown[-1].split(";")[0] == printed[-1].split(";")[0]  # the footnote
