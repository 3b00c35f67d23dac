"""Save and load a fitted scikit-learn ``HistGradientBoostingClassifier`` without pickle.

scikit-learn only pickles its histogram gradient boosting models; dayzero never does. This
module writes what ``predict_proba`` reads into safetensors (numbers) and a JSON dict (the rest):

* every tree's ``TreePredictor.nodes`` structured array, split into one array per field and
  concatenated over the trees (``tree_offsets`` marks where each tree starts), plus its two
  categorical bitset arrays (``binned_left_cat_bitsets``, ``raw_left_cat_bitsets``), also
  concatenated with offsets;
* ``_baseline_prediction`` (the raw score before any tree), ``classes_``, ``n_iter_``,
  ``n_trees_per_iteration_`` and the bin mapper's thresholds (for categorical features these
  are the known categories, from which prediction builds its known-category bitsets);
* the estimator's parameters, and the categories of every categorical feature, from which the
  input preprocessor (an ``OrdinalEncoder`` inside a ``ColumnTransformer``) is refitted exactly
  as ``fit`` built it.

:func:`gbm_from_state` rebuilds a ``HistGradientBoostingClassifier`` whose ``predict_proba``
is bit-identical to the saved one. The layout follows scikit-learn's private internals
(checked against 1.9); the node record fields are written into the JSON and compared on load,
and a layout this module does not know raises :class:`GBMLayoutError` instead of guessing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "gbm.json"
WEIGHTS_FILE = "gbm.safetensors"
FORMAT_VERSION = 1
_PREFIX = "gbm."
# Parameters of the estimator that do not take plain JSON values.
_NO_JSON = ("loss", "scoring", "categorical_features", "monotonic_cst", "interaction_cst")


class GBMLayoutError(RuntimeError):
    """scikit-learn's internal tree layout is not the one this module reads and writes."""


def _internals() -> tuple[Any, Any, Any]:
    """``(TreePredictor, PREDICTOR_RECORD_DTYPE, _BinMapper)`` or a :class:`GBMLayoutError`."""
    try:
        from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    except ImportError as error:  # pragma: no cover - depends on the installed scikit-learn
        raise GBMLayoutError(
            f"this scikit-learn ({_sklearn_version()}) moved the HistGradientBoosting internals "
            f"dayzero.risk.gbm_io reads ({error}); pin scikit-learn 1.9 or save another head"
        ) from error
    return TreePredictor, PREDICTOR_RECORD_DTYPE, _BinMapper


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _record_layout() -> list[list[str]]:
    _, record, _ = _internals()
    return [[name, record[name].str] for name in record.names]


def _json_param(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, (list, tuple)) and name in _NO_JSON:
        return [_json_param(name, v) for v in value]
    if isinstance(value, (set, frozenset)) and name == "interaction_cst":
        return sorted(value)
    if isinstance(value, dict) and name == "monotonic_cst":
        return {"dict": {str(k): int(v) for k, v in value.items()}}
    raise TypeError(
        f"HistGradientBoostingClassifier parameter {name}={value!r} cannot be saved as JSON; "
        "use a string / number / list value for it (e.g. loss='log_loss')"
    )


def _from_json_param(value: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        return np.asarray(value["array"], dtype=np.dtype(value["dtype"]))
    if isinstance(value, dict) and "dict" in value:
        return dict(value["dict"])
    if isinstance(value, list):
        return [_from_json_param(v) for v in value]
    return value


def _json_label(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and math.isnan(value):
        return {"nan": True}
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save the label / category {value!r} ({type(value).__name__})")


def _from_json_label(value: Any) -> Any:
    return float("nan") if isinstance(value, dict) and value.get("nan") else value


def gbm_to_state(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """A fitted ``HistGradientBoostingClassifier`` as a JSON-able dict and named arrays.

    Parameters
    ----------
    model : sklearn.ensemble.HistGradientBoostingClassifier
        Fitted.

    Returns
    -------
    (config, tensors)
        ``config`` holds parameters, classes, categories and the node layout; ``tensors`` the
        numeric arrays (keys start with ``"gbm."``), ready for ``safetensors.numpy.save_file``.

    Raises
    ------
    TypeError
        ``model`` is not a ``HistGradientBoostingClassifier``, or a parameter or label cannot be
        written as JSON.
    sklearn.exceptions.NotFittedError
        ``model`` is not fitted.
    GBMLayoutError
        The installed scikit-learn stores its trees differently.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, HistGradientBoostingClassifier):
        raise TypeError(
            f"gbm_to_state saves a HistGradientBoostingClassifier, got {type(model).__name__}"
        )
    check_is_fitted(model)
    _, record, _ = _internals()
    predictors = getattr(model, "_predictors", None)
    mapper = getattr(model, "_bin_mapper", None)
    if predictors is None or mapper is None or not hasattr(model, "_baseline_prediction"):
        raise GBMLayoutError(
            f"this scikit-learn ({_sklearn_version()}) has no _predictors / _bin_mapper / "
            "_baseline_prediction on HistGradientBoostingClassifier; dayzero.risk.gbm_io "
            "supports the 1.9 layout"
        )
    trees = [tree for iteration in predictors for tree in iteration]
    for tree in trees:
        if tree.nodes.dtype.names != record.names:
            raise GBMLayoutError(
                f"tree nodes have fields {tree.nodes.dtype.names}, expected {record.names}"
            )
    tensors: dict[str, np.ndarray] = {}
    nodes = np.concatenate([tree.nodes for tree in trees])
    for name in record.names:
        values = nodes[name]
        if values.dtype == np.intp:
            values = values.astype(np.int64)  # platform-independent on disk
        tensors[f"{_PREFIX}nodes.{name}"] = np.ascontiguousarray(values)
    tensors[f"{_PREFIX}tree_offsets"] = np.cumsum([0] + [len(t.nodes) for t in trees]).astype(
        np.int64
    )
    for kind in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        arrays = [np.asarray(getattr(tree, kind), dtype=np.uint32).reshape(-1, 8) for tree in trees]
        tensors[f"{_PREFIX}{kind}"] = np.ascontiguousarray(np.concatenate(arrays))
        tensors[f"{_PREFIX}{kind}_offsets"] = np.cumsum([0] + [len(a) for a in arrays]).astype(
            np.int64
        )
    tensors[f"{_PREFIX}baseline_prediction"] = np.ascontiguousarray(
        model._baseline_prediction, dtype=np.float64
    )
    for i, thresholds in enumerate(mapper.bin_thresholds_):
        tensors[f"{_PREFIX}bin_thresholds.{i}"] = np.ascontiguousarray(thresholds, dtype=np.float64)
    tensors[f"{_PREFIX}n_bins_non_missing"] = np.asarray(
        mapper.n_bins_non_missing_, dtype=np.uint32
    )

    categories = None
    if model.is_categorical_ is not None:
        encoder = model._preprocessor.named_transformers_["encoder"]
        categories = [[_json_label(v) for v in column] for column in encoder.categories_]
    params = {k: _json_param(k, v) for k, v in model.get_params(deep=False).items()}
    config = {
        "format": FORMAT_VERSION,
        "sklearn_version": _sklearn_version(),
        "node_layout": _record_layout(),
        "params": params,
        "classes": [_json_label(c) for c in model.classes_],
        "classes_dtype": model.classes_.dtype.str if model.classes_.dtype != object else "object",
        "n_iter": int(model.n_iter_),
        "n_trees_per_iteration": int(model.n_trees_per_iteration_),
        "n_features_in": int(model.n_features_in_),
        "feature_names_in": (
            [str(c) for c in model.feature_names_in_]
            if hasattr(model, "feature_names_in_")
            else None
        ),
        "is_categorical": (
            None if model.is_categorical_ is None else model.is_categorical_.tolist()
        ),
        "categories": categories,
        "bin_mapper": {
            "n_bins": int(mapper.n_bins),
            "is_categorical": mapper.is_categorical_.tolist(),
            "missing_values_bin_idx": int(mapper.missing_values_bin_idx_),
            "n_thresholds": len(mapper.bin_thresholds_),
        },
        "train_score": np.asarray(model.train_score_, dtype=float).tolist(),
        "validation_score": np.asarray(model.validation_score_, dtype=float).tolist(),
        "do_early_stopping": bool(model.do_early_stopping_),
    }
    return config, tensors


def _synthetic_frame(config: dict) -> Any:
    """A small input on which the preprocessor refits to exactly the saved categories."""
    categories = [[_from_json_label(v) for v in column] for column in config["categories"]]
    is_categorical = np.asarray(config["is_categorical"], dtype=bool)
    n_rows = max(1, *(len(c) for c in categories))
    columns: list[Any] = []
    position = 0
    for flag in is_categorical:
        if flag:
            values = categories[position]
            position += 1
            values = (values + values[:1] * n_rows)[:n_rows] if values else [np.nan] * n_rows
            columns.append(values)
        else:
            columns.append([0.0] * n_rows)
    names = config["feature_names_in"]
    if names is None:
        strings = any(isinstance(v, str) for column in columns for v in column)
        array = np.empty((n_rows, len(columns)), dtype=object if strings else np.float64)
        for j, column in enumerate(columns):
            array[:, j] = column
        return array
    import pandas as pd

    frame = pd.DataFrame({name: column for name, column in zip(names, columns, strict=True)})
    for name, flag in zip(names, is_categorical, strict=True):
        if flag and config["params"].get("categorical_features") == "from_dtype":
            frame[name] = frame[name].astype("category")
    return frame


def gbm_from_state(config: dict, tensors: dict[str, np.ndarray]) -> Any:
    """Rebuild the classifier written by :func:`gbm_to_state`.

    Parameters
    ----------
    config : dict
        The JSON part.
    tensors : dict of str to ndarray
        The arrays (for example ``safetensors.numpy.load_file(...)``).

    Returns
    -------
    sklearn.ensemble.HistGradientBoostingClassifier
        Fitted; ``predict_proba`` equals the saved model's bit for bit.

    Raises
    ------
    GBMLayoutError
        The saved node layout differs from the installed scikit-learn's.
    ValueError
        ``config`` is not a dayzero gbm state.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import LabelEncoder

    if config.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"not a dayzero gbm state (format {config.get('format')!r}, expected "
            f"{FORMAT_VERSION}); pass what gbm_to_state / save_gbm wrote"
        )
    TreePredictor, record, BinMapper = _internals()
    if config["node_layout"] != _record_layout():
        raise GBMLayoutError(
            f"the model was saved with scikit-learn {config['sklearn_version']}, whose tree node "
            f"layout {config['node_layout']} differs from this scikit-learn "
            f"({_sklearn_version()}): {_record_layout()}; load it with scikit-learn "
            f"{config['sklearn_version']}, or refit and save again"
        )
    params = {k: _from_json_param(v) for k, v in config["params"].items()}
    model = HistGradientBoostingClassifier(**params)
    missing = [m for m in ("_preprocess_X", "_get_loss", "_raw_predict") if not hasattr(model, m)]
    if missing:
        raise GBMLayoutError(
            f"this scikit-learn ({_sklearn_version()}) has no HistGradientBoostingClassifier."
            f"{', '.join(missing)}, which dayzero.risk.gbm_io uses to rebuild a model; load it "
            f"with scikit-learn {config['sklearn_version']}, or refit and save again"
        )

    offsets = tensors[f"{_PREFIX}tree_offsets"]
    nodes = np.zeros(int(offsets[-1]), dtype=record)
    for name in record.names:
        nodes[name] = tensors[f"{_PREFIX}nodes.{name}"]
    bitsets = {
        kind: (tensors[f"{_PREFIX}{kind}"], tensors[f"{_PREFIX}{kind}_offsets"])
        for kind in ("binned_left_cat_bitsets", "raw_left_cat_bitsets")
    }
    per_iteration = int(config["n_trees_per_iteration"])
    trees = []
    for t in range(len(offsets) - 1):
        kinds = {
            kind: np.ascontiguousarray(array[starts[t] : starts[t + 1]])
            for kind, (array, starts) in bitsets.items()
        }
        trees.append(
            TreePredictor(
                np.ascontiguousarray(nodes[offsets[t] : offsets[t + 1]]),
                kinds["binned_left_cat_bitsets"],
                kinds["raw_left_cat_bitsets"],
            )
        )
    model._predictors = [trees[i : i + per_iteration] for i in range(0, len(trees), per_iteration)]

    classes = [_from_json_label(c) for c in config["classes"]]
    dtype = object if config["classes_dtype"] == "object" else np.dtype(config["classes_dtype"])
    model.classes_ = np.asarray(classes, dtype=dtype)
    model._label_encoder = LabelEncoder().fit(model.classes_)
    model.n_trees_per_iteration_ = per_iteration
    if model.n_iter_ != int(config["n_iter"]):  # n_iter_ is len(_predictors) in 1.9
        raise GBMLayoutError(f"rebuilt {model.n_iter_} iterations, saved {config['n_iter']}")
    model._baseline_prediction = tensors[f"{_PREFIX}baseline_prediction"]
    model._loss = model._get_loss(sample_weight=None)
    model.do_early_stopping_ = bool(config["do_early_stopping"])
    model.train_score_ = np.asarray(config["train_score"], dtype=float)
    model.validation_score_ = np.asarray(config["validation_score"], dtype=float)
    model._in_fit = False
    model._n_features = int(config["n_features_in"])

    if config["is_categorical"] is None:
        model.is_categorical_ = None
        model._preprocessor = None
        model._is_categorical_remapped = None
        model.n_features_in_ = int(config["n_features_in"])
        if config["feature_names_in"] is not None:
            model.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    else:
        # Refit the input preprocessor the way fit() does, on rows holding exactly the saved
        # categories: OrdinalEncoder sorts them, so it reproduces the same codes.
        model._preprocess_X(_synthetic_frame(config), reset=True)
        encoder = model._preprocessor.named_transformers_["encoder"]
        saved = [[_from_json_label(v) for v in column] for column in config["categories"]]
        refitted = [list(column) for column in encoder.categories_]
        if not _same_categories(saved, refitted):
            raise GBMLayoutError(
                f"the refitted preprocessor found categories {refitted}, saved {saved}"
            )

    mapper_config = config["bin_mapper"]
    mapper = BinMapper(n_bins=mapper_config["n_bins"])
    mapper.is_categorical_ = np.asarray(mapper_config["is_categorical"], dtype=np.uint8)
    mapper.missing_values_bin_idx_ = mapper_config["missing_values_bin_idx"]
    mapper.bin_thresholds_ = [
        tensors[f"{_PREFIX}bin_thresholds.{i}"] for i in range(mapper_config["n_thresholds"])
    ]
    mapper.n_bins_non_missing_ = tensors[f"{_PREFIX}n_bins_non_missing"]
    model._bin_mapper = mapper
    return model


def _same_categories(a: list[list[Any]], b: list[list[Any]]) -> bool:
    def key(v: Any) -> Any:
        return "<nan>" if isinstance(v, float) and math.isnan(v) else v

    return [[key(v) for v in column] for column in a] == [[key(v) for v in column] for column in b]


def save_gbm(model: Any, path: str | Path) -> Path:
    """Write ``gbm.json`` + ``gbm.safetensors`` into the folder ``path``; returns the folder."""
    from safetensors.numpy import save_file

    config, tensors = gbm_to_state(model)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    save_file(tensors, str(folder / WEIGHTS_FILE))
    return folder


def load_gbm(path: str | Path) -> Any:
    """Read a classifier written by :func:`save_gbm`."""
    from safetensors.numpy import load_file

    folder = Path(path)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: is {folder} a save_gbm folder?")
    return gbm_from_state(json.loads(config.read_text()), load_file(str(folder / WEIGHTS_FILE)))
