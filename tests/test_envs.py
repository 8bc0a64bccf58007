import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlcheck.envs import RANDOM_ENV_ID, RandomEnv, optimal_return


def test_random_env_passes_gymnasium_check_env():
    check_env(RandomEnv(), skip_render_check=True)


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
