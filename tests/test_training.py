import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcheck.engine.agents import make_env
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.engine.training import _Envs, run, run_group, train_seeds
from rlcheck.errors import UsageError
from rlcheck.verdicts.door import check_before_training
from rlcheck.verdicts.study import Cell, StudyConfig

TINY = {"steps": 300, "warmup": 100, "eval_every": 100}


@pytest.mark.parametrize("algo", ["td3", "sac"])
@pytest.mark.parametrize("net", ["plain", "batchnorm"])
def test_same_seed_same_curve(algo, net):
    first = run(RunSpec(algo, net, seed=3, **TINY))
    second = run(RunSpec(algo, net, seed=3, **TINY))
    assert first.eval_returns == second.eval_returns


def test_different_seeds_differ():
    a = run(RunSpec("td3", "plain", seed=0, **TINY))
    b = run(RunSpec("td3", "plain", seed=1, **TINY))
    assert a.eval_returns != b.eval_returns


def test_result_records_curve_and_derived_measures():
    result = run(RunSpec("td3", "plain", seed=0, **TINY))
    assert result.eval_steps == [0, 100, 200, 300]
    assert result.final_return == result.eval_returns[-1]
    assert result.threshold == 28.0 and result.optimal_return == 30.0
    assert result.wall_time_s > 0 and result.env_steps_per_s > 0
    roundtrip = RunResult.from_dict(result.to_dict())
    assert roundtrip.spec == result.spec and roundtrip.eval_returns == result.eval_returns


def test_score_instability_and_steps_to_threshold():
    spec = RunSpec("td3", "plain", seed=0, steps=900, eval_every=100)
    result = RunResult(spec, list(range(0, 1000, 100)), [0, 5, 10, 29, 28, 30, 20, 30, 28, 30], 1.0, 28.0, 30.0)
    last_third = np.array([30, 28, 30])  # evaluations at steps >= 600
    assert result.score == pytest.approx(np.mean([20, *last_third]))
    assert result.instability == pytest.approx(np.mean([10, 2, 2]))
    assert result.steps_to_threshold == 300


def test_sac_learns_a_real_gymnasium_task_not_only_the_toy():
    # Pendulum: a random policy scores about -1500; SAC with its standard defaults is at
    # -472 (seed 0) after 4000 steps, measured. The algorithms are not tuned to RandomEnv;
    # benchmarks/test_real_tasks.py (slow) checks TD3 and SAC over longer runs.
    result = run(
        RunSpec("sac", "plain", seed=0, env_id="Pendulum-v1", steps=4000, warmup=1000, eval_every=1000, eval_episodes=3)
    )
    assert result.eval_returns[0] < -1000
    assert result.final_return > -800


def test_non_box_action_space_is_a_usage_error():
    with pytest.raises(UsageError, match="Discrete action space"):
        make_env("CartPole-v1")


def test_unknown_env_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot make env 'NoSuchEnv-v9'"):
        make_env("NoSuchEnv-v9")


class _Unbounded(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,))


def test_unbounded_action_space_is_a_usage_error():
    gym.register("rlcheck-test/Unbounded-v0", entry_point=_Unbounded)
    with pytest.raises(UsageError, match="unbounded action space"):
        make_env("rlcheck-test/Unbounded-v0")


@pytest.mark.parametrize("algo", ["td3", "sac"])
@pytest.mark.parametrize("net", ["plain", "batchnorm", "layernorm"])
def test_a_seed_trained_beside_others_gets_the_curve_it_gets_alone(algo, net):
    # Nine seeds: a stack of (9, 1) or (9, 2) parameters is long enough for Adam's and lerp's
    # vector instructions, which a lone seed's (1, 1) never reaches (rlcheck.nets.seedstack.member_slices).
    seeds = (5, 3, 8, 0, 1, 2, 4, 6, 7)
    agent, _, together = train_seeds([RunSpec(algo, net, seed, **TINY) for seed in seeds])
    assert together[1].spec.seed == 3 and together[1].batched_with == len(seeds)
    for i in (1, 8):
        alone_agent, _, (alone,) = train_seeds([RunSpec(algo, net, seed=seeds[i], **TINY)])
        assert together[i].eval_returns == alone.eval_returns  # bit for bit
        for name in ("actor", "q1", "q2"):  # and so is every weight and running statistic
            ours, theirs = getattr(agent, name).net.member(i), getattr(alone_agent, name).net.member(0)
            assert all(
                torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True)
            )
    assert together[0].eval_returns != together[1].eval_returns


def test_value_probe_errors_are_per_seed_and_independent_of_the_batch():
    spec = {"env_id": "rlcheck/ConstantReward-v0", "steps": 200, "warmup": 50, "eval_every": 50}
    together = run_group([RunSpec("td3", "plain", seed, **spec) for seed in (0, 1)])
    alone = run(RunSpec("td3", "plain", 1, **spec))
    assert together[1].eval_value_errors == alone.eval_value_errors
    assert together[0].eval_value_errors != together[1].eval_value_errors
    assert alone.eval_value_errors[-1] < alone.eval_value_errors[0]  # the critic learned Q = 1


def test_a_net_vmap_cannot_batch_trains_seed_by_seed_and_the_study_says_so_once():
    specs = [RunSpec("td3", "tests.user_nets:branchy", seed, **TINY) for seed in (0, 1)]
    agent, _, results = train_seeds(specs)
    assert agent.actor.net.strategy == "loop" and "torch.func.vmap" in agent.actor.net.fallback_reason
    assert results[1].eval_returns == run(specs[1]).eval_returns
    cells = (Cell("td3", steps=300, warmup=100), Cell("sac", steps=300, warmup=100))
    notices = check_before_training(StudyConfig(cells=cells, nets=("plain", "tests.user_nets:branchy")))
    assert len(notices) == 2  # actor and critic, once each for both cells
    assert all("cannot be batched across seeds" in n and "one after another" in n for n in notices)


def test_a_net_batched_by_vmap_is_named_once_per_role_with_why_it_is_slower():
    cells = (Cell("td3", steps=300, warmup=100), Cell("sac", steps=300, warmup=100))
    notices = check_before_training(
        StudyConfig(cells=cells, nets=("plain", "tests.user_nets:residual", "tests.user_nets:attribute_mlp"))
    )
    assert len(notices) == 2 and all("'tests.user_nets:residual' is batched with torch.func.vmap" in n for n in notices)


def test_train_seeds_refuses_runs_that_differ_in_more_than_the_seed():
    with pytest.raises(ValueError, match="differ only in their seed"):
        train_seeds([RunSpec("td3", "plain", 0, **TINY), RunSpec("td3", "batchnorm", 1, **TINY)])
    with pytest.raises(ValueError, match="a run twice"):
        train_seeds([RunSpec("td3", "plain", 0, **TINY), RunSpec("td3", "plain", 0, **TINY)])
    with pytest.raises(ValueError, match="environments of different sizes"):
        train_seeds(
            [RunSpec("td3", "plain", 0, **TINY), RunSpec("td3", "plain", 0, "rlcheck/ConstantReward-v0", **TINY)]
        )


def test_runs_on_different_envs_of_one_size_batch_together_and_each_gets_its_own_curve():
    probes = {"env_id": "rlcheck/ConstantReward-v0", "steps": 200, "warmup": 50, "eval_every": 50}
    specs = [
        RunSpec("sac", "plain", 0, **probes),
        RunSpec("sac", "plain", 0, **{**probes, "env_id": "rlcheck/ActionReward-v0"}),
        RunSpec("sac", "plain", 1, **{**probes, "env_id": "rlcheck/TrackObservation-v0"}, eval_episodes=10),
    ]
    together = run_group(specs)
    for spec, result in zip(specs, together, strict=True):
        alone = run(spec)
        assert result.eval_returns == alone.eval_returns and result.eval_value_errors == alone.eval_value_errors
        assert result.batched_with == 3
    constant, action, _ = together
    assert constant.eval_value_errors is not None and len(constant.eval_value_errors) == len(constant.eval_steps)
    assert action.optimal_return == 1.0 and constant.eval_returns[-1] == 1.0


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_a_vmap_batched_user_net_updates_each_seed_as_alone_up_to_rounding(algo):
    from rlcheck.algos import ALGORITHMS
    from rlcheck.nets import resolve_factory
    from tests.helpers import random_batch

    # No BatchNorm here: a bias in front of BatchNorm has a gradient of exactly 0 up to
    # rounding, and Adam's first steps turn that rounding into steps of +-lr.
    factory = resolve_factory("tests.user_nets:residual")
    together = ALGORITHMS[algo](3, 1, factory, factory, seeds=[5, 3, 8])
    alone = ALGORITHMS[algo](3, 1, factory, factory, seeds=[3])
    assert together.actor.net.strategy == "vmap"
    batch = random_batch(seeds=3)
    for _ in range(4):
        together.update(batch)
        alone.update(type(batch)(*(t[1:2] for t in batch)))
    for t, a in zip(together.q1.parameters(), alone.q1.parameters(), strict=True):
        torch.testing.assert_close(t[1], a[0], rtol=1e-5, atol=1e-6)
    for t, a in zip(together.actor.parameters(), alone.actor.parameters(), strict=True):
        torch.testing.assert_close(t[1], a[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_the_baseline_written_as_a_class_trains_bit_for_bit_like_the_baseline(algo):
    # A user's forward that traces to the baseline's chain is fused like it: same weights at
    # the start, same kernels, so the same curve -- a gate that compares them sees no difference.
    specs = [
        RunSpec(algo, net, seed, steps=400, warmup=100)
        for net in ("plain", "tests.user_nets:plain_as_a_class")
        for seed in (0, 1)
    ]
    plain, as_class = run_group(specs[:2]), run_group(specs[2:])
    assert [r.eval_returns for r in plain] == [r.eval_returns for r in as_class]
    assert len({tuple(r.eval_returns) for r in plain}) == 2  # the seeds differ: the curves say something


def test_each_member_gets_actions_in_its_own_envs_bounds():
    """Members on one env id are scaled in one call; members on envs with other bounds, one by one."""
    unit = np.array([[1.0], [-1.0], [0.5]], dtype=np.float32)
    same = _Envs(["rlcheck/RandomEnv-v0"] * 3, torch.device("cpu"))
    mixed = _Envs(["rlcheck/RandomEnv-v0", "Pendulum-v1", "Pendulum-v1"], torch.device("cpu"))  # Pendulum: [-2, 2]
    assert same.shared_scale is not None and mixed.shared_scale is None
    assert [a.tolist() for a in same.scale(unit)] == [[1.0], [-1.0], [0.5]]
    assert [a.tolist() for a in mixed.scale(unit)] == [[1.0], [-2.0], [1.0]]
    assert all(a.dtype == np.float32 and a.shape == (1,) for a in [*same.scale(unit), *mixed.scale(unit)])
