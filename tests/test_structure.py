"""The house's structure: no import cycle among tcx's modules, no module importing its own package,
and the shell (the package tcx.cli) imported by nothing outside it, benchmarks included."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"tcx": "tcx", "models": "tcx.models", "datamodules": "tcx.datamodules", "callbacks": "tcx.callbacks"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, modules) -> set[str]:
    """Every tcx module ``path`` imports, at the top or inside a function."""
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            # `from tcx import visualize` imports the module, not what the package itself defines
            deps |= submodules or ({node.module} & set(modules))
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names} & set(modules)
    return deps


def _graph():
    modules = _modules()
    return modules, {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_no_module_imports_its_own_package():
    modules, graph = _graph()
    own = [f"{name} imports {dep}" for name, deps in graph.items() for dep in deps
           if name.startswith(dep + ".") and not modules[name].name == "__init__.py"]
    assert own == [], own


def test_there_is_no_import_cycle():
    _, graph = _graph()
    # a package's __init__ re-exports its modules; a module naming the package means the package
    graph = {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == [], cycles


def _is_shell(name: str) -> bool:
    return name == "tcx.cli" or name.startswith("tcx.cli.")


def test_nothing_outside_the_shell_imports_it():
    _, graph = _graph()
    assert sorted(f"{name} imports {dep}" for name, deps in graph.items() if not _is_shell(name)
                  for dep in deps if _is_shell(dep)) == []


def test_benchmarks_import_the_core_not_the_shell():
    modules = _modules()
    wrong = {p.name: sorted(d for d in _imports(p, modules) if _is_shell(d)) for p in (ROOT / "benchmarks").glob("*.py")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_module_docstrings_are_short_and_the_detail_lives_in_docs():
    """A module's docstring says its job in at most 15 lines; the reference is in docs/."""
    long = {}
    for path in [*_modules().values(), *(ROOT / "benchmarks").glob("*.py")]:
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        if len(doc.splitlines()) > 15:
            long[str(path.relative_to(ROOT))] = len(doc.splitlines())
    assert not long, f"module docstrings over 15 lines (move the detail to docs/): {long}"


def test_the_dependencies_point_the_way_docs_design_md_draws_them():
    """models, datamodules and callbacks build on the core; the core (tcx/ without its shell)
    imports none of them and no shell module; models and datamodules never import each other,
    and callbacks import neither (they read models and data through declared interfaces)."""
    _, graph = _graph()
    layer = lambda m: m.split(".")[1] if m.split(".")[1] in ("models", "datamodules", "callbacks") else (  # noqa: E731
        "shell" if _is_shell(m) else "core")
    allowed = {"core": {"core"}, "models": {"core", "models"}, "datamodules": {"core", "datamodules"},
               "callbacks": {"core", "callbacks"}, "shell": {"core", "shell", "models", "datamodules", "callbacks"}}
    wrong = sorted(f"{name} ({layer(name)}) imports {dep} ({layer(dep)})" for name, deps in graph.items()
                   if name.count(".") >= 1 for dep in deps if dep.count(".") >= 1 and layer(dep) not in allowed[layer(name)])
    assert wrong == [], wrong
    assert {"tcx.cli", "tcx.cli.command", "tcx.cli.arguments"} <= set(graph)


def test_no_model_family_reaches_into_a_sibling_family():
    """What two families share lives below them (models/base.py and the modules of its parts,
    models/anchors.py), never in one family's module that another imports."""
    _, graph = _graph()
    shared = {"tcx.models", "tcx.models.base", "tcx.models.anchors", "tcx.models.checkpoint_keys",
              "tcx.models.checkpoints", "tcx.models.compile", "tcx.models.data", "tcx.models.guard",
              "tcx.models.optimizers", "tcx.models.step_logging"}
    families = {m for m in graph if m.startswith("tcx.models.") and m not in shared}
    assert len(families) >= 8, sorted(families)
    sideways = sorted(f"{m} imports {d}" for m in families for d in graph[m] if d in families)
    assert sideways == [], sideways
