"""Helpers for dataset loaders: locate files, raise errors that name file, line and fix."""

from __future__ import annotations

import os
from pathlib import Path

from dayzero.core.settings import DATA_ENV, DataNotFoundError, data_root


class MalformedDataError(ValueError):
    """A data file exists but cannot be parsed; the message names the file, the line and the fix."""

    def __init__(self, path: Path | str, line: int | None, problem: str, fix: str) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}. Fix: {fix}")
        self.path, self.line = Path(path), line


def dataset_dir(folder: str, path: str | os.PathLike | None = None) -> Path:
    """The folder of one dataset.

    ``path`` may be the dataset folder itself or the data root holding ``folder``; without it
    ``$DAYZERO_DATA/folder`` is used.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir() and candidate.name != folder and (candidate / folder).is_dir():
            candidate = candidate / folder
    else:
        candidate = data_root() / folder
    if not candidate.is_dir():
        raise DataNotFoundError(
            f"dataset folder {candidate} not found; set {DATA_ENV} to the folder that holds "
            f"{folder}/ or pass its path"
        )
    return candidate


def require_file(directory: Path, name: str) -> Path:
    """``directory / name``, or :class:`DataNotFoundError` naming the missing file."""
    file = directory / name
    if not file.is_file():
        raise DataNotFoundError(
            f"expected file {file} is missing; restore it from the dataset's source "
            f"(see the data README) or point {DATA_ENV} at a complete copy"
        )
    return file
