"""Progress bars of dayzero's long stages, and one switch that turns them all off.

Each long stage shows one bar while it runs: encoding texts (``encode``), each training epoch
(``epoch 3/30``, with the running loss and the last validation metric), and evaluation (one
bar per model and segment). A stage's bar is shown when the caller asks for it (the models'
``progress=True``, ``evaluate_split(progress=True)``; the CLI asks unless ``--quiet``) and no
:func:`quiet` block is active. Bars go to stderr and vanish when their stage ends.

Examples
--------
>>> from dayzero.core.progress import progress_bar, progress_enabled, quiet
>>> with quiet():  # e.g. in a script or a test: nothing is drawn, whatever the models ask
...     progress_enabled(True)
False
>>> sum(progress_bar(range(3), desc="demo", enabled=False))
3
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# A process-wide depth, not a ContextVar: a server's background update thread started inside a
# quiet block must stay quiet too.
_lock = threading.Lock()
_quiet_depth = 0


@contextmanager
def quiet() -> Iterator[None]:
    """Draw no dayzero progress bar anywhere in the process while the block runs.

    Yields
    ------
    None
    """
    global _quiet_depth
    with _lock:
        _quiet_depth += 1
    try:
        yield
    finally:
        with _lock:
            _quiet_depth -= 1


def progress_enabled(requested: bool = True) -> bool:
    """Whether a bar the caller ``requested`` is drawn (never inside :func:`quiet`).

    Parameters
    ----------
    requested : bool, default True
        The caller's own switch (a model's ``progress`` parameter).

    Returns
    -------
    bool
    """
    return bool(requested) and _quiet_depth == 0


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str,
    total: int | None = None,
    enabled: bool = True,
    unit: str = "it",
    leave: bool = False,
    **kwargs: Any,
):
    """A tqdm bar for one long stage, disabled unless :func:`progress_enabled` says so.

    Parameters
    ----------
    iterable : iterable, optional
        What the stage loops over (or ``None`` and call ``update``).
    desc : str
        The stage's name, shown left of the bar.
    total : int, optional
        Number of steps (default: ``len(iterable)``).
    enabled : bool, default True
        The caller's switch; :func:`quiet` overrides it.
    unit : str, default "it"
        Unit of the rate shown.
    leave : bool, default False
        Keep the finished bar on screen.
    **kwargs
        Passed to ``tqdm``.

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        leave=leave,
        disable=not progress_enabled(enabled),
        dynamic_ncols=True,
        **kwargs,
    )
