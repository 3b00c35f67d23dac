"""Input checks shared by the metric functions, models and encoders: every error names the
argument at fault."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import pandas as pd


def as_vector(name: str, values: object, *, numeric: bool = True) -> np.ndarray:
    """``values`` as a non-empty 1-D array; numeric arrays are float64 and free of NaN.

    Raises
    ------
    ValueError
        Naming ``name`` when the input is empty, not 1-D, not numeric or contains NaN.
    """
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(f"{name} must be a 1-D array, got a scalar {array!r}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; a metric needs at least one value")
    if numeric:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric: {exc}") from exc
        if np.isnan(array).any():
            first = int(np.flatnonzero(np.isnan(array))[0])
            raise ValueError(f"{name} contains NaN (first at position {first}); drop or fill it")
    elif pd.isna(array).any():
        first = int(np.flatnonzero(pd.isna(array))[0])
        raise ValueError(f"{name} contains a missing value (first at position {first})")
    return array


def same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` naming the arguments when the arrays differ in length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"inputs must have the same length: {shown}")


def check_k(k: object, name: str = "k") -> int:
    """A positive integer cutoff."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def positive_int(value: object, name: str, *, numpy_ints: bool = False) -> int:
    """``value`` as an int >= 1; ``bool`` is refused, numpy integers only with ``numpy_ints``
    (a parameter that is saved as JSON must be a Python int)."""
    kinds = int | np.integer if numpy_ints else int
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def text_list(texts: Iterable[str], name: str = "texts") -> list[str]:
    """``texts`` as a list of str; a single string (or bytes) is refused, not split."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of str, got a single {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}, expected str")
    return texts


def binary_labels(name: str, y: object) -> np.ndarray:
    """``y`` as a 0/1 float vector; anything other than 0/1 (or booleans) is an error."""
    array = as_vector(name, y)
    bad = ~np.isin(array, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"{name} must hold binary labels 0/1 (1 = positive/bad); found "
            f"{array[bad][0]!r} at position {int(np.flatnonzero(bad)[0])}"
        )
    return array


def probabilities(name: str, p: object) -> np.ndarray:
    """``p`` as a float vector inside ``[0, 1]``."""
    array = as_vector(name, p)
    outside = (array < 0.0) | (array > 1.0)
    if outside.any():
        raise ValueError(
            f"{name} must be probabilities in [0, 1]; found {array[outside][0]!r} at position "
            f"{int(np.flatnonzero(outside)[0])}"
        )
    return array


def id_list(name: str, ids: Iterable[Hashable]) -> list[Hashable]:
    """A list of distinct, non-missing ids (an empty list is allowed: it recommends nothing)."""
    out = list(ids.tolist() if isinstance(ids, np.ndarray) else ids)
    if any(pd.isna(i) for i in out if not isinstance(i, list | tuple | set | dict)):
        raise ValueError(f"{name} contains a missing id (None or NaN)")
    seen: set = set()
    for position, item in enumerate(out):
        if item in seen:
            raise ValueError(
                f"{name} lists {item!r} twice (again at position {position}); a recommended list "
                "must not repeat an item"
            )
        seen.add(item)
    return out
