"""`rlcheck check --agent`: a user's whole agent driven by rlcheck (rlcheck.engine.user_agents)."""

import pytest

import rlcheck
from rlcheck.cli import main
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import batch_jobs
from rlcheck.engine.runs import RunSpec, TrainingDiverged
from rlcheck.engine.user_agents import train_user_agent
from rlcheck.envs import TIME_LIMIT_ID
from rlcheck.errors import UsageError
from rlcheck.front.api import prepare_check
from rlcheck.front.words import check_report
from rlcheck.requests import CheckRequest
from rlcheck.verdicts.door import check_before_training
from rlcheck.verdicts.tolerances import fixed_tolerance
from tests.helpers import exit_code

CONSTANT = "rlcheck/ConstantReward-v0"


def prepared(**values):
    return prepare_check(CheckRequest.of(None, workers=1, **values))


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("tests.agents", "give your agent factory as 'package.module:make_agent'"),
        ("tests.no_such_module:make", "cannot import 'tests.no_such_module'"),
        ("tests.agents:missing", "has no callable 'missing'"),
        ("tests.agents:make_raising", "make_agent(env, seed) raised RuntimeError: no GPU here"),
        ("tests.agents:make_no_observe", "the agent has no observe method"),
        ("tests.agents:make_wrong_shape", "an action of shape (3,) at the start of"),
        ("tests.agents:make_out_of_bounds", "outside the env's bounds"),
        ("tests.agents:make_nan_action", "NaN/inf at the start of rlcheck/ConstantReward-v0 before any training"),
        ("tests.agents:make_familyless", "--like td3 or --like sac"),
    ],
)
def test_a_bad_agent_is_stopped_at_the_door_in_one_line(agent, message):
    with pytest.raises(UsageError, match=None) as caught:
        check_before_training(prepared(agent=agent, probes="constant").config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_line_says_a_bad_agent_in_one_line_and_exits_2(capsys):
    assert exit_code(main, ["check", "--agent", "tests.agents:make_wrong_shape", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "act() returned an action of shape (3,)" in err


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"net": "tests.user_nets:make"}, "give either --agent or networks"),
        ({"baseline": "layernorm"}, "--baseline compares networks"),
        ({"like": "ppo"}, "choose from td3, sac"),
    ],
)
def test_an_agent_request_that_contradicts_itself_is_a_usage_error(values, message):
    with pytest.raises(UsageError, match=message):
        prepared(agent="tests.agents:make_td3", **values)


def test_the_family_comes_from_like_or_the_agent_and_the_reference_is_rlchecks_own():
    assert prepared(agent="tests.agents:make_td3", probes="constant").config.algos == ("td3",)
    config = prepared(agent="tests.agents:make_td3", like="sac", probes="constant").config
    assert config.algos == ("sac",)
    reference, yours = (config.spec(config.cells[0], net, 7) for net in config.nets)
    assert reference.agent is None and reference.net == "plain" and reference.algo == "sac"
    assert yours.agent == "tests.agents:make_td3" and yours.seed == 7


def test_an_agent_without_q_value_skips_the_value_probes_with_a_note():
    check = prepared(agent="tests.agents:make_td3_without_q", probes="constant,action")
    assert [c.env_id for c in check.config.cells] == ["rlcheck/ActionReward-v0"]
    assert any("no q_value" in line and "constant" in line for line in check.detected)
    with pytest.raises(UsageError, match="no probe is left"):
        prepared(agent="tests.agents:make_td3_without_q", probes="constant")


def test_an_agents_run_is_deterministic_per_seed_one_seed_per_job_and_never_cached(tmp_path):
    spec = RunSpec("td3", "yours", 3, CONSTANT, steps=160, warmup=100, eval_every=40, agent="tests.agents:make_td3")
    first, again = train_user_agent(spec), train_user_agent(spec)
    other = train_user_agent(RunSpec(**{**spec.to_dict(), "seed": 4, "hidden": spec.hidden}))
    assert first.eval_returns == again.eval_returns and first.eval_value_errors == again.eval_value_errors
    assert first.eval_value_errors != other.eval_value_errors
    assert first.eval_steps == [0, 40, 80, 120, 160] and first.batched_with == 1
    seeds = [RunSpec(**{**spec.to_dict(), "seed": s, "hidden": spec.hidden}) for s in range(4)]
    assert [len(job) for job in batch_jobs(seeds, workers=2)] == [1, 1, 1, 1]
    cache = RunCache(tmp_path)
    cache.put(first)
    assert cache.get(spec) is None


def test_a_nan_action_mid_training_stops_the_run_naming_the_step():
    spec = RunSpec(
        "td3", "yours", 0, CONSTANT, steps=300, warmup=100, eval_every=100, agent="tests.agents:make_nan_later"
    )
    with pytest.raises(TrainingDiverged, match="NaN/inf at step 119 of seed 0"):
        train_user_agent(spec)


def test_a_correct_agent_passes_and_one_that_bootstraps_through_terminal_states_fails_on_constant():
    # Seeds 0-4: the tests' seeds; the verdicts come from the procedure's levels, not from bars fitted here.
    correct = rlcheck.run_check(agent="tests.agents:make_td3", probes="constant", seeds=5, workers=2, no_cache=True)
    assert correct.outcome != "fail"
    broken = rlcheck.run_check(
        agent="tests.agents:make_td3_bootstrapping_terminal", probes="constant", seeds=5, workers=2, no_cache=True
    )
    assert broken.outcome == "fail"
    report = check_report(broken)
    assert "Your agent" in report and "the TD target stopping at a terminal state" in report
    assert "rlcheck's TD3" in report


def test_the_agent_suite_adds_the_time_limit_probe_which_a_network_check_refuses():
    assert [c.env_id for c in prepared(agent="tests.agents:make_td3").config.cells][-1] == TIME_LIMIT_ID
    assert TIME_LIMIT_ID not in [c.env_id for c in prepared(net="tests.user_nets:wide_mlp").config.cells]
    with pytest.raises(UsageError, match="'time-limit' is for agent checks"):
        prepared(net="tests.user_nets:wide_mlp", probes="action,time-limit")
    cell = prepared(agent="tests.agents:make_sac", probes="time-limit").config.cells[0]
    assert fixed_tolerance(cell, "plain", (64, 64)) is not None  # calibrated, not measured in the run


def test_an_agent_that_treats_truncation_as_termination_fails_on_the_time_limit_probe():
    # Seeds 0-4, the tests' own; the tolerance is the calibrated one (seeds 5000-5019).
    correct = rlcheck.run_check(agent="tests.agents:make_td3", probes="time-limit", seeds=5, workers=2, no_cache=True)
    assert correct.outcome != "fail"
    broken = rlcheck.run_check(
        agent="tests.agents:make_td3_truncation_as_termination",
        probes="time-limit",
        seeds=5,
        workers=2,
        no_cache=True,
    )
    assert broken.outcome == "fail"
    assert "bootstrapping through a truncation" in check_report(broken)
