import copy

import pytest
import torch

from rlcheck.algos import common
from rlcheck.algos.common import Adam, NetSpec, QNetwork, ReplayBuffer, SeedNoise, seed_stacked_nets, update_target
from rlcheck.nets import batchnorm, plain
from rlcheck.nets.seedstack import mark_seed_first

CPU = torch.device("cpu")


def _add(buffer: ReplayBuffer, value: float, terminated: bool = False, seeds: int = 1) -> None:
    """One transition per seed; seed s stores value + 100 s, so seeds can be told apart."""
    offset = torch.arange(seeds, dtype=torch.float32) * 100
    obs = (value + offset).unsqueeze(1).expand(seeds, buffer.obs.shape[2])
    terminal = torch.full((seeds,), float(terminated))
    buffer.add(obs, (value / 10 + offset).unsqueeze(1), value + offset, obs + 1, terminal)


def test_replay_buffer_stores_and_samples_transitions():
    buffer = ReplayBuffer(1, capacity=4, obs_dim=2, act_dim=1, device=CPU)
    for i in range(3):
        _add(buffer, float(i), terminated=i == 2)
    batch = buffer.sample(64, SeedNoise([0], CPU))
    assert batch.obs.shape == (1, 64, 2) and batch.actions.shape == (1, 64, 1) and batch.rewards.shape == (1, 64)
    assert set(batch.rewards.flatten().tolist()) == {0.0, 1.0, 2.0}  # only filled slots are drawn
    torch.testing.assert_close(batch.next_obs[..., 0], batch.obs[..., 0] + 1)
    torch.testing.assert_close(batch.terminated, (batch.rewards == 2).float())


def test_replay_buffer_overwrites_the_oldest_when_full():
    buffer = ReplayBuffer(1, capacity=2, obs_dim=1, act_dim=1, device=CPU)
    for i in range(5):
        _add(buffer, float(i))
    assert buffer.size == 2
    assert set(buffer.sample(32, SeedNoise([0], CPU)).rewards.flatten().tolist()) == {3.0, 4.0}


def test_each_seed_samples_only_its_own_transitions():
    buffer = ReplayBuffer(3, capacity=10, obs_dim=1, act_dim=1, device=CPU)
    for i in range(10):
        _add(buffer, float(i), seeds=3)
    batch = buffer.sample(50, SeedNoise([0, 1, 2], CPU))
    for s in range(3):
        assert set(batch.rewards[s].tolist()) <= {i + 100.0 * s for i in range(10)}
        torch.testing.assert_close(batch.actions[s, :, 0], (batch.rewards[s] - 100 * s) / 10 + 100 * s)


def test_replay_sampling_is_reproducible_and_independent_of_the_other_seeds():
    buffer = ReplayBuffer(3, capacity=100, obs_dim=1, act_dim=1, device=CPU)
    for i in range(100):
        _add(buffer, float(i), seeds=3)
    alone = ReplayBuffer(1, capacity=100, obs_dim=1, act_dim=1, device=CPU)
    for i in range(100):
        _add(alone, float(i))
    together = buffer.sample(16, SeedNoise([7, 3, 9], CPU)).rewards
    torch.testing.assert_close(together, buffer.sample(16, SeedNoise([7, 3, 9], CPU)).rewards)
    # seed 3 draws the same slots whether it samples alone or beside seeds 7 and 9
    torch.testing.assert_close(together[1] - 100, alone.sample(16, SeedNoise([3], CPU)).rewards[0])


def test_seed_noise_streams_do_not_depend_on_the_other_seeds_or_on_blocks():
    together, alone = SeedNoise([0, 5], CPU), SeedNoise([5], CPU)
    for _ in range(300):  # crosses a block boundary (256 draws per block of this shape)
        torch.testing.assert_close(together.normal(4)[1], alone.normal(4)[0])
    assert not torch.equal(together.normal(4)[0], together.normal(4)[1])
    draws = SeedNoise([1], CPU).integers(10, 10_000)
    assert draws.min() == 0 and draws.max() == 9
    assert SeedNoise([1], CPU).uniform(3).shape == (1, 3)


def test_stacked_nets_start_from_each_seeds_own_weights():
    specs = [NetSpec("actor", plain, 3, 1), NetSpec("critic", plain, 4, 1)]
    alone = seed_stacked_nets(specs, [4], CPU)
    together = seed_stacked_nets(specs, [2, 4], CPU)
    for a, t in zip(alone, together, strict=True):
        for pa, pt in zip(a.parameters(), t.parameters(), strict=True):
            torch.testing.assert_close(pa[0], pt[1], rtol=0, atol=0)
    torch.manual_seed(0)
    expected = plain(3, 1)  # seed 0's first net: what torch.manual_seed(0) builds
    (actor,) = seed_stacked_nets(specs[:1], [0], CPU)
    torch.testing.assert_close(actor.member(0).state_dict(), expected.state_dict())


def test_q_network_returns_one_value_per_row():
    (net,) = seed_stacked_nets([NetSpec("critic", plain, 5, 1)], [0, 1], CPU)
    q = QNetwork(net)
    assert q(torch.zeros(2, 7, 3), torch.zeros(2, 7, 2)).shape == (2, 7)


@pytest.mark.parametrize("stacked", [False, True])
def test_update_target_averages_parameters_and_copies_batchnorm_buffers(stacked):
    if stacked:
        (online,) = seed_stacked_nets([NetSpec("critic", lambda i, o: batchnorm(i, o, hidden=(4,)), 3, 1)], [0, 1], CPU)
        batch = torch.randn(2, 16, 3)
    else:
        online, batch = batchnorm(3, 1, hidden=(4,)), torch.randn(16, 3)
    target = copy.deepcopy(online)
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online.train()(batch)  # move the running statistics
    update_target(target, online, tau=0.25)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * o)
    buffers = dict(online.named_buffers())
    assert any("running_var" in name for name in buffers)
    for name, buffer in target.named_buffers():
        torch.testing.assert_close(buffer, buffers[name])
    bn = [b for name, b in online.named_buffers() if name.endswith("num_batches_tracked")]
    assert bn and all(int(n) == 1 for n in bn)


def _adam_trajectory(make_optimizer, steps: int = 5) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    unused = torch.nn.Parameter(torch.ones(2))  # never in the loss: no gradient, left alone
    optimizer = make_optimizer([*net.parameters(), unused])
    for step in range(steps):
        x = torch.randn(16, 3, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        optimizer.step()
    return [p.detach().clone() for p in (*net.parameters(), unused)]


def test_adam_is_torchs_fused_adam_bit_for_bit():
    ours = _adam_trajectory(lambda params: Adam(params, lr=1e-2, betas=(0.5, 0.999)))
    torchs = _adam_trajectory(lambda params: torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.999), fused=True))
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs, strict=True))
    assert torch.equal(ours[-1], torch.ones(2))


def test_adam_hands_over_to_torch_optim_where_there_is_no_fused_kernel(monkeypatch):
    monkeypatch.setitem(common._FUSED_ADAM, "cpu", False)
    ours = _adam_trajectory(lambda params: Adam(params, lr=1e-2))
    assert isinstance(Adam([torch.nn.Parameter(torch.ones(1))], lr=1e-2)._fallback, torch.optim.Adam)
    unfused = _adam_trajectory(lambda params: torch.optim.Adam(params, lr=1e-2))
    assert all(torch.equal(a, b) for a, b in zip(ours, unfused, strict=True))


def test_adam_and_target_updates_step_each_seed_of_a_stacked_tensor_as_if_it_were_alone():
    # A (40, 3) tensor reaches the kernels' vector instructions where a lone seed's (1, 3) does
    # not; stepped slice by slice, every seed gets the bits it gets alone.
    grads = torch.randn(20, 40, 3, generator=torch.Generator().manual_seed(1))
    start = torch.randn(40, 3, generator=torch.Generator().manual_seed(2))

    def trajectory(members: slice) -> tuple[torch.Tensor, torch.Tensor]:
        param = torch.nn.Parameter(start[members].clone())
        mark_seed_first(param)
        target = torch.nn.Linear(1, 1, bias=False)
        target.weight = torch.nn.Parameter(torch.zeros_like(param), requires_grad=False)
        online = torch.nn.Linear(1, 1, bias=False)
        online.weight = param
        optimizer = Adam([param], lr=1e-2)
        for g in grads:
            param.grad = g[members].clone()
            optimizer.step()
            update_target(target, online, tau=0.3)
        return param.detach(), target.weight.detach()

    stacked = trajectory(slice(None))
    for s in range(40):
        alone = trajectory(slice(s, s + 1))
        assert torch.equal(stacked[0][s], alone[0][0]) and torch.equal(stacked[1][s], alone[1][0])


def test_without_fused_adam_no_job_is_split_by_the_worker_count(monkeypatch):
    # torch.optim's Adam steps a stacked tensor whole: a seed's bits could then depend on the
    # stack's size, so the runner must keep the grouping the spec list gives.
    from rlcheck.engine.agents import fuses_seeds
    from rlcheck.engine.runner import batch_jobs
    from rlcheck.engine.runs import RunSpec

    specs = [RunSpec("td3", "plain", seed, steps=200) for seed in range(4)]
    assert fuses_seeds(specs[0]) and [len(job) for job in batch_jobs(specs, workers=2)] == [2, 2]
    monkeypatch.setitem(common._FUSED_ADAM, "cpu", False)
    assert not fuses_seeds(specs[0]) and [len(job) for job in batch_jobs(specs, workers=2)] == [4]
