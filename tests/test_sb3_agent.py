"""`rlcheck check --agent` on Stable-Baselines3 models as written (rlcheck.engine.sb3_agents)."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import rlcheck
from rlcheck.engine.runs import RunSpec
from rlcheck.engine.sb3_agents import SB3Policy
from rlcheck.engine.user_agents import build_user_agent, train_user_agent
from rlcheck.errors import UsageError
from rlcheck.front.api import prepare_check
from rlcheck.requests import CheckRequest
from rlcheck.verdicts.door import check_before_training

CONSTANT = "rlcheck/ConstantReward-v0"


def prepared(**values):
    return prepare_check(CheckRequest.of(None, workers=1, **values))


def test_an_sb3_model_is_an_agent_of_its_family_with_the_settings_that_differ_said():
    check = prepared(agent="tests.sb3_agents:make_td3_as_sb3_ships_it", probes="constant")
    assert check.config.algos == ("td3",)
    said = " ".join(check.detected)
    assert "learning rate 0.001 vs 0.0003" in said and "net_arch [400, 300] vs [64, 64]" in said
    assert "exploration noise None vs 0.1" in said
    assert prepared(agent="tests.sb3_agents:make_sac", probes="constant").config.algos == ("sac",)
    assert not any("differ" in line for line in prepared(agent="tests.sb3_agents:make_td3").detected)


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("tests.sb3_agents:make_ppo", "returned an SB3 PPO; rlcheck checks SB3's TD3 (or DDPG) and SAC models"),
        ("tests.sb3_agents:make_without_env", "are not those of rlcheck/ConstantReward-v0; build it on the env"),
    ],
)
def test_an_sb3_model_rlcheck_cannot_take_is_one_line_at_the_door(agent, message):
    with pytest.raises(UsageError) as caught:
        check_before_training(prepared(agent=agent, probes="constant").config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_q_reported_is_the_first_critics_on_actions_scaled_as_sb3_stores_them():
    model = build_user_agent("tests.sb3_agents:make_td3", CONSTANT, 0)
    obs, actions = np.zeros((3, 1), np.float32), np.array([[-1.0], [0.0], [1.0]], np.float32)
    q = SB3Policy(model).q_value(obs, actions)
    import torch

    with torch.no_grad():
        expected = model.critic(torch.zeros(3, 1), torch.as_tensor(actions))[0].numpy().reshape(-1)
    assert q.shape == (3,) and np.allclose(q, expected)


def test_an_sb3_run_is_learn_looked_at_on_rlchecks_steps_and_deterministic_per_seed():
    spec = RunSpec("td3", "yours", 3, CONSTANT, steps=300, warmup=100, eval_every=50, agent="tests.sb3_agents:make_td3")
    first, again = train_user_agent(spec), train_user_agent(spec)
    assert first.eval_steps == [0, 50, 100, 150, 200, 250, 300] and len(first.eval_value_errors) == 7
    assert first.eval_value_errors == again.eval_value_errors and first.eval_returns == again.eval_returns
    # It learns: the critic's error on Q = 1 falls once SB3's learning_starts is past.
    assert first.eval_value_errors[-1] < 0.5 * first.eval_value_errors[0]


def test_a_correct_sb3_td3_is_not_failed():
    # Seeds 0-4, the tests' own; the procedure's levels decide, no bar is fitted here.
    result = rlcheck.run_check(agent="tests.sb3_agents:make_td3", probes="constant,action", seeds=5, workers=2,
                               no_cache=True)  # fmt: skip
    assert result.outcome != "fail"
