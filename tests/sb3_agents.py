"""Stable-Baselines3 models as a user writes them, for `rlcheck check --agent` (rlcheck[sb3])."""

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise


def make_td3(env: gym.Env, seed: int) -> TD3:
    """SB3's TD3 with rlcheck's reference settings (64x64, learning rate 3e-4, exploration noise 0.1)."""
    noise = NormalActionNoise(np.zeros(env.action_space.shape), 0.1 * np.ones(env.action_space.shape))
    return TD3("MlpPolicy", env, learning_rate=3e-4, action_noise=noise, policy_kwargs={"net_arch": [64, 64]},
               seed=seed, device="cpu")  # fmt: skip


def make_sac(env: gym.Env, seed: int) -> SAC:
    """SB3's SAC at 64x64 (its other settings as SB3 sets them)."""
    return SAC("MlpPolicy", env, policy_kwargs={"net_arch": [64, 64]}, seed=seed, device="cpu")


def make_sac_odd(env: gym.Env, seed: int) -> SAC:
    """Settings the reference cannot take: another discount, two updates per step, Tanh."""
    return SAC("MlpPolicy", env, gamma=0.98, gradient_steps=2, policy_kwargs={"activation_fn": torch.nn.Tanh},
               seed=seed, device="cpu")  # fmt: skip


def make_td3_as_sb3_ships_it(env: gym.Env, seed: int) -> TD3:
    return TD3("MlpPolicy", env, seed=seed, device="cpu")


def make_ppo(env: gym.Env, seed: int) -> PPO:
    return PPO("MlpPolicy", env, seed=seed, device="cpu")


def make_without_env(env: gym.Env, seed: int) -> TD3:
    return TD3("MlpPolicy", "Pendulum-v1", seed=seed, device="cpu")
