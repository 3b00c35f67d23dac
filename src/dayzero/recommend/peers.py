"""The libraries dayzero is compared with, behind its contract: implicit (ALS, BPR) and LightFM.

These are the peers of ``BENCHMARKS.md``: what a user would pick instead of dayzero, run on the
same splits through the same :class:`~dayzero.recommend.contract.Recommender` interface. The
libraries are the ``bench`` extra (``make bench-deps``); this module imports without them, and
fitting a peer without its library raises an ``ImportError`` that names the extra.

Explicit ratings become implicit feedback by one rule for all three: an interaction is *relevant*
when ``value >= threshold`` (every interaction when ``threshold`` is None); only relevant ones
train the factors, every interaction counts as seen. Repeated (user, item) events are averaged
first.

Each peer is seeded (``random_state``) and single-threaded by default (``num_threads=1``): both
libraries give thread-order-dependent results with more threads. Saved models hold the factors,
biases and feature matrices as safetensors arrays (no pickle); a loaded LightFM peer scores
without LightFM installed, a loaded ALS peer needs implicit for its fold-in.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import is_missing
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register, seen_by_user

__all__ = ["ImplicitALS", "ImplicitBPR", "LightFMRecommender"]

#: Field kinds LightFM reads as tokens (text and numbers are not LightFM features).
_TOKEN_KINDS = ("categorical", "multi", "boolean")


def _require(module: str, distribution: str, model: str) -> Any:
    """``module`` imported, or an ImportError telling how to install the ``bench`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{model} wraps the `{distribution}` library, which is not installed: it is in "
            "dayzero's `bench` extra; run `make bench-deps` (README, 'Peer libraries')"
        ) from exc


def _relevant(values: np.ndarray, threshold: float | None) -> np.ndarray:
    """Mask of the values that count as relevant (positive feedback)."""
    if threshold is None:
        return np.ones(len(values), dtype=bool)
    return values >= threshold


def _relevant_or_raise(values: np.ndarray, threshold: float | None, model: str) -> np.ndarray:
    keep = _relevant(values, threshold)
    if not keep.any():
        raise ValueError(
            f"{model}: no interaction has value >= threshold={threshold}, so there is nothing "
            "to learn from; lower the threshold (None: every interaction is relevant)"
        )
    return keep


def _check_threads(num_threads: int) -> None:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer):
        raise TypeError(f"num_threads must be an int, got {num_threads!r}")
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0: all cores), got {num_threads}")


# ============================================================================ implicit


class _ImplicitPeer(_common.RatingMatrix, _common.SavedAttributes, Recommender):
    """implicit's matrix factorisation on the users x relevant-items matrix (base of ALS, BPR).

    The library factorises only the users and items with a relevant interaction; everyone else
    has a zero vector. ``user_factors_`` / ``item_factors_`` are implicit's own arrays (float32,
    for BPR with its bias column: the item bias last, the user's last entry 1), in ``user_map_`` /
    ``item_map_`` order.
    """

    _SAVED_ARRAYS = ("user_factors_", "item_factors_", "cold_user_")
    _SAVED_SPARSE = ("ratings_",)

    factors: int
    regularization: float
    iterations: int
    threshold: float | None
    num_threads: int
    random_state: int | None

    # ----------------------------------------------------------------- hooks of ALS / BPR
    def _library_model(self) -> Any:
        """A new implicit model with this peer's settings (imports implicit)."""
        raise NotImplementedError

    def _weights(self, values: np.ndarray) -> np.ndarray:
        """Matrix entries of relevant interactions with these values."""
        raise NotImplementedError

    def _fold_user(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A user's vector from the weights of their relevant items (indices ``cols``)."""
        raise NotImplementedError

    def _fold_items(self, index: np.ndarray) -> None:
        """Recompute the vectors of items ``index`` from their raters (users fixed)."""
        raise NotImplementedError

    def _after_factors(self) -> None:
        """Refresh what depends on the factors (ALS: the fold-in solver)."""

    # ----------------------------------------------------------------- learning
    def _check_params(self) -> None:
        if self.factors < 1 or self.iterations < 0 or self.regularization < 0:
            raise ValueError(
                f"need factors >= 1, iterations >= 0, regularization >= 0; got factors="
                f"{self.factors}, iterations={self.iterations}, "
                f"regularization={self.regularization}"
            )
        _check_threads(self.num_threads)

    def fit(self, dataset: Dataset) -> Self:
        self._check_params()
        model = self._library_model()  # the ImportError before any work
        inter = _common.training_interactions(dataset, self.name)
        table = dataset.items.ids if dataset.items is not None else ()
        self._fit_ratings(inter, table)
        _relevant_or_raise(self.ratings_.data, self.threshold, self.name)
        matrix = self._relevant_matrix(self.ratings_)
        users = np.flatnonzero(np.diff(matrix.indptr))
        items = np.unique(matrix.indices)
        # implicit asks for single-threaded BLAS (its solvers thread themselves)
        with threadpool_limits(1, "blas"):
            model.fit(matrix[users][:, items], show_progress=False)
        dim = model.user_factors.shape[1]
        self.user_factors_ = np.zeros((len(self.user_map_), dim), dtype=np.float32)
        self.item_factors_ = np.zeros((len(self.item_map_), dim), dtype=np.float32)
        self.user_factors_[users] = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_[items] = np.asarray(model.item_factors, dtype=np.float32)
        self.cold_user_ = self.user_factors_[users].mean(axis=0) if len(users) else np.zeros(dim)
        self.cold_user_ = self.cold_user_.astype(np.float32)
        self._after_factors()
        return self

    def _relevant_matrix(self, ratings: sp.csr_matrix) -> sp.csr_matrix:
        """Users x items matrix of the implicit weights of relevant entries (float32)."""
        ratings = ratings.tocsr()
        keep = _relevant(ratings.data, self.threshold)
        coo = ratings.tocoo()
        out = sp.csr_matrix(
            (self._weights(coo.data[keep]).astype(np.float32), (coo.row[keep], coo.col[keep])),
            shape=ratings.shape,
        )
        out.sort_indices()
        return out

    def _after_load(self) -> None:
        self._after_factors()

    # ----------------------------------------------------------------- users
    def user_vector(self, user: Hashable, history: Interactions | None = None) -> np.ndarray:
        """The vector ``user`` is scored with.

        A known user without ``history`` keeps the vector fit learned; with ``history`` (or a
        new user with one) their relevant items in training + ``history`` (which wins on the
        same item) are folded in; a user without any relevant item gets ``cold_user_``, the mean
        of the trained users' vectors.
        """
        items, values = _common.user_history(history, user)
        if not items:
            if user in self.user_map_:
                row = int(self.user_map_.to_internal([user])[0])
                if self._has_relevant(row):
                    return self.user_factors_[row]
            return self.cold_user_
        cols, vals, _ = self._merged_ratings(user, items, values)
        return self._vector_from(cols, vals)

    def _has_relevant(self, row: int) -> bool:
        return bool(_relevant(self.ratings_[row].data, self.threshold).any())

    def _vector_from(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        """A user's vector from their ``(item indices, values)``: the relevant items that have
        a factor vector are folded in; without any, ``cold_user_``."""
        cols, values = np.asarray(cols, dtype=np.int64), np.asarray(values, dtype=np.float64)
        keep = _relevant(values, self.threshold)
        # an item without a factor vector (never relevant in training) cannot place the user
        keep &= np.abs(self.item_factors_[cols]).sum(axis=1) > 0
        if not keep.any():
            return self.cold_user_
        order = np.argsort(cols[keep], kind="stable")
        weights = self._weights(values[keep][order]).astype(np.float32)
        return self._fold_user(cols[keep][order], weights)

    # ----------------------------------------------------------------- scoring
    def _scores(self, vector: np.ndarray, index: np.ndarray) -> np.ndarray:
        rows = self.item_factors_[np.maximum(index, 0)].astype(np.float64)
        return np.where(index >= 0, rows @ vector.astype(np.float64), 0.0)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        return _common.pair_scores(
            self.item_map_,
            users,
            items,
            lambda user, index: self._scores(self.user_vector(user, history), index),
        )

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self._scores(self.user_vector(user, history), np.arange(len(self.item_map_)))

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Cosine similarity of the item factors (BPR: the bias column excluded)."""
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}: it has no interactions in this model")
        target = int(self.item_map_.to_internal([item])[0])
        vectors = self.item_factors_[:, : self.factors].astype(np.float64)
        return _common.most_similar(self.item_map_, _common.cosine_to(vectors, target), target, k)

    # ----------------------------------------------------------------- fold-in
    def _grow(self) -> None:
        """Zero vectors (and empty rating rows / columns) for ids added to the maps."""
        shape = (len(self.user_map_), len(self.item_map_))
        self.ratings_ = _common.resize_csr(self.ratings_, shape)
        self.user_factors_ = _common.grow(self.user_factors_, shape[0])
        self.item_factors_ = _common.grow(self.item_factors_, shape[1])

    def _absorb(self, interactions: Interactions):
        frame = self._absorb_ratings(interactions)
        self._grow()
        return frame

    def _refold_users(self, users: np.ndarray) -> None:
        """Re-solve the stored vectors of ``users`` (indices) from their ratings, items fixed."""
        for row in users:
            line = self.ratings_[int(row)]
            keep = _relevant(line.data, self.threshold)
            vector = self._vector_from(line.indices, line.data)
            self.user_factors_[row] = vector if keep.any() else 0.0

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Store the interactions and re-solve their users' vectors, items fixed (user fields
        are not read)."""
        self._check_fitted()
        if not len(interactions):
            return self
        frame = self._absorb(interactions)
        self._refold_users(self.user_map_.to_internal(frame["user"].unique()))
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items; fold in their interactions (item vectors from their raters, users fixed,
        then the raters' vectors). Items without relevant interactions keep a zero vector
        (score 0: implicit does not read item fields)."""
        self._check_fitted()
        self.item_map_.add(items.ids)
        self._grow()
        if interactions is None or not len(interactions):
            self._after_factors()
            return self
        frame = self._absorb(interactions)
        self._fold_items(self.item_map_.to_internal(frame["item"].unique()))
        self._after_factors()
        self._refold_users(self.user_map_.to_internal(frame["user"].unique()))
        return self


@register("implicit-als")
class ImplicitALS(_ImplicitPeer):
    """implicit's ``AlternatingLeastSquares`` (Hu, Koren and Volinsky's weighted ALS).

    Parameters
    ----------
    factors
        Latent dimension.
    regularization
        L2 penalty (implicit's ``regularization``).
    alpha
        Confidence slope: a relevant interaction of value ``r`` has confidence
        ``1 + alpha * r``; the rest of the matrix has confidence 1 and preference 0.
    iterations
        ALS sweeps.
    threshold
        Relevant = ``value >= threshold`` (None: every interaction).
    num_threads
        implicit's threads (0: all cores); 1 is reproducible.
    random_state
        Seed of implicit's initial factors.

    Notes
    -----
    Fold-in: a user with ``history`` (or folded in by ``partial_fit_users``) gets implicit's
    own ``recalculate_user`` on their relevant items (training + history), the exact ALS solve
    with the items fixed; items folded in with interactions get ``recalculate_item`` from their
    raters. Cold fallbacks: a user without any relevant item -> ``cold_user_``, the mean trained
    user (a popularity-like list); an item without a factor vector (no relevant interaction,
    unknown, or folded in from fields only) -> score 0, the ALS prediction of "no preference":
    implicit cannot place such an item (trained items mostly score above 0).
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        threshold: float | None = None,
        num_threads: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.threshold = threshold
        self.num_threads = num_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")

    def _library_model(self) -> Any:
        als = _require("implicit.cpu.als", "implicit", self.name)
        with threadpool_limits(1, "blas"):  # else implicit warns about BLAS threads
            return als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # the confidences are built here: 1 + alpha * value
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.random_state,
            )

    def _weights(self, values: np.ndarray) -> np.ndarray:
        return 1.0 + self.alpha * np.asarray(values, dtype=np.float64)

    def _after_factors(self) -> None:
        # implicit's solver with the current item factors (it caches Y'Y for recalculate_user)
        solver = self._library_model()
        solver.item_factors = self.item_factors_
        solver.user_factors = self.user_factors_
        self._solver = solver

    def _fold_user(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        row = sp.csr_matrix(
            (weights, cols, [0, len(cols)]), shape=(1, len(self.item_factors_)), dtype=np.float32
        )
        return np.asarray(self._solver.recalculate_user(0, row), dtype=np.float32)

    def _fold_items(self, index: np.ndarray) -> None:
        by_item = self._relevant_matrix(self.ratings_).T.tocsr()
        self._after_factors()
        for item in index:
            column = by_item[int(item)]
            if column.nnz:
                self.item_factors_[item] = self._solver.recalculate_item(0, column)
            else:
                self.item_factors_[item] = 0.0


@register("implicit-bpr")
class ImplicitBPR(_ImplicitPeer):
    """implicit's ``BayesianPersonalizedRanking`` (Rendle et al.'s BPR-MF, SGD).

    Parameters
    ----------
    factors
        Latent dimension (implicit adds a bias column).
    learning_rate, regularization, iterations
        implicit's SGD settings (iterations are epochs over the relevant interactions).
    threshold
        Relevant = ``value >= threshold`` (None: every interaction); relevant interactions are
        BPR's positives, with weight 1.
    num_threads
        implicit's threads (0: all cores); 1 is reproducible.
    random_state
        Seed of implicit's initial factors and sampling.

    Notes
    -----
    implicit's BPR has no ``recalculate_user``, so the fold-in is dayzero's: a user with
    ``history`` (or folded in by ``partial_fit_users``) is the mean of the factor vectors of
    their relevant items (training + history) with the bias entry 1, the item-average user of
    asymmetric factor models; an item folded in with interactions is the mean of its relevant
    raters' vectors (bias 0). Cold fallbacks: a user without any relevant item -> the mean
    trained user; an item without a factor vector -> score 0 (implicit cannot place it).
    """

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        threshold: float | None = None,
        num_threads: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.threshold = threshold
        self.num_threads = num_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def _library_model(self) -> Any:
        bpr = _require("implicit.cpu.bpr", "implicit", self.name)
        return bpr.BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _weights(self, values: np.ndarray) -> np.ndarray:
        return np.ones(len(values))

    def _fold_user(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        vector = self.item_factors_[cols].mean(axis=0)
        vector[-1] = 1.0  # the user's side of implicit's item-bias column
        return vector.astype(np.float32)

    def _fold_items(self, index: np.ndarray) -> None:
        by_item = self._relevant_matrix(self.ratings_).T.tocsr()
        known = np.abs(self.user_factors_).sum(axis=1) > 0
        for item in index:
            raters = by_item[int(item)].indices
            raters = raters[known[raters]]
            vector = np.zeros(self.item_factors_.shape[1], dtype=np.float32)
            if len(raters):
                vector[:-1] = self.user_factors_[raters, :-1].mean(axis=0)
            self.item_factors_[item] = vector


# ============================================================================ LightFM


def _tokens(name: str, kind: str, value: Any) -> list[tuple[str, float]]:
    """``(token, weight)`` of one field value; the elements of a ``multi`` list share weight 1."""
    if kind == "multi" and isinstance(value, list | tuple | set | np.ndarray):
        elements = [v for v in value if not is_missing(v)]
        return [(f"{name}={v}", 1.0 / len(elements)) for v in elements]
    if is_missing(value):
        return []
    return [(f"{name}={value}", 1.0)]


def _vocabulary(entities: Entities | None) -> list[str]:
    """The field tokens of ``entities``, in order of appearance."""
    tokens: dict[str, None] = {}
    if entities is not None:
        for name, kind in entities.fields.items():
            if kind in _TOKEN_KINDS:
                for value in entities.frame[name]:
                    for token, _ in _tokens(name, kind, value):
                        tokens.setdefault(token, None)
    return list(tokens)


def _field_rows(
    entities: Entities | None, ids: IdMap, vocabulary: dict[str, int], n_rows: int, offset: int
) -> sp.csr_matrix:
    """Rows of field-token weights (columns ``offset + vocabulary index``; unknown tokens and
    entities without a record give nothing)."""
    rows, cols, weights = [], [], []
    if entities is not None:
        index = ids.to_internal(entities.ids, missing=-1)
        for name, kind in entities.fields.items():
            if kind not in _TOKEN_KINDS:
                continue
            for row, value in zip(index, entities.frame[name], strict=True):
                if row < 0:
                    continue
                for token, weight in _tokens(name, kind, value):
                    col = vocabulary.get(token)
                    if col is not None:
                        rows.append(row)
                        cols.append(offset + col)
                        weights.append(weight)
    return sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), (rows, cols)),
        shape=(n_rows, offset + len(vocabulary)),
    )


def _normalise_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (LightFM's ``Dataset(normalize=True)``); empty rows stay empty."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    out = (sp.diags(scale.astype(np.float32)) @ matrix).tocsr().astype(np.float32)
    out.sort_indices()
    return out


@register("lightfm")
class LightFMRecommender(_common.SavedAttributes, Recommender):
    """LightFM (Kula 2015): users and items are sums of feature embeddings, trained by WARP.

    The features are what LightFM users build with ``lightfm.data.Dataset``: an identity feature
    for every user and item with training interactions, plus a ``field=value`` token for each
    categorical and boolean field and each element of each ``multi`` field of the user and item
    tables (a list's elements share weight 1); each row is normalised to sum 1. With
    ``history_features`` the user side also has one feature per trained item, "interacted with
    this item", weighted ``1 / n`` over the user's ``n`` relevant items: the LightFM way to
    represent a user by their history, so that a new user's revealed items place them without
    refitting.

    Parameters
    ----------
    factors
        LightFM's ``no_components``.
    loss
        LightFM's loss: ``"warp"``, ``"bpr"``, ``"warp-kos"`` or ``"logistic"``.
    learning_rate, epochs
        LightFM's ``learning_rate`` (adagrad) and the number of epochs of ``fit``.
    item_alpha, user_alpha
        L2 penalties on the item and user feature embeddings.
    max_sampled
        WARP's cap on negative samples per positive.
    threshold
        Relevant = ``value >= threshold`` (None: every interaction); relevant interactions are
        LightFM's positives.
    history_features
        Add the "interacted with item" user features. Without them a user's interactions
        (``history``, ``partial_fit_users``) are stored and seen but do not move the user:
        plain LightFM, which ``check_recommender``'s ``partial_fit_users`` check rejects.
    num_threads
        LightFM's threads; 1 is reproducible.
    random_state
        Seed of LightFM's initialisation and sampling.

    Notes
    -----
    New users and new items are scored from their features alone, LightFM's cold-start story:
    a user in the user table (or added by ``partial_fit_users(users=...)``) from their field
    tokens, plus their relevant items in training and ``history`` with ``history_features``; an
    item in the item table (or added by ``partial_fit_items``) from its field tokens. An entity
    with no feature at all has a zero embedding and bias: an unknown user without fields or
    history gets the item biases (a popularity-like list), an unknown item scores the user's
    bias. LightFM cannot learn an embedding for an item added after fit; dayzero's fold-in for an
    item added with relevant interactions adds the mean representation of its raters to the
    item's (LightFM has none). Scores are LightFM's ``predict``: ``u . v + b_u + b_i``, computed
    here from the saved embeddings, so a loaded model scores without LightFM.
    """

    _SAVED_ARRAYS = (
        "user_embeddings_",
        "user_biases_",
        "item_embeddings_",
        "item_biases_",
        "item_fold_",
    )
    _SAVED_SPARSE = ("user_features_", "item_features_", "ratings_")
    _SAVED_EXTRAS: ClassVar[_common.SavedExtras] = {
        "user_vocabulary_": list,
        "item_vocabulary_": list,
        "n_trained_users_": int,
        "n_trained_items_": int,
    }

    def __init__(
        self,
        factors: int = 32,
        loss: Literal["warp", "bpr", "warp-kos", "logistic"] = "warp",
        learning_rate: float = 0.05,
        epochs: int = 20,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        threshold: float | None = None,
        history_features: bool = True,
        num_threads: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.loss = loss
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.max_sampled = max_sampled
        self.threshold = threshold
        self.history_features = history_features
        self.num_threads = num_threads
        self.random_state = random_state

    # ----------------------------------------------------------------- learning
    def _check_params(self) -> None:
        if self.loss not in ("warp", "bpr", "warp-kos", "logistic"):
            raise ValueError(
                f"loss must be 'warp', 'bpr', 'warp-kos' or 'logistic', got {self.loss!r}"
            )
        if self.factors < 1 or self.epochs < 0 or self.max_sampled < 1:
            raise ValueError(
                f"need factors >= 1, epochs >= 0, max_sampled >= 1; got factors={self.factors}, "
                f"epochs={self.epochs}, max_sampled={self.max_sampled}"
            )
        if self.learning_rate <= 0 or self.item_alpha < 0 or self.user_alpha < 0:
            raise ValueError("need learning_rate > 0, item_alpha >= 0 and user_alpha >= 0")
        _check_threads(self.num_threads)
        if self.num_threads < 1:
            raise ValueError(f"LightFM needs num_threads >= 1, got {self.num_threads}")

    def fit(self, dataset: Dataset) -> Self:
        self._check_params()
        lightfm = _require("lightfm", "lightfm", self.name)
        inter = _common.training_interactions(dataset, self.name)
        frame = _common.aggregate(inter)
        relevant = frame[
            _relevant_or_raise(frame["value"].to_numpy(np.float64), self.threshold, self.name)
        ]
        # the trained entities (with a relevant interaction) come first: they have identities
        self.user_map_ = IdMap(relevant["user"])
        self.item_map_ = IdMap(relevant["item"])
        self.n_trained_users_, self.n_trained_items_ = len(self.user_map_), len(self.item_map_)
        self.user_map_.add(frame["user"])
        self.item_map_.add(frame["item"])
        for entities, ids in ((dataset.users, self.user_map_), (dataset.items, self.item_map_)):
            if entities is not None:
                ids.add(entities.ids)
        self.seen_ = seen_by_user(inter)
        self.ratings_ = _common.interaction_matrix(frame, self.user_map_, self.item_map_)
        self.user_vocabulary_ = _vocabulary(dataset.users)
        self.item_vocabulary_ = _vocabulary(dataset.items)
        self.user_features_ = self._static_rows("user", dataset.users)
        self.item_features_ = self._static_rows("item", dataset.items)
        n_u, n_i = self.n_trained_users_, self.n_trained_items_
        positives = self._relevant_matrix()[:n_u, :n_i]
        user_rows = self._user_rows(np.arange(n_u), self._relevant_matrix())
        item_rows = _normalise_rows(self.item_features_[:n_i])
        model = lightfm.LightFM(
            no_components=self.factors,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=self.random_state,
        )
        model.fit(
            positives.tocoo(),
            user_features=user_rows,
            item_features=item_rows,
            epochs=self.epochs,
            num_threads=self.num_threads,
        )
        self.user_embeddings_ = np.asarray(model.user_embeddings, dtype=np.float32)
        self.user_biases_ = np.asarray(model.user_biases, dtype=np.float32)
        self.item_embeddings_ = np.asarray(model.item_embeddings, dtype=np.float32)
        self.item_biases_ = np.asarray(model.item_biases, dtype=np.float32)
        self.item_fold_ = np.zeros((len(self.item_map_), self.factors), dtype=np.float32)
        self._after_load()
        return self

    def _static_rows(self, side: str, entities: Entities | None) -> sp.csr_matrix:
        """Identity (trained entities) + field-token weights of every entity of ``side``."""
        ids = self.user_map_ if side == "user" else self.item_map_
        n_trained = self.n_trained_users_ if side == "user" else self.n_trained_items_
        vocabulary = self.user_vocabulary_ if side == "user" else self.item_vocabulary_
        fields = _field_rows(entities, ids, _index(vocabulary), len(ids), n_trained)
        identity = sp.eye(len(ids), n_trained, dtype=np.float32, format="csr")
        out = (sp.hstack([identity, sp.csr_matrix((len(ids), len(vocabulary)))]) + fields).tocsr()
        return out.astype(np.float32)

    def _relevant_matrix(self) -> sp.csr_matrix:
        """Users x items 0/1 matrix of the relevant stored interactions."""
        coo = self.ratings_.tocoo()
        keep = _relevant(coo.data, self.threshold)
        out = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (coo.row[keep], coo.col[keep])),
            shape=self.ratings_.shape,
        )
        out.sum_duplicates()
        return out

    def _user_rows(self, rows: np.ndarray, relevant: sp.csr_matrix) -> sp.csr_matrix:
        """Normalised feature rows of users ``rows``: static part + (``history_features``) their
        relevant trained items, weighted 1 / n, from ``relevant`` (same rows)."""
        static = self.user_features_[rows]
        if not self.history_features:
            return _normalise_rows(static)
        history = relevant[rows][:, : self.n_trained_items_].astype(np.float32)
        counts = np.asarray(history.sum(axis=1)).ravel()
        scale = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        history = sp.diags(scale.astype(np.float32)) @ history
        return _normalise_rows(sp.hstack([static, history]).tocsr())

    def _after_load(self) -> None:
        """Item representations (features @ embeddings + fold-in), cached for scoring."""
        rows = _normalise_rows(self.item_features_)
        self._item_vectors = (rows @ self.item_embeddings_) + self.item_fold_
        self._item_bias = rows @ self.item_biases_

    # ----------------------------------------------------------------- users
    def user_representation(
        self, user: Hashable, history: Interactions | None = None
    ) -> tuple[np.ndarray, float]:
        """``(vector, bias)`` of ``user`` with ``history`` (see the class notes)."""
        static = sp.csr_matrix((1, self.user_features_.shape[1]), dtype=np.float32)
        merged: dict[int, float] = {}
        if user in self.user_map_:
            row = int(self.user_map_.to_internal([user])[0])
            static = self.user_features_[row]
            line = self.ratings_[row]
            merged.update(zip(line.indices.tolist(), line.data.tolist(), strict=True))
        items, values = _common.user_history(history, user)
        index = self.item_map_.to_internal(items, missing=-1)
        # history wins on the same item; its unknown items have no feature
        merged.update((int(i), float(v)) for i, v in zip(index, values, strict=True) if i >= 0)
        cols = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
        vals = np.fromiter(merged.values(), dtype=np.float64, count=len(merged))
        features = self._rows_of(static, self._relevant_row(cols, vals))
        vector = np.asarray(features @ self.user_embeddings_).ravel()
        return vector, float((features @ self.user_biases_)[0])

    def _relevant_row(self, cols: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        keep = _relevant(np.asarray(values, dtype=np.float64), self.threshold)
        cols = np.sort(np.asarray(cols)[keep])
        return sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols, [0, len(cols)]),
            shape=(1, len(self.item_map_)),
        )

    def _rows_of(self, static: sp.csr_matrix, relevant: sp.csr_matrix) -> sp.csr_matrix:
        if not self.history_features:
            return _normalise_rows(static)
        history = relevant[:, : self.n_trained_items_]
        if history.nnz:
            history = history / history.nnz
        return _normalise_rows(sp.hstack([static, history]).tocsr())

    # ----------------------------------------------------------------- scoring
    def _scores(self, user: Hashable, history: Interactions | None, index: np.ndarray):
        vector, bias = self.user_representation(user, history)
        safe = np.maximum(index, 0)
        items = self._item_vectors[safe].astype(np.float64)
        dot = items @ vector.astype(np.float64) + self._item_bias[safe]
        return bias + np.where(index >= 0, dot, 0.0)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        return _common.pair_scores(
            self.item_map_, users, items, lambda user, index: self._scores(user, history, index)
        )

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self._scores(user, history, np.arange(len(self.item_map_)))

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Cosine similarity of item representations (features @ embeddings)."""
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}: add it with partial_fit_items first")
        target = int(self.item_map_.to_internal([item])[0])
        vectors = self._item_vectors.astype(np.float64)
        return _common.most_similar(self.item_map_, _common.cosine_to(vectors, target), target, k)

    # ----------------------------------------------------------------- fold-in
    def _grow(self, users: Entities | None = None, items: Entities | None = None) -> None:
        """Grow the stored matrices to the id maps; rows of ``users`` / ``items`` get their
        field tokens (replacing earlier ones; identities of trained entities are kept)."""
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        self.ratings_ = _common.resize_csr(self.ratings_, (n_users, n_items))
        self.item_fold_ = _common.grow(self.item_fold_, n_items)
        for side, entities, n in (("user", users, n_users), ("item", items, n_items)):
            matrix = getattr(self, f"{side}_features_")
            matrix = _common.resize_csr(matrix, (n, matrix.shape[1]))
            if entities is not None and len(entities):
                ids = self.user_map_ if side == "user" else self.item_map_
                n_trained = self.n_trained_users_ if side == "user" else self.n_trained_items_
                vocabulary = self.user_vocabulary_ if side == "user" else self.item_vocabulary_
                fresh = _field_rows(entities, ids, _index(vocabulary), n, n_trained)
                replaced = np.zeros(n, dtype=bool)
                replaced[ids.to_internal(entities.ids)] = True
                # the given rows' field tokens are replaced; identities stay
                fields = sp.diags((~replaced).astype(np.float32)) @ matrix[:, n_trained:]
                matrix = sp.hstack([matrix[:, :n_trained], fields]).tocsr() + fresh
            setattr(self, f"{side}_features_", matrix.astype(np.float32))

    def _absorb(self, interactions: Interactions) -> None:
        if not len(interactions):
            return
        frame = _common.aggregate(interactions)
        self.user_map_.add(frame["user"])
        self.item_map_.add(frame["item"])
        _common.update_seen(self.seen_, interactions)
        self._grow()
        rows = self.user_map_.to_internal(frame["user"])
        cols = self.item_map_.to_internal(frame["item"])
        self.ratings_ = _common.set_entries(
            self.ratings_, rows, cols, frame["value"].to_numpy(np.float64)
        )
        self.ratings_.sort_indices()

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Add users (their field tokens, if given) and store their interactions: with
        ``history_features`` their relevant trained items place them from now on."""
        self._check_fitted()
        if users is not None:
            self.user_map_.add(users.ids)
        self._grow(users=users)
        self._absorb(interactions)
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their field tokens; interactions are stored as by
        :meth:`partial_fit_users`, and an untrained item with relevant ones gets the mean
        representation of its raters added (see the class notes)."""
        self._check_fitted()
        self.item_map_.add(items.ids)
        self._grow(items=items)
        if interactions is not None and len(interactions):
            self._absorb(interactions)
            by_item = self._relevant_matrix().T.tocsr()
            for item in self.item_map_.to_internal(_common.aggregate(interactions)["item"]):
                if item < self.n_trained_items_:
                    continue  # LightFM learned this item: its embedding stays
                raters = self.user_map_.to_external(by_item[int(item)].indices)
                vectors = [self.user_representation(u)[0] for u in raters]
                self.item_fold_[item] = np.mean(vectors, axis=0) if vectors else 0.0
        self._after_load()
        return self


def _index(vocabulary: list[str]) -> dict[str, int]:
    return {token: i for i, token in enumerate(vocabulary)}
