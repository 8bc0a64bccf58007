import pytest

from tests.helpers import ModeRecorder


@pytest.fixture
def mode_log() -> list[tuple[str, bool]]:
    """The (network, training?) log of every ModeRecorder forward pass in this test."""
    ModeRecorder.log = []
    return ModeRecorder.log


pytest_plugins = ["pytester"]
