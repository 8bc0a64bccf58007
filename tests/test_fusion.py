"""Which networks fuse into stacked layers: nn.Sequential of known layers, or a forward that traces to one."""

import pytest
import torch
from torch import nn

from rlcheck.nets.seedstack import SeedStack
from rlcheck.nets.tracing import as_chain
from tests.helpers import ModeRecorder, members_of, stacked_batch
from tests.user_nets import attribute_mlp, branchy, residual


def test_a_traced_chain_keeps_the_users_module_and_layer_names():
    members = members_of(attribute_mlp)
    chain = as_chain(members[0])
    assert list(chain._modules) == ["fc1", "#1", "body:0", "body:1", "#4", "fc2", "#6", "head"]
    assert chain.fc1 is members[0].fc1  # the user's own layers, not copies
    stack = SeedStack.of(members, "net", stacked_batch())
    assert type(stack.member(0)) is type(members[0]) and type(stack.template) is type(members[0])


class _SharedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.fc(x)))


class _LeakyWithSlope(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return nn.functional.leaky_relu(self.fc(x), 0.2)


class _DirectParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 4))

    def forward(self, x):
        return torch.relu(x @ self.weight)


class _KeepsActivation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        hidden = torch.relu(self.fc1(x))
        self.last_hidden = hidden  # for a plot, say: a trace would keep the first batch's forever
        return self.fc2(hidden)


@pytest.mark.parametrize(
    "module",
    [
        _SharedLayer(),
        _LeakyWithSlope(),
        _DirectParameter(),
        residual(4, 2),
        branchy(4, 2),
        _KeepsActivation(),
        ModeRecorder(4, 2),
    ],
)
def test_only_a_plain_chain_of_known_layers_is_traced_into_one(module):
    # a layer used twice would be stacked as two; an argument would be dropped; a parameter
    # used directly, a skip connection, data-dependent control flow: none is a chain; nor is
    # a forward with side effects (keeping an activation, logging its calls), which a trace drops
    assert as_chain(module) is None


@pytest.mark.parametrize("in_features", [1, 2, 64])
@pytest.mark.parametrize("out_features", [1, 2, 64])
@pytest.mark.parametrize("batch", [1, 10, 256])
def test_a_stacked_linear_gives_each_member_the_bits_it_gets_alone_forward_and_backward(
    in_features, out_features, batch
):
    # A stack of one goes to other kernels than a stack of several where a side is 1 (a
    # one-dimensional observation, one action), and those round differently on some processors
    # (AVX-512): each member must get the same bits in any stack, or a seed's curve would depend
    # on the seeds it trains beside.
    from rlcheck.nets.fusion import StackedLinear

    torch.manual_seed(0)
    layers = [nn.Linear(in_features, out_features) for _ in range(3)]
    x, grad = torch.randn(3, batch, in_features), torch.randn(3, batch, out_features)

    def forward_backward(members):
        stack = StackedLinear([layers[i] for i in members])
        inputs = x[list(members)].clone().requires_grad_(True)
        out = stack(inputs)
        out.backward(grad[list(members)])
        return out.detach(), inputs.grad, stack.weight.grad, stack.bias.grad

    together = forward_backward((0, 1, 2))
    for member in range(3):
        alone = forward_backward((member,))
        assert all(torch.equal(a[0], t[member]) for a, t in zip(alone, together, strict=True))
