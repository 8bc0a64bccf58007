"""A features extractor written against Stable-Baselines3 itself (needs the bench extra)."""

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class LayerNormExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 64):
        super().__init__(observation_space, features_dim)
        self.body = nn.Sequential(
            nn.Linear(observation_space.shape[0], features_dim), nn.LayerNorm(features_dim), nn.ReLU()
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.body(observations)
