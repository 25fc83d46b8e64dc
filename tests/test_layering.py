"""The layering of the packages, enforced from the sources (every import statement, via ast).

Rules (DESIGN.md, issue 10):

1. crossbar/ and calibration/ never import torch; models/ never imports numba.
2. Dependencies point one way: xbarsim <- crossbar <- calibration, models <- study <- benchmarks.
   A package imports only the project packages below it (``ALLOWED``); nothing outside
   benchmarks/ and tests/benchmarks/ imports benchmarks.
3. No package imports another package's _private names (a private module or a private
   name from it); a package's own tests (tests/<package>/) may.
4. xbarsim/ imports only the standard library at module level (anything else lazily,
   inside a function).
5. tests/conftest.py does not import torch (a calibration-only run never loads it).
6. Every imported project module exists in this tree (an editable install of another
   checkout must not satisfy an import of a module that moved).

Imports inside functions count for rules 1-3: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xbarsim", "crossbar", "calibration", "models", "study", "benchmarks")

#: package -> the project packages it may import (besides itself)
ALLOWED = {
    "xbarsim": set(),
    "crossbar": {"xbarsim"},
    "calibration": {"xbarsim", "crossbar"},
    "models": {"xbarsim", "crossbar"},
    "study": {"xbarsim", "crossbar", "models"},
    "benchmarks": {"xbarsim", "crossbar", "calibration", "models", "study"},
}
#: package -> third-party top-level modules it must never import
FORBIDDEN = {"crossbar": {"torch"}, "calibration": {"torch"}, "models": {"numba"}}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(tree: ast.AST):
    """(lineno, absolute module, imported names or None, at module level) for every import."""
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        top = id(node) not in nested
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None, top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [a.name for a in node.names], top


def _module_exists(root: Path, parts: list[str]) -> bool:
    base = root.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def check_source(text: str, where: str, package: str | None, *, test: bool = False,
                 root: Path | None = None) -> list[str]:
    """The layering violations of one module's source.

    Args:
        text: the module source.
        where: its path, for the messages.
        package: the project package it belongs to; for a test file, the package it tests
            (``tests/<package>/``) or None (tests/*.py).
        test: a test file: only rules 3 (its own package's privates are fine), 6 and "nothing
            imports benchmarks" (tests/benchmarks/ may) apply.
        root: the source tree, to check that imported project modules exist (rule 6); None skips it.

    Returns:
        One message per violation (empty: the module follows every rule).
    """
    out = []
    tree = ast.parse(text, filename=where)
    for line, module, names, top in _imports(tree):
        parts = module.split(".")
        head = parts[0]
        at = f"{where}:{line}: "
        if not test and package in FORBIDDEN and head in FORBIDDEN[package]:
            out.append(at + f"{package} must not import {head}")
        if not test and head in PACKAGES and package in ALLOWED and head != package and head not in ALLOWED[package]:
            out.append(at + f"{package} must not import {head} (allowed: {sorted(ALLOWED[package]) or 'none'})")
        if head == "benchmarks" and package != "benchmarks":
            out.append(at + "nothing outside benchmarks imports benchmarks")
        if head in PACKAGES and head != package:
            private = [p for p in parts[1:] if _private(p)] + [n for n in names or [] if _private(n)]
            if private:
                out.append(at + f"imports {head}'s private name(s) {', '.join(private)}")
        if root is not None and head in PACKAGES and not _module_exists(root, parts):
            out.append(at + f"imports {module}, which is not a module of this tree")
        if not test and package == "xbarsim" and top and head not in STDLIB and head != "xbarsim":
            out.append(at + f"xbarsim imports {head} at module level (only the standard library)")
    return out  # relative imports stay inside their package: never a violation


def _sources():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, pkg, False
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(ROOT / "tests").parts
        pkg = rel[0] if len(rel) > 1 and rel[0] in PACKAGES else None
        yield path, pkg, True


def test_the_sources_follow_the_layering():
    found, n = [], 0
    for path, pkg, is_test in _sources():
        n += 1
        found += check_source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), pkg, test=is_test,
                              root=ROOT)
    assert n > 50, f"only {n} source files found under {ROOT}"
    assert not found, "layering violations:\n" + "\n".join(found)


def test_root_conftest_does_not_import_torch():
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    heads = {m.split(".")[0] for _, m, _, _ in _imports(tree)}
    assert "torch" not in heads


SYNTHETIC = '''
import os
import numpy as np
import torch                                   # crossbar must not
from models.cli import _helper                 # a lower layer importing a higher one, privately
from study import sweep
import benchmarks.mvm                          # nobody imports benchmarks


def lazy():
    import torch.nn                            # lazy imports count too
    from calibration._fit import fit           # a private module of another package
'''


@pytest.mark.parametrize("package, expected", [
    ("crossbar", [
        "x.py:4: crossbar must not import torch",
        "x.py:5: crossbar must not import models (allowed: ['xbarsim'])",
        "x.py:5: imports models's private name(s) _helper",
        "x.py:6: crossbar must not import study (allowed: ['xbarsim'])",
        "x.py:7: crossbar must not import benchmarks (allowed: ['xbarsim'])",
        "x.py:7: nothing outside benchmarks imports benchmarks",
        "x.py:11: crossbar must not import torch",
        "x.py:12: crossbar must not import calibration (allowed: ['xbarsim'])",
        "x.py:12: imports calibration's private name(s) _fit",
    ]),
    ("xbarsim", [
        "x.py:3: xbarsim imports numpy at module level (only the standard library)",
        "x.py:4: xbarsim imports torch at module level (only the standard library)",
        "x.py:5: xbarsim must not import models (allowed: none)",
        "x.py:5: imports models's private name(s) _helper",
        "x.py:5: xbarsim imports models at module level (only the standard library)",
        "x.py:6: xbarsim must not import study (allowed: none)",
        "x.py:6: xbarsim imports study at module level (only the standard library)",
        "x.py:7: xbarsim must not import benchmarks (allowed: none)",
        "x.py:7: nothing outside benchmarks imports benchmarks",
        "x.py:7: xbarsim imports benchmarks at module level (only the standard library)",
        "x.py:12: xbarsim must not import calibration (allowed: none)",
        "x.py:12: imports calibration's private name(s) _fit",
    ]),
    ("benchmarks", [
        "x.py:5: imports models's private name(s) _helper",
        "x.py:12: imports calibration's private name(s) _fit",
    ]),
])
def test_the_checker_reports_each_violation_of_a_synthetic_module(package, expected):
    assert sorted(check_source(SYNTHETIC, "x.py", package)) == sorted(expected)


def test_the_checker_passes_a_clean_module():
    clean = "import math\nimport numpy as np\nfrom crossbar import preset\nfrom . import _kernels\n"
    assert check_source(clean, "y.py", "calibration") == []
    assert check_source("import numba\n", "z.py", "models") == ["z.py:1: models must not import numba"]
    assert check_source("from models.results import x\nfrom study.results import y\n", "m.py", "study", root=ROOT) == [
        "m.py:1: imports models.results, which is not a module of this tree"]
    # tests: their own package's privates are fine, another's are not; only tests/benchmarks imports benchmarks
    assert check_source("from crossbar import _kernels\nimport torch\n", "t.py", "crossbar", test=True) == []
    assert check_source("from crossbar import _kernels\n", "t.py", "models", test=True) == [
        "t.py:1: imports crossbar's private name(s) _kernels"]
    assert check_source("import benchmarks.mvm\n", "t.py", "benchmarks", test=True) == []
    assert check_source("import benchmarks.mvm\n", "t.py", None, test=True) == [
        "t.py:1: nothing outside benchmarks imports benchmarks"]
