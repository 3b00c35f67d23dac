"""DropoutNet (Volkovs, Yu and Poutanen, NeurIPS 2017), a peer for the cold-start benchmarks.

DropoutNet is the published hybrid that Heater and later cold-start papers compare with (its
CiteULike numbers are in ``ANCHORS.md``); no maintained package ships it, so dayzero carries
this reimplementation behind its :class:`~dayzero.recommend.contract.Recommender` contract, to
run on the same splits as the other peers (``bench/retrieval_peers.py``).

The method, as in the paper:

1. **Preference vectors** ``U, V`` from weighted matrix factorisation (WMF) of the relevant
   interactions: implicit's ALS (the ``bench`` extra), confidence ``1 + alpha`` on relevant
   entries.
2. **Content vectors** of each item (and of each user with a profile): TF-IDF of the entity's
   text (every typed field rendered by a :class:`~dayzero.core.templates.Template`) reduced by
   truncated SVD to ``content_dim`` dimensions, standardised on the training entities (the
   paper reduces CiteULike's TF-IDF to 300 dimensions the same way).
3. Two towers ``f_U([u_pref, u_content])`` and ``f_V([v_pref, v_content])`` (a tanh hidden
   layer, a linear output) trained so that ``f_U . f_V`` reproduces the WMF score ``U_u . V_v``
   on relevant pairs and on random pairs, with **input dropout**: each pair's user and item
   preference inputs are zeroed with probability ``dropout``, so the towers learn to score from
   content alone. That is what serves cold entities.

Serving: a training item or user feeds its WMF vector; an item never trained on (new, content
only) feeds zeros in its place; a user with interactions outside training (``history``,
``partial_fit_users``) gets the WMF fold-in of its relevant items (ALS's closed form against the
fitted item vectors); a user with neither feeds zeros, and its list comes from its profile
content (if any) and what the towers learned for an empty input (a popularity-like direction).

Explicit ratings become implicit feedback as for the other peers: an interaction is relevant
when ``value >= threshold`` (every interaction when ``threshold`` is None). Saved as safetensors
arrays (factors, content projections, tower weights) and JSON (vocabularies, templates); a loaded
model scores without implicit installed.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits
from torch import nn

from dayzero.core.schema import Dataset, Entities, Interactions, SchemaError
from dayzero.core.templates import Template
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register
from dayzero.recommend.peers import _check_threads, _relevant, _relevant_or_raise, _require

__all__ = ["DropoutNet"]


class _Content:
    """TF-IDF + truncated SVD + standardisation of one side's texts (items or users)."""

    def __init__(
        self,
        vocabulary: list[str],
        idf: np.ndarray,
        components: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self.components = components
        self.mean = mean
        self.scale = scale

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, texts: list[str], dim: int, max_features: int, seed: int) -> _Content | None:
        """Fitted on ``texts``, or None when they give no vocabulary (no content on this side)."""
        vectorizer = TfidfVectorizer(max_features=max_features, stop_words="english")
        try:
            tfidf = vectorizer.fit_transform(texts)
        except ValueError:
            return None
        n_terms = tfidf.shape[1]
        k = max(1, min(dim, n_terms - 1, len(texts) - 1))
        if n_terms < 2 or len(texts) < 2:
            components = np.eye(1, n_terms, dtype=np.float32)
        else:
            svd = TruncatedSVD(n_components=k, random_state=seed).fit(tfidf)
            components = svd.components_.astype(np.float32)
        content = cls(
            vectorizer.get_feature_names_out().tolist(),
            np.asarray(vectorizer.idf_, dtype=np.float32),
            components,
            np.zeros(len(components), dtype=np.float32),
            np.ones(len(components), dtype=np.float32),
        )
        reduced = content.transform(texts)
        content.mean = reduced.mean(axis=0).astype(np.float32)
        content.scale = np.maximum(reduced.std(axis=0), 1e-6).astype(np.float32)
        return content

    def transform(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        counts = CountVectorizer(vocabulary=self.vocabulary).transform(texts)
        tfidf = normalize(counts.multiply(self.idf).tocsr())
        reduced = np.asarray(tfidf @ self.components.T, dtype=np.float32)
        return (reduced - self.mean) / self.scale

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_idf": self.idf,
            f"{prefix}_components": self.components,
            f"{prefix}_mean": self.mean,
            f"{prefix}_scale": self.scale,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, vocabulary: list[str]):
        return cls(
            vocabulary,
            arrays[f"{prefix}_idf"],
            arrays[f"{prefix}_components"],
            arrays[f"{prefix}_mean"],
            arrays[f"{prefix}_scale"],
        )


def _tower(n_in: int, hidden: int, dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, dim))


def _fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    cols: np.ndarray,
    alpha: float,
    regularization: float,
) -> np.ndarray:
    """WMF user vector for relevant items ``cols`` (confidence ``1 + alpha``, preference 1):
    ALS's closed form ``(V'V + alpha V_c'V_c + reg I)^-1 (1 + alpha) V_c' 1``."""
    if len(cols) == 0:
        return np.zeros(item_factors.shape[1], dtype=np.float32)
    liked = item_factors[cols].astype(np.float64)
    a = gram + alpha * liked.T @ liked + regularization * np.eye(gram.shape[0])
    b = (1.0 + alpha) * liked.sum(axis=0)
    return np.linalg.solve(a, b).astype(np.float32)


@register("dropoutnet")
class DropoutNet(_common.RatingMatrix, Recommender):
    """DropoutNet: WMF preference vectors + content vectors through two towers trained with
    input dropout, so items and users without interactions are scored from content.

    Parameters
    ----------
    factors, regularization, alpha, wmf_iterations
        The WMF step (implicit's ALS): rank, L2 weight, confidence ``1 + alpha`` of a relevant
        entry, ALS sweeps.
    content_dim
        Dimensions of the SVD-reduced TF-IDF content vector (300 in the paper).
    hidden, dim
        Width of each tower's tanh hidden layer, and of the output vectors.
    dropout
        Probability of zeroing a training pair's user preference input, and (independently)
        its item preference input (the paper's input dropout; 0.5 there).
    epochs, pairs_per_epoch, negatives, batch_size, lr
        Training: per epoch ``pairs_per_epoch`` relevant pairs drawn at random, each with
        ``negatives`` random items, regressed on the WMF score with Adam at ``lr``. The
        defaults (and the towers' widths) are the best of a small search on the validation
        split of CiteULike's tags protocol (``bench/retrieval_peers.py`` lists it).
    threshold
        Relevant interactions: ``value >= threshold``; ``None``: every interaction.
    template, user_template
        ``Template.to_dict()`` of the item / user text; ``None``: every typed field.
    max_features
        TF-IDF vocabulary size per side.
    random_state
        Seed of the ALS start, the SVD, the tower initialisation and the sampling.
    num_threads
        implicit's threads (1: reproducible).
    """

    _EXTRAS: ClassVar[_common.SavedExtras] = {
        "template_": dict,
        "user_template_": lambda v: v,
        "item_vocabulary_": list,
        "user_vocabulary_": lambda v: v,
        "pref_scale_": float,
        "content_only_": list,
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 1.0,
        alpha: float = 10.0,
        wmf_iterations: int = 15,
        content_dim: int = 300,
        hidden: int = 256,
        dim: int = 128,
        dropout: float = 0.5,
        epochs: int = 40,
        pairs_per_epoch: int = 200_000,
        negatives: int = 1,
        batch_size: int = 1024,
        lr: float = 1e-3,
        threshold: float | None = None,
        template: dict[str, Any] | None = None,
        user_template: dict[str, Any] | None = None,
        max_features: int = 20_000,
        random_state: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.wmf_iterations = wmf_iterations
        self.content_dim = content_dim
        self.hidden = hidden
        self.dim = dim
        self.dropout = dropout
        self.epochs = epochs
        self.pairs_per_epoch = pairs_per_epoch
        self.negatives = negatives
        self.batch_size = batch_size
        self.lr = lr
        self.threshold = threshold
        self.template = template
        self.user_template = user_template
        self.max_features = max_features
        self.random_state = random_state
        self.num_threads = num_threads

    # ----------------------------------------------------------------- checks
    def _check_params(self) -> None:
        positive = ("factors", "wmf_iterations", "content_dim", "hidden", "dim", "batch_size")
        for name in (*positive, "epochs", "pairs_per_epoch", "max_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.regularization < 0 or self.alpha < 0 or self.lr <= 0:
            raise ValueError("need regularization >= 0, alpha >= 0 and lr > 0")
        if self.negatives < 0:
            raise ValueError(f"negatives must be >= 0, got {self.negatives}")
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number or None, got {self.threshold!r}")
        _check_threads(self.num_threads)

    # ----------------------------------------------------------------- learning
    def fit(self, dataset: Dataset) -> Self:
        self._check_params()
        self._forget_fit()
        als = _require("implicit.cpu.als", "implicit", self.name)
        if dataset.items is None or len(dataset.items) == 0:
            raise SchemaError(
                "dropoutnet needs item fields (its cold items are scored from their text): "
                "build the Dataset with items=Entities(...)"
            )
        inter = _common.training_interactions(dataset, self.name)
        self._fit_ratings(inter, dataset.items.ids)
        _relevant_or_raise(self.ratings_.data, self.threshold, self.name)
        if dataset.users is not None and len(dataset.users):
            self.user_map_.add(dataset.users.ids)
            self._resize()
        relevant = self._relevant_matrix()

        users = np.flatnonzero(np.diff(relevant.indptr))
        items = np.unique(relevant.indices)
        with threadpool_limits(1, "blas"):
            model = als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # confidences built here: 1 + alpha on relevant entries
                iterations=self.wmf_iterations,
                num_threads=self.num_threads,
                random_state=self.random_state,
            )
            weights = relevant[users][:, items].astype(np.float32)
            weights.data = np.full_like(weights.data, 1.0 + self.alpha)
            model.fit(weights.tocsr(), show_progress=False)
        self.user_factors_ = np.zeros((len(self.user_map_), self.factors), dtype=np.float32)
        self.item_factors_ = np.zeros((len(self.item_map_), self.factors), dtype=np.float32)
        self.user_factors_[users] = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_[items] = np.asarray(model.item_factors, dtype=np.float32)
        self.pref_scale_ = float(max(self.item_factors_[items].std(), 1e-6))
        untrained = np.setdiff1d(np.arange(len(self.item_map_)), items)
        self.content_only_ = self.item_map_.to_external(untrained)

        template = (
            Template.from_dict(self.template)
            if self.template is not None
            else Template.for_entities(dataset.items)
        )
        self.template_ = template.to_dict()
        item_texts = template.render_entities(dataset.items)
        content = _Content.fit(
            list(item_texts.values()), self.content_dim, self.max_features, self.random_state
        )
        if content is None:
            raise SchemaError("dropoutnet: the item texts give no vocabulary (empty fields?)")
        self._item_content = content
        self.item_vocabulary_ = content.vocabulary
        self.item_vectors_ = np.zeros((len(self.item_map_), content.dim), dtype=np.float32)
        self._embed_items(item_texts)

        self.user_template_ = None
        self.user_vocabulary_ = None
        self._user_content: _Content | None = None
        if dataset.users is not None and len(dataset.users) and dataset.users.fields:
            user_template = (
                Template.from_dict(self.user_template)
                if self.user_template is not None
                else Template.for_entities(dataset.users)
            )
            user_texts = user_template.render_entities(dataset.users)
            self._user_content = _Content.fit(
                list(user_texts.values()), self.content_dim, self.max_features, self.random_state
            )
            if self._user_content is not None:
                self.user_template_ = user_template.to_dict()
                self.user_vocabulary_ = self._user_content.vocabulary
        width = 0 if self._user_content is None else self._user_content.dim
        self.user_vectors_ = np.zeros((len(self.user_map_), width), dtype=np.float32)
        if self._user_content is not None:
            self._embed_users(user_texts)

        self._train(relevant, users, items)
        self._after_load()
        return self

    def _relevant_matrix(self) -> sp.csr_matrix:
        """Users x items 0/1 matrix of the relevant (mean) ratings."""
        coo = self.ratings_.tocoo()
        keep = _relevant(coo.data, self.threshold)
        return sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (coo.row[keep], coo.col[keep])),
            shape=self.ratings_.shape,
        )

    def _resize(self) -> None:
        self.ratings_ = _common.resize_csr(
            self.ratings_, (len(self.user_map_), len(self.item_map_))
        )

    def _embed_items(self, texts: dict[Hashable, str]) -> None:
        index = self.item_map_.add(texts)
        self.item_vectors_ = _common.grow(self.item_vectors_, len(self.item_map_))
        self.item_vectors_[index] = self._item_content.transform(list(texts.values()))

    def _embed_users(self, texts: dict[Hashable, str]) -> None:
        index = self.user_map_.add(texts)
        self.user_vectors_ = _common.grow(self.user_vectors_, len(self.user_map_))
        self.user_vectors_[index] = self._user_content.transform(list(texts.values()))

    def _train(self, relevant: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> None:
        """Towers regressed on the WMF scores of sampled pairs, with input dropout."""
        generator = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        n_user_in = self.factors + self.user_vectors_.shape[1]
        n_item_in = self.factors + self.item_vectors_.shape[1]
        self._user_tower = _tower(n_user_in, self.hidden, self.dim)
        self._item_tower = _tower(n_item_in, self.hidden, self.dim)
        parameters = [*self._user_tower.parameters(), *self._item_tower.parameters()]
        optimiser = torch.optim.Adam(parameters, lr=self.lr)
        coo = relevant.tocoo()
        pos_users, pos_items = coo.row, coo.col
        user_pref = torch.from_numpy(self.user_factors_ / self.pref_scale_)
        item_pref = torch.from_numpy(self.item_factors_ / self.pref_scale_)
        user_content = torch.from_numpy(self.user_vectors_)
        item_content = torch.from_numpy(self.item_vectors_)
        user_wmf = torch.from_numpy(self.user_factors_)
        item_wmf = torch.from_numpy(self.item_factors_)
        n_pairs = min(self.pairs_per_epoch, len(pos_users)) if self.pairs_per_epoch else 0
        self._user_tower.train()
        self._item_tower.train()
        for _ in range(self.epochs):
            draw = generator.integers(0, len(pos_users), n_pairs)
            u = np.concatenate([pos_users[draw], np.repeat(pos_users[draw], self.negatives)])
            i = np.concatenate([pos_items[draw], generator.choice(items, n_pairs * self.negatives)])
            order = generator.permutation(len(u))
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                bu = torch.from_numpy(u[batch])
                bi = torch.from_numpy(i[batch])
                keep_u = torch.from_numpy(generator.random(len(batch)) >= self.dropout)
                keep_i = torch.from_numpy(generator.random(len(batch)) >= self.dropout)
                up = user_pref[bu] * keep_u[:, None]
                ip = item_pref[bi] * keep_i[:, None]
                out_u = self._user_tower(torch.cat([up, user_content[bu]], dim=1))
                out_i = self._item_tower(torch.cat([ip, item_content[bi]], dim=1))
                target = (user_wmf[bu] * item_wmf[bi]).sum(dim=1)
                loss = ((out_u * out_i).sum(dim=1) - target).pow(2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self._user_tower.eval()
        self._item_tower.eval()

    def _after_load(self) -> None:
        self._gram = self.item_factors_.astype(np.float64).T @ self.item_factors_.astype(np.float64)
        self._item_out = self._item_outputs(np.arange(len(self.item_map_)))

    @torch.no_grad()
    def _item_outputs(self, index: np.ndarray) -> np.ndarray:
        pref = self.item_factors_[index] / self.pref_scale_
        inputs = np.concatenate([pref, self.item_vectors_[index]], axis=1)
        return self._item_tower(torch.from_numpy(inputs)).numpy().astype(np.float64)

    @torch.no_grad()
    def _user_output(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        cols, values, _ = self._user_ratings(user, history)
        liked = cols[_relevant(values, self.threshold)] if len(cols) else cols
        known = user in self.user_map_
        row = int(self.user_map_.to_internal([user])[0]) if known else -1
        extra = history is not None and len(_common.history_frame(history, [user]))
        if known and not extra and row < len(self.user_factors_) and self._trained_user(row):
            pref = self.user_factors_[row]
        else:
            pref = _fold_in(self.item_factors_, self._gram, liked, self.alpha, self.regularization)
        width = self.user_vectors_.shape[1]
        content = self.user_vectors_[row] if known and width else np.zeros(width, np.float32)
        inputs = np.concatenate([pref / self.pref_scale_, content])[None, :].astype(np.float32)
        return self._user_tower(torch.from_numpy(inputs)).numpy()[0].astype(np.float64)

    def _trained_user(self, row: int) -> bool:
        return bool(np.any(self.user_factors_[row]))

    # ----------------------------------------------------------------- fold-in
    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Fold in users' interactions (their WMF vectors become the fold-in of their relevant
        items) and, with a user text side, their profiles."""
        self._check_fitted()
        if len(interactions):
            frame = self._absorb_ratings(interactions)
            self._resize_vectors()
            for user in frame["user"].unique():
                row = int(self.user_map_.to_internal([user])[0])
                cols, values, _ = self._user_ratings(user, None)
                liked = cols[_relevant(values, self.threshold)]
                self.user_factors_[row] = _fold_in(
                    self.item_factors_, self._gram, liked, self.alpha, self.regularization
                )
        if users is not None and len(users):
            self.user_map_.add(users.ids)
            self._resize_vectors()
            if self._user_content is not None:
                texts = Template.from_dict(self.user_template_).render_entities(users)
                self._embed_users(texts)
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields (content only: no WMF vector until a refit) and fold in
        interactions, if given, as :meth:`partial_fit_users` does."""
        self._check_fitted()
        texts = Template.from_dict(self.template_).render_entities(items)
        changed = [item for item in texts if item in self.item_map_]
        self.content_only_ = [*self.content_only_, *(i for i in texts if i not in self.item_map_)]
        self._embed_items(texts)
        self._resize_vectors()  # the new items' outputs
        if changed:  # known items with new fields
            index = self.item_map_.to_internal(changed)
            self._item_out[index] = self._item_outputs(index)
        if interactions is not None and len(interactions):
            self.partial_fit_users(interactions)
        return self

    def _resize_vectors(self) -> None:
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        self._resize()
        self.user_factors_ = _common.grow(self.user_factors_, n_users)
        self.user_vectors_ = _common.grow(self.user_vectors_, n_users)
        self.item_factors_ = _common.grow(self.item_factors_, n_items)
        self.item_vectors_ = _common.grow(self.item_vectors_, n_items)
        if len(self._item_out) < n_items:
            start = len(self._item_out)
            self._item_out = _common.grow(self._item_out, n_items)
            self._item_out[start:] = self._item_outputs(np.arange(start, n_items))

    # ----------------------------------------------------------------- scoring
    def content_only_items(self) -> list[Hashable]:
        return list(self.content_only_)

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self._item_out @ self._user_output(user, history)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        index = self.item_map_.to_internal(items, missing=-1)
        scores = np.zeros(len(items), dtype=np.float64)
        for user, positions in _common.positions_by_user(users).items():
            vector = self._user_output(user, history)
            known = index[positions] >= 0
            scores[positions[known]] = self._item_out[index[positions[known]]] @ vector
        return scores

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}")
        target = int(self.item_map_.to_internal([item])[0])
        return _common.most_similar(self.item_map_, self._item_out, target, k)

    # ----------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_vectors": self.user_vectors_,
            "item_vectors": self.item_vectors_,
            **_common.csr_state("ratings", self.ratings_),
            **self._item_content.to_arrays("item_content"),
        }
        if self._user_content is not None:
            arrays.update(self._user_content.to_arrays("user_content"))
        for side, tower in (("user", self._user_tower), ("item", self._item_tower)):
            for key, value in tower.state_dict().items():
                arrays[f"{side}_tower.{key}"] = value.numpy()
        extras = {name.removesuffix("_"): getattr(self, name) for name in self._EXTRAS}
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        for name, read in self._EXTRAS.items():
            setattr(self, name, read(extras[name.removesuffix("_")]))
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.user_vectors_ = arrays["user_vectors"]
        self.item_vectors_ = arrays["item_vectors"]
        self.ratings_ = _common.csr_from_state("ratings", arrays)
        self._item_content = _Content.from_arrays(arrays, "item_content", self.item_vocabulary_)
        self._user_content = (
            _Content.from_arrays(arrays, "user_content", self.user_vocabulary_)
            if self.user_vocabulary_ is not None
            else None
        )
        self._user_tower = _tower(self.factors + self.user_vectors_.shape[1], self.hidden, self.dim)
        self._item_tower = _tower(self.factors + self.item_vectors_.shape[1], self.hidden, self.dim)
        for side, tower in (("user", self._user_tower), ("item", self._item_tower)):
            prefix = f"{side}_tower."
            state = {
                key.removeprefix(prefix): torch.from_numpy(np.ascontiguousarray(value))
                for key, value in arrays.items()
                if key.startswith(prefix)
            }
            tower.load_state_dict(state)
            tower.eval()
        self._after_load()
