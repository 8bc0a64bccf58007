"""The package's layers import only the ones before them: probes and networks, algorithms,
the engine that trains, the verdicts that judge, the front that reports."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rlcheck"
# Each layer, and the layers it may import (besides its own, rlcheck.errors and rlcheck.envs).
LAYERS = {
    "nets": set(),
    "algos": {"nets"},
    "engine": {"nets", "algos"},
    "verdicts": {"nets", "algos", "engine"},
    "front": {"nets", "algos", "engine", "verdicts"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlcheck."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("rlcheck.")}
    return found


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_layer_imports_only_the_layers_before_it(layer):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        wrong = _imports(path) - LAYERS[layer] - {layer, "errors", "envs"}
        assert not wrong, f"{path.relative_to(PACKAGE)} imports rlcheck.{', rlcheck.'.join(sorted(wrong))}"
