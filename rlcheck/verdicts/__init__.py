"""Judging finished runs: the decision procedure and its error levels (``stats``), the
multi-seed study and its outcomes (``study``), the probe-suite gate (``check``), and the
committed reference of a gate's outcomes (``reference``)."""
