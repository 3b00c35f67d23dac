"""--quiet: a command that draws progress bars draws none with it (as an option of the command or
of the group); without it, evaluate draws its evaluation bars."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dayzero.cli import app
from dayzero.cli.progress import with_progress

EVALUATE = ["evaluate", "--dataset", "restaurant-uci", "--model", "item-mean"]


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("DAYZERO_DATA", raising=False)  # the shipped restaurant copy
    return CliRunner()


def test_evaluate_draws_a_bar_per_segment_unless_quiet(runner):
    loud = runner.invoke(app, EVALUATE)
    assert loud.exit_code == 0, loud.output
    assert "evaluate item-mean / new_users" in loud.stderr
    for args in ([*EVALUATE, "--quiet"], ["--quiet", *EVALUATE], [*EVALUATE, "-q"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "new_users" in result.stdout  # the results still print
        assert "it/s" not in result.stderr and "evaluate item-mean" not in result.stderr
    # the scope ends with the command: the next one draws again
    assert "evaluate item-mean" in runner.invoke(app, EVALUATE).stderr


def test_models_with_a_progress_parameter_are_asked_for_bars():
    assert with_progress("two-tower", {}, quiet=False) == {"progress": True}
    assert with_progress("two-tower", {}, quiet=True) == {"progress": False}
    assert with_progress("two-tower", {"progress": False}, quiet=False) == {"progress": False}
    assert with_progress("item-mean", {"k": 1}, quiet=False) == {"k": 1}
