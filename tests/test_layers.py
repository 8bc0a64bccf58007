"""The package's layers import only the ones before them: probes and networks, algorithms,
the engine that trains, the verdicts that judge, the front that reports. Beside them, three
leaves any layer may import: rlcheck.errors, rlcheck.envs and rlcheck.requests (what a user
asks; stdlib only)."""

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


LEAVES = {"errors", "envs", "requests"}
# Within rlcheck.nets: the contract (what a user's module is, and its adapters) reads modules
# through rlcheck.nets.tracing and never imports the code that stacks seeds.
CONTRACT = ("shapes", "adapters", "tracing")
STACKING = {"fusion", "seedstack"}


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
        wrong = _imports(path) - LAYERS[layer] - {layer, *LEAVES}
        assert not wrong, f"{path.relative_to(PACKAGE)} imports rlcheck.{', rlcheck.'.join(sorted(wrong))}"


def _module_graph() -> dict[str, set[str]]:
    """Each rlcheck module and the rlcheck modules it imports anywhere in it: at the top, inside
    functions, under ``if TYPE_CHECKING`` -- every import counts."""
    paths = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}
    modules = {name.removesuffix(".__init__"): path for name, path in paths.items()}

    def owner(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlcheck"):
                found.add(owner(node.module))
            elif isinstance(node, ast.Import):
                found |= {owner(a.name) for a in node.names if a.name.startswith("rlcheck")}
        graph[name] = found - {name}
    return graph


def test_no_module_imports_back_a_module_that_imports_it():
    graph = _module_graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            assert imported not in visiting, " -> ".join([*visiting[visiting.index(imported) :], imported])
            if imported not in done:
                visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)


def _nets_modules_imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlcheck.nets."):
            found.add(node.module.split(".")[2])
    return found


@pytest.mark.parametrize("module", CONTRACT)
def test_the_network_contract_does_not_import_the_stacking_code(module):
    wrong = _nets_modules_imported(PACKAGE / "nets" / f"{module}.py") & STACKING
    assert not wrong, f"nets/{module}.py imports rlcheck.nets.{', rlcheck.nets.'.join(sorted(wrong))}"


def test_the_request_module_imports_only_the_standard_library():
    tree = ast.parse((PACKAGE / "requests.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "dataclasses", "collections", "typing", "rlcheck"}, imported
