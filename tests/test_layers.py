"""The layers of util/ (util/__init__.py draws them): each package imports only from the
layers below it, and no module imports another that imports it back, however indirectly.
The imports are read from the source (ast), function-level ones included."""

import ast
from pathlib import Path

from helpers import REPO_ROOT

# Rank of each package: a module may import its own package and lower ranks only.
LAYERS = {
    "util.settings": 0,
    "util.data": 1,
    "util.model": 2,
    "util.decoding": 2,
    "importers": 2,
    "util.training": 3,
    "util.transcriber": 3,
    "dashboard": 3,
}
PROJECT_ROOTS = ("util", "importers", "dashboard", "DeepSpeech", "bin", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    modules = {}
    for top in ("util", "importers", "dashboard"):
        for path in sorted(Path(REPO_ROOT, top).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imported_names(path: Path, name: str) -> set[str]:
    """The project modules (or names in them) that ``path``'s code imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return {f for f in found if f.split(".")[0] in PROJECT_ROOTS}


def resolve(imported: str, modules: dict[str, Path]) -> str:
    """The module an imported name lives in (``util.data.text.wer`` -> ``util.data.text``)."""
    while imported and imported not in modules:
        imported = imported.rpartition(".")[0]
    return imported


def layer_of(module: str) -> str | None:
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    graph = {}
    for name, path in modules.items():
        targets = {resolve(i, modules) for i in imported_names(path, name)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        layer = layer_of(module)
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target.split(".")[0] in ("DeepSpeech", "bin", "tests"):
                wrong.append(f"{module} imports the program or a script: {target}")
            elif target_layer is None:
                wrong.append(f"{module} imports {target}, which is in no layer")
            elif layer is None or target_layer == layer:
                continue
            elif LAYERS[target_layer] >= LAYERS[layer]:
                wrong.append(f"{module} ({layer}) imports {target} ({target_layer})")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_library_module_has_a_layer():
    graph = import_graph()
    assert set(LAYERS) <= {layer_of(m) for m in graph}
    unplaced = [m for m in graph if layer_of(m) is None and m != "util"]
    assert unplaced == []


def test_no_package_imports_upwards_or_sideways():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = import_graph()
    graph["util.data.audio"] = graph["util.data.audio"] | {"util.training.contexts"}
    assert "util.data.audio (util.data) imports util.training.contexts (util.training)" in (
        upward_imports(graph)
    )
    assert any("util.data.audio" in group for group in cycles(graph))
    graph = {"util.model.a": {"util.decoding.b"}, "util.decoding.b": set()}
    assert upward_imports(graph) == [
        "util.model.a (util.model) imports util.decoding.b (util.decoding)"
    ]


def test_relative_and_function_level_imports_are_read(tmp_path):
    path = tmp_path / "audio.py"
    path.write_text("from .text import wer\n\n\ndef f():\n    from util.training import logs\n")
    found = imported_names(path, "util.data.audio")
    assert {"util.data.text.wer", "util.training.logs"} <= found


def long_functions(limit: int = 60) -> list[str]:
    """Functions of util/, dashboard/ and DeepSpeech.py longer than ``limit`` lines (the
    docstring counts)."""
    paths = [*Path(REPO_ROOT, "util").rglob("*.py"), *Path(REPO_ROOT, "dashboard").rglob("*.py")]
    found = []
    for path in [*paths, Path(REPO_ROOT, "DeepSpeech.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(REPO_ROOT)}: {node.name} ({length} lines)")
    return found


def test_functions_fit_on_a_screen():
    assert long_functions() == []
    assert any("train_epoch" in f for f in long_functions(limit=20))  # the check does look
