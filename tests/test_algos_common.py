import copy

import torch
from torch import nn

from rlcheck.algos.common import QNetwork, ReplayBuffer, update_target
from rlcheck.nets import batchnorm, plain


def test_replay_buffer_stores_and_samples_transitions():
    buffer = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, device=torch.device("cpu"))
    for i in range(3):
        buffer.add(torch.full((2,), float(i)), torch.full((1,), i / 10), float(i), torch.full((2,), i + 1.0), i == 2)
    batch = buffer.sample(64, torch.Generator().manual_seed(0))
    assert batch.obs.shape == (64, 2) and batch.actions.shape == (64, 1) and batch.rewards.shape == (64,)
    assert set(batch.rewards.tolist()) == {0.0, 1.0, 2.0}  # only filled slots are drawn
    torch.testing.assert_close(batch.next_obs[:, 0], batch.obs[:, 0] + 1)
    torch.testing.assert_close(batch.terminated, (batch.rewards == 2).float())


def test_replay_buffer_overwrites_the_oldest_when_full():
    buffer = ReplayBuffer(capacity=2, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    for i in range(5):
        buffer.add(torch.zeros(1), torch.zeros(1), float(i), torch.zeros(1), False)
    assert buffer.size == 2
    assert set(buffer.sample(32, torch.Generator().manual_seed(0)).rewards.tolist()) == {3.0, 4.0}


def test_replay_sampling_is_reproducible_from_the_generator():
    buffer = ReplayBuffer(capacity=100, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    for i in range(100):
        buffer.add(torch.zeros(1), torch.zeros(1), float(i), torch.zeros(1), False)
    a = buffer.sample(16, torch.Generator().manual_seed(3)).rewards
    b = buffer.sample(16, torch.Generator().manual_seed(3)).rewards
    torch.testing.assert_close(a, b)


def test_q_network_returns_one_value_per_row():
    q = QNetwork(plain, obs_dim=3, act_dim=2)
    assert q(torch.zeros(5, 3), torch.zeros(5, 2)).shape == (5,)


def test_update_target_averages_parameters_and_copies_batchnorm_buffers():
    online = batchnorm(3, 1, hidden=(4,))
    target = copy.deepcopy(online)
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online.train()(torch.randn(16, 3))  # move the running statistics
    update_target(target, online, tau=0.25)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * o)
    bn_online = next(m for m in online.modules() if isinstance(m, nn.BatchNorm1d))
    bn_target = next(m for m in target.modules() if isinstance(m, nn.BatchNorm1d))
    torch.testing.assert_close(bn_target.running_mean, bn_online.running_mean)
    torch.testing.assert_close(bn_target.running_var, bn_online.running_var)
    assert bn_target.num_batches_tracked == bn_online.num_batches_tracked == 1
