"""Content kNN: item neighbours by TF-IDF similarity of the items' text, so new items are served."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions, SchemaError
from dayzero.core.templates import Template
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register


@register("content-knn")
class ContentKNN(_common.AbsorbFoldIn, _common.RatingMatrix, _common.SavedAttributes, Recommender):
    """Baseline + neighbours: ``mu + b_u + b_i + sum_j s_ij res_uj / (sum_j s_ij + shrink)``.

    Every item with fields is rendered to text by a :class:`Template` (by default
    ``Template.for_entities(dataset.items)``) and embedded by TF-IDF (unit length). ``s_ij`` is the
    cosine of the TF-IDF vectors of candidate ``i`` and an item ``j`` the user rated (training +
    ``history``); the ``k_neighbors`` most similar rated items are used. ``res_uj = r_uj - (mu +
    b_u + b_j)`` is the user's residual on ``j`` against the bias baseline, so the neighbour term
    says how much more (or less) than expected the user liked items that read alike.
    ``b_i = sum(r - mu) / (n_i + reg)`` and ``b_u = sum(r - mu - b_i) / (n_u + reg)`` are shrunk
    biases (the user's computed over training + ``history``).

    Parameters
    ----------
    template
        ``Template.to_dict()`` of the text view; ``None`` uses every typed item field.
    k_neighbors
        Rated items used per prediction (the most similar).
    shrink
        Added to the similarity sum: with few or weak neighbours the prediction stays near the
        baseline.
    reg
        Shrinkage of the item and user biases.
    max_features, min_df
        TF-IDF vocabulary limits (scikit-learn meaning).
    scoring
        ``"rating"``: the prediction above. ``"similarity"``: a ranking score, the sum of the
        candidate's TF-IDF cosines to the user's liked items (training + ``history``; value
        >= ``threshold``, every item when none is liked), plus its cosine to the user's profile
        text (the user's fields rendered by a template over the users' typed fields, embedded
        with the items' vocabulary) for users with a profile (training users, and users folded
        in by ``partial_fit_users(..., users=...)``); ``bench/retrieval.py``'s ``content-tfidf``
        scoring inside the model, so it ranks through ``recommend`` and blends in
        :class:`~dayzero.recommend.hybrid.HybridRecommender`. Unknown items score 0.
    threshold
        With ``scoring="similarity"``: a history item is liked when its value >= this
        (``None``: every interaction is).

    Notes
    -----
    Cold fallback: an unknown item with fields is scored from its text (``b_i = 0``); an item
    without fields or interactions (not in ``item_map_``) -> ``mu + b_u``; an unknown user ->
    ``b_u`` and neighbours from ``history`` alone, without history ``mu + b_i``. Predictions are
    clipped to the training value range. ``partial_fit_items`` embeds new items' text with the
    fitted vocabulary (and adds their interactions, if any); ``partial_fit_users`` adds users'
    ratings.
    The vectoriser is saved as JSON (vocabulary) + an ``idf`` array, never pickled.
    """

    _SAVED_ARRAYS = ("idf_",)
    _SAVED_SPARSE = ("ratings_", "item_vectors_")
    _SAVED_EXTRAS: ClassVar[_common.SavedExtras] = {
        "template_": dict,
        "vocabulary_": list,
        "global_mean_": float,
        "value_min_": float,
        "value_max_": float,
    }

    def __init__(
        self,
        template: dict[str, Any] | None = None,
        k_neighbors: int = 30,
        shrink: float = 1.0,
        reg: float = 5.0,
        max_features: int | None = 50000,
        min_df: int = 1,
        scoring: Literal["rating", "similarity"] = "rating",
        threshold: float | None = None,
    ) -> None:
        self.template = template
        self.k_neighbors = k_neighbors
        self.shrink = shrink
        self.reg = reg
        self.max_features = max_features
        self.min_df = min_df
        self.scoring = scoring
        self.threshold = threshold

    # ----------------------------------------------------------------- learning
    def fit(self, dataset: Dataset) -> Self:
        if self.k_neighbors < 1 or self.shrink < 0 or self.reg < 0:
            raise ValueError("need k_neighbors >= 1, shrink >= 0 and reg >= 0")
        if self.scoring not in ("rating", "similarity"):
            raise ValueError(f"scoring must be 'rating' or 'similarity', got {self.scoring!r}")
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number or None, got {self.threshold!r}")
        if dataset.items is None or len(dataset.items) == 0:
            raise SchemaError(
                "content-knn needs item fields: build the Dataset with items=Entities(...)"
            )
        inter = _common.training_interactions(dataset, self.name)
        template = (
            Template.from_dict(self.template)
            if self.template is not None
            else Template.for_entities(dataset.items)
        )
        self.template_ = template.to_dict()
        texts = template.render_entities(dataset.items)
        vectorizer = TfidfVectorizer(
            max_features=self.max_features, min_df=self.min_df, stop_words="english"
        )
        try:
            vectorizer.fit(list(texts.values()))
        except ValueError as exc:
            raise SchemaError(f"content-knn: the item texts give no vocabulary ({exc})") from exc
        self.vocabulary_ = vectorizer.get_feature_names_out().tolist()
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._fit_ratings(inter, items=texts)
        self._fit_value_stats()
        self.item_vectors_ = sp.csr_matrix((len(self.item_map_), len(self.vocabulary_)))
        self._embed(texts)
        self._update_biases()
        if self.scoring == "similarity":
            self.profile_users_ = IdMap()
            self.profile_vectors_ = sp.csr_matrix((0, len(self.vocabulary_)))
            self.user_template_ = None
            if dataset.users is not None and len(dataset.users):
                self.user_template_ = Template.for_entities(dataset.users).to_dict()
                self._embed_profiles(dataset.users)
        return self

    def _embed_profiles(self, users: Entities) -> None:
        """Profile TF-IDF rows (items' vocabulary) of ``users``; a new profile replaces one."""
        if self.user_template_ is None:
            self.user_template_ = Template.for_entities(users).to_dict()
        texts = Template.from_dict(self.user_template_).render_entities(users)
        index = self.profile_users_.add(texts)
        rows = self._transform(list(texts.values()))
        n = len(self.profile_users_)
        keep = np.setdiff1d(np.arange(self.profile_vectors_.shape[0]), index)
        old = _common.resize_csr(self.profile_vectors_, (n, len(self.vocabulary_)))
        order = np.concatenate([keep, index])
        stacked = sp.vstack([old[keep], rows]).tocsr()
        # rows back in profile_users_ order
        self.profile_vectors_ = stacked[np.argsort(order, kind="stable")].tocsr()
        self.profile_vectors_.sort_indices()

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Fold in users' ratings; with ``scoring="similarity"`` also their profiles."""
        self._check_fitted()
        if len(interactions):
            self._absorb(interactions)
        if self.scoring == "similarity" and users is not None and len(users):
            self._embed_profiles(users)
        return self

    def _transform(self, texts: list[str]) -> sp.csr_matrix:
        """TF-IDF rows (unit length) from the stored vocabulary and idf: same path after load."""
        counts = CountVectorizer(vocabulary=self.vocabulary_).transform(texts)
        return normalize(counts.multiply(self.idf_).tocsr())

    def _embed(self, texts: dict[Hashable, str]) -> None:
        index = self.item_map_.add(texts)
        n = len(self.item_map_)
        vectors = _common.resize_csr(self.item_vectors_, (n, len(self.vocabulary_)))
        rows = self._transform(list(texts.values())).tocoo()
        keep = ~np.isin(vectors.tocoo().row, index)
        old = vectors.tocoo()
        self.item_vectors_ = sp.csr_matrix(
            (
                np.concatenate([old.data[keep], rows.data]),
                (
                    np.concatenate([old.row[keep], index[rows.row]]),
                    np.concatenate([old.col[keep], rows.col]),
                ),
            ),
            shape=(n, len(self.vocabulary_)),
        )
        self.item_vectors_.sort_indices()
        self.ratings_ = _common.resize_csr(self.ratings_, (len(self.user_map_), n))

    def _update_biases(self) -> None:
        ratings = self.ratings_.tocoo()
        n_users, n_items = self.ratings_.shape
        residual = ratings.data - self.global_mean_
        item_sum = np.bincount(ratings.col, residual, minlength=n_items)
        item_count = np.bincount(ratings.col, minlength=n_items)
        self.item_bias_ = item_sum / (item_count + max(self.reg, 1e-12))
        residual = residual - self.item_bias_[ratings.col]
        self.user_residual_sum_ = np.bincount(ratings.row, residual, minlength=n_users)
        self.user_count_ = np.bincount(ratings.row, minlength=n_users).astype(np.float64)

    def _absorb(self, interactions: Interactions) -> None:
        """Add ratings; biases are recomputed (the global mean stays as fitted)."""
        self._absorb_ratings(interactions)
        self.item_vectors_ = _common.resize_csr(
            self.item_vectors_, (len(self.item_map_), len(self.vocabulary_))
        )
        self._update_biases()

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Embed new (or changed) items from their fields; add their interactions if given."""
        self._check_fitted()
        self._embed(Template.from_dict(self.template_).render_entities(items))
        if interactions is not None and len(interactions):
            self._absorb(interactions)
        else:
            self._update_biases()
        return self

    # ----------------------------------------------------------------- scoring
    def _similarity_scores(
        self, user: Hashable, history: Interactions | None, index: np.ndarray
    ) -> np.ndarray:
        """``scoring="similarity"``: liked history cosines + profile cosine (0: unknown item)."""
        cols, values, _ = self._user_ratings(user, history)
        if self.threshold is not None and len(cols):
            liked = values >= self.threshold
            cols = cols[liked] if liked.any() else cols
        known = index >= 0
        vectors = self.item_vectors_[np.maximum(index, 0)]
        query = sp.csr_matrix(np.asarray(self.item_vectors_[cols].sum(axis=0)))
        if user in self.profile_users_:
            row = int(self.profile_users_.to_internal([user])[0])
            query = query + self.profile_vectors_[row]
        scores = np.asarray((vectors @ query.T).todense()).ravel()
        return np.where(known, scores, 0.0)

    def _scores(self, user: Hashable, history: Interactions | None, index: np.ndarray):
        """Predictions for item indices ``index`` (-1 = unknown item)."""
        if self.scoring == "similarity":
            return self._similarity_scores(user, history, index)
        cols, values, unknown = self._user_ratings(user, history)
        residual = values - self.global_mean_ - self.item_bias_[cols]
        user_bias = (residual.sum() + sum(v - self.global_mean_ for v in unknown)) / (
            len(residual) + len(unknown) + max(self.reg, 1e-12)
        )
        known = index >= 0
        safe = np.maximum(index, 0)
        scores = self.global_mean_ + user_bias + np.where(known, self.item_bias_[safe], 0.0)
        if len(cols):
            sims = (self.item_vectors_[safe] @ self.item_vectors_[cols].T).toarray()
            if len(cols) > self.k_neighbors:
                cut = np.partition(sims, len(cols) - self.k_neighbors, axis=1)
                threshold = cut[:, len(cols) - self.k_neighbors][:, None]
                sims = np.where(sims >= threshold, sims, 0.0)
            offset = sims @ (residual - user_bias)
            scores += np.where(known, offset / (sims.sum(axis=1) + self.shrink + 1e-12), 0.0)
        return _common.clip(scores, self.value_min_, self.value_max_)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        return _common.pair_scores(
            self.item_map_, users, items, lambda user, index: self._scores(user, history, index)
        )

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self._scores(user, history, np.arange(len(self.item_map_)))

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Items whose text is most similar (TF-IDF cosine)."""
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}: add it with partial_fit_items first")
        target = int(self.item_map_.to_internal([item])[0])
        sims = (self.item_vectors_ @ self.item_vectors_[target].T).toarray().ravel()
        return _common.most_similar(self.item_map_, sims, target, k)

    # ----------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, extras = super()._state()
        if self.scoring == "similarity":
            arrays.update(_common.csr_state("profile_vectors", self.profile_vectors_))
            extras["profile_users"] = self.profile_users_.to_json()
            extras["user_template"] = self.user_template_
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        super()._set_state(arrays, extras)
        if self.scoring == "similarity":
            self.profile_vectors_ = _common.csr_from_state("profile_vectors", arrays)
            self.profile_users_ = IdMap(extras["profile_users"])
            self.user_template_ = extras["user_template"]

    def _after_load(self) -> None:
        self._update_biases()
