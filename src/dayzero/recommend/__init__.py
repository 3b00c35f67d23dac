"""Recommenders. Importing this package registers every model by name."""

from __future__ import annotations

from dayzero.recommend.baselines.content_knn import ContentKNN
from dayzero.recommend.baselines.feature_hybrid import FeatureHybrid
from dayzero.recommend.baselines.item_knn import ItemKNN
from dayzero.recommend.baselines.matrix_factorization import MatrixFactorization
from dayzero.recommend.baselines.means import GlobalMean, ItemMean, ItemMeanUserBias
from dayzero.recommend.baselines.popularity import Popularity
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender, register
from dayzero.recommend.cross_encoder import CrossEncoderRecommender
from dayzero.recommend.sequential import SequentialRecommender
from dayzero.recommend.two_tower import TwoTowerRecommender

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
