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
