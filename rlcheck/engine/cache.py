"""Finished runs of rlcheck's built-in networks, kept across `rlcheck check` calls.

Every check trains the plain baseline on the same probes and seeds, whatever the user's
network; that is about a third of its work. Those runs are a pure function of their
:class:`~rlcheck.engine.runs.RunSpec` and of the code and machine that trained them, so a run is
stored under a key made of both:

* the spec (algorithm, nets, seed, environment, steps, widths, device, threads, ...);
* a digest of rlcheck's own source files (except those that only judge and present finished
  runs, :data:`JUDGING_ONLY`: a change to the statistics keeps the runs), the versions of Python, torch, numpy and
  gymnasium, and the processor model (matrix kernels are chosen per instruction set, and
  round differently).

Only runs whose actor and critic are built-in networks (`rlcheck.nets.BUILTIN_NETS`) are
stored: a user's network can change without anything in its spec changing. Writes are
atomic, so parallel processes (pytest-xdist workers) may share a cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from functools import cache
from pathlib import Path

from rlcheck.engine.machine import processor
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.nets import BUILTIN_NETS

CACHE_ENV = "RLCHECK_CACHE_DIR"

# Modules that never run in a training process: they read finished runs, judge and report them,
# or parse options. A new module is part of the digest unless it is named here.
JUDGING_ONLY = ("verdicts/", "front/", "gate/", "cli.py", "plugin.py", "engine/cache.py", "engine/workers.py",
                "engine/ray_backend.py")  # fmt: skip


def default_cache_dir() -> Path:
    """$RLCHECK_CACHE_DIR, else $XDG_CACHE_HOME/rlcheck, else ~/.cache/rlcheck."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlcheck"


def cache_from_env() -> RunCache | None:
    """The cache at :func:`default_cache_dir`, or none where $RLCHECK_CACHE_DIR is ``off``."""
    return None if os.environ.get(CACHE_ENV) == "off" else RunCache(default_cache_dir())


class RunCache:
    """Runs of built-in networks by spec, under a folder per code-and-machine digest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / environment_digest()
        self.hits = 0

    @staticmethod
    def stores(spec: RunSpec) -> bool:
        return spec.agent is None and spec.actor_net_name in BUILTIN_NETS and spec.critic_net_name in BUILTIN_NETS

    def _path(self, spec: RunSpec) -> Path:
        key = json.dumps({**spec.to_dict(), "gpu": _gpu_name(spec.device)}, sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def get(self, spec: RunSpec, count: bool = True) -> RunResult | None:
        """The stored run of `spec`, or None; `count=False` looks without counting a hit."""
        if not self.stores(spec):
            return None
        try:
            result = RunResult.from_dict(json.loads(self._path(spec).read_text()))
        except (OSError, ValueError, KeyError, TypeError):  # absent, torn or from an older layout
            return None
        if result.spec != spec:
            return None
        self.hits += count
        result.reused = True
        return result

    def put(self, result: RunResult) -> None:
        if not self.stores(result.spec):
            return
        path = self._path(result.spec)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
                json.dump(result.to_dict(), tmp)
            os.replace(tmp.name, path)
        except OSError:
            pass  # a cache that cannot be written only costs time; the run itself is saved elsewhere


@cache
def environment_digest() -> str:
    """What, besides its spec, decides a run's numbers: rlcheck's code, the libraries, the processor."""
    import gymnasium
    import numpy
    import torch

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent  # rlcheck/
    for source in sorted(package.rglob("*.py")):
        if source.relative_to(package).as_posix().startswith(JUDGING_ONLY):
            continue
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    for part in (sys.version, torch.__version__, numpy.__version__, gymnasium.__version__, processor()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _gpu_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else ""
