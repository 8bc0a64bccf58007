"""Which mode -- ``train()`` or ``eval()`` -- every forward pass of an agent runs in.

This is the one place that decides it. Normalisation layers that depend on the batch
(BatchNorm) or on the mode (Dropout) behave differently in the two modes, and the wrong
choice in one forward pass is enough to break off-policy TD learning. A later variant
(e.g. "mode-aware" BatchNorm: critic in eval mode for the actor loss and the TD target)
is a different :class:`ModeSchedule`, not a different algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

Mode = Literal["train", "eval"]


@dataclass(frozen=True)
class ModeSchedule:
    """The mode of each network in each phase of an update or of acting.

    Attributes:
        acting: the actor when it chooses an action (exploration and evaluation).
        critic_update: the online critics fitting the TD target on a replay batch.
        td_target: the networks that compute the TD target (target critics, and the
            target actor in TD3 or the online actor in SAC choosing the next action).
        actor_update: the actor producing actions for its own loss.
        critic_in_actor_update: the critic the actor's loss differentiates through.
    """

    acting: Mode = "eval"
    critic_update: Mode = "train"
    td_target: Mode = "train"
    actor_update: Mode = "train"
    critic_in_actor_update: Mode = "train"


# What typical hand-written TD3/SAC code does: every network stays in train() (the mode
# a fresh module and its deepcopy start in) except the actor, which is put in eval()
# to act. This is the setting of the BatchNorm blog post.
NAIVE = ModeSchedule()

# "Mode-aware" BatchNorm: the critic the actor differentiates through, and every network
# computing the TD target, run in eval mode (running statistics), so a batch of identical
# states cannot normalise the action away; online critics still fit in train mode. Targets
# get the online networks' buffers at every update (see `update_target`).
MODE_AWARE = ModeSchedule(td_target="eval", critic_in_actor_update="eval")

# CrossQ (algos/crossq.py) runs the same modes: next action from the actor in eval mode, the
# actor loss through the critic in eval mode; what differs is its update, not its modes.
MODE_SCHEDULES: dict[str, ModeSchedule] = {"naive": NAIVE, "mode-aware": MODE_AWARE, "crossq": MODE_AWARE}


def set_mode(mode: Mode, *modules: nn.Module) -> None:
    training = mode == "train"
    for module in modules:
        # Switching walks the whole module tree; it runs several times per update, so skip
        # it when the module is already there (rlcheck only ever switches whole networks).
        if module.training != training:
            module.train(training)
