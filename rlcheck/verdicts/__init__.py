"""Judging finished runs: the decision procedure and its error levels (``stats``), the
multi-seed study (``study``), its outcomes (``outcomes``) and what makes a net
slower rather than broken (``slower``), the probe-suite gate (``check``), and the
committed reference of a gate's outcomes (``reference``)."""
