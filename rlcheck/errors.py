"""Errors that are the user's to fix: reported as one line, never as a traceback."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class UsageError(Exception):
    """A user mistake (bad flag, bad factory, bad environment): the message names the fix."""


def import_callable(path: str, *, where: str = "", whose: str = "", wanted: str) -> Callable[..., Any]:
    """``"package.module:attr"`` -> that callable, or a one-line UsageError: `where` opens the
    message (``"--agent: "``), `whose` follows the module (``" for net 'pkg:make'"``), `wanted` says
    what to give instead."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's path, not our bug
        raise UsageError(
            f"{where}cannot import {module_name!r}{whose} ({type(exc).__name__}: {exc}); "
            "check the module path and that it is importable from here (PYTHONPATH)"
        ) from None
    found = getattr(module, attr, None)
    if found is None or not callable(found):
        raise UsageError(f"{where}{module_name!r} has no callable {attr!r}{whose}; {wanted}")
    return found  # type: ignore[no-any-return]
