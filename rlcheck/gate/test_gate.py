"""rlcheck's gate as tests: your network vs the plain baseline, one test per (algo, probe).

Run with ``pytest --pyargs rlcheck.gate --rlcheck-net mypkg.nets:make_net`` (add ``-n auto``
to spread the cells over cores). Settings: see ``rlcheck.plugin``.
"""

import warnings

import pytest

from rlcheck.study import Cell


@pytest.mark.rlcheck_gate
def test_network_learns_probe_like_plain_baseline(rlcheck_gate, rlcheck_cell: Cell) -> None:
    result = rlcheck_gate(cells=(rlcheck_cell,))
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)
    if result.outcome == "undecided":  # passed, but say so: rlcheck_strict makes it fail
        warnings.warn(result.report(), stacklevel=1)
