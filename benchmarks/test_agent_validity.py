"""The agent panel on the tests' seeds (0 and up): every broken agent failed on each probe its bug
is mapped to, no correct agent failed on the agent suite (benchmarks/agent_validity.py). The
pre-registered sets are the benchmark's, reported in docs/preregistration-agents.md."""

import pytest

from benchmarks.agent_validity import PANEL, check_one
from rlcheck.engine.cache import RunCache

CHECKS = [(agent, probe) for agent in PANEL for probe in agent.probes or (None,)]


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "probe"), CHECKS, ids=[f"{a.label}-{p or 'suite'}" for a, p in CHECKS])
def test_the_agent_panel_on_the_tests_seeds(agent, probe, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "agent-validity"
    answer = check_one(agent, probe, 0, out, RunCache(out / "cache"), workers=2)
    if agent.correct:
        assert answer["outcome"] != "fail", answer["not_pass"]
    else:
        assert answer["outcome"] == "fail", answer["not_pass"]
