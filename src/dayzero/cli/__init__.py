"""The ``dayzero`` command line (typer): ``dayzero --help`` lists the commands."""

from dayzero.cli.main import app

__all__ = ["app"]
