"""Repository-wide pytest setup: rlcheck's tests use one thread per process.

Small networks run fastest single-threaded, and under ``pytest -n auto`` each xdist
worker already owns a core; more threads would only oversubscribe the machine.
"""

import os
import tempfile

import torch

torch.set_num_threads(1)

# Tests never read or fill the user's cache of baseline runs (rlcheck.engine.cache); each process
# gets a fresh one, inherited by the commands the tests start.
os.environ["RLCHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="rlcheck-test-cache-")
