"""The architecture rules of docs/development.md, checked on the source tree.

- imports point down the layers (import-linter contracts in pyproject.toml, no cycle);
- no private name (``_x``) or private module crosses a package;
- no function in ``stgeo/`` has more than ``MAX_FUNCTION_LINES`` lines of code (its docstring
  not counted); ruff's complexity rules (C901, PLR0912, PLR0915) guard the rest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stgeo"
MAX_FUNCTION_LINES = 100
#: private modules at the top of the package that every layer may import (not their private names)
SHARED_PRIVATE_MODULES = {"stgeo._registry", "stgeo._optional"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package_of(module: str) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to itself)."""
    if MODULES.get(module, Path()).name == "__init__.py":
        return module
    return module.rsplit(".", 1)[0]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_parts(target: str) -> bool:
    if target in SHARED_PRIVATE_MODULES:
        return False
    return any(p.startswith("_") for p in target.split(".")[1:])


def _private_crossings() -> list[str]:
    bad = []
    for module, path in MODULES.items():
        pkg = _package_of(module)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(module, node)
                if not target.startswith("stgeo"):
                    continue
                owner = _package_of(target) if target in MODULES else target
                names = [a.name for a in node.names]
                # `from pkg import module` imports a module: judge the module's own path
                for name in names:
                    full = f"{target}.{name}"
                    where, what = (full, full) if full in MODULES else (target, name)
                    owner = _package_of(where)
                    private = _private_parts(where) or (
                        what.startswith("_") and not what.startswith("__")
                    )
                    if private and owner != pkg and not pkg.startswith(owner + "._"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {full}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("stgeo") and _private_parts(a.name):
                        if _package_of(a.name) != pkg:
                            bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}")
    return bad


def _long_functions() -> list[str]:
    bad = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring
            if not body:
                continue
            n = body[-1].end_lineno - body[0].lineno + 1
            if n > MAX_FUNCTION_LINES:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() has {n} lines")
    return bad


def test_import_layers_hold():
    cli = pytest.importorskip("importlinter.cli")
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, "import-linter contracts broken: run `lint-imports` for the details"


def test_no_private_name_crosses_a_package():
    bad = _private_crossings()
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def test_no_function_is_longer_than_the_limit():
    bad = _long_functions()
    assert not bad, f"functions over {MAX_FUNCTION_LINES} lines of code:\n" + "\n".join(bad)
