"""Confidence intervals for metrics: percentile bootstrap over aligned rows, and per-user means.

The bootstrap is ``scipy.stats.bootstrap`` (``method="percentile"``) over row indices, so that
any number of aligned arrays, 1-D or 2-D, are resampled together.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Literal

import numpy as np
from scipy import stats

from dayzero.core.checks import as_vector, check_k, same_length

# scipy >= 1.15 names the seed ``rng``; 1.11-1.14 (allowed by the pin) call it ``random_state``.
_SEED = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
# Resamples drawn at once are (batch, n) row indices: keep that near 8 MB of int64.
_BATCH_ELEMENTS = 1_000_000


def _check_confidence(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    check_k(n_resamples, "n_resamples")


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: object,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
    on_error: Literal["raise", "skip"] = "raise",
) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval of ``metric_fn(*arrays)``.

    Rows of the aligned ``arrays`` are resampled together with replacement (same indices for every
    array), so for per-user metric values pass one value per user and users are resampled. The
    resampling and the percentiles are ``scipy.stats.bootstrap(method="percentile")``.

    Parameters
    ----------
    metric_fn
        Called as ``metric_fn(*resampled_arrays)``; returns a float.
    *arrays
        One or more arrays with the same first dimension (1-D or 2-D).
    n_resamples, confidence, random_state
        Number of bootstrap resamples, two-sided level, seed of ``numpy.random.default_rng``.
    on_error
        What to do when ``metric_fn`` raises ``ValueError`` on a resample (for example AUC on a
        resample with one class): ``"raise"`` (default) or ``"skip"`` the resample (a resample on
        which it returns NaN is skipped too); with ``"skip"`` more than half the resamples failing
        is still an error.

    Returns
    -------
    (point, low, high)
        ``point`` is ``metric_fn`` on the original arrays; ``low``/``high`` are the
        ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles (linear interpolation)
        of the resampled values. With a single row every resample is that row: the interval is
        the point.
    """
    _check_confidence(confidence, n_resamples)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array after metric_fn")
    data = [np.asarray(a) for a in arrays]
    for position, a in enumerate(data):
        if a.ndim == 0 or len(a) == 0:
            raise ValueError(f"arrays[{position}] is empty or a scalar; pass aligned arrays")
    same_length(**{f"arrays[{i}]": a for i, a in enumerate(data)})
    point = float(metric_fn(*data))
    n = len(data[0])
    if n == 1:  # scipy needs two rows; every resample of one row is that row
        return point, point, point

    def statistic(rows: np.ndarray) -> float:
        try:
            return float(metric_fn(*(a[rows] for a in data)))
        except ValueError:
            if on_error == "raise":
                raise
            return np.nan

    options = {
        "confidence_level": confidence,
        "method": "percentile",
        "vectorized": False,
        "batch": max(1, min(n_resamples, _BATCH_ELEMENTS // n)),
    }
    with warnings.catch_warnings():
        # NaN in the distribution (skipped resamples) is handled below; scipy warns about it.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (np.arange(n),),
            statistic,
            n_resamples=n_resamples,
            **options,
            **{_SEED: np.random.default_rng(random_state)},
        )
    values = np.asarray(result.bootstrap_distribution, dtype=np.float64)
    kept = values[~np.isnan(values)] if on_error == "skip" else values
    if len(kept) < n_resamples / 2:
        raise ValueError(
            f"metric_fn failed on {n_resamples - len(kept)} of {n_resamples} resamples; "
            "the data are too small or too unbalanced for a bootstrap interval"
        )
    if len(kept) < len(values):  # the percentiles of the resamples that did not fail
        result = stats.bootstrap(
            (np.arange(n),),
            statistic,
            n_resamples=0,
            bootstrap_result=SimpleNamespace(bootstrap_distribution=kept),
            **options,
        )
    low, high = result.confidence_interval
    return point, float(low), float(high)


def mean_ci(
    values: object,
    confidence: float = 0.95,
    method: Literal["bootstrap", "t"] = "bootstrap",
    n_resamples: int = 1000,
    random_state: int = 0,
) -> tuple[float, float, float]:
    """Mean of per-user values with a confidence interval.

    Parameters
    ----------
    values
        One metric value per user (or per task), shape ``(n,)``.
    confidence
        Two-sided level.
    method
        ``"bootstrap"``: percentile bootstrap over users (:func:`bootstrap_ci`); ``"t"``: Student-t
        interval ``mean +- t * sd / sqrt(n)`` (with one value the interval is the point).
    n_resamples, random_state
        Bootstrap settings (ignored by ``"t"``).

    Returns
    -------
    (mean, low, high)
    """
    v = as_vector("values", values)
    if method == "bootstrap":
        return bootstrap_ci(
            np.mean, v, n_resamples=n_resamples, confidence=confidence, random_state=random_state
        )
    if method != "t":
        raise ValueError(f"method must be 'bootstrap' or 't', got {method!r}")
    _check_confidence(confidence, n_resamples)
    mean = float(np.mean(v))
    if len(v) == 1:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + confidence) / 2, df=len(v) - 1) * stats.sem(v))
    return mean, mean - half, mean + half
