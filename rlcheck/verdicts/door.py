"""Every check that can fail before training starts, so no run is wasted on a typo: configs
that contradict themselves, budgets with no training in them, and each net built as its runs
will build it (two seeds), with the gradient door check. What is worth saying but stops
nothing (frozen parameters, nets that do not fuse across seeds) comes back as notes, each once;
the front decides where they are shown."""

from __future__ import annotations

from rlcheck.algos import Agent
from rlcheck.engine.agents import build_agent, env_dims, make_env
from rlcheck.engine.gradients import check_gradients
from rlcheck.engine.runs import RunSpec
from rlcheck.engine.user_agents import door_check
from rlcheck.errors import UsageError
from rlcheck.nets.seedstack import SeedStack
from rlcheck.verdicts.config import StudyConfig
from rlcheck.verdicts.tolerances import CALIBRATION_SEEDS


def check_before_training(config: StudyConfig) -> list[str]:
    """Every check that can fail before training starts, so no run is wasted on a typo; raises
    :class:`UsageError`, or returns the notes (each once) on what will train but not as well as it could."""
    notes: list[str] = []
    noticed: set[tuple[str, str]] = set()
    built: set[tuple[RunSpec, tuple[int, int]]] = set()  # an agent is checked once per shape, not per cell
    if config.baseline not in config.nets:
        raise UsageError(f"baseline net {config.baseline!r} is not among --nets {','.join(config.nets)}")
    if len(config.nets) > 1 and len(config.seeds) < 2:
        raise UsageError(
            f"--seeds {len(config.seeds)}: comparing nets needs at least 2 seeds per net (give e.g. --seeds 5); "
            "to train one net alone, give it alone (--nets plain)"
        )
    if len(set(config.seeds)) != len(config.seeds):
        raise UsageError("--seeds lists a seed twice; give distinct seeds")
    grown = range(max(config.seeds) + 1, max(config.seeds) + 1 + config.max_seeds - len(config.seeds))
    if not set(CALIBRATION_SEEDS).isdisjoint({*config.seeds, *grown}):  # growing continues from the largest
        raise UsageError(
            f"--seeds: seeds {CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]} are rlcheck's calibration seeds; "
            "give seeds below or above them"
        )
    if config.max_seeds < len(config.seeds):
        raise UsageError(f"--max-seeds {config.max_seeds} is below the {len(config.seeds)} seeds given")
    for cell in config.cells:
        if cell.steps <= cell.warmup:
            raise UsageError(
                f"--steps {cell.steps} leaves no training after the {cell.warmup}-step warm-up; "
                f"give --steps above {cell.warmup} or lower --warmup"
            )
        if cell.eval_every < 1 or cell.eval_episodes < 1:
            raise UsageError("--eval-every and --eval-episodes must be at least 1")
        with make_env(cell.env_id) as env:
            shape = env_dims(env)
            for net in config.nets:
                spec = config.spec(cell, net, 0)
                if (spec.group_key(), shape) in built:
                    continue
                built.add((spec.group_key(), shape))
                if spec.agent is not None:  # a user's whole agent: built, acting and observing once
                    door_check(spec.agent, cell.env_id)  # what it reports was read when the check was prepared
                    continue
                # Two seeds, as the runs will have them: a net that cannot be batched across seeds says so here, once.
                agent = build_agent(spec, env, seeds=[0, 1])
                names = {"actor": spec.actor_net_name, "critic": spec.critic_net_name}
                found = check_gradients(agent, *shape, names, config.refuse_frozen) + _unfused(net, agent, noticed)
                notes += [note for note in found if note not in notes]
    return notes


def _unfused(net: str, agent: Agent, noticed: set[tuple[str, str]]) -> list[str]:
    """Once per net and role: why its seeds are not fused, and what that costs."""
    notes = []
    for role, module in (("actor", agent.actor), ("critic", agent.q1)):
        stack = next(m for m in module.modules() if isinstance(m, SeedStack))
        if stack.strategy == "fused" or (net, role) in noticed:
            continue
        noticed.add((net, role))
        if stack.fallback_reason:
            notes.append(
                f"the {role} of net {net!r} cannot be batched across seeds "
                f"({stack.fallback_reason}); its seeds train one after another (slower, same results)"
            )
        else:  # vmap: correct, but a user who can write the net as a chain gets a faster gate
            notes.append(
                f"the {role} of net {net!r} is batched with torch.func.vmap, slower "
                "than fused layers: its forward is not a plain chain of Linear, BatchNorm1d, "
                "LayerNorm and element-wise activations (see rlcheck.nets.tracing.as_chain)"
            )
    return notes
