"""rlcheck.verdicts.tolerances: a cell's tolerance fixed before any of its runs is seen, wherever it can be."""

import pytest

from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.verdicts.check import PROBES_BY_NAME
from rlcheck.verdicts.config import Cell
from rlcheck.verdicts.tolerances import (
    CALIBRATED_BASELINE_ERROR,
    CALIBRATION_SEEDS,
    fixed_tolerance,
    tolerance_for,
    zero_action_return,
)


def test_the_zero_action_return_is_the_environments_own():
    assert zero_action_return(RANDOM_ENV_ID) == 0.0  # reward = action
    assert zero_action_return("rlcheck/ActionReward-v0") == 0.0
    assert zero_action_return("rlcheck/TrackObservation-v0") == pytest.approx(-1 / 3, abs=0.02)  # -E[s^2]
    assert zero_action_return("rlcheck/TrackObservation-v0") == zero_action_return("rlcheck/TrackObservation-v0")


def test_return_probes_take_their_tolerance_from_the_environment_whatever_the_runs():
    assert fixed_tolerance(Cell("td3"), "plain", (64, 64)) == pytest.approx(3.0)
    assert fixed_tolerance(PROBES_BY_NAME["action"].cell("sac"), "mypkg:old", (32,)) == pytest.approx(0.1)
    tolerance, source = tolerance_for(PROBES_BY_NAME["track"].cell("td3"), "plain", (64, 64), calibration_runs=[])
    assert source == "environment" and tolerance == pytest.approx(
        0.1 * abs(zero_action_return("rlcheck/TrackObservation-v0"))
    )


@pytest.mark.parametrize("probe", ["constant", "observed", "delayed"])
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_value_probes_against_the_default_baseline_are_calibrated(probe, algo):
    cell = PROBES_BY_NAME[probe].cell(algo)
    assert (algo, cell.env_id, cell.steps, cell.warmup, cell.eval_every) in CALIBRATED_BASELINE_ERROR
    tolerance, source = tolerance_for(cell, "plain", (64, 64), calibration_runs=[])
    assert source == "calibration" and tolerance > 0
    # Another baseline or other widths have no committed constant: not fixed in advance.
    assert fixed_tolerance(cell, "mypkg.nets:previous", (64, 64)) is None
    assert fixed_tolerance(cell, "plain", (256, 256)) is None
    assert fixed_tolerance(PROBES_BY_NAME[probe].cell("crossq"), "plain", (64, 64)) is None


def test_a_tolerance_that_cannot_be_fixed_is_measured_on_calibration_seeds_never_on_the_compared_ones():
    cell = PROBES_BY_NAME["constant"].cell("td3")
    with pytest.raises(ValueError, match="no calibration runs"):
        tolerance_for(cell, "mypkg.nets:previous", (64, 64), calibration_runs=[])
    assert not set(CALIBRATION_SEEDS) & set(range(0, 100_000))  # far from the seeds people give


def test_seeds_that_would_reach_the_calibration_seeds_are_refused_at_the_door():
    from rlcheck.errors import UsageError
    from rlcheck.verdicts.config import StudyConfig
    from rlcheck.verdicts.door import check_before_training

    config = StudyConfig(cells=(Cell("td3"),), seeds=tuple(range(899_990, 899_995)), max_seeds=40)
    with pytest.raises(UsageError, match="calibration seeds"):
        check_before_training(config)


def test_the_door_refuses_exactly_the_seed_lists_that_reach_the_calibration_seeds():
    from rlcheck.errors import UsageError
    from rlcheck.verdicts.config import StudyConfig
    from rlcheck.verdicts.door import check_before_training

    around = StudyConfig(cells=(Cell("td3"),), seeds=(0, 1, 2, 950_000), max_seeds=8)  # grows to 950001-950004
    assert check_before_training(around) == []
    reaching = StudyConfig(cells=(Cell("td3"),), seeds=(0, 1, 2, 899_999), max_seeds=8)  # grows to 900000-900003
    with pytest.raises(UsageError, match="calibration seeds"):
        check_before_training(reaching)
