"""The house: no import circles in pipeline/, no module over 400 lines, and
a root of pipeline/ that holds only what DESIGN.md's layout puts there.

The import graph is read from the source with ``ast`` (nothing is
imported): an edge for every ``import`` that runs when a module is loaded
(top level, or inside a top-level ``if``/``try``/``with``; not inside a
function, and not under ``if TYPE_CHECKING:``), to the module it names and
to the packages above that module, whose ``__init__`` runs first.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 400

# DESIGN.md's target layout: the modules at the root of pipeline/.
DESIGNED_ROOT = {"errors", "config", "service", "translator", "runner", "worker", "retry",
                 "batching", "settings"}
# What else is there, and why it is not in a sub-package.
JUSTIFIED_ROOT = {
    "__init__": "the package's public face (a lazy, pinned __all__)",
    "__main__": "python -m pipeline",
    "budget": "the output budget rule; DESIGN.md's Determinism section names pipeline/budget.py",
    "faults": "the --inject-faults spec, parsed without torch by settings and models.faults",
    "io_errors": "errno and SQLite result codes as error classes: the one table each, for the "
                 "file sink and the store alike (STYLE.md: foreign errors in one place)",
    "jobs": "requests into jobs (JobOptions, job_params, submit): the half of service's verbs "
            "that the API's uploads and the benchmarks call directly",
    "languages": "the FLORES-200 table, a leaf that config, documents, memory and both faces read",
    "output_file": "files written and read in pieces (AtomicFile, OutputFile), below the stages, "
                   "the sinks and the API that all use them",
    "samples": "generated documents of a given size for bench, the tests and the benchmarks",
    "views": "what the read commands and the API show about jobs: the read half of the verbs "
             "both faces render",
}


# -- the import graph -------------------------------------------------------------------


def _modules(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for path in (root / package).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []

    def walk(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.dump(node.test):
                    walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.orelse)
                walk(node.finalbody)
            elif isinstance(node, ast.With):
                walk(node.body)

    walk(tree.body)
    return found


def _every_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Load-time imports and those inside functions (run on first use)."""
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
                   for n in ast.walk(node)}
    return [n for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in typing_only]


def import_graph(root: Path, package: str, *,
                 in_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` that loading it loads first
    (``in_functions``: or that it imports at all, later included)."""
    modules = _modules(root, package)
    graph = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in (_every_import if in_functions else _load_time_imports)(tree):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                named = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names]
            for target in named:
                while target and target not in modules:  # an attribute of a module
                    target = target.rpartition(".")[0]
                while target and target != package:  # the module, then its packages
                    if not (name == target or name.startswith(target + ".")):
                        targets.add(target)
                    target = target.rpartition(".")[0]
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = "done", path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_of_pipeline_imports_itself_in_a_circle():
    graph = import_graph(ROOT, "pipeline")
    assert len(graph) > 80 and "pipeline.sinks.grammar" in graph["pipeline.config"]
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_nor_through_an_import_deferred_into_a_function_outside_documents():
    """The circles issue 20 measured ran through imports inside functions
    (jobs <-> sinks; memory.scope -> quality.ladder -> store -> memory.scope):
    deferring an import hides a circle from Python, not from a reader.
    pipeline/documents/ still defers two (document <-> formats, protect <->
    segment); they are its own to close."""
    graph = import_graph(ROOT, "pipeline", in_functions=True)
    outside = {name: {t for t in targets if not t.startswith("pipeline.documents")}
               for name, targets in graph.items() if not name.startswith("pipeline.documents")}
    cycle = find_cycle(outside)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_circle_check_catches_a_planted_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from __future__ import annotations\nimport os\n"
                              "from pkg.sub.b import thing\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("try:\n    from ..c import other\nexcept ImportError:\n"
                                      "    pass\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg import a\n\ndef f():\n    import pkg.a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert find_cycle(graph) is None  # neither a function's import nor TYPE_CHECKING counts
    assert find_cycle(import_graph(tmp_path, "pkg", in_functions=True)) == [
        "pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]  # unless asked: then the function's does
    (pkg / "c.py").write_text("import pkg.a\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    # a package whose __init__ imports a module that imports the package back
    (pkg / "c.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.a import x\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.a", "pkg.sub", "pkg.a"]


# -- sizes and places ---------------------------------------------------------------------


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for package in ("pipeline", "models")
            for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines (two modules waiting to be named): {long}"


def test_the_root_of_pipeline_holds_only_what_the_layout_puts_there():
    root = {p.stem for p in (ROOT / "pipeline").glob("*.py")}
    assert DESIGNED_ROOT <= root
    unexplained = root - DESIGNED_ROOT - set(JUSTIFIED_ROOT)
    assert not unexplained, (f"new modules at the root of pipeline/: {sorted(unexplained)}; "
                             "put them in the sub-package they belong to")
    assert not set(JUSTIFIED_ROOT) - root, "a justified module is gone: drop its reason"
