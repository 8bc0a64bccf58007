import math

import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from rlcheck.algos.common import NetSpec, SeedNoise, seed_stacked_nets
from rlcheck.algos.sac import SAC, SACConfig, SquashedGaussianActor
from rlcheck.nets import plain
from tests.helpers import ModeRecorder, random_batch


def _agent(factory=plain, seeds=(0,), **kwargs):
    return SAC(3, 1, factory, factory, seeds=seeds, **kwargs)


def _actor(act_dim, seeds=(0,)):
    (net,) = seed_stacked_nets([NetSpec("actor", plain, 3, 2 * act_dim)], seeds, torch.device("cpu"))
    return SquashedGaussianActor(net)


def test_log_prob_matches_torch_tanh_normal():
    actor = _actor(2, seeds=(0, 1))
    obs = torch.randn(2, 64, 3)
    action, log_prob = actor.sample(obs, SeedNoise([0, 1], torch.device("cpu")))
    assert action.shape == (2, 64, 2) and log_prob.shape == (2, 64)
    mean, log_std = actor(obs)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), TanhTransform())
    torch.testing.assert_close(
        log_prob, reference.log_prob(action.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1), rtol=1e-3, atol=1e-3
    )


def test_log_std_is_bounded_and_actions_in_bounds_for_extreme_outputs():
    actor = _actor(1)
    with torch.no_grad():
        actor.net.body[-1].bias.copy_(torch.tensor([[1e4, 1e4]]))
    _, log_std = actor(torch.zeros(1, 4, 3))
    assert torch.all(log_std <= 2.0) and torch.all(log_std >= -5.0)
    action, log_prob = actor.sample(torch.zeros(1, 4, 3), SeedNoise([0], torch.device("cpu")))
    assert torch.all(action.abs() <= 1.0) and torch.isfinite(log_prob).all()


def test_deterministic_action_is_tanh_of_the_mean_and_exploration_samples():
    agent = _agent()
    obs = torch.zeros(1, 500, 3)
    greedy = agent.act(obs, explore=False)
    torch.testing.assert_close(greedy, torch.tanh(agent.actor(obs)[0]))
    assert greedy.std() < 1e-6 and agent.act(obs, explore=True).std() > 0.1


def test_entropy_coefficient_starts_at_one_and_target_entropy_is_minus_action_dim():
    agent = _agent()
    assert agent.alpha.item() == pytest.approx(1.0)
    assert agent.target_entropy == -1.0


def test_update_moves_critics_actor_alpha_and_polyak_targets():
    agent = _agent(config=SACConfig(tau=0.2))
    before = {name: [p.clone() for p in m.parameters()] for name, m in (("actor", agent.actor), ("q1", agent.q1))}
    target_before = [p.clone() for p in agent.q1_target.parameters()]
    alpha_before = agent.alpha.item()
    stats = agent.update(random_batch())
    assert set(stats) == {"critic_loss", "actor_loss", "alpha"}
    for name, module in (("actor", agent.actor), ("q1", agent.q1)):
        assert not all(torch.equal(a, b) for a, b in zip(before[name], module.parameters(), strict=True)), name
    assert agent.alpha.item() != alpha_before
    for old, target, online in zip(target_before, agent.q1_target.parameters(), agent.q1.parameters(), strict=True):
        torch.testing.assert_close(target, 0.8 * old + 0.2 * online)


def test_naive_schedule_acts_in_eval_and_updates_in_train(mode_log):
    agent = _agent(ModeRecorder)
    mode_log.clear()  # building checks the nets: not part of training
    agent.act(torch.zeros(1, 1, 3), explore=False)
    assert mode_log == [("3->2", False)]
    mode_log.clear()
    agent.update(random_batch())
    assert len(mode_log) == 8 and all(training for _, training in mode_log)


def test_alpha_falls_when_entropy_is_above_target():
    agent = _agent(config=SACConfig(alpha_lr=0.1))
    # A fresh policy has log-std around -1.5 (entropy well above -1): alpha must shrink.
    for seed in range(5):
        agent.update(random_batch(seed=seed))
    assert agent.alpha.item() < math.exp(0) - 0.1


def test_each_seed_has_its_own_entropy_coefficient_and_updates_as_if_alone():
    together, alone = _agent(seeds=(0, 1)), _agent(seeds=(1,))
    assert together.alpha.shape == (2, 1)
    batch = random_batch(seeds=2)
    for _ in range(3):
        together.update(batch)
        alone.update(type(batch)(*(t[1:] for t in batch)))
    assert torch.equal(together.alpha[1], alone.alpha[0])
    assert together.alpha[0] != together.alpha[1]
    for t, a in zip(together.actor.parameters(), alone.actor.parameters(), strict=True):
        assert torch.equal(t[1], a[0])
