import sys
from dataclasses import asdict

import pytest
import torch
from torch import nn

from rlcheck.algos import TD3
from rlcheck.algos.modes import MODE_AWARE
from rlcheck.algos.sac import SAC
from rlcheck.cli import main
from rlcheck.engine.runner import run_all
from rlcheck.engine.runs import RunSpec
from rlcheck.front.words import diagnosis_report, finding_words
from rlcheck.nets import batchnorm, layernorm, plain
from rlcheck.verdicts.diagnose import (
    action_gradient,
    actor_mode_gap,
    bn_amplification,
    diagnose,
    diagnose_first_on_each_env,
    diagnose_run,
    diagnosis_of,
    mode_dependent_layers,
    target_buffer_gap,
)
from tests.helpers import exit_code


def _agent(factory, algo=TD3, **kwargs):
    return algo(3, 1, factory, factory, seeds=[0], **kwargs)


def test_bn_critic_in_train_mode_cancels_the_action_gradient_on_identical_states():
    agent = _agent(batchnorm)
    constant = torch.zeros(64, 3)
    in_train = action_gradient(agent, constant, "train")
    in_eval = action_gradient(agent, constant, "eval")
    assert in_train < 1e-6 < in_eval
    assert action_gradient(agent, torch.randn(64, 3), "train") > 1e-3  # differing states: it flows


@pytest.mark.parametrize("factory", [plain, layernorm])
def test_per_sample_nets_pass_the_same_gradient_in_both_modes(factory):
    agent = _agent(factory)
    constant = torch.zeros(64, 3)
    assert action_gradient(agent, constant, "train") == pytest.approx(action_gradient(agent, constant, "eval"))
    assert action_gradient(agent, constant, "eval") > 0


def test_measuring_changes_nothing_in_the_agent():
    agent = _agent(batchnorm)
    before = {k: v.clone() for k, v in {**agent.q1.state_dict(), **agent.actor.state_dict()}.items()}
    diagnose(agent, 3)
    after = {**agent.q1.state_dict(), **agent.actor.state_dict()}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bn_amplification_grows_when_the_actor_sees_only_identical_states():
    actor = batchnorm(3, 1, hidden=(8,)).train()
    assert bn_amplification(actor) == pytest.approx(1 / (1 + 1e-5) ** 0.5)
    with torch.no_grad():
        for _ in range(2000):
            actor(torch.zeros(16, 3))
    assert bn_amplification(actor) > 100
    assert bn_amplification(plain(3, 1)) == 1.0


def test_actor_mode_gap_is_zero_without_batch_dependence():
    assert actor_mode_gap(_agent(plain), torch.randn(32, 3)) == 0.0
    assert actor_mode_gap(_agent(batchnorm), torch.randn(32, 3)) > 0.01


def test_stale_target_buffers_are_found_and_the_fix_named():
    agent = _agent(batchnorm)
    assert target_buffer_gap(agent) == 0.0
    with torch.no_grad():
        agent.q1.net.body[1].running_mean.add_(0.5)  # online statistics moved, target not updated
    diagnosis = diagnose(agent, 3)
    assert diagnosis.target_buffer_gap == pytest.approx(0.5)
    assert "target_buffers_lag" in diagnosis.findings
    assert "copy buffers" in finding_words(diagnosis, "target_buffers_lag")[1]


def test_diagnosis_names_the_mode_of_each_forward_pass():
    naive = diagnose(_agent(batchnorm), 3)
    assert naive.forward_modes["acting: actor"] == "eval"
    assert naive.forward_modes["actor update: critic"] == "train"
    aware = diagnose(_agent(batchnorm, modes=MODE_AWARE), 3)
    assert aware.forward_modes["actor update: critic"] == "eval"
    assert "mode of each forward pass: acting: actor eval" in diagnosis_report(aware)


def test_mode_dependent_layers_are_listed():
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Dropout(0.1), nn.LayerNorm(4))
    assert mode_dependent_layers(net) == ["1 (BatchNorm1d)", "2 (Dropout)"]


@pytest.mark.parametrize("algo", [TD3, SAC])
def test_naive_bn_gets_the_vanishing_gradient_finding_and_mode_aware_does_not(algo):
    naive = diagnose(_agent(batchnorm, algo), 3)
    assert "action_gradient_vanishes" in naive.findings
    what, fix = finding_words(naive, "action_gradient_vanishes")
    assert "vanishes" in what and "mode-aware" in fix
    aware = diagnose(_agent(batchnorm, algo, modes=MODE_AWARE), 3)
    assert "action_gradient_vanishes" not in aware.findings
    assert not diagnose(_agent(plain, algo), 3).findings


def test_diagnose_command(capsys):
    assert exit_code(main, ["diagnose", "--net", "batchnorm", "--steps", "300", "--warmup", "100"]) == 1
    out = capsys.readouterr().out
    assert "FINDING: The action gradient dQ/da reaching the actor vanishes" in out
    assert exit_code(main, ["diagnose", "--net", "plain", "--steps", "0"]) == 0
    assert exit_code(main, ["diagnose", "--net", "nope"]) == 2


def test_a_diagnosis_measured_where_the_run_trained_is_the_one_a_rerun_gives():
    # Kept from the study's own (seed-batched, parallel) training, so that explaining a
    # failure trains nothing again; the same bits as training that one seed alone.
    specs = [
        RunSpec("td3", net, seed, steps=300, warmup=100, eval_every=100)
        for net in ("plain", "batchnorm")
        for seed in (5, 6)
    ]
    results = run_all(specs, workers=2, after_training=diagnose_first_on_each_env, measure_nets={"batchnorm"})
    diagnosed = [r.spec for r in results if diagnosis_of(r) is not None]
    assert diagnosed == [specs[2]]  # the candidate's first run on the env; never the baseline
    diagnosis = diagnosis_of(results[2])
    assert diagnosis is not None and asdict(diagnosis) == asdict(diagnose_run(specs[2]))
    assert diagnosis.findings


def test_a_diagnosis_that_fails_costs_no_trained_run(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("measurement failed")

    module = sys.modules["rlcheck.verdicts.diagnose"]  # `rlcheck.verdicts.diagnose` the attribute is the function
    monkeypatch.setattr(module, "diagnose", broken)
    specs = [RunSpec("td3", "batchnorm", seed, steps=150, warmup=50, eval_every=50) for seed in (0, 1)]
    results = run_all(specs, after_training=diagnose_first_on_each_env, measure_nets={"batchnorm"})
    assert [r.spec for r in results] == specs and all(r.measured is None for r in results)


def test_a_run_shorter_than_a_batch_is_diagnosed_on_the_replay_it_has():
    spec = RunSpec("td3", "batchnorm", 0, steps=150, warmup=50, eval_every=50)  # 150 states in the buffer
    diagnosis = diagnose_run(spec)
    assert 0.0 < diagnosis.max_abs_action <= 1.0


def test_a_zero_bias_relu_actor_on_the_all_zero_state_is_called_blind_there_not_capped():
    spec = RunSpec("td3", "plain", 0, "rlcheck/RandomEnv-v0", steps=300, warmup=100,
                   actor_net="tests.codebase_nets:orthogonal_zero_bias")  # fmt: skip
    diagnosis = diagnose_run(spec)
    assert diagnosis.actor_parameters_reached["constant states"] < 0.001
    assert diagnosis.actor_parameters_reached["random states"] > 0.5
    assert "actor_blind_on_constant_state" in diagnosis.findings and "actions_capped" not in diagnosis.findings
    assert "not a broken net" in finding_words(diagnosis, "actor_blind_on_constant_state")[0]
    plain = diagnose_run(RunSpec("td3", "plain", 0, "rlcheck/RandomEnv-v0", steps=300, warmup=100))
    assert "actor_blind_on_constant_state" not in plain.findings
    assert plain.actor_parameters_reached["constant states"] > 0.1  # all but its first layer's weights


def test_the_gates_constant_state_probes_are_seen_by_a_zero_bias_relu_actor():
    """`action` and `random` hold the state at 1, not 0: the same zero-bias actor is not blind there."""
    for env_id in ("rlcheck/ActionReward-v0", "rlcheck/RandomEnvLit-v0"):
        spec = RunSpec("td3", "plain", 0, env_id, steps=300, warmup=100,
                       actor_net="tests.codebase_nets:orthogonal_zero_bias")  # fmt: skip
        diagnosis = diagnose_run(spec)
        assert "actor_blind_on_constant_state" not in diagnosis.findings
        assert diagnosis.actor_parameters_reached["constant states"] > 0.1
