import copy

import pytest
import torch
from torch import nn

from rlcheck.nets import BatchRenorm1d, batchnorm, batchrenorm, layernorm, plain
from rlcheck.nets.seedstack import SeedStack
from tests.helpers import members_of, stacked_batch
from tests.user_nets import attribute_mlp, branchy, custom_forward, mode_branch, residual

SEEDS = 3


def _renorm_past_warmup(i, o):
    """Batch Renormalization's r/d correction from the first batch (no warm-up)."""
    return nn.Sequential(nn.Linear(i, 8), BatchRenorm1d(8, warmup_steps=0), nn.ReLU(), nn.Linear(8, o))


def _wide_layernorm(i, o):
    return nn.Sequential(nn.Linear(i, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, o))


CASES = [
    (plain, "fused"),
    (batchnorm, "fused"),
    (layernorm, "fused"),
    (batchrenorm, "fused"),
    (_renorm_past_warmup, "fused"),
    (_wide_layernorm, "fused"),
    (residual, "vmap"),
    (branchy, "loop"),
    (custom_forward, "fused"),  # a forward of its own that traces to a chain of layers
    (attribute_mlp, "fused"),
    (mode_branch, "vmap"),  # traces to a chain, but one that holds in train mode only
]


@pytest.mark.parametrize(("factory", "strategy"), CASES)
def test_stack_computes_what_each_member_computes_alone_in_both_modes(factory, strategy):
    members = members_of(factory)
    references = copy.deepcopy(members)
    stack = SeedStack.of(members, "net", stacked_batch())
    assert stack.strategy == strategy
    assert (stack.fallback_reason is not None) == (strategy == "loop")
    for step, training in enumerate([True, True, False, True, False]):
        x = stacked_batch(seed=step + 1)
        stack.train(training)
        for m in references:
            m.train(training)
        with torch.no_grad():
            expected = torch.stack([m(x[s]) for s, m in enumerate(references)])
            torch.testing.assert_close(stack(x), expected, rtol=1e-5, atol=1e-6)
    # running statistics (BatchNorm) moved per member, exactly as each member's own
    for s, reference in enumerate(references):
        torch.testing.assert_close(stack.member(s).state_dict(), reference.state_dict(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("factory", "strategy"), [CASES[1], CASES[4], CASES[6], CASES[7], CASES[8], CASES[9]])
def test_gradients_of_a_sum_of_seed_losses_are_each_members_own(factory, strategy):
    members = members_of(factory)
    references = copy.deepcopy(members)
    stack = SeedStack.of(members, "net", stacked_batch()).train()
    assert stack.strategy == strategy
    x = stacked_batch(seed=9)
    stack(x).pow(2).mean(dim=(1, 2)).sum().backward()
    with torch.no_grad():
        for p in stack.parameters():
            p.copy_(p.grad)  # the stack now holds its gradients, laid out as its weights
    for s, reference in enumerate(references):
        reference.train()
        reference(x[s]).pow(2).mean().backward()
        as_gradients = stack.member(s).state_dict()
        for name, p in reference.named_parameters():
            torch.testing.assert_close(as_gradients[name], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("factory", [batchnorm, layernorm, custom_forward])
def test_a_seed_computes_the_same_bits_whatever_seeds_share_its_stack(factory):
    members = members_of(factory, seeds=5)
    full = SeedStack.of(copy.deepcopy(members), "net", stacked_batch(seeds=5)).train()
    alone = SeedStack.of([copy.deepcopy(members[3])], "net", stacked_batch(seeds=1)).train()
    x = stacked_batch(seeds=5, seed=4)
    for _ in range(3):
        assert torch.equal(full(x)[3], alone(x[3:4])[0])


def test_stacks_survive_deepcopy_and_move_devices_consistently():
    stack = SeedStack.of(members_of(custom_forward), "net", stacked_batch())
    twin = copy.deepcopy(stack)
    x = stacked_batch(seed=2)
    stack.eval()
    twin.eval()
    with torch.no_grad():
        for p in stack.parameters():
            p.add_(1.0)  # the copy must not follow
    assert not torch.allclose(stack(x), twin(x))
    assert twin.to("cpu")(x).shape == (SEEDS, 16, 2)


def test_template_keeps_the_users_layers_for_reports():
    stack = SeedStack.of(members_of(batchnorm), "net", stacked_batch())
    kinds = {type(m) for _, m in stack.member_layers()}
    assert nn.BatchNorm1d in kinds and BatchRenorm1d not in kinds


@pytest.mark.parametrize(("factory", "strategy"), [CASES[1], CASES[6], CASES[7], CASES[8]])
def test_a_member_loaded_into_a_stack_of_one_computes_what_it_computes_in_the_stack(factory, strategy):
    stack = SeedStack.of(members_of(factory), "net", stacked_batch()).train()
    with torch.no_grad():
        stack(stacked_batch(seed=3))  # move running statistics away from their initial values
    single = SeedStack.of(members_of(factory)[:1], "net", stacked_batch(seeds=1))
    single.load_member(stack, 2)
    x = stacked_batch(seed=4)
    for training in (False, True):
        stack.train(training)
        single.train(training)
        with torch.no_grad():
            torch.testing.assert_close(single(x[2:3])[0], stack(x)[2], rtol=1e-5, atol=1e-6)


def test_a_network_with_hooks_is_not_fused_since_stacked_layers_would_never_call_them():
    calls = []
    members = members_of(plain)
    for m in members:
        m[0].register_forward_hook(lambda module, args, out: calls.append(out.shape))
    stack = SeedStack.of(members, "net", stacked_batch())
    assert stack.strategy != "fused"
    calls.clear()
    stack(stacked_batch(seed=1))
    assert calls  # the user's hook still runs
