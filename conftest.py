"""Repository-wide pytest setup: rlcheck's tests use one thread per process.

Small networks run fastest single-threaded, and under ``pytest -n auto`` each xdist
worker already owns a core; more threads would only oversubscribe the machine.
"""

import torch

torch.set_num_threads(1)
