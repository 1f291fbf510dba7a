"""The user documentation: it builds without warnings and its examples run.

* ``mkdocs build --strict`` of ``mkdocs.yml`` (API reference by mkdocstrings from the
  numpy docstrings) must succeed with no warning at all.
* Every ```` ```python ```` block of a page runs, top to bottom in one namespace per page, in
  a temporary folder, unless the line before it is ``<!-- docs-test: skip (reason) -->``.
* Every ``stgeo SUBCOMMAND --flag`` written in a ```` ```bash ```` block exists in the
  command line's parser, so the docs cannot drift from the CLI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
SKIP_MARK = re.compile(r"<!--\s*docs-test:\s*skip\b")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def _missing_doc_tools() -> list[str]:
    mods = {
        "mkdocs": "mkdocs",
        "mkdocstrings": "mkdocstrings",
        "mkdocstrings_handlers.python": "mkdocstrings-python",
    }
    out = []
    for mod, pkg in mods.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(pkg)
    return out


def code_blocks(text: str) -> list[tuple[str, str, bool, int]]:
    """``(language, code, skipped, line)`` of every fenced block of a Markdown page."""
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, m.start()) + 1
        out.append((m.group(1), m.group(2), bool(SKIP_MARK.search(before)), line))
    return out


def test_code_blocks_parser() -> None:
    text = "a\n```python\nx = 1\n```\n<!-- docs-test: skip (slow) -->\n```python\ny\n```\n"
    blocks = code_blocks(text)
    assert [(b[0], b[1], b[2]) for b in blocks] == [
        ("python", "x = 1\n", False),
        ("python", "y\n", True),
    ]


def test_every_page_is_in_the_nav() -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for n in node:
                yield from walk(n)
        elif isinstance(node, dict):
            for v in node.values():
                yield from walk(v)

    nav = set(walk(cfg["nav"]))
    assert nav == set(PAGES), (
        f"pages not in nav: {set(PAGES) - nav}; nav entries without a page: {nav - set(PAGES)}"
    )


@pytest.mark.skipif(
    bool(_missing_doc_tools()),
    reason=f"documentation tools not installed: {', '.join(_missing_doc_tools())} "
    "(pip install -e '.[dev]')",
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    warnings = [ln for ln in log.splitlines() if ln.startswith(("WARNING", "ERROR"))]
    assert not warnings, "\n".join(warnings)
    # the API reference was generated from the docstrings, not left empty
    api = (site / "reference" / "forecasting" / "index.html").read_text()
    assert 'id="stgeo.forecasting.forecast"' in api
    assert "lead_steps" in api
    metrics = (site / "reference" / "metrics" / "index.html").read_text()
    assert 'id="stgeo.metrics.categorical.csi"' in metrics
    # Sphinx roles of the docstrings are shown as code (docs/griffe_sphinx_roles.py)
    assert ":func:`" not in api and ":class:`" not in api
    for page in PAGES:
        stem = page[: -len(".md")]
        folder = stem[: -len("index")] if stem.endswith("index") else stem + "/"
        html = site / folder / "index.html"
        assert html.is_file(), f"{page} was not built ({html})"


def _pages_with_examples() -> list[str]:
    return [
        p
        for p in PAGES
        if any(
            lang == "python" and not skip
            for lang, _, skip, _ in code_blocks((DOCS / p).read_text())
        )
    ]


@pytest.mark.parametrize("page", _pages_with_examples())
def test_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / page).read_text()
    blocks = [b for b in code_blocks(text) if b[0] == "python"]
    runnable = [b for b in blocks if not b[2]]
    monkeypatch.chdir(tmp_path)
    import torch

    import stgeo
    import stgeo.models  # registers the built-in models (stgeo imports them lazily)
    from stgeo import _registry

    stgeo.datasets.list_recipes()  # the built-in recipes too: an example must not unregister them

    registries = [
        _registry.MODELS,
        _registry.METRICS,
        _registry.METRIC_FAMILIES,
        _registry.CATALOGS,
        _registry.AUGMENTATIONS,
        _registry.RECIPES,
    ]
    before = [set(reg.list()) for reg in registries]
    ns: dict[str, object] = {"__name__": f"docs_{page}"}
    threads = torch.get_num_threads()
    # the examples use tiny tensors: one thread is faster and avoids oversubscription
    torch.set_num_threads(1)
    try:
        with stgeo.set_options(progress=False), contextlib.redirect_stdout(io.StringIO()):
            for _, code, _, line in runnable:
                try:
                    exec(compile(code, f"docs/{page}:{line}", "exec"), ns)
                except Exception as err:  # pragma: no cover - the message is the point
                    raise AssertionError(
                        f"the example at docs/{page} line {line} fails: {type(err).__name__}: {err}"
                    ) from err
    finally:
        torch.set_num_threads(threads)
        for reg, names in zip(registries, before, strict=True):  # registered by an example
            for name in set(reg.list()) - names:
                reg.remove(name)


def _cli_flags() -> dict[str, set[str]]:
    from stgeo.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out: dict[str, set[str]] = {}
    for name, p in sub.choices.items():
        flags = {s for a in p._actions for s in a.option_strings}
        for a in p._actions:  # nested (catalog list/show)
            if a.__class__.__name__ == "_SubParsersAction":
                for q in a.choices.values():
                    flags |= {s for b in q._actions for s in b.option_strings}
        out[name] = flags | {s for a in parser._actions for s in a.option_strings}
    return out


def test_every_public_module_has_an_api_page() -> None:
    import pkgutil

    import stgeo

    modules = [
        m.name
        for m in pkgutil.walk_packages(stgeo.__path__, "stgeo.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    text = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)", text, re.M))
    missing = [m for m in ["stgeo", *modules] if m not in documented]
    assert not missing, f"modules without a `::: module` entry in docs/reference/: {missing}"


def test_every_catalog_entry_is_documented() -> None:
    import stgeo

    text = (DOCS / "guide" / "data.md").read_text()
    missing = [n for n in stgeo.list_catalog() if f"`{n}`" not in text]
    assert not missing, f"catalog entries missing from docs/guide/data.md: {missing}"


def _stgeo_arguments(words: list[str]) -> list[str] | None:
    """The arguments of a ``stgeo ...`` or ``... -m stgeo.cli ...`` command line, else None."""
    if words and words[0] == "stgeo":
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "stgeo.cli":
            return words[i + 2 :]
    return None


def test_stgeo_arguments() -> None:
    assert _stgeo_arguments(["stgeo", "train", "x"]) == ["train", "x"]
    assert _stgeo_arguments(["torchrun", "-m", "stgeo.cli", "train"]) == ["train"]
    assert _stgeo_arguments(["ruff", "check", "stgeo", "tests"]) is None


def test_cli_examples_use_real_options() -> None:
    known = _cli_flags()
    seen = 0
    for page in PAGES:
        for lang, code, _, line in code_blocks((DOCS / page).read_text()):
            if lang not in ("bash", "console", "sh", "shell"):
                continue
            for cmd in code.replace("\\\n", " ").splitlines():
                cmd = cmd.split("#", 1)[0].strip().lstrip("$ ")
                for part in re.split(r"&&|\|\||;", cmd):
                    words = shlex.split(part)
                    words = _stgeo_arguments(words)
                    if not words or words[0].startswith("-"):
                        continue
                    assert words[0] in known, f"docs/{page}:{line}: unknown command {words[0]!r}"
                    for w in words[1:]:
                        if w.startswith("--"):
                            flag = w.split("=", 1)[0]
                            assert flag in known[words[0]], (
                                f"docs/{page}:{line}: `stgeo {words[0]}` has no option {flag}"
                            )
                    seen += 1
    assert seen >= 5, "expected CLI examples in the docs"
