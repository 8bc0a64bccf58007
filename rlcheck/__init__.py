"""rlcheck: a pytest-native sanity gate and regression benchmark for RL network code."""

from rlcheck.check import CheckResult, NetUnderTest, check_config, run_check
from rlcheck.diagnose import Diagnosis, diagnose, diagnose_run
from rlcheck.envs import RANDOM_ENV_ID, RandomEnv
from rlcheck.errors import UsageError
from rlcheck.nets import NetFactory, batchnorm, layernorm, plain
from rlcheck.seedstack import SeedStack
from rlcheck.stats import Comparison, compare
from rlcheck.study import Cell, StudyConfig, StudyResult, run_study
from rlcheck.training import RunResult, RunSpec, run, run_group

__version__ = "0.1.0"

__all__ = [
    "RANDOM_ENV_ID",
    "Cell",
    "CheckResult",
    "Comparison",
    "Diagnosis",
    "NetFactory",
    "NetUnderTest",
    "RandomEnv",
    "RunResult",
    "RunSpec",
    "SeedStack",
    "StudyConfig",
    "StudyResult",
    "UsageError",
    "batchnorm",
    "check_config",
    "compare",
    "diagnose",
    "diagnose_run",
    "layernorm",
    "plain",
    "run",
    "run_check",
    "run_group",
    "run_study",
]
