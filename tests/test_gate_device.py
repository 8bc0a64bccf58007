"""The BatchNorm gate's device switch (RLCHECK_DEVICE): the gate's studies train where it says,
and a device this machine lacks fails in one line."""

import subprocess
import sys

import pytest

pytest.importorskip("torch")


def test_the_gates_studies_train_on_rlcheck_device(monkeypatch):
    from benchmarks import test_batchnorm

    assert test_batchnorm.study_config("td3").device == "cpu"
    test_batchnorm.device.cache_clear()
    monkeypatch.setattr(test_batchnorm, "DEVICE", "cpu:0")
    assert test_batchnorm.study_config("sac").spec(test_batchnorm.study_config("sac").cells[0], "plain", 0).device == (
        "cpu:0"
    )
    test_batchnorm.device.cache_clear()


def test_a_device_this_machine_lacks_fails_the_gate_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_batchnorm.py", "-k", "naive_td3", "-p", "no:cacheprovider",
         "-q", "-o", "addopts="],
        capture_output=True, text=True, env={**__import__("os").environ, "RLCHECK_DEVICE": "cuda"},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "RLCHECK_DEVICE: --device cuda: CUDA is not available on this machine" in proc.stdout
    assert "Traceback" not in proc.stdout
