"""rlcheck's gate as tests: your network vs the plain baseline, one test per (algo, probe).

Run with ``pytest --pyargs rlcheck.gate --rlcheck-net mypkg.nets:make_net`` (add ``-n auto``
to spread the cells over cores). Settings: see ``rlcheck.plugin``. Each test records its
cell's outcome and numbers as JUnit properties (``--junitxml``); the session ends with a
summary of every cell.
"""

import warnings

import pytest

from rlcheck.front.words import check_report
from rlcheck.plugin import record_cells
from rlcheck.verdicts.config import Cell


@pytest.mark.rlcheck_gate
def test_network_learns_probe_like_plain_baseline(rlcheck_gate, rlcheck_cell: Cell, request) -> None:
    result = rlcheck_gate(cells=(rlcheck_cell,))
    record_cells(request.node, result)
    if not result.passed:
        pytest.fail(check_report(result, "pytest"), pytrace=False)
    if result.outcome in ("slower", "undecided"):  # passed, but say so: rlcheck_strict makes it fail
        warnings.warn(check_report(result, "pytest"), stacklevel=1)
