"""Where loaders with a shipped demo copy read from: explicit path > DAYZERO_DATA > demo copy."""

from __future__ import annotations

import os
from pathlib import Path

from dayzero.core.settings import DATA_ENV, DEMO_DATA
from dayzero.datasets._files import dataset_dir


def dataset_dir_or_demo(folder: str, path: str | os.PathLike | None = None) -> Path:
    """The folder to read ``folder`` from, falling back to the copy in ``dayzero/demo_data``.

    The rule: an explicit ``path`` wins; else ``$DAYZERO_DATA/<folder>``; else, only when
    ``DAYZERO_DATA`` is unset, the shipped copy. A set ``DAYZERO_DATA`` that lacks the folder is an
    error rather than a silent switch to the demo copy.
    """
    if path is not None or os.environ.get(DATA_ENV):
        return dataset_dir(folder, path)
    return dataset_dir(folder, DEMO_DATA / folder)
