import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlcheck.envs import PROBES, RANDOM_ENV_ID, TIME_LIMIT_ID, RandomEnv, optimal_return


def test_random_env_passes_gymnasium_check_env():
    env = RandomEnv()
    check_env(env, skip_render_check=True)  # raises on any violation of the gymnasium API
    assert env.observation_space.contains(env.reset(seed=0)[0])


def test_registered_id_makes_a_random_env_with_the_blog_spaces():
    env = gym.make(RANDOM_ENV_ID)
    assert isinstance(env.unwrapped, RandomEnv)
    assert env.observation_space == gym.spaces.Box(-1, 1, (3,), np.float32)
    assert env.action_space == gym.spaces.Box(-1, 1, (1,), np.float32)
    assert env.spec is not None and env.spec.reward_threshold == 28.0


def test_observation_is_always_zero_and_reward_is_the_clipped_action():
    env = RandomEnv()
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(3, np.float32))
    for action, reward in [(0.25, 0.25), (-0.5, -0.5), (3.0, 1.0), (-7.0, -1.0)]:
        obs, r, terminated, truncated, _ = env.step(np.array([action], np.float32))
        assert r == pytest.approx(reward)
        np.testing.assert_array_equal(obs, np.zeros(3, np.float32))
        assert obs.dtype == np.float32
        assert not terminated and not truncated


def test_episodes_last_30_steps_and_end_by_truncation_not_termination():
    env = gym.make(RANDOM_ENV_ID)
    env.reset(seed=0)
    total, flags = 0.0, []
    for _ in range(30):
        _, r, terminated, truncated, _ = env.step(np.ones(1, np.float32))
        total += r
        flags.append((terminated, truncated))
    assert flags[:-1] == [(False, False)] * 29
    assert flags[-1] == (False, True)
    assert total == pytest.approx(30.0) == optimal_return(env)


def test_reset_restarts_the_episode_clock():
    env = RandomEnv(episode_length=3)
    env.reset()
    env.step(np.zeros(1, np.float32))
    env.reset()
    assert [env.step(np.zeros(1, np.float32))[3] for _ in range(3)] == [False, False, True]


def test_optimal_return_is_unknown_for_other_envs():
    assert optimal_return(gym.make("Pendulum-v1")) is None


def test_episode_length_must_be_positive():
    with pytest.raises(ValueError, match="episode_length"):
        RandomEnv(episode_length=0)


PROBE_IDS = list(PROBES)


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_probes_pass_check_env_and_declare_their_optimum(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert optimal_return(env) is not None
    assert "Probe" in type(env.unwrapped).__doc__


def _episode_return(env_id, policy, seed=0):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(np.array([policy(obs)], np.float32))
        total += reward
        done = terminated or truncated
    return total


@pytest.mark.parametrize(
    ("env_id", "optimal_policy", "bad_policy"),
    [
        ("rlcheck/ActionReward-v0", lambda o: 1.0, lambda o: -1.0),
        ("rlcheck/TrackObservation-v0", lambda o: float(o[0]), lambda o: -float(o[0])),
    ],
)
def test_policy_probes_reward_the_optimal_policy_with_the_stated_optimum(env_id, optimal_policy, bad_policy):
    optimum = optimal_return(gym.make(env_id))
    for seed in range(5):
        assert _episode_return(env_id, optimal_policy, seed) == pytest.approx(optimum)
    assert np.mean([_episode_return(env_id, bad_policy, s) for s in range(20)]) < optimum - 0.5


@pytest.mark.parametrize("env_id", ["rlcheck/ConstantReward-v0", "rlcheck/DelayedReward-v0"])
def test_value_probes_give_every_policy_the_optimum(env_id):
    optimum = optimal_return(gym.make(env_id))
    for action in (-1.0, 0.0, 1.0):
        assert _episode_return(env_id, lambda o, a=action: a) == pytest.approx(optimum)


def test_observed_reward_is_the_observation_and_averages_to_its_optimum():
    returns = [_episode_return("rlcheck/ObservedReward-v0", lambda o: 0.0, seed) for seed in range(200)]
    assert set(returns) == {-1.0, 1.0}
    assert np.mean(returns) == pytest.approx(0.0, abs=0.15)


def test_time_limit_probe_truncates_after_two_steps_from_0_and_terminates_at_1():
    returns = []
    for seed in range(200):
        env = gym.make(TIME_LIMIT_ID)
        obs, _ = env.reset(seed=seed)
        action = np.array([seed % 3 - 1.0], np.float32)  # no action changes anything
        if obs[0] == 1.0:
            assert env.step(action)[1:4] == (1.0, True, False)
            returns.append(1.0)
            continue
        first, second = env.step(action), env.step(action)
        assert (first[0][0], first[1:4]) == (0.5, (0.0, False, False))
        assert (second[0][0], second[1:4]) == (1.0, (0.0, False, True))
        returns.append(0.0)
    assert np.mean(returns) == pytest.approx(optimal_return(gym.make(TIME_LIMIT_ID)), abs=0.1)
    env = gym.make(TIME_LIMIT_ID).unwrapped
    obs = np.array([[0.0], [0.5], [1.0]], np.float32)
    np.testing.assert_allclose(env.true_q(obs, np.zeros((3, 1), np.float32)), [env.gamma**2, env.gamma, 1.0])


def test_delayed_reward_bootstraps_through_a_nonterminal_step():
    env = gym.make("rlcheck/DelayedReward-v0")
    obs, _ = env.reset(seed=0)
    first = env.step(np.zeros(1, np.float32))
    second = env.step(np.zeros(1, np.float32))
    assert (obs[0], first[0][0], first[1], first[2]) == (0.0, 1.0, 0.0, False)
    assert (second[1], second[2], second[3]) == (1.0, True, False)


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_true_q_matches_one_step_returns(env_id):
    env = gym.make(env_id).unwrapped
    obs, actions = env.sample_state_actions(64, np.random.default_rng(0))
    q = env.true_q(obs, actions)
    assert q.shape == (64,)
    if env_id not in ("rlcheck/DelayedReward-v0", TIME_LIMIT_ID):  # one-step probes: Q is the reward itself
        for o, a, value in zip(obs[:8], actions[:8], q[:8], strict=True):
            env.reset()
            env._obs = o.copy()
            assert env.step(a)[1] == pytest.approx(value)
