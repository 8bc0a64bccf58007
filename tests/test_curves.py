"""What a cell's learning curves say: still improving (trains a net on) and rising smoothly
(the "still learning" note), on curves shaped like measured ones."""

from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.verdicts.curves import rises_smoothly, still_improving

STEPS = list(range(0, 601, 50))


def _runs(curves: list[list[float]]) -> list[RunResult]:
    spec = RunSpec("td3", "plain", 0, env_id="rlcheck/TrackObservation-v0", steps=600)
    return [RunResult(spec, STEPS, curve, 1.0, None, 0.0) for curve in curves]


# TD3 with a Tanh MLP on `track` (held-out set 19000): a dip, then a recovery in jumps
TANH_DIP = [
    [-0.21, -0.21, -0.21, -0.19, -1.04, -1.23, -1.23, -1.15, -0.57, -0.26, -0.35, -0.21, -0.14],
    [-0.08, -0.08, -0.08, -0.27, -0.02, -0.45, -0.73, -0.33, -0.14, -0.19, -0.16, -0.14, -0.10],
    [-0.11, -0.11, -0.11, -0.71, -0.98, -1.02, -1.01, -0.95, -0.70, -0.09, -0.82, -0.83, -0.34],
    [-0.11, -0.11, -0.11, -0.65, -0.86, -0.88, -0.86, -0.81, -0.52, -0.34, -0.62, -0.32, -0.23],
    [-0.10, -0.10, -0.10, -0.02, -0.41, -0.79, -0.62, -0.09, -0.39, -0.41, -0.30, -0.25, -0.17],
]


def test_a_net_recovering_from_a_dip_in_jumps_is_still_improving_though_not_smoothly():
    runs = _runs(TANH_DIP)
    assert still_improving(runs, "return", tolerance=0.0103)
    assert not rises_smoothly(runs, "return")
    assert not still_improving(runs, "return", tolerance=0.5)  # its mean rose by 0.27


def test_a_steady_climb_rises_smoothly_and_a_flat_net_is_not_improving():
    climb = [[-1.0 + 0.07 * i + 0.001 * s for i in range(13)] for s in range(5)]
    assert still_improving(_runs(climb), "return", 0.05) and rises_smoothly(_runs(climb), "return")
    flat = [[-1.0, -0.2, -0.8, -0.1, -0.9, -0.2, -0.8, -0.3, -0.5, -0.6, -0.5, -0.6, -0.5]] * 5
    assert not still_improving(_runs(flat), "return", 0.05) and not rises_smoothly(_runs(flat), "return")
