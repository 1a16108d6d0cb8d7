"""The package's house rules, read from its source with ast: imports flow one way (no cycle), and no
module reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qabot"


def module_trees() -> dict[str, ast.Module]:
    """Every module of the package by dotted name, parsed."""
    return {
        "qabot." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts): ast.parse(path.read_text("utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
    }


def qabot_imports(tree: ast.Module) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every `import qabot.x` and `from qabot.x import ...` anywhere in the tree,
    inside functions and TYPE_CHECKING blocks too: a cycle there is still a knot to untie."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qabot.") and not node.level:
            found.append((node.module, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom) and node.module == "qabot" and not node.level:
            found.extend((f"qabot.{alias.name}", ()) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names if alias.name.startswith("qabot."))
    return found


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    return {name: {module for module, _ in qabot_imports(tree) if module in trees} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def private_uses(name: str, tree: ast.Module, modules: set[str]) -> list[str]:
    """Where module `name` imports or reads another qabot module's underscore name (`from qabot.x import _y`,
    `x._y` or `qabot.x._y` with x imported as a module)."""
    found = []
    aliases: dict[str, str] = {}  # local name -> qabot module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in modules - {name}:
            found.extend(f"line {node.lineno}: from {node.module} import {alias.name}" for alias in node.names
                         if alias.name.startswith("_") and not alias.name.startswith("__"))  # fmt: skip
        if isinstance(node, ast.ImportFrom) and node.module == "qabot":
            aliases.update({alias.asname or alias.name: f"qabot.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qabot."):
            aliases.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names
                            if f"{node.module}.{alias.name}" in modules})  # fmt: skip
        elif isinstance(node, ast.Import):
            aliases.update({alias.asname: alias.name for alias in node.names if alias.asname and alias.name in modules})
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        target = ast.unparse(node.value)
        module = aliases.get(target, target)
        if module in modules and module != name:
            found.append(f"line {node.lineno}: {target}.{node.attr}")
    return found


def test_the_package_has_no_import_cycle():
    trees = module_trees()
    assert len(trees) > 20, "the package's modules were not found"
    cycle = find_cycle(import_graph(trees))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_answerer_imports_nothing_that_opens_indexes():
    graph = import_graph(module_trees())
    reached, pending = set(), ["qabot.answer"]
    while pending:
        for imported in graph[pending.pop()] - reached:
            reached.add(imported)
            pending.append(imported)
    assert not reached & {"qabot.store", "qabot.sharded", "qabot.shards", "qabot.cluster", "qabot.frontend"}


def test_no_module_uses_another_modules_private_names():
    trees = module_trees()
    modules = set(trees)
    offences = {name: uses for name, tree in trees.items() if (uses := private_uses(name, tree, modules))}
    assert not offences, offences


def test_the_checks_catch_what_they_look_for():
    """The finders above would see a cycle and a private use (so their silence on the package means something)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = ast.parse("from qabot import store\nfrom qabot.store import _x\nimport qabot.index as ix\nstore._y\nix._z")
    uses = private_uses("qabot.other", source, {"qabot.store", "qabot.index"})
    assert any("_x" in use for use in uses) and any("store._y" in use for use in uses)
    assert any("ix._z" in use for use in uses)
