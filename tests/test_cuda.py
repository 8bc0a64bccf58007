"""The engine on a GPU (`--device cuda`). Skipped where torch sees no CUDA device, as on CI;
run them on a GPU machine with ``pytest tests/test_cuda.py``."""

import pytest
import torch

from rlcheck.engine.runs import RunSpec
from rlcheck.engine.training import run, run_group, train_seeds

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY = {"steps": 300, "warmup": 100, "eval_every": 100, "device": "cuda"}


@pytest.mark.parametrize("algo", ["td3", "sac"])
@pytest.mark.parametrize("net", ["plain", "batchnorm"])
def test_same_seed_same_curve_on_cuda(algo, net):
    assert run(RunSpec(algo, net, seed=3, **TINY)).eval_returns == run(RunSpec(algo, net, seed=3, **TINY)).eval_returns


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_networks_buffer_and_noise_live_on_the_device(algo):
    agent, buffer, _ = train_seeds([RunSpec(algo, "batchnorm", seed, **TINY) for seed in (0, 1)])
    tensors = [*agent.actor.parameters(), *agent.actor.buffers(), *agent.q1.parameters(), *agent.q1.buffers()]
    assert tensors and all(t.device.type == "cuda" for t in tensors)
    assert buffer.sample(8, agent.noise).obs.device.type == "cuda"


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_a_seed_batched_on_cuda_learns_as_it_does_alone_on_the_cpu(algo):
    # GPU kernels round differently from CPU ones and batch sizes pick different kernels, so
    # curves agree in what they learn, not bit for bit. Plain nets reach 24 (SAC) / 28 (TD3)
    # on RandomEnv by step 2000 on every seed measured on the CPU (benchmarks/test_batchnorm.py).
    spec = {"steps": 2000, "warmup": 250, "eval_every": 100}
    on_gpu = run_group([RunSpec(algo, "plain", seed, **spec, device="cuda") for seed in range(3)])
    bar = 24.0 if algo == "sac" else 28.0
    assert all(result.final_return >= bar for result in on_gpu), [r.final_return for r in on_gpu]
    if algo == "td3":  # naive BN never learned TD3 on any CPU seed; SAC+BN is a coin flip per seed
        naive_bn = run_group([RunSpec(algo, "batchnorm", seed, **spec, device="cuda") for seed in range(3)])
        assert max(r.final_return for r in naive_bn) < bar, [r.final_return for r in naive_bn]


@pytest.mark.parametrize(("net", "strategy"), [("residual", "vmap"), ("branchy", "loop"), ("attribute_mlp", "fused")])
def test_user_nets_batched_by_vmap_or_trained_seed_by_seed_run_on_cuda(net, strategy):
    specs = [RunSpec("sac", f"tests.user_nets:{net}", seed, **TINY) for seed in (0, 1)]
    agent, _, results = train_seeds(specs)
    assert agent.actor.net.strategy == strategy
    assert all(t.device.type == "cuda" for t in agent.actor.parameters())
    assert all(len(r.eval_returns) == 4 for r in results)
    if agent.actor.net.strategy == "loop":  # seed by seed: a seed's curve is its curve alone
        assert results[1].eval_returns == run(specs[1]).eval_returns
