"""Every module cvn_assets imports is declared in pyproject.toml (manual §17.4).

The incident: a module imported at load time (sympy) was present in the developers' virtualenv as
a transitive dependency, so every test passed, and every production pod crashed. Here each import
of the package — at module level or inside a function — must resolve to a distribution that
pyproject.toml declares directly; being installed transitively is not enough.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cvn_assets"


def imported_modules(source: str) -> set[str]:
    """Top-level module names imported anywhere in ``source`` (absolute imports only)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def declared_distributions(pyproject: Path) -> set[str]:
    document = tomllib.loads(pyproject.read_text())
    requirements = document["project"]["dependencies"]
    return {_normalise(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) for requirement in requirements}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def undeclared_imports(sources: dict[str, str], declared: set[str], own: str = "cvn_assets") -> dict[str, str]:
    """{module: where} for each import that is neither stdlib, ours, nor a declared distribution."""
    distributions = packages_distributions()
    problems = {}
    for where, source in sorted(sources.items()):
        for module in sorted(imported_modules(source)):
            if module == own or module in sys.stdlib_module_names or module == "__future__":
                continue
            providers = {_normalise(name) for name in distributions.get(module, [])}
            if not providers:
                problems[module] = f"{where}: imports {module!r}, which no installed distribution provides"
            elif not providers & declared:
                problems[module] = (f"{where}: imports {module!r} (from {sorted(providers)}), "
                                    f"not declared in pyproject.toml [project.dependencies]")
    return problems


def test_every_import_of_the_package_is_declared():
    sources = {str(path.relative_to(ROOT)): path.read_text() for path in PACKAGE.rglob("*.py")}
    problems = undeclared_imports(sources, declared_distributions(ROOT / "pyproject.toml"))
    assert problems == {}, "\n".join(problems.values())


def test_the_check_fails_on_an_import_that_is_only_installed_transitively():
    # jinja2 is installed (dagster needs it) but cvn_assets does not declare it: the §17.4 trap.
    sources = {"cvn_assets/focal_loss.py": "def build():\n    import jinja2\n    from numpy import array\n"}
    problems = undeclared_imports(sources, declared_distributions(ROOT / "pyproject.toml"))
    assert set(problems) == {"jinja2"}
    assert "cvn_assets/focal_loss.py" in problems["jinja2"] and "not declared" in problems["jinja2"]


def test_the_check_fails_on_an_import_that_is_not_installed_at_all():
    problems = undeclared_imports({"cvn_assets/x.py": "import sympy_not_installed_anywhere\n"}, set())
    assert "no installed distribution" in problems["sympy_not_installed_anywhere"]
