"""ARCHITECTURE.md's arrows, checked on the source: every import in the package (function-level ones included)
as an edge; no cycle, and none of the arrows that must never exist."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecv"
FRAMEWORKS = ("torch", "tensorflow", "tf_keras", "timm", "torchvision")
# (who, what it must never import, why)
FORBIDDEN = [
    (
        ("edgecv.runtime", "edgecv.artifact", "edgecv.results"),
        FRAMEWORKS + ("edgecv.train", "edgecv.models", "edgecv.export"),
        "the device has none of them",
    ),
    (("edgecv.models",), ("edgecv.train",), "a model file holds no training code"),
    (("edgecv.evaluate", "edgecv.export"), ("edgecv.train",), "a finished run is loaded through models/, not the trainer"),
    (("edgecv",), ("edgecv.cli", "edgecv.cli_faces"), "the CLI is the top floor"),
]


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (edgecv's own resolved to their module; others as written)."""
    modules = {_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
        graph[name] = {d for d in deps if d != name}
    return graph


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_forbidden_arrow():
    wrong = [
        f"{m} -> {d} ({why})"
        for m, deps in import_graph().items()
        for d in sorted(deps)
        for who, never, why in FORBIDDEN
        if _within(m, who) and _within(d, never) and not (_within(m, ("edgecv.cli", "edgecv.cli_faces")))
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {m: {d for d in deps if d in import_graph_modules()} for m, deps in import_graph().items()}
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "\n".join(cycles)


def import_graph_modules() -> set[str]:
    return {_name(p) for p in PACKAGE.rglob("*.py")}


def test_the_graph_sees_function_level_imports():
    """The walk must see an import inside a function (the kind that hides a cycle)."""
    graph = import_graph()
    assert "edgecv.export.onnx_int8" in graph["edgecv.export.run"] or any("edgecv.export" in d for d in graph["edgecv.cli"])
    assert "onnxruntime.quantization.shape_inference" in graph["edgecv.export.onnx_int8"]  # imported inside onnx_int8()


def test_only_tasks_know_what_a_task_is():
    """No branch on the task's name outside edgecv/tasks/: the train/export half dispatches through the task registry,
    the device half through its own registries keyed by the artifact's task."""
    import re

    branch = re.compile(r"""task\W*\s*(==|!=|\bin\b|\bnot in\b)\s*[("']""")
    hits = [
        f"{p.relative_to(PACKAGE.parent)}:{i}: {line.strip()}"
        for p in PACKAGE.rglob("*.py")
        if "tasks" not in p.relative_to(PACKAGE).parts
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert not hits, "\n".join(hits)


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60  # issue 17: a room a newcomer reads in one sitting


def oversized(root: Path) -> list[str]:
    """Modules over MAX_MODULE_LINES and functions (methods, nested ones) over MAX_FUNCTION_LINES under ``root``, a
    function counted from its ``def`` (decorators aside) to its last line."""
    too_big = []
    for p in sorted(root.rglob("*.py")):
        source = p.read_text()
        where = p.relative_to(root.parent)
        if source.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{where}: {source.count(chr(10))} lines (> {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{where}:{node.lineno}: {node.name}() {length} lines (> {MAX_FUNCTION_LINES})")
    return too_big


def test_rooms_stay_small():
    """No module over 400 lines and no function over 60, anywhere in the package."""
    too_big = oversized(PACKAGE)
    assert not too_big, "\n".join(too_big)


def test_the_size_check_finds_what_is_too_big(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "ok.py").write_text("def f():\n" + "    x = 1\n" * 59)  # 60 lines: at the limit
    (pkg / "long.py").write_text("class A:\n    @property\n    def g(self):\n" + "        x = 1\n" * 60)
    (pkg / "big.py").write_text("x = 1\n" * 401)
    assert oversized(pkg) == ["pkg/big.py: 401 lines (> 400)", "pkg/long.py:3: g() 61 lines (> 60)"]
