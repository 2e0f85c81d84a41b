"""The package's architecture, checked: every module imports, no import cycle, and imports flow downwards.

The layers (docs/architecture in issue 14): cli → run → measurements →
runtime / inputs → core; policy and report depend on core (report also on
policy); demo builds checkpoints with the runtime's helpers. Imports inside
functions count too: a lazy import is still a dependency, and a cycle through
one is still a cycle.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gate"

# What each layer may import besides itself; the package root (version, distribution name) is open to all.
ALLOWED = {
    "core": set(),
    "inputs": {"core"},
    "runtime": {"core"},
    "measurements": {"runtime", "inputs", "core"},
    "policy": {"core"},
    "report": {"policy", "core"},
    "demo": {"measurements", "runtime", "inputs", "core"},
    "run": {"measurements", "runtime", "inputs", "policy", "report", "demo", "core"},
    "cli": {"run", "measurements", "runtime", "inputs", "policy", "report", "demo", "core"},
    "__main__": {"cli"},
}
# Known exceptions, each with the work that removes it.
EXCEPTIONS = {
    # The schema knows the metric names from the measurement registry (issue 14: one list, derived); the
    # registry module imports only core and the options module, so no module cycle comes of it.
    ("gate.policy.schema", "gate.measurements.registry"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def _imports(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of gate that `name` imports anywhere in its source (from X import Y counts X.Y if a module)."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, file, modules) for name, file in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gate"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_every_module_imports():
    for name in sorted(_modules()):
        if name != "gate.__main__":  # runs the CLI when imported
            importlib.import_module(name)


def test_no_import_cycle():
    assert _cycle(_graph()) is None


def test_imports_flow_downwards():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items() for target in targets
        if _layer(target) not in ALLOWED.get(_layer(module), set()) | {_layer(module), "gate"}
        and (module, target) not in EXCEPTIONS
    )
    assert wrong == []


def test_the_checks_catch_what_they_look_for():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _layer("gate.core.errors") == "core" and _layer("gate") == "gate"
    assert "gate.runtime.base" in _graph()["gate.runtime.torch_backend"]


@pytest.mark.parametrize("pair", sorted(EXCEPTIONS))
def test_each_exception_is_still_needed(pair):
    module, target = pair
    assert target in _graph()[module], f"{module} no longer imports {target}: drop the exception"
