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
from rlcheck.verdicts.tolerances import fixed_tolerance

CONSTANT = "rlcheck/ConstantReward-v0"


def prepared(**values):
    return prepare_check(CheckRequest.of(None, workers=1, **values))


def test_the_reference_takes_an_sb3_models_settings_and_says_which_it_cannot_take():
    check = prepared(agent="tests.sb3_agents:make_td3_as_sb3_ships_it", probes="constant")
    assert check.config.algos == ("td3",)
    assert dict(check.config.settings) == {"actor_lr": 1e-3, "critic_lr": 1e-3, "exploration_noise": 0.0}
    assert check.config.hidden == (400, 300)
    said = " ".join(check.detected)
    assert (
        "the reference takes the model's actor lr 0.001, critic lr 0.001, exploration noise 0, hidden 400x300" in said
    )
    reference = check.config.spec(check.config.cells[0], check.config.baseline, 0)
    assert reference.settings == check.config.settings and reference.hidden == (400, 300)
    assert check.config.spec(check.config.cells[0], "yours", 0).settings == ()  # the model keeps its own
    # A reference with other settings has no calibrated tolerance: it is measured on calibration seeds.
    assert fixed_tolerance(check.config.cells[0], "plain", (64, 64), check.config.settings) is None
    odd = prepared(agent="tests.sb3_agents:make_sac_odd", probes="constant")
    assert "cannot take the model's gamma 0.98" in " ".join(odd.detected)
    assert "2 gradient steps per" in " ".join(odd.detected) and "activation Tanh" in " ".join(odd.detected)
    # rlcheck's reference settings as written: nothing differs, the calibrated tolerances hold.
    plain = prepared(agent="tests.sb3_agents:make_td3", probes="constant")
    assert plain.config.settings == () and plain.config.hidden == (64, 64)
    assert "its default settings" in plain.detected[0]
    across = prepared(agent="tests.sb3_agents:make_td3", like="sac", probes="constant")
    assert across.config.settings == () and "judged as sac" in " ".join(across.detected)


def test_the_reference_trains_with_the_settings_it_took():
    from rlcheck.engine.agents import build_agent, make_env

    spec = RunSpec("td3", "plain", 0, CONSTANT, settings=(("actor_lr", 1e-3), ("exploration_noise", 0.0)))
    with make_env(CONSTANT) as env:
        agent = build_agent(spec, env)
    assert agent.config.actor_lr == 1e-3 and agent.config.exploration_noise == 0.0 and agent.config.critic_lr == 3e-4
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert "settings" not in RunSpec("td3", "plain", 0).to_dict()  # logs and cache keys as before


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
