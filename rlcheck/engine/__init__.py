"""Training: seeded runs of TD3/SAC/CrossQ on many seeds at once (``training``), run as jobs in
processes here (``runner``, ``workers``) or on a Ray cluster (``ray_backend``), the baseline
cache, the gradient door check, and the diagnosis measured where a run trained. Imports
nothing of ``rlcheck.verdicts`` or ``rlcheck.front``: every training process imports it."""
