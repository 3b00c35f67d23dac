"""Where dayzero finds data on disk: public datasets (``DAYZERO_DATA``) and shipped demo data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DAYZERO_DATA"
DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data"


class DataNotFoundError(FileNotFoundError):
    """A dataset folder or file is missing; the message says where it was looked for and the fix."""


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The folder that holds the public datasets.

    ``path`` wins; otherwise the ``DAYZERO_DATA`` environment variable. Raises
    :class:`DataNotFoundError` if neither is set or the folder does not exist.
    """
    chosen = path if path is not None else os.environ.get(DATA_ENV)
    if not chosen:
        raise DataNotFoundError(
            f"no data folder given: pass path=... or set {DATA_ENV}=/path/to/data "
            "(the folder that holds ml-1m-melu/, german-credit/, ...)"
        )
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"data folder {root} does not exist; fix {DATA_ENV} or the path")
    return root
