"""Networks as other codebases write them: detected, adapted, trained; or refused at the door."""

import gymnasium as gym
import pytest

import rlcheck.envs  # noqa: F401
from rlcheck.algos import actor_kind_of
from rlcheck.cli import main
from rlcheck.engine.runs import RunSpec
from rlcheck.front.words import findings_text
from rlcheck.nets.adapters import resolve
from rlcheck.nets.shapes import DoesNotFit
from rlcheck.verdicts.diagnose import diagnose_run
from tests.helpers import exit_code

N = "tests.codebase_nets"
CHEAP = ["--seeds", "3", "--max-seeds", "3", "--workers", "1"]


def _spaces(env_id="Pendulum-v1"):
    env = gym.make(env_id)
    return env.observation_space, env.action_space


@pytest.mark.parametrize(
    ("net", "role", "algo", "detected"),
    [
        (f"{N}:CleanRLQNetwork", "critic", "td3", "Class(env), forward(obs, action) -> (B, 1)"),
        (f"{N}:CleanRLTD3Actor", "actor", "td3", "Class(env), forward(obs) -> already squashed, scaled to the env's"),
        (f"{N}:CleanRLSACActor", "actor", "sac", "(mean, log_std) tuple, log-std used as the module bounds it"),
        (f"{N}:SpinningUpQFunction", "critic", "sac", "action_space), forward(obs, action) -> (B,)"),
        (f"{N}:SpinningUpTD3Actor", "actor", "td3", "already squashed, scaled to the env's bounds"),
        (f"{N}:NormalisingExtractor", "critic", "sac", "features extractor (observation_space, 64) + plain head"),
        (f"{N}:LocScaleActor", "actor", "sac", "(loc, scale) tuple, scale > 0"),
        (f"{N}:tanh_ended", "actor", "td3", "already squashed into [-1, 1]"),
        ("tests.user_nets:custom_mlp", "actor", "td3", "raw outputs (rlcheck squashes them)"),
    ],
)
def test_shapes_of_other_codebases_are_detected_as_written(net, role, algo, detected):
    observation_space, action_space = _spaces()
    assert detected in resolve(net, role, actor_kind_of(algo), observation_space, action_space).shape.describe()


@pytest.mark.parametrize(
    ("net", "algo", "serves"),
    [
        (f"{N}:CleanRLTD3Actor", "sac", "SAC takes a Gaussian actor"),
        (f"{N}:CleanRLSACActor", "td3", "TD3 takes a deterministic actor"),
        (f"{N}:tanh_ended", "crossq", "CROSSQ takes a Gaussian actor"),
    ],
)
def test_an_actor_of_the_other_kind_does_not_fit(net, algo, serves):
    with pytest.raises(DoesNotFit, match=serves):
        resolve(net, "actor", actor_kind_of(algo), *_spaces(), algo=algo)


def test_an_adapted_scaled_actor_acts_in_the_unit_range_rlcheck_scales_from():
    resolved = resolve(f"{N}:CleanRLTD3Actor", "actor", "deterministic", *_spaces())  # Pendulum: actions in [-2, 2]
    module = resolved.factory(3, 1)
    import torch

    out = module(100 * torch.randn(64, 3))
    assert out.abs().max() <= 1.0 + 1e-6 and out.abs().max() > 0.9  # tanh saturates, then mapped back to [-1, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--critic-net", f"{N}:SB3TwinCritic"], "returns 2 Q-values; rlcheck builds its twin critics itself"),
        (["--actor-net", f"{N}:lazy_mlp"], "has lazy layers"),
        (["--sac-actor-net", f"{N}:SpinningUpSACActor", "--algos", "sac"], "samples its actions inside forward"),
        (["--net", f"{N}:CleanRLQNetwork"], "one factory cannot tell an actor from a critic"),
        (["--net", f"{N}:softmax_head"], "gets no gradient for 0.weight, 0.bias, 2.weight, 2.bias"),
        (["--net", f"{N}:DetachedBranch"], "DetachedBranch' gets no gradient for encoder"),
        (["--critic-net", f"{N}:CopyPasteQNetwork"], "CopyPasteQNetwork' ignores the action: dQ/da is 0"),
        (["--net", f"{N}:frozen_first_layer", "--refuse-frozen"], "frozen parameters (requires_grad=False)"),
        (
            ["--actor-net", f"{N}:CleanRLSACActor", "--algos", "td3"],
            "is Gaussian; TD3 takes a deterministic actor",
        ),
    ],
)
def test_what_rlcheck_cannot_take_is_refused_at_the_door_in_one_line(tmp_path, capsys, args, message):
    code = exit_code(main, ["check", *args, "--probes", "action", "--out", str(tmp_path), "--quiet", *CHEAP])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs.jsonl").exists()


def test_cleanrl_classes_pass_the_check_unchanged_td3_and_sac(tmp_path, capsys):
    code = main(
        ["check", "--td3-actor-net", f"{N}:CleanRLTD3Actor", "--sac-actor-net", f"{N}:CleanRLSACActor",
         "--critic-net", f"{N}:CleanRLQNetwork", "--probes", "action,track", "--out", str(tmp_path), *CHEAP]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert "td3 actor tests.codebase_nets:CleanRLTD3Actor: Class(env)" in err
    assert "sac critic tests.codebase_nets:CleanRLQNetwork: Class(env), forward(obs, action) -> (B, 1)" in err
    assert code == 0, out


def test_a_tanh_ended_actor_and_a_two_input_flat_critic_pass_and_sac_is_skipped_with_why(tmp_path, capsys):
    code = main(
        ["check", "--actor-net", f"{N}:SpinningUpTD3Actor", "--critic-net", f"{N}:SpinningUpQFunction",
         "--probes", "action,track", "--out", str(tmp_path), *CHEAP]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert "sac skipped: actor 'tests.codebase_nets:SpinningUpTD3Actor' is deterministic" in err
    assert code == 0, out


def test_a_loc_scale_actor_over_a_features_extractor_critic_passes_sac(tmp_path, capsys):
    code = main(
        ["check", "--sac-actor-net", f"{N}:LocScaleActor", "--critic-net", f"{N}:NormalisingExtractor",
         "--algos", "sac", "--probes", "action,track", "--out", str(tmp_path), *CHEAP]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out


def test_a_deliberately_frozen_layer_is_named_in_a_note_and_stays_frozen(tmp_path, capsys):
    code = main(["check", "--net", f"{N}:frozen_first_layer", "--algos", "td3", "--probes", "action",
                 "--out", str(tmp_path), *CHEAP])  # fmt: skip
    err = capsys.readouterr().err
    assert "frozen on purpose? actor 'tests.codebase_nets:frozen_first_layer': 0.weight" in err
    assert code in (0, 1)  # the verdict is the gate's; the point here is the note


def test_frozen_parameters_are_not_trained():
    import torch

    from rlcheck.engine.training import train

    spec = RunSpec("td3", f"{N}:frozen_first_layer", 0, "rlcheck/ActionReward-v0", steps=200, warmup=100)
    env = gym.make(spec.env_id)
    before = resolve(spec.net, "actor", "deterministic", env.observation_space, env.action_space).factory
    with torch.random.fork_rng():
        torch.manual_seed(0)
        initial = before(1, 1)[0].weight.detach().clone()
    agent, _, _ = train(spec)
    stack = agent.actor.net
    assert torch.equal(stack.member(0)[0].weight.detach().cpu(), initial)


def test_a_zero_initialised_last_layer_passes_the_gradient_door(tmp_path):
    assert main(
        [
            "check",
            "--net",
            f"{N}:zero_init_last_layer",
            "--algos",
            "td3",
            "--probes",
            "action",
            "--out",
            str(tmp_path),
            "--quiet",
            *CHEAP,
        ]
    ) in (0, 1)  # fmt: skip  (not 2: it reached training)


def test_the_diagnosis_says_when_the_critic_ignores_the_action():
    diagnosis = diagnose_run(RunSpec("td3", f"{N}:softmax_head", 0, "rlcheck/ActionReward-v0", steps=300, warmup=100))
    assert "critic_ignores_action" in diagnosis.findings
    assert any("does not depend on the action" in text for text in findings_text(diagnosis))


def test_the_diagnosis_says_when_actions_are_capped_by_a_second_squashing():
    spec = RunSpec("td3", f"{N}:tanh_ended", 0, "rlcheck/ActionReward-v0", steps=400, warmup=100, actor_output="raw")
    diagnosis = diagnose_run(spec)
    assert "actions_capped" in diagnosis.findings
    assert any("never leave" in text and "--actor-output squashed" in text for text in findings_text(diagnosis))


def test_one_net_trains_alone_from_one_seed(tmp_path, capsys):
    code = main(["--nets", "plain", "--algos", "td3", "--seeds", "1", "--steps", "300", "--warmup", "100",
                 "--out", str(tmp_path), "--workers", "1", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "trained alone" in out and "nothing to compare" in out
    assert (tmp_path / "results.json").exists()


def test_a_user_net_alone_is_not_compared_with_the_default_baseline(tmp_path, capsys):
    code = main(["--nets", "tests.user_nets:custom_mlp", "--algos", "td3", "--seeds", "1", "--steps", "300",
                 "--warmup", "100", "--out", str(tmp_path), "--workers", "1", "--quiet"])  # fmt: skip
    assert code == 0 and "trained alone" in capsys.readouterr().out


def _strategies(spec: RunSpec) -> tuple[str, str]:
    from rlcheck.engine.agents import build_agent, make_env
    from rlcheck.nets.seedstack import SeedStack

    with make_env(spec.env_id) as env:
        agent = build_agent(spec, env, seeds=[0, 1])
    actor, critic = (next(m for m in net.modules() if isinstance(m, SeedStack)) for net in (agent.actor, agent.q1))
    return actor.strategy, critic.strategy


@pytest.mark.parametrize("env_id", ["rlcheck/ActionReward-v0", "Pendulum-v1"])  # unit bounds, and [-2, 2]
@pytest.mark.parametrize(
    ("actor", "critic"),
    [(f"{N}:CleanRLTD3Actor", f"{N}:CleanRLQNetwork"), (f"{N}:SpinningUpTD3Actor", f"{N}:SpinningUpQFunction")],
)
def test_concatenating_critics_and_tanh_then_scale_actors_are_fused_like_the_built_ins(env_id, actor, critic):
    spec = RunSpec("td3", "yours", 0, env_id, actor_net=actor, critic_net=critic)
    assert _strategies(spec) == ("fused", "fused")


def test_the_fused_chain_computes_what_the_users_module_computes():
    import torch

    from rlcheck.nets.shapes import env_stand_in
    from tests.codebase_nets import CleanRLQNetwork, CleanRLTD3Actor

    observation_space, action_space = _spaces()  # Pendulum: actions in [-2, 2]
    make_critic = resolve(f"{N}:CleanRLQNetwork", "critic", "deterministic", observation_space, action_space).factory
    torch.manual_seed(3)
    critic = make_critic(4, 1)
    torch.manual_seed(3)
    theirs = CleanRLQNetwork(env_stand_in(observation_space, action_space))
    obs, action = torch.randn(32, 3), torch.rand(32, 1) * 2 - 1
    assert type(critic) is torch.nn.Sequential
    assert torch.equal(critic(torch.cat([obs, action], -1)), theirs(obs, action))
    make_actor = resolve(f"{N}:CleanRLTD3Actor", "actor", "deterministic", observation_space, action_space).factory
    torch.manual_seed(4)
    actor = make_actor(3, 1)
    torch.manual_seed(4)
    their_actor = CleanRLTD3Actor(env_stand_in(observation_space, action_space))
    assert torch.allclose(actor(obs) * 2.0, their_actor(obs))  # rlcheck acts in [-1, 1] and scales to [-2, 2]


class HalfScaledActor(__import__("torch").nn.Module):
    """Squashed, then scaled by 0.5 whatever the env's bounds: not the env's bounds on Pendulum."""

    def __init__(self, observation_space, action_space):
        import torch

        super().__init__()
        self.fc = torch.nn.Linear(observation_space.shape[0], action_space.shape[0])
        self.register_buffer("action_scale", torch.tensor(0.5))

    def forward(self, x):
        return self.fc(x).tanh() * self.action_scale


def test_a_scale_that_is_not_the_envs_bounds_keeps_the_users_module_and_its_scale():
    observation_space, action_space = _spaces()
    module = resolve(f"{__name__}:HalfScaledActor", "actor", "deterministic", observation_space, action_space).factory(
        3, 1
    )
    assert type(module).__name__ == "UnitActions"  # mapped from [-2, 2]: at most 0.25 of the range, as written


def test_a_real_sb3_features_extractor_is_gated_in_front_of_a_plain_head(tmp_path, capsys):
    pytest.importorskip("stable_baselines3", reason="the bench extra (pip install -e '.[bench]') brings SB3")
    code = main(["check", "--net", "tests.sb3_nets:LayerNormExtractor", "--algos", "td3", "--probes", "action",
                 "--out", str(tmp_path), *CHEAP])  # fmt: skip
    out, err = capsys.readouterr()
    assert "features extractor (observation_space, 64) + plain head" in err
    assert code == 0, out
