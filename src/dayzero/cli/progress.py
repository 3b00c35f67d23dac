"""``--quiet`` for every command: the option, and the scope that honours it.

A command that runs long stages takes ``quiet: QuietOption = False`` and runs its work inside
``with progress_scope(quiet):``; models it builds get ``progress=True`` through
:func:`with_progress` unless the user asked for quiet. ``dayzero --quiet COMMAND`` (the
group's option) silences any command, including those without an option of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from dayzero.core.progress import quiet as quiet_scope

QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress bars or status lines (for scripts); results and errors still print.",
    ),
]


@contextlib.contextmanager
def progress_scope(quiet: bool) -> Iterator[None]:
    """Run the block with every dayzero progress bar off when ``quiet``."""
    with quiet_scope() if quiet else contextlib.nullcontext():
        yield


def with_progress(name: str, params: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """``params`` plus ``progress=not quiet`` when the registered model ``name`` has that
    parameter and ``params`` does not set it."""
    from dayzero.recommend.contract import REGISTRY

    cls = REGISTRY.get(name)
    if cls is None or "progress" in params:
        return dict(params)
    try:
        accepts = "progress" in cls._get_param_names()
    except (AttributeError, RuntimeError):
        accepts = False
    return {**params, "progress": not quiet} if accepts else dict(params)
