"""Risk scoring and text models. Names are imported lazily (no torch on ``import dayzero.risk``)."""

from __future__ import annotations

from dayzero.core.lazy import lazy_exports

_EXPORTS = {
    "TextClassifier": "dayzero.risk.text_classifier",
    "TextEnsemble": "dayzero.risk.text_ensemble",
    "TextRegressor": "dayzero.risk.text_regressor",
}
__all__ = ["TextClassifier", "TextEnsemble", "TextRegressor"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
