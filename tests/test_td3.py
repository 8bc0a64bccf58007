import pytest
import torch

from rlcheck.algos import ModeSchedule
from rlcheck.algos.td3 import TD3, TD3Config
from rlcheck.engine.runs import RunSpec
from rlcheck.engine.training import run
from rlcheck.nets import batchnorm, plain
from tests.helpers import ModeRecorder, random_batch


def _agent(factory=plain, seeds=(0,), **kwargs):
    return TD3(3, 1, factory, factory, seeds=seeds, **kwargs)


def test_actions_stay_in_bounds_even_with_huge_preactivations():
    agent = _agent()
    with torch.no_grad():
        agent.actor.net.body[-1].bias.fill_(1e6)
    obs = torch.randn(1, 50, 3)
    for explore in (False, True):
        action = agent.act(obs, explore)
        assert action.shape == (1, 50, 1)
        assert action.min() >= -1.0 and action.max() <= 1.0


def test_exploration_adds_noise_and_evaluation_does_not():
    agent = _agent()
    obs = torch.zeros(1, 1000, 3)
    greedy = agent.act(obs, explore=False)
    assert greedy.std() < 1e-6
    noisy = agent.act(obs, explore=True)
    assert (noisy - greedy).std().item() == pytest.approx(0.1, rel=0.15)


def test_policy_and_targets_update_only_every_policy_delay_steps():
    agent = _agent(config=TD3Config(policy_delay=2, tau=0.1))
    actor_before = [p.clone() for p in agent.actor.parameters()]
    target_before = [p.clone() for p in agent.q1_target.parameters()]
    agent.update(random_batch())
    assert all(torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(target_before, agent.q1_target.parameters(), strict=True))
    stats = agent.update(random_batch(seed=1))
    assert "actor_loss" in stats
    assert not all(torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    for old, target, online in zip(target_before, agent.q1_target.parameters(), agent.q1.parameters(), strict=True):
        torch.testing.assert_close(target, 0.9 * old + 0.1 * online)


def test_targets_are_frozen_copies():
    agent = _agent()
    for target, online in ((agent.actor_target, agent.actor), (agent.q1_target, agent.q1), (agent.q2_target, agent.q2)):
        assert target is not online
        assert not any(p.requires_grad for p in target.parameters())
        for a, b in zip(target.state_dict().values(), online.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b)


def test_naive_schedule_acts_in_eval_and_updates_everything_in_train(mode_log):
    agent = _agent(ModeRecorder)
    mode_log.clear()  # building checks the nets: not part of training
    agent.act(torch.zeros(1, 1, 3), explore=True)
    assert mode_log == [("3->1", False)]  # the actor acts in eval mode (batch of one)
    mode_log.clear()
    agent.update(random_batch())
    agent.update(random_batch(seed=1))
    assert mode_log and all(training for _, training in mode_log)


def test_mode_schedule_is_the_one_switch(mode_log):
    aware = ModeSchedule(td_target="eval", critic_in_actor_update="eval")
    agent = _agent(ModeRecorder, config=TD3Config(policy_delay=1), modes=aware)
    mode_log.clear()
    agent.update(random_batch())
    # order: target actor, 2 target critics (eval); 2 critics (train); actor (train); critic (eval)
    assert [t for _, t in mode_log] == [False, False, False, True, True, True, False]


def test_batchnorm_critic_running_stats_move_during_updates_and_targets_copy_them():
    agent = _agent(batchnorm)
    agent.update(random_batch())
    agent.update(random_batch(seed=1))
    online = agent.q1.net.body[1]
    target = agent.q1_target.net.body[1]
    assert online.num_batches_tracked > 0
    torch.testing.assert_close(target.running_mean, online.running_mean)
    torch.testing.assert_close(target.running_var, online.running_var)


def test_td3_with_plain_nets_learns_random_env_quickly():
    # SB3's test_identity-style check: short, seeded, and it fails if learning breaks.
    result = run(RunSpec("td3", "plain", seed=0, steps=1000, eval_every=250))
    assert result.final_return >= 28.0


def test_each_seed_updates_as_if_it_were_alone():
    together, alone = _agent(seeds=(0, 1, 2)), _agent(seeds=(1,))
    batch = random_batch(seeds=3)
    own = type(batch)(*(t[1:2] for t in batch))
    for _ in range(3):
        together.update(batch)
        alone.update(own)
    for t, a in zip(together.actor.parameters(), alone.actor.parameters(), strict=True):
        assert torch.equal(t[1], a[0])
    for t, a in zip(together.q2.parameters(), alone.q2.parameters(), strict=True):
        assert torch.equal(t[1], a[0])
