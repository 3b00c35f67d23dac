"""Recommenders: the contract, the baselines and the pretrained-text models.

Names are imported lazily: ``import dayzero.recommend`` and fitting a baseline never import
torch. ``REGISTRY`` maps model names (``"two-tower"``, ``"item-mean"``, ...) to classes.
"""

from __future__ import annotations

from dayzero.core.lazy import lazy_exports
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender, register

_EXPORTS = {
    "ContentKNN": "dayzero.recommend.baselines.content_knn",
    "CrossEncoderRecommender": "dayzero.recommend.cross_encoder",
    "FeatureHybrid": "dayzero.recommend.baselines.feature_hybrid",
    "GlobalMean": "dayzero.recommend.baselines.means",
    "ItemKNN": "dayzero.recommend.baselines.item_knn",
    "ItemMean": "dayzero.recommend.baselines.means",
    "ItemMeanUserBias": "dayzero.recommend.baselines.means",
    "MatrixFactorization": "dayzero.recommend.baselines.matrix_factorization",
    "Popularity": "dayzero.recommend.baselines.popularity",
    "SequentialRecommender": "dayzero.recommend.sequential",
    "TwoTowerRecommender": "dayzero.recommend.two_tower",
    "VectorServable": "dayzero.recommend.servable",
}

__all__ = [  # noqa: RUF022 - the contract first, then the models
    "REGISTRY",
    "Recommender",
    "make_recommender",
    "register",
    "ContentKNN",
    "CrossEncoderRecommender",
    "FeatureHybrid",
    "GlobalMean",
    "ItemKNN",
    "ItemMean",
    "ItemMeanUserBias",
    "MatrixFactorization",
    "Popularity",
    "SequentialRecommender",
    "TwoTowerRecommender",
    "VectorServable",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
