"""The CI entry point runs lint as well as the tests (a lint failure must fail CI)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_lint_before_the_tests_and_stops_on_failure():
    commands = _commands(ROOT / ".ci" / "run")
    assert "set -euo pipefail" in commands  # a failing step fails the run
    assert "make lint" in commands and "make test" in commands
    assert commands.index("make lint") < commands.index("make test")


def test_make_lint_checks_and_format_checks_everything_ci_tests():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None, "Makefile has no lint target"
    body = recipe.group(1)
    for command in (
        "ruff check src tests bench",
        "ruff format --check src tests bench",
        "lint-imports",
    ):
        assert command in body, f"make lint does not run `{command}`"


def test_the_layer_contract_lists_every_top_level_package():
    """A new package must be placed in a layer, or the contract would not constrain it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    named = {part.strip() for layer in contract["layers"] for part in layer.split("|")}
    package = ROOT / "src" / "dayzero"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules == named
