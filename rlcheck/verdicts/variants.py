"""The study's named variants: BatchNorm done in the ways the literature proposes, each a choice
of actor net, critic net, train/eval schedule (rlcheck.algos.modes) and, for CrossQ, the
algorithm that takes the cell's place. A variant is a configuration the study compares, not a
network: the nets themselves (rlcheck.nets) never choose an algorithm."""

from __future__ import annotations

from dataclasses import dataclass

from rlcheck.errors import UsageError
from rlcheck.nets import BUILTIN_NETS


@dataclass(frozen=True)
class Variant:
    actor: str  # a built-in net (rlcheck.nets.BUILTIN_NETS)
    critic: str
    modes: str  # a key of rlcheck.algos.modes.MODE_SCHEDULES
    description: str
    # The algorithm it runs in place of the cell's, and the cell algorithm it replaces;
    # None: the cell's own.
    replaces: tuple[str, str] | None = None

    def runs_as(self, cell_algo: str) -> str:
        """The algorithm its runs carry in a cell of `cell_algo` (unchecked: see `algo_in`)."""
        return self.replaces[0] if self.replaces is not None and self.replaces[1] == cell_algo else cell_algo

    def algo_in(self, cell_algo: str, name: str) -> str:
        """The algorithm this variant trains with in a cell of `cell_algo`."""
        if self.replaces is None:
            return cell_algo
        algo, replaced = self.replaces
        if cell_algo != replaced:
            raise UsageError(
                f"{name} is {algo} in the place of {replaced}: it runs in {replaced} cells only; "
                f"run it with --algos {replaced}"
            )
        return algo


VARIANTS: dict[str, Variant] = {
    "batchnorm-modeaware": Variant(
        "batchnorm",
        "batchnorm",
        "mode-aware",
        "BatchNorm in both nets; critic in eval mode for actor loss and TD target",
    ),
    "batchnorm-critic": Variant("plain", "batchnorm", "naive", "BatchNorm in the critic only, naive modes"),
    "batchnorm-critic-modeaware": Variant(
        "plain",
        "batchnorm",
        "mode-aware",
        "BatchNorm in the critic only; critic in eval mode for actor loss and TD target",
    ),
    # CrossQ (Bhatt et al., ICLR 2024) is SAC without target networks: in the study it is
    # compared with SAC's plain baseline, in SAC's cells.
    "crossq": Variant(
        "batchrenorm",
        "batchrenorm",
        "crossq",
        "CrossQ: Batch Renormalization in both nets, no target networks, joint (s,a)/(s',a') critic pass",
        replaces=("crossq", "sac"),
    ),
}

STUDY_NETS = (*BUILTIN_NETS, *VARIANTS)  # what `rlcheck --nets` takes by name
