import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlcheck.errors import UsageError
from rlcheck.nets import BUILTIN_NETS, resolve_factory
from rlcheck.nets.shapes import detect


def _box(n: int) -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, (n,), np.float32)


@pytest.mark.parametrize("name", list(BUILTIN_NETS))
def test_builtin_factories_honour_the_contract(name):
    factory = resolve_factory(name, hidden=(16, 8))
    assert detect(factory, name, "actor", "deterministic", _box(5), _box(3)).builtin_contract
    assert detect(factory, name, "critic", "deterministic", _box(2), _box(3)).builtin_contract
    net = factory(5, 3)
    assert net(torch.randn(7, 5)).shape == (7, 3)


def test_hidden_sizes_are_configurable():
    net = resolve_factory("plain", hidden=(32, 16, 8))(4, 2)
    widths = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    assert widths == [32, 16, 8, 2]


def test_batchnorm_net_is_linear_batchnorm_relu_as_copied_from_supervised_code():
    net = resolve_factory("batchnorm", hidden=(8, 8))(3, 1)
    kinds = [type(m) for m in net.children()]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


def test_layernorm_net_has_no_batch_dependence():
    net = resolve_factory("layernorm", hidden=(8, 8))(3, 2).train()
    batch = torch.randn(6, 3)
    alone = torch.cat([net(batch[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(net(batch), alone)


def test_user_factory_by_module_path():
    factory = resolve_factory("rlcheck.nets:plain")
    assert factory(2, 1)(torch.zeros(4, 2)).shape == (4, 1)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet", "unknown net 'resnet'"),
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("rlcheck.nets:missing", "has no callable 'missing'"),
        ("rlcheck.nets:DEFAULT_HIDDEN", "has no callable 'DEFAULT_HIDDEN'"),
    ],
)
def test_unresolvable_factories_are_usage_errors(name, message):
    with pytest.raises(UsageError, match=message):
        resolve_factory(name)


def _squeezes(in_dim, out_dim):
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Flatten(0))


def _raises(in_dim, out_dim):
    raise RuntimeError("boom")


def _not_a_module(in_dim, out_dim):
    return lambda x: x


class _NaN(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 1), float("nan"))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (_squeezes, r"maps \(B, 4\) to \(8,\) with B=8; expected \(B, 1\)"),  # as an actor: one action dim
        (_raises, "raised RuntimeError"),
        (_not_a_module, "not a torch.nn.Module"),
        (lambda i, o: _NaN(), "NaN or inf"),
    ],
)
def test_contract_violations_are_named(factory, message):
    with pytest.raises(UsageError, match=message):
        detect(factory, "mine", "actor", "deterministic", _box(4), _box(1))
