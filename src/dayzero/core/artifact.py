"""One format for everything dayzero saves: a folder with ``dayzero.json`` and safetensors.

Every saved object (a recommender, a risk scorer, a text classifier, a text encoder, an adapter,
a vector index, a served model version) is a folder holding

``dayzero.json``
    ``{"format": "dayzero", "format_version": 2, "kind": ..., "name": ..., "params": {...},
    "state": {...}, "dayzero_version": ...}``: what the object is (``kind``, e.g.
    ``"recommender"``, and ``name``, e.g. ``"two-tower"``), the constructor parameters, and the
    fitted state that is not an array.
``weights.safetensors``
    The fitted arrays, when there are any.

and, where the object has parts, one sub-folder per part, each an artifact of its own (a
recommender's adapted encoder in ``encoder/``, a version's model in ``model/`` and index in
``index/``). Files a library writes in its own safe format may sit beside (Hugging Face
``config.json`` + ``model.safetensors``, peft's ``adapter_model.safetensors``, a faiss graph).

The file is ``dayzero.json``, not ``config.json``: Hugging Face folders and the model registry
already use that name. Nothing is ever unpickled and no code is ever run from a folder:
:func:`check_files` refuses pickle files, unreadable JSON and damaged safetensors before any
loader reads them. Folders written by dayzero 0.1 (format 1) are refused with a message that
names the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "dayzero"
FORMAT_VERSION = 2
CONFIG_FILE = "dayzero.json"
WEIGHTS_FILE = "weights.safetensors"
#: Suffixes of pickle-based formats: never read, whatever their checksum.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
#: What dayzero 0.1 (format 1) wrote, by its marker file.
_FORMAT_1 = {
    "risk_scorer.json": "a RiskScorer",
    "classifier.json": "a TextClassifier",
    "text_encoder.json": "a TextEncoder",
    "strategy.json": "an adapter",
    "index.json": "a VectorIndex",
    "serving.json": "a served model version",
    "state.safetensors": "a recommender",
}


class ArtifactError(ValueError):
    """A folder is not a loadable dayzero artifact; the message names the file and the fix."""


@dataclass
class Artifact:
    """What one saved folder holds (see the module notes).

    Parameters
    ----------
    kind : str
        The family: ``"recommender"``, ``"risk-scorer"``, ``"text-classifier"``,
        ``"text-encoder"``, ``"adapter"``, ``"vector-index"``, ``"serving-model"``.
    name : str
        The class within the family (a registered model name, a strategy name...).
    params : dict
        Constructor parameters (JSON).
    state : dict
        Fitted state that is not an array (JSON).
    arrays : dict of str to numpy.ndarray
        Fitted arrays, saved in ``weights.safetensors``.
    """

    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def save_artifact(folder: str | Path, artifact: Artifact) -> Path:
    """Write ``artifact`` into ``folder`` (created if needed); returns the folder.

    ``params`` and ``state`` must be JSON-serialisable (numpy scalars are converted); arrays
    are written with safetensors. Each file is written to a temporary name and renamed, the
    weights first and ``dayzero.json`` last, so a crash never leaves new JSON over old weights.
    Files of parts (sub-folders) are the caller's.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": artifact.kind,
        "name": artifact.name,
        "params": artifact.params,
        "state": artifact.state,
        "dayzero_version": dayzero_version(),
    }
    try:
        text = json.dumps(document, default=json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot save {artifact.kind} {artifact.name!r}: {exc}") from None
    weights = folder / WEIGHTS_FILE
    if artifact.arrays:
        arrays = {k: np.ascontiguousarray(v) for k, v in artifact.arrays.items()}
        _replace(weights, lambda tmp: save_file(arrays, str(tmp)))
    elif weights.exists():
        weights.unlink()
    _replace(folder / CONFIG_FILE, lambda tmp: tmp.write_text(text))
    return folder


def load_artifact(folder: str | Path, kind: str) -> Artifact:
    """Read the artifact in ``folder``, which must be of ``kind``.

    Raises
    ------
    ArtifactError
        The folder holds no ``dayzero.json`` (with the fix for a dayzero 0.1 folder), the file is
        unreadable, of a newer format or another kind, or the weights are damaged.
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(_missing_message(folder, kind))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise ArtifactError(f'{path} is not a dayzero artifact (no "format": "dayzero")')
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {version!r}; this dayzero reads up to {FORMAT_VERSION}: "
            "upgrade dayzero to load it"
        )
    if document.get("kind") != kind:
        raise ArtifactError(f"{folder} holds a {document.get('kind')!r}, not a {kind!r}")
    arrays: dict[str, np.ndarray] = {}
    weights = folder / WEIGHTS_FILE
    if weights.is_file():
        try:
            arrays = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise ArtifactError(f"{weights} is not a complete safetensors file ({exc})") from None
    return Artifact(
        kind=kind,
        name=str(document.get("name")),
        params=dict(document.get("params") or {}),
        state=dict(document.get("state") or {}),
        arrays=arrays,
    )


def artifact_kind(folder: str | Path) -> str | None:
    """The ``kind`` of the artifact in ``folder``, or None when it holds no readable one."""
    try:
        document = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return document.get("kind") if isinstance(document, Mapping) else None


def check_files(folder: str | Path) -> None:
    """Refuse a folder with a file no loader may read, before any loader reads it.

    Checks every file below ``folder``: no pickle (by suffix: never unpickled, whatever its
    checksum), every ``.json`` parses, every ``.safetensors`` has a whole, valid header that
    covers the file (truncated or replaced weights fail here). Cheap: tensors are not read.

    Raises
    ------
    ArtifactError
        Naming the first bad file (relative to ``folder``) and what is wrong with it.
    """
    from safetensors import safe_open

    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix in PICKLE_SUFFIXES:
            raise ArtifactError(
                f"{rel}: a pickle-format file; dayzero never unpickles (save with safetensors)"
            )
        if path.suffix == ".json":
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ArtifactError(f"{rel}: not valid JSON ({exc})") from None
        elif path.suffix == ".safetensors":
            try:
                with safe_open(str(path), "np") as handle:
                    handle.keys()
            except Exception as exc:  # safetensors raises its own SafetensorError
                raise ArtifactError(f"{rel}: not a complete safetensors file ({exc})") from None


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def dayzero_version() -> str:
    """The installed dayzero's version (``"unknown"`` in a source tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dayzero")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _missing_message(folder: Path, kind: str) -> str:
    if not folder.is_dir():
        return f"{folder} does not exist: give the folder a {kind} was saved to"
    for marker, what in _FORMAT_1.items():
        if (folder / marker).is_file():
            return (
                f"{folder} holds {what} saved by dayzero 0.1 (format 1, {marker}); this dayzero "
                f"reads format {FORMAT_VERSION} ({CONFIG_FILE}): fit it again and save it, or "
                "load it with dayzero 0.1"
            )
    return f"{folder / CONFIG_FILE} is missing: {folder} is not a saved dayzero {kind}"


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for what dayzero stores: numpy scalars and arrays, sets
    (sorted), tuples; anything else raises TypeError."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "Artifact",
    "ArtifactError",
    "artifact_kind",
    "check_files",
    "dayzero_version",
    "json_default",
    "load_artifact",
    "save_artifact",
]
