import math

import pytest
import torch
from torch import nn

from rlcheck.algos import ALGORITHMS
from rlcheck.algos.crossq import CrossQ, CrossQConfig
from rlcheck.engine.agents import build_agent, make_env
from rlcheck.engine.runs import RunSpec
from rlcheck.engine.training import run
from rlcheck.errors import UsageError
from rlcheck.nets import BatchRenorm1d, batchrenorm
from rlcheck.nets.fusion import StackedBatchRenorm1d
from rlcheck.verdicts.diagnose import diagnose
from rlcheck.verdicts.study import Cell, StudyConfig
from tests.helpers import random_batch


def test_batch_renorm_acts_as_batchnorm_during_warmup():
    torch.manual_seed(0)
    brn, bn = BatchRenorm1d(4), nn.BatchNorm1d(4, eps=1e-3, momentum=0.01)
    x = torch.randn(32, 4) * 3 + 1
    torch.testing.assert_close(brn(x), bn(x))
    torch.testing.assert_close(brn.running_mean, bn.running_mean)
    assert brn.num_batches_tracked == 1


def test_batch_renorm_corrects_toward_running_statistics_after_warmup():
    brn = BatchRenorm1d(3, warmup_steps=0, r_max=3.0, d_max=5.0)
    with torch.no_grad():
        brn.running_mean.fill_(10.0)  # far from the batch: d clips at 5
        brn.running_var.fill_(1.0)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    mean, std = x.mean(0), torch.sqrt(x.var(0, unbiased=False) + 1e-3)
    r = (std / torch.sqrt(torch.tensor(1.0 + 1e-3))).clamp(1 / 3, 3)
    expected = (x - mean) / std * r - 5.0
    torch.testing.assert_close(brn(x), expected)


def test_batch_renorm_eval_uses_running_statistics_and_runs_a_batch_of_one():
    brn = BatchRenorm1d(2).eval()
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([1.0, -1.0]))
        brn.running_var.copy_(torch.tensor([4.0, 1.0]))
    out = brn(torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.0 / (4.0 + 1e-3) ** 0.5, 1.0 / (1.0 + 1e-3) ** 0.5]]))


def _agent():
    return CrossQ(3, 1, batchrenorm, batchrenorm, seeds=[0])


def test_crossq_has_no_target_networks_and_the_papers_optimiser():
    agent = _agent()
    assert not hasattr(agent, "q1_target") and not hasattr(agent, "q2_target")
    for optimizer in (agent.actor_optimizer, agent.critic_optimizer, agent.alpha_optimizer):
        assert optimizer.betas == (0.5, 0.999) and optimizer.lr == 1e-3
    assert CrossQConfig().policy_delay == 3


def test_crossq_joint_critic_pass_and_delayed_actor():
    agent = _agent()
    actor_before = [p.clone() for p in agent.actor.parameters()]
    for seed in range(2):
        assert "actor_loss" not in agent.update(random_batch(seed=seed))
    assert all(torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    # one train-mode critic pass per update, over [(s, a); (s', a')] together
    critic_norm = next(m for m in agent.q1.modules() if isinstance(m, StackedBatchRenorm1d))
    assert critic_norm.num_batches_tracked == 2
    assert "actor_loss" in agent.update(random_batch(seed=2))
    assert not all(torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))


def test_crossq_diagnosis_sees_batch_renorm_and_no_targets():
    diagnosis = diagnose(_agent(), 3)
    assert any("BatchRenorm1d" in layer for layer in diagnosis.mode_dependent_layers["critic"])
    assert diagnosis.target_buffer_gap == 0.0


def test_the_crossq_variant_takes_sacs_place_and_only_there():
    sac, td3 = Cell("sac", steps=300, warmup=100), Cell("td3", steps=300, warmup=100)
    config = StudyConfig(cells=(sac, td3), nets=("plain", "crossq"))
    spec = config.spec(sac, "crossq", 0)
    assert (spec.algo, spec.actor_net, spec.critic_net) == ("crossq", "batchrenorm", "batchrenorm")
    assert isinstance(build_agent(spec, make_env(spec.env_id)), CrossQ)
    assert config.spec(sac, "plain", 0).algo == "sac"  # its baseline is SAC's
    with pytest.raises(UsageError, match="crossq is crossq in the place of sac: it runs in sac cells only"):
        config.spec(td3, "crossq", 0)


def test_crossq_is_an_algorithm_of_its_own_and_old_logs_still_read():
    assert ALGORITHMS["crossq"] is CrossQ
    old = RunSpec("sac", "crossq", 0, actor_net="batchrenorm", critic_net="batchrenorm").to_dict()
    old["recipe"] = "crossq"
    assert RunSpec.from_dict(old).algo == "crossq"


def test_crossq_trains_as_an_algorithm_with_any_nets():
    result = run(RunSpec("crossq", "plain", 0, steps=150, warmup=50, eval_every=50))
    assert len(result.eval_returns) == 4 and all(math.isfinite(r) for r in result.eval_returns)


def test_a_study_compares_crossq_in_sacs_place_with_plain_sac():
    """`rlcheck --algos sac --nets plain,crossq`: the crossq runs (algo crossq) belong to the SAC cell."""
    from rlcheck.verdicts.study import Cell, StudyConfig, run_study

    cell = Cell("sac", steps=200, warmup=100, eval_every=50)
    study = run_study(StudyConfig(cells=(cell,), nets=("plain", "crossq"), seeds=(0, 1), max_seeds=2, workers=1))
    (comparison,) = study.comparisons
    assert comparison.candidate == "crossq" and comparison.stats.n_candidate == 2
    assert {r.spec.algo for r in study.runs_of(cell, "crossq")} == {"crossq"}
