"""Recommenders. Importing this package registers every model by name."""

from __future__ import annotations

from dayzero.models.base import REGISTRY, Recommender, make_recommender, register
from dayzero.models.content_knn import ContentKNN
from dayzero.models.cross_encoder import CrossEncoderRecommender
from dayzero.models.feature_hybrid import FeatureHybrid
from dayzero.models.item_knn import ItemKNN
from dayzero.models.matrix_factorization import MatrixFactorization
from dayzero.models.means import GlobalMean, ItemMean, ItemMeanUserBias
from dayzero.models.popularity import Popularity
from dayzero.models.sequential import SequentialRecommender
from dayzero.models.two_tower import TwoTowerRecommender

__all__ = [
    "REGISTRY",
    "ContentKNN",
    "CrossEncoderRecommender",
    "FeatureHybrid",
    "GlobalMean",
    "ItemKNN",
    "ItemMean",
    "ItemMeanUserBias",
    "MatrixFactorization",
    "Popularity",
    "Recommender",
    "SequentialRecommender",
    "TwoTowerRecommender",
    "make_recommender",
    "register",
]
