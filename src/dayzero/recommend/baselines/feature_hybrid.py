"""A LightFM-style hybrid in torch: users and items are sums of feature embeddings."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
import torch

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import is_missing
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register, seen_by_user

_FEATURE_KINDS = ("categorical", "multi", "boolean")


@register("feature-hybrid")
class FeatureHybrid(_common.SavedAttributes, Recommender):
    """``score = g + b_u + b_i + u . v``, ``u``, ``v`` and the biases sums of feature embeddings.

    An entity's representation is its ID embedding plus the embeddings of its field values:
    ``field=value`` for every categorical and boolean field, and each element of every ``multi``
    field weighted ``1 / len(list)``, so each field adds weight 1 (text and numeric fields are
    not used; use ``content-knn`` or an encoder model for text). Trained with Adam on mini-batches:
    ``loss="mse"`` regresses the values (``g`` is the training mean), ``loss="bpr"`` ranks each
    interacted item above one uniformly sampled training item.

    ID embeddings are dropped per entity with probability ``id_dropout`` at every step (the
    DropoutNet idea), so the feature part alone must predict well: a new item or user with fields
    gets a feature-dependent score instead of the same one for everyone (LightFM's failure when
    IDs carry all the signal).

    Parameters
    ----------
    loss
        ``"mse"`` (ratings) or ``"bpr"`` (ranking; scores are not ratings).
    factors
        Embedding dimension.
    epochs, lr, batch_size
        Adam training schedule.
    reg
        L2 penalty on the batch's representations and biases (per example).
    id_dropout
        Probability of dropping an entity's ID embedding in a training step.
    history_reg
        Ridge penalty of the ``history`` fold-in (``loss="mse"``).
    random_state
        Seed of initialisation, shuffling, dropout and negative sampling; training is
        deterministic for a given seed.

    Notes
    -----
    ``history`` (and ``partial_fit_users``/``partial_fit_items`` interactions) fold in without
    training. With ``loss="mse"`` a user gets a correction ``[db, du]`` solving the ridge
    regression of the residuals ``r_j - score(u, j)`` on ``[1, v_j]`` over the history items ``j``
    (item side fixed; the classic ALS fold-in). With ``loss="bpr"`` the mean of the history items'
    representations is added to ``u``. Items (in ``partial_fit_items``) fold in symmetrically.

    Cold fallback: an unknown item with fields -> its feature representation (via
    ``partial_fit_items`` or already in ``fit`` when the item table has it); an item with neither
    fields nor interactions (not in ``item_map_``) -> ``g + b_u``; an unknown user without fields
    -> a zero representation (``g + b_i``, the same ranking for every such user) unless
    ``history`` folds one in. Rating predictions (``mse``) are clipped to the training range.
    """

    _SAVED_ARRAYS = (
        "user_id_",
        "item_id_",
        "user_id_bias_",
        "item_id_bias_",
        "user_feature_",
        "item_feature_",
        "user_feature_bias_",
        "item_feature_bias_",
    )
    _SAVED_SPARSE = ("user_features_", "item_features_")
    _SAVED_EXTRAS: ClassVar[_common.SavedExtras] = {
        "user_vocabulary_": list,
        "item_vocabulary_": list,
        "global_bias_": float,
        "value_min_": float,
        "value_max_": float,
    }

    def __init__(
        self,
        loss: Literal["mse", "bpr"] = "mse",
        factors: int = 32,
        epochs: int = 8,
        lr: float = 0.01,
        reg: float = 0.01,
        batch_size: int = 4096,
        id_dropout: float = 0.3,
        history_reg: float = 5.0,
        random_state: int | None = 0,
    ) -> None:
        self.loss = loss
        self.factors = factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.id_dropout = id_dropout
        self.history_reg = history_reg
        self.random_state = random_state

    # ----------------------------------------------------------------- features
    @staticmethod
    def _feature_vocabulary(entities: Entities | None) -> list[str]:
        if entities is None:
            return []
        tokens: dict[str, None] = {}
        for name, kind in entities.fields.items():
            if kind not in _FEATURE_KINDS:
                continue
            for value in entities.frame[name]:
                for token, _ in _field_tokens(name, kind, value):
                    tokens.setdefault(token, None)
        return list(tokens)

    @staticmethod
    def _feature_rows(
        entities: Entities | None, ids: IdMap, vocabulary: dict[str, int], n_rows: int
    ) -> sp.csr_matrix:
        """Entities x features matrix of weights (rows of entities without fields are empty)."""
        rows, cols, weights = [], [], []
        if entities is not None:
            index = ids.to_internal(entities.ids, missing=-1)
            for name, kind in entities.fields.items():
                if kind not in _FEATURE_KINDS:
                    continue
                for row, value in zip(index, entities.frame[name], strict=True):
                    if row < 0:
                        continue
                    for token, weight in _field_tokens(name, kind, value):
                        col = vocabulary.get(token)
                        if col is not None:
                            rows.append(row)
                            cols.append(col)
                            weights.append(weight)
        return sp.csr_matrix(
            (np.asarray(weights, dtype=np.float64), (rows, cols)),
            shape=(n_rows, len(vocabulary)),
        )

    # ----------------------------------------------------------------- learning
    def fit(self, dataset: Dataset) -> Self:
        if self.loss not in ("mse", "bpr"):
            raise ValueError(f"loss must be 'mse' or 'bpr', got {self.loss!r}")
        if self.factors < 1 or self.epochs < 0 or self.batch_size < 1:
            raise ValueError("need factors >= 1, epochs >= 0 and batch_size >= 1")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {self.id_dropout}")
        inter = _common.training_interactions(dataset, self.name)
        frame = _common.aggregate(inter)
        self.user_map_ = IdMap(frame["user"])
        self.item_map_ = IdMap(frame["item"])
        for entities, ids in ((dataset.users, self.user_map_), (dataset.items, self.item_map_)):
            if entities is not None:
                ids.add(entities.ids)
        self.seen_ = seen_by_user(inter)
        self.user_vocabulary_ = self._feature_vocabulary(dataset.users)
        self.item_vocabulary_ = self._feature_vocabulary(dataset.items)
        self.user_features_ = self._feature_rows(
            dataset.users, self.user_map_, _index(self.user_vocabulary_), len(self.user_map_)
        )
        self.item_features_ = self._feature_rows(
            dataset.items, self.item_map_, _index(self.item_vocabulary_), len(self.item_map_)
        )
        values = frame["value"].to_numpy(np.float64)
        self.global_bias_ = float(values.mean()) if self.loss == "mse" else 0.0
        self.value_min_, self.value_max_ = float(values.min()), float(values.max())
        users = self.user_map_.to_internal(frame["user"])
        items = self.item_map_.to_internal(frame["item"])
        self._train(users, items, values)
        return self

    def _train(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> None:
        generator = torch.Generator().manual_seed(
            0 if self.random_state is None else int(self.random_state)
        )
        f = self.factors

        def table(n: int) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.randn(n, f, generator=generator) * (0.1 / np.sqrt(f)))

        def zeros(n: int) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.zeros(n))

        n_users, n_items = len(self.user_map_), len(self.item_map_)
        params = {
            "user_id": table(n_users),
            "item_id": table(n_items),
            "user_feature": table(len(self.user_vocabulary_)),
            "item_feature": table(len(self.item_vocabulary_)),
            "user_id_bias": zeros(n_users),
            "item_id_bias": zeros(n_items),
            "user_feature_bias": zeros(len(self.user_vocabulary_)),
            "item_feature_bias": zeros(len(self.item_vocabulary_)),
        }
        user_features = _torch_sparse(self.user_features_)
        item_features = _torch_sparse(self.item_features_)
        optimizer = torch.optim.Adam(params.values(), lr=self.lr)
        u_all = torch.tensor(users, dtype=torch.int64)
        i_all = torch.tensor(items, dtype=torch.int64)
        r_all = torch.tensor(values, dtype=torch.float32)
        trained_items = torch.tensor(np.unique(items), dtype=torch.int64)
        keep = 1.0 - self.id_dropout

        def represent(side: str, features: torch.Tensor, n: int):
            mask = (torch.rand(n, generator=generator) < keep).float()
            vec = params[f"{side}_id"] * mask[:, None] + torch.sparse.mm(
                features, params[f"{side}_feature"]
            )
            bias = params[f"{side}_id_bias"] * mask + torch.sparse.mm(
                features, params[f"{side}_feature_bias"][:, None]
            ).squeeze(1)
            return vec, bias

        for _ in range(self.epochs):
            order = torch.randperm(len(u_all), generator=generator)
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                u, i = u_all[batch], i_all[batch]
                user_vec, user_bias = represent("user", user_features, n_users)
                item_vec, item_bias = represent("item", item_features, n_items)
                pos = (user_vec[u] * item_vec[i]).sum(1) + item_bias[i]
                penalty = (user_vec[u] ** 2).sum(1) + (item_vec[i] ** 2).sum(1)
                if self.loss == "mse":
                    pred = self.global_bias_ + user_bias[u] + pos
                    data_loss = ((pred - r_all[batch]) ** 2).mean()
                    penalty = penalty + user_bias[u] ** 2 + item_bias[i] ** 2
                else:
                    j = trained_items[
                        torch.randint(len(trained_items), (len(batch),), generator=generator)
                    ]
                    neg = (user_vec[u] * item_vec[j]).sum(1) + item_bias[j]
                    data_loss = -torch.nn.functional.logsigmoid(pos - neg).mean()
                    penalty = penalty + (item_vec[j] ** 2).sum(1) + item_bias[i] ** 2
                    penalty = penalty + item_bias[j] ** 2
                loss = data_loss + self.reg * penalty.mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        def numpy(name: str) -> np.ndarray:
            return params[name].detach().numpy().astype(np.float64)

        self.user_id_ = numpy("user_id")
        self.item_id_ = numpy("item_id")
        self.user_id_bias_ = numpy("user_id_bias")
        self.item_id_bias_ = numpy("item_id_bias")
        self.user_feature_ = numpy("user_feature")
        self.item_feature_ = numpy("item_feature")
        self.user_feature_bias_ = numpy("user_feature_bias")
        self.item_feature_bias_ = numpy("item_feature_bias")

    # ----------------------------------------------------------------- representations
    def user_representations_(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, biases)`` of every user in ``user_map_`` (ID + features)."""
        vec = self.user_id_ + self.user_features_ @ self.user_feature_
        return vec, self.user_id_bias_ + self.user_features_ @ self.user_feature_bias_

    def item_representations_(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, biases)`` of every item in ``item_map_`` (ID + features)."""
        vec = self.item_id_ + self.item_features_ @ self.item_feature_
        return vec, self.item_id_bias_ + self.item_features_ @ self.item_feature_bias_

    def _fold(
        self,
        base_vec: np.ndarray,
        base_bias: float,
        other_vec: np.ndarray,
        other_bias: np.ndarray,
        values: np.ndarray,
    ) -> tuple[np.ndarray, float]:
        """Correction ``(d_vec, d_bias)`` of one entity from its values on ``other`` rows."""
        if len(values) == 0:
            return np.zeros(self.factors), 0.0
        if self.loss == "bpr":
            return other_vec.mean(axis=0), 0.0
        current = self.global_bias_ + base_bias + other_bias + other_vec @ base_vec
        design = np.concatenate([np.ones((len(values), 1)), other_vec], axis=1)
        gram = design.T @ design + self.history_reg * np.eye(design.shape[1])
        solution = np.linalg.solve(gram, design.T @ (values - current))
        return solution[1:], float(solution[0])

    def _user_state(self, user: Hashable, history: Interactions | None, items_vec, items_bias):
        """User vector and bias for scoring, with ``history`` folded in."""
        if user in self.user_map_:
            row = int(self.user_map_.to_internal([user])[0])
            features = self.user_features_[row]
            vec = self.user_id_[row] + np.asarray(features @ self.user_feature_).ravel()
            bias = float(self.user_id_bias_[row] + (features @ self.user_feature_bias_)[0])
        else:
            vec, bias = np.zeros(self.factors), 0.0
        items, values = _common.user_history(history, user)
        index = self.item_map_.to_internal(items, missing=-1)
        known = index >= 0
        if known.any():
            d_vec, d_bias = self._fold(
                vec, bias, items_vec[index[known]], items_bias[index[known]], values[known]
            )
            vec, bias = vec + d_vec, bias + d_bias
        return vec, bias

    def _scores(self, user, history, index, items_vec, items_bias) -> np.ndarray:
        vec, bias = self._user_state(user, history, items_vec, items_bias)
        safe = np.maximum(index, 0)
        interaction = np.where(index >= 0, items_bias[safe] + items_vec[safe] @ vec, 0.0)
        scores = self.global_bias_ + bias + interaction
        if self.loss == "mse":
            scores = _common.clip(scores, self.value_min_, self.value_max_)
        return scores

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        items_vec, items_bias = self.item_representations_()
        return _common.pair_scores(
            self.item_map_,
            users,
            items,
            lambda user, index: self._scores(user, history, index, items_vec, items_bias),
        )

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        items_vec, items_bias = self.item_representations_()
        index = np.arange(len(self.item_map_))
        return self._scores(user, history, index, items_vec, items_bias)

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Cosine similarity of item representations (ID + features)."""
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}: add it with partial_fit_items first")
        vec, _ = self.item_representations_()
        target = int(self.item_map_.to_internal([item])[0])
        return _common.most_similar(self.item_map_, _common.cosine_to(vec, target), target, k)

    # ----------------------------------------------------------------- fold-in
    def _grow(self, side: str, entities: Entities | None) -> None:
        ids = self.user_map_ if side == "user" else self.item_map_
        vocabulary = self.user_vocabulary_ if side == "user" else self.item_vocabulary_
        n = len(ids)
        for name in (f"{side}_id_", f"{side}_id_bias_"):
            setattr(self, name, _common.grow(getattr(self, name), n))
        features = _common.resize_csr(getattr(self, f"{side}_features_"), (n, len(vocabulary)))
        if entities is not None and len(entities):
            fresh = self._feature_rows(entities, ids, _index(vocabulary), n)
            replaced = np.zeros(n, dtype=bool)
            replaced[ids.to_internal(entities.ids)] = True
            features = (sp.diags((~replaced).astype(np.float64)) @ features + fresh).tocsr()
        setattr(self, f"{side}_features_", features)

    def _fold_side(self, side: str, interactions: Interactions) -> None:
        """Fold the ID part of ``side``'s entities in ``interactions`` (the other side fixed)."""
        frame = _common.aggregate(interactions)
        own_col, other_col = ("user", "item") if side == "user" else ("item", "user")
        own_map = self.user_map_ if side == "user" else self.item_map_
        other_map = self.item_map_ if side == "user" else self.user_map_
        own_vec, own_bias = (
            self.user_representations_() if side == "user" else self.item_representations_()
        )
        other_vec, other_bias = (
            self.item_representations_() if side == "user" else self.user_representations_()
        )
        id_vec, id_bias = getattr(self, f"{side}_id_"), getattr(self, f"{side}_id_bias_")
        for entity, group in frame.groupby(own_col, sort=False):
            row = int(own_map.to_internal([entity])[0])
            other = other_map.to_internal(group[other_col], missing=-1)
            known = other >= 0
            d_vec, d_bias = self._fold(
                own_vec[row],
                float(own_bias[row]),
                other_vec[other[known]],
                other_bias[other[known]],
                group["value"].to_numpy(np.float64)[known],
            )
            id_vec[row] += d_vec
            id_bias[row] += d_bias

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Add users (their fields, if given) and fold in their interactions, items fixed."""
        self._check_fitted()
        if users is not None:
            self.user_map_.add(users.ids)
        self.user_map_.add(interactions.users)
        self.item_map_.add(interactions.items)
        self._grow("user", users)
        self._grow("item", None)
        _common.update_seen(self.seen_, interactions)
        if len(interactions):
            self._fold_side("user", interactions)
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields and fold in their interactions (if any), users fixed."""
        self._check_fitted()
        self.item_map_.add(items.ids)
        if interactions is not None:
            self.item_map_.add(interactions.items)
            self.user_map_.add(interactions.users)
        self._grow("item", items)
        self._grow("user", None)
        if interactions is not None and len(interactions):
            _common.update_seen(self.seen_, interactions)
            self._fold_side("item", interactions)
        return self


def _field_tokens(name: str, kind: str, value: Any) -> list[tuple[str, float]]:
    """``(token, weight)`` of one field value: the elements of a ``multi`` list share weight 1."""
    if kind == "multi" and isinstance(value, (list, tuple, set, np.ndarray)):
        elements = [v for v in value if not is_missing(v)]
        return [(f"{name}={v}", 1.0 / len(elements)) for v in elements]
    if is_missing(value):
        return []
    return [(f"{name}={value}", 1.0)]


def _index(vocabulary: list[str]) -> dict[str, int]:
    return {token: i for i, token in enumerate(vocabulary)}


def _torch_sparse(matrix: sp.csr_matrix) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        indices,
        torch.tensor(coo.data, dtype=torch.float32),
        coo.shape,
        check_invariants=False,
    ).coalesce()
