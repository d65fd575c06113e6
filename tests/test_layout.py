"""The project's shape, read from the source with `ast`: import floors, no import cycle, no
import of test code, light package `__init__` files and small folders.

Floors (DESIGN.md section 1): data_tools (ground) <- eval, export (middle, each importing only
data_tools) <- posenet_mlvae (top). Every import counts, also those inside functions, since a
cycle through a function-level import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data_tools", "eval", "export", "posenet_mlvae")
#: What each top-level package may import besides itself.
ALLOWED = {"data_tools": set(), "eval": {"data_tools"}, "export": {"data_tools"},
           "posenet_mlvae": {"data_tools", "eval", "export"}}
MAX_MODULES_PER_FOLDER = 12
TEST_MODULES = {p.stem for p in (REPO / "tests").glob("*.py")} | {"tests"}


def module_files(packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages."""
    modules = {}
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_names(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) for every import statement of a file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def project_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a import b` counts a.b when b is a module)."""
    edges = {}
    for name, path in modules.items():
        targets = set()
        for module, names, _ in imported_names(name, path):
            if module.split(".")[0] not in PACKAGES:
                continue
            submodules = {f"{module}.{n}" for n in names if f"{module}.{n}" in modules}
            if submodules:
                targets |= submodules
            else:
                targets.add(module)
        edges[name] = targets - {name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(edges):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(edges[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt) and nxt in edges:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges[nxt])))
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond, no cycle
    edges = project_edges({"x.p": REPO / "data_tools" / "render" / "plan.py"})
    assert "data_tools.image.preprocess" in edges["x.p"]


def test_every_project_import_names_an_existing_module():
    modules = module_files()
    missing = []
    for name, path in modules.items():
        for module, names, line in imported_names(name, path):
            if module.split(".")[0] in PACKAGES and module not in modules:
                missing.append(f"{path.relative_to(REPO)}:{line}: {module}")
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_no_import_cycle_between_project_modules():
    cycle = find_cycle(project_edges(module_files()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_only_run_down_the_floors():
    upward = []
    for name, targets in project_edges(module_files()).items():
        floor = name.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != floor and other not in ALLOWED[floor]:
                upward.append(f"{name} imports {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_installed_module_uses_test_code():
    offenders = []
    for name, path in module_files().items():
        for module, _, line in imported_names(name, path):
            if module.split(".")[0] in TEST_MODULES:
                offenders.append(f"{path.relative_to(REPO)}:{line}: imports {module}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value == "tests" or node.value.startswith("tests/")):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: names the tests folder")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("package", ["data_tools", "posenet_mlvae"])
def test_package_init_files_hold_a_docstring_and_no_import(package):
    for init in sorted((REPO / package).rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(REPO)} has no docstring"
        imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not imports, f"{init.relative_to(REPO)} imports at line {imports[0].lineno}"


def test_no_folder_holds_more_than_twelve_modules():
    crowded = {}
    for package in PACKAGES:
        for folder in [REPO / package, *(p for p in (REPO / package).rglob("*") if p.is_dir())]:
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(REPO))] = len(modules)
    assert not crowded, crowded
